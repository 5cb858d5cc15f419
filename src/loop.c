// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The loop: one epoll set over every stub's report eventfd and pidfd plus one
 * timerfd.  sw_stub_wait() and sw_loop_dispatch() are two drivers of the same
 * core, loop_poll(): one epoll_wait, then reports, then deaths, then the
 * timer, so that a report and a tick ready together count the report.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <poll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define BATCH 32
#define NOISE_MUTE 8 /* eventfd writes without a report before a mute */

static void announce_sleep(struct sw_loop *loop);
static void look_announced(struct sw_loop *loop);
static void on_dead(struct sw_loop *loop, struct sw_stub *s);

/* ---- the in-flight queue (resume order = deadline order) -------------- */

static void queue_push(struct sw_loop *loop, struct sw_stub *s)
{
	s->q_next = NULL;
	s->q_prev = loop->q_tail;
	if (loop->q_tail)
		loop->q_tail->q_next = s;
	else
		loop->q_head = s;
	loop->q_tail = s;
	s->queued = true;
	loop->n_in_flight++;
}

static void queue_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->queued)
		return;
	if (s->q_prev)
		s->q_prev->q_next = s->q_next;
	else
		loop->q_head = s->q_next;
	if (s->q_next)
		s->q_next->q_prev = s->q_prev;
	else
		loop->q_tail = s->q_prev;
	s->q_prev = s->q_next = NULL;
	s->queued = false;
	loop->n_in_flight--;
}

/* Unlink s from a singly linked list of stubs whose next pointer sits at
 * offset `off` in struct sw_stub.  The lists are short (completions not yet
 * delivered, muted floods, resumes not yet announced). */
static void slist_remove(struct sw_stub **head, struct sw_stub *s, size_t off)
{
#define NEXT(x) (*(struct sw_stub **)((char *)(x) + off))
	struct sw_stub **pp;

	for (pp = head; *pp; pp = &NEXT(*pp)) {
		if (*pp == s) {
			*pp = NEXT(s);
			break;
		}
	}
	NEXT(s) = NULL;
#undef NEXT
}

static void done_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->on_done)
		return;
	slist_remove(&loop->done_head, s, offsetof(struct sw_stub, d_next));
	loop->done_tail = NULL;
	for (struct sw_stub *t = loop->done_head; t; t = t->d_next)
		loop->done_tail = t;
	s->on_done = false;
}

static void mute_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->muted)
		return;
	slist_remove(&loop->muted, s, offsetof(struct sw_stub, m_next));
	s->muted = false;
}

static void quiet_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->on_quiet)
		return;
	slist_remove(&loop->quiet_head, s, offsetof(struct sw_stub, qt_next));
	s->on_quiet = false;
}

static void dying_remove(struct sw_loop *loop, struct sw_stub *s)
{
	if (!s->dying)
		return;
	slist_remove(&loop->dying, s, offsetof(struct sw_stub, k_next));
	s->dying = false;
}

static void ann_drop(struct sw_loop *loop, int i)
{
	loop->ann[i]->on_ann = false;
	memmove(&loop->ann[i], &loop->ann[i + 1],
		(size_t)(loop->n_ann - i - 1) * sizeof(loop->ann[0]));
	loop->n_ann--;
}

static void ann_remove(struct sw_loop *loop, struct sw_stub *s)
{
	for (int i = 0; s->on_ann && i < loop->n_ann; i++)
		if (loop->ann[i] == s)
			ann_drop(loop, i);
}

static void ann_push(struct sw_loop *loop, struct sw_stub *s)
{
	if (s->on_ann)
		return;
	if (loop->n_ann == SW_ANN_MAX)
		ann_drop(loop, 0); /* the oldest: epoll still finds it */
	loop->ann[loop->n_ann++] = s;
	s->on_ann = true;
}

/* ---- timer --------------------------------------------------------------- */

static int timer_set(struct sw_loop *loop, bool on)
{
	struct itimerspec its = { 0 };
	/* Before the arming: the grid it starts is at or after this, so the
	 * lateness measured against it is never less than the real one. */
	uint64_t now = on ? sw__now_ns() : 0;

	if (on) {
		its.it_interval.tv_sec = loop->period_ns / 1000000000ull;
		its.it_interval.tv_nsec = loop->period_ns % 1000000000ull;
		its.it_value = its.it_interval;
	}
	if (timerfd_settime(loop->tfd, 0, &its, NULL) < 0)
		return -errno;
	loop->armed = on;
	if (on) {
		loop->next_exp_ns = now + loop->period_ns;
		loop->last_read_ns = now;
	}
	return 0;
}

/* ---- completions and kills ----------------------------------------------- */

/* A completion queued outside a wait or dispatch (sw_stub_kill() finding a
 * dead stub, a resume delivering an owed death) must make the loop's fd
 * readable, or a host polling it would never dispatch it. */
static void kick(struct sw_loop *loop)
{
	static const uint64_t one = 1;

	if (!loop->kicked &&
	    write(loop->kickfd, &one, sizeof(one)) == sizeof(one))
		loop->kicked = true;
}

static void unkick(struct sw_loop *loop)
{
	uint64_t count;

	if (loop->kicked && (read(loop->kickfd, &count, sizeof(count)) ==
				     sizeof(count) || errno == EAGAIN))
		loop->kicked = false;
}

/* A stub's wait is over: keep the event for sw_stub_wait(), or queue the
 * stub for its callback. */
static void complete(struct sw_loop *loop, struct sw_stub *s,
		     enum sw_event_type type)
{
	queue_remove(loop, s);
	s->ev.type = type;
	if (type != SW_EV_FD)
		s->ev.revents = 0;
	s->pending = true;
	if (s->cb && !s->waited && !s->on_done) {
		s->d_next = NULL;
		if (loop->done_tail)
			loop->done_tail->d_next = s;
		else
			loop->done_head = s;
		loop->done_tail = s;
		s->on_done = true;
		if (!__atomic_load_n(&loop->busy, __ATOMIC_RELAXED))
			kick(loop);
	}
}

/*
 * How long a running task's figures may stand still: the kernel adds to a
 * running task's run time at each of its scheduler ticks (every 10 ms or
 * less, HZ >= 100; a nohz_full CPU, set aside at boot, is the exception).
 * Figures unchanged for longer, in state R, are a task waiting for a CPU.
 */
#define SW_RUN_STALE_NS (20 * 1000000ull)

/* Look at a sampled stub's scheduling: *cur, and when it last changed
 * (state, run time or CPU count).  False if /proc does not say. */
static bool sched_look(struct sw_stub *s, uint64_t now, struct sw_sched *cur)
{
	if (!s->sampled || !s->smp_ok || sw__sched_read(s->pid, cur) < 0 ||
	    cur->run_ns < s->smp.run_ns || cur->wait_ns < s->smp.wait_ns)
		return false;
	if (cur->state != s->seen.state || cur->run_ns != s->seen.run_ns ||
	    cur->slices != s->seen.slices) {
		s->seen = *cur;
		s->seen_ns = now;
	}
	return true;
}

/*
 * The stub's wait since its baseline that was not its choice: the waits for
 * a CPU the kernel has accounted, and the one still going on, which the
 * kernel accounts only once it ends.  A stub found runnable at one look, and
 * at every look since with neither its run time nor its CPU count moved, has
 * not run since that look: it has waited at least that long (once that is
 * past SW_RUN_STALE_NS, so that a stub on a CPU all along is not mistaken).
 * So has one found blocked in the kernel (D: a page fault, a lock, an exit
 * held up by others) at each look since: the kernel keeps no figure for
 * that, so only what the looks saw counts.
 */
