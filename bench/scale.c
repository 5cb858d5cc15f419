/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The scale phase: round trips of one active stub among 1 .. 10,000 in one
 * loop, with memory and fds per stub; then 1 .. 8 vCPU loops, each its own
 * thread, loop and stub, futex and stubwatch alternated.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "phase.h"

/* ---- scale: stubs per loop ------------------------------------------------ */

static const size_t scale_levels[] = { 1, 10, 100, 1000, 10000 };
#define NSCALE (sizeof(scale_levels) / sizeof(*scale_levels))

struct mem_snap {
	long rss, avail, kstack, ptables, sunreclaim, shmem, fds;
};

static void mem_snap(struct mem_snap *m)
{
	m->rss = proc_kb("/proc/self/status", "VmRSS");
	m->avail = proc_kb("/proc/meminfo", "MemAvailable");
	m->kstack = proc_kb("/proc/meminfo", "KernelStack");
	m->ptables = proc_kb("/proc/meminfo", "PageTables");
	m->sunreclaim = proc_kb("/proc/meminfo", "SUnreclaim");
	m->shmem = proc_kb("/proc/meminfo", "Shmem");
	m->fds = count_fds();
}

struct scale_level {
	size_t count;
	bool ran;
	char skip[200];
	struct pair active;
	struct pair *extra;
	double spawn_us;
	double fds_per, mon_kib, kern_kib, shmem_kib, sys_kib, pss_kib;
	struct lat_stats rep[MAX_REPS];
	struct lat_stats base_rep[MAX_REPS]; /* the 1-stub loop, same rep */
	int nreps;
	double p50, p99;
	size_t n;
	char limited[200]; /* why fewer stubs than asked */
};
static struct scale_level scl[NSCALE];

static double stub_pss_kib(struct scale_level *l)
{
	size_t k = 0;
	double sum = 0;

	/* The idle stubs (exec'd) when there are any, else the active one. */
	for (size_t i = l->count > 1; i < l->count && k < 16; i++) {
		pid_t pid = i == 0 ? l->active.pid : l->extra[i - 1].pid;
		char path[64];
		long v;

		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
		v = proc_kb(path, "Pss");
		if (v >= 0) {
			sum += (double)v;
			k++;
		}
	}
	return k ? sum / (double)k : NAN;
}

static int scale_build(struct scale_level *l)
{
	struct mem_snap a, b;
	uint64_t t0;
	double c = (double)l->count;
	int r;

	mem_snap(&a);
	t0 = now_ns();
	r = pair_open(&l->active, V_STUBWATCH, NULL);
	if (r < 0)
		return r;
	l->extra = calloc(l->count, sizeof(*l->extra));
	if (!l->extra)
		return -ENOMEM;
	for (size_t i = 1; i < l->count; i++) {
		r = pair_open_in(&l->extra[i - 1], V_STUBWATCH, l->active.loop,
				 true);
		if (r < 0)
			return r;
	}
	l->spawn_us = (double)(now_ns() - t0) / 1e3 / c;
	mem_snap(&b);
	l->fds_per = (double)(b.fds - a.fds) / c;
	l->mon_kib = (double)(b.rss - a.rss) / c;
	l->kern_kib = (double)((b.kstack - a.kstack) + (b.ptables - a.ptables) +
			       (b.sunreclaim - a.sunreclaim)) / c;
	l->shmem_kib = (double)(b.shmem - a.shmem) / c;
	l->sys_kib = (double)(a.avail - b.avail) / c;
	l->pss_kib = stub_pss_kib(l);
	return 0;
}

static void scale_free(struct scale_level *l)
{
	/* Freeing the loop kills, reaps and frees every stub in it. */
	if (l->active.stub) {
		pair_close(&l->active);
	}
	free(l->extra);
	l->extra = NULL;
}

static void scale_measure(struct scale_level *l, uint64_t *buf,
			  struct lat_stats *out)
{
	int r;

