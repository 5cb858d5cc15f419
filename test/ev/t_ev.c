// SPDX-License-Identifier: LGPL-2.1-or-later
/* The libev glue's test helpers: see t_ev.h. */
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t_ev.h"

/* ---- reporting ---------------------------------------------------------- */

void t_fail(const char *file, int line, const char *what, const char *fmt,
	    ...)
{
	va_list ap;

	/* stdout: the TAP log keeps it */
	printf("# FAIL %s:%d: %s: ", file, line, what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(NULL);
	/* _exit: a failing case leaves its loop behind on purpose. */
	_exit(T_FAIL);
}

int t_skip(const char *fmt, ...)
{
	va_list ap;

	printf("# SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return T_SKIP;
}

void t_note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* ---- process hygiene ---------------------------------------------------- */

int t_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

bool t_no_children(void)
{
	siginfo_t si;

	/* ECHILD: no child at all, running or zombie, of any exit signal. */
	memset(&si, 0, sizeof(si));
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0 &&
	       errno == ECHILD;
}

uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int t_raise_nofile(unsigned long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		return -EMFILE;
	rl.rlim_cur = want;
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- timing ------------------------------------------------------------- */

static double ms_since(uint64_t t, uint64_t t0)
{
	return ((double)t - (double)t0) / 1e6;
}

void t_check_kill(const char *what, uint64_t t_before, uint64_t t_after,
		  const struct sw_kill_info *k)
{
	const uint64_t period = T_TICK_NS / SW_TIMER_DIV_DEFAULT;
	uint64_t min = T_STALL * T_TICK_NS + k->starved_ns;
	uint64_t max = (T_STALL + 1) * T_TICK_NS + k->monitor_late_ns +
		       k->starved_ns;
	uint64_t first_read = k->killed_at_ns - k->silent_ns;

	t_note("%s: killed %.2f..%.2f ms after the resume, window [%.2f, "
	       "%.2f] ms (the monitor late %.2f ms, the stub starved %.2f ms); "
	       "%u ticks, silent %.2f ms", what,
	       ms_since(k->killed_at_ns, t_after),
	       ms_since(k->killed_at_ns, t_before), min / 1e6, max / 1e6,
	       k->monitor_late_ns / 1e6, k->starved_ns / 1e6, k->stall_ticks,
	       k->silent_ns / 1e6);
	T_EQ(k->reason, SW_KILL_STALL);
	T_ASSERT(k->killed_at_ns >= t_after + min,
		 "%s: killed %.3f ms after the resume, before %.3f ms", what,
		 ms_since(k->killed_at_ns, t_after), min / 1e6);
	T_ASSERT(k->killed_at_ns <= t_after + max,
		 "%s: killed %.3f ms after the resume, after %.3f ms", what,
		 ms_since(k->killed_at_ns, t_after), max / 1e6);
	T_ASSERT(k->starved_ns <= T_STALL * T_TICK_NS &&
			 k->starved_ns % period == 0,
		 "%s: starved_ns %llu", what,
		 (unsigned long long)k->starved_ns);
	/* the credit is the run-queue wait since the stall's baseline, in
	 * whole periods, and stall_wait_ns is that wait up to the kill */
	T_ASSERT(k->starved_ns <= k->stall_wait_ns,
		 "%s: credited %.3f ms, but waited %.3f ms for a CPU", what,
		 k->starved_ns / 1e6, k->stall_wait_ns / 1e6);
	T_ASSERT(k->stall_ticks == T_STALL ||
			 (k->stall_ticks == T_STALL + 1 &&
			  k->monitor_late_ns >=
				  (SW_TIMER_DIV_DEFAULT - 1) * period),
		 "%s: %u stall ticks, the monitor late %.3f ms", what,
		 k->stall_ticks, k->monitor_late_ns / 1e6);
	T_ASSERT(first_read >= t_after &&
			 first_read <= t_after + period + k->monitor_late_ns,
		 "%s: silent_ns %.3f ms, killed %.3f ms after the resume, the "
		 "monitor late %.3f ms", what, k->silent_ns / 1e6,
		 ms_since(k->killed_at_ns, t_after), k->monitor_late_ns / 1e6);
}

/* ---- the case runner ---------------------------------------------------- */

static bool under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && (strstr(p, "vgpreload") || strstr(p, "valgrind"));
}

static __attribute__((noreturn)) void case_child(const struct t_case *c)
{
	int fds, r;

	setpgid(0, 0);
	if (!t_no_children())
		t_fail(__FILE__, __LINE__, "no child before", "%s", c->name);
	fds = t_count_fds();
	r = c->fn(c->arg);
	if (r == T_PASS) {
		int after = t_count_fds();

		if (after != fds)
			t_fail(__FILE__, __LINE__, "fds", "%d open before, %d after",
			       fds, after);
		if (!t_no_children())
			t_fail(__FILE__, __LINE__, "no child after",
			       "a child of the case is left");
	}
	fflush(NULL);
	exit(r); /* exit(), not _exit(): LeakSanitizer checks a passing case */
}

/* Wait for the case with a timeout; kill its whole process group on
 * timeout.  Returns its result (T_PASS, T_FAIL, T_SKIP). */
static int wait_case(pid_t pid, const struct t_case *c, uint64_t *ret_ns)
{
	uint64_t t0 = t_now_ns(), limit = (uint64_t)c->timeout_ms * 1000000;
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			printf("# waitpid: %s\n", strerror(errno));
			return T_FAIL;
		}
		if (t_now_ns() - t0 > limit) {
			printf("# timeout after %u ms\n", c->timeout_ms);
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			*ret_ns = t_now_ns() - t0;
			return T_FAIL;
		}
		sleep_ms(2);
	}
	*ret_ns = t_now_ns() - t0;
	/* Its stubs die with it (PDEATHSIG); make sure of it. */
	kill(-pid, SIGKILL);
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == T_PASS ? T_PASS :
		       WEXITSTATUS(status) == T_SKIP ? T_SKIP : T_FAIL;
	printf("# case died with signal %d\n", WTERMSIG(status));
	return T_FAIL;
}