static uint64_t sched_wait(const struct sw_stub *s, uint64_t now,
			   const struct sw_sched *cur)
{
	uint64_t w = cur->wait_ns - s->smp.wait_ns;

	if ((cur->state == 'R' || cur->state == 'D') &&
	    s->seen.state == cur->state && now - s->seen_ns >= SW_RUN_STALE_NS)
		w += now - s->seen_ns;
	return w;
}

static void send_kill(struct sw_loop *loop, struct sw_stub *s,
		      enum sw_kill_reason reason, uint32_t bad_state)
{
	struct sw_kill_info *k = &s->ev.kill;
	bool stalled = s->queued;
	uint64_t now = sw__now_ns();

	memset(k, 0, sizeof(*k));
	k->reason = reason;
	k->pid = s->pid;
	k->bad_state = bad_state;
	k->killed_at_ns = now;
	if (reason == SW_KILL_STALL && sw_wd_stamped(&s->wd)) {
		k->silent_ns = now > s->first_read_ns ? now - s->first_read_ns
						      : 0;
		/* The bound of watchdog.h: the first read's lateness, this
		 * read's (to the SIGKILL), and the periods reads dropped. */
		k->monitor_late_ns =
			s->late_first_ns +
			(now > loop->cur_oldest_ns ? now - loop->cur_oldest_ns
						   : 0) +
			(loop->wd.dropped - s->dropped_base) * loop->period_ns;
		k->starved_ns = s->wd.credit * loop->period_ns;
	}
	if (reason == SW_KILL_STALL && stalled)
		k->stall_ticks = (uint32_t)((sw_wd_counted(&loop->wd, &s->wd) -
					     s->wd.credit) / loop->timer_div);
	if (reason == SW_KILL_STALL) {
		struct sw_sched cur;

		if (sched_look(s, now, &cur)) {
			k->stall_window_ns = now - s->smp_ns;
			k->stall_run_ns = cur.run_ns - s->smp.run_ns;
			k->stall_wait_ns = sched_wait(s, now, &cur);
		}
	}
	queue_remove(loop, s);
	mute_remove(loop, s);
	sw__diag_read(s->pid, k);
	/* The stub is our unreaped child, so its pid cannot be reused; the
	 * pidfd makes that explicit.  ESRCH: it is dying already. */
	syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
	s->sigkill_ns = sw__now_ns();
	/* Its death is looked for at the timer reads from now on, whether
	 * or not anything is in flight (on_timer(), on_doomed()). */
	s->k_next = loop->dying;
	loop->dying = s;
	s->dying = true;
	if (!loop->armed)
		timer_set(loop, true);
}

/* Carry out a state machine action. */
static void act(struct sw_loop *loop, struct sw_stub *s,
		enum sw_wd_action a, uint32_t state_word)
{
	switch (a) {
	case SW_WD_DONE_REPORT:
		complete(loop, s, SW_EV_REPORT);
		break;
	case SW_WD_KILL_STALL:
		send_kill(loop, s, SW_KILL_STALL, 0);
		break;
	case SW_WD_KILL_PROTOCOL:
		send_kill(loop, s, SW_KILL_PROTOCOL, state_word);
		break;
	case SW_WD_KILL_USER:
		send_kill(loop, s, SW_KILL_USER, 0);
		break;
	case SW_WD_DONE_EXIT:
		complete(loop, s, SW_EV_EXIT);
		break;
	case SW_WD_DONE_KILL:
		/* A status that is not the SIGKILL's: the stub was exiting
		 * already (an exit can sit in the kernel, in D, past the
		 * deadline) or died of its own signal first.  It ended on its
		 * own, and says so. */
		if (s->ev.status != -1 &&
		    !(WIFSIGNALED(s->ev.status) &&
		      WTERMSIG(s->ev.status) == SIGKILL)) {
			memset(&s->ev.kill, 0, sizeof(s->ev.kill));
			complete(loop, s, SW_EV_EXIT);
		} else {
			complete(loop, s, SW_EV_KILL);
		}
		break;
	case SW_WD_DONE_ANSWER:
		complete(loop, s, SW_EV_FD);
		break;
	case SW_WD_NONE:
	case SW_WD_REFUSE:
		break;
	}
}

/* The report eventfd fired (or a spin saw the state word change): the
 * shared state word decides what it means. */
void sw__on_report(struct sw_loop *loop, struct sw_stub *s)
{
	uint32_t st = __atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE);
	enum sw_wd_event ev;
	enum sw_wd_action a;

	if (st == SW_STATE_IN_KERN)
		ev = SW_WD_EV_REPORT;
	else if (st == SW_STATE_IN_CHILD)
		ev = SW_WD_EV_NOISE;
	else
		ev = SW_WD_EV_BAD;

	a = sw_wd_step(&loop->wd, &s->wd, ev);
	if (a == SW_WD_DONE_REPORT)
		s->noise = 0;
	else if (a == SW_WD_NONE && ++s->noise >= NOISE_MUTE && !s->muted &&
		 s->wd.state != SW_WD_DEAD && s->wd.state != SW_WD_KILLING) {
		/* Writes that are not reports of a running stub (one can be a
		 * leftover, after an attach; many are a flood, in flight or
		 * idle): mute the eventfd until the next timer read or resume,
		 * so a flooding stub cannot keep the monitor busy.  A real
		 * report made meanwhile is seen then. */
		struct epoll_event e = { .events = EPOLLIN | EPOLLET |
						   EPOLLONESHOT,
					 .data.u64 = (uintptr_t)s | SW_TAG_REPORT };

		if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, s->report_fd, &e) == 0) {
			s->muted = true;
			s->m_next = loop->muted;
			loop->muted = s;
		}
	}
	act(loop, s, a, st);
}

/* The stub's watched fd fired (one-shot: disarmed until it goes in flight
 * again).  It answers for the stub only while in flight, and only with an
 * event asked for: a hang-up or error alone (a seccomp listener hangs up
 * when the stub dies) leaves the stub to its pidfd and its watchdog. */
static void on_answer(struct sw_loop *loop, struct sw_stub *s, uint32_t events)
{
	enum sw_wd_action a;

	s->xfd_armed = false;
	if (!(events & s->xevents))
		return;
	/* A report that reached the state word but whose eventfd event is
	 * not processed yet wins, as in one batch. */
	if (s->wd.state == SW_WD_RUNNING &&
	    __atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
		    SW_STATE_IN_CHILD) {
		sw__on_report(loop, s);
		return;
	}
	a = sw_wd_step(&loop->wd, &s->wd, SW_WD_EV_ANSWER);
	if (a == SW_WD_DONE_ANSWER)
		s->ev.revents = events;
	act(loop, s, a, 0);
}

static int status_of(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default:
		return si->si_status & 0x7f;
	}
}

/* PIDFD_GET_INFO (Linux 6.13) and its PIDFD_INFO_EXIT (6.15), which older
 * uapi headers lack: the first published struct pidfd_info, 64 bytes. */
struct sw_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid,
		fsgid;
	int32_t exit_code;
};
#define SW_PIDFD_GET_INFO  _IOWR(0xFF, 11, struct sw_pidfd_info)
#define SW_PIDFD_INFO_EXIT (1ull << 3)

/*
 * The stub was reaped by someone else.  An exec'd stub can be: execve()
 * resets exit_signal to SIGCHLD, so a host's waitpid(-1) or SIGCHLD =
 * SIG_IGN sees it.  The pidfd still knows its wait status on Linux 6.15+;
 * before that it is lost (-1).
 */
