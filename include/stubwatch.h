/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch: supervise untrusted stub processes from one single-threaded
 * loop per vCPU.  The handshake, stall detection and SIGKILL all happen in
 * the wait itself, on epoll, eventfd, pidfd and timerfd; there is no helper
 * thread.
 *
 * Conventions
 *   - Every fallible call returns >= 0 on success or a negative errno value.
 *     errno itself is not part of the contract.  The errors each call can
 *     return are listed with it; any other value is a bug.
 *   - Constructors return their object through a ret_* out-parameter, which
 *     is left untouched on failure.
 *   - Destructors accept NULL and return NULL.
 *   - The library keeps no global state, installs no signal handlers, never
 *     logs and never exits; every fd it creates is O_CLOEXEC.
 *   - A loop and its stubs are used by one thread at a time (one loop per
 *     vCPU thread).  Different loops share nothing and need no locks.
 *
 * The two sides of the handshake
 *   monitor: write a request into the shared page, sw_stub_resume() (state
 *            IN_CHILD + FUTEX_WAKE), then sw_stub_wait() (one epoll_wait).
 *   stub:    write the report into the page, sw_stub_report() (state
 *            IN_KERN + eventfd write), then sw_stub_wait_resume()
 *            (FUTEX_WAIT until IN_CHILD).
 *
 * The stub side (sw_page, sw_stub_report(), sw_stub_wait_resume(), ...) is
 * defined inline in this header and is async-signal-safe: it makes raw
 * system calls only and touches nothing but the shared page and one word of
 * its own (the spin window of sw_stub_wait_resume(), a static).
 *
 * What a stub can do, and what it cannot
 *   The monitor survives anything a stub does through what it shares with
 *   the monitor: its page (any value, at any time), its report eventfd (it
 *   shares the open file description, so it may clear O_NONBLOCK, drain,
 *   flood or saturate the counter, or close it), its watched fd; and
 *   anything it does to itself: exit, stop, spin, sleep, fork, block
 *   signals, have a child ptrace it and hide its zombie.  No call the
 *   monitor makes on those objects can block, and every wait ends in a
 *   report, an exit or a kill on time.
 *   The design assumes the stub cannot act on the monitor itself: signal
 *   it (SIGSTOP would freeze its watchdog), ptrace it, or write its memory
 *   (/proc/PID/mem, process_vm_writev).  Take those powers away by running
 *   the stub under a seccomp filter that allows only what the stub side
 *   needs (futex, write on SW_STUB_REPORT_FD, rt_sigreturn, exit), as UML
 *   does (examples/sandboxed-stub.c shows one), or under another uid.
 *   A stub's descendants outlive it unless it runs with SW_SPAWN_PIDNS
 *   (the kernel kills them with it) or its filter forbids clone and fork;
 *   without either, clone(CLONE_PARENT) even makes the monitor a child it
 *   did not spawn.
 */
#ifndef STUBWATCH_H
#define STUBWATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STUBWATCH_VERSION_MAJOR 0
#define STUBWATCH_VERSION_MINOR 1

/* ------------------------------------------------------------------------
 * The shared page: a versioned ABI
 *
 * The monitor maps a sealed memfd of sw_spawn_opts.shm_size bytes (a whole
 * number of pages) and shares it with the stub.  It starts with this 64-byte
 * header; the rest, from SW_PAGE_PAYLOAD on, belongs to the caller's own
 * request/report protocol (and, in a UML-style stub, its signal stack).
 *
 * The monitor writes magic, abi, size and report_fd once, before the stub
 * starts, and `monitor` (and `resume_ticks`) at each resume.  It reads back
 * only `state`, `stub_cpu` and `stub`, and treats whatever it finds there as
 * untrusted: a `state` other than SW_STATE_IN_KERN and SW_STATE_IN_CHILD is a
 * protocol violation and the stub is killed with SW_KILL_PROTOCOL; a false
 * `stub_cpu` can only make the monitor's adaptive polling worse for that stub,
 * and a false SW_STUB_SPINNING only leaves the stub asleep without its wake-up,
 * so that it stalls and is killed like any other silent stub (the monitor's
 * cost of a resume stays a few loads and stores either way).  A stub that skips
 * its eventfd write while SW_MON_SLEEPING is set only slows itself down: its
 * report is found in the state word when the watchdog looks at it, at the
 * latest at its stall deadline (N*T after its resume, as for a kill), and taken
 * as a report, never as a stall, since an honest stub may be preempted between
 * the two.  The monitor never trusts magic, abi, size, report_fd, monitor or
 * resume_ticks back.
 *
 * ABI rules: fields are only ever appended inside the 64-byte header (using
 * `reserved`); a layout change that is not an append bumps SW_PAGE_ABI.
 * ------------------------------------------------------------------------ */
#define SW_PAGE_MAGIC   0x77537453u /* "StSw" little-endian */
#define SW_PAGE_ABI     1u
#define SW_PAGE_PAYLOAD 64u

/* Values of sw_page.state, the futex word. */
#define SW_STATE_IN_KERN  1u /* the stub has reported; the monitor runs   */
#define SW_STATE_IN_CHILD 2u /* the monitor has resumed the stub; it runs */

/* Bits of sw_page.monitor, written by the monitor. */
#define SW_MON_SLEEPING 1u /* it sleeps (or is about to) in epoll_wait: a
                              report must write the eventfd to wake it     */
#define SW_MON_WANT_CPU 2u /* write stub_cpu at each report, read with
                              RDTSCP: set only where the CPU has it, for
                              stubs built before SW_MON_CPU_SEG           */
#define SW_MON_STUB_SPIN 4u /* the stub may spin for its next resume: the
                               monitor runs on another CPU and polls
                               (SW_LOOP_ADAPTIVE_POLL)                    */
#define SW_MON_CPU_SEG 8u /* write stub_cpu at each report, read from the
                             per-CPU segment (sw__cpu()); a stub honours
                             this or SW_MON_WANT_CPU                      */

/* Bits of sw_page.stub, written by the stub. */
#define SW_STUB_SPINNING 1u /* it spins on `state` for its resume, so the
                               resume need not wake it (FUTEX_WAKE)       */

