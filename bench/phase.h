/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch-bench: what main(), the phases and the report writers share.
 *
 * bench.h declares the measuring core (the variants and their stub, the
 * perf counters, the statistics); this header declares the program around
 * it: the options, the output being built, the targets, the /proc facts
 * the phases read, and the phases.  A phase is one file that runs it and
 * adds its tables to the output: latency.c, syscalls.c, detect.c,
 * detect-load.c (its tables: detect-load-report.c), scale.c, spawn-phase.c
 * (spawn.c times it).
 * report.c holds the output and writes it; stubwatch-bench.c parses the
 * options and runs the phases in order.
 */
#ifndef BENCH_PHASE_H
#define BENCH_PHASE_H

#include <sched.h>

#include "bench.h"

#define MAX_REPS 64
#define NPIN 2
enum { PIN_SAME = 0, PIN_CROSS = 1 };
extern const char *const pin_names[NPIN];

enum {
	PH_LATENCY = 1 << 0,
	PH_SYSCALLS = 1 << 1,
	PH_DETECT = 1 << 2,
	PH_SCALE = 1 << 3,
	PH_DETECT_LOAD = 1 << 4,
	PH_SPAWN = 1 << 5,
	PH_POLL = 1 << 6,
	PH_ALL = 0x7f,
};

/* The options, set once by parse_args() (stubwatch-bench.c). */
struct bench_opts {
	bool quick, json, strict;
	const char *out_dir;
	int variant;   /* -1: all */
	unsigned vmask; /* --variants: 0 for all */
	size_t n;      /* round trips per run */
	int reps;
	size_t warmup;
	size_t slice;  /* latency: round trips per turn of a variant (0: n) */
	int pins;      /* bit PIN_SAME, bit PIN_CROSS */
	int cpu_a, cpu_b;
	unsigned phases;
	int detect_stalls;
	int detect_defaults;
	int dl_kills;  /* detect-load: stalls per variant and condition */
	uint32_t dl_busy_min_us, dl_busy_max_us; /* busy stubs' sleeps */
	size_t scale_max;
	size_t scale_n;
	int scale_reps;
	size_t loops_n;
	int loops_reps;
	size_t sc_n;
	char cmdline[512];
};
extern struct bench_opts o;

/* The CPUs this process may run on (find_cpus(), stubwatch-bench.c). */
extern int ncpus_allowed;
extern int cpus_allowed[CPU_SETSIZE];

/* Inline as it was beside its callers: they pin the stub before each run. */
static inline int stub_cpu(int pin)
{
	return pin == PIN_SAME ? o.cpu_a : o.cpu_b;
}

/* ---- report.c: the output, built as the phases run, written at the end -- */

__attribute__((noreturn)) void die(const char *fmt, ...);
void note(const char *fmt, ...);
void jsonl(const char *fmt, ...);

/* Human and markdown tables are built side by side. */
struct text {
	char *buf;
	size_t len;
	size_t cap;
};
extern struct text human, md;

void tprintf(struct text *t, const char *fmt, ...);
void skip(const char *what, const char *why);

void target_le(const char *name, double value, double limit, double lo,
	       double hi);
void target_text(const char *name, bool met, const char *fmt, ...);
void target_skip(const char *name, const char *why);
/* The targets' table, last; returns how many were missed. */
int report_targets(void);

void header(void);
void write_outputs(void);

/* ---- sysfacts.c: what /proc says about this machine and thread --------- */

long read_long(const char *path);
long proc_kb(const char *path, const char *key);
uint64_t thread_wait_ns(void);
uint64_t thread_run_ns(void);
uint64_t cpu_steal_ns(int cpu);
long count_fds(void);
const char *scale_room(long stubs, char *why, size_t len);

/* ---- the phases, in the order main() runs them ------------------------- */

/* latency.c; its pairs serve the syscalls phase too. */
struct lat_series {
	bool ran;
	struct lat_stats rep[MAX_REPS];
	int nreps;
	uint64_t *pool;
	size_t npool;
	size_t pool_bytes;
	struct lat_stats agg;
};
extern struct lat_series lat[V_COUNT][NPIN];
extern struct pair pairs[V_COUNT];
extern bool pair_ok[V_COUNT];
void open_pairs(void);
void close_pairs(void);
void run_latency(void);
void report_latency(void);
void latency_targets(void);

/* syscalls.c */
void run_syscalls(void);

/* detect.c */
void run_detect(void);
void report_detect(void);

/* detect-load.c, detect-load-report.c; DL_HOGS: the CPU hogs it runs
 * beside in its second condition. */
#define DL_HOGS         2
void run_detect_load(void);
/* DL_HOGS processes that spin on any CPU, until dl_hogs_stop(). */
void dl_hogs_start(void);
void dl_hogs_stop(void);
void report_detect_load(void);

/* scale.c */
void run_scale_stubs(void);
void report_scale_stubs(void);
void scale_stubs_free(void);
void run_scale_loops(void);
void report_scale_loops(void);

/* spawn-phase.c */
void run_spawn(void);
void report_spawn(void);

/* poll-cost.c */
void run_poll_cost(void);

#endif
