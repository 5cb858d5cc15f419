// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A stub's life: the lists a stub is on, moved together with its watchdog
 * state, the completion it holds for its monitor, and the checks that the
 * calls which move it share.  Every other file changes a stub's lists
 * through these functions only.
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

/* Unlink s from a singly linked list of stubs whose next pointer sits at
 * offset `off` in struct sw_stub.  The lists are short (completions not yet
 * delivered, muted floods, resumes not yet announced). */
void sw__slist_remove(struct sw_stub **head, struct sw_stub *s, size_t off)
{
#define NEXT(x) (*(struct sw_stub **)((char *)(x) + off))
	struct sw_stub **pp;

	for (pp = head; *pp; pp = &NEXT(*pp)) {
		if (*pp == s) {
			*pp = NEXT(s);
			break;
		}
	}
	NEXT(s) = NULL;
#undef NEXT
}

void sw__queue_push(struct sw_loop *loop, struct sw_stub *s)
{
	s->q_next = NULL;
	s->q_prev = loop->q_tail;
	if (loop->q_tail)
		loop->q_tail->q_next = s;
	else
		loop->q_head = s;
	loop->q_tail = s;
	s->queued = true;
	loop->n_in_flight++;
}

void sw__queue_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->queued)
		return;
	if (s->q_prev)
		s->q_prev->q_next = s->q_next;
	else
		loop->q_head = s->q_next;
	if (s->q_next)
		s->q_next->q_prev = s->q_prev;
	else
		loop->q_tail = s->q_prev;
	s->q_prev = s->q_next = NULL;
	s->queued = false;
	loop->n_in_flight--;
}

void sw__done_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->on_done)
		return;
	sw__slist_remove(&loop->done_head, s, offsetof(struct sw_stub, d_next));
	loop->done_tail = NULL;
	for (struct sw_stub *t = loop->done_head; t; t = t->d_next)
		loop->done_tail = t;
	s->on_done = false;
}

void sw__quiet_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->on_quiet)
		return;
	sw__slist_remove(&loop->quiet_head, s, offsetof(struct sw_stub, qt_next));
	s->on_quiet = false;
}

void sw__dying_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->dying)
		return;
	sw__slist_remove(&loop->dying, s, offsetof(struct sw_stub, k_next));
	s->dying = false;
}

void sw__ann_drop(struct sw_loop *loop, int i)
{
	loop->ann[i]->on_ann = false;
	memmove(&loop->ann[i], &loop->ann[i + 1],
		(size_t)(loop->n_ann - i - 1) * sizeof(loop->ann[0]));
	loop->n_ann--;
}

void sw__ann_remove(struct sw_loop *loop, struct sw_stub *s)
{
	for (int i = 0; s->on_ann && i < loop->n_ann; i++)
		if (loop->ann[i] == s)
			sw__ann_drop(loop, i);
}

void sw__ann_push(struct sw_loop *loop, struct sw_stub *s)
{
	if (s->on_ann)
		return;
	if (loop->n_ann == SW_ANN_MAX)
		sw__ann_drop(loop, 0); /* the oldest: epoll still finds it */
	loop->ann[loop->n_ann++] = s;
	s->on_ann = true;
}

/* A completion queued outside a wait or dispatch (sw_stub_kill() finding a
 * dead stub, a resume delivering an owed death) must make the loop's fd
 * readable, or a host polling it would never dispatch it. */
void sw__kick(struct sw_loop *loop)
{
	static const uint64_t one = 1;

	if (!loop->kicked &&
	    write(loop->kickfd, &one, sizeof(one)) == sizeof(one))
		loop->kicked = true;
}

void sw__unkick(struct sw_loop *loop)
{
	uint64_t count;

	if (loop->kicked && (read(loop->kickfd, &count, sizeof(count)) ==
				     sizeof(count) || errno == EAGAIN))
		loop->kicked = false;
}

/* A stub's wait is over: keep the event for sw_stub_wait(), or queue the
 * stub for its callback. */
void sw__complete(struct sw_loop *loop, struct sw_stub *s,
		     enum sw_event_type type)
{
	sw__queue_remove(loop, s);
	s->ev.type = type;
	if (type != SW_EV_FD)
		s->ev.revents = 0;
	s->pending = true;
	if (s->cb && !s->waited && !s->on_done) {
		s->d_next = NULL;
		if (loop->done_tail)
			loop->done_tail->d_next = s;
		else
			loop->done_head = s;
		loop->done_tail = s;
		s->on_done = true;
		if (!__atomic_load_n(&loop->busy, __ATOMIC_RELAXED))
			sw__kick(loop);
	}
}

/* Take a pending completion out of the stub. */
int sw__take_event(struct sw_stub *s, struct sw_event *ret_ev)
{
	s->pending = false;
	if (s->ev.type == SW_EV_EXIT || s->ev.type == SW_EV_KILL)
		s->delivered_end = true;
	s->answered = s->ev.type == SW_EV_FD;
	if (ret_ev)
		*ret_ev = s->ev;
	return s->ev.type;
}

/* The checks resume, continue and add_fd share; sets *ret_loop on 0. */
int sw__may_go(struct sw_stub *s, struct sw_loop **ret_loop)
{
	struct sw_loop *loop;

	if (!s)
		return -EINVAL;
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (!loop)
		return -ENOLINK;
	if (sw_loop_forked(loop))
		return -ECHILD;
	if (s->delivered_end)
		return -ESRCH;
	*ret_loop = loop;
	return 0;
}
