/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The watchdog's pure state machine: no syscalls, no clock, no allocation.
 * The loop feeds it events (resume, report, tick, death, ...) and carries
 * out the action it returns.  Unit tests feed it injected events.
 *
 * Time is counted in timer *reads*, not in clock readings.  The loop's
 * timerfd fires every P = T/k (k = timer_div >= 2); each read counts once,
 * whatever its expiration count, so a stopped or descheduled monitor accrues
 * stall time more slowly, never faster.  The first read after a resume may
 * hold expirations from before the resume, so it is never counted.  A stub
 * is killed on the read that makes N*k + 1 counted reads after its resume:
 *
 *   worst early: first read stale, then N*k + 1 fresh reads, each consuming
 *                at least one expiration after the resume, P apart:
 *                silence > N*k*P = N*T;
 *   worst late:  first read fresh (at most P after the resume), then N*k + 1
 *                more: silence <= (N*k + 2)*P <= (N+1)*T because k >= 2.
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

/* Loop-wide accounting. */
struct sw_wd {
	uint64_t reads; /* timer reads so far                        */
	uint64_t limit; /* reads after a resume that kill: N*k + 2   */
	uint32_t div;   /* k: timer reads per watchdog tick           */
};

/* Per-stub accounting. */
struct sw_wd_stub {
	uint8_t state;     /* enum sw_wd_state                              */
	uint64_t deadline; /* RUNNING: killed once wd.reads >= deadline     */
};

void sw_wd_init(struct sw_wd *wd, uint32_t stall_ticks, uint32_t timer_div);

/* One timer read, whatever its expiration count. */
static inline void sw_wd_tick(struct sw_wd *wd)
{
	wd->reads++;
}

/* Has a RUNNING stub reached its stall limit? */
static inline bool sw_wd_expired(const struct sw_wd *wd,
				 const struct sw_wd_stub *s)
{
	return s->state == SW_WD_RUNNING && wd->reads >= s->deadline;
}

/* Counted (fresh) reads since the stub's resume; RUNNING or at its kill. */
uint64_t sw_wd_counted(const struct sw_wd *wd, const struct sw_wd_stub *s);

/* Apply one event: updates *s and returns what the loop must do. */
enum sw_wd_action sw_wd_step(const struct sw_wd *wd, struct sw_wd_stub *s,
			     enum sw_wd_event ev);

#endif
