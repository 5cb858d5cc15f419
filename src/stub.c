// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Stubs: spawn (clone3 with CLONE_PIDFD and exit_signal 0), the shared page
 * (a sealed memfd), the report eventfd, the handle's accessors, and moving
 * a stub between loops.
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

SW_EXPORT int sw_stub_spawn(struct sw_loop *loop,
			    const struct sw_spawn_opts *opts,
			    struct sw_stub **ret_stub)
{
	struct clone_args args = { 0 };
	struct sw_child_ns ns = { 0 };
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
		sw__child(opts, s->page, size, memfd, s->report_fd, pipefd[1],
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
	sw__dispose(loop, s, false);
	return r;
fail:
	if (memfd >= 0)
		close(memfd);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	sw__free_stub_mem(s, false);
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
	sw__stub_end(loop, s, forked);
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
	return __atomic_load_n(&s->phase, __ATOMIC_RELAXED) == SW_PH_DELIVERED
		       ? -ESRCH
		       : s->pid;
}

SW_EXPORT int sw_stub_pidfd(const struct sw_stub *s)
{
	if (!s)
		return -EINVAL;
	return __atomic_load_n(&s->phase, __ATOMIC_RELAXED) == SW_PH_DELIVERED
		       ? -ESRCH
		       : s->pidfd;
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
	/* only a stub the monitor holds, or one whose end is delivered */
	if (s->waited || loop->in_callback ||
	    (s->phase != SW_PH_HELD && s->phase != SW_PH_DELIVERED))
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
