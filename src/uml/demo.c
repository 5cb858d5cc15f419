// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * stubwatch-demo: a UML-style guest (the swuml machine) with one stub that
 * hijacks itself by blocking SIGALRM, caught by the loop's own watchdog.
 *
 * Default: 2 vCPU loops, 3 well-behaved stubs per vCPU (churn, CPU-bound,
 * mixed), one more stub that runs churn and hijacks itself (rt_sigreturn
 * with SIGALRM blocked, then spin) after 1 s; T = 1 s, N = 5; 10 s.
 * Shows a live status line per vCPU, then a report.  --driver chooses how
 * each vCPU waits: sw_stub_wait() (blocking), its own poll() and
 * sw_loop_dispatch() (dispatch), or its own libev loop (libev).
 *
 * This file reads the command line, plans the machine's stubs, queues the
 * events its vCPU threads send and runs the machine for the duration; what
 * is printed, and the verdict, are demo-report.c's.
 *
 * Exit status: 0 when the run is as designed (every hijack killed for a
 * stall N..N+1 ticks after the later of its last report and its last
 * resume, with SIGALRM seen blocked, no false kill, no unexpected exit,
 * other stubs running through the kill), 1 otherwise or on a runtime
 * error, 2 for a bad command line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"

#define PREEMPT_TARGET_NS 10000000ull /* ~10 ms, HZ = 100 */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stubwatch-demo [options]\n"
		"  --vcpus N         vCPU loops (threads), 1..64 (default 2)\n"
		"  --stubs N         well-behaved stubs per vCPU, 1..256 (default 3)\n"
		"  --tick-ms N       watchdog tick T in ms, 1..60000 (default 1000)\n"
		"  --stall-ticks N   kill after N..N+1 ticks of silence, 1..1000 (default 5)\n"
		"  --duration S      seconds to run, 0.1..86400 (default 10)\n"
		"  --hijack KIND     none|sigalrm-spin|sigalrm-sleep|flood (default sigalrm-spin)\n"
		"  --hijack-after-ms N  when the extra stub hijacks itself, 0..3600000 (default 1000)\n"
		"  --driver NAME     how a vCPU waits: blocking (sw_stub_wait, default),\n"
		"                    dispatch (poll + sw_loop_dispatch, as an embedding host)\n"
		"                    or libev (each vCPU thread runs its own libev loop,\n"
		"                    with the vCPU's loop attached by sw_ev_attach)\n"
		"%s"
		"  --poll on|off     adaptive polling on both ends (SW_LOOP_ADAPTIVE_POLL):\n"
		"                    a round trip across CPUs without a system call, for\n"
		"                    CPU time spent spinning (default off)\n"
		"  --json            one JSON object per line (spawn, kill, exit, summary)\n"
		"  -h, --help        this text\n",
		swu_driver_check("libev") == 0
			? ""
			: "                    (libev: not in this build)\n");
}

static int bad_value(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "stubwatch-demo: %s: '%s' is not %s\n", opt, val, want);
	fprintf(stderr, "Try 'stubwatch-demo --help'.\n");
	return 2;
}

static int parse_driver(const char *s, const char **ret)
{
	int r = swu_driver_check(s);

	if (r == -EOPNOTSUPP) {
		fprintf(stderr, "stubwatch-demo: --driver: '%s' is not in this "
				"build: configure found no libev (install "
				"libev-dev and run configure again)\n", s);
		fprintf(stderr, "Try 'stubwatch-demo --help'.\n");
		return 2;
	}
	if (r < 0)
		return bad_value("--driver", s,
				 "a known driver (blocking, dispatch, libev)");
	*ret = s;
	return 0;
}

static int parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi,
		      unsigned *ret)
{
	char want[64], *end;
	unsigned long v;

	snprintf(want, sizeof(want), "an integer in %u..%u", lo, hi);
	errno = 0;
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return bad_value(opt, s, want);
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return bad_value(opt, s, want);
	*ret = (unsigned)v;
	return 0;
}

static int parse_seconds(const char *opt, const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	if (!*s || *s == ' ')
		return bad_value(opt, s, "a number of seconds in 0.1..86400");
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < 0.1 || v > 86400)
		return bad_value(opt, s, "a number of seconds in 0.1..86400");
	*ret = v;
	return 0;
}

/* The preemption tick: T / timer_div, the divisor closest above T / 10 ms
 * that divides T evenly, at least 2 (the loop's rule). */
static uint64_t preempt_for(uint64_t tick_ns)
{
	uint64_t div = (tick_ns + PREEMPT_TARGET_NS - 1) / PREEMPT_TARGET_NS;

	if (div < 2)
		div = 2;
	while (tick_ns % div)
		div++;
	return tick_ns / div;
}

