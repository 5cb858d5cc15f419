/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch-bench: shared declarations.
 *
 * Every variant drives the same stub code (bench_stub_main in variants.c);
 * the variants differ only in the report/wake primitive the stub uses and in
 * how the monitor waits.  See bench/README.md for what each number means.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stubwatch.h"

enum variant {
	V_FUTEX = 0,    /* UML today: FUTEX_WAKE / FUTEX_WAIT, no watchdog      */
	V_THREAD_WD,    /* the reference fix: futex + seq + helper thread       */
	V_STUBWATCH,    /* sw_stub_run(): epoll over eventfd, pidfd, timerfd    */
	V_STUBWATCH_POLL, /* the same, loop with SW_LOOP_ADAPTIVE_POLL (opt-in) */
	V_STUBWATCH_EV, /* the same loop embedded in a libev main loop          */
	V_FLOOR,        /* no syscall: both sides spin on the state word (the
	                   machine's floor; cross-CPU only)                     */
	V_COUNT
};

extern const char *const variant_names[V_COUNT];
int variant_by_name(const char *name);
/* NULL if the variant can run in this build, else why not. */
const char *variant_unavailable(enum variant v);

/* The bench's own protocol in the page payload. */
enum stub_cmd {
	CMD_REPORT = 0,      /* report at once (the handshake)               */
	CMD_STALL_SPIN = 1,  /* stop reporting; burn CPU                     */
	CMD_STALL_SLEEP = 2, /* stop reporting; sleep in FUTEX_WAIT forever  */
	CMD_EXIT = 3,
	CMD_BUSY = 4,        /* sleep a random busy_min_us + [0, busy_span_us),
	                        then report                                  */
};

enum stub_wake {
	WAKE_EVENTFD = 0, /* sw_stub_report(): IN_KERN + eventfd write        */
	WAKE_FUTEX = 1,   /* IN_KERN + FUTEX_WAKE on the state word (UML)      */
	WAKE_SPIN = 2,    /* IN_KERN only; waits by spinning while `spin`      */
};

struct bench_payload {
	uint32_t cmd;        /* enum stub_cmd, written before each resume */
	uint32_t wake;       /* enum stub_wake, fixed after the first report */
	uint32_t sleep_word; /* CMD_STALL_SLEEP waits on this             */
	uint32_t busy_min_us;  /* CMD_BUSY                                */
	uint32_t busy_span_us;
	uint32_t spin;       /* WAKE_SPIN: spin for the resume (else sleep) */
	uint32_t work_ns;    /* CMD_REPORT: busy "user code" before a report */
};

/* detect-load: busy stubs in one loop beside the stalled one. */
#define DL_BUSY_STUBS 1000

/* One monitor/stub pair of one variant. */
struct pair {
	enum variant v;
	struct sw_loop *loop;
	struct sw_stub *stub;
	struct sw_page *page;
	struct bench_payload *pl;
	pid_t pid;
	int wd_slot;   /* V_THREAD_WD: slot in the helper thread's table */
	void *ev;      /* V_STUBWATCH_EV: driver state                   */
};

/* Open a pair: its own loop (opts may be NULL), one stub that has made its
 * first report (so it is not in flight).  Returns 0 or -errno. */
int pair_open(struct pair *p, enum variant v, const struct sw_loop_opts *opts);
/* Add one more stub to an existing loop, not owning it; exec: re-execute
 * the bench as the stub (see bench_stub_exec_main) instead of fn mode. */
int pair_open_in(struct pair *p, enum variant v, struct sw_loop *loop,
		 bool exec);
/* main() of "stubwatch-bench --stub". */
int bench_stub_exec_main(void);
/* The stub every variant drives (fn mode; arg is its comm name). */
int bench_stub_main(struct sw_page *page, void *arg);
void pair_close(struct pair *p);
/* Timed round trips: samples[i] = ns of round trip i (NULL: untimed). */
int pair_run(struct pair *p, uint64_t *samples, size_t n);
/* One round trip with a command; for stalls the result is the kill. */
int pair_stall(struct pair *p, enum stub_cmd cmd, struct sw_event *ret_ev);

