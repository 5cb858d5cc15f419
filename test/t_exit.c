/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stubs that die on their own: an exit code or a signal, at once, after
 * some round trips, or while idle.  The wait returns SW_EV_EXIT with the
 * waitpid-style status and the child is reaped (no zombie).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <sys/wait.h>

#include "t_util.h"

/* The pid is no child of ours any more: reaped, not a zombie. */
static void assert_reaped(struct sw_stub *stub, pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	t_assert(waitid(P_PID, (id_t)pid, &si,
			WEXITED | WNOHANG | WNOWAIT | __WALL) < 0);
	t_assert_eq(errno, ECHILD);
	t_assert_rc(sw_stub_pid(stub), -ESRCH);
	t_assert_rc(sw_stub_pidfd(stub), -ESRCH);
}

static void expect_exit(struct sw_stub *stub, struct sw_event *ev, pid_t pid)
{
	char buf[32];

	t_assert_eq(ev->type, SW_EV_EXIT);
	t_note("stub %d: %s", pid, t_status_str(ev->status, buf));
	assert_reaped(stub, pid);
}

static void case_exit_at_once(intptr_t mode)
{
	static const int codes[] = { 0, 1, 42, 255 };
	struct sw_loop *loop = t_loop();
	struct sw_event ev;
	unsigned i;

	for (i = 0; i < T_NCASES(codes); i++) {
		struct sw_stub *stub = t_spawn(loop, mode, "exit", codes[i]);
		pid_t pid = sw_stub_pid(stub);

		t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
		expect_exit(stub, &ev, pid);
		t_assert(WIFEXITED(ev.status));
		t_assert_eq(WEXITSTATUS(ev.status), codes[i]);
		/* over: nothing more to wait for */
		t_assert_rc(sw_stub_wait(stub, &ev), -ESRCH);
		t_assert(sw_stub_free(stub) == NULL);
	}
	t_assert_eq(sw_loop_count_stubs(loop), 0);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_exit_after_rounds(intptr_t mode)
{
	struct sw_loop *loop = t_loop_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;

	t_echo(stub, 500);
	t_pl(stub)->arg = 7;
	t_assert_rc(t_request(stub, T_REQ_EXIT, &ev), SW_EV_EXIT);
	expect_exit(stub, &ev, pid);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 7);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_signal_at_once(intptr_t mode)
{
	static const int sigs[] = { SIGUSR1, SIGTERM, SIGKILL, SIGSEGV };
	struct sw_loop *loop = t_loop();
	struct sw_event ev;
	unsigned i;

	for (i = 0; i < T_NCASES(sigs); i++) {
		struct sw_stub *stub = t_spawn(loop, mode, "signal", sigs[i]);
		pid_t pid = sw_stub_pid(stub);

		/* died on its own, even by SIGKILL: EXIT, not KILL */
		t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
		expect_exit(stub, &ev, pid);
		t_assert(WIFSIGNALED(ev.status));
		t_assert_eq(WTERMSIG(ev.status), sigs[i]);
		t_assert(sw_stub_free(stub) == NULL);
	}
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_signal_after_rounds(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;

	t_echo(stub, 100);
	t_pl(stub)->arg = SIGABRT;
	t_assert_rc(t_request(stub, T_REQ_SIGNAL, &ev), SW_EV_EXIT);
	expect_exit(stub, &ev, pid);
	t_assert(WIFSIGNALED(ev.status) && WTERMSIG(ev.status) == SIGABRT);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

/*
 * A stub that reports and then exits at once instead of waiting to be
 * resumed.  The monitor looks only once both are ready (one epoll_wait sees
 * the report and the death together): the wait returns the REPORT, which
 * must not be lost, and the death is found by the next resume + wait
 * ("resuming a stub that has died, its death not yet collected, succeeds").
 */
static void case_exit_while_idle(intptr_t mode)
{
	struct sw_loop *loop = t_loop_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;

	t_pl(stub)->arg = 3;
	t_pl(stub)->req = T_REQ_EXIT_IDLE;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert(t_wait_proc_state(pid, "Z", 2000 * T_MS)); /* dead, unreaped */
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	t_assert_eq(t_pl(stub)->ack, T_REQ_EXIT_IDLE + 1);
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
	expect_exit(stub, &ev, pid);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 3);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

/* Freeing a stub whose death was never collected reaps it. */
static void case_free_unreaped(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn(loop, mode, "exit", 9);

	t_assert(t_wait_proc_state(sw_stub_pid(stub), "Z", 2000 * T_MS));
	t_assert(sw_stub_free(stub) == NULL);
	t_assert_eq(sw_loop_count_stubs(loop), 0);
	t_assert(sw_loop_free(loop) == NULL);
	/* the harness asserts no zombie is left */
}

static const struct t_case cases[] = {
	{ "exit_at_once/fn", case_exit_at_once, T_FN, 0 },
	{ "exit_at_once/exec", case_exit_at_once, T_EXEC, 0 },
	{ "exit_after_rounds/fn", case_exit_after_rounds, T_FN, 0 },
	{ "exit_after_rounds/exec", case_exit_after_rounds, T_EXEC, 0 },
	{ "exit_after_rounds/fn+poll", case_exit_after_rounds, T_FN | T_POLL, 0 },
	{ "signal_at_once/fn", case_signal_at_once, T_FN, 0 },
	{ "signal_at_once/exec", case_signal_at_once, T_EXEC, 0 },
	{ "signal_after_rounds/fn", case_signal_after_rounds, T_FN, 0 },
	{ "signal_after_rounds/exec", case_signal_after_rounds, T_EXEC, 0 },
	{ "exit_while_idle/fn", case_exit_while_idle, T_FN, 0 },
	{ "exit_while_idle/exec", case_exit_while_idle, T_EXEC, 0 },
	{ "exit_while_idle/fn+poll", case_exit_while_idle, T_FN | T_POLL, 0 },
	{ "free_unreaped/fn", case_free_unreaped, T_FN, 0 },
	{ "free_unreaped/exec", case_free_unreaped, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
