/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Faults from outside the protocol: resource limits, signals and a frozen
 * monitor, with real processes and kernel objects only.
 *
 * spawn_emfile: RLIMIT_NOFILE is lowered (in the case's own process) to
 *   every value from the lowest free fd number (the number of fds open,
 *   when they leave no hole) up to the first at which
 *   sw_stub_spawn() succeeds, so that each fd the spawn makes (the page's
 *   memfd, the eventfd, the setup pipe, the pidfd, and in exec mode the
 *   child's own duplicates) is in turn the one that fails.  Each failure is
 *   -EMFILE, ret_stub is untouched, and nothing is left behind: the fd count,
 *   the mappings (/proc/self/maps) and the children are what they were, and
 *   the loop counts no stub.  The stub spawned at the limit answers, and so
 *   does one spawned once the limit is raised again.
 * add_fd_emfile: the same for sw_stub_add_fd(), whose duplicate of the fd is
 *   the one fd it makes: -EMFILE, no watch registered (remove_fd says
 *   -ENOENT), the stub still served; then the watch works.
 * spawn_enomem: RLIMIT_AS a little over the process's size, so that a page
 *   of 64 MiB (the largest shm_size) cannot be mapped: every limit up to
 *   the one at which the spawn succeeds gives -ENOMEM and leaves nothing
 *   behind; the loop works afterwards.  Skipped under AddressSanitizer and
 *   ThreadSanitizer, whose runtimes reserve terabytes of address space and
 *   abort when their own mappings fail.  (sw_stub_add_fd()'s other errors,
 *   epoll_ctl's -ENOMEM and -ENOSPC, need kernel memory exhausted or the
 *   machine-wide fs.epoll.max_user_watches lowered: not provoked here.)
 * spawn_fsize: RLIMIT_FSIZE under the page's size (the page is a memfd
 *   sized with ftruncate()): with SIGXFSZ ignored the spawn returns
 *   -EFBIG, as the header says, and leaves nothing behind; with SIGXFSZ at
 *   its default action the signal ends the monitor (the header says that
 *   too), which a child process shows.
 * eintr_storm: the monitor thread takes a signal about every 100 us (a
 *   POSIX timer aimed at it with SIGEV_THREAD_ID, a handler without
 *   SA_RESTART) while it spawns, runs echo round trips for a second, has a
 *   stall killed, collects two exits and frees a live stub.  Everything
 *   ends as in the same run without the storm (run first, as the control):
 *   every report answered, the stall killed in its window
 *   (t_assert_kill_window()), each exit's status delivered.  The signals
 *   taken are counted, and must number in the thousands.
 * stopped_*: a helper process (forked by the case) SIGSTOPs the case's
 *   process, the monitor, for ten times the stall limit (10*N*T), then
 *   SIGCONTs it:
 *   stopped_report: a well-behaved stub in flight answers while the
 *     monitor is stopped (the helper sees it back in FUTEX_WAIT): after the
 *     continue the report is taken, not a kill.  A read counts at most one
 *     tick, and a report ready with a tick wins.
 *   stopped_report_late: the same, with the stop N*T - T/2 into the
 *     stub's silence, so that one more tick would reach the limit: only
 *     "the report wins" saves it.  Inconclusive runs (the stop came after
 *     the report) are retried, then skipped.
 *   stopped_stall: a stalled stub (T_STALL_FUTEX) in flight is still
 *     killed after the continue, within the contract from its resume,
 *     N*T + starved <= kill - R <= (N+1)*T + monitor_late + starved
 *     (monitor_late_ns owns up to the frozen periods beyond one tick), and
 *     never earlier than the one-tick-per-read rule allows: with S the stop
 *     and C the continue, the counted periods are at most those of the
 *     timer grid in (R, S], one tick for the first read after C, and those
 *     in (C, kill], so
 *       kill > C + (N-1)*T - P - (S - R)      (P = T/timer_div)
 *     The loop's statistics and monitor_late_ns must show the freeze.
 *   stopped_exit: a stub that exits while the monitor is stopped (the
 *     helper sees its zombie) is reported, with its exit status, after the
 *     continue.
 *   These run on the timed loop (T = 20 ms, N = 5: stopped for 1 s), with
 *   each stub's start-up on a patient loop (T = 100 ms) that takes its
 *   first report and hands it over (sw_stub_detach/attach).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t_util.h"

/* glibc 2.36 has no name for it */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* A non-NULL pointer that no constructor returns: "left untouched". */
static char sentinel_storage;
#define SENTINEL ((void *)&sentinel_storage)

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* t - t0 in ms, negative if t comes first */
static double ms_since(uint64_t t, uint64_t t0)
{
	return ((double)t - (double)t0) / 1e6;
}

/* ---- what a failure must not leave behind -------------------------------- */

/* Lines of /proc/self/maps, read without stdio (no allocation). */
static int maps_count(void)
{
	char buf[4096];
	ssize_t n, i;
	int fd, lines = 0;

	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(fd);
	return lines;
}

struct snap {
	int fds;
	int maps;
};

static void snap_take(struct snap *s)
{
	s->fds = t_fd_count();
	s->maps = maps_count();
	t_assert(s->fds > 0 && s->maps > 0);
}

static void snap_check(const struct snap *before, struct sw_loop *loop,
		       const char *what)
{
	struct snap now;

	snap_take(&now);
	t_assert_msg(now.fds == before->fds, "%s: %d fds open, %d before", what,
		     now.fds, before->fds);
	t_assert_msg(now.maps == before->maps, "%s: %d mappings, %d before",
		     what, now.maps, before->maps);
	t_assert_msg(t_no_children(), "%s: a child is left behind", what);
	t_assert_msg(sw_loop_count_stubs(loop) == 0,
		     "%s: the loop counts %d stubs", what,
		     sw_loop_count_stubs(loop));
}

/* A spawn and its first report, a few round trips, an exit: the loop and
 * the process's first-use allocations (stdio, /proc readers) are done. */
static void serve_one(struct sw_loop *loop, intptr_t mode)
{
	struct sw_stub *stub = t_spawn_echo(loop, mode);

	t_echo(stub, 20);
	t_stop(stub);
}

static void set_limit(int resource, rlim_t cur, const struct rlimit *orig)
{
	struct rlimit rl = { .rlim_cur = cur, .rlim_max = orig->rlim_max };

	t_assert_msg(setrlimit(resource, &rl) == 0, "setrlimit(%d, %llu): %s",
		     resource, (unsigned long long)cur, strerror(errno));
}

/* Append "text" to a fixed buffer, cut at its end. */
static void add_text(char *buf, size_t len, const char *text)
{
	size_t used = strlen(buf);

	if (used + 1 < len)
		snprintf(buf + used, len - used, "%s", text);
}

/* ---- EMFILE at spawn ------------------------------------------------------ */

/* The lowest fd number not in use: with RLIMIT_NOFILE there, no new fd can
 * be made.  (The fd count, when the fds in use have no holes; an inherited
 * high fd, from the shell that started us, leaves one.) */
static int lowest_free_fd(void)
{
	int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);

	t_assert(fd >= 0);
	close(fd);
	return fd;
}

