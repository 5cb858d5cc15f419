/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The latency phase: handshake round trips of every variant, same CPU and
 * cross CPU, the variants and the pinnings alternated over repetitions;
 * percentiles per variant, ratios per repetition, and the latency targets.
 * It opens the monitor/stub pairs the syscalls phase uses too.
 */
#include <stdio.h>
#include <string.h>

#include "phase.h"

struct lat_series lat[V_COUNT][NPIN];
struct pair pairs[V_COUNT];
bool pair_ok[V_COUNT];
static bool wd_started;

static bool variant_selected(int v)
{
	if (o.vmask && !(o.vmask & (1u << v)))
		return false;
	return o.variant < 0 || o.variant == v;
}

void open_pairs(void)
{
	for (int v = 0; v < V_COUNT; v++) {
		const char *why;
		int r;

		if (!variant_selected(v))
			continue;
		why = variant_unavailable(v);
		if (why) {
			char what[64];

			snprintf(what, sizeof(what), "variant %s",
				 variant_names[v]);
			skip(what, why);
			continue;
		}
		if (v == V_THREAD_WD && !wd_started) {
			r = wd_thread_start(1000000000ull, 5);
			if (r < 0)
				die("watchdog thread: %s", strerror(-r));
			wd_started = true;
		}
		r = pair_open(&pairs[v], v, NULL);
		if (r < 0)
			die("%s: cannot open a stub: %s", variant_names[v],
			    strerror(-r));
		pair_ok[v] = true;
	}
}

void close_pairs(void)
{
	for (int v = 0; v < V_COUNT; v++)
		if (pair_ok[v])
			pair_close(&pairs[v]);
	if (wd_started)
		wd_thread_stop();
}

static void agg_series(struct lat_series *s)
{
	double v[MAX_REPS];
	int k = s->nreps;

#define AGG(F)                                      \
	do {                                        \
		for (int i = 0; i < k; i++)         \
			v[i] = s->rep[i].F;         \
		s->agg.F = median_d(v, (size_t)k);  \
	} while (0)
	AGG(p50);
	AGG(p90);
	AGG(p99);
	AGG(p999);
#undef AGG
	s->agg.max = 0;
	for (int i = 0; i < k; i++)
		if (s->rep[i].max > s->agg.max)
			s->agg.max = s->rep[i].max;
	s->agg.n = s->npool;
}

void run_latency(void)
{
	uint64_t *bufs[V_COUNT] = { 0 };
	size_t bytes = o.n * sizeof(uint64_t);
	size_t slice = o.slice && o.slice < o.n ? o.slice : o.n;
	size_t rewarm = o.warmup < SLICE_WARMUP ? o.warmup : SLICE_WARMUP;
	int order[V_COUNT], nv = 0;

	for (int v = 0; v < V_COUNT; v++)
		if (pair_ok[v])
			order[nv++] = v;
	if (!nv)
		return;
	for (int v = 0; v < nv; v++) {
		bufs[order[v]] = buf_alloc(bytes);
		if (!bufs[order[v]])
			die("out of memory");
		for (int pin = 0; pin < NPIN; pin++) {
			struct lat_series *s = &lat[order[v]][pin];

			s->pool_bytes = bytes * (size_t)o.reps;
			s->pool = buf_alloc(s->pool_bytes);
			if (!s->pool)
				die("out of memory");
		}
	}
	for (int rep = 0; rep < o.reps; rep++) {
		for (int pk = 0; pk < NPIN; pk++) {
			/* alternate the pinning order too */
			int pin = (pk + rep) % NPIN;
			int run[V_COUNT], nrun = 0;

			if (!(o.pins & (1 << pin)))
				continue;
			pin_self(o.cpu_a);
			for (int k = 0; k < nv; k++) {
				int v = order[(k + rep) % nv];
				int r;

				/* on one CPU, a spin only waits for the
				 * scheduler to run the other side */
				if (v == V_FLOOR && pin == PIN_SAME)
					continue;
				r = pin_pid(pairs[v].pid, stub_cpu(pin));
				if (r < 0)
					die("pin stub: %s", strerror(-r));
				run[nrun++] = v;
			}
			/* The variants take turns: the whole run each (one
			 * turn), or --slice round trips each, the first to go
			 * rotating, so that what the host does meanwhile
			 * falls on every variant alike. */
			for (size_t off = 0, t = 0; off < o.n; off += slice, t++) {
				size_t len = o.n - off < slice ? o.n - off : slice;

				for (int k = 0; k < nrun; k++) {
					int v = run[(k + t) % nrun];
					int r = pair_run(&pairs[v], NULL,
							 t ? rewarm : o.warmup);

					if (r >= 0)
						r = pair_run(&pairs[v],
							     bufs[v] + off, len);
					if (r < 0)
						die("%s: round trip failed: %s",
						    variant_names[v],
						    strerror(-r));
				}
			}
			for (int k = 0; k < nrun; k++) {
				struct lat_series *s = &lat[run[k]][pin];

				memcpy(s->pool + s->npool, bufs[run[k]], bytes);
				s->npool += o.n;
				stats_compute(bufs[run[k]], o.n,
					      &s->rep[s->nreps++]);
				s->ran = true;
			}
		}
	}
	for (int v = 0; v < nv; v++)
		buf_free(bufs[order[v]], bytes);
	for (int v = 0; v < V_COUNT; v++)
		for (int pin = 0; pin < NPIN; pin++)
			if (lat[v][pin].ran)
				agg_series(&lat[v][pin]);
}

