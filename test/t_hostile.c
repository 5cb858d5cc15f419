/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hostile stubs.  A stub shares the open file description of its report
 * eventfd with its monitor, owns the whole of its page, can hand its own
 * zombie to a tracer, and with SW_SPAWN_KEEP_FDS keeps the fds an exec
 * would keep.  Whatever it does with these, a wait on it ends on time, in
 * REPORT, EXIT or KILL, and the loop goes on.
 *
 *   flood_drain   the stub clears O_NONBLOCK on its eventfd, floods it
 *                 until the loop mutes it, drains the counter itself and
 *                 stalls: the loop's next look at the muted eventfd must not
 *                 block on the empty counter;
 *   saturate      it fills the counter to its maximum, so that its report's
 *                 eventfd write fails (or blocks), then reports;
 *   close_report  it closes its eventfd (or puts /dev/null on its number,
 *                 or just never writes it), then reports, or stalls: the
 *                 report is taken from the state word by its deadline;
 *   scribble      it overwrites the whole page header, then writes its
 *                 eventfd;
 *   traced_*      a child of the stub PTRACE_SEIZEs it, then never waits:
 *                 the stub's zombie is visible only to its tracer (the pidfd
 *                 is readable, waitid() finds nothing) until the tracer dies;
 *   keep_fds_*    a SW_SPAWN_KEEP_FDS stub finds only the fds an exec would
 *                 keep, plus its report eventfd: none of the loops' own fds
 *                 nor other stubs' fds, so it cannot disarm a loop's timer or
 *                 take fds out of its epoll set.
 *
 * Every case runs with fn-mode and exec-mode stubs, and with three drivers:
 * the blocking sw_stub_resume() and sw_stub_wait(), "+run" sw_stub_run()
 * (whose wait looks at the state word before it sleeps, and tells the stub
 * the monitor is awake), and "+dispatch" sw_loop_dispatch() from a poll()
 * host.
 *
 * Timing, with T = 50 ms and N = 4: a stall kill comes no earlier than N*T
 * after t0 (taken just before the resume), and no later than (N+1)*T after
 * t1 (taken just after it) plus the lateness the kill reports: the
 * monitor's own (monitor_late_ns) and the stub's time waiting for a CPU
 * (starved_ns).  A wait that ends in REPORT or EXIT returns by (N+1)*T after
 * t1 plus what was measured to delay it: twice the loop's worst timer
 * lateness (sw_loop_get_stats(); the first read after the resume and the one
 * that looks may both be late), the stub's and the monitor thread's waits
 * for a CPU (/proc schedstat).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t_util.h"

#define H_TICK_NS (50 * T_MS)
#define H_N       4u
#define H_NT      ((uint64_t)H_N * H_TICK_NS)
#define H_N1T     ((uint64_t)(H_N + 1) * H_TICK_NS)
/* How long a wait may take before the poll() host gives up on it: far past
 * any bound, only so that a lost completion fails with a message. */
#define H_HANG_NS (10000 * T_MS)

#define H_ROLE "hostile"
#define H_MAX_FDS 64
/* The state word a scribbling stub leaves: neither IN_KERN nor IN_CHILD. */
#define H_GARBAGE_STATE 0xa55a5aa5u

/* Case parameters: the spawn mode in bit 0, the driver above it: the
 * blocking sw_stub_resume() then sw_stub_wait() by default, sw_stub_run()
 * (its fast path looks at the state word before it sleeps), or
 * sw_loop_dispatch() from a poll() host, with callbacks. */
#define H_RUN      ((intptr_t)0x100)
#define H_DISPATCH ((intptr_t)0x200)
#define H_MODE(param) ((param) & 1)
#define H_DRIVER(param) ((param) & (H_RUN | H_DISPATCH))

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* ---- the hostile stub: async-signal-safe calls only --------------------- */

enum h_act {
	H_FLOOD_DRAIN = 1, /* clear O_NONBLOCK, flood until muted, drain, stall */
	H_SATURATE,        /* counter to its maximum, then report             */
	H_SATURATE_BLOCK,  /* the same with O_NONBLOCK cleared: the report's
			      write blocks in the stub                         */
	H_CLOSE_REPORT,    /* close the report fd, then report                */
	H_DEVNULL_REPORT,  /* /dev/null on the report fd's number, report     */
	H_CLOSE_STALL,     /* close the report fd, then stall                 */
	H_MUTE_REPORT,     /* state IN_KERN, no eventfd write, wait to resume */
	H_SCRIBBLE,        /* garbage header (state H_GARBAGE_STATE), write   */
	H_SCRIBBLE_IN_CHILD, /* garbage header with state IN_CHILD, write     */
	H_TRACED_EXIT,     /* a child tracer; at the next resume exit 7       */
	H_TRACED_STALL,    /* a child tracer; at the next resume stall        */
	H_LIST_FDS,        /* list its fds, report; at the next resume exit 0 */
	H_ATTACK,          /* report; at the next resume attack every fd it
			      has (timerfd_settime, EPOLL_CTL_DEL), stall     */
};

/* What the stub tells, in its payload. */
struct h_pl {
	uint32_t tracer_ready; /* futex word: the tracer has tried to attach */
	int32_t tracer;        /* its pid                                     */
	int32_t seize_err;     /* 0, or PTRACE_SEIZE's errno                  */
	int32_t err;           /* the first unexpected errno (0: none)        */
	uint32_t writes;       /* flood: eventfd writes made                  */
	uint32_t restarts;     /* flood: bursts the monitor cut short         */
	uint64_t drained;      /* flood: the count its own read() took        */
	uint32_t nfds;         /* fds listed                                  */
	uint32_t overflow;     /* more than H_MAX_FDS                         */
	int32_t fds[H_MAX_FDS];
	uint32_t timer_hits;   /* attack: timerfd_settime() calls that worked */
	uint32_t epoll_hits;   /* attack: EPOLL_CTL_DEL calls that worked     */
};

static struct h_pl *h_pl_of(struct sw_page *page)
{
	return (struct h_pl *)sw_page_payload(page);
}

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static void h_note_err(struct h_pl *p, int e)
{
	if (!LOAD(&p->err))
		STORE(&p->err, e ? e : -1);
}

