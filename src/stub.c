// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Stubs: spawn (clone3 with CLONE_PIDFD and exit_signal 0), the shared page
 * (a sealed memfd), the report eventfd, and their teardown.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

#define SHM_DEFAULT (16u << 10)
#define SHM_MAX     (64u << 20)

uint64_t sw__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int validate_spawn(const struct sw_spawn_opts *o, size_t *ret_size)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), size;

	if (o->size < sizeof(*o))
		return -EINVAL;
	if (!o->fn == !o->path)
		return -EINVAL;
	if (o->path && (!o->argv || !o->argv[0]))
		return -EINVAL;
	if (o->flags & ~(SW_SPAWN_KEEP_FDS | SW_SPAWN_PDEATHSIG | SW_SPAWN_PIDNS))
		return -EINVAL;
	size = o->shm_size ? o->shm_size : SHM_DEFAULT;
	if (size > SHM_MAX)
		return -EINVAL;
	if (size < sizeof(struct sw_page))
		size = sizeof(struct sw_page);
	*ret_size = (size + pg - 1) / pg * pg;
	return 0;
}

static int make_page(size_t size, int *ret_fd, struct sw_page **ret_page)
{
	int fd, r;
	void *p;

	fd = memfd_create("stubwatch", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* Sealed so the stub cannot shrink it under the monitor (SIGBUS). */
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	/* No child inherits the mapping: a stub must reach no other stub's
	 * page, so each one maps its own from the memfd (see child()). */
	if (madvise(p, size, MADV_DONTFORK) < 0) {
		r = -errno;
		munmap(p, size);
		close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret_page = p;
	return 0;
}

/*
 * The child side uses raw system calls only (the header's sw__syscall6):
 * no errno, no libc wrapper, nothing a sanitizer intercepts.  A raw clone
 * skips glibc's fork handlers, so a lock another thread held at the clone
 * (malloc's, stdio's, a sanitizer runtime's) may be held for ever here.
 */
#define CHILD_NOSAN __attribute__((no_sanitize("address", "thread", "undefined")))

static CHILD_NOSAN long sys(long nr, long a, long b, long c, long d, long e)
{
	return sw__syscall6(nr, a, b, c, d, e, 0);
}

/* Move fd to newfd (fd stays open unless they are equal). */
static CHILD_NOSAN long move_fd(int fd, int newfd)
{
	return fd == newfd ? 0 : sys(SYS_dup3, fd, newfd, 0, 0, 0);
}

static CHILD_NOSAN __attribute__((noreturn)) void child_exit(int code)
{
	for (;;)
		sys(SYS_exit_group, code, 0, 0, 0, 0);
}

/* Report -err through the pipe and leave. */
static CHILD_NOSAN __attribute__((noreturn)) void child_fail(int errfd,
							     long err)
{
	int e = (int)-err;

	while (sys(SYS_write, errfd, (long)&e, sizeof(e), 0, 0) == -EINTR)
		;
	child_exit(127);
}

/* Close every fd from `lo` up except `keep`. */
static CHILD_NOSAN void close_from(unsigned lo, unsigned keep)
{
	if (keep > lo)
		sys(SYS_close_range, lo, keep - 1, 0, 0, 0);
	sys(SYS_close_range, keep + 1, ~0u, 0, 0, 0);
}

/*
 * SW_SPAWN_KEEP_FDS in fn mode: close every close-on-exec fd but `keep`, as
 * an exec would.  Every fd of the library is close-on-exec, so no loop's
 * epoll, timer or kick fd and no other stub's page, eventfd or pidfd
 * survives; the caller's fds that are not close-on-exec do.
 */
struct child_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static CHILD_NOSAN void close_if_cloexec(long fd, long keep)
{
	if (fd != keep && sys(SYS_fcntl, fd, F_GETFD, 0, 0, 0) > 0)
		sys(SYS_close, fd, 0, 0, 0, 0); /* FD_CLOEXEC is its only flag */
}

static CHILD_NOSAN void close_cloexec(int keep)
{
	char buf[2048] __attribute__((aligned(8)));
	struct { uint64_t cur, max; } lim;
	long dir, n, off, fd;

	dir = sys(SYS_openat, AT_FDCWD, (long)"/proc/self/fd",
		  O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
	if (dir < 0) {
		/* No /proc: every fd up to the limit. */
		if (sys(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&lim, 0) < 0 ||
		    lim.cur > (1u << 20))
			lim.cur = 1u << 20;
		for (fd = 0; fd < (long)lim.cur; fd++)
			close_if_cloexec(fd, keep);
		return;
	}
	while ((n = sys(SYS_getdents64, dir, (long)buf, sizeof(buf), 0, 0)) > 0) {
		for (off = 0; off < n;) {
			struct child_dirent64 *d = (void *)(buf + off);
			const char *c = d->d_name;

			off += d->d_reclen;
			if (*c < '0' || *c > '9')
				continue; /* "." and ".." */
			for (fd = 0; *c >= '0' && *c <= '9'; c++)
				fd = fd * 10 + (*c - '0');
			if (fd != dir)
				close_if_cloexec(fd, keep);
		}
	}
	sys(SYS_close, dir, 0, 0, 0, 0);
}

/* Write "text" to /proc/self/<file>. */
static CHILD_NOSAN long write_self(const char *file, const char *text,
				   size_t len)
{
	long fd, r;

	fd = sys(SYS_openat, AT_FDCWD, (long)file, O_WRONLY | O_CLOEXEC, 0, 0);
	if (fd < 0)
		return fd;
	r = sys(SYS_write, fd, (long)text, (long)len, 0, 0);
	sys(SYS_close, fd, 0, 0, 0, 0);
	return r < 0 ? r : r == (long)len ? 0 : -EIO;
}

/* "id id 1\n" into buf (at least 32 bytes); returns its length. */
static CHILD_NOSAN size_t id_map_line(char *buf, unsigned id)
{
	char digits[10];
	size_t n = 0, len = 0;

	do
		digits[n++] = (char)('0' + id % 10);
	while ((id /= 10) && n < sizeof(digits));
	for (int twice = 0; twice < 2; twice++) {
		for (size_t i = n; i > 0; i--)
			buf[len++] = digits[i - 1];
		buf[len++] = ' ';
	}
	buf[len++] = '1';
	buf[len++] = '\n';
	return len;
}

/* A close-on-exec duplicate of fd above SW_EXEC_PAGE_FD and
 * SW_STUB_REPORT_FD.  F_DUPFD says EINVAL, not EMFILE, when the lowest fd
 * it may take is at or past RLIMIT_NOFILE: the fds ran out all the same. */
static CHILD_NOSAN long above_targets(int fd)
{
	long lo = (SW_EXEC_PAGE_FD > SW_STUB_REPORT_FD ? SW_EXEC_PAGE_FD
						      : SW_STUB_REPORT_FD) + 1;
	long r = sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, lo, 0, 0);

	return r == -EINVAL ? -EMFILE : r;
}

/* SW_SPAWN_PIDNS in a new user namespace: the stub keeps its own uid and
 * gid (the only mapping an unprivileged process may write), and
 * setgroups() is denied, as the kernel requires before a gid_map. */
static CHILD_NOSAN long map_own_ids(unsigned uid, unsigned gid)
{
	char line[32];
	long r;

	r = write_self("/proc/self/uid_map", line, id_map_line(line, uid));
	if (r == 0)
		r = write_self("/proc/self/setgroups", "deny", 4);
	if (r == 0)
		r = write_self("/proc/self/gid_map", line,
			       id_map_line(line, gid));
	return r;
}

struct child_ns {
	bool userns;       /* mapping to write */
	unsigned uid, gid; /* the caller's, to map */
};

/*
 * The child, right after clone3.  Setup errors go back to the parent
 * through errfd; a clean setup closes it (at exec, or before fn).
 */
CHILD_NOSAN __attribute__((noreturn)) static void
child(const struct sw_spawn_opts *o, struct sw_page *page, size_t size,
      int memfd, int efd, int errfd, char *const *envp,
      const struct child_ns *ns)
{
	uint64_t none = 0;
	long r;

	/* A clean signal mask: a monitor thread that blocks SIGALRM (for a
	 * signalfd, say) must not make its stubs look hijacked. */
	sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, sizeof(none), 0);
	if (ns->userns) {
		r = map_own_ids(ns->uid, ns->gid);
		if (r < 0)
			child_fail(errfd, r);
	}
	if (o->flags & SW_SPAWN_PDEATHSIG) {
		r = sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (r < 0)
			child_fail(errfd, r);
	}
	if (o->fn) {
		/* Pages are MADV_DONTFORK: map this stub's own, at the address
		 * the monitor uses, which is free in the child. */
		r = sw__syscall6(SYS_mmap, (long)page, (long)size,
				 PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED_NOREPLACE, memfd, 0);
		if (r != (long)page)
			child_fail(errfd, r < 0 && r > -4096 ? r : -EEXIST);
		if (!(o->flags & SW_SPAWN_KEEP_FDS)) {
			/* The eventfd on SW_STUB_REPORT_FD, as in exec mode,
			 * so that one seccomp filter fits every stub. */
			r = move_fd(efd, SW_STUB_REPORT_FD);
			if (r < 0)
				child_fail(errfd, r);
			if (efd < 3 && efd != SW_STUB_REPORT_FD)
				sys(SYS_close, efd, 0, 0, 0, 0);
			/* 0-2 stay the caller's, unless they are the
			 * library's own (a caller that closed its stdio before
			 * sw_loop_new()): every library fd is close-on-exec */
			for (int fd = 0; fd < 3; fd++)
				close_if_cloexec(fd, SW_STUB_REPORT_FD);
			close_from(3, SW_STUB_REPORT_FD); /* memfd, errfd too */
		} else {
			close_cloexec(efd); /* memfd and errfd too */
		}
		child_exit(o->fn(page, o->arg));
	}

	/* exec: page on SW_EXEC_PAGE_FD, eventfd on SW_STUB_REPORT_FD.  Move
	 * them and the error pipe above the targets first, so that dup3
	 * cannot clobber any of them. */
	r = above_targets(errfd);
	if (r < 0)
		child_fail(errfd, r); /* still a valid fd, if a low one */
	errfd = (int)r;
	r = above_targets(memfd);
	if (r < 0)
		child_fail(errfd, r);
	memfd = (int)r;
	r = above_targets(efd);
	if (r < 0)
		child_fail(errfd, r);
	efd = (int)r;
	r = sys(SYS_dup3, memfd, SW_EXEC_PAGE_FD, 0, 0, 0);
	if (r >= 0)
		r = sys(SYS_dup3, efd, SW_STUB_REPORT_FD, 0, 0, 0);
	if (r < 0)
		child_fail(errfd, r);
	/* Everything else closes at exec; the error pipe still works here. */
	if (!(o->flags & SW_SPAWN_KEEP_FDS))
		sys(SYS_close_range, SW_STUB_REPORT_FD + 1, ~0u,
		    CLOSE_RANGE_CLOEXEC, 0, 0);
	r = sys(SYS_execve, (long)o->path, (long)o->argv, (long)envp, 0, 0);
	child_fail(errfd, r);
}

/* Release all but the pidfd.  forked: in a child of the monitor, where the
 * page was never mapped (MADV_DONTFORK), so its address may now hold
 * something else. */
static void release_stub(struct sw_stub *s, bool forked)
{
	if (s->page && !forked)
		munmap(s->page, s->shm_size);
	s->page = NULL;
	if (s->report_fd >= 0)
		close(s->report_fd);
	s->report_fd = -1;
	if (s->xfd >= 0)
		close(s->xfd); /* our duplicate of the watched fd */
	s->xfd = -1;
}

static void free_stub_mem(struct sw_stub *s, bool forked)
{
	release_stub(s, forked);
	if (s->pidfd >= 0)
		close(s->pidfd);
	free(s);
}

/*
 * SIGKILL the stub and collect its death.  Blocks only until the kernel has
 * torn it down (its pidfd turns readable), never on a reap that someone
 * else controls: a zombie a tracer holds is left s->held.
 */
void sw__stop(struct sw_stub *s)
{
	syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
	sw__wait_teardown(s->pidfd, s->pid);
	sw__reap(s);
}

void sw__wait_teardown(int pidfd, pid_t pid)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int r;

	/* A tracer that holds a zombie thread keeps the pidfd from ever
	 * turning readable: look at the threads every 100 ms. */
	while ((r = poll(&p, 1, 100)) != 1)
		if ((r < 0 && errno != EINTR) || (r == 0 && sw__all_zombies(pid)))
			break;
}