	pin_pid(l->active.pid, o.cpu_a);
	r = pair_run(&l->active, NULL, o.warmup);
	if (r >= 0)
		r = pair_run(&l->active, buf, o.scale_n);
	if (r < 0)
		die("scale %zu: %s", l->count, strerror(-r));
	stats_compute(buf, o.scale_n, out);
}

static void scale_summarise(struct scale_level *l)
{
	double v[MAX_REPS];

	for (int i = 0; i < l->nreps; i++)
		v[i] = l->rep[i].p50;
	l->p50 = median_d(v, (size_t)l->nreps);
	for (int i = 0; i < l->nreps; i++)
		v[i] = l->rep[i].p99;
	l->p99 = median_d(v, (size_t)l->nreps);
	l->n = o.scale_n * (size_t)l->nreps;
}

static bool scale_try_build(struct scale_level *l)
{
	char what[64];
	int r;

	snprintf(what, sizeof(what), "scale %zu stubs", l->count);
	if (scale_room((long)l->count, l->skip, sizeof(l->skip))) {
		skip(what, l->skip);
		return false;
	}
	r = scale_build(l);
	if (r < 0) {
		snprintf(l->skip, sizeof(l->skip), "spawn failed: %s",
			 strerror(-r));
		skip(what, l->skip);
		scale_free(l);
		return false;
	}
	l->ran = true;
	return true;
}

/* How many more stubs the fd limit allows, at 2 fds each. */
static size_t scale_fit(void)
{
	struct rlimit rl;
	long room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	room = (long)rl.rlim_max - count_fds() - 64;
	return room > 0 ? (size_t)room / 2 : 0;
}

/*
 * Phase A: 1, 10, 100, 1000 stubs, each level its own loop, all alive, the
 * levels alternated.  Phase B: the levels but 1 freed, then the 10,000 stub
 * loop (or as many as RLIMIT_NOFILE allows), alternated with the 1-stub
 * loop; its ratio pairs with the 1-stub runs of phase B.
 */
void run_scale_stubs(void)
{
	size_t bytes = o.scale_n * sizeof(uint64_t);
	struct scale_level *top = &scl[NSCALE - 1], *base = &scl[0];
	uint64_t *buf;
	int nl = 0, idx[NSCALE];

	buf = buf_alloc(bytes);
	if (!buf)
		die("out of memory");
	for (size_t i = 0; i + 1 < NSCALE; i++) {
		scl[i].count = scale_levels[i];
		if (scl[i].count <= o.scale_max && scale_try_build(&scl[i]))
			idx[nl++] = (int)i;
	}
	pin_self(o.cpu_a);
	for (int rep = 0; rep < o.scale_reps; rep++) {
		for (int k = 0; k < nl; k++) {
			struct scale_level *l = &scl[idx[(k + rep) % nl]];

			scale_measure(l, buf, &l->rep[l->nreps++]);
		}
	}
	for (int k = 0; k < nl; k++) {
		struct scale_level *l = &scl[idx[k]];

		memcpy(l->base_rep, base->rep, sizeof(l->base_rep));
		scale_summarise(l);
	}

	top->count = scale_levels[NSCALE - 1];
	if (top->count <= o.scale_max && base->ran) {
		size_t fit;

		for (size_t i = 1; i + 1 < NSCALE; i++)
			scale_free(&scl[i]);
		fit = scale_fit();
		if (fit < top->count) {
			struct rlimit rl;

			getrlimit(RLIMIT_NOFILE, &rl);
			snprintf(top->limited, sizeof(top->limited),
				 "%zu stubs need %zu fds; RLIMIT_NOFILE hard "
				 "limit %lu, and raising it needs "
				 "CAP_SYS_RESOURCE: ran %zu",
				 top->count, 2 * top->count,
				 (unsigned long)rl.rlim_max, fit);
			note("%s", top->limited);
			top->count = fit;
		}
		if (top->count > base->count && scale_try_build(top)) {
			for (int rep = 0; rep < o.scale_reps; rep++) {
				bool top_first = rep % 2;

				if (top_first)
					scale_measure(top, buf, &top->rep[rep]);
				scale_measure(base, buf, &top->base_rep[rep]);
				if (!top_first)
					scale_measure(top, buf, &top->rep[rep]);
			}
			top->nreps = o.scale_reps;
			scale_summarise(top);
		}
	}
	buf_free(buf, bytes);
}

