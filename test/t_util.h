/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test helpers, prefixed t_.
 *
 * The harness (t_util.c, no library needed): a test program is a table of
 * named cases; t_main() runs each one in a forked child (its own process
 * group) under a timeout, counts the child's fds and children before and
 * after, and prints TAP ("ok N - name") with a closing count.  The program
 * exits 0 (all passed or skipped), 1 (a failure) or 77 (all skipped).
 *
 * Stubs are real processes running a role from one catalog (t_role_*), in
 * either spawn mode: fn mode runs the role in the raw clone3 child; exec
 * mode re-executes this very program as "/proc/self/exe --stub ROLE ARG",
 * which maps its page with sw_stub_map(SW_EXEC_PAGE_FD).  Roles use only
 * async-signal-safe calls, because an fn-mode child may not use malloc or
 * stdio (another thread of the monitor may have held their locks).
 *
 * Monitor-side helpers (t_stub.c, linked with libstubwatch): create a loop
 * with the suite's short ticks, spawn a role, drive the echo protocol.
 */
#ifndef T_UTIL_H
#define T_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t_common.h"
#include <sys/types.h>

#include "stubwatch.h"

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

/* ---- the harness ------------------------------------------------------- */

struct t_case {
	const char *name;
	void (*fn)(intptr_t param);
	intptr_t param;     /* handed to fn: e.g. the spawn mode           */
	unsigned timeout_s; /* 0: T_TIMEOUT_DEFAULT_S                      */
};
#define T_TIMEOUT_DEFAULT_S 10

/*
 * Run the cases named on the command line, or all of them; "-l" lists them.
 * "--stub ROLE ARG" is the exec-mode stub entry point instead.
 */
int t_main(int argc, char **argv, const struct t_case *cases, size_t ncases);

/* Set before t_main() by a program some of whose cases take a CPU from
 * every other process: the cases whose names start with it run while no
 * other case of the suite does (t_cpu_lock()). */
extern const char *t_cpu_alone;

