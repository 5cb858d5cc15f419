// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The watchdog driver: a report (the eventfd fired, or a look found the
 * state word changed) fed to the watchdog's state machine, and the action
 * the machine returns carried out.
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

/* Carry out a state machine action. */
void sw__act(struct sw_loop *loop, struct sw_stub *s,
		enum sw_wd_action a, uint32_t state_word)
{
	switch (a) {
	case SW_WD_DONE_REPORT:
		sw__complete(loop, s, SW_EV_REPORT);
		break;
	case SW_WD_KILL_STALL:
		sw__send_kill(loop, s, SW_KILL_STALL, 0);
		break;
	case SW_WD_KILL_PROTOCOL:
		sw__send_kill(loop, s, SW_KILL_PROTOCOL, state_word);
		break;
	case SW_WD_KILL_USER:
		sw__send_kill(loop, s, SW_KILL_USER, 0);
		break;
	case SW_WD_DONE_EXIT:
		sw__complete(loop, s, SW_EV_EXIT);
		break;
	case SW_WD_DONE_KILL:
		/* A status that is not the SIGKILL's: the stub was exiting
		 * already (an exit can sit in the kernel, in D, past the
		 * deadline) or died of its own signal first.  It ended on its
		 * own, and says so. */
		if (s->ev.status != -1 &&
		    !(WIFSIGNALED(s->ev.status) &&
		      WTERMSIG(s->ev.status) == SIGKILL)) {
			memset(&s->ev.kill, 0, sizeof(s->ev.kill));
			sw__complete(loop, s, SW_EV_EXIT);
		} else {
			sw__complete(loop, s, SW_EV_KILL);
		}
		break;
	case SW_WD_DONE_ANSWER:
		sw__complete(loop, s, SW_EV_FD);
		break;
	case SW_WD_NONE:
	case SW_WD_REFUSE:
		break;
	}
}

/* The report eventfd fired (or a spin saw the state word change): the
 * shared state word decides what it means. */
void sw__on_report(struct sw_loop *loop, struct sw_stub *s)
{
	uint32_t st = __atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE);
	enum sw_wd_event ev;
	enum sw_wd_action a;

	if (st == SW_STATE_IN_KERN)
		ev = SW_WD_EV_REPORT;
	else if (st == SW_STATE_IN_CHILD)
		ev = SW_WD_EV_NOISE;
	else
		ev = SW_WD_EV_BAD;

	a = sw_wd_step(&loop->wd, &s->wd, ev);
	if (a == SW_WD_DONE_REPORT)
		s->noise = 0;
	else if (a == SW_WD_NONE)
		sw__note_noise(loop, s);
	sw__act(loop, s, a, st);
}