/* Per-rep p50 ratio of a level to the 1-stub loop measured beside it. */
static double scale_ratio(struct scale_level *l, double *lo, double *hi)
{
	double r[MAX_REPS];

	for (int i = 0; i < l->nreps; i++)
		r[i] = l->rep[i].p50 / l->base_rep[i].p50;
	minmax_d(r, (size_t)l->nreps, lo, hi);
	return median_d(r, (size_t)l->nreps);
}

void report_scale_stubs(void)
{
	struct scale_level *base = &scl[0], *top = NULL;
	char name[128];
	double med, lo, hi;

	for (size_t i = 0; i < NSCALE; i++)
		if (scl[i].ran)
			top = &scl[i];
	if (!top)
		return;
	tprintf(&human,
		"\n== scale: stubs registered in one loop, one active (same "
		"CPU; median over %d reps) ==\n",
		o.scale_reps);
	tprintf(&human, "%6s %8s %8s %22s %8s %8s %8s %8s %8s %8s\n", "stubs",
		"p50_us", "p99_us", "p50 vs 1 stub", "fds/stub", "mon_KiB",
		"kern_KiB", "shm_KiB", "stubPss", "spawn_us");
	tprintf(&md,
		"\n### Scale: stubs registered in one loop, one active (same "
		"CPU; median over %d reps)\n\n"
		"| stubs | p50 us | p99 us | p50 vs 1 stub | fds/stub | monitor "
		"KiB/stub | kernel KiB/stub | shmem KiB/stub | stub Pss KiB | "
		"spawn us/stub |\n"
		"|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
		o.scale_reps);
	for (size_t i = 0; i < NSCALE; i++) {
		struct scale_level *l = &scl[i];

		if (!l->ran)
			continue;
		med = scale_ratio(l, &lo, &hi);
		tprintf(&human,
			"%6zu %8.2f %8.2f %6.3f [%5.3f .. %5.3f] %8.2f %8.1f "
			"%8.1f %8.1f %8.1f %8.1f\n",
			l->count, l->p50, l->p99, med, lo, hi, l->fds_per,
			l->mon_kib, l->kern_kib, l->shmem_kib, l->pss_kib,
			l->spawn_us);
		tprintf(&md,
			"| %zu | %.2f | %.2f | %.3f [%.3f .. %.3f] | %.2f | %.1f | "
			"%.1f | %.1f | %.1f | %.1f |\n",
			l->count, l->p50, l->p99, med, lo, hi, l->fds_per,
			l->mon_kib, l->kern_kib, l->shmem_kib, l->pss_kib,
			l->spawn_us);
		jsonl("{\"bench\":\"scale\",\"variant\":\"stubwatch\","
		      "\"stubs\":%zu,\"loops\":1,\"cpus\":\"same\",\"n\":%zu,"
		      "\"p50_us\":%.3f,\"p99_us\":%.3f,"
		      "\"p50_vs_1_stub\":%.4f,\"fds_per_stub\":%.2f,"
		      "\"monitor_kib_per_stub\":%.1f,"
		      "\"kernel_kib_per_stub\":%.1f,"
		      "\"shmem_kib_per_stub\":%.1f,\"stub_pss_kib\":%.1f,"
		      "\"system_kib_per_stub\":%.1f,\"spawn_us\":%.1f}",
		      l->count, l->n, l->p50, l->p99, med, l->fds_per,
		      l->mon_kib, l->kern_kib, l->shmem_kib, l->pss_kib,
		      l->sys_kib, l->spawn_us);
	}
	tprintf(&human,
		"(idle stubs are the bench re-executed as a stub, as UML execs "
		"its stub; per stub: fds and RSS of the monitor process; "
		"kern = KernelStack + PageTables + SUnreclaim; stubPss from "
		"smaps_rollup; deltas at 1 and 10 stubs are noise)\n");
	tprintf(&md,
		"\nIdle stubs are the bench re-executed as a stub, as UML execs "
		"its stub binary. Per stub: fds and RSS of the monitor process; "
		"kernel = KernelStack + PageTables + SUnreclaim; stub Pss from "
		"`smaps_rollup`. The top level is paired with the 1-stub loop "
		"measured beside it after the middle levels are freed.\n");
	if (scl[NSCALE - 1].limited[0]) {
		tprintf(&human, "NOTE %s\n", scl[NSCALE - 1].limited);
		tprintf(&md, "\n**Note:** %s.\n", scl[NSCALE - 1].limited);
	}

	if (top == base) {
		target_skip("p50 with 10000 stubs <= 1.10x p50 with 1",
			    "scale levels did not run");
		return;
	}
	med = scale_ratio(top, &lo, &hi);
	snprintf(name, sizeof(name), "p50 with %zu stubs <= 1.10x p50 with 1",
		 top->count);
	target_le(name, med, 1.10, lo, hi);
	if (top != &scl[NSCALE - 1])
		target_skip("p50 with 10000 stubs <= 1.10x p50 with 1",
			    o.scale_max < 10000
				    ? "not in this mode (--quick stops at 1000)"
				    : scl[NSCALE - 1].skip);
}