#define T_NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* Failure: print where and why ("# " TAP diagnostics), exit(1). */
void t_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
/* Skip the running case: print the reason, exit(77). */
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A "# " diagnostic line. */
void t_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define t_assert(expr)                                                        \
	do {                                                                  \
		if (!(expr))                                                  \
			t_fail(__FILE__, __LINE__, "assertion failed: %s",    \
			       #expr);                                        \
	} while (0)

#define t_assert_msg(expr, ...)                                               \
	do {                                                                  \
		if (!(expr))                                                  \
			t_fail(__FILE__, __LINE__, __VA_ARGS__);              \
	} while (0)

/* Integers compared as long long, both values printed on failure. */
#define t_assert_eq(a, b)                                                     \
	do {                                                                  \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);       \
		if (t_a_ != t_b_)                                             \
			t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld",  \
			       #a, #b, t_a_, t_b_);                           \
	} while (0)

/* A call's return value must be exactly `want` (0, a count, or -Exxx). */
#define t_assert_rc(call, want)                                               \
	do {                                                                  \
		long long t_r_ = (long long)(call), t_w_ = (long long)(want); \
		if (t_r_ != t_w_)                                             \
			t_fail(__FILE__, __LINE__,                            \
			       "%s returned %lld (%s), expected %lld (%s)",   \
			       #call, t_r_, t_errname(t_r_), t_w_,            \
			       t_errname(t_w_));                              \
	} while (0)

/* "-EINVAL" for -22, "0" for 0, "ok" for positive values. */
const char *t_errname(long long rc);

/* ---- processes, fds, time ---------------------------------------------- */

uint64_t t_now_ns(void);               /* CLOCK_MONOTONIC */
void t_sleep_ns(uint64_t ns);          /* whole, restarted after signals */
/* Time this thread spent runnable but not running, from
 * /proc/thread-self/schedstat (0 if unavailable). */
uint64_t t_run_delay_ns(void);
/* The same for a process (its main thread), /proc/PID/schedstat. */
uint64_t t_run_delay_of(pid_t pid);
/* The process's CPU time over [t0, now] (cpu0 its t_process_cpu_ns() at
 * t0) stays well under the wall time: nothing spun meanwhile. */
void t_assert_no_spin(const char *what, uint64_t cpu0, uint64_t t0);
int t_fd_count(void);                  /* entries of /proc/self/fd */
/* true if this process has no child at all, live or zombie, of any kind */
bool t_no_children(void);
/* /proc/PID/stat state letter, or 0 if the process is gone */
char t_proc_state(pid_t pid);
/* Wait (at most timeout_ns) until /proc/PID/stat shows one of `letters`. */
bool t_wait_proc_state(pid_t pid, const char *letters, uint64_t timeout_ns);

#define T_MS 1000000ull

/*
 * The suite's watchdogs: short ticks so the suite runs fast.
 *   t_loop_timed(): T = 20 ms, for the cases that time kills;
 *   t_loop():       T = 100 ms, for the rest, so that a loaded machine (a
 *                   stub not scheduled for N*T is rightly killed) does not
 *                   turn into false failures of cases about other things.
 */
#define T_TICK_NS  (20 * T_MS)  /* T of t_loop_timed() */
#define T_FTICK_NS (100 * T_MS) /* T of t_loop()       */
#define T_STALL    5u           /* N of both           */

/* ---- stub roles -------------------------------------------------------- */

/* Built with ThreadSanitizer?  Then fn-mode stubs are skipped: they run
 * instrumented code in a raw clone3 child, where the TSan runtime's locks
 * may be held by another thread (its own background thread, at least). */
#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_TSAN 1
#endif
#endif
#ifndef T_TSAN
#define T_TSAN 0
#endif

/* Under AddressSanitizer (and LeakSanitizer). */
#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifndef T_ASAN
#define T_ASAN 0
#endif

enum t_mode {
	T_FN = 0,   /* the role runs in the clone3 child                   */
	T_EXEC = 1, /* the test program re-executed as the stub            */
};
const char *t_mode_name(intptr_t mode);

/*
 * A case's parameter: the spawn mode in the low byte, loop flags above, so
 * that one case runs once per code path (e.g. with and without adaptive
 * polling).  Every helper that takes a mode ignores the flags.
 */
#define T_POLL ((intptr_t)SW_LOOP_ADAPTIVE_POLL << 8)
#define T_PMODE(param) ((param) & 0xff)
#define T_PFLAGS(param) ((unsigned)((param) >> 8))

/*
 * The payload of the echo protocol (after the 64-byte page header).
 * The monitor writes req (and arg, value, delay_ns) and resumes; the stub
 * answers ack = req + 1, or carries out a command.
 */
struct t_payload {
	uint64_t req;      /* monitor -> stub: a sequence number or T_REQ_*   */
	uint64_t ack;      /* stub -> monitor: req + 1                        */
	uint64_t delay_ns; /* monitor -> stub: sleep this long before a report */
	uint64_t arg;      /* monitor -> stub: the command's argument         */
	uint64_t rounds;   /* stub -> monitor: reports made so far            */
	uint32_t gate;     /* futex word for T_REQ_GATED                      */
	uint32_t pad;
	uint64_t fds[4];   /* T_REQ_FDCHECK: fd numbers to probe (-1: none)   */
	uint64_t result;   /* T_REQ_FDCHECK: bit i set if fds[i] is open      */
};

#define T_REQ_CMD    (1ull << 62)
#define T_REQ_STOP   (T_REQ_CMD + 0) /* return 0                          */
#define T_REQ_EXIT   (T_REQ_CMD + 1) /* return arg                        */
#define T_REQ_STALL  (T_REQ_CMD + 2) /* sleep delay_ns, then t_stall(arg),
					never returns                      */
#define T_REQ_GATED  (T_REQ_CMD + 3) /* wait until gate != 0, then answer */
#define T_REQ_SIGNAL (T_REQ_CMD + 4) /* kill(getpid(), arg)               */
#define T_REQ_FDCHECK (T_REQ_CMD + 5) /* probe fds[], answer with result  */
#define T_REQ_EXIT_IDLE (T_REQ_CMD + 6) /* report, sleep delay_ns, then
					   return arg without waiting to be
					   resumed                          */
#define T_REQ_SCRIBBLE (T_REQ_CMD + 7) /* overwrite magic/abi/size/reserved,
					  then answer normally              */
#define T_REQ_GARBAGE_IDLE (T_REQ_CMD + 8) /* report, sleep delay_ns, then
					      T_STALL_GARBAGE with arg as the
					      value, while not in flight    */
#define T_REQ_FLOOD_IDLE (T_REQ_CMD + 9) /* report, then write its eventfd
					    in a loop, while not in flight */
#define T_REQ_NOTIFY (T_REQ_CMD + 10) /* getpgid(0) arg times, answer with
					 result = the sum of what it got   */
#define T_REQ_NOTIFY_STALL (T_REQ_CMD + 11) /* getpgid(0) once, then
					       t_stall(arg)                 */
#define T_REQ_VFORK (T_REQ_CMD + 12) /* vfork a child that sleeps arg ns
					and exits (the stub waits in the
					kernel, state D), then answer     */
#define T_REQ_KIN (T_REQ_CMD + 13) /* make arg >> 8 descendants (at most
				      8) that sleep for ever, as arg's low
				      byte (enum t_kin) says, then answer
				      with result = the last clone's value:
				      a pid as the stub sees it, or -errno */
