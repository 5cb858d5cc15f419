// SPDX-License-Identifier: LGPL-2.1-or-later
/* The libev glue: one ev_io on the loop's epoll fd, dispatch on readable. */
#include <errno.h>
#include <stdlib.h>

#include "stubwatch-ev.h"

#define SW_EXPORT __attribute__((visibility("default")))

struct sw_ev {
	ev_io io;               /* first: the callback gets &glue->io */
	struct ev_loop *evloop;
	struct sw_loop *loop;
	int error;
	int dispatching;
};

static void on_readable(struct ev_loop *evloop, ev_io *w, int revents)
{
	struct sw_ev *g = (struct sw_ev *)w;
	int r;

	(void)evloop;
	(void)revents;
	g->dispatching = 1;
	r = sw_loop_dispatch(g->loop);
	g->dispatching = 0;
	if (r < 0)
		g->error = r;
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
