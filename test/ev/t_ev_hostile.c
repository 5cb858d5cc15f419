// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A stub that hides its own death, under libev.
 *
 * The stub forks a tracer that PTRACE_SEIZEs it (its parent) and then never
 * waits.  When the stub exits, or stalls and is killed, its zombie can be
 * reaped only by the tracer: the stub's pidfd is readable, but waitid()
 * finds nothing.  The completion reaches the stub's callback all the same,
 * on time (an EXIT with the status the kernel shows, or a KILL within the
 * watchdog's bound), libev does not spin on a loop fd that stays readable,
 * and sw_stub_free() returns at once.  Once the tracer is killed the zombie
 * is the monitor's again, and the loop reaps it at its next timer read or
 * spawn: no zombie is left.
 *
 * Under ev_default_loop(), libev's SIGCHLD handler reaps with waitpid(-1):
 * it must neither take the stub (exit_signal 0) nor matter to the outcome.
 */
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t_ev.h"

#define MS 1000000ull
#define T_NT  ((uint64_t)T_STALL * T_TICK_NS)
#define T_N1T ((uint64_t)(T_STALL + 1) * T_TICK_NS)

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* The process's CPU time over [t0, now] stays well under its wall time:
 * the loop does not spin on a pidfd that stays readable. */
static void assert_no_spin(const char *what, uint64_t cpu0, uint64_t t0)
{
	uint64_t cpu = t_process_cpu_ns() - cpu0, wall = t_now_ns() - t0;

	t_note("%s: %.1f ms of CPU in %.1f ms", what, ms(cpu), ms(wall));
	T_ASSERT(cpu * 10 < wall * 3, "%s: the loop spun, %.1f ms of CPU in "
		 "%.1f ms", what, ms(cpu), ms(wall));
}

/* ---- the traced stub: raw system calls only ------------------------------ */

struct traced_pl {
	uint32_t ready;    /* futex word: the tracer has tried to attach */
	int32_t tracer;    /* its pid                                     */
	int32_t seize_err; /* 0, or PTRACE_SEIZE's errno                  */
};

static __attribute__((noreturn)) void sleep_forever(void)
{
	uint32_t word = 0;

	for (;;)
		syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

/* arg 0: exit 7 at the resume after the first report; 1: stall there. */
static int traced_stub(struct sw_page *page, void *arg)
{
	struct traced_pl *p = sw_page_payload(page);
	long pid, r;

	/* Yama's ptrace_scope 1 lets only ancestors attach, unless named */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	pid = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	if (pid == 0) {
		r = syscall(SYS_ptrace, PTRACE_SEIZE, (long)getppid(), 0L, 0L);
		__atomic_store_n(&p->tracer, (int32_t)syscall(SYS_getpid),
				 __ATOMIC_RELEASE);
		__atomic_store_n(&p->seize_err, r < 0 ? errno : 0,
				 __ATOMIC_RELEASE);
		__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
		syscall(SYS_futex, &p->ready, FUTEX_WAKE, 1, NULL, NULL, 0);
		sleep_forever(); /* and never waits */
	}
	if (pid < 0) {
		__atomic_store_n(&p->seize_err, errno, __ATOMIC_RELEASE);
		__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	}
	while (!__atomic_load_n(&p->ready, __ATOMIC_ACQUIRE))
		syscall(SYS_futex, &p->ready, FUTEX_WAIT, 0, NULL, NULL, 0);
	sw_stub_handshake(page);
	if (arg)
		sleep_forever();
	return 7;
}

/* ---- the monitor --------------------------------------------------------- */

struct end {
	bool done;
	uint64_t at;
	struct sw_event ev;
};

static int on_end(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct end *e = ud;

	(void)s;
	e->done = true;
	e->at = t_now_ns();
	e->ev = *ev;
	return 0;
}

static void ev_wait(struct ev_loop *evl, struct end *e, const char *what)
{
	/* a guard against a lost completion, not a bound */
	T_ASSERT(t_ev_run_until(evl, &e->done, 10000),
		 "%s: no completion within 10 s", what);
	e->done = false;
}

/* One command round trip of a t_stub_main stub, through libev. */
static void roundtrip(struct ev_loop *evl, struct sw_stub *s, struct end *e,
		      enum t_cmd cmd, uint32_t arg)
{
	uint64_t seq = t_cmd(s, cmd, arg), t1;

	T_EQ(sw_stub_resume(s), 0);
	t1 = t_now_ns();
	ev_wait(evl, e, "round trip");
	if (e->ev.type == SW_EV_KILL)
		t_note("killed: reason %d, silent %.2f ms, state %c, seen %.2f "
		       "ms after the resume", (int)e->ev.kill.reason,
		       ms(e->ev.kill.silent_ns), e->ev.kill.state,
		       ms(e->at - t1));
	T_EQ(e->ev.type, SW_EV_REPORT);
	T_EQ(t_msg(s)->reply, seq);
}

static void stop(struct ev_loop *evl, struct sw_stub *s, struct end *e)
{
	t_cmd(s, T_CMD_EXIT, 0);
	T_EQ(sw_stub_resume(s), 0);
	ev_wait(evl, e, "exit");
	T_EQ(e->ev.type, SW_EV_EXIT);
	T_ASSERT(WIFEXITED(e->ev.status) && WEXITSTATUS(e->ev.status) == 0,
		 "status %#x", e->ev.status);
	T_ASSERT(sw_stub_free(s) == NULL, "free");
}

/* /proc/PID/status TracerPid, or -1. */
static pid_t tracer_of(pid_t pid)
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

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static bool has_cap_sys_ptrace(void)
{
	unsigned long long eff = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return eff & (1ull << 19); /* CAP_SYS_PTRACE */
}

/* NULL if a child may PTRACE_SEIZE its parent here, else why not. */
static const char *ptrace_refused(void)
{
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	int scope = 0;

	if (!f)
		return NULL; /* no Yama */
	if (fscanf(f, "%d", &scope) != 1)
		scope = 0;
	fclose(f);
	if (scope >= 3)
		return "Yama ptrace_scope is 3: no process may attach";
	if (scope == 2 && !has_cap_sys_ptrace())
		return "Yama ptrace_scope is 2 and this process lacks "
		       "CAP_SYS_PTRACE";
	return NULL;
}

static void assert_no_zombie(void)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0) {
		T_EQ(errno, ECHILD);
		return;
	}
	T_ASSERT(si.si_pid == 0, "child %d is left as a zombie", (int)si.si_pid);
}

