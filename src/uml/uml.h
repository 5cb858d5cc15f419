/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * swuml: a faithful model of User Mode Linux in seccomp mode, built on
 * stubwatch.  Used by the tests (test/uml/), stubwatch-demo and bench/.
 * Not installed; not part of libstubwatch's ABI.
 *
 * Three layers, each usable on its own:
 *
 * 1. The stub runtime (swu_stub_*): spawn a stub process that, like UML's
 *    stub, installs one SA_SIGINFO | SA_ONSTACK | SA_NODEFER handler for
 *    SIGSYS, SIGALRM and SIGSEGV (all signals masked while it runs) on a
 *    sigaltstack inside the shared page, loads a seccomp filter that traps
 *    (SECCOMP_RET_TRAP) every system call but its report path, and then runs
 *    "user code" (a swu_prog).  Every trap or preemption is reported through
 *    the page; the monitor answers and resumes.
 *
 * 2. The monitor side (swu_stub_serve, swu_stub_preempt): read one report
 *    from the page, validate every field it uses (a bad report kills the
 *    stub with SW_KILL_PROTOCOL), serve the trapped system call, write the
 *    answer.  No clock, no allocation: the bench hot path can use it.
 *
 * 3. The machine (swu_machine_*): V vCPU threads, each with its own
 *    stubwatch loop, scheduling S stubs per vCPU from one shared run queue,
 *    preempting the running stub with SIGALRM on the loop's own timer.  The
 *    tests and the demo drive it.
 *
 * x86_64 only (the register state and the hijack frame are arch-specific):
 * elsewhere swu_supported() is false and spawning returns -ENOSYS.
 *
 * All functions return >= 0 or a negative errno value, as libstubwatch does.
 *
 * One stub, one UML round trip per iteration (a trapped mmap or munmap,
 * served), as bench/ would drive it:
 *
 *	struct swu_prog p = { .kind = SWU_PROG_CHURN };
 *	struct swu_stub *s;
 *	struct sw_event ev;
 *
 *	swu_stub_spawn(loop, &p, 0, &s);        // hello + filter; not in flight
 *	for (i = 0; i < n; i++) {
 *		sw_stub_run(swu_stub_sw(s), &ev);   // resume + wait: SW_EV_REPORT
 *		swu_stub_serve(s, NULL);            // SWU_SERVED; answer written
 *	}
 *	swu_stub_free(s);
 *
 * (With SW_LOOP_TICK_EVENTS, sw_stub_wait() may also return SW_EV_TICK: wait
 * again, or swu_stub_preempt() the stub first.  A SWU_PROG_CPU stub reports
 * only when preempted.)  Link with src/uml/libswuml.la.
 */
#ifndef SWU_UML_H
#define SWU_UML_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "stubwatch.h"

/* ------------------------------------------------------------------------
 * The model's use of the shared page (the payload after the 64-byte
 * stubwatch header).  Everything the stub writes is untrusted.
 * ------------------------------------------------------------------------ */
#define SWU_SHM_SIZE       (64u * 1024) /* whole shared area               */
#define SWU_ALTSTACK_OFF   4096u        /* sigaltstack: from here to the end */
#define SWU_FILTER_MAX     128u         /* BPF instructions in a hello reply */

/* report.signo of the setup report, made once before the filter is loaded */
#define SWU_SIG_HELLO 0

struct swu_report {          /* written by the stub: untrusted              */
	uint32_t seq;        /* 1 for the hello, +1 for every report        */
	int32_t signo;       /* SIGSYS, SIGALRM, SIGSEGV, or SWU_SIG_HELLO  */
	int32_t si_code;     /* siginfo si_code (SIGSYS: SYS_SECCOMP)       */
	uint32_t arch;       /* SIGSYS: si_arch (AUDIT_ARCH_X86_64)         */
	int64_t nr;          /* SIGSYS: si_syscall; otherwise -1            */
	uint64_t args[6];    /* SIGSYS: rdi, rsi, rdx, r10, r8, r9          */
	uint64_t ip, sp;     /* user registers at the signal                */
	uint64_t fault_addr; /* SIGSEGV: si_addr                            */
};

