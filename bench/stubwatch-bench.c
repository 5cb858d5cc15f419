/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch-bench: does supervising stubs from the wait itself cost anything?
 *
 * In one process run, with the same stub code and the same CPU pinning for
 * every variant, and the variants alternated over repetitions (A B C, B C A,
 * C A B, ...) because this machine is noisy:
 *
 *   latency   handshake round trips, p50 .. max, per variant, same CPU and
 *             cross CPU; ratios against futex per repetition (median and
 *             spread);
 *   syscalls  per round trip, monitor thread and stub process separately,
 *             counted by the kernel (perf raw_syscalls:sys_enter);
 *   detect    stall detection: last report -> SIGKILL sent (perf
 *             signal:signal_generate) and -> the wait returning, reaped;
 *   detect-load  stall-kill lateness past N*T, thread-wd against
 *             stubwatch: quiet, beside two CPU hogs, and with 1,000 busy
 *             stubs in the same loop;
 *   scale     1 .. 10,000 stubs in one loop (one active), 1 .. 8 vCPU loops;
 *             memory and fds per stub;
 *   spawn     sw_stub_spawn() to the first report and through
 *             sw_stub_free(), plain against SW_SPAWN_PIDNS.
 *
 * Human table by default; --json prints one object per line; --out DIR also
 * writes DIR/results.jsonl, DIR/results.md and DIR/latency.dat (for
 * bench/latency.gp).  bench/README.md explains every number.
 *
 * This file parses the options and runs the phases in order; each phase is
 * a file of its own (phase.h lists them), report.c writes the output.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "phase.h"

const char *const pin_names[NPIN] = { "same", "cross" };

struct bench_opts o = { .variant = -1, .cpu_a = -1, .cpu_b = -1,
	/* Busy stubs sleep 2..38 ms: 1,000 of them ask ~50,000 round trips
	 * a second of one monitor, and each is silent well under N*T. */
	.dl_busy_min_us = 2000, .dl_busy_max_us = 38000 };

int ncpus_allowed;
int cpus_allowed[CPU_SETSIZE];

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stubwatch-bench [options]\n"
		"  --quick          short run for CI (< 45 s)\n"
		"  --json           one JSON object per line instead of tables\n"
		"  --out DIR        also write DIR/results.{jsonl,md,txt} and "
		"DIR/latency.dat\n"
		"  --variant V      only latency of V (futex, thread-wd, "
		"stubwatch, stubwatch-poll, stubwatch-ev, floor)\n"
		"  --variants A,B   only these variants, every phase and rep\n"
		"  --n N            round trips per run\n"
		"  --reps R         repetitions (variants alternate)\n"
		"  --warmup W       untimed round trips before each run\n"
		"  --slice K        latency: variants take turns every K round trips\n"
		"  --pin same|cross|both\n"
		"  --cpus A,B       monitor CPU A; cross-CPU stub on B\n"
		"  --only LIST      phases: latency,syscalls,detect,"
		"detect-load,scale,spawn,poll\n"
		"  --kills K        detect-load: stalls per variant and "
		"condition\n"
		"  --busy-sleep A,B detect-load: busy stubs sleep A..B us "
		"before each report\n"
		"  --scale-max N    largest stub count for the scale runs\n"
		"  --strict         exit 3 when a target is missed\n");
}

static unsigned parse_phases(const char *s)
{
	unsigned ph = 0;
	char *dup = strdup(s), *tok, *save = NULL;

	for (tok = strtok_r(dup, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "latency"))
			ph |= PH_LATENCY;
		else if (!strcmp(tok, "syscalls"))
			ph |= PH_SYSCALLS;
		else if (!strcmp(tok, "detect"))
			ph |= PH_DETECT;
		else if (!strcmp(tok, "detect-load"))
			ph |= PH_DETECT_LOAD;
		else if (!strcmp(tok, "scale"))
			ph |= PH_SCALE;
		else if (!strcmp(tok, "spawn"))
			ph |= PH_SPAWN;
		else if (!strcmp(tok, "poll"))
			ph |= PH_POLL;
		else
			die("--only: unknown phase '%s'", tok);
	}
	free(dup);
	return ph;
}