static int parse_args(int argc, char **argv, struct cfg *c)
{
	enum { O_VCPUS = 256, O_STUBS, O_TICK, O_STALL, O_DURATION, O_HIJACK,
	       O_AFTER, O_DRIVER, O_POLL, O_JSON };
	static const struct option opts[] = {
		{ "vcpus", required_argument, NULL, O_VCPUS },
		{ "stubs", required_argument, NULL, O_STUBS },
		{ "tick-ms", required_argument, NULL, O_TICK },
		{ "stall-ticks", required_argument, NULL, O_STALL },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "hijack", required_argument, NULL, O_HIJACK },
		{ "hijack-after-ms", required_argument, NULL, O_AFTER },
		{ "driver", required_argument, NULL, O_DRIVER },
		{ "poll", required_argument, NULL, O_POLL },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o, r;

	*c = (struct cfg){ .vcpus = 2, .stubs = 3, .tick_ms = 1000,
			   .stall_ticks = 5, .duration_s = 10,
			   .hijack_after_ms = 1000,
			   .hijack = SWU_HIJACK_SPIN, .driver = "blocking" };
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		r = 0;
		switch (o) {
		case O_VCPUS:
			r = parse_uint("--vcpus", optarg, 1, 64, &c->vcpus);
			break;
		case O_STUBS:
			r = parse_uint("--stubs", optarg, 1, 256, &c->stubs);
			break;
		case O_TICK:
			r = parse_uint("--tick-ms", optarg, 1, 60000, &c->tick_ms);
			break;
		case O_STALL:
			r = parse_uint("--stall-ticks", optarg, 1, 1000,
				       &c->stall_ticks);
			break;
		case O_DURATION:
			r = parse_seconds("--duration", optarg, &c->duration_s);
			break;
		case O_HIJACK:
			if (swu_hijack_parse(optarg, &c->hijack) < 0)
				r = bad_value("--hijack", optarg,
					      "one of none, sigalrm-spin, "
					      "sigalrm-sleep, flood");
			break;
		case O_AFTER:
			r = parse_uint("--hijack-after-ms", optarg, 0, 3600000,
				       &c->hijack_after_ms);
			break;
		case O_DRIVER:
			r = parse_driver(optarg, &c->driver);
			break;
		case O_POLL:
			if (!strcmp(optarg, "on") || !strcmp(optarg, "off"))
				c->poll = !strcmp(optarg, "on");
			else
				r = bad_value("--poll", optarg, "on or off");
			break;
		case O_JSON:
			c->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			fprintf(stderr, "stubwatch-demo: %s needs a value\n",
				argv[optind - 1]);
			fprintf(stderr, "Try 'stubwatch-demo --help'.\n");
			return 2;
		default:
			fprintf(stderr, "stubwatch-demo: unknown option '%s'\n",
				argv[optind - 1]);
			fprintf(stderr, "Try 'stubwatch-demo --help'.\n");
			return 2;
		}
		if (r)
			return r;
	}
	if (optind < argc) {
		fprintf(stderr, "stubwatch-demo: unexpected argument '%s'\n",
			argv[optind]);
		fprintf(stderr, "Try 'stubwatch-demo --help'.\n");
		return 2;
	}
	c->preempt_ns = preempt_for((uint64_t)c->tick_ms * 1000000ull);
	if (c->hijack != SWU_HIJACK_NONE) {
		/* the kill comes by hijack-after + (N+1)*T; a tick more shows
		 * that the other stubs go on after it */
		double need = (c->hijack_after_ms +
			       (c->stall_ticks + 2.0) * c->tick_ms) / 1000.0;

		if (c->duration_s < need) {
			fprintf(stderr,
				"stubwatch-demo: --duration %g is too short "
				"for the hijack: its kill comes by "
				"--hijack-after-ms + (N+1)*T, and a tick more "
				"shows the others going on: give --duration "
				"%g or more, or --hijack none\n",
				c->duration_s, need);
			return 2;
		}
	}
	return 0;
}

/* ---- the machine's plan and events -------------------------------------- */

static void plan(unsigned vcpu, unsigned idx, struct swu_prog *p, void *ud)
{
	static const enum swu_prog_kind mix[] = { SWU_PROG_CHURN, SWU_PROG_CPU,
						  SWU_PROG_MIXED };
	const struct state *st = ud;
	unsigned base = st->c.vcpus * st->c.stubs;

	(void)vcpu;
	memset(p, 0, sizeof(*p));
	if (idx >= base) { /* the extra stub on vCPU 0: the hijacker */
		p->kind = SWU_PROG_CHURN;
		p->hijack = st->c.hijack;
		p->hijack_after_ns = (uint64_t)st->c.hijack_after_ms * 1000000ull;
		return;
	}
	p->kind = mix[idx % 3];
}