static int stolen_status(int pidfd)
{
	struct sw_pidfd_info info = { .mask = SW_PIDFD_INFO_EXIT };

	if (ioctl(pidfd, SW_PIDFD_GET_INFO, &info) == 0 &&
	    (info.mask & SW_PIDFD_INFO_EXIT))
		return info.exit_code;
	return -1;
}

/*
 * The status of a zombie that a tracer holds: its real parent (us) cannot
 * reap it until the tracer waits for it or goes away, but it is dead.
 * /proc/PID/stat's exit_code is the status the wait would give; the pid
 * cannot have been reused while PIDFD_GET_INFO finds no exit yet (a reaped
 * stub's exit is recorded there, on Linux 6.15 and later).
 */
static int held_status(struct sw_stub *s)
{
	int code, r;

	r = sw__stat_exit(s->pid, &code);
	if (stolen_status(s->pidfd) != -1)
		return stolen_status(s->pidfd); /* reaped meanwhile */
	return r == 0 ? code : -1;
}

/* Collect the stub's death without blocking.  Returns 1 when it is dead and
 * its status known: reaped, found reaped by someone else, or a zombie that a
 * tracer holds (s->held: reaped later, sw__reap_graves()); 0 if it is still
 * alive; or -errno. */
int sw__reap(struct sw_stub *s)
{
	struct pollfd p = { .fd = s->pidfd, .events = POLLIN };
	siginfo_t si;

	if (s->reaped && !s->held)
		return 1;
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid((idtype_t)P_PIDFD, (id_t)s->pidfd, &si,
			   WEXITED | __WALL | WNOHANG) == 0)
			break;
		if (errno == ECHILD) {
			if (!s->reaped)
				s->ev.status = stolen_status(s->pidfd);
			s->reaped = true;
			s->held = false;
			return 1;
		}
		if (errno != EINTR)
			return -errno;
	}
	if (si.si_pid != 0) {
		if (!s->reaped)
			s->ev.status = status_of(&si);
		s->reaped = true;
		s->held = false;
		return 1;
	}
	if (s->reaped)
		return 1; /* still held */
	/* Nothing to reap: alive, or dead with a tracer holding the zombie.
	 * A readable pidfd says dead. */
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN))
		return 0;
	s->ev.status = held_status(s);
	s->reaped = true;
	s->held = true;
	return 1;
}

/* Deliver a death the loop has seen (reaped) but held back because the
 * stub's report was still pending: neither may be lost. */
static void deliver_death(struct sw_loop *loop, struct sw_stub *s)
{
	s->death_owed = false;
	act(loop, s, sw_wd_step(&loop->wd, &s->wd, SW_WD_EV_DEATH), 0);
}

/* Look for the stub's death; deliver it, or owe it behind a pending
 * report.  Returns true if the stub is known dead. */
static bool on_death(struct sw_loop *loop, struct sw_stub *s)
{
	if (s->reaped)
		return true;
	/* A report that reached the state word but whose eventfd event is
	 * not processed yet (it is dropped with the fd below) still counts:
	 * look before reaping, while the pid is surely the stub's. */
	if (s->wd.state == SW_WD_RUNNING &&
	    __atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
		    SW_STATE_IN_CHILD)
		sw__on_report(loop, s);
	if (sw__reap(s) <= 0)
		return false;
	on_dead(loop, s);
	return true;
}

/* The stub's death is collected (s->reaped): out of the loop's sets, and
 * delivered, or owed behind a pending report. */
static void on_dead(struct sw_loop *loop, struct sw_stub *s)
{
	dying_remove(loop, s);
	/* Both fds leave the epoll set now: the pidfd stays readable and the
	 * eventfd may still be held by the stub's own children. */
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->report_fd, NULL);
	if (s->xfd >= 0)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->xfd, NULL);
	mute_remove(loop, s);
	if (s->pending)
		s->death_owed = true;
	else
		deliver_death(loop, s);
}

/*
 * A stub SIGKILLed at least a timer period ago whose death is still not
 * seen.  Once it is in its exit (PF_EXITING), the kernel is taking it
 * down, and on a loaded host that can take seconds (its exit waits on the
 * locks of files that many processes map, for instance behind DAMON's
 * walks of a library a thousand stubs map).  It runs no code of its own
 * again, and its leader's exit_code, set before the teardown, is already
 * its wait status when it says SIGKILL, or when the stub has one thread
 * and a code other than 0 (it was exiting on its own); a 0 is its status
 * when the stub is inside its own exit_group(0) or exit(0) (0 is also
 * what exit_code reads in the moment before the kernel sets it, so 0
 * alone proves nothing).  Then its wait ends
 * now, with that status, and its zombie is reaped later, as a held one is
 * (sw__reap_graves(), sw_loop_free()): the wait never waits on the
 * kernel's teardown.  A stub not yet in its exit (no CPU yet, or a system
 * call in D still running), or whose status is not yet certain, is looked
 * at again at the next read; one with SW_SPAWN_PIDNS is waited for, since
 * the other processes of its namespace are killed only once it is dead.
 */
static void on_doomed(struct sw_loop *loop, struct sw_stub *s)
{
	int code, threads;

	if (on_death(loop, s))
		return; /* dead after all: the real status */
	if (s->pidns || sw__stat_exiting(s->pid, &code, &threads) < 0)
		return;
	/* Its own code counts only if the kernel dropped our SIGKILL (the
	 * group was exiting already), the stub has one thread, and that
	 * thread is not a zombie left by a leader that exited alone. */
	if (code != SIGKILL &&
	    !(threads == 1 && sw__kill_queued(s->pid) == 0 &&
	      !sw__all_zombies(s->pid) &&
	      (code != 0 || sw__exit_call(s->pid) == 0)))
		return;
	s->ev.status = code;
	s->reaped = true;
	s->held = true;
	on_dead(loop, s);
}

/* Give a muted eventfd back its events.  Its count is drained first (it is
 * never read on the hot path, so it would report readable at once), then
 * the state word is checked, since a report made while muted woke nobody. */
static void unmute(struct sw_loop *loop, struct sw_stub *s)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLET,
				 .data.u64 = (uintptr_t)s | SW_TAG_REPORT };
	uint64_t count;
	struct iovec iov = { .iov_base = &count, .iov_len = sizeof(count) };

	mute_remove(loop, s);
	s->noise = 0;
	/* The stub shares the eventfd's open file description and may have
	 * cleared its O_NONBLOCK and drained it: only RWF_NOWAIT makes this
	 * read non-blocking whatever the file's flags.  Where the kernel
	 * refuses it, the count stays: one stale event, seen as noise. */
	preadv2(s->report_fd, &iov, 1, -1, RWF_NOWAIT);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, s->report_fd, &e) < 0)
		return;
	if (__atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
	    SW_STATE_IN_CHILD)
		sw__on_report(loop, s);
}

/*
 * A stub was runnable but got no CPU: that is not silence by choice.  Before
 * a stall kill, credit it with its run-queue wait since the baseline (taken
 * after a whole tick of silence), in whole timer periods, at most N ticks per
 * resume (watchdog.h).  Returns true if its deadline moved.
 */
