/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef SW_INTERNAL_H
#define SW_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stubwatch.h"
#include "clock.h"
#include "lifecycle.h"
#include "watchdog.h"

#define SW_EXPORT __attribute__((visibility("default")))
#define SW_ANN_MAX 8
#define SW_BATCH 32 /* epoll events taken by one epoll_wait */

/* Does a caller's size-prefixed struct (p->size) cover this field? */
#define SW_HAS(p, field) \
	((p)->size >= offsetof(__typeof__(*(p)), field) + sizeof((p)->field))

/* epoll_event.data.u64: a stub pointer with the fd kind in its low bits, or
 * the timer tag. */
#define SW_TAG_REPORT 0u
#define SW_TAG_PIDFD  1u
#define SW_TAG_FD     2u /* the stub's watched fd (sw_stub_add_fd) */
#define SW_TAG_MASK   3u
#define SW_TAG_TIMER  ((uint64_t)1 << 63 | 2u)
#define SW_TAG_KICK   ((uint64_t)1 << 63 | 3u)

/* A look at a process's scheduling: its state letter (/proc/PID/stat),
 * then /proc/PID/schedstat: ns on a CPU, ns of waits on a run queue that
 * have ended (the kernel adds a wait when the task gets a CPU), and the
 * number of times it got one. */
struct sw_sched {
	uint64_t run_ns, wait_ns, slices;
	char state;
};

struct sw_stub {
	struct sw_loop *loop;    /* attached loop, NULL when detached (atomic) */
	struct sw_page *page;
	uint32_t mon;             /* what we last wrote to page->monitor (the
	                            page's copy is the stub's to change) */
	size_t shm_size;
	pid_t pid;
	pid_t owner;             /* the spawning process (fork detection)    */
	int pidfd;
	int report_fd;
	struct sw_wd_stub wd;

	/* the watched fd (sw_stub_add_fd): our duplicate, -1 if none;
	 * one-shot in epoll */
	int xfd;
	uint32_t xevents;
	bool xfd_armed;          /* registered and not fired since           */

	uint8_t phase;           /* enum sw_phase: where it is in its life
	                            (lifecycle.h), set by sw__phase_set()   */

	/* in-flight queue (phase IN_FLIGHT), in resume order (so in deadline
	 * order) */
	struct sw_stub *q_prev, *q_next;
	uint64_t first_read_ns;  /* clock at the first timer read after resume
	                            (set with the watchdog's stamp)          */
	uint64_t late_first_ns;  /* how late that read was                   */
	uint64_t dropped_base;   /* the loop's dropped periods at that read  */
	bool sampled;            /* a whole tick silent: baseline looked for  */
	bool smp_ok;             /* ... and read                              */
	uint64_t smp_ns;         /* clock at the baseline                     */
	struct sw_sched smp;     /* scheduling at the baseline                */
	struct sw_sched seen;    /* ... at the latest look that found a change */
	uint64_t seen_ns;        /* clock at that look                        */

	/* stubs muted after an eventfd write without a report */
	struct sw_stub *m_next;
	bool muted;
	uint32_t noise;          /* eventfd writes since its last report      */

	/* all stubs of the loop */
	struct sw_stub *l_prev, *l_next;

	bool waited;             /* target of a running sw_stub_wait()       */
	bool reaped;             /* its death is collected (status known)    */
	bool held;               /* ... but a tracer holds its zombie: reap it
	                            once the tracer lets go                  */
	struct sw_stub *g_next;  /* on the loop's graves (freed, held)       */
	/* its completion: pending in the phases lifecycle.h says, and kept
	 * once taken (ev.type tells sw_stub_continue() whether its last event
	 * was SW_EV_FD; 0 while it is in flight) */
	struct sw_event ev;
	struct sw_stub *d_next;  /* on the loop's callback list              */
	bool on_done;
	struct sw_stub *k_next;  /* on the loop's list of the dying (phases
	                            KILLING and KILLING_REPORTED)           */
	uint64_t sigkill_ns;     /* clock right after that SIGKILL            */
	bool pidns;              /* SW_SPAWN_PIDNS: its namespace dies with it,
	                            only once it is dead                     */

	sw_event_fn cb;
	void *userdata;

	/* adaptive polling (SW_LOOP_ADAPTIVE_POLL) */
	uint32_t poll_ns;        /* current budget, 0: do not spin            */
	bool poll_now;           /* spin in this wait                         */
	bool poll_measure;       /* cross-CPU: time this wait to adapt        */
	bool quiet;              /* resumed by sw_stub_run: look before sleep */
	struct sw_stub *qt_next; /* on the loop's list of quiet resumes      */
	bool on_quiet;
	bool on_ann;             /* in the loop's ann[]                      */
};

