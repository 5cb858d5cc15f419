/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers for the UML model's tests, in the style of the kernel's pidfd
 * selftests: short named cases, each run in its own forked process with a
 * timeout, TAP output, a closing count.  A case returns T_PASS, T_FAIL or
 * T_SKIP (exit 0 / 1 / 77); the runner also fails a passing case that
 * leaves an fd or a child process behind.
 */
#ifndef T_UML_H
#define T_UML_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "uml/uml.h"

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

struct t_case {
	const char *name;
	int (*fn)(void);
	unsigned timeout_s;
};

/* Run the cases (or only those named on the command line).  Returns the
 * program's exit status: 1 if any failed, 77 if all were skipped, else 0. */
int t_run(int argc, char **argv, const struct t_case *cases, size_t n);

/* Report a failed check (file:line and message) to stderr. */
void t_fail_msg(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void t_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define T_CHECK(cond, ...)                                                 \
	do {                                                               \
		if (!(cond)) {                                             \
			t_fail_msg(__FILE__, __LINE__, "check failed: %s", \
				   #cond);                                 \
			t_fail_msg(__FILE__, __LINE__, __VA_ARGS__);       \
			return T_FAIL;                                     \
		}                                                          \
	} while (0)

/* Skip unless the model can run here (x86_64, seccomp, clone3, pidfd);
 * returns T_PASS or T_SKIP and prints why. */
int t_uml_can_run(void);

int t_count_fds(void);
int t_count_children(void);
void t_sleep_ms(unsigned ms);

/* ---- machine runs -------------------------------------------------------- */

#define T_MAX_EVENTS 256

/* Collects the machine's events (thread-safe).  A test's machine userdata
 * is a struct that starts with one of these (its plan reads the rest). */
struct t_events {
	pthread_mutex_t lock;
	struct swu_mevent ev[T_MAX_EVENTS];
	unsigned n;
	unsigned kills, exits, spawns, false_kills;
};

void t_events_init(struct t_events *e);
void t_events_fini(struct t_events *e);
/* swu_machine_opts.on_event: userdata starts with a struct t_events */
void t_events_cb(const struct swu_mevent *ev, void *userdata);
unsigned t_events_kills(struct t_events *e);
/* Copy the i-th KILL event; false if there is none. */
bool t_events_kill(struct t_events *e, unsigned i, struct swu_mevent *ret);

/* Every alive, non-hijacking stub made a handshake since `prev` (per stub
 * counters, nstubs entries, updated in place).  Returns how many did not. */
unsigned t_stalled_stubs(struct swu_machine *m, uint64_t *prev);

/* ---- CPU starvation ---------------------------------------------------------
 *
 * The watchdog credits a stub that was runnable but got no CPU with its
 * run-queue wait, but only up to N*T: a well-behaved stub the host keeps
 * off the CPUs longer than that is killed, rightly by the library's rules.
 * On an overloaded host (make -j check on two CPUs) that happens.  The
 * sampler records, every 10 ms, each stub's and each vCPU thread's
 * run_delay from /proc/.../schedstat (time spent runnable, waiting for a
 * CPU), so that a test can tell host starvation from a fault.
 */
struct t_sampler;

struct t_sched {
	uint64_t span_ns; /* between the two samples used        */
	uint64_t cpu_ns;  /* time on a CPU meanwhile             */
	uint64_t wait_ns; /* time runnable, waiting for a CPU    */
};

int t_sampler_start(struct swu_machine *m, struct t_sampler **ret);
void t_sampler_stop(struct t_sampler *s); /* joins and frees; NULL ok */
/* What the entity did within [from, to] (machine elapsed time).  superset:
 * from the last sample before `from` to the first after `to` (or its last,
 * if it died); otherwise the samples inside the window only.  0, or -1 if
 * there are no such samples. */
int t_sampler_stub(struct t_sampler *s, unsigned stub, uint64_t from,
		   uint64_t to, bool superset, struct t_sched *ret);
int t_sampler_vcpu(struct t_sampler *s, unsigned vcpu, uint64_t from,
		   uint64_t to, bool superset, struct t_sched *ret);

/*
 * Check a watchdog kill against the loop's contract, with no slack: from
 * the stub's last resume (resume_at_ns, stamped right after it), killed no
 * sooner than N*T plus its starvation credit, and no later than (N+1)*T plus
 * the monitor's own lateness and that credit (struct sw_kill_info); the
 * credit, the ticks counted and silent_ns consistent with them.  Also
 * SIGALRM seen blocked.  Returns T_PASS or T_FAIL (with messages).
 */
int t_check_stall_kill(const struct swu_mevent *k, uint64_t tick_ns,
		       uint32_t stall_ticks, uint64_t preempt_ns);

/*
 * A kill of a well-behaved stub: host starvation, not a fault, if the stub
 * had the CPU for less than two preemption ticks over its silence (the
 * watchdog credits a starved stub, but only up to N*T).  Returns T_PASS
 * (starvation, said in a message) or T_FAIL (with messages).
 */
int t_judge_false_kill(struct t_sampler *smp, const char *name,
		       const struct swu_mevent *k, uint64_t preempt_ns);

/*
 * swu_machine_start(), judged: T_PASS when it started, T_SKIP (said why)
 * when this host cannot run the model (-ENOSYS) or kept a starting stub off
 * the CPUs past its whole window (killed before its hello having run less
 * than two preemption ticks and waited for a CPU at least half of the
 * stall, as the kill's own schedstat figures show), T_FAIL otherwise.  On anything but T_PASS the machine is
 * freed.
 */
int t_machine_start(struct swu_machine *m, const char *name,
		    uint64_t preempt_ns);

/* ---- load runs: zero false kills, and hijacks caught on the way ---------- */

#define T_LOAD_MAX_HIJACKS 4

struct t_load {
	const char *name;
	const char *driver;      /* NULL: blocking; one this build lacks:
	                            the run is skipped                     */
	unsigned vcpus;
	unsigned stubs_per_vcpu; /* cycling churn, cpu, mixed               */
	uint64_t tick_ns;
	uint32_t stall_ticks;
	uint64_t preempt_ns;
	unsigned seconds;
	unsigned nhijacks;       /* extra stubs (vCPU 0), churn + hijack    */
	struct {
		enum swu_hijack kind;
		unsigned after_s;
	} hijack[T_LOAD_MAX_HIJACKS];
};

/*
 * Run the machine for L->seconds and check: no vCPU error; no exit; every
 * kill is a hijacker's and passes t_check_stall_kill(); every hijacker
 * killed; every well-behaved stub made a handshake in every one-second
 * window.  A kill of a well-behaved stub that was waiting for a CPU for so
 * much of its silence that it had the CPU for less than N*T, or a stalled
 * second in which a vCPU thread waited for a CPU for a quarter of it, is
 * host starvation, not a fault: reported, and the run ends T_SKIP
 * (inconclusive) unless something else failed.
 */
int t_load_run(const struct t_load *L);

#endif