static bool credit_starvation(struct sw_loop *loop, struct sw_stub *s,
			      uint64_t now)
{
	struct sw_sched cur;
	uint64_t periods;

	if (s->wd.credit >= loop->wd.credit_max || !sched_look(s, now, &cur))
		return false;
	periods = sched_wait(s, now, &cur) / loop->period_ns;
	if (periods <= s->wd.credit)
		return false;
	return sw_wd_credit(&loop->wd, &s->wd, periods - s->wd.credit) > 0;
}

static void on_timer(struct sw_loop *loop, bool *ticked)
{
	uint64_t expirations, now, late, oldest;
	struct sw_stub *s, *next;
	int ngraves;

	if (read(loop->tfd, &expirations, sizeof(expirations)) !=
	    sizeof(expirations) || expirations == 0)
		return; /* nothing to read: disarmed meanwhile */
	now = sw__now_ns();
	oldest = loop->next_exp_ns;
	late = now > oldest ? now - oldest : 0;
	loop->next_exp_ns = oldest + expirations * loop->period_ns;
	loop->cur_oldest_ns = oldest;
	loop->stats.timer_reads++;
	loop->stats.timer_periods += sw_wd_tick(&loop->wd, expirations);
	if (late > loop->stats.max_late_ns)
		loop->stats.max_late_ns = late;
	if (now - loop->last_read_ns > loop->stats.max_gap_ns)
		loop->stats.max_gap_ns = now - loop->last_read_ns;
	loop->last_read_ns = now;
	*ticked = true;
	loop->pending_ticks++;

	/* The first read since their resume: their silence counts from here
	 * (the queue is in resume order, so they are at its tail). */
	for (s = loop->q_tail; s && !sw_wd_stamped(&s->wd); s = s->q_prev) {
		sw_wd_stamp(&loop->wd, &s->wd);
		s->first_read_ns = now;
		s->late_first_ns = late;
		s->dropped_base = loop->wd.dropped;
	}
	/* A whole tick of silence: take a baseline of the stub's scheduling,
	 * for the kill diagnostics and the starvation credit; within a tick
	 * of its deadline, look each period, to see when it last ran.  The
	 * queue is in resume order, so those silent that long are at its
	 * head; the rest answer first, mostly. */
	for (s = loop->q_head;
	     s && sw_wd_counted(&loop->wd, &s->wd) >= loop->timer_div;
	     s = s->q_next) {
		struct sw_sched cur;

		/* Reported, its event not yet taken: silent only because the
		 * monitor is busy, so no /proc reads for it.  (A stub that
		 * writes a state word without reporting gets no credit: at
		 * its deadline the word is judged as it stands.) */
		if (__atomic_load_n(&s->page->state, __ATOMIC_RELAXED) !=
		    SW_STATE_IN_CHILD)
			continue;
		if (!s->sampled) {
			s->sampled = true; /* one baseline per resume */
			/* (no run time at all: the kernel keeps no figures) */
			s->smp_ok = sw__sched_read(s->pid, &s->smp) == 0 &&
				    s->smp.run_ns;
			s->smp_ns = s->seen_ns = now;
			s->seen = s->smp;
		} else if (sw_wd_counted(&loop->wd, &s->wd) + loop->timer_div >=
			   loop->wd.limit + s->wd.credit) {
			sched_look(s, now, &cur);
		}
	}
	/* Muted stubs first: a report made while muted is not a stall. */
	while ((s = loop->muted))
		unmute(loop, s);
	/* Those past the limit are a prefix of the queue; starvation credit
	 * may keep some of them alive a while, so look past those. */
	for (s = loop->q_head;
	     s && sw_wd_counted(&loop->wd, &s->wd) >= loop->wd.limit; s = next) {
		next = s->q_next;
		if (!sw_wd_expired(&loop->wd, &s->wd))
			continue;
		/* A report that reached the state word but not yet the epoll
		 * set (its eventfd write still to come) is not a stall. */
		if (__atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
		    SW_STATE_IN_CHILD)
			sw__on_report(loop, s);
		else if (!credit_starvation(loop, s, now) ||
			 sw_wd_expired(&loop->wd, &s->wd))
			act(loop, s,
			    sw_wd_step(&loop->wd, &s->wd, SW_WD_EV_EXPIRE), 0);
	}
	/* The killed, a whole period after their SIGKILL: dead, or doomed. */
	for (s = loop->dying; s; s = next) {
		next = s->k_next;
		if (now >= s->sigkill_ns + loop->period_ns)
			on_doomed(loop, s);
	}
	/* The timer stays on while a freed stub is still being taken down. */
	ngraves = loop->graves ? sw__reap_graves(loop) : 0;
	if (loop->n_in_flight == 0 && !loop->dying && !ngraves && loop->armed)
		timer_set(loop, false);
}

/* One epoll_wait and its events.  Returns the number of events or -errno. */
static int loop_poll(struct sw_loop *loop, int timeout, bool *ticked)
{
	struct epoll_event evs[BATCH];
	bool timer = false;
	int n, i;

	n = epoll_wait(loop->epfd, evs, BATCH, timeout);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;

	for (i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;

		if (d == SW_TAG_TIMER)
			timer = true;
		else if (d == SW_TAG_KICK)
			unkick(loop);
		else if ((d & SW_TAG_MASK) == SW_TAG_REPORT)
			sw__on_report(loop, (struct sw_stub *)(uintptr_t)d);
	}
	for (i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;

		if (d != SW_TAG_TIMER && d != SW_TAG_KICK &&
		    (d & SW_TAG_MASK) == SW_TAG_PIDFD)
			on_death(loop, (struct sw_stub *)(uintptr_t)(d & ~(uint64_t)SW_TAG_MASK));
	}
	/* then the watched fds: a report or a death in the batch wins */
	for (i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;

		if (d != SW_TAG_TIMER && d != SW_TAG_KICK &&
		    (d & SW_TAG_MASK) == SW_TAG_FD)
			on_answer(loop,
				  (struct sw_stub *)(uintptr_t)(d & ~(uint64_t)SW_TAG_MASK),
				  evs[i].events);
	}
	/* A full batch may have left the timer behind other ready fds: read
	 * it by the clock, so that a monitor kept busy by its stubs still
	 * takes it once a period. */
	if (!timer && n == BATCH && loop->armed &&
	    sw__now_ns() >= loop->next_exp_ns)
		timer = true;
	if (timer)
		on_timer(loop, ticked);
	return n;
}

/* ---- enter/leave: one wait or dispatch at a time ------------------------- */