/* Free a stub that is dead or stopped: a zombie a tracer still holds goes
 * to the loop's graves, to be reaped when the tracer lets go. */
static void dispose(struct sw_loop *loop, struct sw_stub *s, bool forked)
{
	if (s->held && loop && !forked) {
		release_stub(s, false);
		sw__bury(loop, s);
		return;
	}
	free_stub_mem(s, forked);
}

SW_EXPORT int sw_stub_spawn(struct sw_loop *loop,
			    const struct sw_spawn_opts *opts,
			    struct sw_stub **ret_stub)
{
	struct clone_args args = { 0 };
	struct child_ns ns = { 0 };
	struct sw_stub *s;
	int memfd = -1, pipefd[2] = { -1, -1 }, pidfd = -1, r, e;
	size_t size;
	pid_t pid;
	ssize_t n;

	if (!loop || !opts || !ret_stub)
		return -EINVAL;
	r = validate_spawn(opts, &size);
	if (r < 0)
		return r;
	if (sw_loop_forked(loop))
		return -ECHILD;
	if (loop->graves)
		sw__reap_graves(loop);

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pidfd = s->report_fd = s->xfd = -1;
	s->shm_size = size;
	r = make_page(size, &memfd, &s->page);
	if (r < 0)
		goto fail;
	s->report_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->report_fd < 0) {
		r = -errno;
		goto fail;
	}
	s->page->magic = SW_PAGE_MAGIC;
	s->page->abi = SW_PAGE_ABI;
	s->page->size = (uint32_t)size;
	s->page->report_fd = opts->fn && (opts->flags & SW_SPAWN_KEEP_FDS)
				     ? s->report_fd
				     : SW_STUB_REPORT_FD;
	/* The stub starts in flight and its first report is collected by a
	 * plain sw_stub_wait() or a dispatch: it must write the eventfd. */
	s->page->monitor = s->mon = SW_MON_SLEEPING;
	s->page->stub_cpu = -1;
	__atomic_store_n(&s->page->state, SW_STATE_IN_CHILD, __ATOMIC_RELEASE);
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}

	args.flags = CLONE_PIDFD;
	if (opts->flags & SW_SPAWN_PIDNS)
		args.flags |= CLONE_NEWPID;
	s->pidns = opts->flags & SW_SPAWN_PIDNS;
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = 0; /* invisible to waitpid(-1) and SIGCHLD */
	ns.uid = (unsigned)geteuid();
	ns.gid = (unsigned)getegid();
	pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0 && errno == EPERM && (args.flags & CLONE_NEWPID)) {
		/* No CAP_SYS_ADMIN: a user namespace of its own gives it. */
		args.flags |= CLONE_NEWUSER;
		ns.userns = true;
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	}
	if (pid < 0) {
		r = -errno;
		goto fail;
	}
	if (pid == 0)
		child(opts, s->page, size, memfd, s->report_fd, pipefd[1],
		      opts->envp ? opts->envp : environ, &ns);

	s->pid = pid;
	s->pidfd = pidfd;
	s->owner = getpid();
	close(memfd);
	memfd = -1;
	/* Wait for the child's setup: EOF when it exec'd or is about to run
	 * fn, an errno if it failed (then it has exited). */
	close(pipefd[1]);
	pipefd[1] = -1;
	do
		n = read(pipefd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	pipefd[0] = -1;
	if (n == sizeof(e)) {
		r = -e;
		goto fail_kill; /* it exits anyway; the kill changes nothing */
	}
	r = sw__loop_add_stub(loop, s);
	if (r < 0)
		goto fail_kill;
	r = sw__stub_start(loop, s);
	if (r < 0) {
		sw__loop_remove_stub(loop, s);
		goto fail_kill;
	}
	*ret_stub = s;
	return 0;

fail_kill:
	sw__stop(s);
	dispose(loop, s, false);
	return r;
fail:
	if (memfd >= 0)
		close(memfd);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free_stub_mem(s, false);
	return r;
}

