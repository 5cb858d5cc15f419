// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A vCPU's quantum: the machine's side of the driver interface (priv.h).
 * The shared run queue (a stub is picked and attached to the vCPU's loop,
 * runs one quantum and is put back), the preemption ticks, serving a
 * completed wait, and the end of a stub.  Every driver takes these steps;
 * what differs between drivers is only how they wait (drivers.c).
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
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "machine.h"

/* ---- the shared run queue ---------------------------------------------- */

static void rq_push_locked(struct swu_machine *m, struct swu_mstub *ms)
{
	m->rq[(m->rq_head + m->rq_len) % m->nstubs] = ms;
	m->rq_len++;
	pthread_cond_signal(&m->cond);
}

void swu__request_stop(struct swu_machine *m)
{
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

void swu__vcpu_fail(struct swu_vcpu *v, int err)
{
	if (!LOAD(v->error))
		STORE(v->error, err);
	swu__request_stop(v->m);
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
			swu__vcpu_fail(v, r);
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
