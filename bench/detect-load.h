/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The detect-load phase's cells, one per variant and condition: filled by
 * detect-load.c, reported by detect-load-report.c.
 */
#ifndef BENCH_DETECT_LOAD_H
#define BENCH_DETECT_LOAD_H

#include "phase.h"

/*
 * How late past N*T does a silent stub die when the machine is quiet, beside
 * CPU hogs, and when the monitor is busy with 1,000 other stubs?  thread-wd
 * (a helper thread on its own timerfd) against stubwatch (the loop's own
 * timer), one stalled stub at a time.  Lateness = the SIGKILL's clock -
 * (the clock right after the resume returned + N*T).
 */
#define DL_TICK_NS      20000000ull /* T */
#define DL_STALL_TICKS  5u          /* N */
#define DL_WARMUP       5           /* round trips before each stall */
#define DL_RETRIES      5           /* stubs killed before their stall */
/* thread-wd with busy stubs: the loop only multiplexes their reports; its
 * own watchdog is off (a period of 125 s), the helper thread is the one. */
#define DL_MUX_TICK_NS  1000000000000ull

enum { DL_QUIET = 0, DL_HOGGED, DL_BUSY, DL_NCOND };
extern const char *const dl_cond_names[DL_NCOND];
extern const char *const dl_cond_keys[DL_NCOND];
enum { DL_TW = 0, DL_SW, DL_NV };
extern const int dl_variant[DL_NV];

struct dl_kill {
	double late_ms;       /* killed - (resumed + N*T)                    */
	double mon_late_ms;   /* stubwatch: sw_kill_info.monitor_late_ns     */
	double starved_ms;    /* stubwatch: sw_kill_info.starved_ns          */
	double net_ms;        /* late_ms less starved_ms (thread-wd: late_ms) */
	double over_ms;       /* stubwatch: past N*T + 2*P + mon_late + starved */
	double early_ms;      /* before N*T, counted from before the resume  */
};

struct dl_busy;

struct dl_cell {
	bool ran;
	int v, cond;
	struct sw_loop *loop;
	struct dl_busy *busy;     /* DL_BUSY_STUBS of them, or NULL */
	struct pair *probes;      /* the stubs to stall, spawned ahead */
	int nprobes, next_probe;
	uint64_t busy_reports;    /* reports served while the kills ran */
	/* False kills: stubs killed that were not stalled (busy ones, and
	 * stalled ones before their stall); and for stubwatch's, what their
	 * sw_kill_info said. */
	int false_kills;
	double fk_silent_max, fk_late_max, fk_starved_max;
	int fk_info;              /* those that came with kill info      */
	int fk_runnable_idle;     /* state R, ran 0 ns in its stall window */
	uint64_t t0, t1;          /* the kills' span                     */
	struct dl_kill *k;
	int n;
	struct sw_loop_stats st;  /* stubwatch: the loop, over the stalls */
	uint64_t helper_late_ns;  /* thread-wd: the helper's timer, same  */
	double load;              /* 1-minute load average at the start  */
	uint64_t run_ns, span_ns; /* the monitor thread's CPU time, and
				     the time, over this cell's stalls    */
	double mon_cpu;           /* run_ns / span_ns                    */
	double p50, p99, max, netmax, ml50, mlmax, st50, stmax;
	int outside;              /* stubwatch kills outside the bound   */
};
extern struct dl_cell dlc[DL_NV][DL_NCOND];
extern char dl_skipped[DL_NCOND][200];

#endif
