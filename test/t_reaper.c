/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Foreign reapers cannot steal a stub's exit status.  A stub that runs a
 * function is a clone3() child with exit_signal 0: SIGCHLD = SIG_IGN (or
 * SA_NOCLDWAIT) does not auto-reap it, no SIGCHLD is sent for it, and a
 * plain waitpid(-1) or waitid(P_ALL) from another thread (libev's default
 * loop does that) never sees it.  An exec'd stub loses exit_signal 0 at
 * execve() (the kernel resets it to SIGCHLD), so a host can reap it; the
 * monitor must still get its true status (from the pidfd, Linux 6.15+;
 * before that the header allows status -1, and those cases skip).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

/* The status of an EXIT or KILL: exactly the true one.  -1 ("another
 * process reaped it, the kernel cannot tell") is allowed for exec'd stubs
 * only, and then the kernel is too old for this case. */
#define assert_status(ev, cond)                                               \
	do {                                                                  \
		if ((ev).status == -1 && T_PMODE(mode) == T_EXEC)             \
			t_skip("a stolen status is unknown before Linux 6.15"); \
		t_assert_msg(cond, "status 0x%x: !(%s)", (ev).status, #cond); \
	} while (0)

/* Stubs that exit, die by a signal and are killed by the watchdog; each
 * status must come back intact. */
static void stub_deaths(struct sw_loop *loop, intptr_t mode)
{
	struct sw_stub *stub;
	struct sw_event ev;

	stub = t_spawn(loop, mode, "exit", 42);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
	assert_status(ev, WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 42);
	t_assert(sw_stub_free(stub) == NULL);

	stub = t_spawn_echo(loop, mode);
	t_echo(stub, 50);
	t_pl(stub)->arg = 17;
	t_assert_rc(t_request(stub, T_REQ_EXIT, &ev), SW_EV_EXIT);
	assert_status(ev, WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 17);
	t_assert(sw_stub_free(stub) == NULL);

	stub = t_spawn(loop, mode, "signal", SIGTERM);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
	assert_status(ev, WIFSIGNALED(ev.status) &&
			  WTERMSIG(ev.status) == SIGTERM);
	t_assert(sw_stub_free(stub) == NULL);

	stub = t_spawn(loop, mode, "stall", T_STALL_FUTEX);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	assert_status(ev, WIFSIGNALED(ev.status) &&
			  WTERMSIG(ev.status) == SIGKILL);
	t_assert(sw_stub_free(stub) == NULL);

	/* dies while nobody waits; found at the next resume */
	stub = t_spawn_echo(loop, mode);
	t_pl(stub)->arg = 9;
	t_pl(stub)->delay_ns = 5 * T_MS; /* after its report is taken */
	t_pl(stub)->req = T_REQ_EXIT_IDLE;
	t_assert_rc(sw_stub_run(stub, &ev), SW_EV_REPORT);
	t_sleep_ns(20 * T_MS);
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
	assert_status(ev, WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 9);
	t_assert(sw_stub_free(stub) == NULL);
}

static volatile sig_atomic_t sigchld_count;

static void on_sigchld(int sig)
{
	sigchld_count++;
}

static void case_sigchld_ignored(intptr_t mode)
{
	struct sw_loop *loop = t_loop();

	t_assert(signal(SIGCHLD, SIG_IGN) != SIG_ERR);
	stub_deaths(loop, mode);
	t_assert(signal(SIGCHLD, SIG_DFL) != SIG_ERR);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_sa_nocldwait(intptr_t mode)
{
	struct sigaction sa = { .sa_handler = on_sigchld,
				.sa_flags = SA_NOCLDWAIT | SA_RESTART };
	struct sw_loop *loop = t_loop();

	sigchld_count = 0;
	t_assert(sigaction(SIGCHLD, &sa, NULL) == 0);
	stub_deaths(loop, mode);
	t_assert(signal(SIGCHLD, SIG_DFL) != SIG_ERR);
	/* exit_signal 0: not one SIGCHLD for all those deaths */
	t_note("%d SIGCHLD for 5 stub deaths", (int)sigchld_count);
	if (T_PMODE(mode) == T_FN)
		t_assert_eq(sigchld_count, 0);
	t_assert(sw_loop_free(loop) == NULL);
}

enum reaper_kind { WAITPID_BLOCKING, WAITPID_NOHANG, WAITID_ALL_NOHANG };

struct reaper {
	enum reaper_kind kind;
	pid_t decoy;
	int stop;         /* atomic */
	int stolen;       /* atomic: pids reaped that were not the decoy */
	int decoy_reaped; /* atomic */
};

static void *reaper_thread(void *arg)
{
	struct reaper *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) ||
	       !__atomic_load_n(&r->decoy_reaped, __ATOMIC_ACQUIRE)) {
		siginfo_t si;
		pid_t pid;

		switch (r->kind) {
		case WAITPID_BLOCKING:
			pid = waitpid(-1, NULL, 0);
			break;
		case WAITPID_NOHANG:
			pid = waitpid(-1, NULL, WNOHANG);
			break;
		default:
			memset(&si, 0, sizeof(si));
			pid = waitid(P_ALL, 0, &si, WEXITED | WNOHANG) == 0
				      ? si.si_pid : -1;
			break;
		}
		if (pid == r->decoy)
			__atomic_store_n(&r->decoy_reaped, 1, __ATOMIC_RELEASE);
		else if (pid > 0)
			__atomic_add_fetch(&r->stolen, 1, __ATOMIC_RELAXED);
		else if (pid < 0 && errno == ECHILD &&
			 __atomic_load_n(&r->decoy_reaped, __ATOMIC_ACQUIRE))
			break;
		/* a polling host polls often, but does not burn a CPU */
		if (r->kind != WAITPID_BLOCKING && pid <= 0)
			t_sleep_ns(T_MS / 10);
	}
	return NULL;
}