/* File descriptors a stub finds open.  Its report eventfd is always on
 * SW_STUB_REPORT_FD (unless SW_SPAWN_KEEP_FDS in fn mode, where it keeps the
 * monitor's number: read sw_page.report_fd), so that one seccomp filter
 * allowing write() on that fd fits every stub.  An exec'd stub also finds
 * the page's memfd on SW_EXEC_PAGE_FD. */
#define SW_EXEC_PAGE_FD    3
#define SW_STUB_REPORT_FD  4
#define SW_EXEC_REPORT_FD  SW_STUB_REPORT_FD /* the same, by its old name */

struct sw_page {
	uint32_t magic;     /* SW_PAGE_MAGIC                               */
	uint32_t abi;       /* SW_PAGE_ABI                                 */
	uint32_t size;      /* bytes shared, header included               */
	uint32_t state;     /* SW_STATE_*: the futex word                  */
	int32_t report_fd;  /* the stub's fd number of its report eventfd  */
	uint32_t monitor;   /* SW_MON_* bits                               */
	int32_t stub_cpu;   /* stub: the CPU it reported from (if asked)   */
	uint32_t stub;      /* SW_STUB_* bits, written by the stub         */
	uint64_t resume_ticks; /* monitor: the CPU counter at its last resume
	                          of a stub allowed to spin (SW_MON_STUB_SPIN),
	                          which the stub's window adapts to     */
	uint32_t reserved[6];
	/* payload follows at offset SW_PAGE_PAYLOAD */
};

/* The caller's area of the shared page. */
static inline void *sw_page_payload(struct sw_page *page)
{
	return (char *)page + SW_PAGE_PAYLOAD;
}

/* ------------------------------------------------------------------------
 * Monitor side
 * ------------------------------------------------------------------------ */
struct sw_loop;
struct sw_stub;

/* Loop configuration (NULL for all defaults).  Start from
 * SW_LOOP_OPTS_INIT or zero-initialise and set `size`, tick_ns and
 * stall_ticks (both required, zero is -EINVAL); a zero optional field
 * (timer_div, flags, poll_max_ns) takes its default.  `size` must cover at
 * least stall_ticks; every later field it covers counts, each on its own,
 * and those past it take their defaults.  A larger size than this version
 * knows is accepted and the fields past it are ignored. */
struct sw_loop_opts {
	size_t size;           /* sizeof(struct sw_loop_opts)                   */
	uint64_t tick_ns;      /* watchdog tick T (default 1 s)                 */
	uint32_t stall_ticks;  /* N: kill after N..N+1 ticks of silence (5),
	                          plus a starved stub's credit (at most N
	                          more) and the monitor's own lateness       */
	uint32_t timer_div;    /* the loop's one timerfd fires every T/timer_div;
	                          default 8, at least 2 (see below)             */
	unsigned flags;        /* SW_LOOP_*                                     */
	uint32_t poll_max_ns;  /* SW_LOOP_ADAPTIVE_POLL: the budget's ceiling;
	                          default 50 us, at most 1 ms                   */
};

/* Adaptive polling (opt-in, used by sw_stub_run()): before sleeping in
 * epoll_wait, spin on the stub's state word for up to a budget that adapts
 * per stub, as KVM's halt_poll_ns does: it grows when a report came soon
 * after the spin gave up, shrinks when the stub took long, and is never used
 * when the stub last reported from the monitor's own CPU (spinning there
 * only delays it).  A report seen while spinning costs neither side a
 * wake-up.  Its stubs then spin too, in sw_stub_wait_resume(), on windows
 * of their own (SW_MON_STUB_SPIN), so that a resume needs no FUTEX_WAKE:
 * a round trip across CPUs makes no system call on either side.  It spends
 * CPU to cut cross-CPU round trips; see bench/. */
#define SW_LOOP_ADAPTIVE_POLL (1u << 1)

/* sw_stub_wait() also returns SW_EV_TICK for each timer read during the wait
 * (every T/timer_div), so that a monitor can preempt the stub it waits on
 * (send it SIGALRM) from the same loop and the same timer. */
#define SW_LOOP_TICK_EVENTS (1u << 0)

#define SW_LOOP_OPTS_INIT                                                   \
	{ .size = sizeof(struct sw_loop_opts), .tick_ns = SW_TICK_NS_DEFAULT,  \
	  .stall_ticks = SW_STALL_TICKS_DEFAULT }

#define SW_TICK_NS_DEFAULT     1000000000ull
#define SW_STALL_TICKS_DEFAULT 5u
#define SW_TIMER_DIV_DEFAULT   8u
/* Limits: tick_ns / timer_div >= SW_TIMER_NS_MIN (and divides evenly);
 * 1 <= stall_ticks <= SW_STALL_TICKS_MAX; 2 <= timer_div <= SW_TIMER_DIV_MAX;
 * tick_ns * (stall_ticks + 1) must fit in int64_t nanoseconds. */
#define SW_TIMER_NS_MIN        1000ull
#define SW_STALL_TICKS_MAX     1000000u
#define SW_TIMER_DIV_MAX       1000000u
#define SW_POLL_MAX_NS_DEFAULT 50000u
#define SW_POLL_MAX_NS_MAX     1000000u