static __attribute__((noreturn)) void h_sleep_forever(void)
{
	uint32_t word = 0;

	for (;;)
		syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

/* Is the eventfd's counter non-zero?  (Looks without taking it.) */
static bool h_counter_set(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/*
 * Flood, drain, stall.  The loop mutes an eventfd after 8 writes without a
 * report and, at its next timer read, drains the counter before it listens
 * again.  The stub wants that drain to meet an empty counter on a blocking
 * file: it writes until it has made 12 writes, each seen on its own (a nap
 * between them), since the monitor last drained the counter (it can tell:
 * the counter is empty again), so the monitor has muted it; then it takes
 * the counter itself and stalls.
 */
static __attribute__((noreturn)) void h_flood_drain(struct h_pl *p, int rfd)
{
	static const uint64_t one = 1;
	uint32_t writes = 0, run = 0, restarts = 0;
	uint64_t count = 0;

	if (fcntl(rfd, F_SETFL, 0) < 0)
		h_note_err(p, errno);
	while (writes < 4000) {
		if (writes && !h_counter_set(rfd)) {
			/* the monitor drained it: it listens again */
			if (run)
				restarts++;
			run = 0;
		}
		if (run >= 12 && writes >= 20)
			break;
		if (write(rfd, &one, sizeof(one)) != sizeof(one))
			h_note_err(p, errno);
		writes++;
		run++;
		t_sleep_ns(150 * 1000);
	}
	STORE(&p->writes, writes);
	STORE(&p->restarts, restarts);
	/* blocks (a stall all the same) only if the monitor drained it since
	 * the look above */
	if (read(rfd, &count, sizeof(count)) != sizeof(count))
		h_note_err(p, errno);
	STORE(&p->drained, count);
	h_sleep_forever();
}

/* Fill the counter to its maximum (0xfffffffffffffffe): the stub's next
 * write of 1 fails with EAGAIN, or blocks once O_NONBLOCK is cleared. */
static void h_saturate(struct h_pl *p, int rfd, bool block)
{
	uint64_t v;

	/* what its own reports left there: the monitor never reads it */
	if (read(rfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		h_note_err(p, errno);
	v = 0xfffffffffffffffeull;
	if (write(rfd, &v, sizeof(v)) != sizeof(v))
		h_note_err(p, errno);
	if (block && fcntl(rfd, F_SETFL, 0) < 0)
		h_note_err(p, errno);
}

static __attribute__((noreturn)) void h_scribble(struct sw_page *page,
						 int rfd, uint32_t state)
{
	static const uint64_t one = 1;
	volatile uint8_t *b = (volatile uint8_t *)page;
	uint32_t x = 0x9e3779b9u;
	size_t i;

	for (i = 0; i < SW_PAGE_PAYLOAD; i++) {
		x = x * 1103515245u + 12345u;
		/* the state word last, and only once: no transient value */
		if (i < offsetof(struct sw_page, state) ||
		    i >= offsetof(struct sw_page, state) + sizeof(page->state))
			b[i] = (uint8_t)(x >> 16);
	}
	__atomic_store_n(&page->state, state, __ATOMIC_SEQ_CST);
	if (write(rfd, &one, sizeof(one)) != sizeof(one))
		h_note_err(h_pl_of(page), errno);
	h_sleep_forever();
}

/* /proc/self/fd with raw open and getdents64, into p->fds. */
static void h_list_fds(struct h_pl *p)
{
	union {
		char buf[2048];
		uint64_t align;
	} u;
	uint32_t n = 0;
	long len, off;
	int dfd;

	dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		h_note_err(p, errno);
		return;
	}
	while ((len = syscall(SYS_getdents64, dfd, u.buf, sizeof(u.buf))) > 0) {
		for (off = 0; off < len;) {
			/* struct linux_dirent64: ino, off, reclen, type, name */
			unsigned short reclen;
			const char *name = u.buf + off + 19;
			int fd = 0;

			memcpy(&reclen, u.buf + off + 16, sizeof(reclen));
			off += reclen;
			if (name[0] < '0' || name[0] > '9')
				continue;
			for (; *name >= '0' && *name <= '9'; name++)
				fd = fd * 10 + (*name - '0');
			if (fd == dfd)
				continue;
			if (n < H_MAX_FDS)
				p->fds[n++] = fd;
			else
				STORE(&p->overflow, 1);
		}
	}
	if (len < 0)
		h_note_err(p, errno);
	close(dfd);
	STORE(&p->nfds, n);
}

/* Try to take every fd it has away from whoever watches it. */
static void h_attack(struct h_pl *p)
{
	struct itimerspec zero;
	uint32_t i, j, n = LOAD(&p->nfds), timer_hits = 0, epoll_hits = 0;

	memset(&zero, 0, sizeof(zero));
	for (i = 0; i < n; i++) {
		if (syscall(SYS_timerfd_settime, p->fds[i], 0, &zero, NULL) == 0)
			timer_hits++;
		for (j = 0; j < n; j++)
			if (syscall(SYS_epoll_ctl, p->fds[i], EPOLL_CTL_DEL,
				    p->fds[j], NULL) == 0)
				epoll_hits++;
	}
	STORE(&p->timer_hits, timer_hits);
	STORE(&p->epoll_hits, epoll_hits);
}

/*
 * A child of the stub attaches to it with PTRACE_SEIZE, says so in the
 * page, and sleeps for ever without ever calling wait: when the stub dies,
 * its zombie is for the tracer to reap, not for the monitor.
 */
static void h_start_tracer(struct h_pl *p)
{
	long pid, r;

	/* Yama's ptrace_scope 1 lets only ancestors attach, unless named */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	pid = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	if (pid < 0) {
		STORE(&p->seize_err, errno);
		STORE(&p->tracer_ready, 1);
		return;
	}
	if (pid == 0) {
		r = syscall(SYS_ptrace, PTRACE_SEIZE, (long)getppid(), 0L, 0L);
		STORE(&p->tracer, (int32_t)syscall(SYS_getpid));
		STORE(&p->seize_err, r < 0 ? errno : 0);
		STORE(&p->tracer_ready, 1);
		syscall(SYS_futex, &p->tracer_ready, FUTEX_WAKE, 1, NULL, NULL, 0);
		h_sleep_forever();
	}
	while (!LOAD(&p->tracer_ready))
		syscall(SYS_futex, &p->tracer_ready, FUTEX_WAIT, 0, NULL, NULL, 0);
}

/* Every hostile act starts from one round trip: a first report, then the
 * act at the next resume (so it is timed from a resume), except the fd
 * listing, which is the spawn's state and goes with the first report. */
static int h_role(struct sw_page *page, void *arg)
{
	enum h_act act = (enum h_act)(uintptr_t)arg;
	struct h_pl *p = h_pl_of(page);
	int rfd = page->report_fd;

	if (act == H_LIST_FDS || act == H_ATTACK)
		h_list_fds(p);
	if (act == H_TRACED_EXIT || act == H_TRACED_STALL)
		h_start_tracer(p);
	sw_stub_handshake(page);

	switch (act) {
	case H_FLOOD_DRAIN:
		h_flood_drain(p, rfd);
	case H_SATURATE:
	case H_SATURATE_BLOCK:
		h_saturate(p, rfd, act == H_SATURATE_BLOCK);
		break;
	case H_CLOSE_REPORT:
	case H_CLOSE_STALL:
		if (close(rfd) < 0)
			h_note_err(p, errno);
		if (act == H_CLOSE_STALL)
			h_sleep_forever();
		break;
	case H_DEVNULL_REPORT: {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (fd < 0 || dup2(fd, rfd) < 0)
			h_note_err(p, errno);
		if (fd >= 0)
			close(fd);
		break;
	}
	case H_MUTE_REPORT:
		/* a report the monitor is not woken for */
		STORE(&page->state, SW_STATE_IN_KERN);
		sw_stub_wait_resume(page);
		return 0; /* exit at the next resume */
	case H_SCRIBBLE:
		h_scribble(page, rfd, H_GARBAGE_STATE);
	case H_SCRIBBLE_IN_CHILD:
		h_scribble(page, rfd, SW_STATE_IN_CHILD);
	case H_TRACED_EXIT:
		/* _exit: under a tracer a sanitizer's exit-time leak check
		 * refuses to run and changes the status */
		_exit(7);
	case H_TRACED_STALL:
		h_sleep_forever();
	case H_LIST_FDS:
		return 0;
	case H_ATTACK:
		h_attack(p);
		h_sleep_forever();
	}
	/* the acts that end in a report: report (its wake-up may go nowhere),
	 * then exit at the next resume */
	sw_stub_handshake(page);
	return 0;
}

/* "/proc/self/exe --stub hostile ACT": the exec-mode stub. */
static int h_exec_stub(const char *arg)
{
	struct sw_page *page = NULL;

	if (sw_stub_map(SW_EXEC_PAGE_FD, &page) < 0)
		return T_STUB_ERR_MAP;
	return h_role(page, (void *)(uintptr_t)strtoull(arg, NULL, 0));
}

/* ---- the monitor's drivers ----------------------------------------------- */

/* A stub and how its round trips are driven (H_RUN, H_DISPATCH or 0). */
struct h_stub {
	struct sw_loop *loop;
	struct sw_stub *s;
	intptr_t driver;
	uint64_t req;       /* echo stubs: the last request */
	bool done;          /* dispatch: the callback ran   */
	uint64_t at;
	struct sw_event ev;
};

static int h_on_done(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct h_stub *h = ud;

	(void)s;
	h->done = true;
	h->at = t_now_ns();
	h->ev = *ev;
	return 0;
}

static void h_adopt(struct h_stub *h, struct sw_loop *loop,
		    struct sw_stub *s, intptr_t param)
{
	memset(h, 0, sizeof(*h));
	h->loop = loop;
	h->s = s;
	h->driver = H_DRIVER(param);
	/* before any wait or dispatch, so no completion can miss it */
	if (h->driver == H_DISPATCH)
		t_assert_rc(sw_stub_set_callback(s, h_on_done, h), 0);
}

/* Wait for the stub's next completion; *t_end: when the wait returned (or
 * the callback ran). */
static int h_wait(struct h_stub *h, struct sw_event *ev, uint64_t *t_end)
{
	struct pollfd pfd = { .events = POLLIN };
	uint64_t end = t_now_ns() + H_HANG_NS;
	int rc;

	memset(ev, 0, sizeof(*ev));
	if (h->driver != H_DISPATCH) {
		rc = sw_stub_wait(h->s, ev);
		*t_end = t_now_ns();
		return rc;
	}
	pfd.fd = sw_loop_get_fd(h->loop);
	t_assert(pfd.fd >= 0);
	while (!h->done) {
		rc = poll(&pfd, 1, 20);
		t_assert_msg(rc >= 0 || errno == EINTR, "poll: %s",
			     strerror(errno));
		if (rc > 0) {
			rc = sw_loop_dispatch(h->loop);
			t_assert_msg(rc >= 0, "sw_loop_dispatch: %s",
				     t_errname(rc));
		}
		t_assert_msg(t_now_ns() < end, "no completion within %.0f ms",
			     ms(H_HANG_NS));
	}
	h->done = false;
	*ev = h->ev;
	*t_end = h->at;
	return ev->type;
}

/* Resume the stub and wait for its completion, the driver's way.  *t0 and
 * *t1: just before and just after the resume (with sw_stub_run(), which
 * returns only with the completion, both before it); *t_end: when the wait
 * returned (or the callback ran). */
static int h_go(struct h_stub *h, struct sw_event *ev, uint64_t *t0,
		uint64_t *t1, uint64_t *t_end)
{
	int rc;

	*t0 = t_now_ns();
	if (h->driver == H_RUN) {
		memset(ev, 0, sizeof(*ev));
		*t1 = *t0;
		rc = sw_stub_run(h->s, ev);
		*t_end = t_now_ns();
		return rc;
	}
	t_assert_rc(sw_stub_resume(h->s), 0);
	*t1 = t_now_ns();
	return h_wait(h, ev, t_end);
}

static struct sw_loop *h_loop(void)
{
	return t_loop_opts(H_TICK_NS, H_N, 0, 0);
}

static void h_spawn(struct h_stub *h, struct sw_loop *loop, intptr_t param,
		    enum h_act act, unsigned flags)
{
	char argbuf[32];
	char *argv[] = { "/proc/self/exe", "--stub", H_ROLE, argbuf, NULL };
	struct sw_spawn_opts o = { .size = sizeof(o), .flags = flags };
	struct sw_stub *s = NULL;
	int rc;

	if (H_MODE(param) == T_FN && T_TSAN)
		t_skip("fn-mode stubs are not supported under ThreadSanitizer");
	if (H_MODE(param) == T_FN) {
		o.fn = h_role;
		o.arg = (void *)(uintptr_t)act;
	} else {
		snprintf(argbuf, sizeof(argbuf), "%d", (int)act);
		o.path = "/proc/self/exe";
		o.argv = argv;
	}
	rc = sw_stub_spawn(loop, &o, &s);
	if (rc == -ENOSYS)
		t_skip("no clone3 or pidfd here (an old kernel, or valgrind)");
	t_assert_rc(rc, 0);
	h_adopt(h, loop, s, param);
}

/* Spawn a hostile stub and take its first report. */
static void h_spawn_ready(struct h_stub *h, struct sw_loop *loop,
			  intptr_t param, enum h_act act, unsigned flags)
{
	struct sw_event ev;
	uint64_t t_end;
	int rc;

	h_spawn(h, loop, param, act, flags);
	rc = h_wait(h, &ev, &t_end);
	if (rc != SW_EV_REPORT)
		t_note_event(rc, &ev);
	t_assert_rc(rc, SW_EV_REPORT);
}

static void h_spawn_echo(struct h_stub *h, struct sw_loop *loop,
			 intptr_t param)
{
	struct sw_event ev;
	uint64_t t_end;

	h_adopt(h, loop, t_spawn(loop, H_MODE(param), "echo", 0), param);
	t_assert_rc(h_wait(h, &ev, &t_end), SW_EV_REPORT);
	t_assert_eq(t_pl(h->s)->ack, 1);
}

/* One echo round trip; the stub answers after delay_ns. */
static void h_roundtrip(struct h_stub *h, uint64_t delay_ns)
{
	struct t_payload *p = t_pl(h->s);
	struct sw_event ev;
	uint64_t t0, t1, t_end;
	int rc;

	p->delay_ns = delay_ns;
	p->req = ++h->req;
	rc = h_go(h, &ev, &t0, &t1, &t_end);
	if (rc != SW_EV_REPORT)
		t_note_event(rc, &ev);
	t_assert_rc(rc, SW_EV_REPORT);
	t_assert_eq(__atomic_load_n(&p->ack, __ATOMIC_ACQUIRE), h->req + 1);
}

/* Ask an echo stub to exit 0, see its EXIT, free it. */
static void h_stop(struct h_stub *h)
{
	struct sw_event ev;
	uint64_t t0, t1, t_end;
	int rc;

	t_pl(h->s)->req = T_REQ_STOP;
	rc = h_go(h, &ev, &t0, &t1, &t_end);
	if (rc != SW_EV_EXIT)
		t_note_event(rc, &ev);
	t_assert_rc(rc, SW_EV_EXIT);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 0);
	t_assert(sw_stub_free(h->s) == NULL);
	h->s = NULL;
}

/* After a hostile stub: the same loop serves a new one. */
static void h_serve_new(struct sw_loop *loop, intptr_t param)
{
	struct h_stub h;
	unsigned i;

	h_spawn_echo(&h, loop, param);
	for (i = 0; i < 50; i++)
		h_roundtrip(&h, 0);
	h_stop(&h);
}

/* ---- bounds -------------------------------------------------------------- */

/* Start the loop's lateness figures afresh, just before a timed resume. */
static void h_stats_reset(struct sw_loop *loop)
{
	struct sw_loop_stats st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	t_assert_rc(sw_loop_get_stats(loop, &st, 1), 0);
}

static uint64_t h_since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/* A timed resume: the clock around it, and the baselines of what may delay
 * the wait's end without the watchdog breaking its bound. */
struct h_times {
	pid_t pid;
	uint64_t t0, t1;     /* just before and just after the resume        */
	uint64_t t_end;      /* the wait returned (or the callback ran)      */
	uint64_t stub_wait0; /* the stub's run-queue wait at t0              */
	uint64_t mon_wait0;  /* this thread's run-queue wait at t0           */
};

static int h_timed_go(struct h_stub *h, struct h_times *tm,
		      struct sw_event *ev)
{
	memset(tm, 0, sizeof(*tm));
	tm->pid = sw_stub_pid(h->s);
	h_stats_reset(h->loop);
	tm->stub_wait0 = t_run_delay_of(tm->pid);
	tm->mon_wait0 = t_run_delay_ns();
	return h_go(h, ev, &tm->t0, &tm->t1, &tm->t_end);
}

/*
 * How late a wait that ended in REPORT or EXIT may end past (N+1)*T, from
 * what was measured (src/watchdog.h): the lateness of the first timer read
 * after the resume and of the read that found the report, each at most the
 * loop's worst; the periods a read found beyond one tick, if a read was
 * that late; the stub's own wait for a CPU, which the watchdog credits it
 * with (at most N*T) before it looks; and this thread's wait for a CPU
 * after the look, before the wait returned.  Before the loop measured its
 * lateness: a fixed slack.
 */
static uint64_t h_end_allowance(struct sw_loop *loop, const struct h_times *tm)
{
	struct sw_loop_opts o = { .size = sizeof(o) };
	struct sw_loop_stats st;
	uint64_t period, dropped = 0, starved, mon_wait;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	t_assert_rc(sw_loop_get_stats(loop, &st, 0), 0);
	t_assert_rc(sw_loop_get_opts(loop, &o), 0);
	period = o.tick_ns / o.timer_div;
	/* only a read a whole tick late finds more than a tick's periods */
	if (st.max_late_ns >= o.tick_ns) {
		uint64_t grid = (tm->t_end - tm->t0) / period + 2;

		dropped = grid > st.timer_periods
				  ? (grid - st.timer_periods) * period : 0;
	}
	starved = h_since(t_run_delay_of(tm->pid), tm->stub_wait0);
	if (starved > H_NT)
		starved = H_NT;
	mon_wait = h_since(t_run_delay_ns(), tm->mon_wait0);
	t_note("loop: %" PRIu64 " timer reads, %" PRIu64 " periods, max late "
	       "%.2f ms, max gap %.2f ms; stub waited %.2f ms for a CPU, "
	       "monitor %.2f ms", (uint64_t)st.timer_reads,
	       (uint64_t)st.timer_periods, ms(st.max_late_ns),
	       ms(st.max_gap_ns), ms(starved), ms(mon_wait));
	return 2 * st.max_late_ns + dropped + starved + mon_wait;
}

/*
 * A kill: for a stall, never before N*T after t0; always by (N+1)*T after
 * t1 plus the lateness the kill reports (the monitor's own and the stub's
 * wait for a CPU).
 */
static void h_assert_kill_time(const char *what, const struct sw_event *ev,
			       const struct h_times *tm)
{
	bool stall = ev->kill.reason == SW_KILL_STALL;
	uint64_t at = ev->kill.killed_at_ns;
	uint64_t late = ev->kill.monitor_late_ns + ev->kill.starved_ns;

	t_note("%s: killed %.2f ms after the resume, seen %.2f ms later; "
	       "monitor late %.2f ms, stub starved %.2f ms", what,
	       ms(at - tm->t1), ms(tm->t_end - at),
	       ms(ev->kill.monitor_late_ns), ms(ev->kill.starved_ns));
	t_assert_msg(at != 0 && at <= tm->t_end,
		     "%s: killed_at_ns %" PRIu64 " is not before the wait's "
		     "end %" PRIu64, what, at, tm->t_end);
	if (stall)
		t_assert_msg((int64_t)(at - tm->t0) >= (int64_t)H_NT,
			     "%s: killed %.3f ms after the resume, before "
			     "N*T = %.0f ms", what, ms(at - tm->t0), ms(H_NT));
	t_assert_msg((int64_t)(at - tm->t1) <= (int64_t)(H_N1T + late),
		     "%s: killed %.3f ms after the resume, past (N+1)*T = "
		     "%.0f ms + %.3f ms late", what, ms(at - tm->t1), ms(H_N1T),
		     ms(late));
}

/* A wait that ended in REPORT or EXIT: by (N+1)*T after t1 plus what was
 * measured to delay it. */
static void h_assert_end_time(const char *what, struct sw_loop *loop,
			      const struct h_times *tm)
{
	uint64_t late = h_end_allowance(loop, tm);

	t_note("%s: the wait ended %.2f ms after the resume", what,
	       ms(tm->t_end - tm->t1));
	t_assert_msg(tm->t_end - tm->t1 <= H_N1T + late,
		     "%s: the wait ended %.3f ms after the resume, past "
		     "(N+1)*T = %.0f ms + %.3f ms late", what,
		     ms(tm->t_end - tm->t1), ms(H_N1T), ms(late));
}

static void h_assert_killed(const struct sw_event *ev, pid_t pid,
			    enum sw_kill_reason reason)
{
	t_assert_eq(ev->type, SW_EV_KILL);
	t_assert_msg(ev->kill.reason == reason, "killed for %s, not %s",
		     t_reason_name(ev->kill.reason), t_reason_name(reason));
	t_assert_eq(ev->kill.pid, pid);
	t_assert(WIFSIGNALED(ev->status) && WTERMSIG(ev->status) == SIGKILL);
}

/* The stub reported no unexpected error of its own. */
static void h_assert_no_stub_err(struct h_stub *h)
{
	int32_t e = LOAD(&h_pl_of(sw_stub_page(h->s))->err);

	t_assert_msg(e == 0, "the stub's own calls failed: %s",
		     e > 0 ? strerror(e) : "?");
}

/* ---- A: nothing the monitor does on a stub's objects may block ----------- */

/* Resume the stub into its act, wait, and check the outcome is one of
 * `allowed` (bits of 1 << SW_EV_*) within the bounds. */
static int h_act_and_time(struct h_stub *h, const char *what, unsigned allowed,
			  struct sw_event *ev)
{
	struct h_times tm;
	int rc;

	rc = h_timed_go(h, &tm, ev);
	t_note_event(rc, ev);
	t_assert_msg(rc > 0 && (allowed & (1u << rc)),
		     "%s: the wait returned %s", what, t_ev_name(rc));
	if (rc == SW_EV_KILL) {
		t_assert_eq(ev->kill.pid, tm.pid);
		h_assert_kill_time(what, ev, &tm);
	} else {
		h_assert_end_time(what, h->loop, &tm);
	}
	return rc;
}

/* (1) O_NONBLOCK cleared, flood until muted, drain, stall: killed on
 * time, the loop's look at the muted eventfd does not block. */
static void case_flood_drain(intptr_t param)
{
	struct sw_loop *loop = h_loop();
	struct h_stub h;
	struct h_pl *p;
	struct sw_event ev;

	h_spawn_ready(&h, loop, param, H_FLOOD_DRAIN, 0);
	p = h_pl_of(sw_stub_page(h.s));
	h_act_and_time(&h, "flood, drain, stall", 1u << SW_EV_KILL, &ev);
	h_assert_killed(&ev, ev.kill.pid, SW_KILL_STALL);
	/* a count of 0: the monitor drained it between the stub's look and
	 * its read(), which then blocked; a stall all the same */
	t_note("the stub made %u eventfd writes (%u bursts cut short by a "
	       "drain), then took a count of %" PRIu64 " itself",
	       LOAD(&p->writes), LOAD(&p->restarts), LOAD(&p->drained));
	h_assert_no_stub_err(&h);
	t_assert(LOAD(&p->writes) >= 20);
	t_assert(sw_stub_free(h.s) == NULL);
	h_serve_new(loop, param);
	t_assert(sw_loop_free(loop) == NULL);
}

/* (2) The counter at its maximum: the report's eventfd write fails
 * (O_NONBLOCK) or blocks in the stub; the wait still ends on time. */
static void case_saturate(intptr_t param)
{
	static const struct {
		enum h_act act;
		const char *what;
	} v[] = {
		{ H_SATURATE, "counter saturated, report" },
		{ H_SATURATE_BLOCK, "counter saturated, O_NONBLOCK cleared, "
				    "report" },
	};
	struct sw_loop *loop = h_loop();
	struct sw_event ev;
	struct h_stub h;
	unsigned i;
	int rc;

	for (i = 0; i < T_NCASES(v); i++) {
		h_spawn_ready(&h, loop, param, v[i].act, 0);
		rc = h_act_and_time(&h, v[i].what,
				    1u << SW_EV_REPORT | 1u << SW_EV_KILL, &ev);
		if (rc == SW_EV_KILL)
			h_assert_killed(&ev, ev.kill.pid, SW_KILL_STALL);
		else
			t_assert_eq(sw_stub_page(h.s)->state,
				    SW_STATE_IN_KERN);
		h_assert_no_stub_err(&h);
		t_assert(sw_stub_free(h.s) == NULL);
		h_serve_new(loop, param);
	}
	t_assert(sw_loop_free(loop) == NULL);
}

/* (3) The report fd closed or replaced, or no eventfd write at all: the
 * report is found in the state word by the watchdog, at the latest at the
 * stub's deadline, and taken, not killed; a stall is still killed. */
static void case_close_report(intptr_t param)
{
	static const struct {
		enum h_act act;
		const char *what;
	} v[] = {
		{ H_CLOSE_REPORT, "report fd closed, report" },
		{ H_DEVNULL_REPORT, "/dev/null on the report fd, report" },
		{ H_MUTE_REPORT, "IN_KERN with no eventfd write" },
	};
	struct sw_loop *loop = h_loop();
	struct sw_event ev;
	struct h_stub h;
	pid_t pid;
	unsigned i;

	for (i = 0; i < T_NCASES(v); i++) {
		h_spawn_ready(&h, loop, param, v[i].act, 0);
		h_act_and_time(&h, v[i].what, 1u << SW_EV_REPORT, &ev);
		h_assert_no_stub_err(&h);
		/* and it goes on: the next resume makes it exit.  (On a
		 * starved machine an exiting stub has been seen to sit in D
		 * state past N*T, its death not yet visible: then it is
		 * rightly killed.) */
		if (h_act_and_time(&h, "exit after the deaf report",
				   1u << SW_EV_EXIT | 1u << SW_EV_KILL,
				   &ev) == SW_EV_KILL)
			t_assert_msg(ev.kill.reason == SW_KILL_STALL &&
					     ev.kill.state == 'D',
				     "killed for %s in state %c, not exiting",
				     t_reason_name(ev.kill.reason),
				     ev.kill.state);
		else
			t_assert(WIFEXITED(ev.status) &&
				 WEXITSTATUS(ev.status) == 0);
		t_assert(sw_stub_free(h.s) == NULL);
		h_serve_new(loop, param);
	}

	h_spawn_ready(&h, loop, param, H_CLOSE_STALL, 0);
	pid = sw_stub_pid(h.s);
	h_act_and_time(&h, "report fd closed, stall", 1u << SW_EV_KILL, &ev);
	h_assert_killed(&ev, pid, SW_KILL_STALL);
	h_assert_no_stub_err(&h);
	t_assert(sw_stub_free(h.s) == NULL);
	h_serve_new(loop, param);
	t_assert(sw_loop_free(loop) == NULL);
}

/* (4) The whole header overwritten, then an eventfd write: a protocol
 * kill, or a stall kill when the state word left is IN_CHILD. */
static void case_scribble(intptr_t param)
{
	struct sw_loop *loop = h_loop();
	struct sw_event ev;
	struct h_stub h;
	pid_t pid;

	h_spawn_ready(&h, loop, param, H_SCRIBBLE, 0);
	pid = sw_stub_pid(h.s);
	h_act_and_time(&h, "header scribbled", 1u << SW_EV_KILL, &ev);
	h_assert_killed(&ev, pid, SW_KILL_PROTOCOL);
	t_assert_eq(ev.kill.bad_state, H_GARBAGE_STATE);
	t_assert(sw_stub_free(h.s) == NULL);
	h_serve_new(loop, param);

	h_spawn_ready(&h, loop, param, H_SCRIBBLE_IN_CHILD, 0);
	pid = sw_stub_pid(h.s);
	h_act_and_time(&h, "header scribbled, state IN_CHILD",
		       1u << SW_EV_KILL, &ev);
	h_assert_killed(&ev, pid, SW_KILL_STALL);
	t_assert(sw_stub_free(h.s) == NULL);
	h_serve_new(loop, param);
	t_assert(sw_loop_free(loop) == NULL);
}

/* ---- B: a zombie that only its tracer may reap --------------------------- */

static bool h_has_cap_sys_ptrace(void)
{
	char line[256];
	unsigned long long eff = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return eff & (1ull << 19); /* CAP_SYS_PTRACE */
}

/* Skip (77) where no child may attach to its parent. */
static void h_ptrace_check(void)
{
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	int scope = 0;

	if (!f)
		return; /* no Yama */
	if (fscanf(f, "%d", &scope) != 1)
		scope = 0;
	fclose(f);
	if (scope >= 3)
		t_skip("Yama ptrace_scope is %d: no process may attach", scope);
	if (scope == 2 && !h_has_cap_sys_ptrace())
		t_skip("Yama ptrace_scope is 2 and this process lacks "
		       "CAP_SYS_PTRACE");
	/* scope 1: the stub names its tracer with PR_SET_PTRACER */
}

/* /proc/PID/status TracerPid, or -1. */
static pid_t h_tracer_of(pid_t pid)
{
	char path[64], line[256];
	int tracer = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid: %d", &tracer) == 1)
			break;
	fclose(f);
	return tracer;
}

/* No zombie child left (live children, the stubs in use, may be). */
static void h_assert_no_zombie(void)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0) {
		t_assert_eq(errno, ECHILD);
		return;
	}
	t_assert_msg(si.si_pid == 0, "child %d is left as a zombie",
		     (int)si.si_pid);
}