static void case_spawn_emfile(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	char seen[1024] = "", wrong[512] = "", item[64];
	unsigned fails = 0, nwrong = 0;
	struct sw_stub *stub = NULL;
	struct rlimit orig;
	struct snap before;
	struct sw_event ev;
	int lim, rc = -1;

	t_assert(getrlimit(RLIMIT_NOFILE, &orig) == 0);
	serve_one(loop, mode);
	snap_take(&before);
	/* the last fd the spawn makes is at most a few past the count: far
	 * under 64 more (the exec-mode child duplicates to 16 and up) */
	for (lim = lowest_free_fd(); lim < before.fds + 64; lim++) {
		stub = SENTINEL;
		set_limit(RLIMIT_NOFILE, (rlim_t)lim, &orig);
		rc = t_spawn_rc(loop, mode, "echo", 0, 0, &stub);
		t_assert(setrlimit(RLIMIT_NOFILE, &orig) == 0);
		if (rc == 0)
			break;
		snprintf(item, sizeof(item), " %d:%s", lim, t_errname(rc));
		add_text(seen, sizeof(seen), item);
		t_assert_msg(stub == SENTINEL, "limit %d: ret_stub written", lim);
		snprintf(item, sizeof(item), "RLIMIT_NOFILE %d", lim);
		snap_check(&before, loop, item);
		fails++;
		if (rc != -EMFILE) {
			nwrong++;
			snprintf(item, sizeof(item), " %d:%s", lim,
				 t_errname(rc));
			add_text(wrong, sizeof(wrong), item);
		}
	}
	t_note("%s mode, %d fds open, %d the lowest free: spawn at "
	       "RLIMIT_NOFILE =%s, then %d: ok", t_mode_name(mode), before.fds,
	       lowest_free_fd(), seen, lim);
	t_assert_msg(rc == 0, "no spawn succeeded up to RLIMIT_NOFILE %d", lim);
	t_assert_msg(fails > 0, "the first spawn, at RLIMIT_NOFILE = the lowest "
		     "free fd, succeeded");
	/* the stub spawned at the limit works (its child kept that limit) */
	t_expect(stub, SW_EV_REPORT, &ev);
	t_assert_eq(t_pl(stub)->ack, 1);
	t_echo(stub, 20);
	t_stop(stub);
	/* and so does the loop, the limit raised again */
	serve_one(loop, mode);
	snap_check(&before, loop, "after the limits");
	t_assert(sw_loop_free(loop) == NULL);
	t_assert_msg(nwrong == 0, "%u of %u failed spawns returned another "
		     "error than -EMFILE (RLIMIT_NOFILE:error):%s", nwrong, fails,
		     wrong);
}

/* ---- EMFILE at sw_stub_add_fd -------------------------------------------- */

