/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch in a systemd sd-event loop: one I/O source on the loop's fd,
 * with a prepare callback.
 *
 *   sd_event_add_io(EPOLLIN)     sw_loop_dispatch() when the fd is
 *                                readable: reports, deaths, the
 *                                watchdog's kills;
 *   sd_event_source_set_prepare  sw_loop_prepare() before each time
 *                                sd-event polls: the stubs resumed since
 *                                are told the monitor may sleep, and those
 *                                that have answered are served at once.
 *                                After it every stub in flight wakes the
 *                                fd or is armed to, and the watchdog's
 *                                timer is in the loop's epoll set: the
 *                                host needs no timeout of its own for it.
 *
 * The host loop has work of its own, a timer every 20 ms.  The stub
 * answers three requests, each served by its callback (example.h), which
 * resumes it; then it stops answering.  sd-event goes on running its
 * timer, the watchdog kills the stub on time from the same
 * sd_event_loop(), and the callback checks the kill's window.
 *
 * Exit status: 0 if the kill came on time while the host loop kept
 * running, 1 otherwise, 77 if this kernel or sandbox cannot spawn a stub.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <sys/epoll.h>
#include <systemd/sd-event.h>

#include <stubwatch.h>

#include "example.h"

/* A negative return would only disable the source (sd-event's rule for
 * a failing handler): end the loop with the error instead. */
static int loop_result(sd_event_source *source, int r)
{
	if (r < 0)
		sd_event_exit(sd_event_source_get_event(source), r);
	return 0;
}

static int on_prepare(sd_event_source *source, void *userdata)
{
	struct example_host *h = userdata;

	return loop_result(source, sw_loop_prepare(h->loop));
}

static int on_io(sd_event_source *source, int fd, uint32_t revents,
		 void *userdata)
{
	struct example_host *h = userdata;

	return loop_result(source, sw_loop_dispatch(h->loop));
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	if (example_host_tick(userdata))
		return sd_event_exit(sd_event_source_get_event(source), 0);
	/* a time source fires once: set it again */
	sd_event_source_set_time_relative(source,
					  EXAMPLE_HOST_TICK_MS * 1000u);
	return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

int main(void)
{
	struct example_host h = { 0 };
	sd_event *e = NULL;
	sd_event_source *io = NULL, *timer = NULL;
	int r;

	r = example_host_start(&h);
	if (r)
		return r;
	r = sd_event_new(&e);
	if (r >= 0)
		r = sd_event_add_io(e, &io, sw_loop_get_fd(h.loop), EPOLLIN,
				    on_io, &h);
	if (r >= 0)
		r = sd_event_source_set_prepare(io, on_prepare);
	if (r >= 0)
		r = sd_event_add_time_relative(e, &timer, CLOCK_MONOTONIC,
					       EXAMPLE_HOST_TICK_MS * 1000u,
					       0, on_timer, &h);
	if (r >= 0)
		r = sd_event_loop(e); /* the exit code sd_event_exit() set */

	/* before sw_loop_free(): sd-event lets go of the loop's fd */
	sd_event_source_unref(timer);
	sd_event_source_unref(io);
	sd_event_unref(e);
	sw_loop_free(h.loop);
	return example_host_verdict(&h, r);
}