/*
 * Create a loop: an epoll fd holding one timerfd and one eventfd (readable
 * while completions wait for a dispatch).  opts may be NULL (defaults).
 *
 * The watchdog guarantees that a stub in flight (spawned, resumed or
 * continued, not yet reported) is never killed before stall_ticks * tick_ns
 * (N*T) of silence, counted from its resume, and is killed by (N+1)*T plus
 * what the monitor itself made it late, both reported with the kill
 * (sw_kill_info.monitor_late_ns, starved_ns), as long as the loop's thread
 * waits or dispatches.  The timer runs every P = T/k (k = timer_div) on a
 * fixed grid; each read counts the periods that elapsed (its expiration
 * count, at most k), so a busy monitor whose reads come late still counts
 * every period, while a frozen one (SIGSTOP, a paused VM) accrues at most
 * one tick per read and never kills early.  The first read after a resume
 * never counts (it may hold expirations from before the resume), and the
 * stub is killed once N*k + 1 periods are counted.  With a promptly
 * scheduled monitor the kill lands in (N*T, N*T + 2*T/k]; a late one adds
 * the lateness of the first read after the resume and of the killing read,
 * each measured from the expiration it took (sw_loop_get_stats() keeps the
 * loop's worst).  A wait or dispatch that keeps finding stub events still
 * takes the timer once a period, by the vDSO clock.  A stub that was
 * runnable but got no CPU (/proc/PID/schedstat, with the wait still going
 * on at the kill: state R, run time and CPU count unchanged for more than
 * 20 ms since a look the loop takes each period in the stub's last tick),
 * or that the looks found blocked in the kernel (state D: a page fault, a
 * lock, an exit held up), has that wait taken off its silence before a
 * stall kill, up to N*T more.  The handshake
 * path makes no clock system call (a wait that sw_stub_run() settles
 * without sleeping reads the vDSO clock once, to see whether the timer is
 * due; SW_LOOP_ADAPTIVE_POLL reads it while spinning).  The timer is
 * disarmed after a read that finds nothing in flight, so an idle loop does
 * not wake its host.
 *
 * Errors: -EINVAL  ret_loop is NULL, opts->size is too small, tick_ns or
 *                  stall_ticks is zero, or a value is out of the limits
 *                  above, or an unknown flag is set;
 *         -ENOMEM, -EMFILE, -ENFILE  resources.
 */
int sw_loop_new(const struct sw_loop_opts *opts, struct sw_loop **ret_loop);

/*
 * Destroy a loop.  Stubs still attached to it are killed (SIGKILL, all of
 * them first, so the kernel takes them down side by side), reaped and
 * freed, and so are killed stubs freed while the kernel was still taking
 * them down (this waits for that teardown, never for a tracer: a zombie a
 * tracer holds is left to it); in a child after fork they are only
 * forgotten (they are not the child's).  Accepts NULL; returns NULL.  Refused while the loop is inside
 * one of its callbacks or a wait: returns the loop unchanged.
 */
struct sw_loop *sw_loop_free(struct sw_loop *loop);

/* The loop's settings in effect.  Set ret_opts->size first.
 * Errors: -EINVAL (NULL, or ret_opts->size too small). */
int sw_loop_get_opts(const struct sw_loop *loop, struct sw_loop_opts *ret_opts);

/*
 * The loop's epoll fd, for embedding: poll it for readability in a host
 * main loop, then call sw_loop_dispatch().  The fd stays owned by the loop.
 *
 * Errors: -EINVAL (NULL), -ECHILD (used in a child after fork).
 */
int sw_loop_get_fd(struct sw_loop *loop);

/*
 * Handle everything that is ready, without blocking: reports, deaths and
 * watchdog ticks.  For each stub that completes (reported, exited, killed)
 * its callback runs if it has one; otherwise the result stays pending for
 * sw_stub_wait().  The tick callback runs once if there were timer reads.
 * Returns the number of stub callbacks invoked.  With a host that calls
 * sw_loop_prepare(), the stubs it told of the sleep most recently (up to 8,
 * until they report) are looked at first, in their state words: those that
 * reported (most likely what woke the host) have their callbacks run before
 * the epoll_wait, so a resume from the callback does not wait for it.
 *
 * Errors: -EINVAL (NULL), -ECHILD (after fork), -EBUSY (called from inside
 *         one of this loop's callbacks, or while a wait runs), or the first
 *         negative value a callback returned: every completion is still
 *         delivered (none is left queued behind the error).
 */
int sw_loop_dispatch(struct sw_loop *loop);

/*
 * For a host that can run code right before it blocks (libev's ev_prepare,
 * GLib's prepare, a hand-written poll loop): call this before every blocking
 * poll of the loop's fd, once you have called it once.  From the first call
 * on, sw_stub_resume() tells the stub the monitor is awake, and this call
 * then tells each stub resumed since that the monitor may sleep, taking at
 * once the reports already made: the round trips that a stub answers before
 * the host would sleep cost no poll, no eventfd write and no dispatch, as
 * with sw_stub_run().  It runs callbacks as sw_loop_dispatch() does, for up
 * to 64 rounds of resumes made by them, and returns their number.  After it
 * returns the host may block: anything left is either armed to wake it or
 * makes the loop's fd readable.
 *
 * Errors: as sw_loop_dispatch().
 */
int sw_loop_prepare(struct sw_loop *loop);

/* With SW_LOOP_TICK_EVENTS: called from sw_loop_dispatch() or
 * sw_loop_prepare() when it read the timer (once per call however many
 * reads); a timer read inside sw_stub_wait() is that wait's SW_EV_TICK
 * instead.  NULL to clear.
 * Errors: -EINVAL (NULL loop). */
typedef int (*sw_tick_fn)(struct sw_loop *loop, void *userdata);
int sw_loop_set_tick_callback(struct sw_loop *loop, sw_tick_fn fn,
			      void *userdata);

/* Stubs attached to the loop, and stubs in flight.  Errors: -EINVAL. */
int sw_loop_count_stubs(const struct sw_loop *loop);
int sw_loop_count_in_flight(const struct sw_loop *loop);

/* The loop's own timeliness, since its creation or the last reset. */
struct sw_loop_stats {
	size_t size;             /* sizeof(struct sw_loop_stats)               */
	uint64_t timer_reads;    /* reads of the loop's timer                  */
	uint64_t timer_periods;  /* timer periods counted (a read counts its
	                            expirations, at most timer_div)            */
	uint64_t max_late_ns;    /* longest time from a timer expiration to the
	                            read that took it: how late the monitor
	                            itself was (0 for a promptly scheduled one) */
	uint64_t max_gap_ns;     /* longest time between two timer reads while
	                            the timer was armed                        */
};

/*
 * Read the loop's timer statistics into *ret_stats (set ret_stats->size
 * first; a larger size than this version knows is accepted, the fields past
 * it are left alone).  With reset, start them again from zero.
 * Errors: -EINVAL (NULL, or ret_stats->size too small).
 */
int sw_loop_get_stats(struct sw_loop *loop, struct sw_loop_stats *ret_stats,
		      int reset);

/* struct sw_kill_info has killed_at_ns, monitor_late_ns and starved_ns. */
#define SW_KILL_INFO_HAS_LATENESS 1