static void case_add_fd_emfile(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct t_payload *p = t_pl(stub);
	unsigned fails = 0;
	struct rlimit orig;
	struct snap before;
	struct sw_event ev;
	int pfd[2], lim, rc = -1;
	char c = 'x';

	t_assert(getrlimit(RLIMIT_NOFILE, &orig) == 0);
	t_assert(pipe2(pfd, O_CLOEXEC) == 0);
	t_echo(stub, 20);
	snap_take(&before);
	/* from 1: a limit at or under the lowest fd the duplicate may take
	 * (3) is out of fds too */
	for (lim = 1; lim < before.fds + 8; lim++) {
		set_limit(RLIMIT_NOFILE, (rlim_t)lim, &orig);
		rc = sw_stub_add_fd(stub, pfd[0], EPOLLIN);
		t_assert(setrlimit(RLIMIT_NOFILE, &orig) == 0);
		if (rc == 0)
			break;
		t_note("RLIMIT_NOFILE %d: sw_stub_add_fd returned %s", lim,
		       t_errname(rc));
		t_assert_rc(rc, -EMFILE);
		t_assert_eq(t_fd_count(), before.fds);
		t_assert_eq(maps_count(), before.maps);
		t_assert_rc(sw_stub_remove_fd(stub), -ENOENT);
		/* the stub is served as before, nothing watched */
		t_echo(stub, 5);
		fails++;
	}
	t_assert_msg(rc == 0, "sw_stub_add_fd never succeeded");
	t_assert_msg(fails > 0, "sw_stub_add_fd succeeded at RLIMIT_NOFILE = "
		     "the lowest free fd");
	t_note("sw_stub_add_fd: -EMFILE up to RLIMIT_NOFILE %d, ok at %d",
	       lim - 1, lim);
	t_assert_eq(t_fd_count(), before.fds + 1); /* the loop's duplicate */

	/* the watch works: the fd ready while the stub waits at a gate */
	__atomic_store_n(&p->gate, 0, __ATOMIC_RELEASE);
	p->req = T_REQ_GATED;
	t_assert(write(pfd[1], &c, 1) == 1);
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_FD);
	t_assert(ev.revents & EPOLLIN);
	t_assert(read(pfd[0], &c, 1) == 1);
	__atomic_store_n(&p->gate, 1, __ATOMIC_RELEASE);
	t_futex_wake(&p->gate);
	t_assert_rc(sw_stub_continue(stub), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	t_assert_eq(p->ack, T_REQ_GATED + 1);
	t_assert_rc(sw_stub_remove_fd(stub), 0);
	t_assert_eq(t_fd_count(), before.fds);
	t_echo(stub, 5);
	t_stop(stub);
	close(pfd[0]);
	close(pfd[1]);
	t_assert(sw_loop_free(loop) == NULL);
}

/* ---- ENOMEM at spawn ------------------------------------------------------ */

/* A field of /proc/self/status in kB ("VmSize:"), read without stdio. */
static long status_kb(const char *field)
{
	char buf[8192], *p;
	ssize_t n;
	int fd;

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strstr(buf, field);
	return p ? strtol(p + strlen(field), NULL, 10) : -1;
}

/* t_spawn_rc() with a shm_size. */
static int spawn_sized(struct sw_loop *loop, intptr_t mode, size_t shm,
		       struct sw_stub **ret_stub)
{
	char *argv[] = { "/proc/self/exe", "--stub", "echo", "0", NULL };
	struct sw_spawn_opts o = { .size = sizeof(o), .shm_size = shm };

	mode = T_PMODE(mode);
	if (mode == T_FN && T_TSAN)
		t_skip("fn-mode stubs are not supported under ThreadSanitizer");
	if (mode == T_FN) {
		o.fn = t_role_echo;
	} else {
		o.path = "/proc/self/exe";
		o.argv = argv;
	}
	return sw_stub_spawn(loop, &o, ret_stub);
}

#define SHM_MAX_BYTES (64ull << 20) /* the header's "at most 64 MiB" */
#define AS_STEP       (2ull << 20)

static void case_spawn_enomem(intptr_t mode)
{
	struct sw_loop *loop;
	char wrong[512] = "", item[64];
	unsigned fails = 0, nwrong = 0;
	struct sw_stub *stub = NULL;
	uint64_t vm, lim = 0;
	struct rlimit orig;
	struct snap before;
	struct sw_event ev;
	int rc = -1;

	if (T_ASAN || T_TSAN)
		t_skip("RLIMIT_AS: a sanitizer's runtime reserves terabytes of "
		       "address space and aborts when its own mappings fail");
	loop = t_loop();
	t_assert(getrlimit(RLIMIT_AS, &orig) == 0);
	serve_one(loop, mode);
	snap_take(&before);
	vm = (uint64_t)status_kb("VmSize:") << 10;
	t_assert(vm > 0);

	/* no room at all: even the default page (16 KiB) cannot be mapped */
	stub = SENTINEL;
	set_limit(RLIMIT_AS, (rlim_t)vm, &orig);
	rc = spawn_sized(loop, mode, 0, &stub);
	t_assert(setrlimit(RLIMIT_AS, &orig) == 0);
	t_note("RLIMIT_AS = VmSize (%.1f MiB), default page: %s",
	       (double)vm / (1 << 20), t_errname(rc));
	t_assert_rc(rc, -ENOMEM);
	t_assert(stub == SENTINEL);
	snap_check(&before, loop, "RLIMIT_AS = VmSize");

	/* a page of 64 MiB, with ever more room, up to a spawn that works */
	for (lim = vm; lim <= vm + SHM_MAX_BYTES + 32 * AS_STEP;
	     lim += AS_STEP) {
		stub = SENTINEL;
		set_limit(RLIMIT_AS, (rlim_t)lim, &orig);
		rc = spawn_sized(loop, mode, SHM_MAX_BYTES, &stub);
		t_assert(setrlimit(RLIMIT_AS, &orig) == 0);
		if (rc == 0)
			break;
		t_assert_msg(stub == SENTINEL, "RLIMIT_AS %" PRIu64
			     ": ret_stub written", lim);
		snprintf(item, sizeof(item), "RLIMIT_AS VmSize + %.0f MiB",
			 (double)(lim - vm) / (1 << 20));
		snap_check(&before, loop, item);
		fails++;
		if (rc != -ENOMEM) {
			nwrong++;
			snprintf(item, sizeof(item), " +%.0fMiB:%s",
				 (double)(lim - vm) / (1 << 20), t_errname(rc));
			add_text(wrong, sizeof(wrong), item);
		}
	}
	t_note("%s mode, 64 MiB page: %u spawns failed from VmSize + 0 to + "
	       "%.0f MiB, ok at + %.0f MiB", t_mode_name(mode), fails,
	       (double)(lim - AS_STEP - vm) / (1 << 20),
	       (double)(lim - vm) / (1 << 20));
	t_assert_msg(rc == 0, "no spawn of a 64 MiB page succeeded");
	t_assert(fails > 0);
	t_expect(stub, SW_EV_REPORT, &ev);
	t_assert_eq(t_pl(stub)->ack, 1);
	t_echo(stub, 20);
	t_stop(stub);
	serve_one(loop, mode);
	snap_check(&before, loop, "after the limits");
	t_assert(sw_loop_free(loop) == NULL);
	t_assert_msg(nwrong == 0, "%u of %u failed spawns returned another "
		     "error than -ENOMEM:%s", nwrong, fails, wrong);
}