static int loop_enter(struct sw_loop *loop)
{
	int expected = 0;

	if (loop->in_callback)
		return -EBUSY;
	if (!__atomic_compare_exchange_n(&loop->busy, &expected, 1, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return -EBUSY;
	return 0;
}

/* The checks of the host's calls (dispatch, prepare), then enter. */
static int host_enter(struct sw_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (sw_loop_forked(loop))
		return -ECHILD;
	return loop_enter(loop);
}

static void loop_leave(struct sw_loop *loop)
{
	__atomic_store_n(&loop->busy, 0, __ATOMIC_RELEASE);
}

/* Take a pending completion out of the stub. */
static int take_event(struct sw_stub *s, struct sw_event *ret_ev)
{
	s->pending = false;
	if (s->ev.type == SW_EV_EXIT || s->ev.type == SW_EV_KILL)
		s->delivered_end = true;
	s->answered = s->ev.type == SW_EV_FD;
	if (ret_ev)
		*ret_ev = s->ev;
	return s->ev.type;
}

/* Run the callbacks of stubs that completed, all of them even if one
 * fails (a completion left queued would not make the loop's fd readable
 * again); return the first error.  The stub is not touched after its
 * callback returns, so the callback may free it. */
static int run_callbacks(struct sw_loop *loop, int *count)
{
	struct sw_stub *s;
	int r = 0, e;

	while ((s = loop->done_head)) {
		struct sw_event ev;
		sw_event_fn fn = s->cb;
		void *ud = s->userdata;

		loop->done_head = s->d_next;
		if (!loop->done_head)
			loop->done_tail = NULL;
		s->d_next = NULL;
		s->on_done = false;
		if (!fn || s->waited)
			continue; /* callback cleared, or now waited on */
		take_event(s, &ev);
		loop->in_callback = true;
		loop->cb_stub = s;
		e = fn(s, &ev, ud);
		loop->in_callback = false;
		/* cb_stub is cleared if the callback freed or detached it */
		if (loop->cb_stub == s && s->death_owed && !s->pending)
			deliver_death(loop, s); /* queued behind this report */
		loop->cb_stub = NULL;
		(*count)++;
		if (e < 0 && r == 0)
			r = e;
	}
	return r;
}

static int run_tick_callback(struct sw_loop *loop)
{
	int r = 0;

	if (!(loop->flags & SW_LOOP_TICK_EVENTS) || !loop->tick_cb) {
		loop->pending_ticks = 0;
		return 0;
	}
	if (loop->pending_ticks) {
		/* One call however many reads: ticks that piled up while the
		 * host was away are one late tick, not a burst. */
		loop->pending_ticks = 0;
		loop->in_callback = true;
		r = loop->tick_cb(loop, loop->tick_userdata);
		loop->in_callback = false;
	}
	return r < 0 ? r : 0;
}

/* The tick callback, then the completions it made (a kill, say); the first
 * error. */
static int run_ticks(struct sw_loop *loop, int *count)
{
	int r = run_tick_callback(loop), e = run_callbacks(loop, count);

	return r ? r : e;
}

/* ---- graves: freed stubs whose zombie a tracer holds ---------------------- */

/* Keep a freed stub's pidfd until its zombie can be reaped; the timer
 * reads look for it. */
void sw__bury(struct sw_loop *loop, struct sw_stub *s)
{
	s->g_next = loop->graves;
	loop->graves = s;
	if (!loop->armed)
		timer_set(loop, true);
}

/* Reap those whose tracer has let go or whose teardown is over; never
 * blocks.  Returns how many the kernel is still taking down (their pidfd
 * not yet readable). */
int sw__reap_graves(struct sw_loop *loop)
{
	struct sw_stub **pp = &loop->graves, *s;
	int n = 0;

	while ((s = *pp)) {
		struct pollfd p = { .fd = s->pidfd, .events = POLLIN };
		/* before the reap: a teardown that ends in between counts */
		bool torn = poll(&p, 1, 0) == 1 || sw__all_zombies(s->pid);

		if (sw__reap(s) != 1 || s->held) {
			n += !torn;
			pp = &s->g_next;
			continue;
		}
		*pp = s->g_next;
		close(s->pidfd);
		free(s);
	}
	return n;
}

/* ---- public: loop -------------------------------------------------------- */

SW_EXPORT int sw_loop_new(const struct sw_loop_opts *opts,
			  struct sw_loop **ret_loop)
{
	uint64_t tick = SW_TICK_NS_DEFAULT;
	uint32_t stall = SW_STALL_TICKS_DEFAULT, div = SW_TIMER_DIV_DEFAULT;
	unsigned flags = 0;
	uint32_t poll_max = SW_POLL_MAX_NS_DEFAULT;
	struct sw_loop *loop;
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = SW_TAG_TIMER };
	void *guard;
	int r;

	if (!ret_loop)
		return -EINVAL;
	if (opts) {
		if (!SW_HAS(opts, stall_ticks) || !opts->tick_ns ||
		    !opts->stall_ticks)
			return -EINVAL;
		tick = opts->tick_ns;
		stall = opts->stall_ticks;
		/* every field that size covers counts, each on its own */
		if (SW_HAS(opts, timer_div) && opts->timer_div)
			div = opts->timer_div;
		if (SW_HAS(opts, flags))
			flags = opts->flags;
		if (SW_HAS(opts, poll_max_ns) && opts->poll_max_ns)
			poll_max = opts->poll_max_ns;
	}
	if (stall > SW_STALL_TICKS_MAX || div < 2 || div > SW_TIMER_DIV_MAX ||
	    tick % div || tick / div < SW_TIMER_NS_MIN ||
	    tick > (uint64_t)INT64_MAX / ((uint64_t)stall + 1) ||
	    poll_max > SW_POLL_MAX_NS_MAX ||
	    (flags & ~(SW_LOOP_TICK_EVENTS | SW_LOOP_ADAPTIVE_POLL)))
		return -EINVAL;

	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epfd = loop->tfd = loop->kickfd = -1;
	loop->tick_ns = tick;
	loop->stall_ticks = stall;
	loop->timer_div = div;
	loop->period_ns = tick / div;
	loop->flags = flags;
	loop->poll_max_ns = poll_max;
	sw__poll_init(loop);
	sw_wd_init(&loop->wd, stall, div);

	guard = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	loop->fork_guard = guard;
	if (madvise(guard, (size_t)sysconf(_SC_PAGESIZE), MADV_WIPEONFORK) < 0) {
		r = -errno;
		goto fail;
	}
	loop->fork_guard[0] = 1;

	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		r = -errno;
		goto fail;
	}
	loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (loop->tfd < 0) {
		r = -errno;
		goto fail;
	}
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->tfd, &e) < 0) {
		r = -errno;
		goto fail;
	}
	loop->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->kickfd < 0) {
		r = -errno;
		goto fail;
	}
	e.data.u64 = SW_TAG_KICK; /* level-triggered: readable until drained */
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->kickfd, &e) < 0) {
		r = -errno;
		goto fail;
	}
	*ret_loop = loop;
	return 0;
fail:
	if (r == -EPERM || r == -EINVAL)
		r = -ENOMEM; /* only resource failures can reach here */
	sw_loop_free(loop);
	return r;
}

SW_EXPORT struct sw_loop *sw_loop_free(struct sw_loop *loop)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	if (!loop)
		return NULL;
	if (loop->in_callback || __atomic_load_n(&loop->busy, __ATOMIC_ACQUIRE))
		return loop; /* refused: inside its own callback or wait */
	/* SIGKILL them all first, so that the kernel takes them down side by
	 * side, not one after another. */
	if (!sw_loop_forked(loop))
		for (struct sw_stub *s = loop->stubs; s; s = s->l_next)
			if (!s->reaped)
				syscall(SYS_pidfd_send_signal, s->pidfd,
					SIGKILL, NULL, 0);
	while (loop->stubs) {
		struct sw_stub *s = loop->stubs;

		s->cb = NULL;
		if (sw_stub_free(s))
			sw__loop_remove_stub(loop, s); /* cannot happen; be safe */
	}
	/* A stub the kernel is still taking down is waited for, as
	 * sw_stub_free() waits for one (its pidfd turns readable when it is
	 * a zombie); a zombie a tracer still holds stays one until the
	 * monitor exits: waiting for the tracer could take for ever. */
	while (loop->graves) {
		struct sw_stub *s = loop->graves;

		loop->graves = s->g_next;
		/* (in a child after fork they are the parent's: forgotten) */
		if (!sw_loop_forked(loop)) {
			sw__wait_teardown(s->pidfd, s->pid);
			sw__reap(s);
		}
		close(s->pidfd);
		free(s);
	}
	if (loop->tfd >= 0)
		close(loop->tfd);
	if (loop->kickfd >= 0)
		close(loop->kickfd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->fork_guard)
		munmap((void *)loop->fork_guard, pg);
	free(loop);
	return NULL;
}

