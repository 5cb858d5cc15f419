/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A minimal blocking monitor: one loop, one stub at a time, served with
 * sw_stub_wait() and sw_stub_run() on the monitor's own thread.
 *
 * The first stub answers three requests and then stops answering, as a
 * hijacked stub would.  The wait that follows its last resume is also its
 * watchdog: it ends in SW_EV_KILL N*T to (N+1)*T later (plus what the loop
 * measured of its own lateness and of the stub's starvation), and the
 * program checks that window.  The same loop then serves a second stub to
 * its own exit: the monitor carries on.
 *
 * Exit status: 0 if the kill came on time and the second stub was served,
 * 1 otherwise, 77 if this kernel or sandbox cannot spawn a stub.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <stubwatch.h>

#include "example.h"

/* The stub that stalls.  Resume and wait apart, not sw_stub_run(): the
 * program reads the clock around each resume, to check the kill's timing
 * against the last one. */
static int serve_until_killed(struct sw_loop *loop, struct sw_stub *stub)
{
	struct example_msg *m = sw_page_payload(sw_stub_page(stub));
	struct sw_event ev;
	uint64_t before = 0, after = 0;
	unsigned reports = 0;
	int r;

	/* a spawned stub is in flight: its first report ends the first wait */
	for (r = sw_stub_wait(stub, &ev); r == SW_EV_REPORT;
	     r = sw_stub_wait(stub, &ev)) {
		if (m->ans != m->req + 1) {
			fprintf(stderr, "a wrong answer: %u to %u\n", m->ans,
				m->req);
			return -1;
		}
		reports++;
		m->req = reports * 10; /* the next request */
		before = example_now_ns();
		r = sw_stub_resume(stub);
		after = example_now_ns();
		if (r < 0) {
			fprintf(stderr, "sw_stub_resume: %s\n", strerror(-r));
			return -1;
		}
	}
	if (r != SW_EV_KILL) {
		fprintf(stderr, "the wait ended in %d, not a kill\n", r);
		return -1;
	}
	printf("stub 1: %u reports, then silent; ", reports);
	if (reports != EXAMPLE_REPORTS)
		return -1;
	return example_check_kill(loop, before, after, &ev.kill);
}

/* The stub that exits: sw_stub_run(), resume and wait in one call, the
 * fast round trip (a stub that answers before the monitor would sleep
 * costs no epoll_wait). */
static int serve_until_exit(struct sw_stub *stub)
{
	struct example_msg *m = sw_page_payload(sw_stub_page(stub));
	struct sw_event ev;
	unsigned reports = 0;
	int r;

	for (r = sw_stub_wait(stub, &ev); r == SW_EV_REPORT;
	     r = sw_stub_run(stub, &ev))
		m->req = ++reports;
	printf("stub 2: %u reports, then its own exit (event %d, status %d)\n",
	       reports, r, r == SW_EV_EXIT ? ev.status : -1);
	if (r != SW_EV_EXIT || !WIFEXITED(ev.status) ||
	    WEXITSTATUS(ev.status) != 0 || reports != EXAMPLE_REPORTS)
		return -1;
	return 0;
}

int main(void)
{
	struct sw_loop *loop = NULL;
	struct sw_stub *stub = NULL;
	int r, failed = 0;

	r = example_loop_new(&loop);
	if (r < 0) {
		fprintf(stderr, "sw_loop_new: %s\n", strerror(-r));
		return 1;
	}
	r = example_spawn(loop, EXAMPLE_STALLS, &stub);
	if (r < 0) {
		printf("cannot spawn a stub: %s\n", strerror(-r));
		sw_loop_free(loop);
		return example_spawn_unsupported(r) ? 77 : 1;
	}
	failed |= serve_until_killed(loop, stub) < 0;
	sw_stub_free(stub); /* killed, reaped: this frees the handle */

	/* the same loop on the same thread: the monitor carries on */
	r = example_spawn(loop, EXAMPLE_EXITS, &stub);
	if (r < 0) {
		fprintf(stderr, "sw_stub_spawn: %s\n", strerror(-r));
		failed = 1;
	} else {
		failed |= serve_until_exit(stub) < 0;
		sw_stub_free(stub);
	}
	sw_loop_free(loop);
	printf("%s\n", failed ? "FAIL" : "ok");
	return failed;
}
