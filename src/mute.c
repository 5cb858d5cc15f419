// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Flood muting.  Eventfd writes that are not reports of a running stub (one
 * can be a leftover, after an attach; many are a flood, in flight or idle)
 * mute the stub's eventfd until the next timer read or resume, so that a
 * flooding stub cannot keep the monitor busy.  A real report made meanwhile
 * is seen at the unmute, from the state word.
 */
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "internal.h"

#define NOISE_MUTE 8 /* eventfd writes without a report before a mute */

void sw__mute_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->muted)
		return;
	sw__slist_remove(&loop->muted, s, offsetof(struct sw_stub, m_next));
	s->muted = false;
}

/* An eventfd write the watchdog took for no report (SW_WD_NONE). */
void sw__note_noise(struct sw_loop *loop, struct sw_stub *s)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLET | EPOLLONESHOT,
				 .data.u64 = (uintptr_t)s | SW_TAG_REPORT };

	if (++s->noise < NOISE_MUTE || s->muted ||
	    s->wd.state == SW_WD_DEAD || s->wd.state == SW_WD_KILLING)
		return;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, s->report_fd, &e) == 0) {
		s->muted = true;
		s->m_next = loop->muted;
		loop->muted = s;
	}
}

/* Give a muted eventfd back its events.  Its count is drained first (it is
 * never read on the hot path, so it would report readable at once), then
 * the state word is checked, since a report made while muted woke nobody.
 * Returns true when the state word holds a report: the caller takes it
 * (sw__on_report()). */
bool sw__unmute(struct sw_loop *loop, struct sw_stub *s)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLET,
				 .data.u64 = (uintptr_t)s | SW_TAG_REPORT };
	uint64_t count;
	struct iovec iov = { .iov_base = &count, .iov_len = sizeof(count) };

	sw__mute_remove(loop, s);
	s->noise = 0;
	/* The stub shares the eventfd's open file description and may have
	 * cleared its O_NONBLOCK and drained it: only RWF_NOWAIT makes this
	 * read non-blocking whatever the file's flags.  Where the kernel
	 * refuses it, the count stays: one stale event, seen as noise. */
	preadv2(s->report_fd, &iov, 1, -1, RWF_NOWAIT);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, s->report_fd, &e) < 0)
		return false;
	return __atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
	       SW_STATE_IN_CHILD;
}