static void h_reap_tracer(pid_t tracer)
{
	int status;

	t_assert(kill(tracer, SIGKILL) == 0);
	t_assert_eq(waitpid(tracer, &status, __WALL), tracer);
}

/*
 * The stub is traced by its own child, which never waits, and then exits
 * (or stalls and is killed).  The wait ends on time anyway, with the
 * status the kernel shows; the loop does not spin; sw_stub_free() returns
 * at once.  Once the tracer is gone the zombie comes back to the monitor,
 * and the loop reaps it at its next timer read or spawn.
 */
static void traced(intptr_t param, bool stall)
{
	enum h_act act = stall ? H_TRACED_STALL : H_TRACED_EXIT;
	const char *what = stall ? "traced stub, stalled" : "traced stub, exits";
	struct h_stub h, witness, fresh;
	struct sw_loop *loop;
	struct sw_event ev;
	struct h_times tm;
	uint64_t t0, cpu0, tf;
	struct h_pl *p;
	pid_t pid, tracer;
	siginfo_t si;
	char buf[32];
	int rc, i;

	/* the tracer outlives its parent, the stub: it comes to us */
	t_assert(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
	h_ptrace_check();
	loop = h_loop();
	h_spawn_echo(&witness, loop, H_DRIVER(param) | T_FN);
	h_spawn_ready(&h, loop, param, act, 0);
	p = h_pl_of(sw_stub_page(h.s));
	pid = sw_stub_pid(h.s);
	tracer = LOAD(&p->tracer);
	if (LOAD(&p->seize_err)) {
		int e = LOAD(&p->seize_err);

		t_assert(sw_stub_free(h.s) == NULL);
		if (tracer > 0)
			h_reap_tracer(tracer);
		h_stop(&witness);
		t_assert(sw_loop_free(loop) == NULL);
		t_skip("a child may not PTRACE_SEIZE its parent here: %s",
		       strerror(e));
	}
	t_assert(tracer > 0);
	t_assert_eq(h_tracer_of(pid), tracer);

	cpu0 = t_process_cpu_ns();
	rc = h_timed_go(&h, &tm, &ev);
	t0 = tm.t0;
	t_note_event(rc, &ev);
	if (stall) {
		t_assert_rc(rc, SW_EV_KILL);
		t_assert_eq(ev.kill.reason, SW_KILL_STALL);
		t_assert_eq(ev.kill.pid, pid);
		h_assert_kill_time(what, &ev, &tm);
		t_assert_msg(ev.status == -1 || (WIFSIGNALED(ev.status) &&
						 WTERMSIG(ev.status) == SIGKILL),
			     "status %s", t_status_str(ev.status, buf));
	} else {
		t_assert_rc(rc, SW_EV_EXIT);
		h_assert_end_time(what, loop, &tm);
		t_assert_msg(ev.status == -1 || (WIFEXITED(ev.status) &&
						 WEXITSTATUS(ev.status) == 7),
			     "status %s", t_status_str(ev.status, buf));
	}
	if (ev.status == -1)
		t_note("the kernel did not tell the traced zombie's status");

	/* the premise: a zombie that only the tracer can reap (the end may
	 * come while the kernel is still taking the stub down: it turns
	 * zombie when the kernel is done) */
	t_assert(t_wait_proc_state(pid, "Z", 5000 * T_MS));
	memset(&si, 0, sizeof(si));
	t_assert(waitid(P_PID, (id_t)pid, &si,
			WEXITED | WNOHANG | WNOWAIT | __WALL) == 0);
	t_assert_eq(si.si_pid, 0);

	/* the loop goes on, and does not spin on the readable pidfd (round
	 * trips well inside N*T each: a witness starved for longer would be
	 * rightly killed) */
	h_roundtrip(&witness, H_TICK_NS);
	h_roundtrip(&witness, H_TICK_NS);
	t_assert_no_spin("the wait and a round trip after it", cpu0, t0);
	tf = t_now_ns();
	t_assert(sw_stub_free(h.s) == NULL);
	tf = t_now_ns() - tf;
	t_note("sw_stub_free() took %.2f ms", ms(tf));
	t_assert_msg(tf < 50 * T_MS, "sw_stub_free() took %.1f ms", ms(tf));
	cpu0 = t_process_cpu_ns();
	t0 = t_now_ns();
	h_roundtrip(&witness, H_TICK_NS);
	h_roundtrip(&witness, H_TICK_NS);
	t_assert_no_spin("a round trip after the free", cpu0, t0);

	/* the tracer goes: the zombie is the monitor's to reap */
	h_reap_tracer(tracer);
	h_spawn_echo(&fresh, loop, param);
	for (i = 0; i < 8; i++) {
		h_roundtrip(&fresh, H_TICK_NS / 2);
		h_roundtrip(&witness, 0);
	}
	h_assert_no_zombie();
	h_stop(&fresh);
	h_stop(&witness);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_traced_exit(intptr_t param)
{
	traced(param, false);
}

static void case_traced_kill(intptr_t param)
{
	traced(param, true);
}

/* ---- C: SW_SPAWN_KEEP_FDS hands over no fd of the library ---------------- */

/* Whatever the case inherited (a make jobserver's pipe, say) must not
 * muddle the list: mark it close-on-exec, as the library's own are. */
static void h_cloexec_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int fd, flags;

	t_assert(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		fd = atoi(e->d_name);
		if (fd < 3 || fd == dirfd(d))
			continue;
		flags = fcntl(fd, F_GETFD);
		if (flags >= 0 && !(flags & FD_CLOEXEC)) {
			t_note("inherited fd %d: marked close-on-exec", fd);
			fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
		}
	}
	closedir(d);
}

/* A pipe, both ends moved to fds at or above `floor` (clear of the exec
 * stub's fixed numbers), with or without O_CLOEXEC. */
static void h_pipe(int fds[2], int floor, bool cloexec)
{
	int p[2], i;

	t_assert(pipe2(p, cloexec ? O_CLOEXEC : 0) == 0);
	for (i = 0; i < 2; i++) {
		fds[i] = fcntl(p[i], cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, floor);
		t_assert(fds[i] >= floor);
		close(p[i]);
	}
}

static int h_cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void h_describe_fd(int fd, char *buf, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, size - 1);
	buf[n < 0 ? 0 : n] = 0;
}