SW_EXPORT struct sw_stub *sw_stub_free(struct sw_stub *s)
{
	struct sw_loop *loop;
	bool forked = false;

	if (!s)
		return NULL;
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (loop && s->waited)
		return s; /* refused: the target of a running wait */
	/* A detached stub has no loop to ask: its spawner's pid tells. */
	forked = loop ? sw_loop_forked(loop) : getpid() != s->owner;
	if (loop)
		sw__loop_remove_stub(loop, s);
	if (!forked && (!s->reaped || (s->held && !loop)))
		sw__stop(s); /* no loop to reap it later: wait for the teardown */
	else if (!forked && s->held)
		sw__reap(s); /* one more look: held, or still being taken down */
	dispose(loop, s, forked);
	return NULL;
}

SW_EXPORT struct sw_page *sw_stub_page(struct sw_stub *s)
{
	return s ? s->page : NULL;
}

SW_EXPORT pid_t sw_stub_pid(const struct sw_stub *s)
{
	if (!s)
		return -EINVAL;
	return s->delivered_end ? -ESRCH : s->pid;
}

SW_EXPORT int sw_stub_pidfd(const struct sw_stub *s)
{
	if (!s)
		return -EINVAL;
	return s->delivered_end ? -ESRCH : s->pidfd;
}

