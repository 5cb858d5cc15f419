// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * One epoll_wait and its events, in the order that settles a batch: reports
 * first, then deaths, then watched fds, then the timer, so that a report
 * and a tick ready together count the report.  At each timer read the
 * watchdog of every stub in flight is advanced.
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

static void on_timer(struct sw_loop *loop, bool *ticked)
{
	uint64_t now, late;
	struct sw_stub *s, *next;
	int ngraves;

	if (!sw__timer_read(loop, &now, &late))
		return; /* nothing to read: disarmed meanwhile */
	*ticked = true;
	loop->pending_ticks++;

	/* The first read since their resume: their silence counts from here
	 * (the queue is in resume order, so they are at its tail). */
	for (s = loop->q_tail; s && !sw_wd_stamped(&s->wd); s = s->q_prev) {
		sw_wd_stamp(&loop->wd, &s->wd);
		s->first_read_ns = now;
		s->late_first_ns = late;
		s->dropped_base = loop->wd.dropped;
	}
	/* A whole tick of silence: take a baseline of the stub's scheduling,
	 * for the kill diagnostics and the starvation credit; within a tick
	 * of its deadline, look each period, to see when it last ran.  The
	 * queue is in resume order, so those silent that long are at its
	 * head; the rest answer first, mostly. */
	for (s = loop->q_head;
	     s && sw_wd_counted(&loop->wd, &s->wd) >= loop->timer_div;
	     s = s->q_next) {
		struct sw_sched cur;

		/* Reported, its event not yet taken: silent only because the
		 * monitor is busy, so no /proc reads for it.  (A stub that
		 * writes a state word without reporting gets no credit: at
		 * its deadline the word is judged as it stands.) */
		if (__atomic_load_n(&s->page->state, __ATOMIC_RELAXED) !=
		    SW_STATE_IN_CHILD)
			continue;
		if (!s->sampled) {
			s->sampled = true; /* one baseline per resume */
			/* (no run time at all: the kernel keeps no figures) */
			s->smp_ok = sw__sched_read(s->pid, &s->smp) == 0 &&
				    s->smp.run_ns;
			s->smp_ns = s->seen_ns = now;
			s->seen = s->smp;
		} else if (sw_wd_counted(&loop->wd, &s->wd) + loop->timer_div >=
			   loop->wd.limit + s->wd.credit) {
			sw__sched_look(s, now, &cur);
		}
	}
	/* Muted stubs first: a report made while muted is not a stall. */
	while ((s = loop->muted))
		if (sw__unmute(loop, s))
			sw__on_report(loop, s);
	/* Those past the limit are a prefix of the queue; starvation credit
	 * may keep some of them alive a while, so look past those. */
	for (s = loop->q_head;
	     s && sw_wd_counted(&loop->wd, &s->wd) >= loop->wd.limit; s = next) {
		next = s->q_next;
		if (!sw_wd_expired(&loop->wd, &s->wd))
			continue;
		/* A report that reached the state word but not yet the epoll
		 * set (its eventfd write still to come) is not a stall. */
		if (__atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
		    SW_STATE_IN_CHILD)
			sw__on_report(loop, s);
		else if (!sw__credit_starvation(loop, s, now) ||
			 sw_wd_expired(&loop->wd, &s->wd))
			sw__act(loop, s,
			    sw_wd_step(&loop->wd, &s->wd, SW_WD_EV_EXPIRE), 0);
	}
	/* The killed, a whole period after their SIGKILL: dead, or doomed. */
	for (s = loop->dying; s; s = next) {
		next = s->k_next;
		if (now >= s->sigkill_ns + loop->period_ns)
			sw__on_doomed(loop, s);
	}
	/* The timer stays on while a freed stub is still being taken down. */
	ngraves = loop->graves ? sw__reap_graves(loop) : 0;
	if (loop->n_in_flight == 0 && !loop->dying && !ngraves && loop->armed)
		sw__timer_set(loop, false);
}

/* One epoll_wait and its events.  Returns the number of events or -errno. */
int sw__loop_poll(struct sw_loop *loop, int timeout, bool *ticked)
{
	struct epoll_event evs[SW_BATCH];
	bool timer = false;
	int n, i;

	n = epoll_wait(loop->epfd, evs, SW_BATCH, timeout);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;

	for (i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;

		if (d == SW_TAG_TIMER)
			timer = true;
		else if (d == SW_TAG_KICK)
			sw__unkick(loop);
		else if ((d & SW_TAG_MASK) == SW_TAG_REPORT)
			sw__on_report(loop, (struct sw_stub *)(uintptr_t)d);
	}
	for (i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;

		if (d != SW_TAG_TIMER && d != SW_TAG_KICK &&
		    (d & SW_TAG_MASK) == SW_TAG_PIDFD)
			sw__on_death(loop, (struct sw_stub *)(uintptr_t)(d & ~(uint64_t)SW_TAG_MASK));
	}
	/* then the watched fds: a report or a death in the batch wins */
	for (i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;

		if (d != SW_TAG_TIMER && d != SW_TAG_KICK &&
		    (d & SW_TAG_MASK) == SW_TAG_FD)
			sw__on_answer(loop,
				  (struct sw_stub *)(uintptr_t)(d & ~(uint64_t)SW_TAG_MASK),
				  evs[i].events);
	}
	/* A full batch may have left the timer behind other ready fds: read
	 * it by the clock, so that a monitor kept busy by its stubs still
	 * takes it once a period. */
	if (!timer && n == SW_BATCH && loop->armed &&
	    sw__now_ns() >= loop->next_exp_ns)
		timer = true;
	if (timer)
		on_timer(loop, ticked);
	return n;
}