/* Two loops with two stubs each, a pipe without and one with O_CLOEXEC;
 * the world as a KEEP_FDS stub sees it. */
struct h_world {
	struct sw_loop *loop[2];
	struct h_stub stub[4];
	int open_pipe[2], cloexec_pipe[2];
};

static void h_world_new(struct h_world *w)
{
	int i;

	h_cloexec_inherited();
	for (i = 0; i < 2; i++)
		w->loop[i] = h_loop();
	for (i = 0; i < 4; i++)
		h_spawn_echo(&w->stub[i], w->loop[i / 2], i % 2 ? T_EXEC : T_FN);
	h_pipe(w->open_pipe, 40, false);
	h_pipe(w->cloexec_pipe, 44, true);
}

static void h_world_check(struct h_world *w)
{
	int i;

	for (i = 0; i < 4; i++)
		h_roundtrip(&w->stub[i], 0);
}

static void h_world_free(struct h_world *w)
{
	int i;

	for (i = 0; i < 4; i++)
		h_stop(&w->stub[i]);
	for (i = 0; i < 2; i++) {
		t_assert(sw_loop_free(w->loop[i]) == NULL);
		close(w->open_pipe[i]);
		close(w->cloexec_pipe[i]);
	}
}

static void case_keep_fds(intptr_t param)
{
	struct h_world w;
	struct h_stub h;
	struct h_pl *p;
	struct sw_event ev;
	int want[H_MAX_FDS], got[H_MAX_FDS], nwant = 0, i, report_fd;
	uint32_t ngot;
	bool same;
	char desc[256];

	h_world_new(&w);
	h_spawn(&h, w.loop[0], param, H_LIST_FDS, SW_SPAWN_KEEP_FDS);
	/* written by the monitor before the stub ran */
	report_fd = sw_stub_page(h.s)->report_fd;
	t_assert_rc(h_wait(&h, &ev, &(uint64_t){ 0 }), SW_EV_REPORT);
	p = h_pl_of(sw_stub_page(h.s));
	h_assert_no_stub_err(&h);
	t_assert(!LOAD(&p->overflow));

	for (i = 0; i < 3; i++)
		if (fcntl(i, F_GETFD) >= 0)
			want[nwant++] = i;
	want[nwant++] = report_fd;
	if (H_MODE(param) == T_EXEC)
		want[nwant++] = SW_EXEC_PAGE_FD; /* its own page, to map */
	want[nwant++] = w.open_pipe[0];
	want[nwant++] = w.open_pipe[1];
	qsort(want, (size_t)nwant, sizeof(want[0]), h_cmp_int);
	ngot = LOAD(&p->nfds);
	memcpy(got, p->fds, ngot * sizeof(got[0]));
	qsort(got, ngot, sizeof(got[0]), h_cmp_int);

	same = ngot == (uint32_t)nwant &&
	       !memcmp(got, want, ngot * sizeof(got[0]));
	if (!same) {
		for (i = 0; i < nwant; i++)
			t_note("expected fd %d", want[i]);
		for (i = 0; i < (int)ngot; i++) {
			/* in fn mode the numbers are the monitor's own */
			h_describe_fd(got[i], desc, sizeof(desc));
			t_note("the stub has fd %d (here: %s)", got[i],
			       H_MODE(param) == T_FN ? desc : "-");
		}
	}
	t_assert_msg(same, "the stub holds %u fds, not the %d an exec would "
		     "keep plus its report fd", ngot, nwant);

	h_act_and_time(&h, "exit", 1u << SW_EV_EXIT, &ev);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 0);
	t_assert(sw_stub_free(h.s) == NULL);
	h_world_check(&w);
	h_world_free(&w);
}

