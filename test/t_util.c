/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The harness and the stub roles.  Nothing here calls into libstubwatch
 * (only the header's inline stub side), so the pure watchdog test links
 * without the library.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t_util.h"

#if defined(__x86_64__)
#define T_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define T_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "t_role_notify: add this architecture's AUDIT_ARCH_*"
#endif

/* ---- reporting --------------------------------------------------------- */

void t_note(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	printf("# FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	/* exit(), not _exit(): LeakSanitizer runs at exit */
	exit(T_EXIT_FAIL);
}

void t_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("# SKIP: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	exit(T_EXIT_SKIP);
}

const char *t_errname(long long rc)
{
	const char *name;

	if (rc >= 0)
		return rc == 0 ? "0" : "> 0";
	if (rc < -4095)
		return "?";
	name = strerrorname_np((int)-rc);
	return name ? name : "?";
}

/* ---- processes, fds, time ---------------------------------------------- */

uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t schedstat_wait(const char *path)
{
	unsigned long long run, delay;
	FILE *f = fopen(path, "re");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%llu %llu", &run, &delay);
	fclose(f);
	return n == 2 ? delay : 0;
}

uint64_t t_run_delay_ns(void)
{
	return schedstat_wait("/proc/thread-self/schedstat");
}

uint64_t t_run_delay_of(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	return schedstat_wait(path);
}

void t_assert_no_spin(const char *what, uint64_t cpu0, uint64_t t0)
{
	uint64_t cpu = t_process_cpu_ns() - cpu0, wall = t_now_ns() - t0;

	t_note("%s: %.1f ms of CPU in %.1f ms", what, (double)cpu / 1e6,
	       (double)wall / 1e6);
	t_assert_msg(cpu * 10 < wall * 3, "%s: the loop spun, %.1f ms of CPU "
		     "in %.1f ms", what, (double)cpu / 1e6, (double)wall / 1e6);
}

/* nanosleep is async-signal-safe: usable by fn-mode stubs too */
void t_sleep_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ull),
		.tv_nsec = (long)(ns % 1000000000ull),
	};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int t_fd_count(void)
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

static void t_fd_list(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], target[256];
	ssize_t len;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		target[len < 0 ? 0 : len] = 0;
		printf("#   fd %s -> %s\n", e->d_name, target);
	}
	closedir(d);
}

bool t_no_children(void)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	/* __WALL: stubs have exit_signal 0, so only __WALL sees them */
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0)
		return errno == ECHILD;
	if (si.si_pid)
		t_note("child %d left behind as a zombie", si.si_pid);
	else
		t_note("a live child is left behind");
	return false;
}

char t_proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

bool t_wait_proc_state(pid_t pid, const char *letters, uint64_t timeout_ns)
{
	uint64_t end = t_now_ns() + timeout_ns;
	char c;

	do {
		c = t_proc_state(pid);
		if (c && strchr(letters, c))
			return true;
		t_sleep_ns(T_MS / 4);
	} while (t_now_ns() < end);
	return false;
}

const char *t_mode_name(intptr_t mode)
{
	return T_PMODE(mode) == T_EXEC ? "exec" : "fn";
}

/* ---- stub roles: async-signal-safe only -------------------------------- */

static long t_futex(uint32_t *word, int op, uint32_t val)
{
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

static __attribute__((noreturn)) void t_futex_sleep_forever(void)
{
	uint32_t word = 0;

	for (;;)
		t_futex(&word, FUTEX_WAIT_PRIVATE, 0);
}

static void t_sigalrm_mask(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigprocmask(how, &set, NULL);
}

/* A raw thread (no pthread, no TLS of its own): raw calls only. */
static char t_thread_stack[64 * 1024] __attribute__((aligned(16)));

static __attribute__((no_sanitize("address", "thread", "undefined"))) int
t_blocked_spin_thread(void *arg)
{
	uint64_t alrm = 1ull << (SIGALRM - 1);

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &alrm, NULL, sizeof(alrm));
	for (;;)
		__asm__ volatile("" ::: "memory");
	return (int)(uintptr_t)arg;
}

