// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A stub's life: its phase (lifecycle.h), the lists that follow from it (the
 * in-flight queue and the list of the dying, which change here only, with
 * the phase), the callback queue and the announced set, the completion it
 * holds for its monitor, the checks the calls that move it share, and the
 * invariant checker.  The muted list belongs to mute.c, the quiet list to
 * handshake.c and dispatch.c, the graves to reap.c.
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

/* Unlink s from a singly linked list of stubs whose next pointer sits at
 * offset `off` in struct sw_stub.  The lists are short (completions not yet
 * delivered, muted floods, resumes not yet announced). */
void sw__slist_remove(struct sw_stub **head, struct sw_stub *s, size_t off)
{
#define NEXT(x) (*(struct sw_stub **)((char *)(x) + off))
	struct sw_stub **pp;

	for (pp = head; *pp; pp = &NEXT(*pp)) {
		if (*pp == s) {
			*pp = NEXT(s);
			break;
		}
	}
	NEXT(s) = NULL;
#undef NEXT
}

static void queue_push(struct sw_loop *loop, struct sw_stub *s)
{
	s->q_next = NULL;
	s->q_prev = loop->q_tail;
	if (loop->q_tail)
		loop->q_tail->q_next = s;
	else
		loop->q_head = s;
	loop->q_tail = s;
	loop->n_in_flight++;
}

static void queue_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (s->q_prev)
		s->q_prev->q_next = s->q_next;
	else
		loop->q_head = s->q_next;
	if (s->q_next)
		s->q_next->q_prev = s->q_prev;
	else
		loop->q_tail = s->q_prev;
	s->q_prev = s->q_next = NULL;
	loop->n_in_flight--;
}

void sw__done_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->on_done)
		return;
	sw__slist_remove(&loop->done_head, s, offsetof(struct sw_stub, d_next));
	loop->done_tail = NULL;
	for (struct sw_stub *t = loop->done_head; t; t = t->d_next)
		loop->done_tail = t;
	s->on_done = false;
}

void sw__quiet_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->on_quiet)
		return;
	sw__slist_remove(&loop->quiet_head, s, offsetof(struct sw_stub, qt_next));
	s->on_quiet = false;
}

void sw__ann_drop(struct sw_loop *loop, int i)
{
	loop->ann[i]->on_ann = false;
	memmove(&loop->ann[i], &loop->ann[i + 1],
		(size_t)(loop->n_ann - i - 1) * sizeof(loop->ann[0]));
	loop->n_ann--;
}

void sw__ann_remove(struct sw_loop *loop, struct sw_stub *s)
{
	for (int i = 0; s->on_ann && i < loop->n_ann; i++)
		if (loop->ann[i] == s)
			sw__ann_drop(loop, i);
}

void sw__ann_push(struct sw_loop *loop, struct sw_stub *s)
{
	if (s->on_ann)
		return;
	if (loop->n_ann == SW_ANN_MAX)
		sw__ann_drop(loop, 0); /* the oldest: epoll still finds it */
	loop->ann[loop->n_ann++] = s;
	s->on_ann = true;
}

/* A completion queued outside a wait or dispatch (sw_stub_kill() finding a
 * dead stub, a resume delivering an owed death) must make the loop's fd
 * readable, or a host polling it would never dispatch it. */
void sw__kick(struct sw_loop *loop)
{
	static const uint64_t one = 1;

	if (!loop->kicked &&
	    write(loop->kickfd, &one, sizeof(one)) == sizeof(one))
		loop->kicked = true;
}

void sw__unkick(struct sw_loop *loop)
{
	uint64_t count;

	if (loop->kicked && (read(loop->kickfd, &count, sizeof(count)) ==
				     sizeof(count) || errno == EAGAIN))
		loop->kicked = false;
}

/* A stub's wait is over: keep the event for sw_stub_wait(), or queue the
 * stub for its callback. */