/* A monitor that closed its stdio before creating its loop: the loop's own
 * fds are 0, 1 and 2, and no stub may inherit them (without
 * SW_SPAWN_KEEP_FDS a stub keeps the caller's 0-2 and its report fd, and
 * an exec'd one its page fd).  Run in a child of the case, whose stdio is
 * closed; the stub's fd list comes back through a pipe. */
static void case_low_fds(intptr_t param)
{
	int pfd[2], want[3], nwant = 0, got[H_MAX_FDS + 1], status, ngot = 0;
	ssize_t n;
	pid_t pid;

	t_assert(pipe2(pfd, O_CLOEXEC) == 0);
	fflush(NULL);
	pid = fork();
	t_assert(pid >= 0);
	if (pid == 0) {
		struct sw_loop *loop;
		struct sw_event ev;
		struct h_stub h;
		struct h_pl *p;
		int out = fcntl(pfd[1], F_DUPFD_CLOEXEC, 100), low = 0;

		close(0);
		close(1);
		close(2);
		if (out < 0 || sw_loop_new(NULL, &loop) < 0)
			_exit(2);
		for (int fd = 0; fd < 3; fd++)
			low += fcntl(fd, F_GETFD) > 0; /* the loop's, cloexec */
		if (low != 3)
			_exit(3);
		h_spawn(&h, loop, param, H_LIST_FDS, 0);
		if (h_wait(&h, &ev, &(uint64_t){ 0 }) != SW_EV_REPORT)
			_exit(4);
		p = h_pl_of(sw_stub_page(h.s));
		if (LOAD(&p->overflow) || LOAD(&p->err))
			_exit(5);
		n = (ssize_t)(LOAD(&p->nfds) * sizeof(int));
		if (write(out, p->fds, (size_t)n) != n)
			_exit(6);
		sw_stub_free(h.s);
		sw_loop_free(loop);
		_exit(0);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], (char *)got + ngot * (ssize_t)sizeof(int),
			 sizeof(got) - (size_t)ngot * sizeof(int))) > 0)
		ngot += (int)(n / (ssize_t)sizeof(int));
	close(pfd[0]);
	t_assert(waitpid(pid, &status, 0) == pid);
	t_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "the monitor child: %s",
		     t_status_str(status, (char[64]){ 0 }));
	if (H_MODE(param) == T_EXEC)
		want[nwant++] = SW_EXEC_PAGE_FD;
	want[nwant++] = SW_STUB_REPORT_FD;
	qsort(got, (size_t)ngot, sizeof(got[0]), h_cmp_int);
	for (int i = 0; i < ngot; i++)
		t_note("the stub has fd %d", got[i]);
	t_assert_msg(ngot == nwant && !memcmp(got, want, sizeof(int) * nwant),
		     "the stub holds %d fds, not its own %d", ngot, nwant);
}