/* Per-rep ratio a/b of a statistic, median and spread. */
static bool lat_ratio(int a, int b, int pin, bool p99, double *med,
		      double *lo, double *hi, int *nreps)
{
	struct lat_series *sa = &lat[a][pin], *sb = &lat[b][pin];
	double r[MAX_REPS];
	int k;

	if (!sa->ran || !sb->ran)
		return false;
	k = sa->nreps < sb->nreps ? sa->nreps : sb->nreps;
	for (int i = 0; i < k; i++)
		r[i] = p99 ? sa->rep[i].p99 / sb->rep[i].p99
			   : sa->rep[i].p50 / sb->rep[i].p50;
	minmax_d(r, (size_t)k, lo, hi);
	*med = median_d(r, (size_t)k);
	*nreps = k;
	return true;
}

static const struct {
	int a, b;
} ratio_pairs[] = {
	{ V_STUBWATCH, V_FUTEX },
	{ V_THREAD_WD, V_FUTEX },
	{ V_STUBWATCH, V_THREAD_WD },
	{ V_STUBWATCH_EV, V_FUTEX },
	{ V_STUBWATCH_EV, V_STUBWATCH },
	/* informational, not targets: opt-in adaptive polling */
	{ V_STUBWATCH_POLL, V_FUTEX },
	{ V_STUBWATCH_POLL, V_STUBWATCH },
	/* against the machine's floor (cross-CPU only) */
	{ V_FUTEX, V_FLOOR },
	{ V_STUBWATCH, V_FLOOR },
	{ V_STUBWATCH_POLL, V_FLOOR },
};

void report_latency(void)
{
	bool any = false;

	for (int v = 0; v < V_COUNT; v++)
		for (int pin = 0; pin < NPIN; pin++)
			any |= lat[v][pin].ran;
	if (!any)
		return;

	tprintf(&human,
		"\n== handshake round trip, us (median over %d reps of %zu; "
		"max over all) ==\n",
		o.reps, o.n);
	tprintf(&human, "%-14s %-5s %8s %7s %7s %7s %7s %8s\n", "variant",
		"cpus", "n", "p50", "p90", "p99", "p99.9", "max");
	tprintf(&md,
		"\n### Handshake round trip (us; median over %d reps of %zu "
		"round trips, max over all)\n\n",
		o.reps, o.n);
	tprintf(&md, "| variant | cpus | n | p50 | p90 | p99 | p99.9 | max |\n"
		     "|---|---|---:|---:|---:|---:|---:|---:|\n");
	for (int pin = 0; pin < NPIN; pin++) {
		for (int v = 0; v < V_COUNT; v++) {
			struct lat_series *s = &lat[v][pin];

			if (!s->ran)
				continue;
			tprintf(&human,
				"%-14s %-5s %8zu %7.2f %7.2f %7.2f %7.2f %8.1f\n",
				variant_names[v], pin_names[pin], s->agg.n,
				s->agg.p50, s->agg.p90, s->agg.p99,
				s->agg.p999, s->agg.max);
			tprintf(&md,
				"| %s | %s | %zu | %.2f | %.2f | %.2f | %.2f | "
				"%.1f |\n",
				variant_names[v], pin_names[pin], s->agg.n,
				s->agg.p50, s->agg.p90, s->agg.p99,
				s->agg.p999, s->agg.max);
			jsonl("{\"bench\":\"latency\",\"variant\":\"%s\","
			      "\"cpus\":\"%s\",\"n\":%zu,\"p50_us\":%.3f,"
			      "\"p90_us\":%.3f,\"p99_us\":%.3f,"
			      "\"p999_us\":%.3f,\"max_us\":%.3f}",
			      variant_names[v], pin_names[pin], s->agg.n,
			      s->agg.p50, s->agg.p90, s->agg.p99, s->agg.p999,
			      s->agg.max);
		}
	}

	any = false;
	for (size_t i = 0; i < sizeof(ratio_pairs) / sizeof(*ratio_pairs); i++)
		for (int pin = 0; pin < NPIN; pin++)
			any |= lat[ratio_pairs[i].a][pin].ran &&
			       lat[ratio_pairs[i].b][pin].ran;
	if (!any)
		return;
	tprintf(&human,
		"\n== ratios, same run, per rep: median [min .. max] ==\n");
	tprintf(&human, "%-26s %-5s %-22s %-22s\n", "ratio", "cpus", "p50",
		"p99");
	tprintf(&md, "\n### Ratios (per repetition; median [min .. max])\n\n"
		     "| ratio | cpus | p50 | p99 |\n|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof(ratio_pairs) / sizeof(*ratio_pairs);
	     i++) {
		int a = ratio_pairs[i].a, b = ratio_pairs[i].b;

		for (int pin = 0; pin < NPIN; pin++) {
			double m50, l50, h50, m99, l99, h99;
			char name[64];
			int k;

			if (!lat_ratio(a, b, pin, false, &m50, &l50, &h50, &k))
				continue;
			lat_ratio(a, b, pin, true, &m99, &l99, &h99, &k);
			snprintf(name, sizeof(name), "%s / %s",
				 variant_names[a], variant_names[b]);
			tprintf(&human,
				"%-26s %-5s %.3f [%.3f .. %.3f]  %.3f [%.3f "
				".. %.3f]\n",
				name, pin_names[pin], m50, l50, h50, m99, l99,
				h99);
			tprintf(&md,
				"| %s | %s | %.3f [%.3f .. %.3f] | %.3f [%.3f "
				".. %.3f] |\n",
				name, pin_names[pin], m50, l50, h50, m99, l99,
				h99);
			for (int q = 0; q < 2; q++)
				jsonl("{\"bench\":\"ratio\",\"variant\":\"%s\","
				      "\"vs\":\"%s\",\"cpus\":\"%s\","
				      "\"stat\":\"%s\",\"median\":%.4f,"
				      "\"min\":%.4f,\"max\":%.4f,\"reps\":%d}",
				      variant_names[a], variant_names[b],
				      pin_names[pin], q ? "p99" : "p50",
				      q ? m99 : m50, q ? l99 : l50,
				      q ? h99 : h50, k);
		}
	}
}