/* Why a stub was killed. */
enum sw_kill_reason {
	SW_KILL_STALL = 1,    /* silent for the stall limit                 */
	SW_KILL_PROTOCOL = 2, /* bad value in the shared page               */
	SW_KILL_USER = 3,     /* sw_stub_kill() by the monitor              */
};

/* Gathered at kill time, just before SIGKILL; the stall_* figures against a
 * baseline taken once per resume, after a whole tick of silence (never on
 * the hot path). */
struct sw_kill_info {
	enum sw_kill_reason reason;
	pid_t pid;
	uint64_t silent_ns;   /* silence before the kill, from the first timer
	                         read after the resume (0 unless STALL)        */
	uint32_t stall_ticks; /* whole watchdog ticks of silence counted       */
	int sigalrm_blocked;  /* 1/0: SIGALRM in sigblk; -1 n/a                */
	uint64_t sigblk;      /* the signals every live thread of the stub
	                         blocks (SigBlk in /proc; 0 if unavailable)   */
	char state;           /* State letter of its most awake thread (R, D,
	                         S, T, Z in that order; '?' if n/a)            */
	uint64_t cpu_ns;      /* user+system CPU time of the stub, all its
	                         threads (0 if n/a)                            */
	uint32_t bad_state;   /* SW_KILL_PROTOCOL: the state word found        */
	/* STALL: what the stub's threads did during the stall (sums over its
	 * threads), from the first timer read after a whole tick of silence
	 * to the kill (from /proc/PID/task/TID/schedstat; all 0 if
	 * unavailable, or if a thread exited meanwhile and took its figures
	 * along).  A spinning stub runs
	 * most of the window, a starved one waits for a CPU, a stopped or
	 * sleeping one does neither.  The wait includes one still going on at
	 * the kill, as the loop's looks saw it, and time the looks saw it
	 * blocked in the kernel (D). */
	uint64_t stall_window_ns; /* the span observed                         */
	uint64_t stall_run_ns;    /* time it ran on a CPU in it                */
	uint64_t stall_wait_ns;   /* time it waited for a CPU (or, seen, in D) */
	/* STALL: the timing of the kill itself.  With R the stub's last
	 * resume (or continue), the watchdog guarantees
	 *   N*T <= killed_at_ns - R <= (N+1)*T + starved_ns + monitor_late_ns
	 * so a kill later than (N+1)*T is always explained by these two. */
	uint64_t killed_at_ns;    /* CLOCK_MONOTONIC when the kill was decided,
	                             right before the /proc reads and the
	                             SIGKILL                                 */
	uint64_t monitor_late_ns; /* how late the monitor's own timer reads made
	                             it: the first read after the resume and the
	                             killing read, each counted from the timer
	                             expiration it took, plus any timer periods
	                             beyond one tick that a single read found
	                             (a frozen monitor) and did not count     */
	uint64_t starved_ns;      /* wait taken off the stub's silence
	                             (runnable with no CPU, or blocked in the
	                             kernel, D); at most N*T                  */
};

enum sw_event_type {
	SW_EV_REPORT = 1, /* a valid report: the page's state is IN_KERN      */
	SW_EV_EXIT = 2,   /* the stub died on its own; status is set, reaped
	                     (also when a kill found it exiting already, or
	                     dying of its own signal: the status is not the
	                     SIGKILL's)                                     */
	SW_EV_KILL = 3,   /* the stub was killed; kill and status set.  Reaped,
	                     or, if a timer period after the SIGKILL it is in
	                     its exit but the kernel has not finished tearing
	                     it down, dead all the same (it runs no code of
	                     its own again) and reaped later: the wait does
	                     not wait on the kernel's teardown (not with
	                     SW_SPAWN_PIDNS, whose namespace dies only with
	                     the reap)                                      */
	SW_EV_TICK = 4,   /* SW_LOOP_TICK_EVENTS: a timer read; the stub is
	                     still in flight, wait again to go on waiting     */
	SW_EV_FD = 5,     /* the stub's watched fd (sw_stub_add_fd()) is ready:
	                     it answered there; revents is set.  Serve it,
	                     then sw_stub_continue()                          */
};

struct sw_event {
	enum sw_event_type type;
	/* EXIT and KILL: waitpid()-style status.  A stub whose zombie a tracer
	 * holds (it can be waited for by the tracer only) ends all the same:
	 * its status is the kernel's exit_code in /proc/PID/stat, or -1.
	 * A KILL or EXIT delivered before the kernel finished the stub's exit
	 * has the status its leader's exit_code in /proc/PID/stat already
	 * gives: SIGKILL; or the code of a one-thread stub that was exiting
	 * on its own when the SIGKILL came (the kernel dropped that SIGKILL),
	 * a 0 only while /proc/PID/syscall shows it inside its own exit(0) or
	 * exit_group(0).  Otherwise the wait goes on until the reap.
	 * -1 also if another process reaped
	 * the stub first and the kernel (before 6.15) cannot tell its status:
	 * possible only for exec'd stubs, since execve() resets exit_signal to
	 * SIGCHLD and so exposes them to a host's waitpid(-1) or SIGCHLD =
	 * SIG_IGN.  Stubs that run a function keep exit_signal 0 and are
	 * immune. */
	int status;
	struct sw_kill_info kill;  /* KILL only                               */
	uint32_t revents;          /* FD only: the epoll events seen          */
};

/* Completion callback for embedded use.  Return 0, or a negative errno to
 * make sw_loop_dispatch() stop and return it. */
typedef int (*sw_event_fn)(struct sw_stub *stub, const struct sw_event *ev,
			   void *userdata);

/* Spawn options.  Zero-initialise and set `size`; exactly one of fn and path. */
struct sw_spawn_opts {
	size_t size;      /* sizeof(struct sw_spawn_opts)                       */
	size_t shm_size;  /* bytes to share, rounded up to pages; default 16 KiB,
	                     at most 64 MiB                                     */
	unsigned flags;   /* SW_SPAWN_*                                         */
	/* Run a function in the child.  The child is a raw clone3() copy of the
	 * caller: until it execs it may call only async-signal-safe functions
	 * (another thread may have held malloc's or stdio's locks), and glibc's
	 * raise()/abort() misfire there (use kill(getpid(), sig)).  If fn
	 * returns, the child calls _exit() with its value. */
	int (*fn)(struct sw_page *page, void *arg);
	void *arg;
	/* Or exec a stub binary.  It starts with the page memfd on
	 * SW_EXEC_PAGE_FD and the report eventfd on SW_EXEC_REPORT_FD, and maps
	 * the page with sw_stub_map().  envp NULL means the caller's environ. */
	const char *path;
	char *const *argv;
	char *const *envp;
};