SW_EXPORT int sw_loop_get_opts(const struct sw_loop *loop,
			       struct sw_loop_opts *ret_opts)
{
	if (!loop || !ret_opts || ret_opts->size < sizeof(*ret_opts))
		return -EINVAL;
	ret_opts->tick_ns = loop->tick_ns;
	ret_opts->stall_ticks = loop->stall_ticks;
	ret_opts->timer_div = loop->timer_div;
	ret_opts->flags = loop->flags;
	ret_opts->poll_max_ns = loop->poll_max_ns;
	return 0;
}

SW_EXPORT int sw_loop_get_fd(struct sw_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (sw_loop_forked(loop))
		return -ECHILD;
	return loop->epfd;
}

SW_EXPORT int sw_loop_count_stubs(const struct sw_loop *loop)
{
	return loop ? loop->nstubs : -EINVAL;
}

SW_EXPORT int sw_loop_count_in_flight(const struct sw_loop *loop)
{
	return loop ? loop->n_in_flight : -EINVAL;
}

SW_EXPORT int sw_loop_get_stats(struct sw_loop *loop,
				struct sw_loop_stats *ret_stats, int reset)
{
	size_t size;

	if (!loop || !ret_stats || !SW_HAS(ret_stats, max_gap_ns))
		return -EINVAL;
	size = ret_stats->size < sizeof(loop->stats) ? ret_stats->size
						     : sizeof(loop->stats);
	memcpy(ret_stats, &loop->stats, size);
	ret_stats->size = size;
	if (reset)
		memset(&loop->stats, 0, sizeof(loop->stats));
	return 0;
}

SW_EXPORT int sw_loop_set_tick_callback(struct sw_loop *loop, sw_tick_fn fn,
					void *userdata)
{
	if (!loop)
		return -EINVAL;
	loop->tick_cb = fn;
	loop->tick_userdata = userdata;
	return 0;
}

SW_EXPORT int sw_loop_dispatch(struct sw_loop *loop)
{
	int count = 0, r, e, n, rounds;
	bool ticked = false;

	r = host_enter(loop);
	if (r < 0)
		return r;
	/* A host that stopped calling sw_loop_prepare() (two dispatches with
	 * no prepare between them): announce the sleep for it, and resume
	 * loudly from now on. */
	if (loop->prepare_due) {
		loop->host_prepares = false;
		announce_sleep(loop);
	}
	loop->host_callbacks = true;
	look_announced(loop);
	/* Completions made by sw_stub_kill() or during another wait. */
	r = run_callbacks(loop, &count);
	for (rounds = 0; rounds < 4; rounds++) {
		n = loop_poll(loop, 0, &ticked);
		if (n < 0) {
			r = r ? r : n;
			break;
		}
		e = run_callbacks(loop, &count);
		r = r ? r : e;
		e = run_ticks(loop, &count);
		r = r ? r : e;
		if (n < BATCH)
			break;
	}
	loop->host_callbacks = false;
	loop->prepare_due = loop->host_prepares;
	loop_leave(loop);
	return r < 0 ? r : count;
}

/* ---- public: the handshake ---------------------------------------------- */

/* (Re-)register the stub's watched fd, one-shot. */
static int xfd_arm(struct sw_loop *loop, struct sw_stub *s, int op)
{
	struct epoll_event e = { .events = s->xevents | EPOLLONESHOT,
				 .data.u64 = (uintptr_t)s | SW_TAG_FD };

	if (epoll_ctl(loop->epfd, op, s->xfd, &e) < 0)
		return -errno;
	s->xfd_armed = true;
	return 0;
}

/* Put a stub in flight (spawn or resume). */
int sw__stub_start(struct sw_loop *loop, struct sw_stub *s)
{
	enum sw_wd_action a;
	int r;

	if (s->wd.state != SW_WD_IDLE)
		return s->wd.state == SW_WD_RUNNING ? -EBUSY : 0;
	if (!loop->armed) {
		r = timer_set(loop, true);
		if (r < 0)
			return r;
	}
	if (s->xfd >= 0 && !s->xfd_armed) {
		r = xfd_arm(loop, s, EPOLL_CTL_MOD);
		if (r < 0)
			return r;
	}
	/* Always SW_WD_EV_RESUME, even with the timer armed just now: the
	 * first read may come after a wait that starts late, with expirations
	 * from before that wait, which must not count. */
	a = sw_wd_step(&loop->wd, &s->wd, SW_WD_EV_RESUME);
	if (a == SW_WD_REFUSE)
		return -EBUSY;
	s->sampled = false;
	s->answered = false;
	queue_push(loop, s);
	return 0;
}

/* The checks resume, continue and add_fd share; sets *ret_loop on 0. */
static int may_go(struct sw_stub *s, struct sw_loop **ret_loop)
{
	struct sw_loop *loop;

	if (!s)
		return -EINVAL;
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (!loop)
		return -ENOLINK;
	if (sw_loop_forked(loop))
		return -ECHILD;
	if (s->delivered_end)
		return -ESRCH;
	*ret_loop = loop;
	return 0;
}

/*
 * Resume.  quiet: a wait follows at once (sw_stub_run), so the stub is told
 * the monitor is not asleep, and that wait sets SW_MON_SLEEPING only if it
 * has to sleep.  Otherwise the monitor counts as asleep: the host may be
 * polling the loop's fd.
 */
static int resume(struct sw_stub *s, bool quiet)
{
	struct sw_loop *loop;
	uint32_t mon;
	bool host_quiet;
	int r = may_go(s, &loop);

	if (r < 0)
		return r;
	if (s->pending)
		return -EBUSY; /* collect it first */
	if (s->answered && s->wd.state == SW_WD_IDLE && !s->death_owed)
		return -EINVAL; /* it answered through its fd: continue it */
	if (s->death_owed) {
		deliver_death(loop, s); /* the next wait returns the EXIT */
		return 0;
	}
	if (s->wd.state == SW_WD_RUNNING)
		return -EBUSY;
	if (s->muted)
		unmute(loop, s); /* it flooded while idle; the timer may be off */
	r = sw__stub_start(loop, s);
	if (r < 0 || s->wd.state != SW_WD_RUNNING)
		return r; /* dying or dead: the wait reports it */
	/* Quiet too when a callback of a host that prepares resumes it: that
	 * host calls sw_loop_prepare() before it sleeps. */
	host_quiet = !quiet && loop->host_prepares && loop->host_callbacks;
	mon = quiet || host_quiet ? 0 : SW_MON_SLEEPING;
	s->quiet = quiet || host_quiet;
	if (host_quiet && !s->on_quiet) {
		/* sw_loop_prepare() looks at it before the host sleeps */
		s->qt_next = loop->quiet_head;
		loop->quiet_head = s;
		s->on_quiet = true;
	}
	if (loop->flags & SW_LOOP_ADAPTIVE_POLL)
		mon |= sw__poll_decide(loop, s, quiet);
	/* Published to the stub by the release store of IN_CHILD. */
	s->mon = mon;
	__atomic_store_n(&s->page->monitor, mon, __ATOMIC_RELAXED);
	__atomic_store_n(&s->page->state, SW_STATE_IN_CHILD, __ATOMIC_RELEASE);
	syscall(SYS_futex, &s->page->state, FUTEX_WAKE, 1, NULL, NULL, 0);
	return 0;
}