enum swu_action {
	SWU_ACT_CONTINUE = 1, /* return to user code unchanged             */
	SWU_ACT_RETURN = 2,   /* SIGSYS: the call returns reply.ret (RAX)  */
	SWU_ACT_EXIT = 3,     /* exit_group(reply.exit_status)             */
	SWU_ACT_FILTER = 4,   /* hello only: load reply.filter             */
};

struct swu_reply {           /* written by the monitor                      */
	uint32_t action;     /* enum swu_action                             */
	int32_t exit_status;
	int64_t ret;
	uint32_t filter_len;
	uint32_t pad;
	struct sock_filter filter[SWU_FILTER_MAX];
};

struct swu_shared {
	struct swu_report report;
	struct swu_reply reply;
};

/* ------------------------------------------------------------------------
 * User code
 * ------------------------------------------------------------------------ */
enum swu_prog_kind {
	SWU_PROG_CHURN = 1, /* mmap/munmap pairs in a loop, each call trapped  */
	SWU_PROG_CPU,       /* pure computation: only SIGALRM stops it         */
	SWU_PROG_MIXED,     /* ~200 us of computation, then 32 churn pairs     */
	SWU_PROG_LIAR,      /* tests: forges a report (see swu_prog.lie)       */
	SWU_PROG_PROBE,     /* tests: write(1) and getppid() must trap and get
	                       -ENOSYS, write() to its own eventfd must not;
	                       exits SWU_EXIT_PROBE_OK if so                   */
	SWU_PROG_SEGV,      /* tests: touches an unmapped address             */
	SWU_PROG__MAX
};

enum swu_hijack {
	SWU_HIJACK_NONE = 0,
	SWU_HIJACK_SPIN,  /* h1: rt_sigreturn with SIGALRM blocked, then spin  */
	SWU_HIJACK_SLEEP, /* h2: the same, then FUTEX_WAIT on a word of its own */
	SWU_HIJACK_FLOOD, /* h3: the same, then write its eventfd in a loop    */
	SWU_HIJACK__MAX
};

/* What a SWU_PROG_LIAR stub forges in its one report. */
enum swu_lie {
	SWU_LIE_SIGNO = 1, /* signal number 77                                */
	SWU_LIE_NR,        /* SIGSYS with syscall number 100000               */
	SWU_LIE_SEQ,       /* a sequence number that skips ahead              */
	SWU_LIE_ARCH,      /* SIGSYS with a foreign audit arch               */
	SWU_LIE_STATE,     /* state word 0xdead and an eventfd write          */
};

struct swu_prog {
	enum swu_prog_kind kind;
	enum swu_hijack hijack;     /* NONE: well-behaved for ever              */
	uint64_t hijack_after_ns;   /* run normally this long (CLOCK_MONOTONIC
	                               from the start of user code), then hijack */
	uint64_t iterations;        /* CHURN/MIXED/CPU: exit(0) after this many
	                               loop rounds; 0 = run for ever             */
	enum swu_lie lie;           /* SWU_PROG_LIAR only                       */
};

/* Exit statuses of a model stub (user code or its setup). */
#define SWU_EXIT_OK         0
#define SWU_EXIT_BADRESULT  3  /* a served call returned a wrong value      */
#define SWU_EXIT_SETUP      10 /* 10..19: a setup step failed (see stub.c)  */
#define SWU_EXIT_PROBE_OK   40 /* SWU_PROG_PROBE: the filter did its job     */

const char *swu_prog_name(enum swu_prog_kind kind);
const char *swu_hijack_name(enum swu_hijack h);
/* "none", "sigalrm-spin", "sigalrm-sleep", "flood"; -EINVAL if unknown. */
int swu_hijack_parse(const char *s, enum swu_hijack *ret);

