// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The watched fd (sw_stub_add_fd()): a second fd through which the stub's
 * monitor may be answered for it, one-shot in the loop's epoll set.
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

/* The stub's watched fd fired (one-shot: disarmed until it goes in flight
 * again).  It answers for the stub only while in flight, and only with an
 * event asked for: a hang-up or error alone (a seccomp listener hangs up
 * when the stub dies) leaves the stub to its pidfd and its watchdog. */
void sw__on_answer(struct sw_loop *loop, struct sw_stub *s, uint32_t events)
{
	enum sw_wd_action a;

	s->xfd_armed = false;
	if (!(events & s->xevents))
		return;
	/* A report that reached the state word but whose eventfd event is
	 * not processed yet wins, as in one batch. */
	if (s->wd.state == SW_WD_RUNNING &&
	    __atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
		    SW_STATE_IN_CHILD) {
		sw__on_report(loop, s);
		return;
	}
	a = sw_wd_step(&loop->wd, &s->wd, SW_WD_EV_ANSWER);
	if (a == SW_WD_DONE_ANSWER)
		s->ev.revents = events;
	sw__act(loop, s, a, 0);
}

/*
 * Is fd an epoll set?  Then it is no fd a stub answers through, and in the
 * loop's set it would nest loops: a loop's own fd would make a later
 * sw_stub_attach() fail with epoll_ctl's EINVAL (the target loop) or ELOOP
 * (a cycle of loops).  Told by /proc; without /proc, epoll_ctl decides.
 */
static bool is_epoll_fd(int fd)
{
	static const char want[] = "anon_inode:[eventpoll]";
	char path[40], link[sizeof(want) + 1];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link));
	return n == (ssize_t)sizeof(want) - 1 && !memcmp(link, want, (size_t)n);
}

SW_EXPORT int sw_stub_add_fd(struct sw_stub *s, int fd, uint32_t events)
{
	struct sw_loop *loop;
	int r;

	if (!s || fd < 0 || !events ||
	    (events & ~(uint32_t)(EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP)))
		return -EINVAL;
	if (is_epoll_fd(fd))
		return -EINVAL;
	r = sw__may_go(s, &loop);
	if (r < 0)
		return r;
	if (s->xfd >= 0)
		return -EEXIST;
	/* Our own duplicate: the registration lives and dies with it, however
	 * the caller's fd is closed or reused. */
	s->xfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (s->xfd < 0)
		/* EINVAL for a valid fd: RLIMIT_NOFILE is 3 or less */
		return errno == EINVAL ? -EMFILE : -errno;
	s->xevents = events;
	s->xfd_armed = false;
	if (!s->reaped) {
		r = sw__xfd_arm(loop, s, EPOLL_CTL_ADD);
		if (r < 0) {
			close(s->xfd);
			s->xfd = -1;
			return r;
		}
	}
	return 0;
}

SW_EXPORT int sw_stub_remove_fd(struct sw_stub *s)
{
	struct sw_loop *loop;

	if (!s)
		return -EINVAL;
	if (s->xfd < 0)
		return -ENOENT;
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (loop && !s->reaped && !sw_loop_forked(loop))
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->xfd, NULL);
	close(s->xfd);
	s->xfd = -1;
	s->xfd_armed = false;
	return 0;
}
