/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kill diagnostics: what sw_kill_info says about a stalled stub, read from
 * /proc at kill time: whether SIGALRM is blocked (the hijack's signature),
 * the state letter, CPU time, the silence and the ticks counted, and what
 * the stub did during the stall: ran, waited for a CPU (starved), or neither.
 * All of it for the whole thread group: a stub whose main thread has exited
 * while another thread spins with SIGALRM blocked is running (R), blocks
 * SIGALRM, and ran during the stall.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void sigstop_it(struct sw_stub *stub)
{
	pid_t pid = sw_stub_pid(stub);

	t_pl(stub)->req = 77; /* an ordinary request it cannot answer */
	t_assert(kill(pid, SIGSTOP) == 0);
	t_assert(t_wait_proc_state(pid, "Tt", 2000 * T_MS));
}

struct want {
	const char *what;
	uint64_t stall_arg;
	void (*prepare)(struct sw_stub *stub);
	int sigalrm_blocked;
	const char *states; /* acceptable state letters */
	bool burns_cpu;
	bool starved;       /* shares its CPU with a hog */
};

static void diag(intptr_t mode, const struct want *w)
{
	struct sw_loop *loop = t_loop_timed();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_loop_stats st = { .size = sizeof(st) };
	const struct sw_kill_info *k;
	struct sw_event ev;
	uint64_t t0, t1, t2, first_read;

	t_echo(stub, 5);
	/* a slow answer first, a tick and a half: the stall's figures must
	 * come from a baseline of the stall's own flight */
	t_pl(stub)->delay_ns = T_TICK_NS * 3 / 2;
	t_echo(stub, 1);
	t_pl(stub)->delay_ns = 0;
	t_pl(stub)->arg = w->stall_arg;
	t_pl(stub)->req = T_REQ_STALL;
	if (w->prepare)
		w->prepare(stub);
	t_assert_rc(sw_loop_get_stats(loop, &st, 1), 0);
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t2 = t_now_ns();
	t_assert_rc(sw_loop_get_stats(loop, &st, 0), 0);
	k = &ev.kill;
	t_note("pid %d reason %s silent %.2f ms ticks %u sigalrm_blocked %d "
	       "SigBlk %016" PRIx64 " state %c cpu %.2f ms (wait %.2f ms)",
	       k->pid, t_reason_name(k->reason), ms(k->silent_ns),
	       k->stall_ticks, k->sigalrm_blocked, k->sigblk, k->state,
	       ms(k->cpu_ns), ms(t2 - t1));
	t_note("stall window %.2f ms: ran %.2f ms, waited for a CPU %.2f ms; "
	       "credited %.2f ms; the monitor late %.2f ms (at worst %.2f ms "
	       "per read)", ms(k->stall_window_ns), ms(k->stall_run_ns),
	       ms(k->stall_wait_ns), ms(k->starved_ns), ms(k->monitor_late_ns),
	       ms(st.max_late_ns));

	t_assert_eq(k->reason, SW_KILL_STALL);
	t_assert_eq(k->pid, pid);
	t_assert(WIFSIGNALED(ev.status) && WTERMSIG(ev.status) == SIGKILL);
	t_assert_eq(k->sigalrm_blocked, w->sigalrm_blocked);
	t_assert_eq((k->sigblk >> (SIGALRM - 1)) & 1, w->sigalrm_blocked);
	t_assert_msg(k->state && strchr(w->states, k->state),
		     "state '%c', expected one of \"%s\"", k->state, w->states);
	if (w->burns_cpu)
		t_assert(k->cpu_ns > 0);
	/* "whole watchdog ticks of silence counted": the kill comes on the
	 * read that makes N*k + 1 counted periods, less the credit (and the
	 * window: t_assert_kill_window()) */
	t_assert_kill_window(w->what, loop, t0, t1, k);
	t_assert(k->killed_at_ns <= t2);
	/* silent_ns runs from the first timer read after the resume, which
	 * the loop takes in the wait, after t1: the silence was at least this
	 * long ... */
	first_read = k->killed_at_ns - k->silent_ns;
	t_assert_msg(first_read >= t1, "silent_ns %.3f ms > %.3f ms since the "
		     "resume", ms(k->silent_ns), ms(k->killed_at_ns - t1));
	/* ... and at most a timer period and that read's lateness shorter
	 * (watchdog.h: the first read comes by R + P + L_a, and L_a is part
	 * of monitor_late_ns) */
	t_assert_msg(first_read <= t1 + T_TICK_NS / SW_TIMER_DIV_DEFAULT +
					   k->monitor_late_ns,
		     "silence %.3f ms, silent_ns %.3f ms, the monitor late "
		     "%.3f ms", ms(k->killed_at_ns - t1), ms(k->silent_ns),
		     ms(k->monitor_late_ns));
	/* The window starts at the first read that finds a whole tick of
	 * silence counted and ends at the kill, which needs N - 1 more ticks
	 * of periods, all expiring after that read: the window is at least
	 * (N - 1)*T, less how far past the tick that read came late (at most
	 * the loop's worst lateness), and it lies inside the silence.  A
	 * spinning stub is runnable throughout it (running, or waiting for a
	 * CPU), a sleeping or stopped one hardly at all.  (The kernel brings
	 * a running task's CPU time up to date at its scheduler ticks, so the
	 * run time read may lag by a tick or two.) */
	t_assert_msg(k->stall_window_ns + st.max_late_ns >=
				     (T_STALL - 1) * T_TICK_NS &&
			     k->stall_window_ns <= k->silent_ns,
		     "window %.3f ms, silence %.3f ms, the monitor late %.3f "
		     "ms at worst", ms(k->stall_window_ns), ms(k->silent_ns),
		     ms(st.max_late_ns));
	if (w->burns_cpu)
		t_assert_msg(k->stall_run_ns + k->stall_wait_ns >=
				     k->stall_window_ns / 4 * 3,
			     "spinning, yet runnable %.3f ms of %.3f ms",
			     ms(k->stall_run_ns + k->stall_wait_ns),
			     ms(k->stall_window_ns));
	if (w->starved)
		t_assert_msg(k->stall_wait_ns >= k->stall_window_ns / 4,
			     "sharing its CPU, yet waited only %.3f ms of %.3f",
			     ms(k->stall_wait_ns), ms(k->stall_window_ns));
	if (!w->burns_cpu)
		t_assert_msg(k->stall_run_ns + k->stall_wait_ns <=
				     k->stall_window_ns / 4,
			     "not runnable, yet ran %.3f and waited %.3f ms",
			     ms(k->stall_run_ns), ms(k->stall_wait_ns));
	t_assert_eq(k->bad_state, 0);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_blocked_spin(intptr_t mode)
{
	const struct want w = { "blocked spin", T_STALL_BLOCKED_SPIN, NULL, 1,
				"R", true, false };

	diag(mode, &w);
}

/* The main thread gone (a zombie leader), another thread spinning with
 * SIGALRM blocked: the group is running, and blocks SIGALRM. */
static void case_leader_exit(intptr_t mode)
{
	const struct want w = { "leader exited, a thread spins",
				T_STALL_LEADER_EXIT, NULL, 1, "R", true,
				false };

	diag(mode, &w);
}

static void case_spin(intptr_t mode)
{
	const struct want w = { "spin", T_STALL_SPIN, NULL, 0, "R", true,
				false };

	diag(mode, &w);
}

/* A stub that spins on a CPU shared with a hog: starved, not only hung;
 * the stall figures tell the time it waited for the CPU. */
static pid_t hog = -1;

static void pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	t_assert(sched_setaffinity(pid, sizeof(set), &set) == 0);
}

static void share_cpu_with_hog(struct sw_stub *stub)
{
	cpu_set_t set;
	int cpu = -1;
	pid_t parent = getpid();

	t_assert(sched_getaffinity(0, sizeof(set), &set) == 0);
	for (int i = 0; i < CPU_SETSIZE && cpu < 0; i++)
		if (CPU_ISSET(i, &set))
			cpu = i;
	t_assert(cpu >= 0);
	hog = fork();
	t_assert(hog >= 0);
	if (hog == 0) {
		/* gone with the case, even if it fails first */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		for (;;)
			__asm__ volatile("" ::: "memory");
	}
	pin(hog, cpu);
	pin(sw_stub_pid(stub), cpu);
}

static void case_starved(intptr_t mode)
{
	const struct want w = { "starved spin", T_STALL_SPIN,
				share_cpu_with_hog, 0, "R", true, true };
	int status;

	diag(mode, &w);
	t_assert(kill(hog, SIGKILL) == 0);
	t_assert(waitpid(hog, &status, 0) == hog);
	hog = -1;
}

static void case_futex(intptr_t mode)
{
	const struct want w = { "futex", T_STALL_FUTEX, NULL, 0, "S", false,
				false };

	diag(mode, &w);
}

static void case_blocked_futex(intptr_t mode)
{
	const struct want w = { "blocked futex", T_STALL_BLOCKED_FUTEX, NULL,
				1, "S", false, false };

	diag(mode, &w);
}

static void case_sigstop(intptr_t mode)
{
	const struct want w = { "SIGSTOPped", 0, sigstop_it, 0, "Tt", false,
				false };

	diag(mode, &w);
}

static void case_stop_self(intptr_t mode)
{
	const struct want w = { "stopped itself", T_STALL_STOP_SELF, NULL, 0,
				"Tt", false, false };

	diag(mode, &w);
}

/* sw_stub_kill(): reason USER, no stall figures, /proc still read. */
static void case_user_kill(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed();
	struct sw_stub *idle = t_spawn_echo(loop, mode);
	struct sw_stub *busy = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(idle);
	struct sw_event ev;

	/* idle: reported and waiting in FUTEX_WAIT to be resumed */
	t_assert(t_wait_proc_state(pid, "S", 1000 * T_MS));
	t_assert_rc(sw_stub_kill(idle, SW_KILL_USER), 0);
	t_assert_rc(sw_stub_wait(idle, &ev), SW_EV_KILL);
	t_note("idle: state %c sigalrm_blocked %d", ev.kill.state,
	       ev.kill.sigalrm_blocked);
	t_assert_eq(ev.kill.reason, SW_KILL_USER);
	t_assert_eq(ev.kill.pid, pid);
	t_assert_eq(ev.kill.silent_ns, 0);
	t_assert_eq(ev.kill.stall_ticks, 0);
	t_assert_eq(ev.kill.sigalrm_blocked, 0);
	t_assert_eq(ev.kill.state, 'S');
	t_assert(WIFSIGNALED(ev.status) && WTERMSIG(ev.status) == SIGKILL);
	t_assert(sw_stub_free(idle) == NULL);

	/* in flight, spinning: PROTOCOL is the other reason a monitor may
	 * give; no bad state word was found */
	pid = sw_stub_pid(busy);
	t_pl(busy)->arg = T_STALL_SPIN;
	t_pl(busy)->req = T_REQ_STALL;
	t_assert_rc(sw_stub_resume(busy), 0);
	t_assert(t_wait_proc_state(pid, "R", 1000 * T_MS));
	/* let the loop read the timer a few times first: silence counted,
	 * but this is no STALL kill */
	t_sleep_ns(T_TICK_NS / 2);
	t_assert(sw_loop_dispatch(loop) >= 0);
	t_sleep_ns(T_TICK_NS / 2);
	t_assert(sw_loop_dispatch(loop) >= 0);
	t_assert_rc(sw_stub_kill(busy, SW_KILL_PROTOCOL), 0);
	t_assert_rc(sw_stub_wait(busy, &ev), SW_EV_KILL);
	t_assert_eq(ev.kill.reason, SW_KILL_PROTOCOL);
	t_assert_eq(ev.kill.pid, pid);
	t_assert_eq(ev.kill.silent_ns, 0);
	t_assert_eq(ev.kill.state, 'R');
	t_assert(sw_stub_free(busy) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static const struct t_case cases[] = {
	{ "blocked_spin/fn", case_blocked_spin, T_FN, 0 },
	{ "blocked_spin/exec", case_blocked_spin, T_EXEC, 0 },
	{ "starved/fn", case_starved, T_FN, 0 },
	{ "spin/fn", case_spin, T_FN, 0 },
	{ "leader_exit/fn", case_leader_exit, T_FN, 0 },
	{ "leader_exit/exec", case_leader_exit, T_EXEC, 0 },
	{ "futex/fn", case_futex, T_FN, 0 },
	{ "futex/exec", case_futex, T_EXEC, 0 },
	{ "blocked_futex/fn", case_blocked_futex, T_FN, 0 },
	{ "sigstop/fn", case_sigstop, T_FN, 0 },
	{ "sigstop/exec", case_sigstop, T_EXEC, 0 },
	{ "stop_self/fn", case_stop_self, T_FN, 0 },
	{ "user_kill/fn", case_user_kill, T_FN, 0 },
	{ "user_kill/exec", case_user_kill, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