static __attribute__((noreturn)) void t_stall(struct sw_page *page,
					      uint64_t arg)
{
	static const uint64_t one = 1;

	switch (arg & 0xff) {
	case T_STALL_SPIN:
		t_sigalrm_mask(SIG_UNBLOCK);
		for (;;)
			__asm__ volatile("" ::: "memory");
	case T_STALL_BLOCKED_SPIN:
		t_sigalrm_mask(SIG_BLOCK);
		for (;;)
			__asm__ volatile("" ::: "memory");
	case T_STALL_FUTEX:
		t_sigalrm_mask(SIG_UNBLOCK);
		t_futex_sleep_forever();
	case T_STALL_BLOCKED_FUTEX:
		t_sigalrm_mask(SIG_BLOCK);
		t_futex_sleep_forever();
	case T_STALL_FLOOD:
		/* state stays IN_CHILD: noise, not progress */
		for (;;)
			if (write(page->report_fd, &one, sizeof(one)) < 0)
				_exit(T_STUB_ERR_FD);
	case T_STALL_STOP_SELF:
		kill(getpid(), SIGSTOP);
		t_futex_sleep_forever();
	case T_STALL_GARBAGE:
		__atomic_store_n(&page->state, (uint32_t)(arg >> 32),
				 __ATOMIC_RELEASE);
		if (write(page->report_fd, &one, sizeof(one)) < 0)
			_exit(T_STUB_ERR_FD);
		t_futex_sleep_forever();
	case T_STALL_LEADER_EXIT:
		if (clone(t_blocked_spin_thread,
			  t_thread_stack + sizeof(t_thread_stack),
			  CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
				  CLONE_THREAD | CLONE_SYSVSEM,
			  NULL) < 0)
			_exit(T_STUB_ERR_ROLE);
		for (;;)
			syscall(SYS_exit, 0); /* this thread only */
	}
	_exit(T_STUB_ERR_ROLE);
}

/* No core dump for SIGSEGV/SIGABRT: a piped core_pattern ignores
 * RLIMIT_CORE and would make the death slow. */
static void t_die_by(uint64_t sig)
{
	struct sigaction dfl;

	/* the default action, whatever handler a sanitizer runtime set */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction((int)sig, &dfl, NULL);
	prctl(PR_SET_DUMPABLE, 0);
	kill(getpid(), (int)sig);
}

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static uint64_t t_fdcheck(const struct t_payload *p)
{
	uint64_t result = 0;
	int i;

	for (i = 0; i < 4; i++) {
		int64_t fd = (int64_t)LOAD(&p->fds[i]);

		if (fd >= 0 && fcntl((int)fd, F_GETFD) >= 0)
			result |= 1ull << i;
	}
	return result;
}

static int t_vfork_child(void *arg)
{
	struct t_payload *p = arg;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with a killed stub */
	t_sleep_ns(LOAD(&p->arg));
	return 0;
}

static __attribute__((noreturn)) void t_sleep_forever(void)
{
	for (;;)
		pause();
}