void sw__complete(struct sw_loop *loop, struct sw_stub *s,
		  enum sw_event_type type)
{
	s->ev.type = type;
	if (type != SW_EV_FD)
		s->ev.revents = 0;
	sw__phase_set(loop, s, type == SW_EV_EXIT || type == SW_EV_KILL
				       ? SW_PH_ENDED
				       : SW_PH_REPORTED);
	if (s->cb && !s->waited && !s->on_done) {
		s->d_next = NULL;
		if (loop->done_tail)
			loop->done_tail->d_next = s;
		else
			loop->done_head = s;
		loop->done_tail = s;
		s->on_done = true;
		if (!__atomic_load_n(&loop->busy, __ATOMIC_RELAXED))
			sw__kick(loop);
	}
}

/* Take a pending completion out of the stub. */
int sw__take_event(struct sw_loop *loop, struct sw_stub *s,
		   struct sw_event *ret_ev)
{
	static const uint8_t taken[SW_PH_NPHASES] = {
		[SW_PH_REPORTED] = SW_PH_HELD,
		[SW_PH_KILLING_REPORTED] = SW_PH_KILLING,
		[SW_PH_OWED_REPORTED] = SW_PH_OWED_HELD,
		[SW_PH_ENDED] = SW_PH_DELIVERED,
	};

	if (sw__phase_pending((enum sw_phase)s->phase))
		sw__phase_set(loop, s, (enum sw_phase)taken[s->phase]);
	if (ret_ev)
		*ret_ev = s->ev;
	return s->ev.type;
}

/* The checks resume, continue, add_fd, kill and wait share; sets *ret_loop
 * on 0. */
int sw__may_go(struct sw_stub *s, struct sw_loop **ret_loop)
{
	struct sw_loop *loop;

	if (!s)
		return -EINVAL;
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (!loop)
		return -ENOLINK;
	if (sw_loop_forked(loop))
		return -ECHILD;
	if (__atomic_load_n(&s->phase, __ATOMIC_RELAXED) == SW_PH_DELIVERED)
		return -ESRCH;
	*ret_loop = loop;
	return 0;
}

/* Leaving the loop (detached or freed): off every list of the loop.  The
 * phase stays: a detached stub keeps it, a freed one is gone. */
void sw__lists_leave(struct sw_loop *loop, struct sw_stub *s)
{
	if (s->phase == SW_PH_IN_FLIGHT)
		queue_remove(loop, s);
	if (sw__phase_killing(s->phase))
		sw__slist_remove(&loop->dying, s,
				 offsetof(struct sw_stub, k_next));
	sw__done_remove(loop, s);
	sw__quiet_remove(loop, s);
	sw__ann_remove(loop, s);
}

/* ---- the phase and its checks -------------------------------------------- */

static const char *const phase_names[SW_PH_NPHASES] = {
	[SW_PH_NEW] = "NEW",
	[SW_PH_IN_FLIGHT] = "IN_FLIGHT",
	[SW_PH_REPORTED] = "REPORTED",
	[SW_PH_HELD] = "HELD",
	[SW_PH_KILLING] = "KILLING",
	[SW_PH_KILLING_REPORTED] = "KILLING_REPORTED",
	[SW_PH_OWED_REPORTED] = "OWED_REPORTED",
	[SW_PH_OWED_HELD] = "OWED_HELD",
	[SW_PH_ENDED] = "ENDED",
	[SW_PH_DELIVERED] = "DELIVERED",
};

const char *sw__phase_name(enum sw_phase p)
{
	return (unsigned)p < SW_PH_NPHASES ? phase_names[p] : "?";
}

/* The transitions of lifecycle.h's table: the phases each phase may go to,
 * as bits. */