/* Free every level's loop with its stubs, before the vCPU loops run. */
void scale_stubs_free(void)
{
	for (size_t i = 0; i < NSCALE; i++)
		scale_free(&scl[i]);
}

/* ---- scale: vCPU loops ---------------------------------------------------- */

static const int loop_levels[] = { 1, 2, 4, 8 };
#define NLOOPS (sizeof(loop_levels) / sizeof(*loop_levels))
static const int loop_variants[] = { V_FUTEX, V_STUBWATCH };
#define NLV 2

struct loops_res {
	struct lat_stats rep[MAX_REPS];
	int nreps;
	double p50, p99;
	size_t n;
};
static struct loops_res lres[NLOOPS][NLV];
static bool loops_ran;

struct loop_thr {
	int cpu;
	enum variant v;
	size_t n;
	uint64_t *samples;
	pthread_barrier_t *bar;
	int err;
};

static void *loop_thread(void *arg)
{
	struct loop_thr *t = arg;
	struct pair p;
	int r;

	pin_self(t->cpu);
	r = pair_open(&p, t->v, NULL);
	if (r >= 0) {
		pin_pid(p.pid, t->cpu);
		r = pair_run(&p, NULL, o.warmup);
	}
	pthread_barrier_wait(t->bar);
	if (r >= 0)
		r = pair_run(&p, t->samples, t->n);
	pthread_barrier_wait(t->bar);
	if (p.stub || p.loop)
		pair_close(&p);
	t->err = r < 0 ? r : 0;
	return NULL;
}