/* Adaptive polling: no slower than polling off where it does not spin
 * (same CPU), close to the machine's floor where it does (cross). */
static void poll_targets(void)
{
	static const struct {
		const char *name;
		int a, b, pin;
		bool p99;
		double limit;
	} t[] = {
		{ "stubwatch-poll p50 <= 1.03x stubwatch (same)", V_STUBWATCH_POLL,
		  V_STUBWATCH, PIN_SAME, false, 1.03 },
		{ "stubwatch-poll p99 <= 1.03x stubwatch (same)", V_STUBWATCH_POLL,
		  V_STUBWATCH, PIN_SAME, true, 1.03 },
		{ "stubwatch-poll p50 <= 1.30x floor (cross)", V_STUBWATCH_POLL,
		  V_FLOOR, PIN_CROSS, false, 1.30 },
		{ "stubwatch-poll p99 <= 2.00x floor (cross)", V_STUBWATCH_POLL,
		  V_FLOOR, PIN_CROSS, true, 2.00 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		double m, lo, hi;
		int k;

		if (!(o.pins & (1 << t[i].pin)))
			continue;
		if (lat_ratio(t[i].a, t[i].b, t[i].pin, t[i].p99, &m, &lo, &hi,
			      &k))
			target_le(t[i].name, m, t[i].limit, lo, hi);
		else
			target_skip(t[i].name, "not run");
	}
}

void latency_targets(void)
{
	for (int pin = 0; pin < NPIN; pin++) {
		double m, lo, hi;
		char name[96];
		int k;

		if (!(o.pins & (1 << pin)))
			continue;
		snprintf(name, sizeof(name), "stubwatch p50 <= 1.00x futex (%s)",
			 pin_names[pin]);
		if (lat_ratio(V_STUBWATCH, V_FUTEX, pin, false, &m, &lo, &hi, &k))
			target_le(name, m, 1.00, lo, hi);
		else
			target_skip(name, "not run");
		snprintf(name, sizeof(name), "stubwatch p99 <= 1.05x futex (%s)",
			 pin_names[pin]);
		if (lat_ratio(V_STUBWATCH, V_FUTEX, pin, true, &m, &lo, &hi, &k))
			target_le(name, m, 1.05, lo, hi);
		else
			target_skip(name, "not run");
		snprintf(name, sizeof(name),
			 "stubwatch p50 <= 1.00x thread-wd (%s)", pin_names[pin]);
		if (lat_ratio(V_STUBWATCH, V_THREAD_WD, pin, false, &m, &lo, &hi,
			      &k))
			target_le(name, m, 1.00, lo, hi);
		else
			target_skip(name, "not run");
		snprintf(name, sizeof(name),
			 "stubwatch-ev p50 <= 1.10x stubwatch (%s)",
			 pin_names[pin]);
		if (lat_ratio(V_STUBWATCH_EV, V_STUBWATCH, pin, false, &m, &lo,
			      &hi, &k))
			target_le(name, m, 1.10, lo, hi);
		else
			target_skip(name, variant_unavailable(V_STUBWATCH_EV)
						  ? variant_unavailable(V_STUBWATCH_EV)
						  : "not run");
	}
	poll_targets();
}