/* Whether the model runs on this architecture (x86_64). */
bool swu_supported(void);

/* ------------------------------------------------------------------------
 * Layers 1 and 2: one stub
 * ------------------------------------------------------------------------ */
struct swu_stub;

/*
 * Spawn a model stub on `loop` (fn mode, SW_SPAWN_PDEATHSIG added to
 * spawn_flags) and complete its setup handshake: the stub reports "hello",
 * the monitor answers with the seccomp filter (built here with libseccomp
 * for the stub's eventfd number).  On return the stub has reported and is
 * not in flight; its first sw_stub_resume() loads the filter and starts the
 * user code.  `prog` is copied.  Call from the loop's thread.
 *
 * Errors: -EINVAL (NULL, bad prog), -ENOSYS (not x86_64), any
 *         sw_stub_spawn() or sw_stub_wait() error, -ENOMEM/-EMFILE (or
 *         another libseccomp error: building the filter), -ETIMEDOUT
 *         (the stub was killed as stalled before its hello), -EPROTO (the
 *         stub died or broke its setup handshake).  On failure nothing is
 *         left behind.
 */
int swu_stub_spawn(struct sw_loop *loop, const struct swu_prog *prog,
		   unsigned spawn_flags, struct swu_stub **ret_stub);

/* Kill (if alive), reap and free.  Accepts NULL, returns NULL.  Refused
 * like sw_stub_free() (returns the stub) inside the stub's own wait. */
struct swu_stub *swu_stub_free(struct swu_stub *s);

struct sw_stub *swu_stub_sw(struct swu_stub *s);
pid_t swu_stub_pid(const struct swu_stub *s); /* the pid at spawn time */
const struct swu_prog *swu_stub_prog(const struct swu_stub *s);

enum swu_verdict {
	SWU_SERVED = 1,    /* SIGSYS served: resume to continue the quantum   */
	SWU_PREEMPTED,     /* SIGALRM: the quantum is over                    */
	SWU_FAULTED,       /* SIGSEGV: told to exit; resume to let it exit    */
	SWU_VIOLATION,     /* bad report: killed with SW_KILL_PROTOCOL; its
	                      SW_EV_KILL comes from the next sw_stub_wait()   */
};

/* What the last served report was (for tests and statistics). */
struct swu_served {
	int signo;
	long nr;  /* SIGSYS: the system call; else -1 */
	long ret; /* SIGSYS: its answer              */
};

/*
 * After sw_stub_wait() returned SW_EV_REPORT: snapshot the report, validate
 * it, serve it and write the answer into the page.  Does not resume.
 * Returns an enum swu_verdict; fills *ret_served if not NULL.
 *
 * Served calls (the model's "kernel"): mmap (anonymous, private; returns an
 * address from a per-stub table, nothing is really mapped), munmap (of an
 * exact range handed out), getpid, sched_yield; any other system call
 * number below 1024 returns -ENOSYS.  A protocol violation: signal other
 * than SIGSYS/SIGALRM/SIGSEGV, a sequence number other than last + 1, and
 * for SIGSYS an si_code other than SYS_SECCOMP, a foreign arch or a number
 * outside [0, 1024).
 *
 * Errors: -EINVAL (NULL), -EALREADY (the page's state is not IN_KERN: no
 *         report to serve), any sw_stub_kill() error.
 */
int swu_stub_serve(struct swu_stub *s, struct swu_served *ret_served);

/* Preempt: SIGALRM through the pidfd (no pid reuse).  What UML's timer does
 * to the stub its vCPU waits on.  Errors: -EINVAL, -ESRCH (dead). */
int swu_stub_preempt(struct swu_stub *s);

/* Reports validated so far (hello included). */
uint64_t swu_stub_reports(const struct swu_stub *s);

