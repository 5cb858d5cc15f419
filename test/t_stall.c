/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The watchdog in real time.  A stub that falls silent (spins, sleeps in a
 * futex, is stopped, floods its eventfd) is killed within [N*T, (N+1)*T] of
 * its resume, and the loop goes on serving a new stub; a stub that keeps
 * reporting is never killed, nor is one whose monitor was busy elsewhere.
 *
 * Timing: the silence starts at the resume, somewhere between the clock
 * read before sw_stub_resume() and the one after it; the kill is seen when
 * the wait returns.  The lower bound is measured from after the resume and
 * gets no slack at all.  The upper bound is measured from before the resume
 * and gets t_slack_ns() (15 ms unless STUBWATCH_TEST_SLACK_MS says
 * otherwise) plus the time the monitor thread waited for a CPU meanwhile:
 * see t_assert_kill_window().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "t_util.h"

#define NT ((uint64_t)T_STALL * T_TICK_NS)

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void assert_stall_kill(const struct sw_event *ev, pid_t pid)
{
	t_assert_eq(ev->type, SW_EV_KILL);
	t_assert_eq(ev->kill.reason, SW_KILL_STALL);
	t_assert_eq(ev->kill.pid, pid);
	t_assert(WIFSIGNALED(ev->status));
	t_assert_eq(WTERMSIG(ev->status), SIGKILL);
}

/* The same loop serves a new stub after a kill. */
static void serve_new_stub(struct sw_loop *loop, intptr_t mode)
{
	struct sw_stub *stub = t_spawn_echo(loop, mode);

	t_echo(stub, 200);
	t_stop(stub);
}

/*
 * An echo stub answers a few requests, then is asked to fall silent in the
 * way `stall_arg` says; it must be killed in the window.  `prepare` runs
 * just before the resume (e.g. SIGSTOP it).
 */
static void stall_and_time(struct sw_loop *loop, intptr_t mode,
			   uint64_t stall_arg, void (*prepare)(struct sw_stub *),
			   uint64_t tick, uint32_t n, const char *what)
{
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;
	uint64_t t0, t1, t2, rd0;

	t_echo(stub, 10);
	t_pl(stub)->arg = stall_arg;
	t_pl(stub)->req = T_REQ_STALL;
	if (prepare)
		prepare(stub);
	rd0 = t_run_delay_ns();
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t2 = t_now_ns();
	assert_stall_kill(&ev, pid);
	t_assert_kill_window(what, t0, t1, t2, t_run_delay_ns() - rd0, tick, n);
	t_assert(sw_stub_free(stub) == NULL);
}