/* Keep the monitor's other fds open in the child: those that are not
 * close-on-exec, as an exec keeps them (clear FD_CLOEXEC on the ones the
 * stub needs).  Every fd of the library is close-on-exec, so the stub never
 * gets a loop's epoll, timer or kick fd, nor another stub's page, eventfd
 * or pidfd, with which it could silence its own watchdog.  By default every
 * fd but 0, 1, 2 and the stub's own is closed before fn runs or the exec.
 * (Pages are never inherited as mappings: each child maps only its own.) */
#define SW_SPAWN_KEEP_FDS  (1u << 0)
/* SIGKILL the stub when the spawning thread exits (PR_SET_PDEATHSIG). */
#define SW_SPAWN_PDEATHSIG (1u << 1)
/* Contain the stub's descendants: the stub is the first process (PID 1) of
 * a new PID namespace, so when it dies, by a kill or its own exit, the
 * kernel kills every process it made (forked, double-forked, setsid()'d)
 * before its death is seen, and none can escape it: clone(CLONE_PARENT),
 * which otherwise makes a sibling that is the monitor's own child, is
 * refused to a namespace's first process.  A caller without CAP_SYS_ADMIN
 * gets a new user namespace too, in which the stub keeps its uid and gid
 * (mapped to themselves; setgroups() is denied there).  The cost: a few
 * tens of microseconds more per spawn (stubwatch-bench's scale phase), and
 * the semantics of a namespace's first process: getpid() is 1 in the stub,
 * and a signal the stub or its descendants send it whose action is the
 * default is ignored (kill(getpid(), SIGTERM) does nothing; faults and the
 * monitor's SIGKILL still kill it).  Without this flag a stub's children
 * outlive it unless its seccomp filter forbids clone/fork. */
#define SW_SPAWN_PIDNS     (1u << 2)

/*
 * Spawn a stub attached to `loop`, with clone3(CLONE_PIDFD) and
 * exit_signal 0, so no waitpid(-1) and no SIGCHLD = SIG_IGN in the host can
 * reap it (an exec'd stub loses that at execve(); see sw_event.status).
 * The child starts with an empty signal mask (a monitor thread that blocks
 * SIGALRM must not make its stubs look hijacked); signal dispositions are
 * the caller's in fn mode, the defaults after exec.  The stub starts in flight (state IN_CHILD): its first report,
 * death or stall ends the first sw_stub_wait().
 *
 * On failure nothing is left behind: no fd, no child, no mapping.
 *
 * Errors: -EINVAL  NULL argument, opts->size too small, neither or both of
 *                  fn and path, path without argv, unknown flags,
 *                  shm_size over the limit; SW_SPAWN_PIDNS on a kernel
 *                  without PID or user namespaces;
 *         -ECHILD  loop used in a child after fork;
 *         -ENOMEM, -EMFILE, -ENFILE, -EAGAIN (clone3: process limits);
 *         -EFBIG   RLIMIT_FSIZE below the page's size (sizing its memfd
 *                  is a file write: with SIGXFSZ at its default action the
 *                  signal ends the caller instead, as for any write);
 *         -ENOSPC  the epoll set is full (fs.epoll.max_user_watches), or
 *                  SW_SPAWN_PIDNS past user.max_pid_namespaces or
 *                  user.max_user_namespaces;
 *         -EPERM   clone3 refused (a container's seccomp policy, say), or
 *                  SW_SPAWN_PIDNS without CAP_SYS_ADMIN where user
 *                  namespaces are not open to this user;
 *         -ENOSYS  the kernel lacks clone3 or pidfds;
 *         any execve() error (-ENOENT, -EACCES, -ENOEXEC, ...) in exec mode,
 *                  reported by the child before it exits.
 */
int sw_stub_spawn(struct sw_loop *loop, const struct sw_spawn_opts *opts,
		  struct sw_stub **ret_stub);

/*
 * Free a stub.  A live stub is killed with SIGKILL and reaped first (this
 * blocks only until the kernel has torn it down, never on a reap that
 * another process controls: the zombie of a stub that a tracer holds is
 * kept by the loop and reaped at a later timer read or spawn once the
 * tracer lets go; sw_loop_free() gives up on it).  A stub whose KILL was
 * delivered while the kernel was still taking it down is not waited for:
 * the loop reaps it later, as it does a held zombie, and sw_loop_free()
 * waits for it (a detached one is waited for here: no loop is left to
 * reap it).  Accepts NULL; returns
 * NULL.  Safe from inside the stub's own callback.  Refused while the stub is
 * the target of a running sw_stub_wait() (from another stub's callback):
 * returns the stub unchanged (check with sw_stub_free(s) == NULL).
 */
struct sw_stub *sw_stub_free(struct sw_stub *stub);

/* Accessors.  NULL or a bad stub: NULL / -EINVAL. */
struct sw_page *sw_stub_page(struct sw_stub *stub);
pid_t sw_stub_pid(const struct sw_stub *stub);        /* -EINVAL, -ESRCH (end delivered) */
int sw_stub_pidfd(const struct sw_stub *stub);        /* -EINVAL, -ESRCH (end delivered) */
struct sw_loop *sw_stub_loop(const struct sw_stub *stub); /* NULL: detached */

/*
 * Hand control to the stub: state IN_CHILD, FUTEX_WAKE.  Starts its stall
 * accounting.  Does not wait.  Resuming a stub that has died but whose
 * death the loop has not seen yet succeeds: the next wait returns its EXIT.
 *
 * Errors: -EINVAL (NULL, or its last event was SW_EV_FD: it is not waiting
 *         for a resume, sw_stub_continue() it), -EBUSY (already in flight,
 *         or a completion, even an EXIT or KILL, is pending: collect it with
 *         sw_stub_wait()), -ENOLINK (detached from any loop), -ESRCH (its
 *         end delivered), -ECHILD (after fork), -ENOMEM (arming the timer,
 *         or re-arming its watched fd).
 */
