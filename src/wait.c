// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The blocking driver: sw_stub_wait() and sw_stub_run() for a monitor (a
 * vCPU thread) that waits on one stub, serving the loop's other stubs
 * meanwhile.
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

/*
 * The first look of a wait after a quiet resume: spin if the poll budget
 * says so, then announce the sleep and look once more.  Returns true when
 * the stub's state word has left IN_CHILD, so there is no need to sleep.
 */
static bool look_before_sleep(struct sw_loop *loop, struct sw_stub *s,
			      uint64_t *t0, bool *hit)
{
	uint32_t *state = &s->page->state;

	s->quiet = false;
	if (s->poll_measure) {
		*t0 = sw__now_ns();
		*hit = s->poll_now && sw__poll_spin(s, *t0);
		if (*hit)
			return true;
	} else if (__atomic_load_n(state, __ATOMIC_ACQUIRE) !=
		   SW_STATE_IN_CHILD) {
		return true;
	}
	s->mon |= SW_MON_SLEEPING;
	__atomic_store_n(&s->page->monitor, s->mon, __ATOMIC_SEQ_CST);
	return __atomic_load_n(state, __ATOMIC_SEQ_CST) != SW_STATE_IN_CHILD;
}

SW_EXPORT int sw_stub_wait(struct sw_stub *s, struct sw_event *ret_ev)
{
	struct sw_loop *loop;
	int r, count = 0;
	uint64_t t0 = 0;
	bool hit = false, ticked = false;

	if (!s || !ret_ev)
		return -EINVAL;
	r = sw__may_go(s, &loop);
	if (r < 0)
		return r;
	r = sw__loop_enter(loop);
	if (r < 0)
		return r;
	if (s->phase == SW_PH_OWED_HELD)
		sw__deliver_death(loop, s);
	if (s->phase != SW_PH_IN_FLIGHT && !sw__phase_pending(s->phase) &&
	    s->phase != SW_PH_KILLING) {
		sw__loop_leave(loop);
		return -EALREADY;
	}
	s->waited = true;
	sw__done_remove(loop, s);
	if (s->quiet && s->phase == SW_PH_IN_FLIGHT &&
	    look_before_sleep(loop, s, &t0, &hit)) {
		sw__on_report(loop, s);
		r = sw__harvest(loop, &ticked, &count);
		if (r < 0) {
			/* Another stub's callback failed: say so now; this
			 * stub's report stays pending for the next wait. */
			s->waited = false;
			sw__loop_leave(loop);
			return r;
		}
	}
	if (loop->tick_owed && s->phase == SW_PH_IN_FLIGHT) {
		/* A timer read that an earlier wait could not return, because
		 * its report won: the stub's quantum is over already.  (After
		 * the look above, so the stub knows the monitor may sleep.) */
		loop->tick_owed = false;
		s->waited = false;
		s->poll_measure = false;
		memset(ret_ev, 0, sizeof(*ret_ev));
		ret_ev->type = SW_EV_TICK;
		sw__loop_leave(loop);
		return SW_EV_TICK;
	}
	r = 0;
	while (!sw__phase_pending(s->phase)) {
		ticked = false;
		/* Stubs that a host's callbacks resumed quietly must know the
		 * monitor is about to sleep. */
		sw__announce_sleep(loop);
		/* (a report it found is another stub's callback to run:
		 * then only look) */
		r = sw__loop_poll(loop, loop->done_head ? 0 : -1, &ticked);
		if (r < 0)
			break;
		r = sw__run_callbacks(loop, &count);
		if (r < 0)
			break;
		if (ticked && (loop->flags & SW_LOOP_TICK_EVENTS) &&
		    s->phase == SW_PH_IN_FLIGHT) {
			r = SW_EV_TICK;
			memset(ret_ev, 0, sizeof(*ret_ev));
			ret_ev->type = SW_EV_TICK;
			break;
		}
	}
	if (s->poll_measure && sw__phase_pending(s->phase) &&
	    s->ev.type == SW_EV_REPORT)
		sw__poll_adapt(loop, s, hit, t0);
	s->poll_measure = false;
	if (sw__phase_pending(s->phase)) {
		r = sw__take_event(loop, s, ret_ev);
		if (ticked && (loop->flags & SW_LOOP_TICK_EVENTS) &&
		    (s->ev.type == SW_EV_REPORT || s->ev.type == SW_EV_FD))
			loop->tick_owed = true;
	}
	s->waited = false;
	loop->pending_ticks = 0;
	sw__loop_leave(loop);
	return r;
}

SW_EXPORT int sw_stub_run(struct sw_stub *s, struct sw_event *ret_ev)
{
	int r;

	struct sw_loop *loop;

	if (!s || !ret_ev)
		return -EINVAL;
	/* Refuse what the wait would refuse before resuming: a quiet resume
	 * that no wait follows would leave the stub without a wake-up. */
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (loop && !sw_loop_forked(loop) &&
	    (loop->in_callback || __atomic_load_n(&loop->busy, __ATOMIC_ACQUIRE)))
		return -EBUSY;
	r = sw__resume(s, true);
	if (r < 0)
		return r;
	return sw_stub_wait(s, ret_ev);
}
