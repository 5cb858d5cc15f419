/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch in a libuv loop: a uv_poll_t on the loop's fd and a
 * uv_prepare_t.
 *
 *   uv_poll_t (UV_READABLE)  sw_loop_dispatch(): reports, deaths, the
 *                            watchdog's kills;
 *   uv_prepare_t             sw_loop_prepare(), which libuv runs right
 *                            before it polls: the stubs resumed since are
 *                            told the monitor may sleep, and those that
 *                            have answered are served at once.  After it
 *                            every stub in flight wakes the fd or is armed
 *                            to, and the watchdog's timer is in the loop's
 *                            epoll set: libuv needs no timeout for it.
 *                            Unreferenced: it does not keep uv_run() alive
 *                            by itself, as the poll handle does.
 *
 * The host loop has work of its own, a uv_timer_t every 20 ms.  The stub
 * answers three requests, each served by its callback (example.h), which
 * resumes it; then it stops answering.  libuv goes on running its timer,
 * the watchdog kills the stub on time from the same uv_run(), and the
 * callback checks the kill's window.
 *
 * Exit status: 0 if the kill came on time while the host loop kept
 * running, 1 otherwise, 77 if this kernel or sandbox cannot spawn a stub.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <uv.h>

#include <stubwatch.h>

#include "example.h"

struct host {
	struct example_host h;
	uv_poll_t poll;
	uv_prepare_t prepare;
	uv_timer_t timer;
	int error; /* the first one the loop returned */
};

static void keep_error(struct host *host, int r)
{
	if (r < 0 && !host->error) {
		host->error = r;
		uv_stop(host->poll.loop);
	}
}

static void on_prepare(uv_prepare_t *handle)
{
	struct host *host = handle->data;

	keep_error(host, sw_loop_prepare(host->h.loop));
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
	struct host *host = handle->data;

	if (status < 0) /* libuv's own error, a negative errno as well */
		keep_error(host, status);
	else
		keep_error(host, sw_loop_dispatch(host->h.loop));
}

static void on_timer(uv_timer_t *handle)
{
	struct host *host = handle->data;

	if (example_host_tick(&host->h))
		uv_stop(handle->loop);
}

int main(void)
{
	uv_loop_t *uv = uv_default_loop();
	struct host host = { 0 };
	int r;

	r = example_host_start(&host.h);
	if (r)
		return r;
	host.poll.data = host.prepare.data = host.timer.data = &host;
	r = uv_poll_init(uv, &host.poll, sw_loop_get_fd(host.h.loop));
	if (r == 0)
		r = uv_poll_start(&host.poll, UV_READABLE, on_poll);
	if (r == 0)
		r = uv_prepare_init(uv, &host.prepare);
	if (r == 0)
		r = uv_prepare_start(&host.prepare, on_prepare);
	if (r == 0) {
		uv_unref((uv_handle_t *)&host.prepare);
		r = uv_timer_init(uv, &host.timer);
	}
	if (r == 0)
		r = uv_timer_start(&host.timer, on_timer, EXAMPLE_HOST_TICK_MS,
				   EXAMPLE_HOST_TICK_MS);
	if (r < 0) {
		fprintf(stderr, "libuv: %s\n", uv_strerror(r));
		sw_loop_free(host.h.loop);
		return 1;
	}

	uv_run(uv, UV_RUN_DEFAULT);

	/* before sw_loop_free(): libuv lets go of the loop's fd */
	uv_close((uv_handle_t *)&host.poll, NULL);
	uv_close((uv_handle_t *)&host.prepare, NULL);
	uv_close((uv_handle_t *)&host.timer, NULL);
	uv_run(uv, UV_RUN_DEFAULT); /* the close callbacks */
	uv_loop_close(uv);
	sw_loop_free(host.h.loop);
	return example_host_verdict(&host.h, host.error);
}
