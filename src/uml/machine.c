// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The machine: a UML-like SMP guest.  Each vCPU is a thread with its own
 * stubwatch loop; all vCPUs schedule the stubs from one shared run queue,
 * as UML's scheduler moves processes between vCPUs.  A vCPU runs one stub
 * at a time (resume, wait, serve, resume, ...) until the stub reports the
 * SIGALRM that ends its quantum, then puts it back.
 *
 * Preemption and the watchdog share the loop's one timerfd: the loop runs
 * with SW_LOOP_TICK_EVENTS and timer_div = T / preempt_ns, so its timer
 * fires every preemption tick; each timer read during a wait is returned as
 * SW_EV_TICK (or given to the loop's tick callback), and the vCPU sends
 * SIGALRM to the stub it waits on.  The same reads are what the loop's
 * watchdog counts (N * timer_div + 1 counted reads of silence kill: N..N+1
 * ticks T, whatever timer_div is).  A tick that finds the stub between its
 * report and its resume is owed and sent right after the resume.
 * sw_stub_wait() drops a timer read that comes in the same epoll batch as a
 * report (test/uml/t_uml_ticks); the vCPU, which reads the clock at each
 * report for its statistics anyway, owes a tick when a quantum has run two
 * ticks without one.
 *
 * A stub moves between loops (detach on the old vCPU's thread, attach on the
 * new one's) only between quanta, never per handshake.  So while one vCPU
 * is stuck waiting on a hijacked stub, the others keep running every other
 * stub; the stuck vCPU is freed by its watchdog's kill.
 *
 * The vCPU's driver (how it waits) is pluggable: "blocking" uses
 * sw_stub_wait(); "dispatch" polls the loop's fd and runs
 * sw_loop_dispatch() with callbacks, as an embedding host does; "libev"
 * (built when configure found libev) runs the same callbacks from a libev
 * loop of the vCPU thread's own, the loop attached with sw_ev_attach().
 * Another driver implements struct swu_driver with the steps priv.h lists
 * and joins drivers[].
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBEV
#include <stubwatch-ev.h>
#endif

#include "priv.h"

#define LOAD(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define BUMP(x)     STORE(x, LOAD(x) + 1) /* single writer at a time */

struct swu_mstub {
	unsigned idx, home;
	struct swu_stub *s;      /* NULL once freed                        */
	struct swu_prog prog;
	pid_t pid;
	int on_vcpu;             /* loop it is attached to; -1: detached    */
	uint64_t first_run_ns;   /* abs; start of its first quantum         */
	/* relaxed; written by the vCPU running it, read by anyone */
	bool alive;
	uint64_t handshakes;
	uint64_t last_report_ns; /* abs */
	uint64_t last_resume_ns; /* abs; right after its last resume        */
	uint64_t quantum_ns;     /* abs; start of its current quantum       */
	uint64_t quantum_wait;   /* the vCPU thread's run_delay then        */
};

struct swu_vcpu {
	struct swu_machine *m;
	unsigned id;
	pthread_t th;
	bool th_started;
	struct sw_loop *loop;
	pid_t tid;
	/* the preemption of the current quantum */
	bool preempt_sent;      /* SIGALRM sent                              */
	bool preempt_owed;      /* a tick came while the stub was not in
	                           flight: send it right after the resume    */
	/* relaxed; written by this vCPU's thread */
	uint64_t handshakes, syscalls, preempts, quanta, kills, exits;
	int running;
	unsigned spawned_alive; /* atomic: decremented by any vCPU */
	int error;
};

struct swu_machine {
	struct swu_machine_opts o;
	const struct swu_driver *drv;
	unsigned nstubs;
	struct swu_mstub *stubs;
	struct swu_vcpu *vcpus;
	uint64_t t0;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct swu_mstub **rq; /* ring of nstubs */
	unsigned rq_head, rq_len;
	bool stop;
	unsigned ready, finished;
	bool started, joined;
	/* The first stub stall-killed before its hello (under lock). */
	bool start_killed;
	unsigned start_kill_stub;
	struct sw_kill_info start_kill;
};

/* ---- the shared run queue ---------------------------------------------- */

static void rq_push_locked(struct swu_machine *m, struct swu_mstub *ms)
{
	m->rq[(m->rq_head + m->rq_len) % m->nstubs] = ms;
	m->rq_len++;
	pthread_cond_signal(&m->cond);
}

static void request_stop(struct swu_machine *m)
{
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void vcpu_fail(struct swu_vcpu *v, int err)
{
	if (!LOAD(v->error))
		STORE(v->error, err);
	request_stop(v->m);
}

/* Next stub to run, attached to this vCPU's loop; NULL once stopping. */
struct swu_mstub *swu__vcpu_pick(struct swu_vcpu *v)
{
	struct swu_machine *m = v->m;
	struct swu_mstub *ms;
	int r;

	pthread_mutex_lock(&m->lock);
	while (!m->stop && m->rq_len == 0)
		pthread_cond_wait(&m->cond, &m->lock);
	if (m->stop) {
		pthread_mutex_unlock(&m->lock);
		return NULL;
	}
	ms = m->rq[m->rq_head];
	m->rq_head = (m->rq_head + 1) % m->nstubs;
	m->rq_len--;
	pthread_mutex_unlock(&m->lock);

	if (ms->on_vcpu != (int)v->id) {
		r = sw_stub_attach(swu_stub_sw(ms->s), v->loop);
		if (r < 0) {
			/* back in the queue for the cleanup to find */
			pthread_mutex_lock(&m->lock);
			rq_push_locked(m, ms);
			pthread_mutex_unlock(&m->lock);
			vcpu_fail(v, r);
			return NULL;
		}
		ms->on_vcpu = (int)v->id;
	}
	return ms;
}

/* End of a quantum: hand the stub back to the queue, detached unless
 * there is only this vCPU. */
int swu__vcpu_release(struct swu_vcpu *v, struct swu_mstub *ms)
{
	struct swu_machine *m = v->m;
	int r;

	if (m->o.vcpus > 1) {
		r = sw_stub_detach(swu_stub_sw(ms->s));
		if (r < 0)
			return r;
		ms->on_vcpu = -1;
	}
	pthread_mutex_lock(&m->lock);
	rq_push_locked(m, ms);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- the steps every driver shares ------------------------------------ */

/* The calling thread's run_delay: ns spent runnable but off a CPU.  Read
 * once per quantum (not per handshake); 0 if unavailable. */
static uint64_t thread_run_delay(void)
{
	char buf[96];
	unsigned long long cpu, wait;
	ssize_t n;
	int fd;

	fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &cpu, &wait) != 2)
		return 0;
	return wait;
}

void swu__vcpu_quantum_begin(struct swu_vcpu *v, struct swu_mstub *ms)
{
	uint64_t now = swu_now_ns();

	if (!ms->first_run_ns)
		ms->first_run_ns = now;
	STORE(ms->quantum_ns, now);
	ms->quantum_wait = thread_run_delay();
	BUMP(v->quanta);
	STORE(v->running, (int)ms->idx);
	v->preempt_sent = v->preempt_owed = false;
}

void swu__vcpu_quantum_end(struct swu_vcpu *v)
{
	STORE(v->running, -1);
}

/* A preemption tick.  In flight: SIGALRM to the stub now.  Otherwise (it
 * has just reported and waits for its answer) the preemption is owed and
 * sent right after the next resume, so that no tick is lost. */
void swu__vcpu_tick(struct swu_vcpu *v, struct swu_mstub *ms, bool in_flight)
{
	if (!in_flight) {
		v->preempt_owed = true;
		return;
	}
	swu_stub_preempt(ms->s); /* -ESRCH: dying; the wait will say so */
	v->preempt_sent = true;
}

/* After every resume: the watchdog counts the stub's silence from here. */
void swu__vcpu_resumed(struct swu_vcpu *v, struct swu_mstub *ms)
{
	STORE(ms->last_resume_ns, swu_now_ns());
	if (v->preempt_owed) {
		v->preempt_owed = false;
		swu__vcpu_tick(v, ms, true);
	}
}

static bool kill_expected(const struct swu_machine *m,
			  const struct swu_mstub *ms, const struct sw_event *ev,
			  uint64_t now)
{
	uint64_t min_silence = m->o.tick_ns * m->o.stall_ticks;

	if (ms->prog.kind == SWU_PROG_LIAR)
		return ev->kill.reason == SW_KILL_PROTOCOL;
	if (ms->prog.hijack == SWU_HIJACK_NONE || !ms->first_run_ns)
		return false;
	/* It cannot have hijacked before first_run + hijack_after, and the
	 * watchdog never kills before N*T of silence. */
	return ev->kill.reason == SW_KILL_STALL &&
	       now >= ms->first_run_ns + ms->prog.hijack_after_ns + min_silence;
}

/* The stub is dead and reaped: tell, count, free. */
static int vcpu_gone(struct swu_vcpu *v, struct swu_mstub *ms,
		     const struct sw_event *ev, uint64_t now)
{
	struct swu_machine *m = v->m;
	struct swu_mevent e = { 0 };
	uint64_t last = LOAD(ms->last_report_ns);
	uint64_t resumed = LOAD(ms->last_resume_ns);

	e.type = ev->type == SW_EV_KILL ? SWU_ME_KILL : SWU_ME_EXIT;
	e.t_ns = now - m->t0;
	e.vcpu = v->id;
	e.stub = ms->idx;
	e.pid = ms->pid;
	e.prog = ms->prog;
	e.status = ev->status;
	if (ev->type == SW_EV_KILL) {
		uint64_t since = resumed > last ? resumed : last;

		e.kill = ev->kill;
		e.report_at_ns = last;
		e.resume_at_ns = resumed;
		e.detect_ns = now - last;
		e.silence_ns = now - since;
		e.monitor_wait_ns = thread_run_delay() - ms->quantum_wait;
		e.false_kill = !kill_expected(m, ms, ev, now);
		BUMP(v->kills);
	} else {
		BUMP(v->exits);
	}
	for (unsigned i = 0; i < m->nstubs; i++) {
		const struct swu_mstub *o = &m->stubs[i];

		if (o == ms || !LOAD(o->alive))
			continue;
		e.others_alive++;
		if (LOAD(o->last_report_ns) > last)
			e.others_progressed++;
	}

	STORE(ms->alive, false);
	__atomic_fetch_sub(&m->vcpus[ms->home].spawned_alive, 1,
			   __ATOMIC_RELAXED);
	if (swu_stub_free(ms->s))
		return -EBUSY; /* cannot happen: not inside its wait */
	ms->s = NULL;
	ms->on_vcpu = -1;
	if (m->o.on_event)
		m->o.on_event(&e, m->o.userdata);
	return SWU_NEXT_GONE;
}

/* A completed wait (not a tick): serve it and say what comes next. */
int swu__vcpu_event(struct swu_vcpu *v, struct swu_mstub *ms,
		    const struct sw_event *ev)
{
	uint64_t now = swu_now_ns();
	int verdict;

	switch (ev->type) {
	case SW_EV_REPORT:
		verdict = swu_stub_serve(ms->s, NULL);
		if (verdict < 0)
			return verdict;
		if (verdict == SWU_VIOLATION)
			return SWU_NEXT_WAIT; /* its KILL comes next */
		STORE(ms->last_report_ns, now);
		BUMP(ms->handshakes);
		BUMP(v->handshakes);
		switch (verdict) {
		case SWU_SERVED:
			BUMP(v->syscalls);
			/* sw_stub_wait() drops a timer read that comes in the
			 * same epoll batch as a report; a quantum two ticks
			 * long without SIGALRM lost one: owe it. */
			if (!v->preempt_sent &&
			    now - LOAD(ms->quantum_ns) >= 2 * v->m->o.preempt_ns)
				v->preempt_owed = true;
			return SWU_NEXT_RESUME;
		case SWU_PREEMPTED:
			BUMP(v->preempts);
			return SWU_NEXT_SWITCH;
		default:
			return SWU_NEXT_RESUME; /* SWU_FAULTED: let it exit */
		}
	case SW_EV_EXIT:
	case SW_EV_KILL:
		return vcpu_gone(v, ms, ev, now);
	default:
		return -EPROTO;
	}
}

struct sw_loop *swu__vcpu_loop(struct swu_vcpu *v)
{
	return v->loop;
}

struct sw_stub *swu__mstub_sw(struct swu_mstub *ms)
{
	return swu_stub_sw(ms->s);
}

/* ---- driver: blocking (sw_stub_wait) ------------------------------------- */

static int blocking_quantum(struct swu_vcpu *v, struct swu_mstub *ms)
{
	struct sw_stub *sw = swu__mstub_sw(ms);
	struct sw_event ev;
	int next = SWU_NEXT_RESUME, r;

	swu__vcpu_quantum_begin(v, ms);
	for (;;) {
		if (next == SWU_NEXT_RESUME) {
			r = sw_stub_resume(sw);
			if (r < 0)
				return r;
			swu__vcpu_resumed(v, ms);
		}
		while ((r = sw_stub_wait(sw, &ev)) == SW_EV_TICK)
			swu__vcpu_tick(v, ms, true);
		if (r < 0)
			return r;
		next = swu__vcpu_event(v, ms, &ev);
		if (next < 0)
			return next;
		if (next == SWU_NEXT_SWITCH || next == SWU_NEXT_GONE) {
			swu__vcpu_quantum_end(v);
			return next;
		}
	}
}

static int blocking_run(struct swu_vcpu *v)
{
	struct swu_mstub *ms;
	int r;

	while ((ms = swu__vcpu_pick(v))) {
		r = blocking_quantum(v, ms);
		if (r == SWU_NEXT_SWITCH)
			r = swu__vcpu_release(v, ms);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- drivers: dispatch and libev (callbacks from sw_loop_dispatch) -------
 *
 * The embedding path, as a host main loop would drive it: completions and
 * timer reads arrive as callbacks.  The two drivers differ only in who
 * polls the loop's fd: "dispatch" a poll() of its own, "libev" an ev_io in
 * the vCPU thread's libev loop (the glue runs sw_loop_dispatch()).  A timer
 * read that comes in the same dispatch as the report still reaches the tick
 * callback, after the report's: it is owed, and paid right after the next
 * resume (unless the quantum ended).
 *
 * The callbacks only record; the vCPU serves, resumes, frees and detaches
 * after the wait, outside any dispatch (sw_stub_detach() is refused inside).
 */
struct dispatch_ctx {
	struct swu_vcpu *v;
	struct swu_mstub *ms; /* the stub of the quantum, NULL between quanta */
	bool done;            /* its completion arrived                       */
	struct sw_event ev;
	int (*wait)(struct dispatch_ctx *c); /* dispatch until done           */
#ifdef HAVE_LIBEV
	struct ev_loop *evloop;
	struct sw_ev *glue;
#endif
};

static int dispatch_on_event(struct sw_stub *sw, const struct sw_event *ev,
			     void *userdata)
{
	struct dispatch_ctx *c = userdata;

	(void)sw;
	c->ev = *ev;
	c->done = true;
	return 0;
}

static int dispatch_on_tick(struct sw_loop *loop, void *userdata)
{
	struct dispatch_ctx *c = userdata;

	(void)loop;
	if (c->ms)
		swu__vcpu_tick(c->v, c->ms, !c->done);
	return 0;
}

static int poll_wait(struct dispatch_ctx *c)
{
	struct sw_loop *loop = c->v->loop;
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	int r;

	if (pfd.fd < 0)
		return pfd.fd;
	while (!c->done) {
		r = poll(&pfd, 1, -1);
		if (r < 0 && errno != EINTR)
			return -errno;
		r = sw_loop_dispatch(loop);
		if (r < 0)
			return r;
	}
	return 0;
}

static int dispatch_quantum(struct swu_vcpu *v, struct dispatch_ctx *c,
			    struct swu_mstub *ms)
{
	struct sw_stub *sw = swu__mstub_sw(ms);
	int next = SWU_NEXT_RESUME, r;

	r = sw_stub_set_callback(sw, dispatch_on_event, c);
	if (r < 0)
		return r;
	c->ms = ms;
	swu__vcpu_quantum_begin(v, ms);
	for (;;) {
		c->done = false;
		if (next == SWU_NEXT_RESUME) {
			r = sw_stub_resume(sw);
			if (r < 0)
				break;
			swu__vcpu_resumed(v, ms);
		}
		r = c->wait(c);
		if (r < 0)
			break;
		next = swu__vcpu_event(v, ms, &c->ev);
		if (next < 0 || next == SWU_NEXT_SWITCH || next == SWU_NEXT_GONE)
			break;
	}
	c->ms = NULL;
	swu__vcpu_quantum_end(v);
	if (r < 0)
		return r;
	if (next == SWU_NEXT_SWITCH)
		sw_stub_set_callback(sw, NULL, NULL);
	return next;
}

static int callbacks_run(struct swu_vcpu *v, struct dispatch_ctx *c)
{
	struct swu_mstub *ms;
	int r;

	r = sw_loop_set_tick_callback(v->loop, dispatch_on_tick, c);
	while (r >= 0 && (ms = swu__vcpu_pick(v))) {
		r = dispatch_quantum(v, c, ms);
		if (r == SWU_NEXT_SWITCH)
			r = swu__vcpu_release(v, ms);
	}
	sw_loop_set_tick_callback(v->loop, NULL, NULL);
	return r < 0 ? r : 0;
}

static int dispatch_run(struct swu_vcpu *v)
{
	struct dispatch_ctx c = { .v = v, .wait = poll_wait };

	return callbacks_run(v, &c);
}

#ifdef HAVE_LIBEV
/* Iterations of the host's loop until the completion: libev polls, the
 * glue's ev_io fires, sw_loop_dispatch() runs the callbacks.  (A host that
 * runs ev_run(loop, 0) would ev_break() from the completion callback: the
 * same thing, with the condition spread over two places.) */
static int libev_wait(struct dispatch_ctx *c)
{
	bool watching;
	int r;

	while (!c->done) {
		watching = ev_run(c->evloop, EVRUN_ONCE);
		r = sw_ev_take_error(c->glue);
		if (r < 0)
			return r;
		/* the glue's ev_io is gone: nothing would wake us again */
		if (!watching && !c->done)
			return -ENOLINK;
	}
	return 0;
}

/* A libev loop per vCPU thread: ev_loop_new(), since ev_default_loop() is
 * one loop for the whole process (and takes SIGCHLD); EVFLAG_NOSIGMASK
 * because the vCPU thread keeps every signal blocked (they are the host's)
 * and libev has no signal watcher here to unblock one for. */
static int libev_run(struct swu_vcpu *v)
{
	struct dispatch_ctx c = { .v = v, .wait = libev_wait };
	int r;

	c.evloop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!c.evloop)
		return -ENOMEM;
	r = sw_ev_attach(v->loop, c.evloop, &c.glue);
	if (r == 0)
		r = callbacks_run(v, &c);
	/* before vcpu_cleanup() frees the stubwatch loop and its epoll fd */
	sw_ev_detach(c.glue);
	ev_loop_destroy(c.evloop);
	return r;
}
#endif

/* A driver this build lacks keeps its name (run NULL), so that asking for
 * it is told apart from asking for a driver that does not exist. */
static const struct swu_driver drivers[] = {
	{ "blocking", blocking_run },
	{ "dispatch", dispatch_run },
#ifdef HAVE_LIBEV
	{ "libev", libev_run },
#else
	{ "libev", NULL },
#endif
};

static const struct swu_driver *driver_find(const char *name)
{
	if (!name)
		return &drivers[0];
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(drivers[i].name, name) == 0)
			return &drivers[i];
	return NULL;
}

int swu_driver_check(const char *name)
{
	const struct swu_driver *d = driver_find(name);

	if (!d)
		return -EINVAL;
	return d->run ? 0 : -EOPNOTSUPP;
}

/* ---- vCPU threads ------------------------------------------------------- */

static int loop_opts(const struct swu_machine_opts *o, struct sw_loop_opts *lo)
{
	if (!o->preempt_ns || o->tick_ns % o->preempt_ns ||
	    o->tick_ns / o->preempt_ns < 2 ||
	    o->tick_ns / o->preempt_ns > SW_TIMER_DIV_MAX)
		return -EINVAL;
	memset(lo, 0, sizeof(*lo));
	lo->size = sizeof(*lo);
	lo->tick_ns = o->tick_ns;
	lo->stall_ticks = o->stall_ticks;
	lo->timer_div = (uint32_t)(o->tick_ns / o->preempt_ns);
	lo->flags = SW_LOOP_TICK_EVENTS |
		    (o->poll ? SW_LOOP_ADAPTIVE_POLL : 0);
	return 0;
}

static int vcpu_spawn_one(struct swu_vcpu *v, unsigned idx)
{
	struct swu_machine *m = v->m;
	struct swu_mstub *ms = &m->stubs[idx];
	struct swu_mevent e = { 0 };
	struct sw_kill_info why;
	struct swu_stub *s;
	int r;

	ms->prog = (struct swu_prog){ .kind = SWU_PROG_MIXED };
	if (m->o.plan)
		m->o.plan(v->id, idx, &ms->prog, m->o.userdata);
	r = swu__stub_spawn(v->loop, &ms->prog, 0, &s, &why);
	if (r == -ETIMEDOUT) {
		pthread_mutex_lock(&m->lock);
		if (!m->start_killed) {
			m->start_killed = true;
			m->start_kill_stub = idx;
			m->start_kill = why;
		}
		pthread_mutex_unlock(&m->lock);
	}
	if (r < 0)
		return r;
	ms->s = s;
	ms->pid = swu_stub_pid(s);
	ms->on_vcpu = (int)v->id;
	STORE(ms->last_report_ns, swu_now_ns()); /* its hello */
	STORE(ms->alive, true);
	__atomic_fetch_add(&v->spawned_alive, 1, __ATOMIC_RELAXED);

	e.type = SWU_ME_SPAWN;
	e.t_ns = swu_now_ns() - m->t0;
	e.vcpu = v->id;
	e.stub = idx;
	e.pid = ms->pid;
	e.prog = ms->prog;
	if (m->o.on_event)
		m->o.on_event(&e, m->o.userdata);
	return swu__vcpu_release(v, ms);
}

static int vcpu_setup(struct swu_vcpu *v)
{
	struct swu_machine *m = v->m;
	struct sw_loop_opts lo;
	unsigned spv = m->o.stubs_per_vcpu, base = m->o.vcpus * spv;
	int r;

	r = loop_opts(&m->o, &lo);
	if (r == 0)
		r = sw_loop_new(&lo, &v->loop);
	for (unsigned j = 0; r == 0 && j < spv; j++)
		r = vcpu_spawn_one(v, v->id * spv + j);
	for (unsigned j = 0; r == 0 && v->id == 0 && j < m->o.extra_stubs; j++)
		r = vcpu_spawn_one(v, base + j);
	return r;
}

/* After every vCPU has stopped scheduling: free the stubs attached to this
 * vCPU's loop, and the detached ones it spawned (their PDEATHSIG is tied
 * to this thread), then the loop. */
static void vcpu_cleanup(struct swu_vcpu *v)
{
	struct swu_machine *m = v->m;

	for (unsigned i = 0; i < m->nstubs; i++) {
		struct swu_mstub *ms = &m->stubs[i];

		if (!ms->s)
			continue;
		if (ms->on_vcpu == (int)v->id ||
		    (ms->on_vcpu < 0 && ms->home == v->id)) {
			/* `alive` stays: it was alive when the run ended */
			swu_stub_free(ms->s);
			ms->s = NULL;
		}
	}
	v->loop = sw_loop_free(v->loop);
}

static void *vcpu_main(void *arg)
{
	struct swu_vcpu *v = arg;
	struct swu_machine *m = v->m;
	sigset_t all;
	int r;

	/* Asynchronous signals are the host's (the demo's main thread). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	__atomic_store_n(&v->tid, gettid(), __ATOMIC_RELAXED);

	r = vcpu_setup(v);
	if (r < 0)
		vcpu_fail(v, r);
	pthread_mutex_lock(&m->lock);
	m->ready++;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);

	if (r == 0) {
		r = m->drv->run(v);
		if (r < 0)
			vcpu_fail(v, r);
	}
	STORE(v->running, -1);

	pthread_mutex_lock(&m->lock);
	m->finished++;
	pthread_cond_broadcast(&m->cond);
	while (m->finished < m->o.vcpus)
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);

	vcpu_cleanup(v);
	return NULL;
}

/* ---- public -------------------------------------------------------------- */

int swu_machine_new(const struct swu_machine_opts *opts,
		    struct swu_machine **ret)
{
	struct swu_machine *m;
	struct sw_loop_opts lo;
	struct sw_loop *probe;
	int r;

	if (!opts || !ret)
		return -EINVAL;
	if (opts->vcpus < 1 || opts->vcpus > 64 || opts->stubs_per_vcpu < 1 ||
	    opts->stubs_per_vcpu > 256 || opts->extra_stubs > 256 ||
	    !driver_find(opts->driver))
		return -EINVAL;
	if (!driver_find(opts->driver)->run)
		return -EOPNOTSUPP;
	if (!swu_supported())
		return -ENOSYS;
	r = loop_opts(opts, &lo);
	if (r < 0)
		return r;
	r = sw_loop_new(&lo, &probe); /* let the core judge T and N */
	if (r < 0)
		return r;
	sw_loop_free(probe);

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->o = *opts;
	m->drv = driver_find(opts->driver);
	m->nstubs = opts->vcpus * opts->stubs_per_vcpu + opts->extra_stubs;
	m->stubs = calloc(m->nstubs, sizeof(*m->stubs));
	m->vcpus = calloc(opts->vcpus, sizeof(*m->vcpus));
	m->rq = calloc(m->nstubs, sizeof(*m->rq));
	if (!m->stubs || !m->vcpus || !m->rq) {
		swu_machine_free(m);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < m->nstubs; i++) {
		unsigned base = opts->vcpus * opts->stubs_per_vcpu;

		m->stubs[i].idx = i;
		m->stubs[i].home = i < base ? i / opts->stubs_per_vcpu : 0;
		m->stubs[i].on_vcpu = -1;
	}
	for (unsigned i = 0; i < opts->vcpus; i++) {
		m->vcpus[i].m = m;
		m->vcpus[i].id = i;
		m->vcpus[i].running = -1;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	*ret = m;
	return 0;
}

int swu_machine_start(struct swu_machine *m)
{
	int r = 0;

	if (!m)
		return -EINVAL;
	if (m->started)
		return -EALREADY;
	m->started = true;
	m->t0 = swu_now_ns();
	for (unsigned i = 0; i < m->o.vcpus; i++) {
		r = -pthread_create(&m->vcpus[i].th, NULL, vcpu_main,
				    &m->vcpus[i]);
		if (r < 0) {
			/* the started ones must still meet at the barrier */
			pthread_mutex_lock(&m->lock);
			m->ready += m->o.vcpus - i;
			m->finished += m->o.vcpus - i;
			m->stop = true;
			pthread_cond_broadcast(&m->cond);
			pthread_mutex_unlock(&m->lock);
			break;
		}
		m->vcpus[i].th_started = true;
	}
	pthread_mutex_lock(&m->lock);
	while (m->ready < m->o.vcpus)
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	for (unsigned i = 0; r == 0 && i < m->o.vcpus; i++)
		r = LOAD(m->vcpus[i].error);
	if (r < 0)
		swu_machine_stop(m);
	return r;
}

int swu_machine_stop(struct swu_machine *m)
{
	int r = 0;

	if (!m)
		return -EINVAL;
	if (!m->started || m->joined)
		goto out;
	request_stop(m);
	for (unsigned i = 0; i < m->o.vcpus; i++)
		if (m->vcpus[i].th_started)
			pthread_join(m->vcpus[i].th, NULL);
	m->joined = true;
out:
	for (unsigned i = 0; r == 0 && i < m->o.vcpus; i++)
		r = LOAD(m->vcpus[i].error);
	return r;
}

struct swu_machine *swu_machine_free(struct swu_machine *m)
{
	if (!m)
		return NULL;
	swu_machine_stop(m);
	if (m->vcpus) {
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cond);
	}
	free(m->rq);
	free(m->vcpus);
	free(m->stubs);
	free(m);
	return NULL;
}

int swu_machine_start_kill(struct swu_machine *m, unsigned *ret_stub,
			   struct sw_kill_info *ret)
{
	int r = -ENOENT;

	if (!m || !ret_stub || !ret)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (m->start_killed) {
		*ret_stub = m->start_kill_stub;
		*ret = m->start_kill;
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int swu_machine_request_stop(struct swu_machine *m)
{
	if (!m)
		return -EINVAL;
	request_stop(m);
	return 0;
}

unsigned swu_machine_running(const struct swu_machine *m)
{
	struct swu_machine *mm = (struct swu_machine *)m;
	unsigned n;

	if (!m || !m->started)
		return 0;
	pthread_mutex_lock(&mm->lock);
	n = m->o.vcpus - m->finished;
	pthread_mutex_unlock(&mm->lock);
	return n;
}

unsigned swu_machine_nstubs(const struct swu_machine *m)
{
	return m ? m->nstubs : 0;
}

unsigned swu_machine_nvcpus(const struct swu_machine *m)
{
	return m ? m->o.vcpus : 0;
}

uint64_t swu_machine_elapsed_ns(const struct swu_machine *m)
{
	return m && m->started ? swu_now_ns() - m->t0 : 0;
}

int swu_machine_vcpu_stats(const struct swu_machine *m, unsigned vcpu,
			   struct swu_vcpu_stats *ret)
{
	const struct swu_vcpu *v;
	int run;

	if (!m || !ret || vcpu >= m->o.vcpus)
		return -EINVAL;
	v = &m->vcpus[vcpu];
	memset(ret, 0, sizeof(*ret));
	ret->handshakes = LOAD(v->handshakes);
	ret->syscalls = LOAD(v->syscalls);
	ret->preempts = LOAD(v->preempts);
	ret->quanta = LOAD(v->quanta);
	ret->kills = LOAD(v->kills);
	ret->exits = LOAD(v->exits);
	ret->spawned_alive = LOAD(v->spawned_alive);
	ret->error = LOAD(v->error);
	ret->tid = LOAD(v->tid);
	run = LOAD(v->running);
	ret->running_stub = run;
	if (run >= 0 && (unsigned)run < m->nstubs) {
		const struct swu_mstub *ms = &m->stubs[run];
		uint64_t since = LOAD(ms->last_report_ns), now = swu_now_ns();

		if (LOAD(ms->quantum_ns) > since)
			since = LOAD(ms->quantum_ns);
		ret->running_silent_ns = now > since ? now - since : 0;
	}
	return 0;
}

int swu_machine_stub_stats(const struct swu_machine *m, unsigned stub,
			   struct swu_stub_stats *ret)
{
	const struct swu_mstub *ms;
	uint64_t last;

	if (!m || !ret || stub >= m->nstubs)
		return -EINVAL;
	ms = &m->stubs[stub];
	memset(ret, 0, sizeof(*ret));
	/* pid and prog are final once swu_machine_start() has returned */
	ret->pid = ms->pid;
	ret->home_vcpu = ms->home;
	ret->prog = ms->prog;
	ret->alive = LOAD(ms->alive);
	ret->handshakes = LOAD(ms->handshakes);
	last = LOAD(ms->last_report_ns);
	ret->last_report_ns = last > m->t0 ? last - m->t0 : 0;
	return 0;
}
