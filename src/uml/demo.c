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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uml/uml.h"

#define PREEMPT_TARGET_NS 10000000ull /* ~10 ms, HZ = 100 */
#define MAX_KILLS         64

struct cfg {
	unsigned vcpus, stubs, tick_ms, stall_ticks;
	double duration_s;
	unsigned hijack_after_ms;
	enum swu_hijack hijack;
	const char *driver;
	bool poll;
	bool json;
	uint64_t preempt_ns;
};

/* Events from the vCPU threads, handed to the main thread. */
struct evq {
	pthread_mutex_t lock;
	struct swu_mevent *ev;
	size_t n, cap;
	bool oom;
};

/*
 * When a kill came, judged as the watchdog counts: its silence starts at
 * the later of the stub's last valid report and its last resume.  The two
 * differ: the monitor resumes a stub only after serving its report, and a
 * preempted stub waits in the run queue for a vCPU before its next resume.
 */
struct kill_timing {
	uint64_t after_report_ns; /* from its last valid report to the kill */
	uint64_t after_resume_ns; /* from its last resume to the kill       */
	uint64_t silence_ns;      /* from the later of the two              */
	uint64_t monitor_late_ns; /* the monitor's own timer reads were late */
	uint64_t starved_ns;      /* run-queue wait credited to the stub    */
};

struct kill_rec {
	struct swu_mevent ev;
	struct kill_timing t;
};

struct state {
	struct cfg c;
	struct swu_machine *m;
	struct evq q;
	bool tty;
	unsigned drawn; /* live status lines on screen */
	uint64_t prev_hs[64];
	uint64_t prev_t;
	struct kill_rec kills[MAX_KILLS];
	unsigned nkills, false_kills, protocol_kills, unexpected_exits;
	unsigned exits;
};

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

/* ---- output -------------------------------------------------------------- */

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/*
 * The kill is the SIGKILL, as the library stamps it (CLOCK_MONOTONIC, as
 * are both stamps of the event); the window is judged from the later of
 * the stub's last report and its last resume, as the library counts it.
 */
static void kill_timing(const struct swu_mevent *e, struct kill_timing *t)
{
	uint64_t from = e->resume_at_ns > e->report_at_ns ? e->resume_at_ns
							  : e->report_at_ns;
	uint64_t end = e->report_at_ns + e->detect_ns;

	if (e->kill.killed_at_ns >= from)
		end = e->kill.killed_at_ns;
	t->monitor_late_ns = e->kill.monitor_late_ns;
	t->starved_ns = e->kill.starved_ns;
	t->after_report_ns = end - e->report_at_ns;
	t->after_resume_ns = e->resume_at_ns ? end - e->resume_at_ns
					     : t->after_report_ns;
	t->silence_ns = end - from;
}

static const char *reason_name(enum sw_kill_reason r)
{
	switch (r) {
	case SW_KILL_STALL:
		return "stall";
	case SW_KILL_PROTOCOL:
		return "protocol";
	case SW_KILL_USER:
		return "user";
	}
	return "?";
}

static const char *blocked_json(int b)
{
	return b < 0 ? "null" : b ? "true" : "false";
}

static void erase_status(struct state *st)
{
	for (; st->drawn; st->drawn--)
		fputs("\033[1A\033[2K", stdout);
}

static void print_event_json(const struct swu_mevent *e)
{
	struct kill_timing t;

	printf("{\"event\":\"%s\",\"t_ms\":%.1f,\"vcpu\":%u,\"stub\":%u,"
	       "\"pid\":%d,\"program\":\"%s\",\"hijack\":\"%s\"",
	       e->type == SWU_ME_SPAWN ? "spawn"
	       : e->type == SWU_ME_KILL ? "kill"
					: "exit",
	       ms(e->t_ns), e->vcpu, e->stub, (int)e->pid,
	       swu_prog_name(e->prog.kind), swu_hijack_name(e->prog.hijack));
	if (e->type == SWU_ME_KILL) {
		kill_timing(e, &t);
		printf(",\"reason\":\"%s\",\"detect_ms\":%.1f,"
		       "\"detect_resume_ms\":%.1f,\"monitor_late_ms\":%.1f,"
		       "\"starved_ms\":%.1f,\"silent_ms\":%.1f,"
		       "\"stall_ticks\":%u,\"sigalrm_blocked\":%s,"
		       "\"sigblk\":\"%016llx\",\"state\":\"%c\",\"cpu_ms\":%.1f,"
		       "\"stall_window_ms\":%.1f,\"stall_run_ms\":%.1f,"
		       "\"stall_wait_ms\":%.1f,"
		       "\"false_kill\":%s,\"others_alive\":%u,"
		       "\"others_progressed\":%u,\"monitor_wait_ms\":%.1f",
		       reason_name(e->kill.reason), ms(t.after_report_ns),
		       ms(t.after_resume_ns), ms(t.monitor_late_ns),
		       ms(t.starved_ns), ms(e->kill.silent_ns),
		       e->kill.stall_ticks,
		       blocked_json(e->kill.sigalrm_blocked),
		       (unsigned long long)e->kill.sigblk, e->kill.state,
		       ms(e->kill.cpu_ns), ms(e->kill.stall_window_ns),
		       ms(e->kill.stall_run_ns), ms(e->kill.stall_wait_ns),
		       e->false_kill ? "true" : "false",
		       e->others_alive, e->others_progressed,
		       ms(e->monitor_wait_ns));
	} else if (e->type == SWU_ME_EXIT) {
		if (WIFEXITED(e->status))
			printf(",\"exit_code\":%d", WEXITSTATUS(e->status));
		else
			printf(",\"signal\":%d", WTERMSIG(e->status));
	}
	puts("}");
}