SW_EXPORT int sw_stub_resume(struct sw_stub *s)
{
	return resume(s, false);
}

SW_EXPORT int sw_stub_continue(struct sw_stub *s)
{
	struct sw_loop *loop;
	int r = may_go(s, &loop);

	if (r < 0)
		return r;
	if (s->pending || s->wd.state == SW_WD_RUNNING)
		return -EBUSY;
	if (s->death_owed) {
		deliver_death(loop, s); /* the next wait returns the EXIT */
		return 0;
	}
	if (!s->answered)
		return -EINVAL;
	if (s->muted)
		unmute(loop, s);
	r = sw__stub_start(loop, s);
	if (r < 0 || s->wd.state != SW_WD_RUNNING)
		return r;
	s->quiet = false;
	s->poll_now = s->poll_measure = false;
	/* The page is the stub's: only say that the monitor may sleep, then
	 * look, as a wait does (a report made since the SW_EV_FD may have had
	 * its eventfd event taken while the stub was not in flight). */
	s->mon = SW_MON_SLEEPING;
	__atomic_store_n(&s->page->monitor, SW_MON_SLEEPING, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->page->state, __ATOMIC_SEQ_CST) !=
	    SW_STATE_IN_CHILD)
		sw__on_report(loop, s);
	return 0;
}

/*
 * Is fd an epoll set?  Then it is no fd a stub answers through, and in the
 * loop's set it would nest loops: a loop's own fd would make a later
 * sw_stub_attach() fail with epoll_ctl's EINVAL (the target loop) or ELOOP
 * (a cycle of loops).  Told by /proc; without /proc, epoll_ctl decides.
 */
static bool is_epoll_fd(int fd)
{
	static const char want[] = "anon_inode:[eventpoll]";
	char path[40], link[sizeof(want) + 1];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link));
	return n == (ssize_t)sizeof(want) - 1 && !memcmp(link, want, (size_t)n);
}

SW_EXPORT int sw_stub_add_fd(struct sw_stub *s, int fd, uint32_t events)
{
	struct sw_loop *loop;
	int r;

	if (!s || fd < 0 || !events ||
	    (events & ~(uint32_t)(EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP)))
		return -EINVAL;
	if (is_epoll_fd(fd))
		return -EINVAL;
	r = may_go(s, &loop);
	if (r < 0)
		return r;
	if (s->xfd >= 0)
		return -EEXIST;
	/* Our own duplicate: the registration lives and dies with it, however
	 * the caller's fd is closed or reused. */
	s->xfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (s->xfd < 0)
		/* EINVAL for a valid fd: RLIMIT_NOFILE is 3 or less */
		return errno == EINVAL ? -EMFILE : -errno;
	s->xevents = events;
	s->xfd_armed = false;
	if (!s->reaped) {
		r = xfd_arm(loop, s, EPOLL_CTL_ADD);
		if (r < 0) {
			close(s->xfd);
			s->xfd = -1;
			return r;
		}
	}
	return 0;
}

SW_EXPORT int sw_stub_remove_fd(struct sw_stub *s)
{
	struct sw_loop *loop;

	if (!s)
		return -EINVAL;
	if (s->xfd < 0)
		return -ENOENT;
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (loop && !s->reaped && !sw_loop_forked(loop))
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->xfd, NULL);
	close(s->xfd);
	s->xfd = -1;
	s->xfd_armed = false;
	return 0;
}

/*
 * A wait settled without epoll_wait reads no timer and sees no death, so
 * once per timer period the loop looks at its epoll set without blocking:
 * the other stubs' watchdogs and deaths, and the preemption tick, go on.
 * The clock is read through the vDSO, no system call.
 */
static int harvest(struct sw_loop *loop, bool *ticked, int *count)
{
	uint64_t now = sw__now_ns();
	int r;

	if (now < loop->harvest_ns)
		return 0;
	loop->harvest_ns = now + loop->period_ns;
	r = loop_poll(loop, 0, ticked);
	if (r < 0)
		return r;
	return run_callbacks(loop, count);
}

/* Tell every stub resumed quietly since the last call that the monitor may
 * sleep now, and take the reports already made (no eventfd was written for
 * them). */
static void announce_sleep(struct sw_loop *loop)
{
	struct sw_stub *s;

	while ((s = loop->quiet_head)) {
		loop->quiet_head = s->qt_next;
		s->qt_next = NULL;
		s->on_quiet = false;
		if (!s->quiet)
			continue; /* a wait looked already */
		s->quiet = false;
		if (s->pending || s->wd.state != SW_WD_RUNNING)
			continue;
		s->mon |= SW_MON_SLEEPING;
		__atomic_store_n(&s->page->monitor, s->mon, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->page->state, __ATOMIC_SEQ_CST) !=
		    SW_STATE_IN_CHILD) {
			sw__on_report(loop, s);
		} else {
			/* the next dispatch looks at it before it polls */
			ann_push(loop, s);
		}
	}
}

/* The host woke: most likely for a stub that sw_loop_prepare() told of the
 * sleep.  Serve those that reported from their state words, before the
 * epoll_wait that says which fd woke the host (whose event for them is then
 * stale).  The set is the last SW_ANN_MAX told and not yet reported, so the
 * look costs O(1) per dispatch; the epoll_wait finds the others. */
static void look_announced(struct sw_loop *loop)
{
	int i = 0;

	while (i < loop->n_ann) {
		struct sw_stub *s = loop->ann[i];

		if (s->pending || s->wd.state != SW_WD_RUNNING) {
			ann_drop(loop, i); /* served, or gone, meanwhile */
		} else if (__atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) !=
			   SW_STATE_IN_CHILD) {
			ann_drop(loop, i);
			sw__on_report(loop, s);
		} else {
			i++; /* still silent: looked at again next time */
		}
	}
}

#define PREPARE_ROUNDS 64

SW_EXPORT int sw_loop_prepare(struct sw_loop *loop)
{
	int count = 0, r, e, rounds;
	bool ticked = false;

	r = host_enter(loop);
	if (r < 0)
		return r;
	loop->host_prepares = true;
	loop->prepare_due = false;
	loop->host_callbacks = true;
	/* Callbacks resume stubs; those that report before we look again are
	 * served here, without the host's poll or ours.  Bounded, so that the
	 * host's other work is not starved. */
	for (rounds = 0; rounds < PREPARE_ROUNDS; rounds++) {
		announce_sleep(loop);
		e = harvest(loop, &ticked, &count);
		r = r ? r : e;
		e = run_callbacks(loop, &count);
		r = r ? r : e;
		if (ticked) {
			ticked = false;
			e = run_ticks(loop, &count);
			r = r ? r : e;
		}
		if (!loop->quiet_head)
			break;
	}
	loop->host_callbacks = false;
	announce_sleep(loop);
	if (loop->done_head)
		kick(loop); /* reports found last: the host must not sleep */
	loop_leave(loop);
	return r < 0 ? r : count;
}

/*
 * The first look of a wait after a quiet resume: spin if the poll budget
 * says so, then announce the sleep and look once more.  Returns true when
 * the stub's state word has left IN_CHILD, so there is no need to sleep.
 */
