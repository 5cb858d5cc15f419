/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The watchdog in real time.  A stub that falls silent (spins, sleeps in a
 * futex, is stopped, floods its eventfd) is killed within [N*T, (N+1)*T] of
 * its resume, and the loop goes on serving a new stub; a stub that keeps
 * reporting is never killed, nor is one whose monitor was busy elsewhere.
 *
 * Timing: the silence starts at the resume, somewhere between the clock
 * reads before and after sw_stub_resume(); the kill is stamped with the
 * clock at its SIGKILL (sw_kill_info.killed_at_ns), and it lies in
 * [N*T, (N+1)*T] of the resume plus exactly what the loop says it owes:
 * its own lateness and the stub's starvation credit, no slack of the
 * test's (t_assert_kill_window()).
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

/* t - t0 in ms, negative if t comes first */
static double ms_since(uint64_t t, uint64_t t0)
{
	return ((double)t - (double)t0) / 1e6;
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
			   const char *what)
{
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;
	uint64_t t0, t1;

	t_echo(stub, 10);
	t_pl(stub)->arg = stall_arg;
	t_pl(stub)->req = T_REQ_STALL;
	if (prepare)
		prepare(stub);
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	assert_stall_kill(&ev, pid);
	t_assert_kill_window(what, loop, t0, t1, &ev.kill);
	t_assert(sw_stub_free(stub) == NULL);
}

