// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Built against the installed packages only (pkg-config stubwatch): spawn a
 * stub, take three reports from it, let it stall, and see the watchdog kill
 * it.  A short tick (100 ms, 2 ticks) keeps the run well under a second.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stubwatch.h>

#define REPORTS 3u

static int stub_main(struct sw_page *page, void *arg)
{
	uint32_t *count = sw_page_payload(page);
	uint32_t i;

	(void)arg;
	for (i = 1; i <= REPORTS; i++) {
		*count = i;
		sw_stub_handshake(page);
	}
	for (;;)
		pause(); /* the stall: never reports again */
	return 0;
}

int main(void)
{
	struct sw_loop_opts lo = SW_LOOP_OPTS_INIT;
	struct sw_spawn_opts so = { .size = sizeof(so), .fn = stub_main };
	struct sw_loop *loop = NULL;
	struct sw_stub *stub = NULL;
	struct sw_event ev = { 0 };
	uint32_t reports = 0;
	int r;

	lo.tick_ns = 100000000ull;
	lo.stall_ticks = 2;
	r = sw_loop_new(&lo, &loop);
	if (r < 0) {
		fprintf(stderr, "sw_loop_new: %s\n", strerror(-r));
		return 1;
	}
	r = sw_stub_spawn(loop, &so, &stub);
	if (r < 0) {
		fprintf(stderr, "sw_stub_spawn: %s\n", strerror(-r));
		return 1;
	}
	for (r = sw_stub_wait(stub, &ev); r == SW_EV_REPORT;
	     r = sw_stub_run(stub, &ev)) {
		uint32_t got = *(uint32_t *)sw_page_payload(sw_stub_page(stub));

		if (got != ++reports) {
			fprintf(stderr, "report %u carried %u\n", reports, got);
			return 1;
		}
	}
	if (r != SW_EV_KILL || ev.kill.reason != SW_KILL_STALL ||
	    reports != REPORTS || !WIFSIGNALED(ev.status) ||
	    WTERMSIG(ev.status) != SIGKILL) {
		fprintf(stderr, "expected a stall kill after %u reports, got "
			"event %d (%s), %u reports, status %d\n", REPORTS, r,
			r < 0 ? strerror(-r) : "", reports, ev.status);
		return 1;
	}
	printf("smoke: %u reports, then a stall killed after %u ticks\n",
	       reports, ev.kill.stall_ticks);
	sw_stub_free(stub);
	sw_loop_free(loop);
	return 0;
}