/* The reference fix's helper thread (one per process, as in UML). */
int wd_thread_start(uint64_t tick_ns, unsigned stall_ticks);
pid_t wd_thread_tid(void);
void wd_thread_stop(void);
/* The helper's longest time from a timer expiration to its read of it. */
uint64_t wd_thread_max_late(bool reset);

/* thread-wd for stubs opened with pair_open_in() (detect-load): a slot in
 * the helper's table (pair_close() or pair_wd_release() gives it back),
 * watched or not; progress is a seq bump per report served. */
int pair_wd_slot(struct pair *p);
void pair_wd_release(struct pair *p);
void pair_wd_watch(struct pair *p, bool on);
void pair_wd_progress(struct pair *p);
/* CLOCK_MONOTONIC when the helper sent the stub SIGKILL; 0: it did not. */
uint64_t pair_wd_killed_at(const struct pair *p);
/* V_THREAD_WD: resume with cmd (*ret_resumed: the clock right after) and
 * wait on the futex, as thread_wd's round trip does, until the helper has
 * killed the stub.  0, or -EPROTO if it reported instead. */
int pair_stall_wd(struct pair *p, enum stub_cmd cmd, uint64_t *ret_resumed);

/* CPU pinning.  Returns 0 or -errno. */
int pin_self(int cpu);
int pin_pid(pid_t pid, int cpu);

/* Clock. */
uint64_t now_ns(void);

/* Statistics over ns samples (sorts in place). */
struct lat_stats {
	size_t n;
	double p50, p90, p99, p999, max; /* microseconds */
};
void stats_compute(uint64_t *samples, size_t n, struct lat_stats *st);

/* --slice: untimed round trips before each later turn of a rep (the pair
 * that waited meanwhile is as cold as after a pause). */
#define SLICE_WARMUP 32

/* spawn.c: one kind of spawn, timed over cycles of spawn, first report and
 * sw_stub_free(). */
struct spawn_variant {
	const char *name;
	bool exec;            /* exec mode (else fn)                         */
	unsigned flags;       /* SW_SPAWN_* besides PDEATHSIG                */
	bool ran;
	struct lat_stats up;  /* spawn to first report                       */
	struct lat_stats cycle; /* spawn to the end of sw_stub_free()        */
};
/* n cycles of each variant, alternating; as uid nobody in a child process
 * if unprivileged (and the bench is root).  0 or -errno (nothing ran). */
int spawn_cost_run(struct spawn_variant *vs, int nv, size_t n,
		   bool unprivileged);
double quantile_sorted(const uint64_t *sorted, size_t n, double q);
double median_d(double *v, size_t n); /* sorts v */
double pct_d(double *v, size_t n, double q); /* sorts v */
void minmax_d(const double *v, size_t n, double *lo, double *hi);

/* Syscall counting (perf tracepoint raw_syscalls:sys_enter, per task). */
struct sc_counter {
	int fd;
};
int sc_available(const char **why);
int sc_open(struct sc_counter *c, pid_t tid);
/* A software counter (PERF_COUNT_SW_TASK_CLOCK, ..._CONTEXT_SWITCHES). */
int sc_open_sw(struct sc_counter *c, pid_t tid, uint64_t config);
void sc_close(struct sc_counter *c);
int sc_enable(struct sc_counter *c);
int sc_disable(struct sc_counter *c);
int64_t sc_read(struct sc_counter *c);

/* "SIGKILL sent" clock: samples of the signal:signal_generate tracepoint
 * raised by one monitor thread, with CLOCK_MONOTONIC timestamps. */
struct kill_clock;
int kill_clock_open(struct kill_clock **ret, pid_t tid);
/* The time of the latest SIGKILL sent to `target` since the last call;
 * 0 if none was seen. */
uint64_t kill_clock_take(struct kill_clock *kc, pid_t target);
void kill_clock_close(struct kill_clock *kc);

/* Large sample buffers that fork children do not inherit. */
void *buf_alloc(size_t bytes);
void buf_free(void *p, size_t bytes);

#endif