/* ------------------------------------------------------------------------
 * Layer 3: the machine
 * ------------------------------------------------------------------------ */
struct swu_machine;

/* One spawn, kill or exit, as seen by the vCPU that saw it.  Delivered on
 * that vCPU's thread: the callback must be thread-safe and quick. */
enum swu_mevent_type { SWU_ME_SPAWN = 1, SWU_ME_KILL, SWU_ME_EXIT };

struct swu_mevent {
	enum swu_mevent_type type;
	uint64_t t_ns;            /* since swu_machine_start()               */
	unsigned vcpu;            /* the vCPU whose loop saw it              */
	unsigned stub;            /* stub index, 0 .. nstubs-1               */
	pid_t pid;
	struct swu_prog prog;
	int status;               /* KILL/EXIT: waitpid()-style status      */
	struct sw_kill_info kill; /* KILL                                    */
	uint64_t report_at_ns;    /* KILL: CLOCK_MONOTONIC at the stub's last
	                             valid report (its hello if none since) */
	uint64_t resume_at_ns;    /* KILL: CLOCK_MONOTONIC right after its
	                             last sw_stub_resume() (0: never)        */
	uint64_t detect_ns;       /* KILL: from the stub's last valid report
	                             to the kill event (the vCPU's clock)    */
	uint64_t silence_ns;      /* KILL: from the later of that report and
	                             its last resume to the kill event: what
	                             the watchdog bounds to N*T .. (N+1)*T,
	                             plus the reap                           */
	uint64_t monitor_wait_ns; /* KILL: how long the killing vCPU thread
	                             was runnable but off a CPU since that
	                             quantum began (schedstat run_delay): a
	                             starved monitor counts stall time late,
	                             by up to this much                     */
	bool false_kill;          /* KILL that the stub's program did not ask
	                             for: not a hijacker killed for a stall at
	                             least N*T after its hijack time, nor a
	                             liar killed for a protocol violation    */
	unsigned others_alive;    /* KILL/EXIT: other stubs alive then...    */
	unsigned others_progressed; /* ...and how many of them had reported
	                             after this stub's last valid report     */
};

typedef void (*swu_mevent_fn)(const struct swu_mevent *ev, void *userdata);

/* Decide stub `idx` (spawned by vCPU `vcpu`): fill *prog.  Called on the
 * vCPU's thread before the spawn.  NULL: SWU_PROG_MIXED, no hijack. */
typedef void (*swu_plan_fn)(unsigned vcpu, unsigned idx, struct swu_prog *prog,
			    void *userdata);

struct swu_machine_opts {
	unsigned vcpus;          /* vCPU threads, each with its own loop; 1..64 */
	unsigned stubs_per_vcpu; /* stubs each vCPU spawns; 1..256             */
	unsigned extra_stubs;    /* more stubs spawned by vCPU 0 (indices after
	                            the per-vCPU ones); 0..256                */
	uint64_t tick_ns;        /* watchdog tick T                           */
	uint32_t stall_ticks;    /* N                                          */
	uint64_t preempt_ns;     /* preemption tick: T / preempt_ns must be an
	                            integer >= 2 (the loop's timer_div)       */
	const char *driver;      /* "blocking", "dispatch" or "libev" (NULL:
	                            blocking); see swu_driver_check()      */
	bool poll;               /* loops with SW_LOOP_ADAPTIVE_POLL         */
	swu_plan_fn plan;
	swu_mevent_fn on_event;
	void *userdata;
};