static bool look_before_sleep(struct sw_loop *loop, struct sw_stub *s,
			      uint64_t *t0, bool *hit)
{
	uint32_t *state = &s->page->state;

	s->quiet = false;
	if (s->poll_measure) {
		*t0 = sw__now_ns();
		*hit = s->poll_now && sw__poll_spin(s, *t0);
		if (*hit)
			return true;
	} else if (__atomic_load_n(state, __ATOMIC_ACQUIRE) !=
		   SW_STATE_IN_CHILD) {
		return true;
	}
	s->mon |= SW_MON_SLEEPING;
	__atomic_store_n(&s->page->monitor, s->mon, __ATOMIC_SEQ_CST);
	return __atomic_load_n(state, __ATOMIC_SEQ_CST) != SW_STATE_IN_CHILD;
}

SW_EXPORT int sw_stub_wait(struct sw_stub *s, struct sw_event *ret_ev)
{
	struct sw_loop *loop;
	int r, count = 0;
	uint64_t t0 = 0;
	bool hit = false, ticked = false;

	if (!s || !ret_ev)
		return -EINVAL;
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (!loop)
		return -ENOLINK;
	if (sw_loop_forked(loop))
		return -ECHILD;
	if (s->delivered_end)
		return -ESRCH;
	r = loop_enter(loop);
	if (r < 0)
		return r;
	if (!s->pending && s->death_owed)
		deliver_death(loop, s);
	if (!s->pending && s->wd.state != SW_WD_RUNNING &&
	    s->wd.state != SW_WD_KILLING) {
		loop_leave(loop);
		return -EALREADY;
	}
	s->waited = true;
	done_remove(loop, s);
	if (s->quiet && !s->pending && s->wd.state == SW_WD_RUNNING &&
	    look_before_sleep(loop, s, &t0, &hit)) {
		sw__on_report(loop, s);
		r = harvest(loop, &ticked, &count);
		if (r < 0) {
			/* Another stub's callback failed: say so now; this
			 * stub's report stays pending for the next wait. */
			s->waited = false;
			loop_leave(loop);
			return r;
		}
	}
	if (loop->tick_owed && s->wd.state == SW_WD_RUNNING && !s->pending) {
		/* A timer read that an earlier wait could not return, because
		 * its report won: the stub's quantum is over already.  (After
		 * the look above, so the stub knows the monitor may sleep.) */
		loop->tick_owed = false;
		s->waited = false;
		s->poll_measure = false;
		memset(ret_ev, 0, sizeof(*ret_ev));
		ret_ev->type = SW_EV_TICK;
		loop_leave(loop);
		return SW_EV_TICK;
	}
	r = 0;
	while (!s->pending) {
		ticked = false;
		/* Stubs that a host's callbacks resumed quietly must know the
		 * monitor is about to sleep. */
		announce_sleep(loop);
		/* (a report it found is another stub's callback to run:
		 * then only look) */
		r = loop_poll(loop, loop->done_head ? 0 : -1, &ticked);
		if (r < 0)
			break;
		r = run_callbacks(loop, &count);
		if (r < 0)
			break;
		if (ticked && (loop->flags & SW_LOOP_TICK_EVENTS) &&
		    !s->pending && s->wd.state == SW_WD_RUNNING) {
			r = SW_EV_TICK;
			memset(ret_ev, 0, sizeof(*ret_ev));
			ret_ev->type = SW_EV_TICK;
			break;
		}
	}
	if (s->poll_measure && s->pending && s->ev.type == SW_EV_REPORT)
		sw__poll_adapt(loop, s, hit, t0);
	s->poll_measure = false;
	if (s->pending) {
		r = take_event(s, ret_ev);
		if (ticked && (loop->flags & SW_LOOP_TICK_EVENTS) &&
		    (s->ev.type == SW_EV_REPORT || s->ev.type == SW_EV_FD))
			loop->tick_owed = true;
	}
	s->waited = false;
	loop->pending_ticks = 0;
	loop_leave(loop);
	return r;
}

SW_EXPORT int sw_stub_run(struct sw_stub *s, struct sw_event *ret_ev)
{
	int r;

	struct sw_loop *loop;

	if (!s || !ret_ev)
		return -EINVAL;
	/* Refuse what the wait would refuse before resuming: a quiet resume
	 * that no wait follows would leave the stub without a wake-up. */
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (loop && !sw_loop_forked(loop) &&
	    (loop->in_callback || __atomic_load_n(&loop->busy, __ATOMIC_ACQUIRE)))
		return -EBUSY;
	r = resume(s, true);
	if (r < 0)
		return r;
	return sw_stub_wait(s, ret_ev);
}

SW_EXPORT int sw_stub_kill(struct sw_stub *s, enum sw_kill_reason reason)
{
	struct sw_loop *loop;
	enum sw_wd_event ev;

	if (!s || (reason != SW_KILL_USER && reason != SW_KILL_PROTOCOL))
		return -EINVAL;
	loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
	if (!loop)
		return -ENOLINK;
	if (sw_loop_forked(loop))
		return -ECHILD;
	if (s->wd.state == SW_WD_KILLING || s->wd.state == SW_WD_DEAD)
		return -ESRCH;
	/* Dead already, its death not yet seen: collect it (a zombie takes a
	 * signal without complaint, so pidfd_send_signal cannot tell). */
	if (on_death(loop, s)) {
		if (s->death_owed && !s->pending)
			deliver_death(loop, s);
		return -ESRCH;
	}
	ev = reason == SW_KILL_USER ? SW_WD_EV_KILL : SW_WD_EV_BAD;
	/* A pending report is superseded by the kill. */
	if (s->pending) {
		s->pending = false;
		done_remove(loop, s);
	}
	act(loop, s, sw_wd_step(&loop->wd, &s->wd, ev),
	    __atomic_load_n(&s->page->state, __ATOMIC_RELAXED));
	return 0;
}

/* ---- stubs joining and leaving the loop ---------------------------------- */

int sw__loop_add_stub(struct sw_loop *loop, struct sw_stub *s)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLET,
				 .data.u64 = (uintptr_t)s | SW_TAG_REPORT };

	if (!s->reaped) {
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, s->report_fd, &e) < 0)
			return -errno;
		e.events = EPOLLIN;
		e.data.u64 = (uintptr_t)s | SW_TAG_PIDFD;
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, s->pidfd, &e) < 0) {
			int r = -errno;

			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->report_fd, NULL);
			return r;
		}
		if (s->xfd >= 0) {
			int r = xfd_arm(loop, s, EPOLL_CTL_ADD);

			if (r < 0) {
				epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->report_fd,
					  NULL);
				epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
				return r;
			}
		}
	}
	s->l_prev = NULL;
	s->l_next = loop->stubs;
	if (loop->stubs)
		loop->stubs->l_prev = s;
	loop->stubs = s;
	loop->nstubs++;
	__atomic_store_n(&s->loop, loop, __ATOMIC_RELEASE);
	return 0;
}

void sw__loop_remove_stub(struct sw_loop *loop, struct sw_stub *s)
{
	queue_remove(loop, s);
	mute_remove(loop, s);
	done_remove(loop, s);
	quiet_remove(loop, s);
	ann_remove(loop, s);
	dying_remove(loop, s);
	if (loop->cb_stub == s)
		loop->cb_stub = NULL;
	if (!s->reaped && !sw_loop_forked(loop)) {
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->report_fd, NULL);
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
		if (s->xfd >= 0)
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s->xfd, NULL);
	}
	if (s->l_prev)
		s->l_prev->l_next = s->l_next;
	else
		loop->stubs = s->l_next;
	if (s->l_next)
		s->l_next->l_prev = s->l_prev;
	s->l_prev = s->l_next = NULL;
	loop->nstubs--;
	__atomic_store_n(&s->loop, NULL, __ATOMIC_RELEASE);
}