static void reap_tracer(pid_t tracer)
{
	int status;

	T_EQ(kill(tracer, SIGKILL), 0);
	T_EQ(waitpid(tracer, &status, __WALL), tracer);
}

/* Take down what a traced case set up, before it skips. */
static void undo_setup(struct sw_stub *tr, pid_t tracer, struct sw_stub *w,
		       struct sw_loop *loop, struct ev_loop *evl)
{
	T_ASSERT(sw_stub_free(tr) == NULL, "free");
	if (tracer > 0)
		reap_tracer(tracer);
	T_ASSERT(sw_stub_free(w) == NULL, "free");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
}

static uint64_t loop_late_ns(struct sw_loop *loop, int reset)
{
	struct sw_loop_stats st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	T_EQ(sw_loop_get_stats(loop, &st, reset), 0);
	return st.max_late_ns;
}

/* The kill: never before N*T after t0, by (N+1)*T after t1 plus the
 * lateness it reports. */
static void assert_kill_time(const struct sw_event *ev, uint64_t t0,
			     uint64_t t1, uint64_t t_end)
{
	uint64_t at = ev->kill.killed_at_ns;
	uint64_t late = ev->kill.monitor_late_ns + ev->kill.starved_ns;

	T_ASSERT(at != 0 && at <= t_end, "killed_at_ns %llu, wait ended %llu",
		 (unsigned long long)at, (unsigned long long)t_end);
	t_note("killed %.2f ms after the resume (late allowance %.2f ms)",
	       ms(at - t1), ms(late));
	T_ASSERT((int64_t)(at - t0) >= (int64_t)T_NT,
		 "killed %.3f ms after the resume, before N*T", ms(at - t0));
	T_ASSERT((int64_t)(at - t1) <= (int64_t)(T_N1T + late),
		 "killed %.3f ms after the resume, past (N+1)*T + %.3f ms",
		 ms(at - t1), ms(late));
}

