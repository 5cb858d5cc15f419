// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Collecting a stub's death: its wait status (reaped by us, by someone
 * else, or a zombie a tracer holds), its teardown, and the graves of freed
 * stubs that are reaped later.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int status_of(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default:
		return si->si_status & 0x7f;
	}
}

/* PIDFD_GET_INFO (Linux 6.13) and its PIDFD_INFO_EXIT (6.15), which older
 * uapi headers lack: the first published struct pidfd_info, 64 bytes. */
struct sw_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid,
		fsgid;
	int32_t exit_code;
};
#define SW_PIDFD_GET_INFO  _IOWR(0xFF, 11, struct sw_pidfd_info)
#define SW_PIDFD_INFO_EXIT (1ull << 3)

/*
 * The stub was reaped by someone else.  An exec'd stub can be: execve()
 * resets exit_signal to SIGCHLD, so a host's waitpid(-1) or SIGCHLD =
 * SIG_IGN sees it.  The pidfd still knows its wait status on Linux 6.15+;
 * before that it is lost (-1).
 */
static int stolen_status(int pidfd)
{
	struct sw_pidfd_info info = { .mask = SW_PIDFD_INFO_EXIT };

	if (ioctl(pidfd, SW_PIDFD_GET_INFO, &info) == 0 &&
	    (info.mask & SW_PIDFD_INFO_EXIT))
		return info.exit_code;
	return -1;
}

/*
 * The status of a zombie that a tracer holds: its real parent (us) cannot
 * reap it until the tracer waits for it or goes away, but it is dead.
 * /proc/PID/stat's exit_code is the status the wait would give; the pid
 * cannot have been reused while PIDFD_GET_INFO finds no exit yet (a reaped
 * stub's exit is recorded there, on Linux 6.15 and later).
 */
static int held_status(struct sw_stub *s)
{
	int code, r;

	r = sw__stat_exit(s->pid, &code);
	if (stolen_status(s->pidfd) != -1)
		return stolen_status(s->pidfd); /* reaped meanwhile */
	return r == 0 ? code : -1;
}

/* Collect the stub's death without blocking.  Returns 1 when it is dead and
 * its status known: reaped, found reaped by someone else, or a zombie that a
 * tracer holds (s->held: reaped later, sw__reap_graves()); 0 if it is still
 * alive; or -errno. */
int sw__reap(struct sw_stub *s)
{
	struct pollfd p = { .fd = s->pidfd, .events = POLLIN };
	siginfo_t si;

	if (s->reaped && !s->held)
		return 1;
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid((idtype_t)P_PIDFD, (id_t)s->pidfd, &si,
			   WEXITED | __WALL | WNOHANG) == 0)
			break;
		if (errno == ECHILD) {
			if (!s->reaped)
				s->ev.status = stolen_status(s->pidfd);
			s->reaped = true;
			s->held = false;
			return 1;
		}
		if (errno != EINTR)
			return -errno;
	}
	if (si.si_pid != 0) {
		if (!s->reaped)
			s->ev.status = status_of(&si);
		s->reaped = true;
		s->held = false;
		return 1;
	}
	if (s->reaped)
		return 1; /* still held */
	/* Nothing to reap: alive, or dead with a tracer holding the zombie.
	 * A readable pidfd says dead. */
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN))
		return 0;
	s->ev.status = held_status(s);
	s->reaped = true;
	s->held = true;
	return 1;
}

/* Keep a freed stub's pidfd until its zombie can be reaped; the timer
 * reads look for it. */
void sw__bury(struct sw_loop *loop, struct sw_stub *s)
{
	s->g_next = loop->graves;
	loop->graves = s;
	if (!loop->armed)
		sw__timer_set(loop, true);
}

/* Reap those whose tracer has let go or whose teardown is over; never
 * blocks.  Returns how many the kernel is still taking down (their pidfd
 * not yet readable). */
int sw__reap_graves(struct sw_loop *loop)
{
	struct sw_stub **pp = &loop->graves, *s;
	int n = 0;

	while ((s = *pp)) {
		struct pollfd p = { .fd = s->pidfd, .events = POLLIN };
		/* before the reap: a teardown that ends in between counts */
		bool torn = poll(&p, 1, 0) == 1 || sw__all_zombies(s->pid);

		if (sw__reap(s) != 1 || s->held) {
			n += !torn;
			pp = &s->g_next;
			continue;
		}
		*pp = s->g_next;
		close(s->pidfd);
		free(s);
	}
	return n;
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

void sw__free_stub_mem(struct sw_stub *s, bool forked)
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
void sw__dispose(struct sw_loop *loop, struct sw_stub *s, bool forked)
{
	if (s->held && loop && !forked) {
		release_stub(s, false);
		sw__bury(loop, s);
		return;
	}
	sw__free_stub_mem(s, forked);
}

/* The end of a stub's handle, once it has left its loop (or had none): a
 * stub not yet dead is killed and waited for until the kernel has torn it
 * down; a zombie a tracer holds, or a killed stub still being torn down,
 * goes to the graves of the loop it was on, to be reaped later. */
void sw__stub_end(struct sw_loop *loop, struct sw_stub *s, bool forked)
{
	if (!forked && (!s->reaped || (s->held && !loop)))
		sw__stop(s); /* no loop to reap it later: wait for the teardown */
	else if (!forked && s->held)
		sw__reap(s); /* one more look: held, or still being taken down */
	sw__dispose(loop, s, forked);
}
