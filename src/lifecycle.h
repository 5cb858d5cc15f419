/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stub's life, as its monitor sees it: one phase at a time.  The phase
 * says which lists of its loop the stub is on and which calls it takes; the
 * watchdog's own state (watchdog.h) follows from it, and so does whether a
 * completion waits in s->ev for the monitor.
 *
 *   phase             watchdog  s->ev pending      loop lists     reaped
 *   NEW               IDLE      -                  -              no
 *   IN_FLIGHT         RUNNING   -                  in-flight      no
 *   REPORTED          IDLE      REPORT or FD       (callbacks)    no
 *   HELD              IDLE      -                  -              no
 *   KILLING           KILLING   -                  dying          no
 *   KILLING_REPORTED  KILLING   REPORT or FD       dying, (cb)    no
 *   OWED_REPORTED     IDLE/KILL REPORT or FD       (callbacks)    yes
 *   OWED_HELD         IDLE/KILL -                  -              yes
 *   ENDED             DEAD      EXIT or KILL       (callbacks)    yes
 *   DELIVERED         DEAD      -                  -              yes
 *
 * "(callbacks)": on the callback queue while the stub has a callback and no
 * sw_stub_wait() targets it.  Flood muting (mute.c) may hold a stub on the
 * muted list in NEW, IN_FLIGHT, REPORTED and HELD only.
 *
 *   from               event                                   to
 *   NEW                spawned, put in flight                  IN_FLIGHT
 *   HELD               sw_stub_resume(), sw_stub_continue()    IN_FLIGHT
 *   IN_FLIGHT          report, or its watched fd answered      REPORTED
 *   IN_FLIGHT          stall, protocol or user kill            KILLING
 *   IN_FLIGHT, HELD    death seen                              ENDED
 *   REPORTED           taken (a wait, a callback)              HELD
 *   REPORTED           sw_stub_kill(): the report dropped      HELD, then
 *                      unread, then the kill                   KILLING
 *   REPORTED           a bad state word (protocol kill)        KILLING_REPORTED
 *   REPORTED           death seen                              OWED_REPORTED
 *   HELD               a bad state word, sw_stub_kill()        KILLING
 *   KILLING            death seen, or doomed (death.c)         ENDED
 *   KILLING_REPORTED   taken                                   KILLING
 *   KILLING_REPORTED   death seen                              OWED_REPORTED
 *   OWED_REPORTED      taken                                   OWED_HELD
 *   OWED_HELD          the next resume, continue, wait, kill or
 *                      the end of its callback: death
 *                      delivered                               ENDED
 *   ENDED              taken                                   DELIVERED
 *
 * A death is never delivered ahead of a report that waits: neither may be
 * lost, so the death is owed until the report is taken.  A kill made while
 * a report waits (only a protocol kill: sw_stub_kill() drops the report
 * first) leaves the report to be taken first.  DELIVERED is the end: the
 * handle answers -ESRCH until it is freed.
 *
 * The loop keeps these in step: sw__phase_set() is the only place a phase
 * changes, and it moves the stub on and off the in-flight queue and the
 * list of the dying.  With STUBWATCH_CHECK=1 in the environment of
 * sw_loop_new() (the test suite sets it), every transition is checked
 * against this table, and every wait, dispatch and prepare ends with
 * sw__loop_check(), which checks the table's other columns for every stub
 * and the loop's lists; a break aborts the process with its description.
 */
#ifndef SW_LIFECYCLE_H
#define SW_LIFECYCLE_H

#include <stdbool.h>

enum sw_phase {
	SW_PH_NEW = 0,
	SW_PH_IN_FLIGHT,
	SW_PH_REPORTED,
	SW_PH_HELD,
	SW_PH_KILLING,
	SW_PH_KILLING_REPORTED,
	SW_PH_OWED_REPORTED,
	SW_PH_OWED_HELD,
	SW_PH_ENDED,
	SW_PH_DELIVERED,
	SW_PH_NPHASES
};

/* A completion waits in s->ev for the monitor. */
static inline bool sw__phase_pending(enum sw_phase p)
{
	return p == SW_PH_REPORTED || p == SW_PH_KILLING_REPORTED ||
	       p == SW_PH_OWED_REPORTED || p == SW_PH_ENDED;
}

/* Its death is seen, but owed behind a report. */
static inline bool sw__phase_owed(enum sw_phase p)
{
	return p == SW_PH_OWED_REPORTED || p == SW_PH_OWED_HELD;
}

/* SIGKILL sent, its death not yet seen: on the list of the dying. */
static inline bool sw__phase_killing(enum sw_phase p)
{
	return p == SW_PH_KILLING || p == SW_PH_KILLING_REPORTED;
}

const char *sw__phase_name(enum sw_phase p);

#endif
