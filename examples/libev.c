/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch in a libev main loop, through include/stubwatch-ev.h: the glue
 * puts one ev_io on the loop's fd (sw_loop_dispatch() when it is readable)
 * and calls sw_loop_prepare() from an ev_prepare before libev sleeps.
 *
 * The host loop has work of its own, an ev_timer every 20 ms.  The stub
 * answers three requests, each served by its callback (example.h), which
 * resumes it; then it stops answering.  libev goes on running its timer,
 * the loop's watchdog kills the stub on time inside that same ev_run(),
 * and the callback checks the kill's window.  The timer runs a few more
 * times, and the program ends.
 *
 * Build against an installed stubwatch:
 *   cc libev.c $(pkg-config --cflags --libs stubwatch-ev)
 *
 * Exit status: 0 if the kill came on time while the host loop kept
 * running, 1 otherwise, 77 if this kernel or sandbox cannot spawn a stub.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ev.h>
#include <stdio.h>

#include <stubwatch-ev.h>

#include "example.h"

static void on_timer(struct ev_loop *evloop, ev_timer *w, int revents)
{
	if (example_host_tick(w->data))
		ev_break(evloop, EVBREAK_ALL);
}

int main(void)
{
	struct ev_loop *evloop = EV_DEFAULT;
	struct example_host h = { 0 };
	struct sw_ev *glue = NULL;
	ev_timer timer;
	int r;

	r = example_host_start(&h);
	if (r)
		return r;
	r = sw_ev_attach(h.loop, evloop, &glue);
	if (r < 0) {
		fprintf(stderr, "sw_ev_attach: %s\n", strerror(-r));
		sw_loop_free(h.loop); /* kills and reaps the stub */
		return 1;
	}
	ev_timer_init(&timer, on_timer, EXAMPLE_HOST_TICK_MS / 1e3,
		      EXAMPLE_HOST_TICK_MS / 1e3);
	timer.data = &h;
	ev_timer_start(evloop, &timer);

	ev_run(evloop, 0);

	ev_timer_stop(evloop, &timer);
	r = sw_ev_take_error(glue); /* a callback's error, kept by the glue */
	sw_ev_detach(glue); /* before sw_loop_free(): libev lets go of the fd */
	sw_loop_free(h.loop);
	return example_host_verdict(&h, r);
}
