// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A stub's death: seen (its pidfd readable, or a kill that found it gone),
 * delivered or owed behind a pending report, and the early end of a killed
 * stub whose teardown the kernel is still running.
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

/* Deliver a death the loop has seen (reaped) but held back because the
 * stub's report was still pending: neither may be lost. */
void sw__deliver_death(struct sw_loop *loop, struct sw_stub *s)
{
	sw__act(loop, s, sw_wd_step(&loop->wd, &s->wd, SW_WD_EV_DEATH), 0);
}

/* The stub's death is collected (s->reaped): out of the loop's sets, and
 * delivered, or owed behind a pending report. */
static void on_dead(struct sw_loop *loop, struct sw_stub *s)
{
	/* Both fds leave the epoll set now: the pidfd stays readable and the
	 * eventfd may still be held by the stub's own children. */
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->report_fd, NULL);
	if (s->xfd >= 0)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->xfd, NULL);
	sw__mute_remove(loop, s);
	if (s->phase == SW_PH_REPORTED || s->phase == SW_PH_KILLING_REPORTED)
		sw__phase_set(loop, s, SW_PH_OWED_REPORTED);
	else
		sw__deliver_death(loop, s);
}

/* Look for the stub's death; deliver it, or owe it behind a pending
 * report.  Returns true if the stub is known dead. */
bool sw__on_death(struct sw_loop *loop, struct sw_stub *s)
{
	if (s->reaped)
		return true;
	/* A report that reached the state word but whose eventfd event is
	 * not processed yet (it is dropped with the fd below) still counts:
	 * look before reaping, while the pid is surely the stub's. */
	if (s->wd.state == SW_WD_RUNNING &&
	    __atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
		    SW_STATE_IN_CHILD)
		sw__on_report(loop, s);
	if (sw__reap(s) <= 0)
		return false;
	on_dead(loop, s);
	return true;
}

/*
 * A stub SIGKILLed at least a timer period ago whose death is still not
 * seen.  Once it is in its exit (PF_EXITING), the kernel is taking it
 * down, and on a loaded host that can take seconds (its exit waits on the
 * locks of files that many processes map, for instance behind DAMON's
 * walks of a library a thousand stubs map).  It runs no code of its own
 * again, and its leader's exit_code, set before the teardown, is already
 * its wait status when it says SIGKILL, or when the stub has one thread
 * and a code other than 0 (it was exiting on its own); a 0 is its status
 * when the stub is inside its own exit_group(0) or exit(0) (0 is also
 * what exit_code reads in the moment before the kernel sets it, so 0
 * alone proves nothing).  Then its wait ends
 * now, with that status, and its zombie is reaped later, as a held one is
 * (sw__reap_graves(), sw_loop_free()): the wait never waits on the
 * kernel's teardown.  A stub not yet in its exit (no CPU yet, or a system
 * call in D still running), or whose status is not yet certain, is looked
 * at again at the next read; one with SW_SPAWN_PIDNS is waited for, since
 * the other processes of its namespace are killed only once it is dead.
 */
void sw__on_doomed(struct sw_loop *loop, struct sw_stub *s)
{
	int code, threads;

	if (sw__on_death(loop, s))
		return; /* dead after all: the real status */
	if (s->pidns || sw__stat_exiting(s->pid, &code, &threads) < 0)
		return;
	/* Its own code counts only if the kernel dropped our SIGKILL (the
	 * group was exiting already), the stub has one thread, and that
	 * thread is not a zombie left by a leader that exited alone. */
	if (code != SIGKILL &&
	    !(threads == 1 && sw__kill_queued(s->pid) == 0 &&
	      !sw__all_zombies(s->pid) &&
	      (code != 0 || sw__exit_call(s->pid) == 0)))
		return;
	s->ev.status = code;
	s->reaped = true;
	s->held = true;
	on_dead(loop, s);
}