/* One descendant as T_REQ_KIN's kind says; the clone's value or -errno. */
static long t_make_kin(unsigned kind)
{
	long pid, gc;

	switch (kind) {
	case T_KIN_FORK:
		pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
		if (pid == 0)
			t_sleep_forever();
		return pid < 0 ? -errno : pid;
	case T_KIN_DAEMON:
		pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
		if (pid == 0) {
			setsid();
			gc = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
			if (gc == 0)
				t_sleep_forever();
			_exit(gc < 0 ? 1 : 0);
		}
		if (pid < 0)
			return -errno;
		waitpid((pid_t)pid, NULL, __WALL);
		return pid;
	case T_KIN_SIBLING:
		/* the exit signal is the caller's own (CLONE_PARENT) */
		pid = syscall(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
		if (pid == 0)
			t_sleep_forever();
		return pid < 0 ? -errno : pid;
	}
	return -EINVAL;
}

int t_role_echo(struct sw_page *page, void *arg)
{
	struct t_payload *p = t_payload(page);
	uint64_t req, delay;
	unsigned i;

	for (;;) {
		req = LOAD(&p->req);
		switch (req) {
		case T_REQ_STOP:
			return 0;
		case T_REQ_EXIT:
			return (int)LOAD(&p->arg);
		case T_REQ_STALL:
			t_sleep_ns(LOAD(&p->delay_ns));
			t_stall(page, LOAD(&p->arg));
		case T_REQ_SIGNAL:
			t_die_by(LOAD(&p->arg));
			break;
		case T_REQ_GATED:
			while (!LOAD(&p->gate))
				t_futex(&p->gate, FUTEX_WAIT, 0);
			STORE(&p->gate, 0);
			break;
		case T_REQ_FDCHECK:
			STORE(&p->result, t_fdcheck(p));
			break;
		case T_REQ_EXIT_IDLE:
			STORE(&p->ack, req + 1);
			sw_stub_report(page);
			t_sleep_ns(LOAD(&p->delay_ns));
			return (int)LOAD(&p->arg);
		case T_REQ_GARBAGE_IDLE:
			STORE(&p->ack, req + 1);
			sw_stub_report(page);
			t_sleep_ns(LOAD(&p->delay_ns));
			t_stall(page, T_STALL_ARG(T_STALL_GARBAGE,
						  (uint32_t)LOAD(&p->arg)));
		case T_REQ_FLOOD_IDLE:
			STORE(&p->ack, req + 1);
			sw_stub_report(page);
			t_stall(page, T_STALL_FLOOD);
		case T_REQ_NOTIFY: {
			uint64_t sum = 0, n = LOAD(&p->arg);

			while (n--)
				sum += (uint64_t)syscall(SYS_getpgid, 0);
			STORE(&p->result, sum);
			break;
		}
		case T_REQ_NOTIFY_STALL:
			syscall(SYS_getpgid, 0);
			t_stall(page, LOAD(&p->arg));
		case T_REQ_VFORK: {
			/* CLONE_VFORK: this thread waits in the kernel (state
			 * D) until the child, on a stack of its own, exits */
			static char stack[64 * 1024] __attribute__((aligned(16)));
			int c = clone(t_vfork_child, stack + sizeof(stack),
				      CLONE_VM | CLONE_VFORK, p);

			if (c > 0)
				waitpid(c, NULL, __WALL);
			break;
		}
		case T_REQ_HEAVY: {
			size_t n = LOAD(&p->arg), off;
			char *m = mmap(NULL, n, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (m == MAP_FAILED) {
				STORE(&p->result, 0);
				break;
			}
			madvise(m, n, MADV_NOHUGEPAGE);
			for (off = 0; off < n; off += 4096)
				m[off] = 1;
			STORE(&p->result, (uint64_t)n);
			break;
		}
		case T_REQ_KIN: {
			uint64_t a = LOAD(&p->arg), n = a >> 8;
			long last = -EINVAL;

			for (i = 0; i < n && i < 8; i++)
				last = t_make_kin((unsigned)(a & 0xff));
			STORE(&p->result, (uint64_t)last);
			break;
		}
		case T_REQ_SCRIBBLE:
			/* the monitor must not trust these back */
			page->magic = 0;
			page->abi = 0xffffffffu;
			page->size = 1;
			for (i = 0; i < sizeof(page->reserved) /
					sizeof(page->reserved[0]); i++)
				page->reserved[i] = 0xffffffffu;
			break;
		}
		delay = LOAD(&p->delay_ns);
		if (delay)
			t_sleep_ns(delay);
		STORE(&p->ack, req + 1);
		STORE(&p->rounds, LOAD(&p->rounds) + 1);
		sw_stub_handshake(page);
	}
	(void)arg;
}

int t_role_stall(struct sw_page *page, void *arg)
{
	t_stall(page, (uint64_t)(uintptr_t)arg);
}

int t_role_exit(struct sw_page *page, void *arg)
{
	return (int)(uintptr_t)arg;
}

int t_role_signal(struct sw_page *page, void *arg)
{
	t_die_by((uint64_t)(uintptr_t)arg);
	t_futex_sleep_forever();
}

int t_role_envcheck(struct sw_page *page, void *arg)
{
	const char *v = getenv("T_ENV_PROBE");

	return v && !strcmp(v, "yes") ? 0 : 1;
}

/* the child's own copy: set before the handler can run */
static struct sw_page *t_alarm_page;

static void t_alarm_handler(int sig)
{
	struct t_payload *p = t_payload(t_alarm_page);

	STORE(&p->ack, LOAD(&p->ack) + 1);
	sw_stub_handshake(t_alarm_page);
}

int t_role_alarm(struct sw_page *page, void *arg)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = t_alarm_handler;
	sa.sa_flags = SA_RESTART;
	t_alarm_page = page;
	sigaction(SIGALRM, &sa, NULL);
	t_sigalrm_mask(SIG_UNBLOCK);
	sw_stub_handshake(page);
	for (;;)
		__asm__ volatile("" ::: "memory");
}

int t_role_notify(struct sw_page *page, void *arg)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, T_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpgid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};
	long fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return T_STUB_ERR_ROLE;
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		     SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		return T_STUB_ERR_ROLE;
	STORE(&t_payload(page)->result, (uint64_t)fd);
	return t_role_echo(page, arg);
}

static const struct {
	const char *name;
	t_role_fn fn;
} t_roles[] = {
	{ "notify", t_role_notify },
	{ "envcheck", t_role_envcheck },
	{ "alarm", t_role_alarm },
	{ "echo", t_role_echo },
	{ "stall", t_role_stall },
	{ "exit", t_role_exit },
	{ "signal", t_role_signal },
};