/* ---- RLIMIT_FSIZE at spawn ------------------------------------------------ */

/*
 * Found on the way: the page is a memfd sized with ftruncate(), which
 * RLIMIT_FSIZE limits like any file's size.  The spawn must
 * fail with -EFBIG and leave nothing behind.  With SIGXFSZ at its default
 * action the spawn kills the whole monitor (a child process shows that).
 */
#define FSIZE_LIMIT 4096 /* under the default 16 KiB page */

static void case_spawn_fsize(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sigaction ign, old;
	struct sw_stub *stub = SENTINEL;
	struct rlimit orig, nocore = { 0, 0 };
	struct snap before;
	int rc, status;
	char buf[32];
	pid_t pid;

	t_assert(getrlimit(RLIMIT_FSIZE, &orig) == 0);
	serve_one(loop, mode);
	snap_take(&before);

	/* SIGXFSZ at its default action, in a child of ours */
	fflush(NULL);
	pid = fork();
	t_assert(pid >= 0);
	if (pid == 0) {
		struct sw_loop *l2 = NULL;
		struct sw_stub *s2 = NULL;

		setrlimit(RLIMIT_CORE, &nocore);
		prctl(PR_SET_DUMPABLE, 0);
		signal(SIGXFSZ, SIG_DFL);
		if (sw_loop_new(NULL, &l2) < 0)
			_exit(2);
		set_limit(RLIMIT_FSIZE, FSIZE_LIMIT, &orig);
		_exit(t_spawn_rc(l2, mode, "echo", 0, 0, &s2) == 0 ? 0 : 1);
	}
	t_assert(waitpid(pid, &status, 0) == pid);
	t_note("RLIMIT_FSIZE %d, SIGXFSZ at its default: the monitor process "
	       "ended with %s%s", FSIZE_LIMIT, t_status_str(status, buf),
	       WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ
		       ? " (SIGXFSZ: the spawn killed it)" : "");
	t_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ);

	/* SIGXFSZ ignored: an error */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	t_assert(sigaction(SIGXFSZ, &ign, &old) == 0);
	set_limit(RLIMIT_FSIZE, FSIZE_LIMIT, &orig);
	rc = t_spawn_rc(loop, mode, "echo", 0, 0, &stub);
	t_assert(setrlimit(RLIMIT_FSIZE, &orig) == 0);
	t_assert(sigaction(SIGXFSZ, &old, NULL) == 0);
	t_note("RLIMIT_FSIZE %d, SIGXFSZ ignored: sw_stub_spawn returned %s",
	       FSIZE_LIMIT, t_errname(rc));
	t_assert_rc(rc, -EFBIG);
	t_assert(stub == SENTINEL);
	snap_check(&before, loop, "RLIMIT_FSIZE");
	serve_one(loop, mode);
	t_assert(sw_loop_free(loop) == NULL);
}

/* ---- the EINTR storm ----------------------------------------------------- */

#define STORM_SIG         SIGUSR1
#define STORM_PERIOD_NS   100000ull            /* 10 kHz                  */
#define STORM_ECHO_NS     (1000ull * T_MS)     /* round trips this long   */
#define STORM_MIN_SIGNALS 2000u                /* "in the thousands"      */

static unsigned long storm_count;

static void storm_handler(int sig)
{
	__atomic_add_fetch(&storm_count, 1, __ATOMIC_RELAXED);
}

struct storm {
	timer_t timer;
	struct sigaction old;
	uint64_t t0;
};

/* Signals at 10 kHz, to this thread only, interrupting its system calls
 * (no SA_RESTART). */
static void storm_start(struct storm *st)
{
	struct itimerspec its = {
		.it_interval = { 0, (long)STORM_PERIOD_NS },
		.it_value = { 0, (long)STORM_PERIOD_NS },
	};
	struct sigevent sev;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = storm_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	t_assert(sigaction(STORM_SIG, &sa, &st->old) == 0);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = STORM_SIG;
	sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
	t_assert_msg(timer_create(CLOCK_MONOTONIC, &sev, &st->timer) == 0,
		     "timer_create: %s", strerror(errno));
	__atomic_store_n(&storm_count, 0, __ATOMIC_RELAXED);
	st->t0 = t_now_ns();
	t_assert(timer_settime(st->timer, 0, &its, NULL) == 0);
}

/* Stop it; returns the signals handled. */
static unsigned long storm_stop(struct storm *st, uint64_t *ret_ns)
{
	unsigned long n;

	t_assert(timer_delete(st->timer) == 0);
	*ret_ns = t_now_ns() - st->t0;
	n = __atomic_load_n(&storm_count, __ATOMIC_RELAXED);
	t_assert(sigaction(STORM_SIG, &st->old, NULL) == 0);
	return n;
}