SW_EXPORT struct sw_loop *sw_stub_loop(const struct sw_stub *s)
{
	return s ? __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE) : NULL;
}

SW_EXPORT int sw_stub_set_callback(struct sw_stub *s, sw_event_fn fn,
				   void *userdata)
{
	if (!s)
		return -EINVAL;
	s->cb = fn;
	s->userdata = userdata;
	return 0;
}

SW_EXPORT void *sw_stub_get_userdata(const struct sw_stub *s)
{
	return s ? s->userdata : NULL;
}

SW_EXPORT int sw_stub_detach(struct sw_stub *s)
{
	struct sw_loop *loop;

	if (!s)
		return -EINVAL;
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (!loop)
		return -ENOLINK;
	if (sw_loop_forked(loop))
		return -ECHILD;
	if (s->waited || s->pending || s->death_owed ||
	    s->wd.state == SW_WD_RUNNING || s->wd.state == SW_WD_KILLING ||
	    loop->in_callback)
		return -EBUSY;
	sw__loop_remove_stub(loop, s);
	return 0;
}

SW_EXPORT int sw_stub_attach(struct sw_stub *s, struct sw_loop *loop)
{
	struct sw_loop *cur;

	if (!s || !loop)
		return -EINVAL;
	cur = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (cur)
		return -EBUSY;
	/* A stub belongs to the process that spawned it: a child after fork
	 * holds a copy of the handle, but not the page mapping nor the child. */
	if (sw_loop_forked(loop) || getpid() != s->owner)
		return -ECHILD;
	if (s->reaped)
		return -ESRCH;
	return sw__loop_add_stub(loop, s);
}