void run_scale_loops(void)
{
	size_t per = o.loops_n, max_total = per * 8;
	uint64_t *pool = buf_alloc(max_total * sizeof(uint64_t));

	if (!pool)
		die("out of memory");
	for (int rep = 0; rep < o.loops_reps; rep++) {
		for (size_t k = 0; k < NLOOPS * NLV; k++) {
			size_t cell = (k + (size_t)rep) % (NLOOPS * NLV);
			int li = (int)(cell / NLV), vi = (int)(cell % NLV);
			int nthr = loop_levels[li];
			struct loop_thr t[8];
			pthread_t th[8];
			pthread_barrier_t bar;
			struct loops_res *res = &lres[li][vi];

			pthread_barrier_init(&bar, NULL, (unsigned)nthr);
			for (int i = 0; i < nthr; i++) {
				t[i] = (struct loop_thr){
					.cpu = cpus_allowed[i % ncpus_allowed],
					.v = loop_variants[vi],
					.n = per,
					.samples = pool + (size_t)i * per,
					.bar = &bar,
				};
				if (pthread_create(&th[i], NULL, loop_thread, &t[i]))
					die("pthread_create");
			}
			for (int i = 0; i < nthr; i++) {
				pthread_join(th[i], NULL);
				if (t[i].err < 0)
					die("loops %d %s: %s", nthr,
					    variant_names[loop_variants[vi]],
					    strerror(-t[i].err));
			}
			pthread_barrier_destroy(&bar);
			stats_compute(pool, per * (size_t)nthr,
				      &res->rep[res->nreps++]);
		}
	}
	buf_free(pool, max_total * sizeof(uint64_t));
	for (size_t li = 0; li < NLOOPS; li++) {
		for (int vi = 0; vi < NLV; vi++) {
			struct loops_res *res = &lres[li][vi];
			double v[MAX_REPS];

			for (int i = 0; i < res->nreps; i++)
				v[i] = res->rep[i].p50;
			res->p50 = median_d(v, (size_t)res->nreps);
			for (int i = 0; i < res->nreps; i++)
				v[i] = res->rep[i].p99;
			res->p99 = median_d(v, (size_t)res->nreps);
			res->n = per * (size_t)loop_levels[li] *
				 (size_t)res->nreps;
		}
	}
	loops_ran = true;
}

void report_scale_loops(void)
{
	if (!loops_ran)
		return;
	tprintf(&human,
		"\n== scale: vCPU loops, each its own thread, loop and stub "
		"(loop i and its stub on CPU i mod %d; median over %d reps) "
		"==\n",
		ncpus_allowed, o.loops_reps);
	tprintf(&human, "%5s %-10s %9s %8s %8s %20s\n", "loops", "variant", "n",
		"p50_us", "p99_us", "p50 vs futex");
	tprintf(&md,
		"\n### Scale: vCPU loops, each its own thread, loop and stub "
		"(loop i and its stub on CPU i mod %d; median over %d reps)\n\n"
		"| loops | variant | n | p50 us | p99 us | p50 vs futex |\n"
		"|---:|---|---:|---:|---:|---|\n",
		ncpus_allowed, o.loops_reps);
	for (size_t li = 0; li < NLOOPS; li++) {
		for (int vi = 0; vi < NLV; vi++) {
			struct loops_res *res = &lres[li][vi];
			struct loops_res *f = &lres[li][0];
			double r[MAX_REPS], lo = NAN, hi = NAN, med = NAN;
			char rs[64] = "";
			int k = res->nreps;

			if (vi > 0) {
				for (int i = 0; i < k; i++)
					r[i] = res->rep[i].p50 / f->rep[i].p50;
				minmax_d(r, (size_t)k, &lo, &hi);
				med = median_d(r, (size_t)k);
				snprintf(rs, sizeof(rs), "%.3f [%.3f .. %.3f]",
					 med, lo, hi);
			}
			tprintf(&human, "%5d %-10s %9zu %8.2f %8.2f %20s\n",
				loop_levels[li],
				variant_names[loop_variants[vi]], res->n,
				res->p50, res->p99, rs);
			tprintf(&md, "| %d | %s | %zu | %.2f | %.2f | %s |\n",
				loop_levels[li],
				variant_names[loop_variants[vi]], res->n,
				res->p50, res->p99, rs);
			jsonl("{\"bench\":\"scale\",\"variant\":\"%s\","
			      "\"stubs\":1,\"loops\":%d,\"n\":%zu,"
			      "\"p50_us\":%.3f,\"p99_us\":%.3f}",
			      variant_names[loop_variants[vi]],
			      loop_levels[li], res->n, res->p50, res->p99);
		}
	}
}
