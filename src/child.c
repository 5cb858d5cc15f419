// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The stub's first moments, in the child right after clone3: a clean signal
 * mask, its own uid and gid mapped in a new user namespace, the parent-death
 * signal, then fn on its own mapping of the page, or exec with the page and
 * the eventfd on their fixed fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

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

/*
 * The child, right after clone3.  Setup errors go back to the parent
 * through errfd; a clean setup closes it (at exec, or before fn).
 */
CHILD_NOSAN __attribute__((noreturn)) void
sw__child(const struct sw_spawn_opts *o, struct sw_page *page, size_t size,
      int memfd, int efd, int errfd, char *const *envp,
      const struct sw_child_ns *ns)
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
