// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The libev glue: one ev_io on the loop's epoll fd, dispatch when it is
 * readable; and one ev_prepare that calls sw_loop_prepare() before libev
 * blocks, so that a stub resumed from a callback and answering before libev
 * would sleep is served without a poll (libev's or the loop's own).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "stubwatch-ev.h"

#define SW_EXPORT __attribute__((visibility("default")))

struct sw_ev {
	ev_io io;               /* first: the callback gets &glue->io */
	ev_prepare prepare;
	ev_idle awake;          /* keeps libev from blocking after a prepare
				   that ran callbacks: it must come back */
	struct ev_loop *evloop;
	struct sw_loop *loop;
	int error;
	int dispatching;
};

static void stop(struct sw_ev *g)
{
	ev_io_stop(g->evloop, &g->io);
	ev_idle_stop(g->evloop, &g->awake);
	if (ev_is_active(&g->prepare)) {
		ev_ref(g->evloop); /* undo the ev_unref() of attach */
		ev_prepare_stop(g->evloop, &g->prepare);
	}
}

static void result(struct sw_ev *g, int r)
{
	if (r >= 0)
		return;
	if (r == -EBUSY) {
		/* The loop is in use further down this stack (a nested
		 * ev_run() from one of its callbacks): it is not ours to
		 * dispatch; the outer dispatch goes on when that returns. */
		return;
	}
	g->error = r;
	if (r == -ECHILD) {
		/* A forked child's copy: the loop is unusable here, and its
		 * epoll set (shared with the parent) would keep the ev_io
		 * readable for ever. */
		stop(g);
	}
}

static void on_readable(struct ev_loop *evloop, ev_io *w, int revents)
{
	struct sw_ev *g = (struct sw_ev *)w;

	(void)evloop;
	(void)revents;
	g->dispatching = 1;
	result(g, sw_loop_dispatch(g->loop));
	g->dispatching = 0;
}

static void on_prepare(struct ev_loop *evloop, ev_prepare *w, int revents)
{
	struct sw_ev *g = (struct sw_ev *)((char *)w -
					   offsetof(struct sw_ev, prepare));

	(void)evloop;
	(void)revents;
	int r;

	g->dispatching = 1;
	r = sw_loop_prepare(g->loop);
	g->dispatching = 0;
	result(g, r);
	/* Callbacks ran here (one may have failed), not from a libev event:
	 * without a pending watcher libev would now block as if nothing had
	 * happened (and an EVRUN_ONCE would not return). */
	if (r > 0 || (r < 0 && r != -EBUSY && r != -ECHILD))
		ev_idle_start(g->evloop, &g->awake);
}

static void on_awake(struct ev_loop *evloop, ev_idle *w, int revents)
{
	(void)revents;
	ev_idle_stop(evloop, w);
}

SW_EXPORT int sw_ev_attach(struct sw_loop *loop, struct ev_loop *evloop,
			   struct sw_ev **ret_glue)
{
	struct sw_ev *g;
	int fd;

	if (!loop || !evloop || !ret_glue)
		return -EINVAL;
	fd = sw_loop_get_fd(loop);
	if (fd < 0)
		return fd;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->evloop = evloop;
	g->loop = loop;
	ev_io_init(&g->io, on_readable, fd, EV_READ);
	ev_io_start(evloop, &g->io);
	ev_idle_init(&g->awake, on_awake);
	ev_prepare_init(&g->prepare, on_prepare);
	ev_prepare_start(evloop, &g->prepare);
	ev_unref(evloop); /* only the ev_io keeps ev_run() going */
	*ret_glue = g;
	return 0;
}

SW_EXPORT struct sw_ev *sw_ev_detach(struct sw_ev *g)
{
	if (!g)
		return NULL;
	if (g->dispatching)
		return g;
	stop(g);
	free(g);
	return NULL;
}

SW_EXPORT int sw_ev_take_error(struct sw_ev *g)
{
	int r;

	if (!g)
		return -EINVAL;
	r = g->error;
	g->error = 0;
	return r;
}

SW_EXPORT ev_io *sw_ev_watcher(struct sw_ev *g)
{
	return g ? &g->io : NULL;
}