struct sw_loop {
	int epfd;
	int tfd;
	bool armed;
	struct sw_wd wd;
	uint64_t tick_ns;
	uint64_t period_ns;
	uint32_t stall_ticks;
	uint32_t timer_div;
	unsigned flags;
	uint32_t poll_max_ns;
	bool cpu_hint;                /* stubs can tell their CPU (sw__cpu)  */
	bool rdtscp;                  /* ...and older stubs too (RDTSCP)     */

	volatile uint8_t *fork_guard; /* MADV_WIPEONFORK page: 0 in a child */
	int busy;                     /* a wait or dispatch runs (atomic)   */
	bool in_callback;

	struct sw_stub *stubs;
	int nstubs;
	struct sw_stub *q_head, *q_tail;
	int n_in_flight;
	struct sw_stub *muted;
	struct sw_stub *done_head, *done_tail;
	int kickfd;                   /* readable while completions wait     */
	bool host_prepares;           /* sw_loop_prepare() runs before sleeps */
	bool prepare_due;             /* a dispatch ran since the last one   */
	bool host_callbacks;          /* dispatch or prepare runs callbacks  */
	struct sw_stub *cb_stub;      /* the stub whose callback runs        */
	struct sw_stub *quiet_head;   /* resumed quietly since its last call */
	/* the stubs told of the sleep most recently, not yet reported: a
	 * dispatch looks at them first (a bounded set, oldest dropped) */
	struct sw_stub *ann[SW_ANN_MAX];
	int n_ann;
	bool kicked;

	sw_tick_fn tick_cb;
	void *tick_userdata;
	uint64_t pending_ticks;       /* timer reads not yet told to tick_cb */
	bool tick_owed;               /* a read a wait could not return      */
	uint64_t harvest_ns;          /* next non-blocking look (fast path)  */

	/* The timer's grid: expirations at next_exp_ns + j * period_ns.  Each
	 * read is late by the time since the oldest expiration it takes. */
	uint64_t next_exp_ns;         /* the oldest expiration not yet read  */
	uint64_t last_read_ns;        /* the last read (or the arming)       */
	uint64_t cur_oldest_ns;       /* the oldest expiration of that read  */
	struct sw_loop_stats stats;   /* sw_loop_get_stats()                 */

	struct sw_stub *graves;       /* freed stubs whose zombie a tracer
	                                 holds, or that the kernel is still
	                                 taking down: reaped later          */
	struct sw_stub *dying;        /* killed, their death not yet seen:
	                                 the timer stays armed for them     */
	bool check;                   /* STUBWATCH_CHECK=1: check the
	                                 invariants (lifecycle.h)           */
};

static inline bool sw_loop_forked(const struct sw_loop *loop)
{
	return loop->fork_guard[0] == 0;
}

/* Each file's entry points, in layer order: a file calls only into the
 * files listed before it (and into poll.c, diag.c and watchdog.c, which
 * call none of them). */

/* lifecycle.c: the lists a stub is on, its completion, shared checks */
void sw__slist_remove(struct sw_stub **head, struct sw_stub *s, size_t off);
void sw__done_remove(struct sw_loop *loop, struct sw_stub *s);
void sw__lists_leave(struct sw_loop *loop, struct sw_stub *s);
void sw__quiet_remove(struct sw_loop *loop, struct sw_stub *s);
void sw__ann_drop(struct sw_loop *loop, int i);
void sw__ann_remove(struct sw_loop *loop, struct sw_stub *s);
void sw__ann_push(struct sw_loop *loop, struct sw_stub *s);
void sw__phase_set(struct sw_loop *loop, struct sw_stub *s,
		   enum sw_phase to);
bool sw__phase_legal(enum sw_phase from, enum sw_phase to);
const char *sw__stub_check(const struct sw_loop *loop,
			   const struct sw_stub *s);
const char *sw__loop_check(const struct sw_loop *loop,
			   const struct sw_stub **ret_stub);
void sw__loop_checked(const struct sw_loop *loop);
void sw__kick(struct sw_loop *loop);
void sw__unkick(struct sw_loop *loop);
void sw__complete(struct sw_loop *loop, struct sw_stub *s,
		  enum sw_event_type type);
int sw__take_event(struct sw_loop *loop, struct sw_stub *s,
		   struct sw_event *ret_ev);
int sw__may_go(struct sw_stub *s, struct sw_loop **ret_loop);

/* timer.c: the timer's grid */
int sw__timer_set(struct sw_loop *loop, bool on);
bool sw__timer_read(struct sw_loop *loop, uint64_t *ret_now,
		    uint64_t *ret_late);

/* reap.c: a stub's death collected, its teardown, the graves */
int sw__reap(struct sw_stub *s);
void sw__stop(struct sw_stub *s);
void sw__wait_teardown(int pidfd, pid_t pid);
void sw__free_stub_mem(struct sw_stub *s, bool forked);
void sw__dispose(struct sw_loop *loop, struct sw_stub *s, bool forked);
void sw__stub_end(struct sw_loop *loop, struct sw_stub *s, bool forked);
void sw__bury(struct sw_loop *loop, struct sw_stub *s);
int sw__reap_graves(struct sw_loop *loop);