static void case_stall_spin(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);

	stall_and_time(loop, mode, T_STALL_SPIN, NULL, "spin");
	serve_new_stub(loop, mode);
	stall_and_time(loop, mode, T_STALL_BLOCKED_SPIN, NULL,
		       "spin, SIGALRM blocked");
	serve_new_stub(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_stall_futex(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);

	stall_and_time(loop, mode, T_STALL_FUTEX, NULL, "futex");
	serve_new_stub(loop, mode);
	stall_and_time(loop, mode, T_STALL_BLOCKED_FUTEX, NULL,
		       "futex, SIGALRM blocked");
	serve_new_stub(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
}

/*
 * A stub whose exit the kernel takes a while to tear down (512 MiB of
 * small pages to free: about 40 ms on an idle 2-core machine, far more
 * than the loop's timer period of T/8 = 2.5 ms) stalls.  The wait ends
 * with its kill at the first timer read a period after the SIGKILL, with
 * the SIGKILL's status, while the kernel is still ending it: the stub is
 * not yet reaped when the wait returns.  (Before, the wait lasted until
 * the kernel had finished; on a loaded host, seconds.)  Freeing it then
 * does not wait either; sw_loop_free() reaps it once the kernel is done,
 * and no zombie is left.
 */
#define T_HEAVY_BYTES (512ull << 20)

/*
 * A wait on a stub with a slow teardown returned at t_ret, the stub then in
 * `state` (0: gone, reaped).  Still there: the wait did not wait for the
 * kernel.  Gone: either the wait waited for the reap (the defect), or the
 * kernel finished first.  The loop ends such a wait at its first timer read
 * a period after the SIGKILL, so by the kill (killed_at, just before the
 * SIGKILL; with no kill info, its bound past t0: (N+1)*T plus the loop's
 * worst lateness) plus two periods (one for the /proc reads before the
 * SIGKILL) and its longest gap between reads, as it measured them: a wait
 * that ended later waited for the reap; one that ended sooner proves
 * nothing either way (SKIP).
 */
static uint64_t loop_reach(struct sw_loop *loop, bool with_kill)
{
	struct sw_loop_stats st = { .size = sizeof(st) };
	struct sw_loop_opts o = { .size = sizeof(o) };
	uint64_t reach;

	t_assert_rc(sw_loop_get_stats(loop, &st, 0), 0);
	t_assert_rc(sw_loop_get_opts(loop, &o), 0);
	reach = 2 * (o.tick_ns / o.timer_div) + st.max_gap_ns;
	if (with_kill)
		reach += (o.stall_ticks + 1) * o.tick_ns + st.max_late_ns;
	return reach;
}

static void assert_ended_early(const char *what, struct sw_loop *loop,
			       char state, uint64_t killed_at, uint64_t t_ret)
{
	uint64_t reach;

	if (state)
		return;
	reach = loop_reach(loop, false);
	t_assert_msg(t_ret - killed_at <= reach,
		     "%s: the wait waited for the kernel's teardown and the "
		     "reap: it ended %.1f ms after the kill, where the loop "
		     "would have ended it by %.1f ms", what,
		     (t_ret - killed_at) / 1e6, reach / 1e6);
	t_skip("inconclusive: %s: the kernel ended the stub within %.1f ms, "
	       "before the loop could", what, (t_ret - killed_at) / 1e6);
}

/* A stub with T_HEAVY_BYTES written, on `loop`: it fills them on a loop
 * of its own whose stall limit (a minute) leaves it the time. */
static struct sw_stub *heavy_stub(struct sw_loop *loop, intptr_t mode)
{
	struct sw_loop *roomy = t_loop_opts(1000 * T_MS, 60, 0, 0);
	struct sw_stub *stub = t_spawn_echo(roomy, mode);
	struct sw_event ev;

	t_pl(stub)->arg = T_HEAVY_BYTES;
	t_assert_rc(t_request(stub, T_REQ_HEAVY, &ev), SW_EV_REPORT);
	t_assert_eq(t_pl(stub)->result, T_HEAVY_BYTES);
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert(sw_loop_free(roomy) == NULL);
	t_assert_rc(sw_stub_attach(stub, loop), 0);
	return stub;
}

static void case_slow_teardown(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = heavy_stub(loop, mode);
	struct sw_loop_stats st = { .size = sizeof(st) };
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;
	uint64_t t0, t1, t_ret, t_zombie;
	char state;

	t_pl(stub)->arg = T_STALL_BLOCKED_FUTEX;
	t_pl(stub)->req = T_REQ_STALL;
	t_assert_rc(sw_loop_get_stats(loop, &st, 1), 0);
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t_ret = t_now_ns();
	state = t_proc_state(pid);
	t_assert_rc(sw_loop_get_stats(loop, &st, 0), 0);
	assert_stall_kill(&ev, pid);
	t_assert_kill_window("512 MiB to tear down", loop, t0, t1, &ev.kill);
	assert_ended_early("stall kill", loop, state, ev.kill.killed_at_ns,
			   t_ret);
	t_assert(t_wait_proc_state(pid, "Z", 60000 * T_MS));
	t_zombie = t_now_ns();
	t_note("the wait ended %.1f ms after the SIGKILL, the stub then in "
	       "state %c; its zombie came %.1f ms after the SIGKILL (the "
	       "loop's timer reads late by %.2f ms at worst)",
	       (t_ret - ev.kill.killed_at_ns) / 1e6, state,
	       (t_zombie - ev.kill.killed_at_ns) / 1e6, st.max_late_ns / 1e6);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
	t_assert(t_proc_state(pid) == 0);
	t_assert(t_no_children());
}

/* The killed stub is freed while the kernel is still ending it: neither
 * sw_stub_free() nor the next wait waits for it, and sw_loop_free() reaps
 * it. */
static void case_slow_teardown_free(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = heavy_stub(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;
	char state;
	uint64_t t0, t1;

	t_pl(stub)->arg = T_STALL_BLOCKED_FUTEX;
	t_assert_rc(t_request(stub, T_REQ_STALL, &ev), SW_EV_KILL);
	t0 = t_now_ns();
	assert_stall_kill(&ev, pid);
	assert_ended_early("stall kill", loop, t_proc_state(pid),
			   ev.kill.killed_at_ns, t0);
	t0 = t_now_ns();
	t_assert(sw_stub_free(stub) == NULL);
	t1 = t_now_ns();
	state = t_proc_state(pid);
	t_note("freed in %.3f ms, then in state %c", (t1 - t0) / 1e6,
	       state ? state : '-');
	/* gone: reaped by the free's one look, which must not have waited */
	t_assert_msg(state != 0 || t1 - t0 <= loop_reach(loop, false),
		     "sw_stub_free() waited %.1f ms for the teardown",
		     (t1 - t0) / 1e6);
	serve_new_stub(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
	t_assert(t_proc_state(pid) == 0);
	t_assert(t_no_children());
}

/* The same stub detached after its KILL, then freed: no loop is left to
 * reap it later, so sw_stub_free() waits for the teardown and reaps it. */
static void case_slow_teardown_detached(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = heavy_stub(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;

	t_pl(stub)->arg = T_STALL_BLOCKED_FUTEX;
	t_assert_rc(t_request(stub, T_REQ_STALL, &ev), SW_EV_KILL);
	assert_stall_kill(&ev, pid);
	t_note("detached in state %c", t_proc_state(pid) ? t_proc_state(pid)
							  : '-');
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(t_proc_state(pid) == 0);
	t_assert(sw_loop_free(loop) == NULL);
	t_assert(t_no_children());
}

/*
 * A stub that exits on its own, with exit_group(3) or (0), and whose
 * teardown outlasts its deadline (T = 8 ms, N = 2): the deadline's SIGKILL
 * finds it exiting.  (A stub that a loaded host has not let run until its
 * deadline is killed before it exits: a KILL then, and the case proves
 * nothing: SKIP.)  With 3, a period later the wait ends in its EXIT with
 * its own status while the kernel is still taking it down (its exit_code
 * says so for certain).  With 0, which exit_code also reads before the
 * kernel sets it, a stub busy freeing its memory (running, so /proc does
 * not show its exit_group() call) is waited for: its EXIT 0 comes with
 * the reap.
 */
static void case_slow_teardown_exit(intptr_t mode)
{
	static const int codes[] = { 3, 0 };

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct sw_loop *loop = t_loop_opts(8 * T_MS, 2, 0, 0);
		struct sw_stub *stub = heavy_stub(loop, mode);
		pid_t pid = sw_stub_pid(stub);
		struct sw_event ev;
		uint64_t t0, t_ret;
		char state;
		int rc;

		t_pl(stub)->arg = (uint64_t)codes[i];
		t0 = t_now_ns();
		rc = t_request(stub, T_REQ_EXIT, &ev);
		t_ret = t_now_ns();
		state = t_proc_state(pid);
		if (rc == SW_EV_KILL) {
			t_assert(WIFSIGNALED(ev.status) &&
				 WTERMSIG(ev.status) == SIGKILL);
			t_skip("inconclusive: exit(%d): killed at %.1f ms, "
			       "before it began its exit (it waited %.1f ms "
			       "for a CPU)", codes[i],
			       (ev.kill.killed_at_ns - t0) / 1e6,
			       ev.kill.stall_wait_ns / 1e6);
		}
		t_assert_rc(rc, SW_EV_EXIT);
		t_assert(WIFEXITED(ev.status));
		t_assert_eq(WEXITSTATUS(ev.status), codes[i]);
		t_note("exit(%d): the wait ended in state %c", codes[i],
		       state ? state : '-');
		if (codes[i] && !state)
			t_assert_msg(t_ret - t0 <= loop_reach(loop, true),
				     "exit(%d): the wait waited %.1f ms for "
				     "the kernel's teardown and the reap",
				     codes[i], (t_ret - t0) / 1e6);
		t_assert(sw_stub_free(stub) == NULL);
		t_assert(sw_loop_free(loop) == NULL);
		t_assert(t_no_children());
	}
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

	stall_and_time(loop, mode, 0, sigstop_it, "SIGSTOPped by the test");
	serve_new_stub(loop, mode);
	stall_and_time(loop, mode, T_STALL_STOP_SELF, NULL,
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
	uint64_t t0, t1;
	pid_t pid;

	t0 = t_now_ns();
	t_assert_rc(t_spawn_rc(loop, mode, "stall", T_STALL_FUTEX, 0, &stub), 0);
	t1 = t_now_ns();
	pid = sw_stub_pid(stub);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	assert_stall_kill(&ev, pid);
	t_assert_kill_window("silent from the spawn", loop, t0, t1, &ev.kill);
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
		stall_and_time(loop, mode, T_STALL_FUTEX, NULL, what);
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
	uint64_t t0, t1, t2, cpu0, cpu;

	t_pl(stub)->arg = T_STALL_FLOOD;
	t_pl(stub)->req = T_REQ_STALL;
	cpu0 = thread_cpu_ns();
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t2 = t_now_ns();
	cpu = thread_cpu_ns() - cpu0;
	assert_stall_kill(&ev, pid);
	t_assert_kill_window("flood", loop, t0, t1, &ev.kill);
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
	uint64_t t0, t1;

	t_assert_rc(sw_stub_set_callback(flooder, on_done, &d), 0);
	t_pl(flooder)->arg = T_STALL_FLOOD;
	t_pl(flooder)->req = T_REQ_STALL;
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(flooder), 0);
	t1 = t_now_ns();
	/* until the kill (the case's timeout catches a watchdog that never
	 * fires; the kill's time is checked below) */
	while (!d.done) {
		t_echo(busy, 1);
		rounds++;
	}
	assert_stall_kill(&d.ev, pid);
	t_assert_kill_window("flood beside a busy stub", loop, t0, t1,
			     &d.ev.kill);
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
 * (silence is counted from the first timer read after the resume, and
 * expirations from before the wait began never count).  `fresh`: the loop had gone idle (timer disarmed) before the
 * resume, so the resume arms the timer anew.
 */
static bool dispatch_once(struct sw_loop *loop, int timeout_ms);

static void busy_then_stall(intptr_t mode, bool fresh)
{
	struct sw_loop_opts o = { .size = sizeof(o) };
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	const struct sw_kill_info *k;
	struct sw_event ev;
	uint64_t t0, t1, tw, period;

	if (fresh) {
		/* a timer read with nothing in flight disarms the timer */
		t_sleep_ns(2 * T_TICK_NS);
		dispatch_once(loop, 0);
	}
	t_pl(stub)->arg = T_STALL_FUTEX;
	t_pl(stub)->req = T_REQ_STALL;
	t_assert_rc(sw_loop_get_opts(loop, &o), 0);
	period = o.tick_ns / o.timer_div;
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	/* half a timer period off the timer's phase, so that no phase
	 * alignment hides an early kill */
	t_sleep_ns(3 * NT + period / 2);
	tw = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	assert_stall_kill(&ev, pid);
	k = &ev.kill;
	/* the contract, from the resume: the busy time is the monitor's own
	 * lateness, and monitor_late_ns owns up to it */
	t_assert_kill_window(fresh ? "timer armed at the resume, monitor busy "
				     "3*N*T"
				   : "timer running at the resume, monitor busy "
				     "3*N*T",
			     loop, t0, t1, k);
	/* From the wait's start: the loop's first timer read after the resume
	 * comes in the wait, and the periods it finds never count, so N*T
	 * of them still lie ahead. */
	t_assert_msg(k->killed_at_ns >= tw + NT + k->starved_ns,
		     "killed %.3f ms into the wait, before N*T",
		     ms_since(k->killed_at_ns, tw));
	/* ... and no later than watchdog.h's bound allows, which is sharper
	 * than the contract's: kill <= R + (N*k + 2)*P + L_a + L_x (+ the
	 * credit), and monitor_late_ns is L_a + L_x.  Here L_a, the first
	 * read's lateness, is the busy time itself, so what is left of the
	 * bound is N*T + 2 periods after the wait's start, plus the killing
	 * read's lateness. */
	t_assert_msg(k->killed_at_ns <= t1 + NT + 2 * period +
					       k->monitor_late_ns +
					       k->starved_ns,
		     "killed %.3f ms into the wait: over N*T + 2*P + %.3f ms "
		     "late (%.3f ms of it the busy time)",
		     ms_since(k->killed_at_ns, tw), ms(k->monitor_late_ns),
		     ms(tw - t1));
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

#define RW_READS 200

struct rw {
	unsigned ticks;
	uint64_t at[RW_READS];      /* when the dispatch of each read ran its
				       tick callback                       */
	uint64_t periods[RW_READS]; /* the loop's counted periods after it  */
	struct done d;
};

/* Called once per dispatch that read the timer; each dispatch here makes
 * one epoll_wait (a handful of fds), so at most one read: this counts the
 * timer reads, and notes what each one counted (sw_loop_get_stats()). */
static int rw_tick(struct sw_loop *loop, void *ud)
{
	struct rw *rw = ud;
	struct sw_loop_stats st = { .size = sizeof(st) };

	t_assert_rc(sw_loop_get_stats(loop, &st, 0), 0);
	t_assert(rw->ticks < RW_READS);
	rw->at[rw->ticks] = t_now_ns();
	rw->periods[rw->ticks] = st.timer_periods;
	rw->ticks++;
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

/* Periods counted against a stub by its first r reads after the resume:
 * the first read after the resume never counts. */
static uint64_t rw_counted(const struct rw *rw, unsigned r)
{
	return r ? rw->periods[r - 1] - rw->periods[0] : 0;
}

static void case_report_wins(intptr_t unused)
{
	const uint64_t limit = T_STALL * 2 + 1; /* N*k + 1 periods, k = 2 */
	struct sw_loop *loop = t_loop_opts(T_TICK_NS, T_STALL, 2,
					   SW_LOOP_TICK_EVENTS);
	struct rw rw = { 0 };
	struct sw_stub *stub;
	unsigned kill_read = 0, attempt;
	uint64_t end, credit;

	t_assert_rc(sw_loop_set_tick_callback(loop, rw_tick, &rw), 0);

	/* control: a silent stub is killed by the first timer read that makes
	 * N*k + 1 counted periods since the resume, the first read after the
	 * resume not counting (with prompt reads of one period each: read
	 * N*k + 2).  The killing read's dispatch runs its tick callback after
	 * the SIGKILL; the read before it, before. */
	stub = rw_spawn(loop, &rw);
	t_assert_rc(sw_stub_resume(stub), 0);
	while (!rw.d.done)
		dispatch_once(loop, 1000);
	t_assert_eq(rw.d.ev.type, SW_EV_KILL);
	t_assert_eq(rw.d.ev.kill.reason, SW_KILL_STALL);
	credit = rw.d.ev.kill.starved_ns / (T_TICK_NS / 2);
	while (kill_read < rw.ticks &&
	       rw.at[kill_read] < rw.d.ev.kill.killed_at_ns)
		kill_read++;
	t_assert(kill_read < rw.ticks);
	kill_read++; /* reads are numbered from 1 */
	t_note("killed on timer read %u after the resume, %" PRIu64
	       " periods counted (the read before: %" PRIu64 "), %" PRIu64
	       " credited", kill_read, rw_counted(&rw, kill_read),
	       rw_counted(&rw, kill_read - 1), credit);
	/* (a stub kept off the CPU before it went to sleep has its deadline
	 * moved by its credit; the read before the kill saw no more credit
	 * than the killing one) */
	t_assert(rw_counted(&rw, kill_read) >= limit + credit);
	t_assert(rw_counted(&rw, kill_read - 1) < limit + credit);
	t_assert(sw_stub_free(stub) == NULL);

	/* the same, but the stub reports when N*k periods are counted, just
	 * before the read that would kill it is taken: both are ready in one
	 * epoll_wait, and the report wins.  A read late enough to count two
	 * periods can jump over N*k; then the stub is killed (rightly), and
	 * the attempt is made again. */
	for (attempt = 0; attempt < 5; attempt++) {
		rw.d.done = false;
		stub = rw_spawn(loop, &rw);
		t_assert_rc(sw_stub_resume(stub), 0);
		while (!rw.d.done && rw_counted(&rw, rw.ticks) < limit - 1)
			dispatch_once(loop, 1000);
		if (rw.d.done || rw_counted(&rw, rw.ticks) != limit - 1) {
			t_note("attempt %u: a read counted past N*k periods",
			       attempt);
			while (!rw.d.done)
				dispatch_once(loop, 1000);
			t_assert_eq(rw.d.ev.type, SW_EV_KILL);
			t_assert(sw_stub_free(stub) == NULL);
			continue;
		}
		__atomic_store_n(&t_pl(stub)->gate, 1, __ATOMIC_RELEASE);
		t_futex_wake(&t_pl(stub)->gate);
		end = t_now_ns() + 1000 * T_MS;
		while (__atomic_load_n(&sw_stub_page(stub)->state,
				       __ATOMIC_ACQUIRE) != SW_STATE_IN_KERN)
			t_assert(t_now_ns() < end);
		/* let the next expiration come too: a period after the last
		 * read at most */
		t_sleep_ns(T_TICK_NS / 2 + 3 * T_MS);
		kill_read = rw.ticks + 1;
		t_assert(dispatch_once(loop, 0));
		t_assert_msg(rw.ticks == kill_read,
			     "the report and the timer came in separate "
			     "dispatches (%u reads, expected %u)", rw.ticks,
			     kill_read);
		t_assert(rw.d.done);
		t_assert_msg(rw.d.ev.type == SW_EV_REPORT, "got %s, not REPORT",
			     t_ev_name(rw.d.ev.type));
		t_assert_eq(t_pl(stub)->ack, T_REQ_GATED + 1);
		t_assert(!pidfd_dead(sw_stub_pidfd(stub),
				     3 * (int)(T_TICK_NS / T_MS)));
		t_assert(sw_stub_free(stub) == NULL);
		t_assert(sw_loop_free(loop) == NULL);
		return;
	}
	t_assert(sw_loop_free(loop) == NULL);
	t_skip("in 5 attempts the monitor never read the timer before a "
	       "read that counted past N*k periods");
}

static const struct t_case cases[] = {
	{ "stall_spin/fn", case_stall_spin, T_FN, 0 },
	{ "stall_spin/exec", case_stall_spin, T_EXEC, 0 },
	{ "stall_spin/fn+poll", case_stall_spin, T_FN | T_POLL, 0 },
	{ "stall_futex/fn", case_stall_futex, T_FN, 0 },
	{ "stall_futex/exec", case_stall_futex, T_EXEC, 0 },
	{ "stall_futex/exec+poll", case_stall_futex, T_EXEC | T_POLL, 0 },
	{ "slow_teardown/fn", case_slow_teardown, T_FN, 0 },
	{ "slow_teardown/exec", case_slow_teardown, T_EXEC, 0 },
	{ "slow_teardown_free/fn", case_slow_teardown_free, T_FN, 0 },
	{ "slow_teardown_exit/fn", case_slow_teardown_exit, T_FN, 0 },
	{ "slow_teardown_exit/exec", case_slow_teardown_exit, T_EXEC, 0 },
	{ "slow_teardown_detached/fn", case_slow_teardown_detached, T_FN, 0 },
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