int sw_stub_resume(struct sw_stub *stub);

/*
 * Wait for the stub to report, die, or be killed by the watchdog; the one
 * blocking call.  Other stubs of the loop that complete meanwhile have their
 * callbacks run or their results kept pending.  Signals do not interrupt it.
 * Returns the event type (> 0) and fills *ret_ev.
 *
 * Errors: -EINVAL (NULL), -EALREADY (not in flight and nothing pending:
 *         resume it first, or continue it after SW_EV_FD), -EBUSY (the stub is attached to a loop in use
 *         by another wait, or called from inside a callback), -ENOLINK
 *         (detached), -ESRCH (its end delivered), -ECHILD (after fork), an
 *         error of epoll_wait(2) other than EINTR, or the negative value a
 *         callback of another stub returned during the wait (this stub
 *         stays in flight, or its completion pending: wait again).
 *
 * With SW_LOOP_TICK_EVENTS it returns SW_EV_TICK once per timer read while
 * the stub runs; a read made in the wait that ended with the stub's report
 * (or SW_EV_FD) is owed, and the next wait on a running stub returns it at
 * once.
 */
int sw_stub_wait(struct sw_stub *stub, struct sw_event *ret_ev);

/*
 * sw_stub_resume() then sw_stub_wait(): one round trip, and the fast one.
 * Since the wait follows at once, the stub is told the monitor is not yet
 * asleep; the wait looks at the state word before it sleeps, and a stub that
 * has already reported (it ran first, on the monitor's CPU) is taken without
 * an epoll_wait and without an eventfd write, as UML's futex wait does.
 * Errors: theirs.
 */
int sw_stub_run(struct sw_stub *stub, struct sw_event *ret_ev);

/*
 * Kill a stub now (SW_KILL_USER, or SW_KILL_PROTOCOL when the monitor found
 * a bad value in the page).  The kill completes like a watchdog kill: as an
 * SW_EV_KILL from the next wait or dispatch, once the stub is reaped, or
 * earlier when it is in its exit and the kernel is slow to end it (see
 * SW_EV_KILL).
 *
 * Errors: -EINVAL (NULL, or reason not USER/PROTOCOL), -ESRCH (already
 *         being killed, dead or reaped),
 *         -ENOLINK (detached), -ECHILD (after fork).
 */
int sw_stub_kill(struct sw_stub *stub, enum sw_kill_reason reason);

/*
 * Watch one more fd for this stub in the loop's epoll set, one the monitor
 * serves the stub through besides its reports: a seccomp user-notification
 * listener, say (pidfd_getfd(2) fetches one the stub made).  While the stub
 * is in flight, `events` (EPOLLIN, EPOLLOUT, EPOLLPRI, EPOLLRDHUP; EPOLLERR
 * and EPOLLHUP always) on the fd answer for it as a report does: its wait
 * completes with SW_EV_FD and the watchdog stops counting.  Serve the fd,
 * then put the stub back in flight with sw_stub_continue().  Readiness while
 * the stub is not in flight is left for its next time in flight (the fd is
 * armed one-shot, so it never keeps the loop busy).  EPOLLHUP or EPOLLERR
 * without an event asked for is no answer (a seccomp listener hangs up when
 * its stub dies: the stub's pidfd then reports the death).  A report, or a
 * death, seen with the fd's event wins.  The loop keeps its own duplicate
 * of the fd (close-on-exec), closed by sw_stub_remove_fd() or
 * sw_stub_free(): yours may be closed at any time.  One per stub; it follows
 * the stub through sw_stub_detach() and sw_stub_attach().
 *
 * Errors: -EINVAL (NULL, fd < 0, no or unknown events, or fd is an epoll
 *         set: a loop's own fd, say, which would nest loops; told by
 *         /proc/self/fd), -EEXIST (one is watched already), -ENOLINK
 *         (detached), -ESRCH (its end delivered), -ECHILD (after fork),
 *         -EBADF, -EMFILE (duplicating it), or epoll_ctl(2)'s error (-EPERM
 *         for a file that cannot be polled, -ENOMEM, -ENOSPC).
 */
int sw_stub_add_fd(struct sw_stub *stub, int fd, uint32_t events);

/*
 * Stop watching the stub's fd.  A pending SW_EV_FD stays pending.
 * Errors: -EINVAL (NULL), -ENOENT (none watched).
 */
int sw_stub_remove_fd(struct sw_stub *stub);

/*
 * After an SW_EV_FD: the stub goes on in flight, its stall accounting
 * restarts, and the page is left as it is (unlike sw_stub_resume(), which
 * writes IN_CHILD and wakes the stub: a stub served through its fd is not
 * waiting for a resume).  A report the stub made since is taken at once:
 * the next wait or dispatch returns it.
 *
 * A death the loop holds back behind the SW_EV_FD is delivered instead, as
 * sw_stub_resume() does: the next wait returns the EXIT.
 *
 * Errors: -EINVAL (NULL, or its last event was not SW_EV_FD: use
 *         sw_stub_resume()), -EBUSY (in flight, or a completion pending),
 *         -ENOLINK, -ESRCH, -ECHILD, -ENOMEM (as sw_stub_resume()).
 */
int sw_stub_continue(struct sw_stub *stub);

/*
 * Completion callback for sw_loop_dispatch(); NULL to clear.  A stub with a
 * callback also gets it for completions that happen during another stub's
 * sw_stub_wait().  Errors: -EINVAL (NULL stub).
 */
int sw_stub_set_callback(struct sw_stub *stub, sw_event_fn fn, void *userdata);
void *sw_stub_get_userdata(const struct sw_stub *stub);

