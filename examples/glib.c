/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch in a GLib main loop: a GSource of its own, since the loop
 * needs a hook right before the host sleeps, which g_unix_fd_add() has
 * not.
 *
 *   prepare   sw_loop_prepare(): the stubs resumed since the last prepare
 *             are told the monitor may sleep, and those that have answered
 *             already are served now, without a poll.  Then there is
 *             nothing to time: every stub in flight either wakes the loop's
 *             fd or is armed to, and the loop's watchdog timer is in its
 *             epoll set too, so the timeout is -1 (the fd alone wakes
 *             GLib, also for a stall kill) and prepare says "not ready".
 *   check     the fd is readable.
 *   dispatch  sw_loop_dispatch(): reports, deaths, the watchdog's kills.
 *
 * The host loop has work of its own, a timeout every 20 ms.  The stub
 * answers three requests, each served by its callback (example.h), which
 * resumes it; then it stops answering.  GLib goes on running its timeout,
 * the watchdog kills the stub on time from the same g_main_loop_run(), and
 * the callback checks the kill's window.
 *
 * Exit status: 0 if the kill came on time while the host loop kept
 * running, 1 otherwise, 77 if this kernel or sandbox cannot spawn a stub.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <glib.h>
#include <glib-unix.h>
#include <stdio.h>

#include <stubwatch.h>

#include "example.h"

struct sw_source {
	GSource base;
	struct sw_loop *loop;
	gpointer tag; /* of the loop's fd */
	int error;    /* the first one the loop returned */
};

static void keep_error(struct sw_source *s, int r)
{
	if (r < 0 && !s->error)
		s->error = r;
}

static gboolean sw_source_prepare(GSource *source, gint *timeout)
{
	struct sw_source *s = (struct sw_source *)source;

	/* before every poll GLib makes: the embedding rule of
	 * sw_loop_prepare() (include/stubwatch.h) */
	keep_error(s, sw_loop_prepare(s->loop));
	*timeout = -1;
	return FALSE;
}

static gboolean sw_source_check(GSource *source)
{
	struct sw_source *s = (struct sw_source *)source;

	return (g_source_query_unix_fd(source, s->tag) & G_IO_IN) != 0;
}

static gboolean sw_source_dispatch(GSource *source, GSourceFunc callback,
				   gpointer user_data)
{
	struct sw_source *s = (struct sw_source *)source;

	keep_error(s, sw_loop_dispatch(s->loop));
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs sw_source_funcs = {
	.prepare = sw_source_prepare,
	.check = sw_source_check,
	.dispatch = sw_source_dispatch,
};

/* A GSource for `loop`, attached to `ctx` (NULL: the default context). */
static struct sw_source *sw_source_new(struct sw_loop *loop,
				       GMainContext *ctx)
{
	GSource *source = g_source_new(&sw_source_funcs,
				       sizeof(struct sw_source));
	struct sw_source *s = (struct sw_source *)source;

	s->loop = loop;
	s->tag = g_source_add_unix_fd(source, sw_loop_get_fd(loop), G_IO_IN);
	g_source_set_name(source, "stubwatch");
	g_source_attach(source, ctx);
	return s;
}

struct host_timer {
	struct example_host *h;
	GMainLoop *main_loop;
};

static gboolean on_timeout(gpointer user_data)
{
	struct host_timer *t = user_data;

	if (example_host_tick(t->h))
		g_main_loop_quit(t->main_loop);
	return G_SOURCE_CONTINUE;
}

int main(void)
{
	struct example_host h = { 0 };
	struct host_timer t = { .h = &h };
	struct sw_source *s;
	guint timeout_id;
	int r;

	r = example_host_start(&h);
	if (r)
		return r;
	t.main_loop = g_main_loop_new(NULL, FALSE);
	s = sw_source_new(h.loop, NULL);
	timeout_id = g_timeout_add(EXAMPLE_HOST_TICK_MS, on_timeout, &t);

	g_main_loop_run(t.main_loop);

	g_source_remove(timeout_id);
	r = s->error;
	/* before sw_loop_free(): GLib lets go of the loop's fd */
	g_source_destroy(&s->base);
	g_source_unref(&s->base);
	g_main_loop_unref(t.main_loop);
	sw_loop_free(h.loop);
	return example_host_verdict(&h, r);
}