const char *t_ev_alone;

int t_run(const char *prog, const struct t_case *cases, size_t n)
{
	size_t pass = 0, fail = 0, skip = 0, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..%zu\n", n);
	if (getenv("TSAN_ONLY") || under_valgrind()) {
		for (i = 0; i < n; i++)
			printf("ok %zu - %s # SKIP %s\n", i + 1, cases[i].name,
			       getenv("TSAN_ONLY") ?
				       "not a multi-loop test (TSAN_ONLY)" :
				       "valgrind does not know clone3/pidfd_open");
		printf("%s: 0 passed, 0 failed, %zu skipped\n", prog, n);
		return T_SKIP;
	}
	for (i = 0; i < n; i++) {
		const struct t_case *c = &cases[i];
		uint64_t ns = 0;
		pid_t pid;
		int r;

		int lock = t_cpu_lock(
		    t_ev_alone &&
		    !strncmp(c->name, t_ev_alone, strlen(t_ev_alone)));

		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			printf("not ok %zu - %s # fork: %s\n", i + 1, c->name,
			       strerror(errno));
			t_cpu_unlock(lock);
			fail++;
			continue;
		}
		if (pid == 0) {
			t_cpu_unlock(lock);
			case_child(c);
		}
		setpgid(pid, pid); /* either side may win the race */
		r = wait_case(pid, c, &ns);
		t_cpu_unlock(lock);
		if (r == T_PASS)
			pass++;
		else if (r == T_SKIP)
			skip++;
		else
			fail++;
		printf("%s %zu - %s (%llu ms)%s\n", r == T_FAIL ? "not ok" : "ok",
		       i + 1, c->name, (unsigned long long)(ns / 1000000),
		       r == T_SKIP ? " # SKIP" : "");
	}
	if (!t_no_children()) {
		printf("# a case left a child behind\n");
		fail++;
	}
	printf("%s: %zu passed, %zu failed, %zu skipped\n", prog, pass, fail,
	       skip);
	return fail ? T_FAIL : pass ? T_PASS : T_SKIP;
}

/* ---- the stub ----------------------------------------------------------- */

/* Raw system calls only from here to t_stub_main's end: the stub is a raw
 * clone3 copy of a process that may hold libc locks. */
static void stub_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull),
			       (long)(ns % 1000000000ull) };

	while (syscall(SYS_nanosleep, &ts, &ts) < 0 && errno == EINTR)
		;
}

static __attribute__((noreturn)) void stub_sleep_forever(void)
{
	for (;;)
		stub_sleep_ns(1000ull * 1000000000ull);
}