/*
 * Hand a stub from one loop (thread) to another.  Detach on the old loop's
 * thread, pass the pointer on, attach on the new loop's thread.  The stub's
 * fds move between the epoll sets here, never per handshake.
 *
 * sw_stub_detach errors: -EINVAL (NULL), -ENOLINK (not attached), -EBUSY (in
 *         flight, a completion pending or its death not yet delivered, or
 *         inside a callback), -ECHILD.
 * sw_stub_attach errors: -EINVAL (NULL), -EBUSY (attached to a loop, this one
 *         or another), -ESRCH (reaped), -ECHILD (the loop is used in a child
 *         after fork, or the stub is not this process's: a child's copy of
 *         a stub its parent detached is its parent's), -ENOMEM or -ENOSPC
 *         (epoll_ctl).
 */
int sw_stub_detach(struct sw_stub *stub);
int sw_stub_attach(struct sw_stub *stub, struct sw_loop *loop);

/* ------------------------------------------------------------------------
 * Stub side: async-signal-safe, raw system calls, no libc state.
 * ------------------------------------------------------------------------ */
#if defined(__x86_64__)
static inline long sw__syscall6(long nr, long a, long b, long c, long d,
				long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define SW__NR_write 1
#define SW__NR_mmap 9
#define SW__NR_munmap 11
#define SW__NR_fstat 5
#define SW__NR_futex 202
#elif defined(__aarch64__)
static inline long sw__syscall6(long nr, long a, long b, long c, long d,
				long e, long f)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}
#define SW__NR_write 64
#define SW__NR_mmap 222
#define SW__NR_munmap 215
#define SW__NR_fstat 80
#define SW__NR_futex 98
#else
#error "stubwatch: stub-side system calls are written for x86_64 and aarch64"
#endif

#define SW__FUTEX_WAIT 0

/* The current CPU without a system call.  On x86_64 Linux the limit of a
 * per-CPU segment of the GDT holds it (bits 0-11; the node above), whether
 * or not the CPU has RDTSCP: the vDSO's getcpu reads it with LSL, and so
 * does this, on the same selector (GDT entry 15, ring 3).  -1 where LSL
 * fails and on other architectures. */
#define SW__CPUNODE_SEG (15u * 8u + 3u)
static inline int32_t sw__cpu(void)
{
#if defined(__x86_64__)
	uint32_t p = 0xffffffffu; /* LSL leaves it as it is if it fails */

	__asm__ volatile("lsl %1, %0" : "+r"(p) : "r"(SW__CPUNODE_SEG));
	return p == 0xffffffffu ? -1 : (int32_t)(p & 0xfff);
#else
	return -1;
#endif
}

/* The stub's spin window (below): declared here for the report. */
static inline uint32_t *sw__spin_window(void);

/* sw_stub_report(); will_wait: the stub's next wait is
 * sw_stub_wait_resume(), which clears SW_STUB_SPINNING before it sleeps,
 * so the flag may be set already here (sw_stub_handshake()). */
static inline void sw__report(struct sw_page *page, int will_wait)
{
	static const uint64_t one = 1;
	uint32_t mon = __atomic_load_n(&page->monitor, __ATOMIC_RELAXED);

	if (mon & (SW_MON_WANT_CPU | SW_MON_CPU_SEG))
		page->stub_cpu = sw__cpu();
	/* It will spin for the resume: say so before the report is out, so
	 * that a monitor quick to answer finds the flag already set and skips
	 * its FUTEX_WAKE.  (Released by the store of IN_KERN below.) */
	if (will_wait &&
	    (mon & (SW_MON_STUB_SPIN | SW_MON_SLEEPING)) == SW_MON_STUB_SPIN &&
	    __atomic_load_n(sw__spin_window(), __ATOMIC_RELAXED) &&
	    !__atomic_load_n(&page->stub, __ATOMIC_RELAXED))
		__atomic_store_n(&page->stub, SW_STUB_SPINNING,
				 __ATOMIC_RELAXED);
	/* Sequentially consistent store then load, against the monitor's
	 * store of SW_MON_SLEEPING then load of state: at least one side sees
	 * the other, so a report never goes without a wake-up.  A monitor
	 * that is not sleeping finds the state word without one. */
	__atomic_store_n(&page->state, SW_STATE_IN_KERN, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&page->monitor, __ATOMIC_SEQ_CST) &
	    SW_MON_SLEEPING)
		sw__syscall6(SW__NR_write, page->report_fd, (long)&one,
			     sizeof(one), 0, 0, 0);
}

/*
 * Report: publish IN_KERN, then, if the monitor sleeps, wake it through the
 * eventfd.  The report's contents must be written to the payload before
 * this call.  Any wait may follow it (sw_stub_handshake() is the report for
 * sw_stub_wait_resume(), and spares a spinning stub's resume a wake-up).
 */
static inline void sw_stub_report(struct sw_page *page)
{
	sw__report(page, 0);
}

/*
 * The stub's side of adaptive polling: a spin window on the CPU's counter
 * (the TSC; the virtual counter on aarch64: one clock for every CPU), no
 * system call, no clock.  The window lives in the stub's own memory (one
 * per translation unit that waits, in this static), never in the page.
 * After a sleep the stub reads when the monitor resumed it
 * (sw_page.resume_ticks, which the monitor writes before IN_CHILD): a
 * resume that came within the longest window grows the window to cover it,
 * as KVM's halt polling grows; one that came later halves it, down to zero,
 * so a stub whose monitor answers slowly stops spinning.  (The time the
 * stub itself took to wake is left out: it says nothing of the monitor.)
 */
#if defined(__x86_64__)
#define SW__SPIN_START (1u << 10) /* TSC cycles: about 0.3 .. 1 us */
#define SW__SPIN_MAX   (1u << 16) /* about 20 .. 60 us              */
static inline uint64_t sw__ticks(void)
{
	return __builtin_ia32_rdtsc();
}
static inline void sw__relax(void)
{
	__builtin_ia32_pause();
}
#else
/* aarch64: the monitor cannot tell there which CPU a stub reported from
 * (sw__cpu() has no way to read it without a system call), so it never lets
 * one spin (SW_MON_STUB_SPIN) and these are not used yet; generic timer
 * ticks at 10..100 MHz (a 1 GHz counter, from ARMv8.6, would want them
 * scaled by CNTFRQ_EL0). */
#define SW__SPIN_START (1u << 5)
#define SW__SPIN_MAX   (1u << 11)
static inline uint64_t sw__ticks(void)
{
	uint64_t t;

	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(t) :: "memory");
	return t;
}
static inline void sw__relax(void)
{
	__asm__ volatile("yield" ::: "memory");
}
#endif

