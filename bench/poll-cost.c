/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The poll phase: what adaptive polling (SW_LOOP_ADAPTIVE_POLL, both ends
 * spinning) costs and where it must not hurt.
 *
 *   CPU cost: a syscall-heavy stub (2 us of work between reports, as UML's
 *   syscall churn) and a CPU-bound one (1 ms of work), across CPUs, polling
 *   off (stubwatch) and on (stubwatch-poll), each for a fixed wall time:
 *   round trips per second, and the CPU time each side spent beyond the
 *   stub's own work, as a share of wall time.  What polling adds to that
 *   share is the time spent spinning.
 *
 *   Beside two CPU hogs: round trips of both, same CPU and across CPUs,
 *   alternating over repetitions; polling's p99 must be no worse than
 *   polling off's (a spin that delays the side it waits for would show).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "phase.h"

static const struct {
	const char *name;
	uint32_t work_ns;
} workloads[] = {
	{ "syscall-heavy", 2000 },
	{ "cpu-bound", 1000000 },
};
#define NWORK (int)(sizeof(workloads) / sizeof(workloads[0]))
static const int cost_variants[] = { V_STUBWATCH, V_STUBWATCH_POLL };
#define NCV 2

struct cost {
	bool ran;
	double rt_per_s;
	double mon_share;  /* monitor thread CPU / wall                  */
	double stub_share; /* stub CPU beyond its work / wall            */
};
static struct cost cost[NWORK][NCV];

static uint64_t cpu_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void measure_cost(int w, int vi, uint64_t wall_ns)
{
	struct pair p;
	clockid_t stub_clk;
	uint64_t t0, m0, s0, t1, m1, s1, n = 0;
	struct cost *c = &cost[w][vi];
	int r;

	r = pair_open(&p, cost_variants[vi], NULL);
	if (r < 0)
		die("poll cost: cannot open a stub: %s", strerror(-r));
	pin_self(o.cpu_a);
	r = pin_pid(p.pid, o.cpu_b);
	if (r < 0)
		die("pin stub: %s", strerror(-r));
	if (clock_getcpuclockid(p.pid, &stub_clk) != 0)
		die("clock_getcpuclockid: the stub's CPU clock");
	p.pl->work_ns = workloads[w].work_ns;
	r = pair_run(&p, NULL, 50); /* warm up, and adapt the windows */
	if (r < 0)
		die("poll cost: round trip failed: %s", strerror(-r));
	t0 = now_ns();
	m0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	s0 = cpu_ns(stub_clk);
	do {
		r = pair_run(&p, NULL, 20);
		if (r < 0)
			die("poll cost: round trip failed: %s", strerror(-r));
		n += 20;
		t1 = now_ns();
	} while (t1 - t0 < wall_ns);
	m1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	s1 = cpu_ns(stub_clk);
	c->ran = true;
	c->rt_per_s = (double)n / ((double)(t1 - t0) / 1e9);
	c->mon_share = (double)(m1 - m0) / (double)(t1 - t0);
	c->stub_share = ((double)(s1 - s0) - (double)n * workloads[w].work_ns) /
			(double)(t1 - t0);
	if (c->stub_share < 0)
		c->stub_share = 0; /* the work's own clock reads round down */
	p.pl->work_ns = 0;
	pair_close(&p);
}

static void report_cost(void)
{
	tprintf(&human,
		"\n== adaptive polling: CPU beyond the stub's work, share of "
		"wall time (cross-CPU) ==\n");
	tprintf(&human, "%-14s %-15s %12s %10s %10s\n", "workload", "variant",
		"round trips/s", "monitor", "stub");
	tprintf(&md,
		"\n### Adaptive polling: CPU time beyond the stub's work, as a "
		"share of wall time (cross-CPU)\n\n"
		"| workload | variant | round trips/s | monitor | stub |\n"
		"|---|---|---:|---:|---:|\n");
	for (int w = 0; w < NWORK; w++) {
		for (int vi = 0; vi < NCV; vi++) {
			const struct cost *c = &cost[w][vi];
			const char *v = variant_names[cost_variants[vi]];

			if (!c->ran)
				continue;
			tprintf(&human, "%-14s %-15s %12.0f %9.1f%% %9.1f%%\n",
				workloads[w].name, v, c->rt_per_s,
				100 * c->mon_share, 100 * c->stub_share);
			tprintf(&md, "| %s | %s | %.0f | %.1f %% | %.1f %% |\n",
				workloads[w].name, v, c->rt_per_s,
				100 * c->mon_share, 100 * c->stub_share);
			jsonl("{\"bench\":\"poll-cost\",\"workload\":\"%s\","
			      "\"variant\":\"%s\",\"work_ns\":%u,"
			      "\"round_trips_per_s\":%.0f,"
			      "\"monitor_cpu_share\":%.4f,"
			      "\"stub_cpu_share_beyond_work\":%.4f}",
			      workloads[w].name, v, workloads[w].work_ns,
			      c->rt_per_s, c->mon_share, c->stub_share);
		}
		if (cost[w][0].ran && cost[w][1].ran)
			tprintf(&human,
				"%-14s spinning: monitor %+.1f%%, stub %+.1f%% "
				"of wall time\n",
				"", 100 * (cost[w][1].mon_share -
					   cost[w][0].mon_share),
				100 * (cost[w][1].stub_share -
				       cost[w][0].stub_share));
	}
}