/* mute.c: flood muting */
void sw__mute_remove(struct sw_loop *loop, struct sw_stub *s);
void sw__note_noise(struct sw_loop *loop, struct sw_stub *s);
bool sw__unmute(struct sw_loop *loop, struct sw_stub *s);

/* loop.c: the loop object, its fd set, one wait or dispatch at a time */
int sw__loop_enter(struct sw_loop *loop);
int sw__host_enter(struct sw_loop *loop);
void sw__loop_leave(struct sw_loop *loop);
int sw__xfd_arm(struct sw_loop *loop, struct sw_stub *s, int op);
int sw__loop_add_stub(struct sw_loop *loop, struct sw_stub *s);
void sw__loop_remove_stub(struct sw_loop *loop, struct sw_stub *s);

/* kill.c: the SIGKILL and its report, the starvation credit */
bool sw__sched_look(struct sw_stub *s, uint64_t now, struct sw_sched *cur);
void sw__send_kill(struct sw_loop *loop, struct sw_stub *s,
		   enum sw_kill_reason reason, uint32_t bad_state);
bool sw__credit_starvation(struct sw_loop *loop, struct sw_stub *s,
			   uint64_t now);

/* watch.c: reports into the watchdog, its actions carried out */
void sw__act(struct sw_loop *loop, struct sw_stub *s, enum sw_wd_action a,
	     uint32_t state_word);
void sw__on_report(struct sw_loop *loop, struct sw_stub *s);

/* death.c: a death seen, delivered or owed; a doomed stub's early end */
void sw__deliver_death(struct sw_loop *loop, struct sw_stub *s);
bool sw__on_death(struct sw_loop *loop, struct sw_stub *s);
void sw__on_doomed(struct sw_loop *loop, struct sw_stub *s);

/* fd.c: the watched fd */
void sw__on_answer(struct sw_loop *loop, struct sw_stub *s, uint32_t events);

/* events.c: one epoll_wait and its events, the timer reads */
int sw__loop_poll(struct sw_loop *loop, int timeout, bool *ticked);

/* dispatch.c: callbacks, the host-driven driver, the sleep announced */
int sw__run_callbacks(struct sw_loop *loop, int *count);
int sw__harvest(struct sw_loop *loop, bool *ticked, int *count);
void sw__announce_sleep(struct sw_loop *loop);

/* handshake.c: resume, continue, kill; a stub put in flight */
int sw__stub_start(struct sw_loop *loop, struct sw_stub *s);
int sw__resume(struct sw_stub *s, bool quiet);

/* child.c: the stub's side of the spawn, in the child (never returns) */
struct sw_child_ns {
	bool userns;       /* mapping to write */
	unsigned uid, gid; /* the caller's, to map */
};
__attribute__((noreturn)) void
sw__child(const struct sw_spawn_opts *o, struct sw_page *page, size_t size,
	  int memfd, int efd, int errfd, char *const *envp,
	  const struct sw_child_ns *ns);

/* poll.c: adaptive polling */
void sw__poll_init(struct sw_loop *loop);
uint32_t sw__poll_decide(struct sw_loop *loop, struct sw_stub *s, bool quiet);
bool sw__poll_spin(struct sw_stub *s, uint64_t t0);
void sw__poll_adapt(struct sw_loop *loop, struct sw_stub *s, bool hit,
		    uint64_t t0);

/* diag.c: fill the /proc part of a kill report (before SIGKILL). */
void sw__diag_read(pid_t pid, struct sw_kill_info *info);
/* A zombie's wait status from /proc/PID/stat (exit_code); -1 if n/a. */
int sw__stat_exit(pid_t pid, int *ret_code);
/* The exit_code of a process in its exit (PF_EXITING), and its number of
 * threads; -1 if it is not exiting or /proc does not say. */
int sw__stat_exiting(pid_t pid, int *ret_code, int *ret_threads);
/* The wait status of a process inside exit() or exit_group() by its own
 * call (/proc/PID/syscall); -1 if it is not, or /proc does not say. */
int sw__exit_call(pid_t pid);
/* 1 if a SIGKILL sent to the process is queued (ShdPnd): the kernel took
 * it, so it decides the status unless the process was exiting already;
 * 0 if not (dropped: the group was exiting already); -1 if n/a. */
int sw__kill_queued(pid_t pid);
/* No thread of the process is alive: all zombies (or gone). */
bool sw__all_zombies(pid_t pid);
/* A struct sw_sched of the process; -1 if /proc does not give it. */
int sw__sched_read(pid_t pid, struct sw_sched *out);

#endif
