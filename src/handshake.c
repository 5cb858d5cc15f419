// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The monitor's side of the handshake: resume, continue and kill a stub, and
 * put it in flight.
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

/* Put a stub in flight (spawn or resume). */
int sw__stub_start(struct sw_loop *loop, struct sw_stub *s)
{
	enum sw_wd_action a;
	int r;

	if (s->wd.state != SW_WD_IDLE)
		return s->wd.state == SW_WD_RUNNING ? -EBUSY : 0;
	if (!loop->armed) {
		r = sw__timer_set(loop, true);
		if (r < 0)
			return r;
	}
	if (s->xfd >= 0 && !s->xfd_armed) {
		r = sw__xfd_arm(loop, s, EPOLL_CTL_MOD);
		if (r < 0)
			return r;
	}
	/* Always SW_WD_EV_RESUME, even with the timer armed just now: the
	 * first read may come after a wait that starts late, with expirations
	 * from before that wait, which must not count. */
	a = sw_wd_step(&loop->wd, &s->wd, SW_WD_EV_RESUME);
	if (a == SW_WD_REFUSE)
		return -EBUSY;
	s->sampled = false;
	s->ev.type = 0; /* no event since it went in flight */
	sw__phase_set(loop, s, SW_PH_IN_FLIGHT);
	return 0;
}

/*
 * Resume.  quiet: a wait follows at once (sw_stub_run), so the stub is told
 * the monitor is not asleep, and that wait sets SW_MON_SLEEPING only if it
 * has to sleep.  Otherwise the monitor counts as asleep: the host may be
 * polling the loop's fd.
 */
int sw__resume(struct sw_stub *s, bool quiet)
{
	struct sw_loop *loop;
	uint32_t mon;
	bool host_quiet, may_spin;
	int r = sw__may_go(s, &loop);

	if (r < 0)
		return r;
	if (sw__phase_pending(s->phase))
		return -EBUSY; /* collect it first */
	if (s->phase == SW_PH_HELD && s->ev.type == SW_EV_FD)
		return -EINVAL; /* it answered through its fd: continue it */
	if (s->phase == SW_PH_OWED_HELD) {
		sw__deliver_death(loop, s); /* the next wait returns the EXIT */
		return 0;
	}
	if (s->wd.state == SW_WD_RUNNING)
		return -EBUSY;
	/* it flooded while idle; the timer may be off */
	if (s->muted && sw__unmute(loop, s))
		sw__on_report(loop, s);
	r = sw__stub_start(loop, s);
	if (r < 0 || s->wd.state != SW_WD_RUNNING)
		return r; /* dying or dead: the wait reports it */
	/* Quiet too when a callback of a host that prepares resumes it: that
	 * host calls sw_loop_prepare() before it sleeps. */
	host_quiet = !quiet && loop->host_prepares && loop->host_callbacks;
	mon = quiet || host_quiet ? 0 : SW_MON_SLEEPING;
	s->quiet = quiet || host_quiet;
	if (host_quiet && !s->on_quiet) {
		/* sw_loop_prepare() looks at it before the host sleeps */
		s->qt_next = loop->quiet_head;
		loop->quiet_head = s;
		s->on_quiet = true;
	}
	if (loop->flags & SW_LOOP_ADAPTIVE_POLL)
		mon |= sw__poll_decide(loop, s, quiet);
	/* The word the stub waits under: it may spin only if that allowed
	 * it, and only then is its SW_STUB_SPINNING worth a look. */
	may_spin = s->mon & SW_MON_STUB_SPIN;
	/* Published to the stub by the store of IN_CHILD. */
	s->mon = mon;
	__atomic_store_n(&s->page->monitor, mon, __ATOMIC_RELAXED);
	if (may_spin) /* what the stub's spin window adapts to */
		__atomic_store_n(&s->page->resume_ticks, sw__ticks(),
				 __ATOMIC_RELAXED);
	if (!may_spin) {
		__atomic_store_n(&s->page->state, SW_STATE_IN_CHILD,
				 __ATOMIC_RELEASE);
	} else {
		/* Store then load, both sequentially consistent, against the
		 * stub's clear of SW_STUB_SPINNING then load of state
		 * (sw_stub_wait_resume()): a spinning stub sees IN_CHILD, a
		 * sleeping one is woken.  A stub that says it spins and sleeps
		 * stays asleep: a stall, its own. */
		__atomic_store_n(&s->page->state, SW_STATE_IN_CHILD,
				 __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->page->stub, __ATOMIC_SEQ_CST) &
		    SW_STUB_SPINNING)
			return 0;
	}
	syscall(SYS_futex, &s->page->state, FUTEX_WAKE, 1, NULL, NULL, 0);
	return 0;
}

SW_EXPORT int sw_stub_resume(struct sw_stub *s)
{
	return sw__resume(s, false);
}

SW_EXPORT int sw_stub_continue(struct sw_stub *s)
{
	struct sw_loop *loop;
	int r = sw__may_go(s, &loop);

	if (r < 0)
		return r;
	if (sw__phase_pending(s->phase) || s->phase == SW_PH_IN_FLIGHT)
		return -EBUSY;
	if (s->phase == SW_PH_OWED_HELD) {
		sw__deliver_death(loop, s); /* the next wait returns the EXIT */
		return 0;
	}
	if (s->ev.type != SW_EV_FD)
		return -EINVAL; /* its last event was not SW_EV_FD */
	if (s->muted && sw__unmute(loop, s))
		sw__on_report(loop, s);
	r = sw__stub_start(loop, s);
	if (r < 0 || s->wd.state != SW_WD_RUNNING)
		return r;
	s->quiet = false;
	s->poll_now = s->poll_measure = false;
	/* The page is the stub's: only say that the monitor may sleep, then
	 * look, as a wait does (a report made since the SW_EV_FD may have had
	 * its eventfd event taken while the stub was not in flight). */
	s->mon = SW_MON_SLEEPING;
	__atomic_store_n(&s->page->monitor, SW_MON_SLEEPING, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->page->state, __ATOMIC_SEQ_CST) !=
	    SW_STATE_IN_CHILD)
		sw__on_report(loop, s);
	return 0;
}

SW_EXPORT int sw_stub_kill(struct sw_stub *s, enum sw_kill_reason reason)
{
	struct sw_loop *loop;
	enum sw_wd_event ev;

	int r;

	if (!s || (reason != SW_KILL_USER && reason != SW_KILL_PROTOCOL))
		return -EINVAL;
	r = sw__may_go(s, &loop);
	if (r < 0)
		return r;
	if (s->wd.state == SW_WD_KILLING || s->wd.state == SW_WD_DEAD)
		return -ESRCH;
	/* Dead already, its death not yet seen: collect it (a zombie takes a
	 * signal without complaint, so pidfd_send_signal cannot tell). */
	if (sw__on_death(loop, s)) {
		if (s->phase == SW_PH_OWED_HELD)
			sw__deliver_death(loop, s);
		return -ESRCH;
	}
	ev = reason == SW_KILL_USER ? SW_WD_EV_KILL : SW_WD_EV_BAD;
	/* A pending report is superseded by the kill. */
	if (s->phase == SW_PH_REPORTED) {
		s->ev.type = 0; /* dropped, never taken */
		sw__phase_set(loop, s, SW_PH_HELD);
		sw__done_remove(loop, s);
	}
	sw__act(loop, s, sw_wd_step(&loop->wd, &s->wd, ev),
	    __atomic_load_n(&s->page->state, __ATOMIC_RELAXED));
	return 0;
}