#define TO(p) (1u << (p))
static const uint16_t legal[SW_PH_NPHASES] = {
	[SW_PH_NEW] = TO(SW_PH_IN_FLIGHT),
	[SW_PH_IN_FLIGHT] = TO(SW_PH_REPORTED) | TO(SW_PH_KILLING) |
			    TO(SW_PH_ENDED),
	[SW_PH_REPORTED] = TO(SW_PH_HELD) | TO(SW_PH_KILLING_REPORTED) |
			   TO(SW_PH_OWED_REPORTED),
	[SW_PH_HELD] = TO(SW_PH_IN_FLIGHT) | TO(SW_PH_KILLING) |
		       TO(SW_PH_ENDED),
	[SW_PH_KILLING] = TO(SW_PH_ENDED),
	[SW_PH_KILLING_REPORTED] = TO(SW_PH_KILLING) | TO(SW_PH_OWED_REPORTED),
	[SW_PH_OWED_REPORTED] = TO(SW_PH_OWED_HELD),
	[SW_PH_OWED_HELD] = TO(SW_PH_ENDED),
	[SW_PH_ENDED] = TO(SW_PH_DELIVERED),
	[SW_PH_DELIVERED] = 0,
};

bool sw__phase_legal(enum sw_phase from, enum sw_phase to)
{
	return (unsigned)from < SW_PH_NPHASES &&
	       (unsigned)to < SW_PH_NPHASES && (legal[from] & TO(to));
}

/* A broken invariant in a checked run (STUBWATCH_CHECK=1) is a bug of the
 * library, which no error code could help the caller with: say what broke,
 * and stop. */
static void check_failed(const char *what, const struct sw_stub *s)
{
	fprintf(stderr, "stubwatch: invariant broken: %s (stub pid %d, phase %s)\n",
		what, s ? (int)s->pid : 0,
		s ? sw__phase_name((enum sw_phase)s->phase) : "-");
	abort();
}

/* Move the stub to phase `to`, and on or off the lists that follow from
 * the phase: the in-flight queue and the list of the dying. */
void sw__phase_set(struct sw_loop *loop, struct sw_stub *s, enum sw_phase to)
{
	enum sw_phase from = (enum sw_phase)s->phase;

	if (loop->check && !sw__phase_legal(from, to))
		check_failed("a transition lifecycle.h does not list", s);
	if (from == SW_PH_IN_FLIGHT && to != SW_PH_IN_FLIGHT)
		queue_remove(loop, s);
	else if (to == SW_PH_IN_FLIGHT && from != SW_PH_IN_FLIGHT)
		queue_push(loop, s);
	if (sw__phase_killing(from) && !sw__phase_killing(to)) {
		sw__slist_remove(&loop->dying, s,
				 offsetof(struct sw_stub, k_next));
	} else if (sw__phase_killing(to) && !sw__phase_killing(from)) {
		s->k_next = loop->dying;
		loop->dying = s;
	}
	/* Atomic: another thread may ask a stub of a loop that is in use
	 * whether its end is delivered (sw_stub_wait(), refused -EBUSY). */
	__atomic_store_n(&s->phase, (uint8_t)to, __ATOMIC_RELAXED);
}

/* The watchdog states each phase allows (lifecycle.h's table). */
static bool wd_state_fits(enum sw_phase p, uint8_t wd)
{
	switch (p) {
	case SW_PH_IN_FLIGHT:
		return wd == SW_WD_RUNNING;
	case SW_PH_KILLING:
	case SW_PH_KILLING_REPORTED:
		return wd == SW_WD_KILLING;
	case SW_PH_OWED_REPORTED:
	case SW_PH_OWED_HELD:
		return wd == SW_WD_IDLE || wd == SW_WD_KILLING;
	case SW_PH_ENDED:
	case SW_PH_DELIVERED:
		return wd == SW_WD_DEAD;
	default:
		return wd == SW_WD_IDLE;
	}
}

