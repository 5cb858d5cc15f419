/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the examples share: the stub they supervise and the check of its
 * kill.  Each example is about its host loop; this is the rest.
 *
 * The stub answers EXAMPLE_REPORTS requests (ans = req + 1), then goes silent,
 * as a hijacked stub would, or exits, as a well-behaved one does.
 *
 * The check of the stall kill: it came inside the window that
 * include/stubwatch.h promises, never a fixed slack.  With R the stub's
 * last resume (or continue) and N*T the stall limit:
 *
 *   N*T + starved_ns <= killed_at_ns - R
 *   killed_at_ns - R <= (N+1)*T + starved_ns + monitor_late_ns
 *
 * starved_ns is the time the stub was runnable with no CPU (or blocked in
 * the kernel), which comes off its silence; monitor_late_ns is how late
 * the monitor's own timer reads were.  Both are measured by the loop in
 * this very run, so the check holds on a loaded machine without widening
 * the lower bound.  R is known only between two clock reads around the
 * resume: the lower bound counts from the one before, the upper from the
 * one after.
 */
#ifndef EXAMPLES_EXAMPLE_H
#define EXAMPLES_EXAMPLE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stubwatch.h>

#define EXAMPLE_TICK_NS     (100 * 1000000ull) /* T: 100 ms, a short run */
#define EXAMPLE_STALL_TICKS 3u /* N: a silent stub dies 300..400 ms on   */
#define EXAMPLE_REPORTS     3u /* answers before the stub stops          */

/* The request/report protocol, in the page after its 64-byte header. */
struct example_msg {
	uint32_t req; /* monitor -> stub */
	uint32_t ans; /* stub -> monitor: req + 1 */
};

enum example_ending { EXAMPLE_STALLS, EXAMPLE_EXITS };

/* The stub, for sw_spawn_opts.fn with arg (void *)EXAMPLE_STALLS or
 * EXAMPLE_EXITS.  It runs in a raw clone of the monitor, so it makes only
 * async-signal-safe calls (pause() is one). */
static inline int example_stub(struct sw_page *page, void *arg)
{
	struct example_msg *m = sw_page_payload(page);

	for (unsigned i = 0; i < EXAMPLE_REPORTS; i++) {
		m->ans = m->req + 1;
		sw_stub_handshake(page); /* report, sleep until resumed */
	}
	if ((enum example_ending)(intptr_t)arg == EXAMPLE_EXITS)
		return 0;
	for (;;)
		pause(); /* silent from here on: the watchdog's business */
}

/* A loop with the examples' short watchdog. */
static inline int example_loop_new(struct sw_loop **ret_loop)
{
	struct sw_loop_opts lo = SW_LOOP_OPTS_INIT;

	lo.tick_ns = EXAMPLE_TICK_NS;
	lo.stall_ticks = EXAMPLE_STALL_TICKS;
	return sw_loop_new(&lo, ret_loop);
}

/* Spawn example_stub.  SW_SPAWN_PDEATHSIG: no orphan if the monitor dies. */
static inline int example_spawn(struct sw_loop *loop,
				enum example_ending ending,
				struct sw_stub **ret_stub)
{
	struct sw_spawn_opts so = {
		.size = sizeof(so),
		.fn = example_stub,
		.arg = (void *)(intptr_t)ending,
		.flags = SW_SPAWN_PDEATHSIG,
	};

	return sw_stub_spawn(loop, &so, ret_stub);
}

/* A spawn that fails because the kernel or a sandbox forbids it is a skip
 * (exit 77), not a failure of the example. */
static inline int example_spawn_unsupported(int r)
{
	return r == -ENOSYS || r == -EPERM;
}

/* CLOCK_MONOTONIC, the clock of sw_kill_info.killed_at_ns. */
static inline uint64_t example_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Returns 0 if the kill `k` of a stub resumed between `before` and `after`
 * is a stall kill inside the window, -1 (and says why) otherwise. */
static inline int example_check_kill(struct sw_loop *loop, uint64_t before,
				     uint64_t after,
				     const struct sw_kill_info *k)
{
	struct sw_loop_opts o = { .size = sizeof(o) };
	uint64_t min, max;

	if (sw_loop_get_opts(loop, &o) < 0 || k->reason != SW_KILL_STALL) {
		fprintf(stderr, "not a stall kill (reason %d)\n", k->reason);
		return -1;
	}
	min = o.stall_ticks * o.tick_ns + k->starved_ns;
	max = (o.stall_ticks + 1) * o.tick_ns + k->starved_ns +
	      k->monitor_late_ns;
	printf("killed %.1f ms after its last resume; the window "
	       "[%.1f, %.1f] ms: N*T %.0f ms, the stub starved %.1f ms, "
	       "the monitor late %.1f ms\n",
	       (double)(int64_t)(k->killed_at_ns - after) / 1e6,
	       (double)min / 1e6, (double)max / 1e6,
	       (double)(o.stall_ticks * o.tick_ns) / 1e6,
	       (double)k->starved_ns / 1e6, (double)k->monitor_late_ns / 1e6);
	if (k->killed_at_ns < before + min) {
		fprintf(stderr, "killed early: %.3f ms after the resume "
			"began\n",
			(double)(int64_t)(k->killed_at_ns - before) / 1e6);
		return -1;
	}
	if (k->killed_at_ns > after + max) {
		fprintf(stderr, "killed late: %.3f ms after the resume ended\n",
			(double)(k->killed_at_ns - after) / 1e6);
		return -1;
	}
	return 0;
}