static inline uint32_t *sw__spin_window(void)
{
	static uint32_t window = SW__SPIN_START;

	return &window;
}

static inline void sw__sleep_resume(struct sw_page *page)
{
	while (__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) !=
	       SW_STATE_IN_CHILD)
		sw__syscall6(SW__NR_futex, (long)&page->state, SW__FUTEX_WAIT,
			     SW_STATE_IN_KERN, 0, 0, 0);
}

/*
 * Wait until the monitor resumes the stub (state IN_CHILD).  While the
 * monitor allows it (SW_MON_STUB_SPIN: it polls, and the stub last reported
 * from another CPU) and is not asleep itself (SW_MON_SLEEPING: then its
 * answer waits for its own wake-up, and a spin would only burn the CPU),
 * first spin for the window, saying so in the page (SW_STUB_SPINNING), so
 * that the resume can skip its FUTEX_WAKE; then sleep in FUTEX_WAIT.  In
 * sw_stub_handshake() the report sets the flag already (when it will
 * spin: the monitor allows it and this file's window is open), before the
 * monitor can see the report, and the flag stays set while the stub's
 * spins catch their resumes: in that steady state neither side makes a
 * system call, and the flag costs the stub no store at all.
 *
 * No lost wake-up: whenever the flag is set, the stub clears it with a
 * sequentially consistent store before any sleep, and then looks at
 * `state` with a sequentially consistent load; the monitor stores
 * IN_CHILD, then loads `stub`, both sequentially consistent, and skips the
 * wake-up only if the flag is set.  In their one total order, either the
 * monitor's load comes after the clear, and it wakes the stub, or it comes
 * before, and then so does its store of IN_CHILD, which the stub's load
 * after the clear sees: it does not sleep.  (FUTEX_WAIT on IN_KERN returns
 * at once once the word is IN_CHILD.)  A flag set while the stub runs costs
 * nothing: the stub is not asleep, and finds IN_CHILD when it comes to
 * wait.  The clear comes before every sleep, whatever the monitor word
 * says, so that a flag left set (by a handler that left a spin by
 * siglongjmp, or by a report whose wait never came) costs no wake-up.
 */
static inline void sw_stub_wait_resume(struct sw_page *page)
{
	uint32_t *win = sw__spin_window(), w, mon;
	uint64_t t0, took;

	if (__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) ==
	    SW_STATE_IN_CHILD)
		return;
	mon = __atomic_load_n(&page->monitor, __ATOMIC_RELAXED);
	w = (mon & (SW_MON_STUB_SPIN | SW_MON_SLEEPING)) == SW_MON_STUB_SPIN
		    ? __atomic_load_n(win, __ATOMIC_RELAXED)
		    : 0;
	t0 = sw__ticks();
	if (w) {
		/* (relaxed: a resume that comes before the monitor sees it
		 * only makes a FUTEX_WAKE it did not need) */
		if (!__atomic_load_n(&page->stub, __ATOMIC_RELAXED))
			__atomic_store_n(&page->stub, SW_STUB_SPINNING,
					 __ATOMIC_RELAXED);
		while (__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) !=
		       SW_STATE_IN_CHILD) {
			if (sw__ticks() - t0 >= w)
				goto sleep;
			sw__relax();
		}
		return; /* caught: the flag stays, w too */
	}
sleep:
	if (__atomic_load_n(&page->stub, __ATOMIC_RELAXED)) {
		__atomic_store_n(&page->stub, 0, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&page->state, __ATOMIC_SEQ_CST) ==
		    SW_STATE_IN_CHILD)
			return; /* resumed just as the spin ended: w stays */
	}
	sw__sleep_resume(page);
	if (!(mon & SW_MON_STUB_SPIN) || (mon & SW_MON_SLEEPING))
		return; /* no spin was allowed: nothing learnt */
	/* how long after the spin began the monitor resumed (0 if it came
	 * first: a counter read on another CPU may lag by a little) */
	took = __atomic_load_n(&page->resume_ticks, __ATOMIC_RELAXED);
	took = took > t0 ? took - t0 : 0;
	if (took <= SW__SPIN_MAX) {
		if (w < SW__SPIN_START)
			w = SW__SPIN_START;
		while (w < took && w < SW__SPIN_MAX)
			w *= 2;
		if (w > SW__SPIN_MAX)
			w = SW__SPIN_MAX;
	} else {
		w = w / 2 >= SW__SPIN_START ? w / 2 : 0;
	}
	__atomic_store_n(win, w, __ATOMIC_RELAXED);
}

/* One stub-side round trip: report, then wait to be resumed. */
static inline void sw_stub_handshake(struct sw_page *page)
{
	sw__report(page, 1);
	sw_stub_wait_resume(page);
}

/*
 * In an exec'd stub: map the shared page from `fd` (SW_EXEC_PAGE_FD) and
 * check its header.  Returns 0 and sets *ret_page, or -EINVAL (not a
 * stubwatch page of this ABI), or the mmap/fstat error.
 */
static inline int sw_stub_map(int fd, struct sw_page **ret_page)
{
	struct {
		uint64_t pad[6];
		int64_t size;
		uint64_t pad2[11];
	} st; /* struct stat's st_size offset is 48 on x86_64 and aarch64 */
	long addr;
	struct sw_page *page;

	addr = sw__syscall6(SW__NR_fstat, fd, (long)&st, 0, 0, 0, 0);
	if (addr < 0)
		return (int)addr;
	if (st.size < (int64_t)sizeof(struct sw_page))
		return -22; /* EINVAL */
	addr = sw__syscall6(SW__NR_mmap, 0, st.size, 0x3 /* RW */,
			    0x01 /* MAP_SHARED */, fd, 0);
	if (addr < 0 && addr > -4096)
		return (int)addr;
	page = (struct sw_page *)addr;
	if (page->magic != SW_PAGE_MAGIC || page->abi != SW_PAGE_ABI) {
		sw__syscall6(SW__NR_munmap, addr, st.size, 0, 0, 0, 0);
		return -22;
	}
	*ret_page = page;
	return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* STUBWATCH_H */