/* One stub against the columns of lifecycle.h's table. */
const char *sw__stub_check(const struct sw_loop *loop, const struct sw_stub *s)
{
	enum sw_phase p = (enum sw_phase)s->phase;
	bool dead = p == SW_PH_OWED_REPORTED || p == SW_PH_OWED_HELD ||
		    p == SW_PH_ENDED || p == SW_PH_DELIVERED;
	bool report = p == SW_PH_REPORTED || p == SW_PH_KILLING_REPORTED ||
		      p == SW_PH_OWED_REPORTED;
	enum sw_event_type t = s->ev.type;

	if (p >= SW_PH_NPHASES || p == SW_PH_NEW)
		return "a stub of the loop in no phase, or never put in flight";
	if (s->loop != loop)
		return "a stub on the loop's list that names another loop";
	if (!wd_state_fits(p, s->wd.state))
		return "the watchdog's state does not fit the phase";
	if (s->reaped != dead)
		return "reaped, or not, against the phase";
	if (report && t != SW_EV_REPORT && t != SW_EV_FD)
		return "a pending report that is neither REPORT nor FD";
	if (p == SW_PH_ENDED && t != SW_EV_EXIT && t != SW_EV_KILL)
		return "a pending end that is neither EXIT nor KILL";
	if (p == SW_PH_IN_FLIGHT && t != 0)
		return "a stub in flight that still holds an event";
	if (s->on_done && !sw__phase_pending(p))
		return "on the callback queue with nothing pending";
	if (s->muted && (sw__phase_killing(p) || dead))
		return "muted while killed or dead";
	if (s->waited)
		return "the target of a wait that has returned";
	if (s->xfd_armed && s->xfd < 0)
		return "a watched fd armed that is not there";
	return NULL;
}

/* Every stub of the loop against lifecycle.h's table, and the loop's lists
 * against the phases.  Returns what broke, or NULL, and the stub it broke
 * at, if one, in *ret_stub (NULL: none or not wanted).  Outside a wait or
 * dispatch only. */
const char *sw__loop_check(const struct sw_loop *loop,
			   const struct sw_stub **ret_stub)
{
	const struct sw_stub *s, *prev = NULL;
	int n = 0, flying = 0, killing = 0, listed;
	const char *what;

	for (s = loop->stubs; s; s = s->l_next, n++) {
		if (s->l_prev != prev)
			return "the list of stubs is broken";
		prev = s;
		what = sw__stub_check(loop, s);
		if (what) {
			if (ret_stub)
				*ret_stub = s;
			return what;
		}
		flying += s->phase == SW_PH_IN_FLIGHT;
		killing += sw__phase_killing((enum sw_phase)s->phase);
	}
	if (n != loop->nstubs)
		return "nstubs is not the number of stubs";
	listed = 0;
	for (s = loop->q_head, prev = NULL; s; prev = s, s = s->q_next) {
		if (s->phase != SW_PH_IN_FLIGHT || s->q_prev != prev ||
		    s->loop != loop)
			return "the in-flight queue holds a stub not in flight";
		listed++;
	}
	if (prev != loop->q_tail || listed != flying ||
	    listed != loop->n_in_flight)
		return "the in-flight queue is not every stub in flight";
	listed = 0;
	for (s = loop->dying; s; s = s->k_next, listed++)
		if (!sw__phase_killing((enum sw_phase)s->phase) ||
		    s->loop != loop)
			return "the list of the dying holds a stub not killed";
	if (listed != killing)
		return "the list of the dying is not every stub killed";
	for (s = loop->done_head, prev = NULL; s; prev = s, s = s->d_next)
		if (!s->on_done || s->loop != loop)
			return "the callback queue holds a stub not marked on it";
	if (prev != loop->done_tail)
		return "the callback queue's tail is wrong";
	for (s = loop->muted; s; s = s->m_next)
		if (!s->muted || s->loop != loop)
			return "the muted list holds a stub not muted";
	for (int i = 0; i < loop->n_ann; i++)
		if (!loop->ann[i]->on_ann || loop->ann[i]->loop != loop)
			return "the announced set holds a stub not marked in it";
	if ((loop->n_in_flight || loop->dying) && !loop->armed)
		return "stubs in flight or dying with the timer off";
	return NULL;
}

/* In a checked run, the end of every wait, dispatch and prepare. */
void sw__loop_checked(const struct sw_loop *loop)
{
	const struct sw_stub *s = NULL;
	const char *what;

	if (!loop->check)
		return;
	what = sw__loop_check(loop, &s);
	if (what)
		check_failed(what, s);
}