int t_stub_main(struct sw_page *page, void *arg)
{
	volatile struct t_msg *m = sw_page_payload(page);
	static const uint64_t one = 1;
	uint64_t alrm = 1ull << (SIGALRM - 1);

	(void)arg;
	for (;;) {
		m->reply = m->seq;
		m->reports++;
		sw_stub_handshake(page);
		switch (m->cmd) {
		case T_CMD_ECHO:
			break;
		case T_CMD_SLEEP:
			stub_sleep_ns((uint64_t)m->arg * 1000);
			break;
		case T_CMD_EXIT:
			return (int)m->arg;
		case T_CMD_SIGNAL:
			syscall(SYS_kill, syscall(SYS_getpid), (int)m->arg);
			stub_sleep_forever();
		case T_CMD_STALL:
			/* What a hijacked stub does with a crafted sigreturn
			 * frame: SIGALRM blocked, then silence. */
			syscall(SYS_rt_sigprocmask, SIG_BLOCK, &alrm, NULL,
				sizeof(alrm));
			stub_sleep_forever();
		case T_CMD_BAD:
			__atomic_store_n(&page->state, m->arg, __ATOMIC_RELEASE);
			if (syscall(SYS_write, page->report_fd, &one,
				    sizeof(one)) < 0)
				return 100;
			stub_sleep_forever();
		default:
			return 101;
		}
	}
}

int t_spawn(struct sw_loop *loop, struct sw_stub **ret_stub)
{
	struct sw_spawn_opts so = {
		.size = sizeof(so),
		.shm_size = 4096,
		.flags = SW_SPAWN_PDEATHSIG,
		.fn = t_stub_main,
	};

	return sw_stub_spawn(loop, &so, ret_stub);
}

struct sw_stub *t_spawn_ok(struct sw_loop *loop)
{
	struct sw_stub *s = NULL;
	int r = t_spawn(loop, &s);

	if (r == -ENOSYS) {
		t_skip("clone3 or pidfds missing (-ENOSYS)");
		exit(T_SKIP);
	}
	if (r < 0)
		t_fail(__FILE__, __LINE__, "sw_stub_spawn", "%s", strerror(-r));
	return s;
}

uint64_t t_cmd(struct sw_stub *s, enum t_cmd cmd, uint32_t arg)
{
	volatile struct t_msg *m = t_msg(s);

	m->cmd = cmd;
	m->arg = arg;
	return ++m->seq;
}

struct sw_loop *t_loop(uint64_t tick_ns, uint32_t stall_ticks, unsigned flags)
{
	struct sw_loop_opts o = {
		.size = sizeof(o),
		.tick_ns = tick_ns,
		.stall_ticks = stall_ticks,
		.flags = flags,
	};
	struct sw_loop *loop = NULL;
	int r = sw_loop_new(&o, &loop);

	if (r < 0)
		t_fail(__FILE__, __LINE__, "sw_loop_new", "%s", strerror(-r));
	return loop;
}

void t_wait_reported(struct sw_stub *s, unsigned timeout_ms)
{
	uint64_t t0 = t_now_ns();

	while (__atomic_load_n(&sw_stub_page(s)->state, __ATOMIC_ACQUIRE) !=
	       SW_STATE_IN_KERN) {
		if (t_now_ns() - t0 > (uint64_t)timeout_ms * 1000000)
			t_fail(__FILE__, __LINE__, "t_wait_reported",
			       "no report within %u ms", timeout_ms);
		sleep_ms(1);
	}
}

/* ---- libev -------------------------------------------------------------- */

struct ev_loop *t_evloop(enum t_evkind kind)
{
	struct ev_loop *l = kind == T_EV_DEFAULT ? ev_default_loop(0) :
						   ev_loop_new(0);

	if (!l)
		t_fail(__FILE__, __LINE__, "libev loop", "%s",
		       t_evkind_name(kind));
	return l;
}

void t_evloop_free(struct ev_loop *evloop)
{
	ev_loop_destroy(evloop); /* the default loop too: it holds fds */
}

struct run_until {
	ev_prepare prepare;
	ev_timer timer;
	const volatile bool *done;
};

static void on_prepare(struct ev_loop *l, ev_prepare *w, int revents)
{
	struct run_until *u = (struct run_until *)w;

	(void)revents;
	if (*u->done)
		ev_break(l, EVBREAK_ONE);
}

static void on_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(l, EVBREAK_ONE);
}

bool t_ev_run_until(struct ev_loop *evloop, const volatile bool *done,
		    unsigned timeout_ms)
{
	struct run_until u = { .done = done };

	if (*done)
		return true;
	ev_prepare_init(&u.prepare, on_prepare);
	ev_prepare_start(evloop, &u.prepare);
	ev_timer_init(&u.timer, on_timeout, timeout_ms / 1000.0, 0.);
	ev_now_update(evloop);
	ev_timer_start(evloop, &u.timer);
	ev_run(evloop, 0);
	ev_timer_stop(evloop, &u.timer);
	ev_prepare_stop(evloop, &u.prepare);
	return *done;
}