/* Per-vCPU counters (relaxed snapshots, any thread). */
struct swu_vcpu_stats {
	uint64_t handshakes; /* valid reports served on this vCPU          */
	uint64_t syscalls;   /* of which SIGSYS                            */
	uint64_t preempts;   /* of which SIGALRM                           */
	uint64_t quanta;     /* stubs scheduled                            */
	uint64_t kills, exits;
	int running_stub;    /* stub index the vCPU waits on now, or -1     */
	uint64_t running_silent_ns; /* ...and how long since its last report */
	unsigned spawned_alive;     /* stubs spawned by this vCPU still alive */
	int error;           /* first fatal error of the vCPU thread, or 0 */
	pid_t tid;           /* the vCPU thread (for /proc/self/task/TID)   */
};

/* Per-stub counters (relaxed snapshots, any thread). */
struct swu_stub_stats {
	pid_t pid;
	unsigned home_vcpu;
	struct swu_prog prog;
	bool alive;              /* not killed or exited (the teardown of
	                            swu_machine_stop() does not count)      */
	uint64_t handshakes;
	uint64_t last_report_ns; /* since start; 0 if none yet */
};

/* How a vCPU waits (swu_machine_opts.driver):
 *   "blocking"  sw_stub_wait();
 *   "dispatch"  poll on sw_loop_get_fd() + sw_loop_dispatch() with
 *               callbacks: the embedding path;
 *   "libev"     the same callbacks, run by the libev glue (sw_ev_attach())
 *               from a libev loop of the vCPU thread's own (ev_loop_new());
 *               built only when configure found libev.
 * Returns 0 if swu_machine_new() accepts `name` (NULL: blocking);
 * -EOPNOTSUPP for a driver this build lacks ("libev" without libev);
 * -EINVAL for an unknown name. */
int swu_driver_check(const char *name);

/*
 * Errors: -EINVAL (NULL, a value out of range, T/preempt_ns not an integer
 *         >= 2, unknown driver, values sw_loop_new() refuses),
 *         -EOPNOTSUPP (a driver this build lacks: swu_driver_check()),
 *         -ENOSYS (not x86_64), -ENOMEM.
 */
int swu_machine_new(const struct swu_machine_opts *opts,
		    struct swu_machine **ret);

/* Start the vCPU threads; each creates its loop and spawns its stubs, then
 * they schedule.  Returns after every vCPU has spawned its stubs (or failed:
 * then the first error, and the machine is stopped).  Errors: -EALREADY,
 * -EAGAIN (threads), any swu_stub_spawn()/sw_loop_new() error. */
int swu_machine_start(struct swu_machine *m);

/* After swu_machine_start() failed with -ETIMEDOUT: the stub that the
 * watchdog killed before its hello, and the kill's figures (a host that
 * keeps a starting stub off the CPUs past N*T and its credit shows as
 * stall_run_ns near 0).  Errors: -EINVAL, -ENOENT (no such kill). */
int swu_machine_start_kill(struct swu_machine *m, unsigned *ret_stub,
			   struct sw_kill_info *ret);

/* Stop: every vCPU finishes the quantum it is in (a hijacked stub is waited
 * out by the watchdog), then frees its stubs and its loop.  Joins the
 * threads.  Returns the first vCPU error or 0.  Idempotent. */
int swu_machine_stop(struct swu_machine *m);

/* Ask the vCPUs to stop after their current quantum, without waiting.
 * swu_machine_running() counts the vCPUs still scheduling. */
int swu_machine_request_stop(struct swu_machine *m);
unsigned swu_machine_running(const struct swu_machine *m);

struct swu_machine *swu_machine_free(struct swu_machine *m);

unsigned swu_machine_nstubs(const struct swu_machine *m);
unsigned swu_machine_nvcpus(const struct swu_machine *m);
uint64_t swu_machine_elapsed_ns(const struct swu_machine *m);
int swu_machine_vcpu_stats(const struct swu_machine *m, unsigned vcpu,
			   struct swu_vcpu_stats *ret);
int swu_machine_stub_stats(const struct swu_machine *m, unsigned stub,
			   struct swu_stub_stats *ret);

/* CLOCK_MONOTONIC in ns. */
uint64_t swu_now_ns(void);

#endif