static void on_event(const struct swu_mevent *ev, void *ud)
{
	struct state *st = ud;
	struct evq *q = &st->q;

	pthread_mutex_lock(&q->lock);
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct swu_mevent *n = realloc(q->ev, cap * sizeof(*n));

		if (!n) {
			q->oom = true;
			pthread_mutex_unlock(&q->lock);
			return;
		}
		q->ev = n;
		q->cap = cap;
	}
	q->ev[q->n++] = *ev;
	pthread_mutex_unlock(&q->lock);
}
/* ---- main ---------------------------------------------------------------- */

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL); /* EINTR: the caller looks at the clock */
}

int main(int argc, char **argv)
{
	static struct state st;
	struct swu_machine_opts mo = { 0 };
	struct sigaction sa = { .sa_handler = on_interrupt };
	struct verdict v;
	uint64_t dur_ns, tick_view, next_view, now, elapsed;
	int r;

	r = parse_args(argc, argv, &st.c);
	if (r)
		return r;
	if (!swu_supported()) {
		fprintf(stderr, "stubwatch-demo: the UML model runs on x86_64 "
				"only\n");
		return 1;
	}
	pthread_mutex_init(&st.q.lock, NULL);
	st.tty = !st.c.json && isatty(STDOUT_FILENO);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	mo.vcpus = st.c.vcpus;
	mo.stubs_per_vcpu = st.c.stubs;
	mo.extra_stubs = st.c.hijack != SWU_HIJACK_NONE;
	mo.tick_ns = (uint64_t)st.c.tick_ms * 1000000ull;
	mo.stall_ticks = st.c.stall_ticks;
	mo.preempt_ns = st.c.preempt_ns;
	mo.driver = st.c.driver;
	mo.poll = st.c.poll;
	mo.plan = plan;
	mo.on_event = on_event;
	mo.userdata = &st;
	r = swu_machine_new(&mo, &st.m);
	if (r < 0) {
		fprintf(stderr, "stubwatch-demo: cannot set up the machine: %s\n",
			strerror(-r));
		return r == -EINVAL ? 2 : 1;
	}
	if (!st.c.json) {
		printf("stubwatch-demo: %u vCPU loops x %u stubs (churn, cpu, "
		       "mixed)",
		       st.c.vcpus, st.c.stubs);
		if (st.c.hijack != SWU_HIJACK_NONE)
			printf(" + 1 stub that hijacks itself (%s) after %.1f s",
			       swu_hijack_name(st.c.hijack),
			       st.c.hijack_after_ms / 1e3);
		printf("\n               tick %u ms, stall %u ticks (kill after "
		       "%.1f..%.1f s of silence), preemption every %.3g ms, "
		       "%.1f s, driver %s, polling %s\n",
		       st.c.tick_ms, st.c.stall_ticks,
		       st.c.tick_ms * st.c.stall_ticks / 1e3,
		       st.c.tick_ms * (st.c.stall_ticks + 1) / 1e3,
		       ms(st.c.preempt_ns), st.c.duration_s, st.c.driver,
		       st.c.poll ? "on" : "off");
		fflush(stdout);
	}

	r = swu_machine_start(st.m);
	demo_drain(&st);
	if (r < 0) {
		fprintf(stderr, "stubwatch-demo: cannot start: %s\n",
			strerror(-r));
		swu_machine_free(st.m);
		return 1;
	}

	dur_ns = (uint64_t)(st.c.duration_s * 1e9);
	tick_view = st.tty ? 250000000ull : 1000000000ull;
	next_view = tick_view;
	for (;;) {
		now = swu_machine_elapsed_ns(st.m);
		if (interrupted || now >= dur_ns)
			break;
		demo_drain(&st);
		if (now >= next_view) {
			demo_status(&st, now);
			next_view += tick_view;
		}
		sleep_ns(50000000ull);
	}
	/* Stop: each vCPU ends its quantum; one stuck on a hijacked stub
	 * waits for its watchdog, so keep the view going meanwhile. */
	swu_machine_request_stop(st.m);
	while (swu_machine_running(st.m)) {
		demo_drain(&st);
		now = swu_machine_elapsed_ns(st.m);
		if (now >= next_view) {
			demo_status(&st, now);
			next_view += tick_view;
		}
		sleep_ns(20000000ull);
	}
	elapsed = swu_machine_elapsed_ns(st.m);
	r = swu_machine_stop(st.m);
	demo_drain(&st);

	demo_judge(&st, elapsed, &v);
	if (r < 0)
		demo_add_why(&v, "machine error: %s", strerror(-r));
	if (st.q.oom)
		demo_add_why(&v, "events lost (out of memory)");
	if (st.c.json)
		demo_report_json(&st, elapsed, &v);
	else
		demo_report_human(&st, elapsed, &v);
	fflush(stdout);
	swu_machine_free(st.m);
	free(st.q.ev);
	pthread_mutex_destroy(&st.q.lock);
	return v.ok ? 0 : 1;
}