static long parse_num(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		fprintf(stderr, "stubwatch-bench: %s: bad value '%s' (%ld..%ld)\n",
			opt, s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	enum { O_VARIANT = 256, O_N, O_REPS, O_WARMUP, O_PIN, O_CPUS, O_ONLY,
	       O_OUT, O_SCALE_MAX, O_STRICT, O_VARIANTS, O_KILLS,
	       O_BUSY_SLEEP, O_SLICE };
	static const struct option lopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "out", required_argument, NULL, O_OUT },
		{ "variant", required_argument, NULL, O_VARIANT },
		{ "variants", required_argument, NULL, O_VARIANTS },
		{ "n", required_argument, NULL, O_N },
		{ "reps", required_argument, NULL, O_REPS },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "slice", required_argument, NULL, O_SLICE },
		{ "pin", required_argument, NULL, O_PIN },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "only", required_argument, NULL, O_ONLY },
		{ "scale-max", required_argument, NULL, O_SCALE_MAX },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "kills", required_argument, NULL, O_KILLS },
		{ "busy-sleep", required_argument, NULL, O_BUSY_SLEEP },
		{ 0 },
	};
	long n = -1, reps = -1, warmup = -1, scale_max = -1, kills = -1,
	     slice = -1;
	size_t len = 0;
	int c;

	for (int i = 0; i < argc && len < sizeof(o.cmdline) - 1; i++)
		len += (size_t)snprintf(o.cmdline + len, sizeof(o.cmdline) - len,
					"%s%s", i ? " " : "",
					i ? argv[i] : "stubwatch-bench");
	o.pins = (1 << PIN_SAME) | (1 << PIN_CROSS);
	o.phases = PH_ALL;
	while ((c = getopt_long(argc, argv, "qjh", lopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			o.quick = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case O_OUT:
			o.out_dir = optarg;
			break;
		case O_VARIANT:
			o.variant = variant_by_name(optarg);
			if (o.variant < 0) {
				fprintf(stderr,
					"stubwatch-bench: --variant: unknown "
					"'%s'\n",
					optarg);
				exit(2);
			}
			break;
		case O_VARIANTS: {
			char *list = strdup(optarg), *tok, *save = NULL;

			for (tok = strtok_r(list, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				int v = variant_by_name(tok);

				if (v < 0) {
					fprintf(stderr,
						"stubwatch-bench: --variants: "
						"unknown '%s'\n",
						tok);
					exit(2);
				}
				o.vmask |= 1u << v;
			}
			free(list);
			break;
		}
		case O_N:
			n = parse_num("--n", optarg, 1, 100000000);
			break;
		case O_REPS:
			reps = parse_num("--reps", optarg, 1, MAX_REPS);
			break;
		case O_WARMUP:
			warmup = parse_num("--warmup", optarg, 0, 100000000);
			break;
		case O_SLICE:
			slice = parse_num("--slice", optarg, 1, 100000000);
			break;
		case O_PIN:
			if (!strcmp(optarg, "same"))
				o.pins = 1 << PIN_SAME;
			else if (!strcmp(optarg, "cross"))
				o.pins = 1 << PIN_CROSS;
			else if (!strcmp(optarg, "both"))
				o.pins = 3;
			else {
				fprintf(stderr, "stubwatch-bench: --pin: "
						"same, cross or both\n");
				exit(2);
			}
			break;
		case O_CPUS:
			if (sscanf(optarg, "%d,%d", &o.cpu_a, &o.cpu_b) != 2 ||
			    o.cpu_a < 0 || o.cpu_b < 0 || o.cpu_a == o.cpu_b) {
				fprintf(stderr, "stubwatch-bench: --cpus A,B: "
						"two different CPU numbers\n");
				exit(2);
			}
			break;
		case O_ONLY:
			o.phases = parse_phases(optarg);
			break;
		case O_SCALE_MAX:
			scale_max = parse_num("--scale-max", optarg, 1, 10000);
			break;
		case O_STRICT:
			o.strict = true;
			break;
		case O_KILLS:
			kills = parse_num("--kills", optarg, 1, 1000);
			break;
		case O_BUSY_SLEEP:
			if (sscanf(optarg, "%u,%u", &o.dl_busy_min_us,
				   &o.dl_busy_max_us) != 2 ||
			    o.dl_busy_min_us > o.dl_busy_max_us ||
			    o.dl_busy_max_us > 10000000) {
				fprintf(stderr, "stubwatch-bench: --busy-sleep "
						"A,B: microseconds, A <= B <= "
						"10000000\n");
				exit(2);
			}
			break;
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}

	o.n = o.quick ? 5000 : 30000;
	o.reps = o.quick ? 5 : 9;
	o.warmup = o.quick ? 500 : 2000;
	o.sc_n = o.quick ? 5000 : 20000;
	o.detect_stalls = o.quick ? 10 : 60;
	o.detect_defaults = o.quick ? 0 : 3;
	o.dl_kills = o.quick ? 10 : 40;
	o.scale_max = o.quick ? 1000 : 10000;
	o.scale_n = o.quick ? 3000 : 20000;
	o.scale_reps = o.quick ? 5 : 7;
	o.loops_n = o.quick ? 2000 : 10000;
	o.loops_reps = o.quick ? 3 : 5;
	if (o.variant >= 0) {
		/* One variant, for an outside counter: latency only. */
		o.phases = PH_LATENCY;
		o.reps = 1;
	}
	if (n > 0)
		o.n = o.sc_n = o.scale_n = o.loops_n = (size_t)n;
	if (reps > 0)
		o.reps = o.scale_reps = o.loops_reps = (int)reps;
	if (warmup >= 0)
		o.warmup = (size_t)warmup;
	if (slice > 0)
		o.slice = (size_t)slice;
	if (scale_max > 0)
		o.scale_max = (size_t)scale_max;
	if (kills > 0)
		o.dl_kills = (int)kills;
}

static void find_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		die("sched_getaffinity: %s", strerror(errno));
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			cpus_allowed[ncpus_allowed++] = i;
	if (o.cpu_a < 0) {
		o.cpu_a = cpus_allowed[0];
		o.cpu_b = ncpus_allowed > 1 ? cpus_allowed[1] : -1;
	} else if (!CPU_ISSET(o.cpu_a, &set) || !CPU_ISSET(o.cpu_b, &set)) {
		fprintf(stderr, "stubwatch-bench: --cpus: CPU not usable\n");
		exit(2);
	}
	if (o.cpu_b < 0 && (o.pins & (1 << PIN_CROSS))) {
		o.pins &= ~(1 << PIN_CROSS);
		skip("cross-CPU runs", "only one CPU is usable");
	}
}

int main(int argc, char **argv)
{
	int missed;

	if (argc == 2 && strcmp(argv[1], "--stub") == 0)
		return bench_stub_exec_main();
	parse_args(argc, argv);
	/* Names that let `perf stat --per-thread` tell the sides apart. */
	prctl(PR_SET_NAME, "sw-bench-mon", 0, 0, 0);
	/* A futex-variant monitor waits forever on a dead stub (that is the
	 * bug under study): never let the bench hang CI.  Stubs have
	 * PDEATHSIG and die with us. */
	alarm(o.quick ? 300 : 3600);
	find_cpus();
	header();

	if (o.phases & (PH_LATENCY | PH_SYSCALLS))
		open_pairs();
	if (o.phases & PH_LATENCY) {
		note("latency: %d reps x %zu round trips per variant and "
		     "pinning",
		     o.reps, o.n);
		run_latency();
		report_latency();
		latency_targets();
	}
	if (o.phases & PH_SYSCALLS) {
		note("syscalls per round trip");
		run_syscalls();
	}
	if (o.phases & (PH_LATENCY | PH_SYSCALLS))
		close_pairs();
	if (o.phases & PH_DETECT) {
		note("stall detection: %d stalls at T = 10 ms%s",
		     o.detect_stalls,
		     o.detect_defaults > 0 ?  ", then at the defaults (~7 s)"
					   : "");
		run_detect();
		report_detect();
	}
	if (o.phases & PH_DETECT_LOAD) {
		note("stall-kill lateness under load: %d stalls per variant, "
		     "quiet, beside %d CPU hogs, with %d busy stubs (~%d s)",
		     o.dl_kills, DL_HOGS, DL_BUSY_STUBS,
		     6 * o.dl_kills / 8 + 8);
		run_detect_load();
		report_detect_load();
	}
	if (o.phases & PH_SCALE) {
		note("scale: up to %zu stubs in one loop", o.scale_max);
		run_scale_stubs();
		report_scale_stubs();
		scale_stubs_free();
		note("scale: 1, 2, 4, 8 vCPU loops");
		run_scale_loops();
		report_scale_loops();
	}
	if (o.phases & PH_POLL) {
		note("adaptive polling: its CPU cost, and its tail beside CPU "
		     "hogs");
		run_poll_cost();
	}
	if (o.phases & PH_SPAWN) {
		note("spawn: plain against SW_SPAWN_PIDNS, %d cycles each",
		     o.quick ? 50 : 400);
		run_spawn();
		report_spawn();
	}
	missed = report_targets();
	write_outputs();
	return o.strict && missed ? 3 : 0;
}
