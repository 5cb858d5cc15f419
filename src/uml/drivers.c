// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The vCPU drivers: how a vCPU thread waits; what it does is vcpu.c's (the
 * steps priv.h lists).  "blocking" uses sw_stub_wait(); "dispatch" polls
 * the loop's fd and runs sw_loop_dispatch() with callbacks, as an embedding
 * host does; "libev" (built when configure found libev) runs the same
 * callbacks from a libev loop of the vCPU thread's own, the loop attached
 * with sw_ev_attach().  Another driver implements struct swu_driver with
 * the steps priv.h lists and joins drivers[].
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <string.h>

#ifdef HAVE_LIBEV
#include <stubwatch-ev.h>
#endif

#include "priv.h"

/* ---- driver: blocking (sw_stub_wait) ------------------------------------- */

static int blocking_quantum(struct swu_vcpu *v, struct swu_mstub *ms)
{
	struct sw_stub *sw = swu__mstub_sw(ms);
	struct sw_event ev;
	int next = SWU_NEXT_RESUME, r;

	swu__vcpu_quantum_begin(v, ms);
	for (;;) {
		if (next == SWU_NEXT_RESUME) {
			r = sw_stub_resume(sw);
			if (r < 0)
				return r;
			swu__vcpu_resumed(v, ms);
		}
		while ((r = sw_stub_wait(sw, &ev)) == SW_EV_TICK)
			swu__vcpu_tick(v, ms, true);
		if (r < 0)
			return r;
		next = swu__vcpu_event(v, ms, &ev);
		if (next < 0)
			return next;
		if (next == SWU_NEXT_SWITCH || next == SWU_NEXT_GONE) {
			swu__vcpu_quantum_end(v);
			return next;
		}
	}
}

