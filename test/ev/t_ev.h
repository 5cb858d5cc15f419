/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The libev glue's test helpers, self-contained (no test/t_util): a case
 * runner (each case forked, with a timeout, /proc/self/fd counted and no
 * child left, before and after), a fn-mode stub driven by commands in the
 * shared page, and small clock and libev helpers.
 */
#ifndef T_EV_H
#define T_EV_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <stubwatch.h>
#include <stubwatch-ev.h>

#include "../t_common.h"

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

/* The watchdog settings of the timing cases: T = 50 ms, N = 4 (and the
 * default timer_div), so a stalled stub dies within [200 ms, 250 ms] of its
 * resume, plus what the loop reports with the kill: its own lateness and
 * the stub's starvation credit (t_check_kill()).  No slack of the tests'. */
#define T_TICK_NS  (50ull * 1000000)
#define T_STALL    4u
#define T_KILL_MIN (T_STALL * T_TICK_NS)

/*
 * A stall kill of a loop with T_TICK_NS, T_STALL and the default timer_div,
 * against the contract (stubwatch.h), with no slack: the stub's resume came
 * between t_before and t_after, on the loop's own thread; the loop reads its
 * timer only in its waits and dispatches, so every timer period it counts
 * against the stub expires after t_after, and
 *   killed_at_ns - t_after >= N*T + starved_ns,
 *   killed_at_ns - t_after <= (N+1)*T + monitor_late_ns + starved_ns,
 * starved_ns is whole periods, at most N*T; stall_ticks (periods less the
 * credit, in ticks) is N, or N + 1 if the killing read came k - 1 periods
 * late or more; silent_ns starts at the first read after the resume: after
 * t_after, and by t_after + one period + that read's lateness (part of
 * monitor_late_ns).  The reap after the SIGKILL is not the watchdog's and
 * is not bounded.
 */
void t_check_kill(const char *what, uint64_t t_before, uint64_t t_after,
		  const struct sw_kill_info *k);

/* ---- the case runner ---------------------------------------------------- */

struct t_case {
	const char *name;
	int (*fn)(void *arg);
	void *arg;
	unsigned timeout_ms;
};

/* Run every case, each in its own forked process group with a timeout, and
 * print TAP lines and a closing count.  Returns the program's exit code:
 * 1 if any case failed, 77 if all were skipped, 0 otherwise. */
int t_run(const char *prog, const struct t_case *cases, size_t n);

/* Set before t_run() by a program some of whose cases load the whole
 * machine: the cases whose names start with it run while no other case of
 * the suite does (t_cpu_lock()). */
extern const char *t_ev_alone;

/* Inside a case: fail at once (the case process _exit()s; the runner sees
 * the failure, and PDEATHSIG and the process group clean up its stubs). */
#define T_ASSERT(cond, ...)                                                 \
	do {                                                                \
		if (!(cond))                                                \
			t_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);     \
	} while (0)
/* Compare two integers and show both on failure. */
#define T_EQ(a, b)                                                          \
	do {                                                                \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);     \
		if (t_a_ != t_b_)                                           \
			t_fail(__FILE__, __LINE__, #a " == " #b,            \
			       "%lld != %lld", t_a_, t_b_);                 \
	} while (0)

__attribute__((noreturn, format(printf, 4, 5)))
void t_fail(const char *file, int line, const char *what, const char *fmt,
	    ...);
/* Print "# SKIP reason" and return T_SKIP (use as `return t_skip(...)`). */
__attribute__((format(printf, 1, 2))) int t_skip(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void t_note(const char *fmt, ...);

int t_count_fds(void);
bool t_no_children(void);
uint64_t t_now_ns(void);
/* Raise RLIMIT_NOFILE's soft limit to at least `want` (0, or -errno). */
int t_raise_nofile(unsigned long want);

/* ---- the stub ------------------------------------------------------------
 * A fn-mode stub (a raw clone3 copy of the case process: async-signal-safe
 * calls only).  It reports once at start, then obeys one command per
 * resume.  The monitor writes the command with t_cmd() before resuming. */
enum t_cmd {
	T_CMD_ECHO = 0, /* report at once                                    */
	T_CMD_SLEEP,    /* sleep arg microseconds, then report               */
	T_CMD_EXIT,     /* _exit(arg)                                        */
	T_CMD_SIGNAL,   /* kill itself with signal arg                       */
	T_CMD_STALL,    /* block SIGALRM (the hijack), then sleep for ever   */
	T_CMD_BAD,      /* write arg into the state word, ping the eventfd,
			   then sleep for ever: a protocol violation         */
};

struct t_msg {
	uint32_t cmd;      /* monitor -> stub */
	uint32_t arg;
	uint64_t seq;
	uint64_t reply;    /* stub -> monitor: the seq it answers */
	uint64_t reports;  /* reports the stub has made */
};

/* The stub's function (sw_spawn_opts.fn). */
int t_stub_main(struct sw_page *page, void *arg);
/* Spawn a command stub (PDEATHSIG, 4 KiB page).  -ENOSYS: skip. */
int t_spawn(struct sw_loop *loop, struct sw_stub **ret_stub);
/* Spawn and fail the case on any error but -ENOSYS (returned). */
struct sw_stub *t_spawn_ok(struct sw_loop *loop);
static inline struct t_msg *t_msg(struct sw_stub *s)
{
	return sw_page_payload(sw_stub_page(s));
}
/* Write the next command; returns its seq. */
uint64_t t_cmd(struct sw_stub *s, enum t_cmd cmd, uint32_t arg);

/* A loop with tick T (ns), stall limit N, default timer_div; fails the case
 * on error. */
struct sw_loop *t_loop(uint64_t tick_ns, uint32_t stall_ticks, unsigned flags);

/* Wait (busy, short sleeps) until the stub's state word is IN_KERN: its
 * report is made, whether or not the monitor has seen it yet. */
void t_wait_reported(struct sw_stub *s, unsigned timeout_ms);

/* ---- libev -------------------------------------------------------------- */

/* The two kinds of host loop every libev case runs under. */
enum t_evkind { T_EV_DEFAULT = 0, T_EV_NEW = 1 };
struct ev_loop *t_evloop(enum t_evkind kind);
void t_evloop_free(struct ev_loop *evloop);
static inline const char *t_evkind_name(enum t_evkind k)
{
	return k == T_EV_DEFAULT ? "ev_default_loop" : "ev_loop_new";
}

/* ev_run() until *done becomes true or timeout_ms pass; returns *done. */
bool t_ev_run_until(struct ev_loop *evloop, const volatile bool *done,
		    unsigned timeout_ms);

#endif