struct tcase {
	enum t_evkind kind;
	bool stall;
};

static int case_traced(void *arg)
{
	const struct tcase *c = arg;
	struct sw_spawn_opts so = {
		.size = sizeof(so),
		.shm_size = 4096,
		.flags = SW_SPAWN_PDEATHSIG,
		.fn = traced_stub,
		.arg = (void *)(uintptr_t)c->stall,
	};
	struct end tre = { .done = false }, we = { .done = false },
		   fe = { .done = false };
	struct sw_stub *tr = NULL, *w, *fresh;
	struct traced_pl *p;
	struct ev_loop *evl;
	struct sw_loop *loop;
	struct sw_event ev;
	struct sw_ev *g;
	uint64_t t0, t1, cpu0, tf, late;
	const char *why;
	pid_t pid, tracer;
	siginfo_t si;
	int r, i;

	/* the tracer outlives its parent, the stub: it comes to us */
	T_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	why = ptrace_refused();
	if (why)
		return t_skip("%s", why);
	evl = t_evloop(c->kind);
	loop = t_loop(T_TICK_NS, T_STALL, 0);
	w = t_spawn_ok(loop);
	T_EQ(sw_stub_wait(w, &ev), SW_EV_REPORT);
	r = sw_stub_spawn(loop, &so, &tr);
	if (r == -ENOSYS)
		return t_skip("clone3 or pidfds missing (-ENOSYS)");
	T_EQ(r, 0);
	r = sw_stub_wait(tr, &ev);
	p = sw_page_payload(sw_stub_page(tr));
	if (r == SW_EV_KILL && ev.kill.reason == SW_KILL_STALL) {
		/* Its set-up (a tracer forked to seize it) outlasted N*T: the
		 * host's load, before anything this case looks at. */
		tracer = p->tracer;
		undo_setup(tr, tracer, w, loop, evl);
		return t_skip("inconclusive: the traced stub's set-up outlasted "
			      "its stall limit (silent %.0f ms, state %c)",
			      ev.kill.silent_ns / 1e6, ev.kill.state);
	}
	T_EQ(r, SW_EV_REPORT);
	pid = sw_stub_pid(tr);
	tracer = p->tracer;
	if (p->seize_err) {
		int e = p->seize_err;

		undo_setup(tr, tracer, w, loop, evl);
		return t_skip("a child may not PTRACE_SEIZE its parent here: %s",
			      strerror(e));
	}
	T_ASSERT(tracer > 0, "tracer pid %d", (int)tracer);
	T_EQ(tracer_of(pid), tracer);

	T_EQ(sw_stub_set_callback(w, on_end, &we), 0);
	T_EQ(sw_stub_set_callback(tr, on_end, &tre), 0);
	T_EQ(sw_ev_attach(loop, evl, &g), 0);

	loop_late_ns(loop, 1);
	cpu0 = t_process_cpu_ns();
	t0 = t_now_ns();
	T_EQ(sw_stub_resume(tr), 0);
	t1 = t_now_ns();
	ev_wait(evl, &tre, c->stall ? "the traced stub's kill"
				    : "the traced stub's exit");
	if (c->stall) {
		T_EQ(tre.ev.type, SW_EV_KILL);
		T_EQ(tre.ev.kill.reason, SW_KILL_STALL);
		T_EQ(tre.ev.kill.pid, pid);
		assert_kill_time(&tre.ev, t0, t1, tre.at);
		T_ASSERT(tre.ev.status == -1 ||
				 (WIFSIGNALED(tre.ev.status) &&
				  WTERMSIG(tre.ev.status) == SIGKILL),
			 "status %#x", tre.ev.status);
	} else {
		T_EQ(tre.ev.type, SW_EV_EXIT);
		late = loop_late_ns(loop, 0);
		t_note("exit seen %.2f ms after the resume (late allowance "
		       "%.2f ms)", ms(tre.at - t1), ms(late));
		T_ASSERT(tre.at - t1 <= T_N1T + late,
			 "exit seen %.3f ms after the resume, past (N+1)*T + "
			 "%.3f ms", ms(tre.at - t1), ms(late));
		T_ASSERT(tre.ev.status == -1 ||
				 (WIFEXITED(tre.ev.status) &&
				  WEXITSTATUS(tre.ev.status) == 7),
			 "status %#x", tre.ev.status);
	}
	if (tre.ev.status == -1)
		t_note("the kernel did not tell the traced zombie's status");

	/* the premise: a zombie that only the tracer can reap (the end may
	 * come while the kernel is still taking the stub down: it can run
	 * no code of its own then, and turns zombie when the kernel is done) */
	for (i = 0; proc_state(pid) != 'Z' && i < 5000; i++)
		usleep(1000);
	T_EQ(proc_state(pid), 'Z');
	memset(&si, 0, sizeof(si));
	T_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL),
	     0);
	T_EQ(si.si_pid, 0);

	/* libev goes on, and does not spin on a readable loop fd */
	roundtrip(evl, w, &we, T_CMD_SLEEP, (uint32_t)(T_TICK_NS / 1000));
	roundtrip(evl, w, &we, T_CMD_SLEEP, (uint32_t)(T_TICK_NS / 1000));
	assert_no_spin("the wait and a round trip after it", cpu0, t0);
	tf = t_now_ns();
	T_ASSERT(sw_stub_free(tr) == NULL, "free");
	tf = t_now_ns() - tf;
	t_note("sw_stub_free() took %.2f ms", ms(tf));
	T_ASSERT(tf < 50 * MS, "sw_stub_free() took %.1f ms", ms(tf));
	cpu0 = t_process_cpu_ns();
	t0 = t_now_ns();
	roundtrip(evl, w, &we, T_CMD_SLEEP, (uint32_t)(T_TICK_NS / 1000));
	roundtrip(evl, w, &we, T_CMD_SLEEP, (uint32_t)(T_TICK_NS / 1000));
	assert_no_spin("a round trip after the free", cpu0, t0);

	/* the tracer goes: the zombie is the monitor's to reap */
	reap_tracer(tracer);
	fresh = t_spawn_ok(loop);
	T_EQ(sw_stub_set_callback(fresh, on_end, &fe), 0);
	ev_wait(evl, &fe, "the new stub's first report");
	T_EQ(fe.ev.type, SW_EV_REPORT);
	for (i = 0; i < 8; i++) {
		roundtrip(evl, fresh, &fe, T_CMD_SLEEP,
			  (uint32_t)(T_TICK_NS / 2 / 1000));
		roundtrip(evl, w, &we, T_CMD_ECHO, 0);
	}
	assert_no_zombie();
	stop(evl, fresh, &fe);
	stop(evl, w, &we);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
	return T_PASS;
}

int main(void)
{
	static struct tcase exit_default = { T_EV_DEFAULT, false },
			    exit_new = { T_EV_NEW, false },
			    kill_default = { T_EV_DEFAULT, true },
			    kill_new = { T_EV_NEW, true };
	static const struct t_case cases[] = {
		{ "traced stub exits, ev_default_loop: EXIT on time, no spin, "
		  "no zombie left", case_traced, &exit_default, 30000 },
		{ "traced stub exits, ev_loop_new: EXIT on time, no spin, "
		  "no zombie left", case_traced, &exit_new, 30000 },
		{ "traced stub stalls, ev_default_loop: KILL on time, no spin, "
		  "no zombie left", case_traced, &kill_default, 30000 },
		{ "traced stub stalls, ev_loop_new: KILL on time, no spin, "
		  "no zombie left", case_traced, &kill_new, 30000 },
	};

	return t_run("t_ev_hostile", cases, sizeof(cases) / sizeof(cases[0]));
}
