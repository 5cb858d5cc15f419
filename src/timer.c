// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The timer's grid: one timerfd per loop, armed while anything needs it,
 * with expirations at next_exp_ns + j * period_ns.  Each read is late by
 * the time since the oldest expiration it takes; the reads are counted in
 * periods for the watchdog (watchdog.h) and in the loop's statistics.
 */
#include <errno.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "internal.h"

int sw__timer_set(struct sw_loop *loop, bool on)
{
	struct itimerspec its = { 0 };
	/* Before the arming: the grid it starts is at or after this, so the
	 * lateness measured against it is never less than the real one. */
	uint64_t now = on ? sw__now_ns() : 0;

	if (on) {
		its.it_interval.tv_sec = loop->period_ns / 1000000000ull;
		its.it_interval.tv_nsec = loop->period_ns % 1000000000ull;
		its.it_value = its.it_interval;
	}
	if (timerfd_settime(loop->tfd, 0, &its, NULL) < 0)
		return -errno;
	loop->armed = on;
	if (on) {
		loop->next_exp_ns = now + loop->period_ns;
		loop->last_read_ns = now;
	}
	return 0;
}

/* Read the timer: false if it had nothing (disarmed meanwhile).  Otherwise
 * the grid moves past the expirations read, the watchdog counts them, and
 * *ret_now and *ret_late say when the read ran and how late it was. */
bool sw__timer_read(struct sw_loop *loop, uint64_t *ret_now, uint64_t *ret_late)
{
	uint64_t expirations, now, late, oldest;

	if (read(loop->tfd, &expirations, sizeof(expirations)) !=
	    sizeof(expirations) || expirations == 0)
		return false;
	now = sw__now_ns();
	oldest = loop->next_exp_ns;
	late = now > oldest ? now - oldest : 0;
	loop->next_exp_ns = oldest + expirations * loop->period_ns;
	loop->cur_oldest_ns = oldest;
	loop->stats.timer_reads++;
	loop->stats.timer_periods += sw_wd_tick(&loop->wd, expirations);
	if (late > loop->stats.max_late_ns)
		loop->stats.max_late_ns = late;
	if (now - loop->last_read_ns > loop->stats.max_gap_ns)
		loop->stats.max_gap_ns = now - loop->last_read_ns;
	loop->last_read_ns = now;
	*ret_now = now;
	*ret_late = late;
	return true;
}