t_role_fn t_role_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(t_roles) / sizeof(t_roles[0]); i++)
		if (!strcmp(t_roles[i].name, name))
			return t_roles[i].fn;
	return NULL;
}

static int t_exec_role(int argc, char **argv)
{
	struct sw_page *page = NULL;
	t_role_fn fn;
	uint64_t arg;

	if (argc < 4 || !(fn = t_role_find(argv[2])))
		return T_STUB_ERR_ROLE;
	arg = strtoull(argv[3], NULL, 0);
	if (sw_stub_map(SW_EXEC_PAGE_FD, &page) < 0)
		return T_STUB_ERR_MAP;
	if (page->report_fd != SW_EXEC_REPORT_FD ||
	    fcntl(SW_EXEC_REPORT_FD, F_GETFD) < 0)
		return T_STUB_ERR_FD;
	return fn(page, (void *)(uintptr_t)arg);
}

/*
 * "/proc/self/exe --stub ROLE ARG": the exec-mode stub.  It leaves by _exit,
 * as a fn-mode stub leaves by exit_group: its exit is timed by its monitor
 * like any other run, and the atexit work of a test program is not a
 * stub's to do.  Under AddressSanitizer that work is LeakSanitizer's scan,
 * which ptrace-stops the stub (state t) for as long as the scan takes: on
 * a loaded machine, longer than the stall limit, and the watchdog rightly
 * kills a stub that does not finish exiting.  Leak checking is the
 * monitor's own run's.
 */
static __attribute__((noreturn)) void t_exec_stub(int argc, char **argv)
{
	fflush(NULL);
	_exit(t_exec_role(argc, argv));
}

/* ---- the harness ------------------------------------------------------- */

static pid_t t_harness_pid;

static __attribute__((noreturn)) void t_case_child(const struct t_case *c)
{
	sigset_t none;
	int fds_before, fds_after;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != t_harness_pid)
		_exit(T_EXIT_FAIL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGCHLD, SIG_DFL);

	fds_before = t_fd_count();
	if (!t_no_children())
		t_fail(__FILE__, __LINE__, "a child exists before the case");
	c->fn(c->param);
	fds_after = t_fd_count();
	if (fds_after != fds_before) {
		t_fd_list();
		t_fail(__FILE__, __LINE__, "%d fds open before the case, %d after",
		       fds_before, fds_after);
	}
	if (!t_no_children())
		t_fail(__FILE__, __LINE__, "the case left a child behind");
	exit(T_EXIT_PASS);
}

/* Reap what a case left in its process group (orphans come to us: we are
 * a subreaper).  Returns how many processes were left. */
/* First line of /proc/<path>, newline cut; "" if unreadable. */
static void t_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

/* A timed-out case, before it is killed: where each thread of each process
 * in its group is (state, wait channel, system call, kernel stack). */
static void t_dump_group(pid_t pgid)
{
	char path[96], line[512], wchan[64], sc[128];
	struct dirent *d, *t;
	DIR *proc, *task;

	proc = opendir("/proc");
	if (!proc)
		return;
	while ((d = readdir(proc))) {
		int pid = atoi(d->d_name), pg = -1;
		char st = '?', *p;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		t_read_line(path, line, sizeof(line));
		p = strrchr(line, ')');
		if (!p || sscanf(p + 1, " %c %*d %d", &st, &pg) != 2 ||
		    pg != (int)pgid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		task = opendir(path);
		while (task && (t = readdir(task))) {
			int tid = atoi(t->d_name);
			FILE *f;

			if (tid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid,
				 tid);
			t_read_line(path, line, sizeof(line));
			p = strrchr(line, ')');
			st = p ? p[2] : '?';
			snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan",
				 pid, tid);
			t_read_line(path, wchan, sizeof(wchan));
			snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall",
				 pid, tid);
			t_read_line(path, sc, sizeof(sc));
			printf("# timeout: pid %d tid %d state %c wchan %s "
			       "syscall %s\n", pid, tid, st,
			       wchan[0] ? wchan : "-", sc[0] ? sc : "-");
			snprintf(path, sizeof(path), "/proc/%d/task/%d/stack",
				 pid, tid);
			f = fopen(path, "r");
			for (int i = 0; f && i < 8 && fgets(line, sizeof(line), f);
			     i++)
				printf("#   %s", line);
			if (f)
				fclose(f);
		}
		if (task)
			closedir(task);
	}
	closedir(proc);
	fflush(stdout);
}

