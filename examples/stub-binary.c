/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A blocking monitor whose stubs are a separate program, examples/exec-stub,
 * exec'd with sw_spawn_opts.path instead of a function run in a clone.  The
 * stub binary can be anything that speaks the page protocol: it maps the
 * page from fd 3 and reports through fd 4 (see exec-stub.c).
 *
 * The first stub answers three requests and goes silent: the wait after
 * its last resume ends in a stall kill, whose window the program checks.
 * A second one answers three and exits 0, served by the same loop.
 *
 *   stub-binary [PATH]   PATH: the stub program (default: exec-stub
 *                        in the directory of this program)
 *
 * Exit status: 0 if the kill came on time and the second stub was served,
 * 1 otherwise, 77 if this kernel or sandbox cannot spawn a stub.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stubwatch.h>

#include "example.h"

static char stub_path[PATH_MAX];

static int spawn_exec(struct sw_loop *loop, const char *mode,
		      struct sw_stub **ret_stub)
{
	char *argv[] = { stub_path, (char *)mode, NULL };
	struct sw_spawn_opts so = {
		.size = sizeof(so),
		.path = stub_path,
		.argv = argv,
		.flags = SW_SPAWN_PDEATHSIG,
	};

	return sw_stub_spawn(loop, &so, ret_stub);
}

/* Serve until the stub's end; the clock around each resume, for the
 * kill's window.  Returns the last event. */
static int serve(struct sw_stub *stub, struct sw_event *ev,
		 unsigned *ret_reports, uint64_t *before, uint64_t *after)
{
	struct example_msg *m = sw_page_payload(sw_stub_page(stub));
	unsigned reports = 0;
	int r;

	for (r = sw_stub_wait(stub, ev); r == SW_EV_REPORT;
	     r = sw_stub_wait(stub, ev)) {
		if (m->ans != m->req + 1)
			return -1;
		m->req = ++reports * 10;
		*before = example_now_ns();
		r = sw_stub_resume(stub);
		*after = example_now_ns();
		if (r < 0)
			return r;
	}
	*ret_reports = reports;
	return r;
}

int main(int argc, char **argv)
{
	struct sw_loop *loop = NULL;
	struct sw_stub *stub = NULL;
	struct sw_event ev;
	uint64_t before = 0, after = 0;
	unsigned reports = 0;
	char self[PATH_MAX];
	ssize_t n;
	int r, failed = 0;

	if (argc > 1) {
		snprintf(stub_path, sizeof(stub_path), "%s", argv[1]);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0) {
			perror("/proc/self/exe");
			return 1;
		}
		self[n] = '\0';
		snprintf(stub_path, sizeof(stub_path), "%s/exec-stub",
			 dirname(self));
	}
	r = example_loop_new(&loop);
	if (r < 0) {
		fprintf(stderr, "sw_loop_new: %s\n", strerror(-r));
		return 1;
	}
	r = spawn_exec(loop, "stall", &stub);
	if (r < 0) {
		printf("cannot spawn %s: %s\n", stub_path, strerror(-r));
		sw_loop_free(loop);
		return example_spawn_unsupported(r) ? 77 : 1;
	}
	r = serve(stub, &ev, &reports, &before, &after);
	printf("stub 1 (%s stall): %u reports, then silent; ", stub_path,
	       reports);
	if (r != SW_EV_KILL || reports != EXAMPLE_REPORTS) {
		printf("ended in %d, not a kill after %u reports\n", r,
		       EXAMPLE_REPORTS);
		failed = 1;
	} else {
		failed |= example_check_kill(loop, before, after, &ev.kill) < 0;
	}
	sw_stub_free(stub);

	/* the same loop goes on with the next stub */
	r = spawn_exec(loop, "exit", &stub);
	if (r < 0) {
		fprintf(stderr, "sw_stub_spawn: %s\n", strerror(-r));
		failed = 1;
	} else {
		r = serve(stub, &ev, &reports, &before, &after);
		printf("stub 2 (%s exit): %u reports, then its own exit "
		       "(event %d, status %d)\n", stub_path, reports, r,
		       r == SW_EV_EXIT ? ev.status : -1);
		if (r != SW_EV_EXIT || !WIFEXITED(ev.status) ||
		    WEXITSTATUS(ev.status) != 0 || reports != EXAMPLE_REPORTS)
			failed = 1;
		sw_stub_free(stub);
	}
	sw_loop_free(loop);
	printf("%s\n", failed ? "FAIL" : "ok");
	return failed;
}