static void print_event_human(const struct state *st,
			      const struct swu_mevent *e)
{
	const char *prog = swu_prog_name(e->prog.kind);
	struct kill_timing t;
	char what[96];

	if (e->prog.hijack != SWU_HIJACK_NONE)
		snprintf(what, sizeof(what), "%s, hijacks itself: %s", prog,
			 swu_hijack_name(e->prog.hijack));
	else
		snprintf(what, sizeof(what), "%s", prog);

	switch (e->type) {
	case SWU_ME_SPAWN:
		printf("%7.3f s  spawn  stub %-3u pid %-7d vcpu%u  %s\n",
		       ms(e->t_ns) / 1e3, e->stub, (int)e->pid, e->vcpu, what);
		break;
	case SWU_ME_EXIT:
		if (WIFEXITED(e->status))
			printf("%7.3f s  exit   stub %-3u pid %-7d vcpu%u  %s: "
			       "status %d\n",
			       ms(e->t_ns) / 1e3, e->stub, (int)e->pid, e->vcpu,
			       what, WEXITSTATUS(e->status));
		else
			printf("%7.3f s  exit   stub %-3u pid %-7d vcpu%u  %s: "
			       "signal %d\n",
			       ms(e->t_ns) / 1e3, e->stub, (int)e->pid, e->vcpu,
			       what, WTERMSIG(e->status));
		break;
	case SWU_ME_KILL:
		kill_timing(e, &t);
		printf("%7.3f s  KILL   stub %-3u pid %-7d vcpu%u  %s\n"
		       "           reason %s, %.3f s after its last resume "
		       "(%.3f s after its last valid report; watchdog: %u "
		       "ticks, %.3f s silent)\n"
		       "           SIGALRM blocked: %s (SigBlk %016llx), state %c, "
		       "%.2f s CPU (%.2f s ran, %.2f s waited for a CPU in "
		       "the stall's last %.2f s); %u/%u other stubs ran "
		       "during the stall%s\n",
		       ms(e->t_ns) / 1e3, e->stub, (int)e->pid, e->vcpu, what,
		       reason_name(e->kill.reason), ms(t.after_resume_ns) / 1e3,
		       ms(t.after_report_ns) / 1e3, e->kill.stall_ticks,
		       ms(e->kill.silent_ns) / 1e3,
		       e->kill.sigalrm_blocked < 0 ? "n/a"
		       : e->kill.sigalrm_blocked   ? "yes"
						   : "no",
		       (unsigned long long)e->kill.sigblk, e->kill.state,
		       ms(e->kill.cpu_ns) / 1e3,
		       ms(e->kill.stall_run_ns) / 1e3,
		       ms(e->kill.stall_wait_ns) / 1e3,
		       ms(e->kill.stall_window_ns) / 1e3, e->others_progressed,
		       e->others_alive, e->false_kill ? "  ** FALSE KILL **" : "");
		break;
	}
	(void)st;
}

static void account(struct state *st, const struct swu_mevent *e)
{
	if (e->type == SWU_ME_KILL) {
		if (st->nkills < MAX_KILLS) {
			struct kill_rec *k = &st->kills[st->nkills];

			k->ev = *e;
			kill_timing(e, &k->t);
		}
		st->nkills++;
		if (e->false_kill)
			st->false_kills++;
		if (e->kill.reason == SW_KILL_PROTOCOL)
			st->protocol_kills++;
	} else if (e->type == SWU_ME_EXIT) {
		st->exits++;
		/* the demo's programs run for ever: any exit is a failure */
		st->unexpected_exits++;
	}
}