/* The attack: disarm every timerfd and empty every epoll set the stub can
 * reach, then stall.  It reaches none: it is killed on time, and both loops
 * go on, their watchdogs included. */
static void case_keep_fds_attack(intptr_t param)
{
	struct h_world w;
	struct h_stub h, b;
	struct h_pl *p;
	struct sw_event ev;
	pid_t pid;

	h_world_new(&w);
	h_spawn_ready(&h, w.loop[0], param, H_ATTACK, SW_SPAWN_KEEP_FDS);
	pid = sw_stub_pid(h.s);
	p = h_pl_of(sw_stub_page(h.s));
	h_act_and_time(&h, "KEEP_FDS stub attacks its fds, then stalls",
		       1u << SW_EV_KILL, &ev);
	h_assert_killed(&ev, pid, SW_KILL_STALL);
	t_note("the attack hit %u timerfds and %u epoll entries among %u fds",
	       LOAD(&p->timer_hits), LOAD(&p->epoll_hits), LOAD(&p->nfds));
	t_assert_eq(LOAD(&p->timer_hits), 0);
	t_assert_eq(LOAD(&p->epoll_hits), 0);
	t_assert(sw_stub_free(h.s) == NULL);

	h_world_check(&w);
	/* the other loop's watchdog too */
	h_spawn_echo(&b, w.loop[1], param);
	pid = sw_stub_pid(b.s);
	t_pl(b.s)->arg = T_STALL_FUTEX;
	t_pl(b.s)->req = T_REQ_STALL;
	h_act_and_time(&b, "a stall in the other loop", 1u << SW_EV_KILL, &ev);
	h_assert_killed(&ev, pid, SW_KILL_STALL);
	t_assert(sw_stub_free(b.s) == NULL);
	h_world_free(&w);
}

