// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The loop object and its fd set: one epoll set over every stub's report
 * eventfd and pidfd (and watched fd), the timerfd and the kick eventfd;
 * stubs joining and leaving it; one wait or dispatch at a time.
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

int sw__loop_enter(struct sw_loop *loop)
{
	int expected = 0;

	if (loop->in_callback)
		return -EBUSY;
	if (!__atomic_compare_exchange_n(&loop->busy, &expected, 1, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return -EBUSY;
	return 0;
}

/* The checks of the host's calls (dispatch, prepare), then enter. */
int sw__host_enter(struct sw_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (sw_loop_forked(loop))
		return -ECHILD;
	return sw__loop_enter(loop);
}

void sw__loop_leave(struct sw_loop *loop)
{
	sw__loop_checked(loop);
	__atomic_store_n(&loop->busy, 0, __ATOMIC_RELEASE);
}

SW_EXPORT int sw_loop_new(const struct sw_loop_opts *opts,
			  struct sw_loop **ret_loop)
{
	uint64_t tick = SW_TICK_NS_DEFAULT;
	uint32_t stall = SW_STALL_TICKS_DEFAULT, div = SW_TIMER_DIV_DEFAULT;
	unsigned flags = 0;
	uint32_t poll_max = SW_POLL_MAX_NS_DEFAULT;
	struct sw_loop *loop;
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = SW_TAG_TIMER };
	void *guard;
	int r;

	if (!ret_loop)
		return -EINVAL;
	if (opts) {
		if (!SW_HAS(opts, stall_ticks) || !opts->tick_ns ||
		    !opts->stall_ticks)
			return -EINVAL;
		tick = opts->tick_ns;
		stall = opts->stall_ticks;
		/* every field that size covers counts, each on its own */
		if (SW_HAS(opts, timer_div) && opts->timer_div)
			div = opts->timer_div;
		if (SW_HAS(opts, flags))
			flags = opts->flags;
		if (SW_HAS(opts, poll_max_ns) && opts->poll_max_ns)
			poll_max = opts->poll_max_ns;
	}
	if (stall > SW_STALL_TICKS_MAX || div < 2 || div > SW_TIMER_DIV_MAX ||
	    tick % div || tick / div < SW_TIMER_NS_MIN ||
	    tick > (uint64_t)INT64_MAX / ((uint64_t)stall + 1) ||
	    poll_max > SW_POLL_MAX_NS_MAX ||
	    (flags & ~(SW_LOOP_TICK_EVENTS | SW_LOOP_ADAPTIVE_POLL)))
		return -EINVAL;

	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epfd = loop->tfd = loop->kickfd = -1;
	loop->tick_ns = tick;
	loop->stall_ticks = stall;
	loop->timer_div = div;
	loop->period_ns = tick / div;
	loop->flags = flags;
	loop->poll_max_ns = poll_max;
	if (flags & SW_LOOP_ADAPTIVE_POLL)
		sw__poll_init(loop);
	/* The test suite's checked runs (lifecycle.h). */
	loop->check = secure_getenv("STUBWATCH_CHECK") &&
		      !strcmp(secure_getenv("STUBWATCH_CHECK"), "1");
	sw_wd_init(&loop->wd, stall, div);

	guard = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	loop->fork_guard = guard;
	if (madvise(guard, (size_t)sysconf(_SC_PAGESIZE), MADV_WIPEONFORK) < 0) {
		r = -errno;
		goto fail;
	}
	loop->fork_guard[0] = 1;

	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		r = -errno;
		goto fail;
	}
	loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (loop->tfd < 0) {
		r = -errno;
		goto fail;
	}
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->tfd, &e) < 0) {
		r = -errno;
		goto fail;
	}
	loop->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->kickfd < 0) {
		r = -errno;
		goto fail;
	}
	e.data.u64 = SW_TAG_KICK; /* level-triggered: readable until drained */
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->kickfd, &e) < 0) {
		r = -errno;
		goto fail;
	}
	*ret_loop = loop;
	return 0;
fail:
	if (r == -EPERM || r == -EINVAL)
		r = -ENOMEM; /* only resource failures can reach here */
	sw_loop_free(loop);
	return r;
}

SW_EXPORT struct sw_loop *sw_loop_free(struct sw_loop *loop)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	if (!loop)
		return NULL;
	if (loop->in_callback || __atomic_load_n(&loop->busy, __ATOMIC_ACQUIRE))
		return loop; /* refused: inside its own callback or wait */
	/* SIGKILL them all first, so that the kernel takes them down side by
	 * side, not one after another. */
	if (!sw_loop_forked(loop))
		for (struct sw_stub *s = loop->stubs; s; s = s->l_next)
			if (!s->reaped)
				syscall(SYS_pidfd_send_signal, s->pidfd,
					SIGKILL, NULL, 0);
	while (loop->stubs) {
		struct sw_stub *s = loop->stubs;

		s->cb = NULL;
		sw__loop_remove_stub(loop, s);
		sw__stub_end(loop, s, sw_loop_forked(loop));
	}
	/* A stub the kernel is still taking down is waited for, as
	 * sw_stub_free() waits for one (its pidfd turns readable when it is
	 * a zombie); a zombie a tracer still holds stays one until the
	 * monitor exits: waiting for the tracer could take for ever. */
	while (loop->graves) {
		struct sw_stub *s = loop->graves;

		loop->graves = s->g_next;
		/* (in a child after fork they are the parent's: forgotten) */
		if (!sw_loop_forked(loop)) {
			sw__wait_teardown(s->pidfd, s->pid);
			sw__reap(s);
		}
		close(s->pidfd);
		free(s);
	}
	if (loop->tfd >= 0)
		close(loop->tfd);
	if (loop->kickfd >= 0)
		close(loop->kickfd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->fork_guard)
		munmap((void *)loop->fork_guard, pg);
	free(loop);
	return NULL;
}