/* ---- beside two CPU hogs ------------------------------------------------ */

static struct lat_stats hog_rep[NCV][NPIN][MAX_REPS];
static int hog_nreps;

static void run_hogs(void)
{
	struct pair p[NCV];
	size_t n = o.quick ? 500 : 5000, warmup = o.quick ? 100 : o.warmup;
	uint64_t *buf = buf_alloc(n * sizeof(uint64_t));
	int reps = o.quick ? 3 : o.reps < MAX_REPS ? o.reps : MAX_REPS;

	if (!buf)
		die("out of memory");
	for (int vi = 0; vi < NCV; vi++) {
		int r = pair_open(&p[vi], cost_variants[vi], NULL);

		if (r < 0)
			die("poll hogs: cannot open a stub: %s", strerror(-r));
	}
	dl_hogs_start();
	for (int rep = 0; rep < reps; rep++) {
		for (int pk = 0; pk < NPIN; pk++) {
			int pin = (pk + rep) % NPIN;

			pin_self(o.cpu_a);
			for (int k = 0; k < NCV; k++) {
				int vi = (k + rep) % NCV, r;

				r = pin_pid(p[vi].pid, stub_cpu(pin));
				if (r < 0)
					die("pin stub: %s", strerror(-r));
				r = pair_run(&p[vi], NULL, warmup);
				if (r >= 0)
					r = pair_run(&p[vi], buf, n);
				if (r < 0)
					die("poll hogs: round trip failed: %s",
					    strerror(-r));
				stats_compute(buf, n, &hog_rep[vi][pin][rep]);
			}
		}
		hog_nreps = rep + 1;
	}
	dl_hogs_stop();
	for (int vi = 0; vi < NCV; vi++)
		pair_close(&p[vi]);
	buf_free(buf, n * sizeof(uint64_t));
}

static void report_hogs(void)
{
	tprintf(&human,
		"\n== beside %d CPU hogs: round trip p99, us, median over %d "
		"reps; ratio per rep ==\n",
		DL_HOGS, hog_nreps);
	tprintf(&human, "%-5s %12s %15s %26s\n", "cpus", "stubwatch",
		"stubwatch-poll", "poll / stubwatch p99");
	tprintf(&md,
		"\n### Beside %d CPU hogs: round trip p99 (us, median over %d "
		"reps)\n\n| cpus | stubwatch | stubwatch-poll | ratio p99 |\n"
		"|---|---:|---:|---|\n",
		DL_HOGS, hog_nreps);
	for (int pin = 0; pin < NPIN; pin++) {
		double a[MAX_REPS], b[MAX_REPS], r[MAX_REPS], lo, hi, m;
		char name[96];

		for (int i = 0; i < hog_nreps; i++) {
			a[i] = hog_rep[0][pin][i].p99;
			b[i] = hog_rep[1][pin][i].p99;
			r[i] = b[i] / a[i];
		}
		minmax_d(r, (size_t)hog_nreps, &lo, &hi);
		m = median_d(r, (size_t)hog_nreps);
		tprintf(&human, "%-5s %12.2f %15.2f %8.3f [%.3f .. %.3f]\n",
			pin_names[pin], median_d(a, (size_t)hog_nreps),
			median_d(b, (size_t)hog_nreps), m, lo, hi);
		tprintf(&md, "| %s | %.2f | %.2f | %.3f [%.3f .. %.3f] |\n",
			pin_names[pin], median_d(a, (size_t)hog_nreps),
			median_d(b, (size_t)hog_nreps), m, lo, hi);
		jsonl("{\"bench\":\"poll-hogs\",\"cpus\":\"%s\",\"hogs\":%d,"
		      "\"stubwatch_p99_us\":%.3f,\"poll_p99_us\":%.3f,"
		      "\"ratio_median\":%.4f,\"min\":%.4f,\"max\":%.4f}",
		      pin_names[pin], DL_HOGS, median_d(a, (size_t)hog_nreps),
		      median_d(b, (size_t)hog_nreps), m, lo, hi);
		snprintf(name, sizeof(name),
			 "stubwatch-poll p99 <= stubwatch beside %d hogs (%s)",
			 DL_HOGS, pin_names[pin]);
		target_le(name, m, 1.00, lo, hi);
	}
}

void run_poll_cost(void)
{
	uint64_t wall = o.quick ? 300000000ull : 2000000000ull;

	if (o.cpu_b < 0 || o.cpu_a == o.cpu_b) {
		skip("poll", "one usable CPU: nothing runs across CPUs");
		return;
	}
	for (int w = 0; w < NWORK; w++)
		for (int vi = 0; vi < NCV; vi++) /* alternate the order */
			measure_cost(w, (vi + w) % NCV, wall);
	report_cost();
	run_hogs();
	report_hogs();
}