static void case_stall_spin(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);

	stall_and_time(loop, mode, T_STALL_SPIN, NULL,
		       T_TICK_NS, T_STALL, "spin");
	serve_new_stub(loop, mode);
	stall_and_time(loop, mode, T_STALL_BLOCKED_SPIN, NULL,
		       T_TICK_NS, T_STALL, "spin, SIGALRM blocked");
	serve_new_stub(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_stall_futex(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);

	stall_and_time(loop, mode, T_STALL_FUTEX, NULL, T_TICK_NS, T_STALL,
		       "futex");
	serve_new_stub(loop, mode);
	stall_and_time(loop, mode, T_STALL_BLOCKED_FUTEX, NULL, T_TICK_NS,
		       T_STALL, "futex, SIGALRM blocked");
	serve_new_stub(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
}

/* The test stops the idle stub, then resumes it: the wake finds it
 * stopped, and it never reports. */
static void sigstop_it(struct sw_stub *stub)
{
	pid_t pid = sw_stub_pid(stub);

	/* an ordinary request: it would answer if it could run */
	t_pl(stub)->req = 77;
	t_assert(kill(pid, SIGSTOP) == 0);
	t_assert(t_wait_proc_state(pid, "Tt", 2000 * T_MS));
}

static void case_stall_sigstop(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);

	stall_and_time(loop, mode, 0, sigstop_it, T_TICK_NS, T_STALL,
		       "SIGSTOPped by the test");
	serve_new_stub(loop, mode);
	stall_and_time(loop, mode, T_STALL_STOP_SELF, NULL, T_TICK_NS, T_STALL,
		       "SIGSTOPped itself");
	serve_new_stub(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
}

/* Silent from birth: in flight from the spawn, never reports. */
static void case_stall_at_spawn(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = NULL;
	struct sw_event ev;
	uint64_t t0, t1, t2, rd0;
	pid_t pid;

	rd0 = t_run_delay_ns();
	t0 = t_now_ns();
	t_assert_rc(t_spawn_rc(loop, mode, "stall", T_STALL_FUTEX, 0, &stub), 0);
	t1 = t_now_ns();
	pid = sw_stub_pid(stub);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t2 = t_now_ns();
	assert_stall_kill(&ev, pid);
	t_assert_kill_window("silent from the spawn", t0, t1, t2,
			     t_run_delay_ns() - rd0, T_TICK_NS, T_STALL);
	t_assert(sw_stub_free(stub) == NULL);
	serve_new_stub(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
}

/* Other tick lengths, stall limits and timer divisions. */
static void case_windows(intptr_t mode)
{
	static const struct {
		uint64_t tick;
		uint32_t n, div;
	} w[] = {
		{ 20 * T_MS, 1, 2 },
		{ 20 * T_MS, 3, 4 },
		{ 45 * T_MS, 2, 3 },
		{ 10 * T_MS, 8, 2 },
		{ 30 * T_MS, 2, 10 },
	};
	unsigned i;

	for (i = 0; i < T_NCASES(w); i++) {
		struct sw_loop *loop = t_loop_opts(w[i].tick, w[i].n, w[i].div, 0);
		struct sw_loop_opts o = { .size = sizeof(o) };
		char what[64];

		t_assert_rc(sw_loop_get_opts(loop, &o), 0);
		t_assert_eq(o.tick_ns, w[i].tick);
		t_assert_eq(o.stall_ticks, w[i].n);
		t_assert_eq(o.timer_div, w[i].div);
		snprintf(what, sizeof(what), "T=%.0f ms N=%u div=%u",
			 ms(w[i].tick), w[i].n, w[i].div);
		stall_and_time(loop, mode, T_STALL_FUTEX, NULL, w[i].tick,
			       w[i].n, what);
		serve_new_stub(loop, mode);
		t_assert(sw_loop_free(loop) == NULL);
	}
}

/* ---- flooding ------------------------------------------------------------ */

static uint64_t thread_cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (uint64_t)ru.ru_utime.tv_sec * 1000000000ull +
	       (uint64_t)ru.ru_utime.tv_usec * 1000ull +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000000ull +
	       (uint64_t)ru.ru_stime.tv_usec * 1000ull;
}

/* Eventfd writes without IN_KERN are not progress, and cost the monitor
 * little: it is still killed on time. */
static void case_flood(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;
	uint64_t t0, t1, t2, cpu0, cpu, rd0;

	t_pl(stub)->arg = T_STALL_FLOOD;
	t_pl(stub)->req = T_REQ_STALL;
	cpu0 = thread_cpu_ns();
	rd0 = t_run_delay_ns();
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t2 = t_now_ns();
	cpu = thread_cpu_ns() - cpu0;
	assert_stall_kill(&ev, pid);
	t_assert_kill_window("flood", t0, t1, t2, t_run_delay_ns() - rd0,
			     T_TICK_NS, T_STALL);
	t_note("monitor CPU during the flooded wait: %.1f ms of %.1f ms",
	       ms(cpu), ms(t2 - t0));
	/* "must not slow the monitor noticeably": far from a busy loop */
	t_assert_msg(cpu * 4 < t2 - t0, "the flood kept the monitor busy: "
		     "%.1f ms CPU in %.1f ms", ms(cpu), ms(t2 - t0));
	t_assert(sw_stub_free(stub) == NULL);
	serve_new_stub(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
}

struct done {
	bool done;
	uint64_t at;
	struct sw_event ev;
};

static int on_done(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct done *d = ud;

	d->done = true;
	d->at = t_now_ns();
	d->ev = *ev;
	return 0;
}

/* A flooding stub in flight beside a busy one: the busy one's round trips
 * go on, and the flooder is killed on time during them. */
static void case_flood_beside(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *flooder = t_spawn_echo(loop, mode);
	struct sw_stub *busy = t_spawn_echo(loop, T_PMODE(mode) ^ 1);
	pid_t pid = sw_stub_pid(flooder);
	struct done d = { 0 };
	unsigned long rounds = 0;
	uint64_t t0, t1, rd0;

	t_assert_rc(sw_stub_set_callback(flooder, on_done, &d), 0);
	t_pl(flooder)->arg = T_STALL_FLOOD;
	t_pl(flooder)->req = T_REQ_STALL;
	rd0 = t_run_delay_ns();
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(flooder), 0);
	t1 = t_now_ns();
	while (!d.done) {
		t_echo(busy, 1);
		rounds++;
		t_assert(t_now_ns() - t0 < 2000 * T_MS);
	}
	assert_stall_kill(&d.ev, pid);
	t_assert_kill_window("flood beside a busy stub", t0, t1, d.at,
			     t_run_delay_ns() - rd0, T_TICK_NS, T_STALL);
	t_note("%lu round trips of the other stub meanwhile", rounds);
	t_assert(rounds >= 100);
	t_assert(sw_stub_free(flooder) == NULL);
	t_echo(busy, 100);
	t_stop(busy);
	t_assert(sw_loop_free(loop) == NULL);
}

/* ---- never killed -------------------------------------------------------- */

static void case_keep_reporting(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	uint64_t end = t_now_ns() + 10 * NT;
	unsigned long rounds = 0;

	/* far longer than N*T of round trips */
	while (t_now_ns() < end) {
		t_echo(stub, 100);
		rounds += 100;
	}
	t_note("%lu round trips in %.0f ms", rounds, ms(10 * NT));
	/* each answer after (N-2)*T of silence: slow, but within the limit */
	t_pl(stub)->delay_ns = (T_STALL - 2) * T_TICK_NS;
	t_echo(stub, 8);
	t_pl(stub)->delay_ns = 0;
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

/* The monitor busy elsewhere while nothing is in flight: the timer's
 * expirations pile up, then a stub that answers promptly lives. */
static void case_busy_idle(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);

	t_sleep_ns(3 * NT);
	t_echo(stub, 20);
	t_sleep_ns(3 * NT);
	t_echo(stub, 1);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

/* Busy between the resume and the wait; the stub answered at once: the
 * report and a pile of expirations are ready together, the report wins. */
static void case_busy_in_flight(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_event ev;

	t_echo(stub, 5);
	t_pl(stub)->req = 1000;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_sleep_ns(3 * NT);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	t_assert_eq(t_pl(stub)->ack, 1001);
	t_echo(stub, 5);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

/* Busy between the resume and the wait; the stub answers 2 ticks into the
 * wait.  Expirations from before the wait began never count, and a read
 * counts one tick whatever it holds: no kill. */
static void case_busy_late_report(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_event ev;
	uint64_t tw;

	t_pl(stub)->delay_ns = 3 * NT + 2 * T_TICK_NS;
	t_pl(stub)->req = 1000;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_sleep_ns(3 * NT);
	tw = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	t_note("reported %.1f ms into the wait", ms(t_now_ns() - tw));
	t_assert_eq(t_pl(stub)->ack, 1001);
	t_pl(stub)->delay_ns = 0;
	t_echo(stub, 5);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

/*
 * Busy between the resume and the wait, the stub silent all along: the
 * kill comes N*T to (N+1)*T into the wait, not at its first timer read
 * (issue 2: silence is counted from the later of the last report and the
 * start of the wait, and expirations from before the wait began never
 * count).  `fresh`: the loop had gone idle (timer disarmed) before the
 * resume, so the resume arms the timer anew.
 */
static bool dispatch_once(struct sw_loop *loop, int timeout_ms);

static void busy_then_stall(intptr_t mode, bool fresh)
{
	struct sw_loop_opts o = { .size = sizeof(o) };
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;
	uint64_t t0, t1, t2, rd0;

	if (fresh) {
		/* a timer read with nothing in flight disarms the timer */
		t_sleep_ns(2 * T_TICK_NS);
		dispatch_once(loop, 0);
	}
	t_pl(stub)->arg = T_STALL_FUTEX;
	t_pl(stub)->req = T_REQ_STALL;
	t_assert_rc(sw_loop_get_opts(loop, &o), 0);
	t_assert_rc(sw_stub_resume(stub), 0);
	/* half a timer period off the timer's phase, so that no phase
	 * alignment hides an early kill */
	t_sleep_ns(3 * NT + o.tick_ns / o.timer_div / 2);
	rd0 = t_run_delay_ns();
	t0 = t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t2 = t_now_ns();
	assert_stall_kill(&ev, pid);
	t_assert_kill_window(fresh ? "timer armed at the resume, monitor busy "
				     "3*N*T; from the wait's start"
				   : "timer running at the resume, monitor busy "
				     "3*N*T; from the wait's start",
			     t0, t1, t2, t_run_delay_ns() - rd0, T_TICK_NS,
			     T_STALL);
	t_assert(sw_stub_free(stub) == NULL);
	serve_new_stub(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_busy_then_stall(intptr_t mode)
{
	busy_then_stall(mode, false);
}

static void case_busy_then_stall_fresh(intptr_t mode)
{
	busy_then_stall(mode, true);
}

/* ---- report wins, at the loop level ------------------------------------- */

struct rw {
	unsigned ticks;
	struct done d;
};

/* Called once per dispatch that read the timer; each dispatch here makes
 * one epoll_wait (a handful of fds), so at most one read: this counts the
 * timer reads. */
static int rw_tick(struct sw_loop *loop, void *ud)
{
	((struct rw *)ud)->ticks++;
	return 0;
}

static bool dispatch_once(struct sw_loop *loop, int timeout_ms)
{
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	int rc = poll(&pfd, 1, timeout_ms);

	t_assert(rc >= 0);
	if (rc == 0)
		return false;
	t_assert(sw_loop_dispatch(loop) >= 0);
	return true;
}

/* Dispatch until the loop has read the timer with nothing in flight and
 * gone quiet (the timer disarmed), so that the next resume starts the same
 * way each time. */
static void settle(struct sw_loop *loop)
{
	unsigned i;

	for (i = 0; i < 100; i++)
		if (!dispatch_once(loop, 3 * T_TICK_NS / 2 / T_MS))
			return;
	t_fail(__FILE__, __LINE__, "the loop does not go quiet when idle");
}

static struct sw_stub *rw_spawn(struct sw_loop *loop, struct rw *rw)
{
	struct sw_stub *stub = t_spawn(loop, T_FN, "echo", 0);

	t_assert_rc(sw_stub_set_callback(stub, on_done, &rw->d), 0);
	while (!rw->d.done)
		dispatch_once(loop, 1000);
	t_assert_eq(rw->d.ev.type, SW_EV_REPORT);
	settle(loop);
	rw->d.done = false;
	rw->ticks = 0;
	__atomic_store_n(&t_pl(stub)->gate, 0, __ATOMIC_RELEASE);
	t_pl(stub)->req = T_REQ_GATED;
	return stub;
}

static bool pidfd_dead(int pidfd, int timeout_ms)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms) == 1;
}

static void case_report_wins(intptr_t unused)
{
	struct sw_loop *loop = t_loop_opts(T_TICK_NS, T_STALL, 2,
					   SW_LOOP_TICK_EVENTS);
	struct rw rw = { 0 };
	struct sw_stub *stub;
	unsigned kill_read = 0;
	uint64_t end;

	t_assert_rc(sw_loop_set_tick_callback(loop, rw_tick, &rw), 0);

	/* control: on which timer read after the resume is a silent stub
	 * killed?  (N*k + 1 if the first read counts, N*k + 2 if not) */
	stub = rw_spawn(loop, &rw);
	t_assert_rc(sw_stub_resume(stub), 0);
	while (!kill_read) {
		dispatch_once(loop, 1000);
		/* SIGKILL lands in microseconds; 3 ms < P keeps reads prompt */
		if (rw.d.done || pidfd_dead(sw_stub_pidfd(stub), 3))
			kill_read = rw.ticks;
		t_assert(rw.ticks < 100);
	}
	while (!rw.d.done)
		dispatch_once(loop, 1000);
	t_assert_eq(rw.d.ev.type, SW_EV_KILL);
	t_assert_eq(rw.d.ev.kill.reason, SW_KILL_STALL);
	t_note("killed on timer read %u after the resume", kill_read);
	t_assert(kill_read == T_STALL * 2 + 1 || kill_read == T_STALL * 2 + 2);
	t_assert(sw_stub_free(stub) == NULL);

	/* the same, but the stub reports just before that read is taken:
	 * both are ready in one epoll_wait, and the report wins */
	rw.d.done = false;
	stub = rw_spawn(loop, &rw);
	t_assert_rc(sw_stub_resume(stub), 0);
	while (rw.ticks < kill_read - 1)
		dispatch_once(loop, 1000);
	t_assert(!rw.d.done);
	__atomic_store_n(&t_pl(stub)->gate, 1, __ATOMIC_RELEASE);
	t_futex_wake(&t_pl(stub)->gate);
	end = t_now_ns() + 1000 * T_MS;
	while (__atomic_load_n(&sw_stub_page(stub)->state, __ATOMIC_ACQUIRE) !=
	       SW_STATE_IN_KERN)
		t_assert(t_now_ns() < end);
	/* let the next expiration come too */
	t_sleep_ns(T_TICK_NS / 2 + 3 * T_MS);
	dispatch_once(loop, 0);
	t_assert_msg(rw.ticks == kill_read,
		     "the report and the timer came in separate dispatches "
		     "(%u reads)", rw.ticks);
	t_assert(rw.d.done);
	t_assert_msg(rw.d.ev.type == SW_EV_REPORT, "got %s, not REPORT",
		     t_ev_name(rw.d.ev.type));
	t_assert_eq(t_pl(stub)->ack, T_REQ_GATED + 1);
	t_assert(!pidfd_dead(sw_stub_pidfd(stub), 3 * (int)(T_TICK_NS / T_MS)));
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static const struct t_case cases[] = {
	{ "stall_spin/fn", case_stall_spin, T_FN, 0 },
	{ "stall_spin/exec", case_stall_spin, T_EXEC, 0 },
	{ "stall_spin/fn+poll", case_stall_spin, T_FN | T_POLL, 0 },
	{ "stall_futex/fn", case_stall_futex, T_FN, 0 },
	{ "stall_futex/exec", case_stall_futex, T_EXEC, 0 },
	{ "stall_futex/exec+poll", case_stall_futex, T_EXEC | T_POLL, 0 },
	{ "stall_sigstop/fn", case_stall_sigstop, T_FN, 0 },
	{ "stall_sigstop/exec", case_stall_sigstop, T_EXEC, 0 },
	{ "stall_at_spawn/fn", case_stall_at_spawn, T_FN, 0 },
	{ "stall_at_spawn/exec", case_stall_at_spawn, T_EXEC, 0 },
	{ "windows/fn", case_windows, T_FN, 0 },
	{ "flood/fn", case_flood, T_FN, 0 },
	{ "flood/exec", case_flood, T_EXEC, 0 },
	{ "flood/fn+poll", case_flood, T_FN | T_POLL, 0 },
	{ "flood_beside/fn", case_flood_beside, T_FN, 0 },
	{ "flood_beside/fn+poll", case_flood_beside, T_FN | T_POLL, 0 },
	{ "keep_reporting/fn", case_keep_reporting, T_FN, 0 },
	{ "keep_reporting/exec", case_keep_reporting, T_EXEC, 0 },
	{ "keep_reporting/fn+poll", case_keep_reporting, T_FN | T_POLL, 0 },
	{ "busy_idle/fn", case_busy_idle, T_FN, 0 },
	{ "busy_in_flight/fn", case_busy_in_flight, T_FN, 0 },
	{ "busy_in_flight/exec", case_busy_in_flight, T_EXEC, 0 },
	{ "busy_in_flight/fn+poll", case_busy_in_flight, T_FN | T_POLL, 0 },
	{ "busy_late_report/fn", case_busy_late_report, T_FN, 0 },
	{ "busy_then_stall/fn", case_busy_then_stall, T_FN, 0 },
	{ "busy_then_stall_fresh/fn", case_busy_then_stall_fresh, T_FN, 0 },
	{ "report_wins/fn", case_report_wins, T_FN, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