SW_EXPORT int sw_loop_get_opts(const struct sw_loop *loop,
			       struct sw_loop_opts *ret_opts)
{
	if (!loop || !ret_opts || ret_opts->size < sizeof(*ret_opts))
		return -EINVAL;
	ret_opts->tick_ns = loop->tick_ns;
	ret_opts->stall_ticks = loop->stall_ticks;
	ret_opts->timer_div = loop->timer_div;
	ret_opts->flags = loop->flags;
	ret_opts->poll_max_ns = loop->poll_max_ns;
	return 0;
}

SW_EXPORT int sw_loop_get_fd(struct sw_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (sw_loop_forked(loop))
		return -ECHILD;
	return loop->epfd;
}

SW_EXPORT int sw_loop_count_stubs(const struct sw_loop *loop)
{
	return loop ? loop->nstubs : -EINVAL;
}

SW_EXPORT int sw_loop_count_in_flight(const struct sw_loop *loop)
{
	return loop ? loop->n_in_flight : -EINVAL;
}

SW_EXPORT int sw_loop_get_stats(struct sw_loop *loop,
				struct sw_loop_stats *ret_stats, int reset)
{
	size_t size;

	if (!loop || !ret_stats || !SW_HAS(ret_stats, max_gap_ns))
		return -EINVAL;
	size = ret_stats->size < sizeof(loop->stats) ? ret_stats->size
						     : sizeof(loop->stats);
	memcpy(ret_stats, &loop->stats, size);
	ret_stats->size = size;
	if (reset)
		memset(&loop->stats, 0, sizeof(loop->stats));
	return 0;
}

SW_EXPORT int sw_loop_set_tick_callback(struct sw_loop *loop, sw_tick_fn fn,
					void *userdata)
{
	if (!loop)
		return -EINVAL;
	loop->tick_cb = fn;
	loop->tick_userdata = userdata;
	return 0;
}

/* (Re-)register the stub's watched fd, one-shot. */
int sw__xfd_arm(struct sw_loop *loop, struct sw_stub *s, int op)
{
	struct epoll_event e = { .events = s->xevents | EPOLLONESHOT,
				 .data.u64 = (uintptr_t)s | SW_TAG_FD };

	if (epoll_ctl(loop->epfd, op, s->xfd, &e) < 0)
		return -errno;
	s->xfd_armed = true;
	return 0;
}

int sw__loop_add_stub(struct sw_loop *loop, struct sw_stub *s)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLET,
				 .data.u64 = (uintptr_t)s | SW_TAG_REPORT };

	if (!s->reaped) {
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, s->report_fd, &e) < 0)
			return -errno;
		e.events = EPOLLIN;
		e.data.u64 = (uintptr_t)s | SW_TAG_PIDFD;
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, s->pidfd, &e) < 0) {
			int r = -errno;

			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->report_fd, NULL);
			return r;
		}
		if (s->xfd >= 0) {
			int r = sw__xfd_arm(loop, s, EPOLL_CTL_ADD);

			if (r < 0) {
				epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->report_fd,
					  NULL);
				epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
				return r;
			}
		}
	}
	s->l_prev = NULL;
	s->l_next = loop->stubs;
	if (loop->stubs)
		loop->stubs->l_prev = s;
	loop->stubs = s;
	loop->nstubs++;
	__atomic_store_n(&s->loop, loop, __ATOMIC_RELEASE);
	return 0;
}

void sw__loop_remove_stub(struct sw_loop *loop, struct sw_stub *s)
{
	sw__lists_leave(loop, s);
	sw__mute_remove(loop, s);
	if (loop->cb_stub == s)
		loop->cb_stub = NULL;
	if (!s->reaped && !sw_loop_forked(loop)) {
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->report_fd, NULL);
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
		if (s->xfd >= 0)
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->xfd, NULL);
	}
	if (s->l_prev)
		s->l_prev->l_next = s->l_next;
	else
		loop->stubs = s->l_next;
	if (s->l_next)
		s->l_next->l_prev = s->l_prev;
	s->l_prev = s->l_next = NULL;
	loop->nstubs--;
	__atomic_store_n(&s->loop, NULL, __ATOMIC_RELEASE);
}