#define H_CASES(name, fn, timeout)                                          \
	{ name "/fn", fn, T_FN, timeout },                                  \
	{ name "/exec", fn, T_EXEC, timeout },                              \
	{ name "/fn+run", fn, T_FN | H_RUN, timeout },                      \
	{ name "/exec+run", fn, T_EXEC | H_RUN, timeout },                  \
	{ name "/fn+dispatch", fn, T_FN | H_DISPATCH, timeout },            \
	{ name "/exec+dispatch", fn, T_EXEC | H_DISPATCH, timeout }

static const struct t_case cases[] = {
	H_CASES("flood_drain", case_flood_drain, 30),
	H_CASES("saturate", case_saturate, 30),
	H_CASES("close_report", case_close_report, 30),
	H_CASES("scribble", case_scribble, 30),
	H_CASES("traced_exit", case_traced_exit, 30),
	H_CASES("traced_kill", case_traced_kill, 30),
	{ "keep_fds/fn", case_keep_fds, T_FN, 30 },
	{ "keep_fds/exec", case_keep_fds, T_EXEC, 30 },
	{ "keep_fds_attack/fn", case_keep_fds_attack, T_FN, 30 },
	{ "keep_fds_attack/exec", case_keep_fds_attack, T_EXEC, 30 },
	{ "low_fds/fn", case_low_fds, T_FN, 0 },
	{ "low_fds/exec", case_low_fds, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "--stub") && !strcmp(argv[2], H_ROLE))
		return h_exec_stub(argv[3]);
	return t_main(argc, argv, cases, T_NCASES(cases));
}