/* ---- for the examples that embed the loop in a host main loop ---------- */

#define EXAMPLE_HOST_TICK_MS  20u  /* the host loop's own work: a timer    */
#define EXAMPLE_HOST_TICKS_MAX 250u /* 5 s of it: the example gives up     */

/* What a host loop's callbacks share. */
struct example_host {
	struct sw_loop *loop;
	unsigned reports;
	uint64_t before, after;  /* the clock around the stub's last resume */
	unsigned ticks;          /* runs of the host's own timer           */
	unsigned ticks_at_stall; /* ... at the last resume                 */
	unsigned ticks_at_kill;
	int killed, failed;
};

/* The stub's callback, run from sw_loop_dispatch() or sw_loop_prepare(),
 * so from inside the host loop: serve the report and resume the stub for
 * the next round trip; at its end, check the kill and free it. */
static inline int example_on_event(struct sw_stub *stub,
				   const struct sw_event *ev, void *userdata)
{
	struct example_host *h = userdata;
	struct example_msg *m = sw_page_payload(sw_stub_page(stub));
	int r;

	if (ev->type == SW_EV_REPORT) {
		if (m->ans != m->req + 1)
			h->failed = 1;
		m->req = ++h->reports * 10;
		h->ticks_at_stall = h->ticks;
		h->before = example_now_ns();
		r = sw_stub_resume(stub);
		h->after = example_now_ns();
		return r;
	}
	/* EXIT or KILL: the stub is reaped, or dead and reaped later */
	h->killed = 1;
	h->ticks_at_kill = h->ticks;
	if (ev->type != SW_EV_KILL) {
		fprintf(stderr, "the stub ended in %d, not a kill\n", ev->type);
		h->failed = 1;
	} else {
		printf("%u reports, then silent; ", h->reports);
		if (h->reports != EXAMPLE_REPORTS ||
		    example_check_kill(h->loop, h->before, h->after,
				       &ev->kill) < 0)
			h->failed = 1;
	}
	sw_stub_free(stub); /* safe from its own callback */
	return 0;
}

/* Create the loop and spawn the stalling stub with example_on_event as
 * its callback.  Returns 0, or the exit status to leave with (77: this
 * kernel or sandbox cannot spawn a stub). */
static inline int example_host_start(struct example_host *h)
{
	struct sw_stub *stub;
	int r;

	r = example_loop_new(&h->loop);
	if (r < 0) {
		fprintf(stderr, "sw_loop_new: %s\n", strerror(-r));
		return 1;
	}
	r = example_spawn(h->loop, EXAMPLE_STALLS, &stub);
	if (r < 0) {
		printf("cannot spawn a stub: %s\n", strerror(-r));
		h->loop = sw_loop_free(h->loop);
		return example_spawn_unsupported(r) ? 77 : 1;
	}
	/* in flight already: its first report runs the callback */
	sw_stub_set_callback(stub, example_on_event, h);
	return 0;
}

/* The host's own timer, run by the host loop: returns 1 once the host
 * should stop, a few runs after the kill (or when it gives up). */
static inline int example_host_tick(struct example_host *h)
{
	h->ticks++;
	return (h->killed && h->ticks >= h->ticks_at_kill + 3) ||
	       h->ticks >= EXAMPLE_HOST_TICKS_MAX;
}

/* After the host loop returned: the exit status.  `err` is the first
 * error the loop's dispatch or prepare returned in it (or the host's
 * own), or 0. */
static inline int example_host_verdict(struct example_host *h, int err)
{
	if (err < 0) {
		fprintf(stderr, "the host loop failed: %s\n",
			strerror(-err));
		h->failed = 1;
	}
	if (!h->killed) {
		fprintf(stderr, "no kill in %u host ticks\n", h->ticks);
		h->failed = 1;
	} else {
		printf("the host timer ran %u times during the stall and %u "
		       "after the kill\n", h->ticks_at_kill - h->ticks_at_stall,
		       h->ticks - h->ticks_at_kill);
		/* the host loop was not held up while the stub was silent */
		if (h->ticks_at_kill == h->ticks_at_stall)
			h->failed = 1;
	}
	printf("%s\n", h->failed ? "FAIL" : "ok");
	return h->failed;
}

#endif /* EXAMPLES_EXAMPLE_H */
