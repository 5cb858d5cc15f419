/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stub's end at awkward moments: a death seen behind a pending report
 * (then detached, attached, killed), a death found outside any dispatch
 * (the loop fd must say so), a monitor thread with SIGALRM blocked, and an
 * idle stub flooding its eventfd.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "t_util.h"

/* A stub that reports, then exits with 3 without waiting to be resumed;
 * returns once it is a zombie, its report and death both unseen. */
static struct sw_stub *report_then_die(struct sw_loop *loop, intptr_t mode)
{
	struct sw_stub *stub = t_spawn_echo(loop, mode);

	t_pl(stub)->arg = 3;
	t_pl(stub)->req = T_REQ_EXIT_IDLE;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert(t_wait_proc_state(sw_stub_pid(stub), "Z", 2000 * T_MS));
	return stub;
}

/* Its death is owed behind the report: it may not leave the loop before
 * the death is delivered, and once reaped it joins no other loop. */
static void case_owed_death_detach(intptr_t mode)
{
	struct sw_loop *loop = t_loop(), *other = t_loop();
	struct sw_stub *stub = report_then_die(loop, mode);
	struct sw_event ev;

	t_expect(stub, SW_EV_REPORT, &ev);
	t_assert_rc(sw_stub_detach(stub), -EBUSY);
	t_assert_rc(sw_stub_resume(stub), 0);
	t_expect(stub, SW_EV_EXIT, &ev);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 3);
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_attach(stub, other), -ESRCH);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(other) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

/* The report and the death of B arrive during a wait on A: B's report is
 * pending, its death owed.  A kill of B then finds it dead (-ESRCH); B's
 * report and then its EXIT still arrive, once each. */
static void case_owed_death_kill(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *a = t_spawn_echo(loop, mode);
	struct sw_stub *b = report_then_die(loop, mode);
	struct sw_event ev;

	t_echo(a, 3);
	t_assert_rc(sw_stub_kill(b, SW_KILL_USER), -ESRCH);
	t_assert_rc(sw_stub_kill(b, SW_KILL_USER), -ESRCH);
	t_expect(b, SW_EV_REPORT, &ev);
	t_assert_eq(t_pl(b)->ack, T_REQ_EXIT_IDLE + 1);
	t_expect(b, SW_EV_EXIT, &ev);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 3);
	t_assert_rc(sw_stub_wait(b, &ev), -ESRCH);
	t_assert(sw_stub_free(b) == NULL);
	t_echo(a, 3);
	t_stop(a);
	t_assert(sw_loop_free(loop) == NULL);
}

struct seen {
	unsigned calls;
	struct sw_event ev;
};

static int on_event(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct seen *seen = ud;

	(void)stub;
	seen->calls++;
	seen->ev = *ev;
	return 0;
}

/* An idle stub killed from outside: sw_stub_kill() finds it dead and
 * queues its EXIT outside any dispatch.  A host that polls the loop's fd
 * must see the fd readable, and the dispatch must deliver the EXIT. */
static void case_death_found_outside_dispatch(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct seen seen = { 0 };
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };

	t_assert_rc(sw_stub_set_callback(stub, on_event, &seen), 0);
	t_assert(kill(sw_stub_pid(stub), SIGKILL) == 0);
	t_assert(t_wait_proc_state(sw_stub_pid(stub), "Z", 2000 * T_MS));
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), -ESRCH);
	t_assert_eq(poll(&pfd, 1, 2000), 1);
	t_assert_rc(sw_loop_dispatch(loop), 1);
	t_assert_eq(seen.calls, 1);
	t_assert_eq(seen.ev.type, SW_EV_EXIT);
	t_assert(WIFSIGNALED(seen.ev.status) &&
		 WTERMSIG(seen.ev.status) == SIGKILL);
	/* delivered: the fd is quiet again */
	t_assert_eq(poll(&pfd, 1, 0), 0);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static uint64_t sigblk_of(pid_t pid)
{
	char path[64], buf[4096], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	t_assert(f != NULL);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strstr(buf, "\nSigBlk:");
	t_assert(p != NULL);
	return strtoull(p + strlen("\nSigBlk:"), NULL, 16);
}

/* A monitor thread that blocks SIGALRM (for a signalfd, say) must not
 * hand that mask to its stubs: they would look hijacked. */
static void case_clean_signal_mask(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	sigset_t alrm, old;
	struct sw_stub *stub;

	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	t_assert(pthread_sigmask(SIG_BLOCK, &alrm, &old) == 0);
	stub = t_spawn_echo(loop, mode);
	t_assert(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
	t_assert_eq(sigblk_of(sw_stub_pid(stub)) & (1ull << (SIGALRM - 1)), 0);
	t_echo(stub, 3);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

static uint64_t thread_cpu_ns(void)
{
	struct rusage ru;

	t_assert(getrusage(RUSAGE_THREAD, &ru) == 0);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* B reports, then floods its eventfd while idle; meanwhile the monitor
 * waits 200 ms on A.  The flood is muted: the monitor thread stays nearly
 * idle, and B still works once resumed. */
static void case_idle_flood_muted(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *a = t_spawn_echo(loop, mode);
	struct sw_stub *b = t_spawn_echo(loop, mode);
	struct sw_event ev;
	uint64_t cpu0, t0, cpu, wall;

	t_assert_rc(t_request(b, T_REQ_FLOOD_IDLE, &ev), SW_EV_REPORT);
	t_sleep_ns(20 * T_MS); /* let the flood begin */
	t_pl(a)->delay_ns = 200 * T_MS; /* well inside N*T = 500 ms */
	cpu0 = thread_cpu_ns();
	t0 = t_now_ns();
	t_assert_rc(t_request(a, 7, &ev), SW_EV_REPORT);
	cpu = thread_cpu_ns() - cpu0;
	wall = t_now_ns() - t0;
	t_note("monitor thread: %.1f ms of CPU in %.1f ms while B flooded",
	       cpu / 1e6, wall / 1e6);
	t_assert(cpu < wall / 4);
	/* B is still a stub: it is stalled (flooding), so the watchdog
	 * takes it once it is resumed; it is not mistaken for reporting. */
	t_assert_rc(sw_stub_resume(b), 0);
	t_expect(b, SW_EV_KILL, &ev);
	t_assert_eq(ev.kill.reason, SW_KILL_STALL);
	t_assert(sw_stub_free(b) == NULL);
	t_pl(a)->delay_ns = 0;
	t_echo(a, 3);
	t_stop(a);
	t_assert(sw_loop_free(loop) == NULL);
}

static const struct t_case cases[] = {
	{ "owed_death_detach/fn", case_owed_death_detach, T_FN, 0 },
	{ "owed_death_detach/exec", case_owed_death_detach, T_EXEC, 0 },
	{ "owed_death_kill/fn", case_owed_death_kill, T_FN, 0 },
	{ "owed_death_kill/exec", case_owed_death_kill, T_EXEC, 0 },
	{ "death_found_outside_dispatch/fn", case_death_found_outside_dispatch, T_FN, 0 },
	{ "death_found_outside_dispatch/exec", case_death_found_outside_dispatch, T_EXEC, 0 },
	{ "clean_signal_mask/fn", case_clean_signal_mask, T_FN, 0 },
	{ "clean_signal_mask/exec", case_clean_signal_mask, T_EXEC, 0 },
	{ "idle_flood_muted/fn", case_idle_flood_muted, T_FN, 0 },
	{ "idle_flood_muted/exec", case_idle_flood_muted, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