/* A host thread reaping every child while the loop runs stubs.  A decoy
 * child (fork) keeps the blocking waitpid(-1) blocked rather than failing
 * with ECHILD, as a host with children of its own would be. */
static void reaper_case(intptr_t mode, enum reaper_kind kind)
{
	struct reaper r = { .kind = kind };
	struct sw_loop *loop = t_loop();
	pthread_t th;

	fflush(NULL);
	r.decoy = fork();
	t_assert(r.decoy >= 0);
	if (r.decoy == 0) {
		pause();
		_exit(0);
	}
	t_assert(pthread_create(&th, NULL, reaper_thread, &r) == 0);
	stub_deaths(loop, mode);
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	kill(r.decoy, SIGKILL);
	t_assert(pthread_join(th, NULL) == 0);
	t_note("the host reaped %d of the 5 stubs first",
	       __atomic_load_n(&r.stolen, __ATOMIC_RELAXED));
	/* statuses intact either way (stub_deaths); invisible if not exec'd */
	if (T_PMODE(mode) == T_FN)
		t_assert_eq(__atomic_load_n(&r.stolen, __ATOMIC_RELAXED), 0);
	t_assert(r.decoy_reaped);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_waitpid_blocking(intptr_t mode)
{
	reaper_case(mode, WAITPID_BLOCKING);
}

static void case_waitpid_nohang(intptr_t mode)
{
	reaper_case(mode, WAITPID_NOHANG);
}

static void case_waitid_nohang(intptr_t mode)
{
	reaper_case(mode, WAITID_ALL_NOHANG);
}

/* Field 38 of /proc/PID/stat: the signal the parent gets at its death. */
static int proc_exit_signal(pid_t pid)
{
	char path[64], buf[1024], *p;
	int field = 3;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	t_assert(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	t_assert(p);
	for (p += 2; field < 38 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	t_assert(p);
	return atoi(p);
}

/* The root of the immunity: exit_signal 0, for the stub's whole life.
 * (fn mode only: execve() resets it to SIGCHLD, as the header says.) */
static void case_exit_signal(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);

	t_assert_eq(proc_exit_signal(sw_stub_pid(stub)), 0);
	t_echo(stub, 5);
	t_assert_eq(proc_exit_signal(sw_stub_pid(stub)), 0);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

/*
 * A host that reaps with __WALL can take any child, stubs included.  The
 * header does not say what the wait returns then; it must at least return
 * (an EXIT, or an error), not spin on a pidfd that stays readable.
 *
 * The stub dies once its report is taken, killed by the test: a stub that
 * exited by itself a few ms after its report could be dead before a late
 * monitor took the report, and the loop would reap it first.
 */
static void case_stolen_by_wall(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;
	siginfo_t si;
	uint64_t t0;
	int rc;

	t_echo(stub, 1);
	t_assert(kill(pid, SIGKILL) == 0);
	memset(&si, 0, sizeof(si));
	t_assert(waitid(P_PID, (id_t)pid, &si, WEXITED | __WALL) == 0);
	t_assert_eq(si.si_code, CLD_KILLED);
	t_assert_eq(si.si_status, SIGKILL);
	t_assert_rc(sw_stub_resume(stub), 0);
	t0 = t_now_ns();
	rc = sw_stub_wait(stub, &ev);
	t_note("wait after the theft: %s (%d) in %.1f ms", t_ev_name(rc), rc,
	       (double)(t_now_ns() - t0) / 1e6);
	t_assert(rc == SW_EV_EXIT || rc < 0);
	/* an EXIT carries the true status (the pidfd keeps it, 6.15+) */
	if (rc == SW_EV_EXIT && ev.status == -1)
		t_skip("a stolen status is unknown before Linux 6.15");
	if (rc == SW_EV_EXIT)
		t_assert(WIFSIGNALED(ev.status) &&
			 WTERMSIG(ev.status) == SIGKILL);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

/* A stolen status leaves nothing to wait for: fail in 3 s, not 10.  The
 * cases with five stub lives (a stall kill among them) get the default: on
 * a host loaded by CPU hogs and builds they have taken more than 3 s. */
static const struct t_case cases[] = {
	{ "exit_signal/fn", case_exit_signal, T_FN, 0 },
	{ "stolen_by_wall/fn", case_stolen_by_wall, T_FN, 3 },
	{ "stolen_by_wall/exec", case_stolen_by_wall, T_EXEC, 3 },
	{ "sigchld_ignored/fn", case_sigchld_ignored, T_FN, 0 },
	{ "sigchld_ignored/exec", case_sigchld_ignored, T_EXEC, 0 },
	{ "sa_nocldwait/fn", case_sa_nocldwait, T_FN, 0 },
	{ "sa_nocldwait/exec", case_sa_nocldwait, T_EXEC, 0 },
	{ "waitpid_blocking/fn", case_waitpid_blocking, T_FN, 0 },
	{ "waitpid_blocking/exec", case_waitpid_blocking, T_EXEC, 0 },
	{ "waitpid_nohang/fn", case_waitpid_nohang, T_FN, 0 },
	{ "waitpid_nohang/exec", case_waitpid_nohang, T_EXEC, 0 },
	{ "waitid_nohang/fn", case_waitid_nohang, T_FN, 0 },
	{ "waitid_nohang/exec", case_waitid_nohang, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