#define T_REQ_HEAVY (T_REQ_CMD + 14) /* map arg bytes of private memory in
					small pages and write every page,
					then answer with result = the bytes
					written: an exit the kernel takes a
					while to tear down               */

/* How T_REQ_KIN makes each descendant (raw clone, no fork handlers). */
enum t_kin {
	T_KIN_FORK = 1, /* a child                                          */
	T_KIN_DAEMON,   /* a child that calls setsid() and forks a grandchild,
			   then exits (the stub reaps it): the grandchild is
			   orphaned, in a session of its own                */
	T_KIN_SIBLING,  /* clone(CLONE_PARENT): a child of the stub's parent,
			   the monitor, with the stub's exit_signal (0)      */
};
#define T_KIN_ARG(kind, n) ((uint64_t)(kind) | ((uint64_t)(n) << 8))

/*
 * Stall kinds: what a stub does when it stops reporting (the low byte of
 * the argument); T_STALL_GARBAGE takes the value it writes into
 * page->state from the argument's high 32 bits.  (No nice 19 for spinners:
 * a SIGKILLed stub still needs CPU to die, and a nice 19 one on a loaded
 * machine dies late, which the timing checks would blame on the monitor.)
 */
enum t_stall_kind {
	T_STALL_SPIN = 1,          /* burn CPU, SIGALRM left as it is       */
	T_STALL_FUTEX,             /* sleep in FUTEX_WAIT on its own word   */
	T_STALL_BLOCKED_SPIN,      /* block SIGALRM, then spin              */
	T_STALL_BLOCKED_FUTEX,     /* block SIGALRM, then futex sleep       */
	T_STALL_FLOOD,             /* write its eventfd in a loop, no IN_KERN */
	T_STALL_STOP_SELF,         /* kill(getpid(), SIGSTOP)               */
	T_STALL_GARBAGE,           /* page->state = value, eventfd write,
				      then futex sleep                      */
	T_STALL_LEADER_EXIT,       /* a thread that blocks SIGALRM and
				      spins, then the main thread exits
				      alone (a zombie leader)               */
};
#define T_STALL_ARG(kind, value) ((uint64_t)(kind) | ((uint64_t)(value) << 32))

/* The role catalog.  Arguments arrive as (void *)(uintptr_t)arg. */
int t_role_echo(struct sw_page *page, void *arg);  /* the echo protocol    */
int t_role_stall(struct sw_page *page, void *arg); /* t_stall(arg) at once */
int t_role_exit(struct sw_page *page, void *arg);  /* return arg at once   */
int t_role_signal(struct sw_page *page, void *arg);/* kill(self, arg)      */
/* return 0 if getenv("T_ENV_PROBE") is "yes", else 1 */
int t_role_envcheck(struct sw_page *page, void *arg);
/* UML-style preemption: report once, then spin; a SIGALRM handler
 * reports (ack += 1) and waits to be resumed. */
int t_role_alarm(struct sw_page *page, void *arg);
/* The echo protocol under a seccomp filter that sends getpgid(0) to a user-
 * notification listener; the listener's fd number is in result at the
 * first report (fetch it with pidfd_getfd(2)). */
int t_role_notify(struct sw_page *page, void *arg);

typedef int (*t_role_fn)(struct sw_page *page, void *arg);
t_role_fn t_role_find(const char *name);

/* Exit codes of an exec-mode stub that could not start its role. */
#define T_STUB_ERR_ROLE 121 /* unknown role or missing argument          */
#define T_STUB_ERR_MAP  122 /* sw_stub_map(SW_EXEC_PAGE_FD) failed        */
#define T_STUB_ERR_FD   123 /* report_fd is not SW_EXEC_REPORT_FD, or closed */