static void assert_stall_kill(const struct sw_event *ev, pid_t pid)
{
	t_assert_eq(ev->type, SW_EV_KILL);
	t_assert_eq(ev->kill.reason, SW_KILL_STALL);
	t_assert_eq(ev->kill.pid, pid);
	t_assert(WIFSIGNALED(ev->status));
	t_assert_eq(WTERMSIG(ev->status), SIGKILL);
}

static void assert_exit(int rc, const struct sw_event *ev, int code)
{
	char buf[32];

	if (rc != SW_EV_EXIT)
		t_note_event(rc, ev);
	t_assert_rc(rc, SW_EV_EXIT);
	t_assert_msg(WIFEXITED(ev->status) && WEXITSTATUS(ev->status) == code,
		     "status %s, expected exit %d", t_status_str(ev->status, buf),
		     code);
}

/* The storm's scenario: what it does and asserts is the same with and
 * without the signals.  The loop has T = 100 ms (t_loop()): a second of
 * round trips on a loaded machine is no stall. */
static void storm_scenario(intptr_t mode, const char *what)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub, *idle;
	unsigned long rounds = 0;
	struct sw_event ev;
	uint64_t t0, t1, end;
	char label[64];
	pid_t pid;

	/* round trips for a second, each answer checked */
	stub = t_spawn_echo(loop, mode);
	end = t_now_ns() + STORM_ECHO_NS;
	while (t_now_ns() < end) {
		t_echo(stub, 50);
		rounds += 50;
	}
	/* a stall, killed in its window */
	pid = sw_stub_pid(stub);
	t_pl(stub)->arg = T_STALL_FUTEX;
	t_pl(stub)->req = T_REQ_STALL;
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	assert_stall_kill(&ev, pid);
	snprintf(label, sizeof(label), "stall, %s", what);
	t_assert_kill_window(label, loop, t0, t1, &ev.kill);
	t_assert(sw_stub_free(stub) == NULL);
	/* an exit on request, and one in flight from the spawn */
	stub = t_spawn_echo(loop, mode);
	t_echo(stub, 10);
	t_pl(stub)->arg = 42;
	assert_exit(t_request(stub, T_REQ_EXIT, &ev), &ev, 42);
	t_assert(sw_stub_free(stub) == NULL);
	stub = t_spawn(loop, mode, "exit", 7);
	assert_exit(sw_stub_wait(stub, &ev), &ev, 7);
	t_assert(sw_stub_free(stub) == NULL);
	/* a live stub freed (killed, its death awaited) */
	idle = t_spawn_echo(loop, mode);
	t_assert(sw_stub_free(idle) == NULL);
	t_assert_eq(sw_loop_count_stubs(loop), 0);
	t_assert(sw_loop_free(loop) == NULL);
	t_note("%s: %lu round trips", what, rounds);
}

static void case_eintr_storm(intptr_t mode)
{
	unsigned long n;
	struct storm st;
	uint64_t ns;

	/* the control: no signals */
	storm_scenario(mode, "without the storm");
	storm_start(&st);
	storm_scenario(mode, "under the storm");
	n = storm_stop(&st, &ns);
	t_note("%lu signals handled by the monitor thread in %.3f s (%.0f/s; "
	       "the timer fired every %.0f us)", n, (double)ns / 1e9,
	       (double)n * 1e9 / (double)ns, (double)STORM_PERIOD_NS / 1e3);
	t_assert_msg(n >= STORM_MIN_SIGNALS, "only %lu signals in %.3f s", n,
		     (double)ns / 1e9);
}

/* ---- the monitor stopped -------------------------------------------------- */

/* The helper's orders and what it saw. */
struct stop_order {
	uint64_t at_ns;   /* CLOCK_MONOTONIC: stop the monitor then        */
	uint64_t hold_ns; /* keep it stopped this long once it is          */
	pid_t stub;       /* look at this stub before the continue         */
};

struct stop_result {
	uint64_t at;      /* the order's time                              */
	uint64_t s0;      /* right before kill(SIGSTOP)                    */
	uint64_t s1;      /* the monitor seen stopped (state T): 0 if never */
	uint64_t c0;      /* right before kill(SIGCONT)                    */
	uint64_t c1;      /* right after it                                */
	char stub_state;  /* the stub's state letter before the continue   */
	int stub_futex;   /* 1: the stub sleeps in futex (it has reported
			     and waits for a resume), 0: elsewhere, -1: ?  */
};

struct stopper {
	pid_t pid;
	int order_fd; /* ours: write orders   */
	int result_fd; /* ours: read results  */
};

