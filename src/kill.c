// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The kill: SIGKILL through the pidfd, with its report read first (how long
 * the stub was silent, how late the monitor was, its scheduling during the
 * stall), and the starvation credit that may move a stall's deadline.
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
 * How long a running task's figures may stand still: the kernel adds to a
 * running task's run time at each of its scheduler ticks (every 10 ms or
 * less, HZ >= 100; a nohz_full CPU, set aside at boot, is the exception).
 * Figures unchanged for longer, in state R, are a task waiting for a CPU.
 */
#define SW_RUN_STALE_NS (20 * 1000000ull)

/* Look at a sampled stub's scheduling: *cur, and when it last changed
 * (state, run time or CPU count).  False if /proc does not say. */
bool sw__sched_look(struct sw_stub *s, uint64_t now, struct sw_sched *cur)
{
	if (!s->sampled || !s->smp_ok || sw__sched_read(s->pid, cur) < 0 ||
	    cur->run_ns < s->smp.run_ns || cur->wait_ns < s->smp.wait_ns)
		return false;
	if (cur->state != s->seen.state || cur->run_ns != s->seen.run_ns ||
	    cur->slices != s->seen.slices) {
		s->seen = *cur;
		s->seen_ns = now;
	}
	return true;
}

/*
 * The stub's wait since its baseline that was not its choice: the waits for
 * a CPU the kernel has accounted, and the one still going on, which the
 * kernel accounts only once it ends.  A stub found runnable at one look, and
 * at every look since with neither its run time nor its CPU count moved, has
 * not run since that look: it has waited at least that long (once that is
 * past SW_RUN_STALE_NS, so that a stub on a CPU all along is not mistaken).
 * So has one found blocked in the kernel (D: a page fault, a lock, an exit
 * held up by others) at each look since: the kernel keeps no figure for
 * that, so only what the looks saw counts.
 */
static uint64_t sched_wait(const struct sw_stub *s, uint64_t now,
			   const struct sw_sched *cur)
{
	uint64_t w = cur->wait_ns - s->smp.wait_ns;

	if ((cur->state == 'R' || cur->state == 'D') &&
	    s->seen.state == cur->state && now - s->seen_ns >= SW_RUN_STALE_NS)
		w += now - s->seen_ns;
	return w;
}

void sw__send_kill(struct sw_loop *loop, struct sw_stub *s,
		      enum sw_kill_reason reason, uint32_t bad_state)
{
	struct sw_kill_info *k = &s->ev.kill;
	bool stalled = s->phase == SW_PH_IN_FLIGHT;
	uint64_t now = sw__now_ns();

	memset(k, 0, sizeof(*k));
	k->reason = reason;
	k->pid = s->pid;
	k->bad_state = bad_state;
	k->killed_at_ns = now;
	if (reason == SW_KILL_STALL && sw_wd_stamped(&s->wd)) {
		k->silent_ns = now > s->first_read_ns ? now - s->first_read_ns
						      : 0;
		/* The bound of watchdog.h: the first read's lateness, this
		 * read's (to the SIGKILL), and the periods reads dropped. */
		k->monitor_late_ns =
			s->late_first_ns +
			(now > loop->cur_oldest_ns ? now - loop->cur_oldest_ns
						   : 0) +
			(loop->wd.dropped - s->dropped_base) * loop->period_ns;
		k->starved_ns = s->wd.credit * loop->period_ns;
	}
	if (reason == SW_KILL_STALL && stalled)
		k->stall_ticks = (uint32_t)((sw_wd_counted(&loop->wd, &s->wd) -
					     s->wd.credit) / loop->timer_div);
	if (reason == SW_KILL_STALL) {
		struct sw_sched cur;

		if (sw__sched_look(s, now, &cur)) {
			k->stall_window_ns = now - s->smp_ns;
			k->stall_run_ns = cur.run_ns - s->smp.run_ns;
			k->stall_wait_ns = sched_wait(s, now, &cur);
		}
	}
	/* On the list of the dying from now on: its death is looked for at
	 * the timer reads, whether or not anything is in flight (on_timer(),
	 * sw__on_doomed()).  A report pending (a bad state word written after
	 * it) is still taken first. */
	sw__phase_set(loop, s, s->phase == SW_PH_REPORTED
				       ? SW_PH_KILLING_REPORTED
				       : SW_PH_KILLING);
	sw__mute_remove(loop, s);
	sw__diag_read(s->pid, k);
	/* The stub is our unreaped child, so its pid cannot be reused; the
	 * pidfd makes that explicit.  ESRCH: it is dying already. */
	syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
	s->sigkill_ns = sw__now_ns();
	if (!loop->armed)
		sw__timer_set(loop, true);
}

/*
 * A stub was runnable but got no CPU: that is not silence by choice.  Before
 * a stall kill, credit it with its run-queue wait since the baseline (taken
 * after a whole tick of silence), in whole timer periods, at most N ticks per
 * resume (watchdog.h).  Returns true if its deadline moved.
 */
bool sw__credit_starvation(struct sw_loop *loop, struct sw_stub *s,
			      uint64_t now)
{
	struct sw_sched cur;
	uint64_t periods;

	if (s->wd.credit >= loop->wd.credit_max || !sw__sched_look(s, now, &cur))
		return false;
	periods = sched_wait(s, now, &cur) / loop->period_ns;
	if (periods <= s->wd.credit)
		return false;
	return sw_wd_credit(&loop->wd, &s->wd, periods - s->wd.credit) > 0;
}