static void drain(struct state *st)
{
	struct swu_mevent *ev;
	size_t n;

	pthread_mutex_lock(&st->q.lock);
	ev = st->q.ev;
	n = st->q.n;
	st->q.ev = NULL;
	st->q.n = st->q.cap = 0;
	pthread_mutex_unlock(&st->q.lock);
	if (!n)
		return;
	if (!st->c.json && st->tty)
		erase_status(st);
	for (size_t i = 0; i < n; i++) {
		account(st, &ev[i]);
		if (st->c.json)
			print_event_json(&ev[i]);
		else
			print_event_human(st, &ev[i]);
	}
	free(ev);
	fflush(stdout);
}

static void status(struct state *st, uint64_t now_rel)
{
	double dt = (double)(now_rel - st->prev_t) / 1e9;

	if (st->c.json)
		return;
	if (st->tty)
		erase_status(st);
	for (unsigned i = 0; i < st->c.vcpus; i++) {
		struct swu_vcpu_stats vs;
		struct swu_stub_stats ss;
		uint64_t d;

		swu_machine_vcpu_stats(st->m, i, &vs);
		d = vs.handshakes - st->prev_hs[i];
		st->prev_hs[i] = vs.handshakes;
		printf("%7.3f s  vcpu%-2u %9.0f handshakes/s  stubs alive %u  ",
		       (double)now_rel / 1e9, i,
		       dt > 0 ? (double)d / dt : 0.0, vs.spawned_alive);
		if (vs.running_stub >= 0 &&
		    swu_machine_stub_stats(st->m, (unsigned)vs.running_stub,
					   &ss) == 0) {
			if (vs.running_silent_ns > 100000000ull)
				printf("WAITING on stub %d (pid %d, %s): silent "
				       "%.1f s",
				       vs.running_stub, (int)ss.pid,
				       swu_prog_name(ss.prog.kind),
				       (double)vs.running_silent_ns / 1e9);
			else
				printf("running stub %d (%s)", vs.running_stub,
				       swu_prog_name(ss.prog.kind));
		} else {
			printf("idle");
		}
		putchar('\n');
		st->drawn++;
	}
	if (!st->tty)
		st->drawn = 0;
	st->prev_t = now_rel;
	fflush(stdout);
}

/* ---- the report ---------------------------------------------------------- */

struct verdict {
	bool ok;
	uint64_t handshakes, syscalls, preempts;
	unsigned alive, ran_after_kill;
	char why[256];
};

