// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The libev glue: one ev_io on the loop's epoll fd, dispatch on readable.
 *
 * A dispatch that a callback's error stopped leaves its remaining
 * completions queued inside the loop, where they do not make the epoll fd
 * readable again; an ev_idle brings the glue back to them on the next loop
 * iteration (not in the same one, so an ev_break() from the callback is
 * honoured first).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "stubwatch-ev.h"

#define SW_EXPORT __attribute__((visibility("default")))

struct sw_ev {
	ev_io io;               /* first: the callback gets &glue->io */
	ev_idle retry;          /* completions left by a stopped dispatch */
	struct ev_loop *evloop;
	struct sw_loop *loop;
	int error;
	int dispatching;
};

static void dispatch(struct sw_ev *g)
{
	int r;

	g->dispatching = 1;
	r = sw_loop_dispatch(g->loop);
	g->dispatching = 0;
	if (r >= 0) {
		ev_idle_stop(g->evloop, &g->retry);
		return;
	}
	g->error = r;
	if (r == -ECHILD) {
		/* A forked child's copy: the loop is unusable here, and its
		 * epoll set (shared with the parent) would keep the ev_io
		 * readable for ever. */
		ev_io_stop(g->evloop, &g->io);
		ev_idle_stop(g->evloop, &g->retry);
		return;
	}
	if (r == -EBUSY) {
		/* The loop is in use further down this stack (a nested
		 * ev_run() from one of its callbacks): it is not ours to
		 * dispatch; the outer dispatch goes on when that returns. */
		return;
	}
	/* A callback's error stopped the dispatch. */
	ev_idle_start(g->evloop, &g->retry);
}

static void on_readable(struct ev_loop *evloop, ev_io *w, int revents)
{
	(void)evloop;
	(void)revents;
	dispatch((struct sw_ev *)w);
}

static void on_retry(struct ev_loop *evloop, ev_idle *w, int revents)
{
	struct sw_ev *g = (struct sw_ev *)((char *)w - offsetof(struct sw_ev,
								 retry));

	(void)evloop;
	(void)revents;
	dispatch(g);
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
	ev_idle_init(&g->retry, on_retry);
	ev_io_start(evloop, &g->io);
	*ret_glue = g;
	return 0;
}

SW_EXPORT struct sw_ev *sw_ev_detach(struct sw_ev *g)
{
	if (!g)
		return NULL;
	if (g->dispatching)
		return g;
	ev_io_stop(g->evloop, &g->io);
	ev_idle_stop(g->evloop, &g->retry);
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
