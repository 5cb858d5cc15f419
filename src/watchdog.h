/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The watchdog's pure state machine: no syscalls, no clock, no allocation.
 * The loop feeds it events (resume, report, tick, death, ...) and carries
 * out the action it returns.  Unit tests feed it injected events.
 *
 * Time is counted in elapsed timer periods, not in timer reads and not in
 * clock readings.  The loop's timerfd fires every P = T/k (k = timer_div
 * >= 2), on a fixed grid.  Each read adds its expiration count, capped at k
 * (one tick's worth): a monitor that was frozen (SIGSTOP, a paused VM)
 * accrues at most one tick per read and so never kills early, while a
 * merely busy monitor, whose reads come late and find several expirations,
 * still counts every period.  The first read after a resume may hold
 * expirations from before the resume, so none of its periods count: the
 * loop stamps the stub at that read (sw_wd_stamp()), and its silence is
 * counted from there.  A stub is killed once N*k + 1 periods are counted
 * (plus any starvation credit, below).
 *
 * Let R be the resume, a the first read after it, x the expiration that
 * makes the count, and L_a, L_x the lateness of the reads that took them
 * (how long after their oldest expiration they ran).
 *
 *   never early: every counted expiration lies after a > R, and the
 *                N*k + 1 of them are P apart: the kill comes after
 *                R + N*k*P = R + N*T.  Capping and credit only delay it.
 *   late by at most the monitor's own lateness: a <= R + P + L_a (the first
 *                expiration after R is at most P later, and a takes it or
 *                comes before it), the first counted expiration is at most
 *                P after a, x is N*k*P after that, and it is read L_x later:
 *                kill <= R + (N*k + 2)*P + L_a + L_x
 *                     <= R + (N+1)*T + L_a + L_x          (k >= 2),
 *                plus P for each period that a read found beyond k (only a
 *                read a whole tick late finds more than k), plus the credit.
 *                A promptly scheduled monitor (L = 0) kills within
 *                (N*T, N*T + 2*T/k].
 *
 * Starvation credit.  A stub that was runnable but got no CPU, or blocked
 * in the kernel (D), is not silent by choice: before a kill the loop may
 * credit it with that wait (sw_wd_credit()), which moves its deadline by as
 * many periods, at most N*k in all, so a stub that never runs still dies.
 */
#ifndef SW_WATCHDOG_H
#define SW_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

enum sw_wd_state {
	SW_WD_IDLE = 0, /* reported (or never run); waits for the monitor */
	SW_WD_RUNNING,  /* in flight: the watchdog counts its silence    */
	SW_WD_KILLING,  /* SIGKILL sent; waiting for the death            */
	SW_WD_DEAD,     /* reaped                                         */
	SW_WD_NSTATES
};

enum sw_wd_event {
	SW_WD_EV_RESUME = 0,   /* monitor resumed it                        */
	SW_WD_EV_REPORT,       /* eventfd readable, state word IN_KERN      */
	SW_WD_EV_NOISE,        /* eventfd readable, state word IN_CHILD     */
	SW_WD_EV_BAD,          /* eventfd readable, state word garbage      */
	SW_WD_EV_EXPIRE,       /* the stall limit was reached (sw_wd_expired) */
	SW_WD_EV_KILL,         /* the monitor asked for a kill              */
	SW_WD_EV_DEATH,        /* pidfd readable, reaped                    */
	SW_WD_EV_ANSWER,       /* another watched fd of the stub is ready   */
	SW_WD_NEVENTS
};

enum sw_wd_action {
	SW_WD_NONE = 0,       /* nothing to do                           */
	SW_WD_REFUSE,         /* the event is not allowed now (-EBUSY)   */
	SW_WD_DONE_REPORT,    /* complete the wait: REPORT               */
	SW_WD_KILL_STALL,     /* send SIGKILL, reason STALL              */
	SW_WD_KILL_PROTOCOL,  /* send SIGKILL, reason PROTOCOL           */
	SW_WD_KILL_USER,      /* send SIGKILL, reason USER               */
	SW_WD_DONE_EXIT,      /* complete: EXIT                          */
	SW_WD_DONE_KILL,      /* complete: KILL                          */
	SW_WD_DONE_ANSWER,    /* complete: FD (the stub's watched fd)    */
};

#define SW_WD_UNSTAMPED UINT64_MAX

/* Loop-wide accounting. */
struct sw_wd {
	uint64_t reads;   /* timer reads so far                            */
	uint64_t periods; /* periods counted so far (at most div per read) */
	uint64_t dropped; /* periods reads found beyond div (not counted)  */
	uint64_t limit;   /* counted periods that kill: N*k + 1            */
	uint64_t credit_max; /* starvation credit per resume: N*k periods  */
	uint32_t div;     /* k: timer periods per watchdog tick            */
};

/* Per-stub accounting. */
struct sw_wd_stub {
	uint8_t state;    /* enum sw_wd_state                                */
	uint64_t base;    /* RUNNING: wd.periods at the first read after the
	                     resume, or SW_WD_UNSTAMPED before it           */
	uint64_t credit;  /* periods of starvation credit since the resume  */
};

void sw_wd_init(struct sw_wd *wd, uint32_t stall_ticks, uint32_t timer_div);

/* One timer read that found `expirations` (>= 1) expirations: counts at
 * most div of them.  Returns the number counted. */
static inline uint64_t sw_wd_tick(struct sw_wd *wd, uint64_t expirations)
{
	uint64_t n = expirations < wd->div ? expirations : wd->div;

	wd->reads++;
	wd->periods += n;
	wd->dropped += expirations - n;
	return n;
}

/* The first read after the stub's resume has been taken: its silence is
 * counted from here.  Once per resume; later calls change nothing. */
static inline void sw_wd_stamp(const struct sw_wd *wd, struct sw_wd_stub *s)
{
	if (s->state == SW_WD_RUNNING && s->base == SW_WD_UNSTAMPED)
		s->base = wd->periods;
}

static inline bool sw_wd_stamped(const struct sw_wd_stub *s)
{
	return s->base != SW_WD_UNSTAMPED;
}

/* Counted periods since the stub's first read (RUNNING or at its kill). */
static inline uint64_t sw_wd_counted(const struct sw_wd *wd,
				     const struct sw_wd_stub *s)
{
	return sw_wd_stamped(s) ? wd->periods - s->base : 0;
}

/* Has a RUNNING stub reached its stall limit? */
static inline bool sw_wd_expired(const struct sw_wd *wd,
				 const struct sw_wd_stub *s)
{
	return s->state == SW_WD_RUNNING && sw_wd_stamped(s) &&
	       sw_wd_counted(wd, s) >= wd->limit + s->credit;
}

/* Credit a RUNNING stub with up to `periods` of starvation, so that its
 * total since the resume is at most credit_max.  Returns the periods
 * added (0: nothing more to credit). */
uint64_t sw_wd_credit(const struct sw_wd *wd, struct sw_wd_stub *s,
		      uint64_t periods);

/* Apply one event: updates *s and returns what the loop must do. */
enum sw_wd_action sw_wd_step(const struct sw_wd *wd, struct sw_wd_stub *s,
			     enum sw_wd_event ev);

#endif