static void add_why(struct verdict *v, const char *fmt, ...)
{
	size_t len = strlen(v->why);
	va_list ap;

	v->ok = false;
	if (len && len + 2 < sizeof(v->why)) {
		strcpy(v->why + len, "; ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(v->why + len, sizeof(v->why) - len, fmt, ap);
	va_end(ap);
}

static void judge(struct state *st, uint64_t elapsed, struct verdict *v)
{
	const struct cfg *c = &st->c;
	uint64_t t_ns = (uint64_t)c->tick_ms * 1000000ull;
	uint64_t lo = t_ns * c->stall_ticks, hi = t_ns * (c->stall_ticks + 1);
	uint64_t last_kill = 0;
	unsigned hijack_kills = 0;

	memset(v, 0, sizeof(*v));
	v->ok = true;
	for (unsigned i = 0; i < c->vcpus; i++) {
		struct swu_vcpu_stats vs;

		swu_machine_vcpu_stats(st->m, i, &vs);
		v->handshakes += vs.handshakes;
		v->syscalls += vs.syscalls;
		v->preempts += vs.preempts;
		if (vs.error)
			add_why(v, "vcpu%u failed: %s", i, strerror(-vs.error));
	}
	for (unsigned i = 0; i < st->nkills && i < MAX_KILLS; i++) {
		const struct swu_mevent *e = &st->kills[i].ev;
		const struct kill_timing *t = &st->kills[i].t;
		uint64_t late = t->monitor_late_ns + t->starved_ns;

		if (e->false_kill)
			continue;
		hijack_kills++;
		if (e->t_ns > last_kill)
			last_kill = e->t_ns;
		/* never early; late only by what the library owns up to */
		if (t->silence_ns < lo || t->silence_ns > hi + late)
			add_why(v, "pid %d detected %.3f s after its last "
				   "resume, not in %.3f..%.3f s (+%.3f s late)",
				(int)e->pid, ms(t->silence_ns) / 1e3,
				ms(lo) / 1e3, ms(hi) / 1e3, ms(late) / 1e3);
		if (e->kill.sigalrm_blocked != 1)
			add_why(v, "pid %d: SIGALRM not seen blocked", (int)e->pid);
		if (c->vcpus > 1 && e->others_progressed < e->others_alive)
			add_why(v, "only %u/%u other stubs ran during the stall",
				e->others_progressed, e->others_alive);
	}
	if (st->false_kills)
		add_why(v, "%u false kill(s)", st->false_kills);
	if (st->unexpected_exits)
		add_why(v, "%u unexpected exit(s)", st->unexpected_exits);
	if (c->hijack != SWU_HIJACK_NONE && !hijack_kills &&
	    elapsed > (uint64_t)c->hijack_after_ms * 1000000ull + hi)
		add_why(v, "the hijacked stub was not killed");
	for (unsigned i = 0; i < swu_machine_nstubs(st->m); i++) {
		struct swu_stub_stats ss;

		swu_machine_stub_stats(st->m, i, &ss);
		if (!ss.alive || ss.prog.hijack != SWU_HIJACK_NONE)
			continue;
		v->alive++;
		if (!last_kill || ss.last_report_ns > last_kill)
			v->ran_after_kill++;
	}
	if (last_kill && v->ran_after_kill < v->alive)
		add_why(v, "only %u/%u stubs ran after the kill",
			v->ran_after_kill, v->alive);
}

static void report_human(struct state *st, uint64_t elapsed,
			 const struct verdict *v)
{
	const struct cfg *c = &st->c;
	double secs = (double)elapsed / 1e9;

	printf("\n== stubwatch-demo report ==\n");
	printf("run           %.2f s, %u vCPUs, %u stubs, tick %u ms, %u stall "
	       "ticks, preemption every %.3g ms, driver %s, polling %s\n",
	       secs, c->vcpus, swu_machine_nstubs(st->m), c->tick_ms,
	       c->stall_ticks, ms(c->preempt_ns), c->driver,
	       c->poll ? "on" : "off");
	printf("handshakes    %llu (%.0f/s): %llu served syscalls, %llu "
	       "preemptions\n",
	       (unsigned long long)v->handshakes,
	       secs > 0 ? (double)v->handshakes / secs : 0.0,
	       (unsigned long long)v->syscalls, (unsigned long long)v->preempts);
	for (unsigned i = 0; i < c->vcpus; i++) {
		struct swu_vcpu_stats vs;

		swu_machine_vcpu_stats(st->m, i, &vs);
		printf("  vcpu%-2u      %llu handshakes in %llu quanta, %llu "
		       "kill(s)\n",
		       i, (unsigned long long)vs.handshakes,
		       (unsigned long long)vs.quanta,
		       (unsigned long long)vs.kills);
	}
	printf("kills         %u\n", st->nkills);
	for (unsigned i = 0; i < st->nkills && i < MAX_KILLS; i++) {
		const struct swu_mevent *e = &st->kills[i].ev;
		const struct kill_timing *t = &st->kills[i].t;

		printf("  pid %d (stub %u, %s, hijack %s) on vcpu%u: %s\n"
		       "    detected %.3f s after its last resume (%.3f s after "
		       "its last valid report); expected %.3f..%.3f s; "
		       "watchdog counted %u ticks\n",
		       (int)e->pid, e->stub, swu_prog_name(e->prog.kind),
		       swu_hijack_name(e->prog.hijack), e->vcpu,
		       reason_name(e->kill.reason), ms(t->after_resume_ns) / 1e3,
		       ms(t->after_report_ns) / 1e3,
		       c->tick_ms * c->stall_ticks / 1e3,
		       c->tick_ms * (c->stall_ticks + 1) / 1e3,
		       e->kill.stall_ticks);
		if (t->monitor_late_ns)
			printf("    the monitor itself was %.1f ms late\n",
			       ms(t->monitor_late_ns));
		if (t->starved_ns)
			printf("    %.1f ms of run-queue wait were credited to "
			       "the stub\n",
			       ms(t->starved_ns));
		printf("    the vCPU thread waited %.3f s for a CPU meanwhile\n"
		       "    SIGALRM blocked: %s (SigBlk %016llx), state %c, "
		       "%.2f s CPU at the kill\n",
		       ms(e->monitor_wait_ns) / 1e3,
		       e->kill.sigalrm_blocked < 0 ? "n/a"
		       : e->kill.sigalrm_blocked   ? "yes"
						   : "no",
		       (unsigned long long)e->kill.sigblk, e->kill.state,
		       ms(e->kill.cpu_ns) / 1e3);
		if (e->kill.stall_window_ns)
			printf("    in the last %.2f s of the stall it ran %.2f s "
			       "and waited %.2f s for a CPU\n",
			       ms(e->kill.stall_window_ns) / 1e3,
			       ms(e->kill.stall_run_ns) / 1e3,
			       ms(e->kill.stall_wait_ns) / 1e3);
		printf("    other stubs: %u/%u made handshakes during the "
		       "stall%s\n",
		       e->others_progressed, e->others_alive,
		       c->vcpus == 1 ? " (one vCPU: they wait for it)" : "");
	}
	printf("false kills   %u\n", st->false_kills);
	printf("exits         %u\n", st->exits);
	printf("stubs alive   %u well-behaved, %u made handshakes after the "
	       "last kill\n",
	       v->alive, v->ran_after_kill);
	printf("verdict       %s%s%s\n", v->ok ? "OK" : "FAIL",
	       v->ok ? "" : ": ", v->why);
}

static void report_json(struct state *st, uint64_t elapsed,
			const struct verdict *v)
{
	const struct cfg *c = &st->c;

	printf("{\"event\":\"summary\",\"vcpus\":%u,\"stubs\":%u,"
	       "\"stubs_total\":%u,\"tick_ms\":%u,\"stall_ticks\":%u,"
	       "\"preempt_ms\":%.3f,\"duration_s\":%.3f,\"driver\":\"%s\","
	       "\"poll\":%s,\"hijack\":\"%s\",\"handshakes\":%llu,\"syscalls\":%llu,"
	       "\"preempts\":%llu,\"false_kills\":%u,\"protocol_kills\":%u,"
	       "\"exits\":%u,\"kills\":[",
	       c->vcpus, c->stubs, swu_machine_nstubs(st->m), c->tick_ms,
	       c->stall_ticks, ms(c->preempt_ns), (double)elapsed / 1e9,
	       c->driver, c->poll ? "true" : "false",
	       swu_hijack_name(c->hijack), (unsigned long long)v->handshakes,
	       (unsigned long long)v->syscalls,
	       (unsigned long long)v->preempts, st->false_kills,
	       st->protocol_kills, st->exits);
	for (unsigned i = 0; i < st->nkills && i < MAX_KILLS; i++) {
		const struct swu_mevent *e = &st->kills[i].ev;
		const struct kill_timing *t = &st->kills[i].t;

		printf("%s{\"pid\":%d,\"vcpu\":%u,\"reason\":\"%s\","
		       "\"detect_ms\":%.1f,\"detect_resume_ms\":%.1f,"
		       "\"monitor_late_ms\":%.1f,\"starved_ms\":%.1f,"
		       "\"sigalrm_blocked\":%s,"
		       "\"state\":\"%c\",\"hijack\":\"%s\",\"false_kill\":%s}",
		       i ? "," : "", (int)e->pid, e->vcpu,
		       reason_name(e->kill.reason), ms(t->after_report_ns),
		       ms(t->after_resume_ns), ms(t->monitor_late_ns),
		       ms(t->starved_ns),
		       blocked_json(e->kill.sigalrm_blocked), e->kill.state,
		       swu_hijack_name(e->prog.hijack),
		       e->false_kill ? "true" : "false");
	}
	printf("],\"ok\":%s}\n", v->ok ? "true" : "false");
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
	drain(&st);
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
		drain(&st);
		if (now >= next_view) {
			status(&st, now);
			next_view += tick_view;
		}
		sleep_ns(50000000ull);
	}
	/* Stop: each vCPU ends its quantum; one stuck on a hijacked stub
	 * waits for its watchdog, so keep the view going meanwhile. */
	swu_machine_request_stop(st.m);
	while (swu_machine_running(st.m)) {
		drain(&st);
		now = swu_machine_elapsed_ns(st.m);
		if (now >= next_view) {
			status(&st, now);
			next_view += tick_view;
		}
		sleep_ns(20000000ull);
	}
	elapsed = swu_machine_elapsed_ns(st.m);
	r = swu_machine_stop(st.m);
	drain(&st);

	judge(&st, elapsed, &v);
	if (r < 0)
		add_why(&v, "machine error: %s", strerror(-r));
	if (st.q.oom)
		add_why(&v, "events lost (out of memory)");
	if (st.c.json)
		report_json(&st, elapsed, &v);
	else
		report_human(&st, elapsed, &v);
	fflush(stdout);
	swu_machine_free(st.m);
	free(st.q.ev);
	pthread_mutex_destroy(&st.q.lock);
	return v.ok ? 0 : 1;
}