static int blocking_run(struct swu_vcpu *v)
{
	struct swu_mstub *ms;
	int r;

	while ((ms = swu__vcpu_pick(v))) {
		r = blocking_quantum(v, ms);
		if (r == SWU_NEXT_SWITCH)
			r = swu__vcpu_release(v, ms);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- drivers: dispatch and libev (callbacks from sw_loop_dispatch) -------
 *
 * The embedding path, as a host main loop would drive it: completions and
 * timer reads arrive as callbacks.  The two drivers differ only in who
 * polls the loop's fd: "dispatch" a poll() of its own, "libev" an ev_io in
 * the vCPU thread's libev loop (the glue runs sw_loop_dispatch()).  A timer
 * read that comes in the same dispatch as the report still reaches the tick
 * callback, after the report's: it is owed, and paid right after the next
 * resume (unless the quantum ended).
 *
 * The callbacks only record; the vCPU serves, resumes, frees and detaches
 * after the wait, outside any dispatch (sw_stub_detach() is refused inside).
 */
struct dispatch_ctx {
	struct swu_vcpu *v;
	struct swu_mstub *ms; /* the stub of the quantum, NULL between quanta */
	bool done;            /* its completion arrived                       */
	struct sw_event ev;
	int (*wait)(struct dispatch_ctx *c); /* dispatch until done           */
#ifdef HAVE_LIBEV
	struct ev_loop *evloop;
	struct sw_ev *glue;
#endif
};

static int dispatch_on_event(struct sw_stub *sw, const struct sw_event *ev,
			     void *userdata)
{
	struct dispatch_ctx *c = userdata;

	(void)sw;
	c->ev = *ev;
	c->done = true;
	return 0;
}

static int dispatch_on_tick(struct sw_loop *loop, void *userdata)
{
	struct dispatch_ctx *c = userdata;

	(void)loop;
	if (c->ms)
		swu__vcpu_tick(c->v, c->ms, !c->done);
	return 0;
}

static int poll_wait(struct dispatch_ctx *c)
{
	struct sw_loop *loop = swu__vcpu_loop(c->v);
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	int r;

	if (pfd.fd < 0)
		return pfd.fd;
	while (!c->done) {
		r = poll(&pfd, 1, -1);
		if (r < 0 && errno != EINTR)
			return -errno;
		r = sw_loop_dispatch(loop);
		if (r < 0)
			return r;
	}
	return 0;
}

static int dispatch_quantum(struct swu_vcpu *v, struct dispatch_ctx *c,
			    struct swu_mstub *ms)
{
	struct sw_stub *sw = swu__mstub_sw(ms);
	int next = SWU_NEXT_RESUME, r;

	r = sw_stub_set_callback(sw, dispatch_on_event, c);
	if (r < 0)
		return r;
	c->ms = ms;
	swu__vcpu_quantum_begin(v, ms);
	for (;;) {
		c->done = false;
		if (next == SWU_NEXT_RESUME) {
			r = sw_stub_resume(sw);
			if (r < 0)
				break;
			swu__vcpu_resumed(v, ms);
		}
		r = c->wait(c);
		if (r < 0)
			break;
		next = swu__vcpu_event(v, ms, &c->ev);
		if (next < 0 || next == SWU_NEXT_SWITCH || next == SWU_NEXT_GONE)
			break;
	}
	c->ms = NULL;
	swu__vcpu_quantum_end(v);
	if (r < 0)
		return r;
	if (next == SWU_NEXT_SWITCH)
		sw_stub_set_callback(sw, NULL, NULL);
	return next;
}

static int callbacks_run(struct swu_vcpu *v, struct dispatch_ctx *c)
{
	struct swu_mstub *ms;
	int r;

	r = sw_loop_set_tick_callback(swu__vcpu_loop(v), dispatch_on_tick, c);
	while (r >= 0 && (ms = swu__vcpu_pick(v))) {
		r = dispatch_quantum(v, c, ms);
		if (r == SWU_NEXT_SWITCH)
			r = swu__vcpu_release(v, ms);
	}
	sw_loop_set_tick_callback(swu__vcpu_loop(v), NULL, NULL);
	return r < 0 ? r : 0;
}

static int dispatch_run(struct swu_vcpu *v)
{
	struct dispatch_ctx c = { .v = v, .wait = poll_wait };

	return callbacks_run(v, &c);
}

#ifdef HAVE_LIBEV
/* Iterations of the host's loop until the completion: libev polls, the
 * glue's ev_io fires, sw_loop_dispatch() runs the callbacks.  (A host that
 * runs ev_run(loop, 0) would ev_break() from the completion callback: the
 * same thing, with the condition spread over two places.) */
static int libev_wait(struct dispatch_ctx *c)
{
	bool watching;
	int r;

	while (!c->done) {
		watching = ev_run(c->evloop, EVRUN_ONCE);
		r = sw_ev_take_error(c->glue);
		if (r < 0)
			return r;
		/* the glue's ev_io is gone: nothing would wake us again */
		if (!watching && !c->done)
			return -ENOLINK;
	}
	return 0;
}

/* A libev loop per vCPU thread: ev_loop_new(), since ev_default_loop() is
 * one loop for the whole process (and takes SIGCHLD); EVFLAG_NOSIGMASK
 * because the vCPU thread keeps every signal blocked (they are the host's)
 * and libev has no signal watcher here to unblock one for. */
static int libev_run(struct swu_vcpu *v)
{
	struct dispatch_ctx c = { .v = v, .wait = libev_wait };
	int r;

	c.evloop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!c.evloop)
		return -ENOMEM;
	r = sw_ev_attach(swu__vcpu_loop(v), c.evloop, &c.glue);
	if (r == 0)
		r = callbacks_run(v, &c);
	/* before vcpu_cleanup() frees the stubwatch loop and its epoll fd */
	sw_ev_detach(c.glue);
	ev_loop_destroy(c.evloop);
	return r;
}
#endif

/* A driver this build lacks keeps its name (run NULL), so that asking for
 * it is told apart from asking for a driver that does not exist. */
static const struct swu_driver drivers[] = {
	{ "blocking", blocking_run },
	{ "dispatch", dispatch_run },
#ifdef HAVE_LIBEV
	{ "libev", libev_run },
#else
	{ "libev", NULL },
#endif
};

const struct swu_driver *swu__driver_find(const char *name)
{
	if (!name)
		return &drivers[0];
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(drivers[i].name, name) == 0)
			return &drivers[i];
	return NULL;
}

int swu_driver_check(const char *name)
{
	const struct swu_driver *d = swu__driver_find(name);

	if (!d)
		return -EINVAL;
	return d->run ? 0 : -EOPNOTSUPP;
}
