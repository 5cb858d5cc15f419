// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The host-driven driver: sw_loop_dispatch() and sw_loop_prepare() for a
 * host main loop that polls the loop's fd, the callback queue they (and
 * waits) run, and the announcement of the host's sleep to stubs resumed
 * quietly by callbacks.
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

/* Run the callbacks of stubs that completed, all of them even if one
 * fails (a completion left queued would not make the loop's fd readable
 * again); return the first error.  The stub is not touched after its
 * callback returns, so the callback may free it. */
int sw__run_callbacks(struct sw_loop *loop, int *count)
{
	struct sw_stub *s;
	int r = 0, e;

	while ((s = loop->done_head)) {
		struct sw_event ev;
		sw_event_fn fn = s->cb;
		void *ud = s->userdata;

		loop->done_head = s->d_next;
		if (!loop->done_head)
			loop->done_tail = NULL;
		s->d_next = NULL;
		s->on_done = false;
		if (!fn || s->waited)
			continue; /* callback cleared, or now waited on */
		sw__take_event(loop, s, &ev);
		loop->in_callback = true;
		loop->cb_stub = s;
		e = fn(s, &ev, ud);
		loop->in_callback = false;
		/* cb_stub is cleared if the callback freed or detached it */
		if (loop->cb_stub == s && s->phase == SW_PH_OWED_HELD)
			sw__deliver_death(loop, s); /* queued behind this report */
		loop->cb_stub = NULL;
		(*count)++;
		if (e < 0 && r == 0)
			r = e;
	}
	return r;
}

static int run_tick_callback(struct sw_loop *loop)
{
	int r = 0;

	if (!(loop->flags & SW_LOOP_TICK_EVENTS) || !loop->tick_cb) {
		loop->pending_ticks = 0;
		return 0;
	}
	if (loop->pending_ticks) {
		/* One call however many reads: ticks that piled up while the
		 * host was away are one late tick, not a burst. */
		loop->pending_ticks = 0;
		loop->in_callback = true;
		r = loop->tick_cb(loop, loop->tick_userdata);
		loop->in_callback = false;
	}
	return r < 0 ? r : 0;
}

/* The tick callback, then the completions it made (a kill, say); the first
 * error. */
static int run_ticks(struct sw_loop *loop, int *count)
{
	int r = run_tick_callback(loop), e = sw__run_callbacks(loop, count);

	return r ? r : e;
}

/*
 * A wait settled without epoll_wait reads no timer and sees no death, so
 * once per timer period the loop looks at its epoll set without blocking:
 * the other stubs' watchdogs and deaths, and the preemption tick, go on.
 * The clock is read through the vDSO, no system call.
 */
int sw__harvest(struct sw_loop *loop, bool *ticked, int *count)
{
	uint64_t now = sw__now_ns();
	int r;

	if (now < loop->harvest_ns)
		return 0;
	loop->harvest_ns = now + loop->period_ns;
	r = sw__loop_poll(loop, 0, ticked);
	if (r < 0)
		return r;
	return sw__run_callbacks(loop, count);
}

/* Tell every stub resumed quietly since the last call that the monitor may
 * sleep now, and take the reports already made (no eventfd was written for
 * them). */
void sw__announce_sleep(struct sw_loop *loop)
{
	struct sw_stub *s;

	while ((s = loop->quiet_head)) {
		loop->quiet_head = s->qt_next;
		s->qt_next = NULL;
		s->on_quiet = false;
		if (!s->quiet)
			continue; /* a wait looked already */
		s->quiet = false;
		if (s->phase != SW_PH_IN_FLIGHT)
			continue;
		s->mon |= SW_MON_SLEEPING;
		__atomic_store_n(&s->page->monitor, s->mon, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->page->state, __ATOMIC_SEQ_CST) !=
		    SW_STATE_IN_CHILD) {
			sw__on_report(loop, s);
		} else {
			/* the next dispatch looks at it before it polls */
			sw__ann_push(loop, s);
		}
	}
}

/* The host woke: most likely for a stub that sw_loop_prepare() told of the
 * sleep.  Serve those that reported from their state words, before the
 * epoll_wait that says which fd woke the host (whose event for them is then
 * stale).  The set is the last SW_ANN_MAX told and not yet reported, so the
 * look costs O(1) per dispatch; the epoll_wait finds the others. */
static void look_announced(struct sw_loop *loop)
{
	int i = 0;

	while (i < loop->n_ann) {
		struct sw_stub *s = loop->ann[i];

		if (s->phase != SW_PH_IN_FLIGHT) {
			sw__ann_drop(loop, i); /* served, or gone, meanwhile */
		} else if (__atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
			   SW_STATE_IN_CHILD) {
			sw__ann_drop(loop, i);
			sw__on_report(loop, s);
		} else {
			i++; /* still silent: looked at again next time */
		}
	}
}

SW_EXPORT int sw_loop_dispatch(struct sw_loop *loop)
{
	int count = 0, r, e, n, rounds;
	bool ticked = false;

	r = sw__host_enter(loop);
	if (r < 0)
		return r;
	/* A host that stopped calling sw_loop_prepare() (two dispatches with
	 * no prepare between them): announce the sleep for it, and resume
	 * loudly from now on. */
	if (loop->prepare_due) {
		loop->host_prepares = false;
		sw__announce_sleep(loop);
	}
	loop->host_callbacks = true;
	look_announced(loop);
	/* Completions made by sw_stub_kill() or during another wait. */
	r = sw__run_callbacks(loop, &count);
	for (rounds = 0; rounds < 4; rounds++) {
		n = sw__loop_poll(loop, 0, &ticked);
		if (n < 0) {
			r = r ? r : n;
			break;
		}
		e = sw__run_callbacks(loop, &count);
		r = r ? r : e;
		e = run_ticks(loop, &count);
		r = r ? r : e;
		if (n < SW_BATCH)
			break;
	}
	loop->host_callbacks = false;
	loop->prepare_due = loop->host_prepares;
	sw__loop_leave(loop);
	return r < 0 ? r : count;
}

#define PREPARE_ROUNDS 64

SW_EXPORT int sw_loop_prepare(struct sw_loop *loop)
{
	int count = 0, r, e, rounds;
	bool ticked = false;

	r = sw__host_enter(loop);
	if (r < 0)
		return r;
	loop->host_prepares = true;
	loop->prepare_due = false;
	loop->host_callbacks = true;
	/* Callbacks resume stubs; those that report before we look again are
	 * served here, without the host's poll or ours.  Bounded, so that the
	 * host's other work is not starved. */
	for (rounds = 0; rounds < PREPARE_ROUNDS; rounds++) {
		sw__announce_sleep(loop);
		e = sw__harvest(loop, &ticked, &count);
		r = r ? r : e;
		e = sw__run_callbacks(loop, &count);
		r = r ? r : e;
		if (ticked) {
			ticked = false;
			e = run_ticks(loop, &count);
			r = r ? r : e;
		}
		if (!loop->quiet_head)
			break;
	}
	loop->host_callbacks = false;
	sw__announce_sleep(loop);
	if (loop->done_head)
		sw__kick(loop); /* reports found last: the host must not sleep */
	sw__loop_leave(loop);
	return r < 0 ? r : count;
}
