// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The libev glue, built against the installed packages only: the loop runs
 * inside libev's default loop, a stub reports three times, stalls, and its
 * callback sees the watchdog's kill.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stubwatch-ev.h>

#define REPORTS 3u

struct smoke {
	uint32_t reports;
	int killed;
	int failed;
};

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

static int on_event(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct smoke *s = ud;

	if (ev->type == SW_EV_REPORT) {
		uint32_t got = *(uint32_t *)sw_page_payload(sw_stub_page(stub));

		if (got != ++s->reports)
			s->failed = 1;
		return sw_stub_resume(stub);
	}
	s->killed = ev->type == SW_EV_KILL &&
		    ev->kill.reason == SW_KILL_STALL &&
		    WIFSIGNALED(ev->status) && WTERMSIG(ev->status) == SIGKILL;
	sw_stub_free(stub);
	ev_break(EV_DEFAULT, EVBREAK_ALL);
	return 0;
}

int main(void)
{
	struct sw_loop_opts lo = SW_LOOP_OPTS_INIT;
	struct sw_spawn_opts so = { .size = sizeof(so), .fn = stub_main };
	struct sw_loop *loop = NULL;
	struct sw_stub *stub = NULL;
	struct sw_ev *glue = NULL;
	struct smoke s = { 0 };
	int r;

	lo.tick_ns = 100000000ull;
	lo.stall_ticks = 2;
	if ((r = sw_loop_new(&lo, &loop)) < 0 ||
	    (r = sw_stub_spawn(loop, &so, &stub)) < 0 ||
	    (r = sw_stub_set_callback(stub, on_event, &s)) < 0 ||
	    (r = sw_ev_attach(loop, EV_DEFAULT, &glue)) < 0) {
		fprintf(stderr, "setup: %s\n", strerror(-r));
		return 1;
	}
	ev_run(EV_DEFAULT, 0);
	r = sw_ev_take_error(glue);
	sw_ev_detach(glue);
	sw_loop_free(loop);
	if (r < 0 || s.failed || !s.killed || s.reports != REPORTS) {
		fprintf(stderr, "expected a stall kill after %u reports, got "
			"%u reports, killed %d, error %d\n", REPORTS, s.reports,
			s.killed, r);
		return 1;
	}
	printf("smoke-ev: %u reports, then a stall killed in libev\n",
	       s.reports);
	return 0;
}