static void sleep_until(uint64_t at)
{
	struct timespec ts = {
		.tv_sec = (time_t)(at / 1000000000ull),
		.tv_nsec = (long)(at % 1000000000ull),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

/* Is the process asleep in futex(2)?  /proc/PID/syscall, or its wait
 * channel where that is refused. */
static int in_futex(pid_t pid)
{
	char path[64], buf[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = 0;
		if (buf[0] >= '0' && buf[0] <= '9')
			return strtol(buf, NULL, 10) == SYS_futex;
		return 0; /* "running" */
	}
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strstr(buf, "futex") != NULL;
}

static __attribute__((noreturn)) void stopper_main(int rfd, int wfd,
						   pid_t target)
{
	struct stop_order o;
	struct stop_result r;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (read(rfd, &o, sizeof(o)) == sizeof(o)) {
		memset(&r, 0, sizeof(r));
		r.at = o.at_ns;
		sleep_until(o.at_ns);
		r.s0 = t_now_ns();
		kill(target, SIGSTOP);
		if (t_wait_proc_state(target, "T", 5000 * T_MS))
			r.s1 = t_now_ns();
		sleep_until((r.s1 ? r.s1 : t_now_ns()) + o.hold_ns);
		r.stub_state = t_proc_state(o.stub);
		r.stub_futex = in_futex(o.stub);
		r.c0 = t_now_ns();
		kill(target, SIGCONT);
		r.c1 = t_now_ns();
		if (write(wfd, &r, sizeof(r)) != sizeof(r))
			break;
	}
	_exit(0);
}

/* Fork the helper before the loop, so that it holds none of its fds. */
static void stopper_start(struct stopper *st)
{
	int ofd[2], rfd[2];
	pid_t self = getpid();

	t_assert(pipe2(ofd, O_CLOEXEC) == 0);
	t_assert(pipe2(rfd, O_CLOEXEC) == 0);
	fflush(NULL);
	st->pid = fork();
	t_assert(st->pid >= 0);
	if (st->pid == 0) {
		close(ofd[1]);
		close(rfd[0]);
		stopper_main(ofd[0], rfd[1], self);
	}
	close(ofd[0]);
	close(rfd[1]);
	st->order_fd = ofd[1];
	st->result_fd = rfd[0];
}

static void stopper_order(struct stopper *st, uint64_t at, uint64_t hold,
			  pid_t stub)
{
	struct stop_order o = { .at_ns = at, .hold_ns = hold, .stub = stub };

	t_assert(write(st->order_fd, &o, sizeof(o)) == sizeof(o));
}

static void stopper_result(struct stopper *st, struct stop_result *r)
{
	ssize_t n;

	do
		n = read(st->result_fd, r, sizeof(*r));
	while (n < 0 && errno == EINTR);
	t_assert_eq(n, sizeof(*r));
	t_assert_msg(r->s1, "the monitor was never seen stopped");
	t_note("the monitor stopped %.2f ms (seen %.2f ms) after the order's "
	       "time, for %.2f ms; the stub %c%s before the continue",
	       ms_since(r->s0, r->at), ms_since(r->s1, r->at),
	       ms(r->c0 - r->s1),
	       r->stub_state ? r->stub_state : '-',
	       r->stub_futex > 0 ? " in futex" : "");
}

static void stopper_finish(struct stopper *st)
{
	int status;

	close(st->order_fd);
	close(st->result_fd);
	t_assert(waitpid(st->pid, &status, 0) == st->pid);
	t_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

struct timing {
	uint64_t tick, nt, period;
	uint32_t n, div;
};

static void timing_of(struct sw_loop *loop, struct timing *tm)
{
	struct sw_loop_opts o = { .size = sizeof(o) };

	t_assert_rc(sw_loop_get_opts(loop, &o), 0);
	tm->tick = o.tick_ns;
	tm->n = o.stall_ticks;
	tm->div = o.timer_div;
	tm->nt = o.stall_ticks * o.tick_ns;
	tm->period = o.tick_ns / o.timer_div;
}

/*
 * An echo stub for the timed loop (T = 20 ms), spawned on a patient one
 * (t_loop(), T = 100 ms) that takes its first report, then moved: the
 * start-up of an exec'd stub (the dynamic linker, a sanitizer's runtime, a
 * loaded machine) may rightly take longer than the timed loop's N*T, and
 * is not what these cases are about.
 */
static struct sw_stub *echo_for(struct sw_loop *timed, struct sw_loop *patient,
				intptr_t mode)
{
	struct sw_stub *stub = t_spawn_echo(patient, mode);

	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_attach(stub, timed), 0);
	return stub;
}

/* And its exit, on the patient loop again: an exec'd stub's exit may take
 * as long as its start-up. */
static void stop_on(struct sw_stub *stub, struct sw_loop *patient)
{
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_attach(stub, patient), 0);
	t_stop(stub);
}

/* After a case: the timed loop serves a new stub. */
static void serve_moved(struct sw_loop *timed, struct sw_loop *patient,
			intptr_t mode)
{
	struct sw_stub *stub = echo_for(timed, patient, mode);

	t_echo(stub, 20);
	stop_on(stub, patient);
}

#define STOP_ATTEMPTS 5

/*
 * A well-behaved stub (it answers `delay` after its resume, less than N*T)
 * in flight; the monitor stopped `stop_after` after the resume, for
 * 10*N*T, answered meanwhile.  Conclusive when the monitor was seen stopped
 * before the stub could have answered, and the stub was back in its futex
 * (reported) before the continue.
 */
static void stopped_report(intptr_t mode, uint64_t stop_after, uint64_t delay,
			   bool retry)
{
	struct sw_loop *loop, *patient;
	struct stop_result res;
	struct stopper st;
	struct sw_stub *stub;
	struct timing tm;
	struct sw_event ev;
	uint64_t t0, t1, req;
	unsigned attempt;
	bool conclusive = false;
	int rc;

	stopper_start(&st);
	loop = t_loop_timed();
	patient = t_loop();
	timing_of(loop, &tm);
	stub = echo_for(loop, patient, mode);
	t_echo(stub, 10);
	for (attempt = 0; attempt < STOP_ATTEMPTS && !conclusive; attempt++) {
		req = 1000 + attempt;
		t_pl(stub)->delay_ns = delay;
		t_pl(stub)->req = req;
		t0 = t_now_ns();
		t_assert_rc(sw_stub_resume(stub), 0);
		t1 = t_now_ns();
		stopper_order(&st, t1 + stop_after, 10 * tm.nt,
			      sw_stub_pid(stub));
		rc = sw_stub_wait(stub, &ev);
		stopper_result(&st, &res);
		if (rc != SW_EV_REPORT) {
			t_note_event(rc, &ev);
			t_skip_if_held(stub, rc, &ev);
			t_fail(__FILE__, __LINE__, "attempt %u: %s, not the "
			       "report (stopped %.2f ms after the resume, the "
			       "stub to answer at %.2f ms)", attempt,
			       t_ev_name(rc), ms_since(res.s1, t0), ms(delay));
		}
		t_assert_eq(t_pl(stub)->ack, req + 1);
		conclusive = res.s1 < t0 + delay && res.stub_futex == 1;
		t_note("attempt %u: seen stopped %.2f ms after the resume, the "
		       "stub answers %.2f ms after it; %s", attempt,
		       ms_since(res.s1, t0), ms(delay),
		       conclusive ? "it answered while the monitor was "
				    "stopped: report taken"
				  : "inconclusive");
		if (!conclusive && !retry)
			break;
		t_pl(stub)->delay_ns = 0;
		t_echo(stub, 5);
	}
	t_pl(stub)->delay_ns = 0;
	t_echo(stub, 20);
	stop_on(stub, patient);
	t_assert(sw_loop_free(loop) == NULL);
	t_assert(sw_loop_free(patient) == NULL);
	stopper_finish(&st);
	if (!conclusive)
		t_skip("the monitor was never stopped between the resume and "
		       "the stub's report (a loaded machine)");
}

/* Stopped a tick into the stub's silence; it answers at 3 ticks. */
static void case_stopped_report(intptr_t mode)
{
	stopped_report(mode, T_TICK_NS, 3 * T_TICK_NS, true);
}

/* Stopped N*T - T/2 into its silence, when the counted periods and one
 * more tick reach the limit; it answers at N*T - T/8. */
static void case_stopped_report_late(intptr_t mode)
{
	stopped_report(mode, T_STALL * T_TICK_NS - T_TICK_NS / 2,
		       T_STALL * T_TICK_NS - T_TICK_NS / 8, true);
}

static void case_stopped_stall(intptr_t mode)
{
	struct sw_loop_stats stats = { .size = sizeof(stats) };
	struct sw_loop *loop, *patient;
	struct stopper st;
	struct stop_result res;
	const struct sw_kill_info *k;
	struct sw_stub *stub;
	struct timing tm;
	struct sw_event ev;
	uint64_t t0, t1, frozen, lower;
	unsigned attempt;
	pid_t pid;

	stopper_start(&st);
	loop = t_loop_timed();
	patient = t_loop();
	timing_of(loop, &tm);
	for (attempt = 0; attempt < STOP_ATTEMPTS; attempt++) {
		stub = echo_for(loop, patient, mode);
		pid = sw_stub_pid(stub);
		t_echo(stub, 10);
		t_assert_rc(sw_loop_get_stats(loop, &stats, 1), 0);
		t_pl(stub)->arg = T_STALL_FUTEX;
		t_pl(stub)->req = T_REQ_STALL;
		t0 = t_now_ns();
		t_assert_rc(sw_stub_resume(stub), 0);
		t1 = t_now_ns();
		/* two ticks into the silence: counted periods before the stop */
		stopper_order(&st, t1 + 2 * tm.tick, 10 * tm.nt, pid);
		t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
		stopper_result(&st, &res);
		t_assert_rc(sw_loop_get_stats(loop, &stats, 0), 0);
		assert_stall_kill(&ev, pid);
		k = &ev.kill;
		/* the contract, from the resume, in every attempt */
		t_assert_kill_window("stalled across the monitor's stop", loop,
				     t0, t1, k);
		t_assert(sw_stub_free(stub) == NULL);
		if (k->killed_at_ns < res.s0) {
			/* the helper was late: the kill came first */
			t_note("attempt %u: killed before the stop, retried",
			       attempt);
			continue;
		}
		frozen = res.c0 - res.s1;
		t_note("killed %.2f ms after the continue (%.2f ms after the "
		       "resume, the monitor stopped %.2f ms after it for %.2f "
		       "ms); monitor late %.2f ms, starved %.2f ms; stats: max "
		       "late %.2f ms, max gap %.2f ms, %" PRIu64 " reads, %"
		       PRIu64 " periods", ms_since(k->killed_at_ns, res.c0),
		       ms_since(k->killed_at_ns, t1), ms_since(res.s1, t0),
		       ms(frozen), ms(k->monitor_late_ns), ms(k->starved_ns),
		       ms(stats.max_late_ns), ms(stats.max_gap_ns),
		       stats.timer_reads, stats.timer_periods);
		/* no kill while stopped; the monitor ran again after c0 */
		t_assert_msg(k->killed_at_ns >= res.c0, "killed %.3f ms before "
			     "the continue", ms_since(res.c0, k->killed_at_ns));
		/* a read counts at most one tick, however long the stop */
		lower = res.c0 + (tm.n - 1) * tm.tick - tm.period -
			(res.s1 - t0);
		t_assert_msg(k->killed_at_ns > lower, "killed %.3f ms after the "
			     "continue: the stop counted more than one tick "
			     "(the rule allows no kill before %.3f ms)",
			     ms_since(k->killed_at_ns, res.c0),
			     ms_since(lower, res.c0));
		/* the bound, after the continue */
		t_assert_msg(k->killed_at_ns <= res.c1 + (tm.n + 1) * tm.tick +
							k->monitor_late_ns +
							k->starved_ns,
			     "killed %.3f ms after the continue, over (N+1)*T + "
			     "monitor_late + starved",
			     ms_since(k->killed_at_ns, res.c1));
		/* the frozen periods beyond one tick are the monitor's own
		 * lateness: the first read after the continue took every
		 * expiration of (s1, c0), at least frozen/P - 1 of them, and
		 * counted at most k */
		t_assert_msg(k->monitor_late_ns + tm.tick + tm.period >= frozen,
			     "monitor_late_ns %.3f ms does not own up to the "
			     "%.3f ms stop", ms(k->monitor_late_ns), ms(frozen));
		t_assert_msg(stats.max_late_ns + tm.period >= frozen,
			     "the stats' max_late_ns %.3f ms misses the %.3f ms "
			     "stop", ms(stats.max_late_ns), ms(frozen));
		t_assert_msg(stats.max_gap_ns >= frozen,
			     "the stats' max_gap_ns %.3f ms misses the %.3f ms "
			     "stop", ms(stats.max_gap_ns), ms(frozen));
		serve_moved(loop, patient, mode);
		t_assert(sw_loop_free(loop) == NULL);
		t_assert(sw_loop_free(patient) == NULL);
		stopper_finish(&st);
		return;
	}
	t_assert(sw_loop_free(loop) == NULL);
	t_assert(sw_loop_free(patient) == NULL);
	stopper_finish(&st);
	t_skip("in %u attempts the stop never came before the kill",
	       STOP_ATTEMPTS);
}

/*
 * An echo stub asked to exit `delay` after its report (T_REQ_EXIT_IDLE),
 * resumed again right after the report, so that it is in flight when it
 * exits; the monitor stopped a tick after that resume.  Conclusive when
 * the monitor was seen stopped before the stub could exit and the stub was
 * a zombie at the continue.
 */
static void case_stopped_exit(intptr_t mode)
{
	const uint64_t delay = 3 * T_TICK_NS;
	struct sw_loop *loop, *patient;
	struct stop_result res;
	struct stopper st;
	struct sw_stub *stub;
	struct timing tm;
	struct sw_event ev;
	uint64_t ta, t1, tw;
	unsigned attempt;
	int code, rc;

	stopper_start(&st);
	loop = t_loop_timed();
	patient = t_loop();
	timing_of(loop, &tm);
	for (attempt = 0; attempt < STOP_ATTEMPTS; attempt++) {
		stub = echo_for(loop, patient, mode);
		t_echo(stub, 5);
		code = 40 + (int)attempt;
		t_pl(stub)->arg = (uint64_t)code;
		t_pl(stub)->delay_ns = delay;
		ta = t_now_ns();
		t_assert_rc(t_request(stub, T_REQ_EXIT_IDLE, &ev),
			    SW_EV_REPORT);
		t_assert_eq(t_pl(stub)->ack, T_REQ_EXIT_IDLE + 1);
		/* in flight again: it will not answer, it exits */
		t_assert_rc(sw_stub_resume(stub), 0);
		t1 = t_now_ns();
		stopper_order(&st, t1 + tm.tick, 10 * tm.nt, sw_stub_pid(stub));
		rc = sw_stub_wait(stub, &ev);
		tw = t_now_ns();
		stopper_result(&st, &res);
		assert_exit(rc, &ev, code);
		t_assert(sw_stub_free(stub) == NULL);
		if (res.s1 < ta + delay && res.stub_state == 'Z') {
			t_note("attempt %u: exited while the monitor was "
			       "stopped, delivered %.2f ms after the continue",
			       attempt, ms_since(tw, res.c0));
			t_assert(tw >= res.c0);
			serve_moved(loop, patient, mode);
			t_assert(sw_loop_free(loop) == NULL);
			t_assert(sw_loop_free(patient) == NULL);
			stopper_finish(&st);
			return;
		}
		t_note("attempt %u: inconclusive (seen stopped %.2f ms after the "
		       "request, the stub %c at the continue)", attempt,
		       ms_since(res.s1, ta), res.stub_state ? res.stub_state
							    : '-');
	}
	t_assert(sw_loop_free(loop) == NULL);
	t_assert(sw_loop_free(patient) == NULL);
	stopper_finish(&st);
	t_skip("in %u attempts the stub never exited while the monitor was "
	       "stopped", STOP_ATTEMPTS);
}

static const struct t_case cases[] = {
	{ "spawn_emfile/fn", case_spawn_emfile, T_FN, 30 },
	{ "spawn_emfile/exec", case_spawn_emfile, T_EXEC, 30 },
	{ "add_fd_emfile/fn", case_add_fd_emfile, T_FN, 0 },
	{ "add_fd_emfile/exec", case_add_fd_emfile, T_EXEC, 0 },
	{ "spawn_enomem/fn", case_spawn_enomem, T_FN, 30 },
	{ "spawn_enomem/exec", case_spawn_enomem, T_EXEC, 30 },
	{ "spawn_fsize/fn", case_spawn_fsize, T_FN, 0 },
	{ "spawn_fsize/exec", case_spawn_fsize, T_EXEC, 0 },
	{ "eintr_storm/fn", case_eintr_storm, T_FN, 30 },
	{ "eintr_storm/exec", case_eintr_storm, T_EXEC, 30 },
	{ "stopped_report/fn", case_stopped_report, T_FN, 30 },
	{ "stopped_report/exec", case_stopped_report, T_EXEC, 30 },
	{ "stopped_report_late/fn", case_stopped_report_late, T_FN, 30 },
	{ "stopped_stall/fn", case_stopped_stall, T_FN, 30 },
	{ "stopped_stall/exec", case_stopped_stall, T_EXEC, 30 },
	{ "stopped_exit/fn", case_stopped_exit, T_FN, 30 },
	{ "stopped_exit/exec", case_stopped_exit, T_EXEC, 30 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