static inline struct t_payload *t_payload(struct sw_page *page)
{
	return (struct t_payload *)sw_page_payload(page);
}

/* ---- monitor side (t_stub.c, needs libstubwatch) ----------------------- */

/* A loop with T_FTICK_NS (t_loop) or T_TICK_NS (t_loop_timed) and T_STALL,
 * or the given values (0: default). */
struct sw_loop *t_loop(void);
struct sw_loop *t_loop_timed(void);
/* The same with the loop flags of a case parameter (T_PFLAGS). */
struct sw_loop *t_loop_p(intptr_t param);
struct sw_loop *t_loop_timed_p(intptr_t param);
struct sw_loop *t_loop_opts(uint64_t tick_ns, uint32_t stall_ticks,
			    uint32_t timer_div, unsigned flags);

/* Spawn `role` with `arg` in `mode`; returns sw_stub_spawn()'s value. */
int t_spawn_rc(struct sw_loop *loop, intptr_t mode, const char *role,
	       uint64_t arg, unsigned flags, struct sw_stub **ret_stub);
/* The same, asserting success. */
struct sw_stub *t_spawn(struct sw_loop *loop, intptr_t mode, const char *role,
			uint64_t arg);
/* Spawn an echo stub and collect its first report (ack == 1). */
struct sw_stub *t_spawn_echo(struct sw_loop *loop, intptr_t mode);

/* The echo payload of a stub. */
struct t_payload *t_pl(struct sw_stub *stub);

/* Resume with a request and wait; returns the event type. */
int t_request(struct sw_stub *stub, uint64_t req, struct sw_event *ev);
/* n echo round trips, each answer checked. */
void t_echo(struct sw_stub *stub, unsigned long n);
/*
 * A stall kill of a stub that was to report, with the whole starvation
 * credit used (starved_ns >= N*T: it was runnable with no CPU, or blocked
 * in the kernel, state D, for at least N*T of its window) says nothing
 * about the monitor: skip the case as inconclusive, with the figures.  A
 * stub that reported and sleeps (state S) is never credited, so a lost
 * report cannot hide here.  t_expect() (for a REPORT) and t_echo() call it.
 */
void t_skip_if_held(struct sw_stub *stub, int rc, const struct sw_event *ev);
/* Wait for one event and assert its type. */
void t_expect(struct sw_stub *stub, enum sw_event_type type,
	      struct sw_event *ev);
/* Ask an echo stub to exit 0, assert the EXIT, free it. */
void t_stop(struct sw_stub *stub);

const char *t_ev_name(int type);
/* A "# " line describing an EXIT or KILL event. */
void t_note_event(int rc, const struct sw_event *ev);
const char *t_reason_name(int reason);
/* A waitpid status as text: "exit 3", "signal 9". */
const char *t_status_str(int status, char buf[static 32]);

/*
 * A stall kill's timing, against the watchdog's contract (stubwatch.h) and
 * nothing else: no slack.  The stub's resume (or continue, or spawn) came
 * between t_before and t_after, on this thread.  The loop reads its timer
 * only inside its own waits and dispatches, so the first read after the
 * resume, and every timer period counted against the stub, comes after
 * t_after; the kill needs N*k + 1 counted periods, plus one per period of
 * starvation credit.  So, with T and N (and k) the loop's own:
 *   killed_at_ns - t_after >= N*T + starved_ns    (never early; the credit
 *                                                  only delays)
 *   killed_at_ns - t_after <= (N+1)*T + monitor_late_ns + starved_ns
 * (t_after is at or after the resume, so this is the contract's bound);
 * starved_ns is a whole number of timer periods, at most N*T.  stall_ticks
 * counts the periods minus the credit, in whole ticks: N, or N + 1 when the
 * killing read was late by k - 1 periods or more (it then counted a whole
 * tick at once; monitor_late_ns includes that read's lateness).  The time
 * from the SIGKILL to the death and the reap is not the watchdog's and is
 * not bounded here.
 */
void t_assert_kill_window(const char *what, struct sw_loop *loop,
			  uint64_t t_before, uint64_t t_after,
			  const struct sw_kill_info *k);

/* FUTEX_WAKE on a word of the shared page (shared futex). */
void t_futex_wake(uint32_t *word);

#endif