static int t_reap_leftovers(pid_t pgid)
{
	uint64_t end = t_now_ns() + 2000 * T_MS;
	int left = 0;

	if (kill(-pgid, 0) == 0) {
		left = 1;
		kill(-pgid, SIGKILL);
	}
	while (t_now_ns() < end) {
		pid_t p = waitpid(-1, NULL, WNOHANG | __WALL);

		if (p < 0 && errno == ECHILD)
			break;
		if (p > 0)
			continue;
		t_sleep_ns(T_MS);
	}
	return left;
}

enum t_result { T_PASS, T_FAIL, T_SKIP };

const char *t_cpu_alone;

static enum t_result t_run_case(unsigned n, const struct t_case *c)
{
	int lock = t_cpu_lock(t_cpu_alone && !strncmp(c->name, t_cpu_alone,
						      strlen(t_cpu_alone)));
	unsigned timeout_s = c->timeout_s ? c->timeout_s : T_TIMEOUT_DEFAULT_S;
	uint64_t start = t_now_ns(), end = start + timeout_s * 1000000000ull;
	bool timed_out = false;
	sigset_t chld;
	int status = 0;
	pid_t pid;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		printf("not ok %u - %s # fork: %s\n", n, c->name, strerror(errno));
		t_cpu_unlock(lock);
		return T_FAIL;
	}
	if (pid == 0) {
		t_cpu_unlock(lock);
		t_case_child(c);
	}
	setpgid(pid, pid);

	for (;;) {
		struct timespec ts = { 0, 100 * 1000000L };
		pid_t r = waitpid(pid, &status, WNOHANG | __WALL);
		uint64_t now;

		if (r == pid)
			break;
		now = t_now_ns();
		if (now >= end) {
			timed_out = true;
			t_dump_group(pid);
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, __WALL);
			break;
		}
		if (end - now < 100 * T_MS)
			ts.tv_nsec = (long)(end - now);
		sigtimedwait(&chld, NULL, &ts);
	}
	/* a passing case must leave nothing; what a failing or skipping one
	 * leaves is cleaned up all the same */
	if (t_reap_leftovers(pid) && !timed_out && WIFEXITED(status) &&
	    WEXITSTATUS(status) == T_EXIT_PASS) {
		printf("# %s left processes behind in its group\n", c->name);
		status = T_EXIT_FAIL << 8;
	}
	t_cpu_unlock(lock);

	if (timed_out) {
		printf("not ok %u - %s # timed out after %u s\n", n, c->name,
		       timeout_s);
		return T_FAIL;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == T_EXIT_PASS) {
		printf("ok %u - %s (%.3f s)\n", n, c->name,
		       (double)(t_now_ns() - start) / 1e9);
		return T_PASS;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == T_EXIT_SKIP) {
		printf("ok %u - %s # SKIP\n", n, c->name);
		return T_SKIP;
	}
	if (WIFEXITED(status))
		printf("not ok %u - %s # exit %d\n", n, c->name,
		       WEXITSTATUS(status));
	else
		printf("not ok %u - %s # killed by signal %d (%s)\n", n, c->name,
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
	return T_FAIL;
}

static bool t_selected(const char *name, int argc, char **argv)
{
	size_t len;
	int i;

	if (argc < 2)
		return true;
	for (i = 1; i < argc; i++) {
		len = strlen(argv[i]);
		/* "stall_spin" selects stall_spin/fn and stall_spin/exec */
		if (!strncmp(name, argv[i], len) &&
		    (name[len] == 0 || name[len] == '/'))
			return true;
	}
	return false;
}

int t_main(int argc, char **argv, const struct t_case *cases, size_t ncases)
{
	unsigned pass = 0, fail = 0, skip = 0, n = 0, total = 0;
	sigset_t chld;
	size_t i;

	if (argc >= 2 && !strcmp(argv[1], "--stub"))
		t_exec_stub(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "-l")) {
		for (i = 0; i < ncases; i++)
			printf("%s\n", cases[i].name);
		return T_EXIT_PASS;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	t_harness_pid = getpid();
	/* orphans of a failed case come to us, to be reaped */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);

	for (i = 0; i < ncases; i++)
		total += t_selected(cases[i].name, argc, argv);
	if (!total) {
		printf("# no case matches\n");
		return T_EXIT_FAIL;
	}
	printf("1..%u\n", total);
	for (i = 0; i < ncases; i++) {
		if (!t_selected(cases[i].name, argc, argv))
			continue;
		switch (t_run_case(++n, &cases[i])) {
		case T_PASS: pass++; break;
		case T_FAIL: fail++; break;
		case T_SKIP: skip++; break;
		}
	}
	printf("# %u passed, %u failed, %u skipped\n", pass, fail, skip);
	fflush(stdout);
	if (fail)
		return T_EXIT_FAIL;
	return pass ? T_EXIT_PASS : T_EXIT_SKIP;
}
