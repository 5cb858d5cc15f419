/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The watchdog on time when the monitor is not: a stalled stub is killed
 * within [N*T, (N+1)*T] of its resume plus exactly what the loop reports
 * with the kill (its own lateness, monitor_late_ns, and the stub's
 * starvation credit, starved_ns: t_assert_kill_window()), and the loop
 * owns up to its lateness.
 *
 *   busy_blocking: 1,000 stubs in one loop, each resumed from its report
 *     callback and answering after its own short random sleep, keep the
 *     monitor busy; the test blocks in sw_stub_wait() on one more, which
 *     stalls.  Only that one is killed, and every other goes on after it.
 *   slow_callback: the host is slow in its callbacks: each report of a busy
 *     stub costs 20 ms of CPU in its callback, during which the loop reads
 *     no timer, while another stub stalls.  The kill's monitor_late_ns
 *     shows those 20 ms.
 *   starved: the stub is runnable, its answer ready, but gets no CPU: it
 *     is pinned to one CPU beside a SCHED_FIFO hog pinned there too (the
 *     monitor on another CPU).  While the hog runs 1.6*N*T and stops, the
 *     stub is not killed: the loop credits it with its run-queue wait and
 *     takes its report.  While the hog never stops, it is killed after N*T
 *     plus its credit (at most N*T more), so by (2N+1)*T plus the
 *     monitor's lateness, with starved_ns > 0.  (A SCHED_IDLE stub beside
 *     a nice -20 hog is not starved reliably where other users load the
 *     CPUs: their autogroups get the CPU in turn, and the idle stub then
 *     runs now and then, or starves behind their tasks even without the
 *     hog.  An RT hog starves it whatever the rest of the host does.)
 *   blocked: the stub waits in the kernel, in state D (it vforks a child
 *     that sleeps): credited as a starved one is, not killed while that
 *     lasts 1.6*N*T; killed with starved_ns > 0 when it lasts for ever.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t_util.h"

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void note_stats(const char *what, struct sw_loop *loop)
{
	struct sw_loop_stats st = { .size = sizeof(st) };

	t_assert_rc(sw_loop_get_stats(loop, &st, 0), 0);
	t_note("%s: %" PRIu64 " timer reads, %" PRIu64 " periods counted; the "
	       "monitor's reads late by %.2f ms at worst, %.2f ms at most "
	       "between two", what, st.timer_reads, st.timer_periods,
	       ms(st.max_late_ns), ms(st.max_gap_ns));
}

static void dispatch_once(struct sw_loop *loop)
{
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };

	if (poll(&pfd, 1, -1) == 1)
		t_assert(sw_loop_dispatch(loop) >= 0);
}

static void assert_stall_kill(const struct sw_event *ev, pid_t pid)
{
	t_assert_eq(ev->type, SW_EV_KILL);
	t_assert_eq(ev->kill.reason, SW_KILL_STALL);
	t_assert_eq(ev->kill.pid, pid);
	t_assert(WIFSIGNALED(ev->status) && WTERMSIG(ev->status) == SIGKILL);
}

/* ---- 1,000 busy stubs ---------------------------------------------------- */

enum { NBUSY = 1000, NEED_AFTER = 3 };
#define B_TICK_NS (50 * T_MS) /* T and N of the busy loops */
#define B_STALL   4u

struct fleet;

struct busy {
	struct fleet *f;
	struct sw_stub *stub;
	uint64_t req;
	unsigned reports, after_kill;
};

struct fleet {
	struct busy *b;
	unsigned going;     /* busy stubs that answered twice at least    */
	unsigned continued; /* ... that answered NEED_AFTER times after the
			       kill                                         */
	unsigned kills;     /* of busy stubs: none                          */
	bool killed, stopping;
	uint64_t reports;
};

/* Check the answer, then resume with a sleep of 5 to 50 ms before the next
 * one. */
static int on_busy(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct busy *b = ud;
	struct fleet *f = b->f;
	struct t_payload *p = t_pl(stub);

	if (ev->type != SW_EV_REPORT) {
		t_note_event(ev->type, ev);
		f->kills++;
		/* Credited all it may be (N*T of waits for a CPU or in D)
		 * and still silent: the host starved it past the rule's cap,
		 * which the suite's own heaviest cases running beside this
		 * one can do.  Not a fault, and nothing to judge by. */
		if (ev->type == SW_EV_KILL &&
		    ev->kill.reason == SW_KILL_STALL &&
		    ev->kill.starved_ns >= B_STALL * B_TICK_NS)
			t_skip("inconclusive: busy stub %u starved past its "
			       "credit (%.0f ms)", (unsigned)(b - f->b),
			       ms(ev->kill.starved_ns));
		t_fail(__FILE__, __LINE__, "busy stub %u: %s", (unsigned)(b - f->b),
		       t_ev_name(ev->type));
	}
	t_assert_eq(p->ack, b->req + 1);
	f->reports++;
	if (++b->reports == 2)
		f->going++;
	if (f->killed && ++b->after_kill == NEED_AFTER)
		f->continued++;
	if (f->stopping)
		return 0;
	p->delay_ns = (5 + t_rng() % 46) * T_MS;
	p->req = ++b->req;
	t_assert_rc(sw_stub_resume(stub), 0);
	return 0;
}

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;

	t_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		t_skip("RLIMIT_NOFILE's hard limit %llu is under %llu",
		       (unsigned long long)rl.rlim_max,
		       (unsigned long long)want);
	rl.rlim_cur = want;
	t_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0);
}

/* The plain blocking driver: the test waits in sw_stub_wait() on the stub
 * that stalls, and the 1,000 others' callbacks run inside that wait. */
static void case_busy_blocking(intptr_t mode)
{
	struct fleet f = { 0 };
	struct sw_loop *loop;
	struct sw_stub *stalled;
	struct sw_event ev;
	uint64_t t0, t1;
	unsigned i;
	pid_t pid;

	raise_nofile(4 * NBUSY + 64);
	/* T = 50 ms, N = 4: 1,000 stubs answering every 5 to 50 ms keep the
	 * monitor busy, and on 2 loaded CPUs late */
	loop = t_loop_opts(B_TICK_NS, B_STALL, 0, 0);
	f.b = calloc(NBUSY, sizeof(*f.b));
	t_assert(f.b);
	t0 = t_now_ns();
	for (i = 0; i < NBUSY; i++) {
		f.b[i].f = &f;
		f.b[i].stub = t_spawn(loop, mode, "echo", 0);
		t_assert_rc(sw_stub_set_callback(f.b[i].stub, on_busy, &f.b[i]),
			    0);
	}
	stalled = t_spawn(loop, mode, "echo", 0);
	pid = sw_stub_pid(stalled);
	t_note("%u stubs spawned in %.0f ms", NBUSY + 1, ms(t_now_ns() - t0));
	t_expect(stalled, SW_EV_REPORT, NULL);
	/* every busy stub going, before the stall */
	while (f.going < NBUSY)
		t_echo(stalled, 1);
	t_assert_eq(f.kills, 0);

	t_pl(stalled)->arg = T_STALL_BLOCKED_FUTEX;
	t_pl(stalled)->req = T_REQ_STALL;
	t_assert_rc(sw_loop_get_stats(loop, &(struct sw_loop_stats){
					      .size = sizeof(struct sw_loop_stats) },
				      1), 0);
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stalled), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stalled, &ev), SW_EV_KILL);
	f.killed = true;
	assert_stall_kill(&ev, pid);
	t_assert_eq(ev.kill.sigalrm_blocked, 1);
	note_stats("during the stall", loop);
	t_assert_kill_window("the stalled stub among 1,000 busy ones", loop, t0,
			     t1, &ev.kill);
	t_assert(sw_stub_free(stalled) == NULL);

	/* the others go on: driven now by the embedding way (poll + dispatch)
	 * until each has answered NEED_AFTER more times */
	while (f.continued < NBUSY)
		dispatch_once(loop);
	t_assert_eq(f.kills, 0);
	t_note("%" PRIu64 " reports in all", f.reports);
	f.stopping = true;
	t_assert(sw_loop_free(loop) == NULL); /* kills those in flight */
	free(f.b);
}

/* ---- a host slow in its callbacks ---------------------------------------- */

#define BURN_NS (20 * T_MS)

struct slow {
	struct sw_stub *busy, *stalled;
	unsigned reports, burns;
	uint64_t t0, t1; /* around the stalled stub's resume */
	bool done;
	struct sw_event kill;
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void burn_cpu(uint64_t ns)
{
	uint64_t end = thread_cpu_ns() + ns;

	while (thread_cpu_ns() < end)
		;
}

/* Each report of the busy stub: 20 ms of CPU, then resume it.  At its
 * third, the other stub is resumed first, to stall. */
static int on_slow(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct slow *s = ud;
	struct t_payload *p = t_pl(stub);

	t_assert_msg(ev->type == SW_EV_REPORT, "the busy stub ended: %s",
		     t_ev_name(ev->type));
	t_assert_eq(p->ack, p->req + 1);
	if (++s->reports == 3) {
		t_pl(s->stalled)->arg = T_STALL_FUTEX;
		t_pl(s->stalled)->req = T_REQ_STALL;
		s->t0 = t_now_ns();
		t_assert_rc(sw_stub_resume(s->stalled), 0);
		s->t1 = t_now_ns();
	}
	burn_cpu(BURN_NS);
	s->burns++;
	if (s->done)
		return 0;
	p->req++;
	t_assert_rc(sw_stub_resume(stub), 0);
	return 0;
}

static int on_stalled(struct sw_stub *stub, const struct sw_event *ev,
		      void *ud)
{
	struct slow *s = ud;

	s->kill = *ev;
	s->done = true;
	return 0;
}

static void case_slow_callback(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed();
	struct sw_loop_opts o = { .size = sizeof(o) };
	struct slow s = { 0 };
	const struct sw_kill_info *k = &s.kill.kill;
	uint64_t period;
	pid_t pid;

	t_assert_rc(sw_loop_get_opts(loop, &o), 0);
	period = o.tick_ns / o.timer_div;
	s.stalled = t_spawn_echo(loop, mode);
	pid = sw_stub_pid(s.stalled);
	t_assert_rc(sw_stub_set_callback(s.stalled, on_stalled, &s), 0);
	s.busy = t_spawn(loop, mode, "echo", 0);
	t_assert_rc(sw_stub_set_callback(s.busy, on_slow, &s), 0);
	while (!s.done)
		dispatch_once(loop);
	assert_stall_kill(&s.kill, pid);
	note_stats("with 20 ms callbacks", loop);
	t_note("%u callbacks of 20 ms of CPU", s.burns);
	t_assert_kill_window("beside a 20 ms callback", loop, s.t0, s.t1, k);
	/* The stub was resumed inside a callback that then burned 20 ms with
	 * no timer read: the first read after the resume came 20 ms after
	 * the resume at least, and the oldest expiration it took at most a
	 * period after the read before the resume.  That first read's
	 * lateness is part of monitor_late_ns. */
	t_assert_msg(k->monitor_late_ns + period >= BURN_NS,
		     "the monitor says it was late by %.3f ms, after a 20 ms "
		     "callback", ms(k->monitor_late_ns));
	t_assert(sw_stub_free(s.stalled) == NULL);
	t_assert(sw_stub_free(s.busy) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

/* ---- a starved stub ------------------------------------------------------ */

/* T = 50 ms, N = 3: N*T = 150 ms; the hog runs 240 ms, or until the stub
 * is being killed (by (2N+1)*T = 350 ms and the monitor's lateness), at
 * most HOG_MAX_NS: RT throttling (95 % of each second by default) lets the
 * stub run once the hog has had 950 ms. */
#define S_TICK_NS  (50 * T_MS)
#define S_STALL    3u
#define S_NT       ((uint64_t)S_STALL * S_TICK_NS)
#define HOG_MAX_NS (3000 * T_MS)

/* Shared with the hog (MAP_SHARED). */
struct hogctl {
	int cpu;
	pid_t stub;
	uint64_t run_ns;   /* 0: until the stub has a SIGKILL pending   */
	int state;         /* 0 starting, 1 spinning, or -errno         */
	uint64_t go_ns;    /* the clock it runs from; 0: not yet          */
	uint64_t done_ns;  /* when it stopped                             */
};

static int pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(pid, sizeof(set), &set) < 0 ? -errno : 0;
}

/* SIGKILL pending for the process (or the process gone). */
static bool sigkill_pending(pid_t pid)
{
	char path[64], line[128];
	unsigned long long mask;
	bool pending = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		if ((sscanf(line, "ShdPnd: %llx", &mask) == 1 ||
		     sscanf(line, "SigPnd: %llx", &mask) == 1) &&
		    (mask & (1ull << (SIGKILL - 1))))
			pending = true;
	fclose(f);
	return pending;
}

/* The hog: SCHED_FIFO on the stub's CPU, spinning from go_ns for run_ns
 * (or until the stub is being killed), then it exits and the stub may run
 * (answer, or die).  Timed by itself, on that CPU, so that the monitor's
 * lateness does not lengthen it. */
static __attribute__((noreturn)) void hog_main(struct hogctl *h, pid_t parent)
{
	struct sched_param fifo = { .sched_priority = 1 };
	uint64_t now, next_look = 0;
	int r;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	r = pin(0, h->cpu);
	if (r == 0 && sched_setscheduler(0, SCHED_FIFO, &fifo) < 0)
		r = -errno;
	__atomic_store_n(&h->state, r < 0 ? r : 1, __ATOMIC_RELEASE);
	if (r < 0)
		_exit(0);
	while (!__atomic_load_n(&h->go_ns, __ATOMIC_ACQUIRE))
		;
	for (;;) {
		now = t_now_ns();
		if (now >= h->go_ns + (h->run_ns ? h->run_ns : HOG_MAX_NS))
			break;
		if (!h->run_ns && now >= next_look) {
			if (sigkill_pending(h->stub))
				break;
			next_look = now + T_MS;
		}
	}
	__atomic_store_n(&h->done_ns, t_now_ns(), __ATOMIC_RELEASE);
	_exit(0);
}

static void starved(bool hog_stops)
{
	struct sw_loop *loop;
	struct sw_stub *stub;
	struct hogctl *h;
	struct sw_event ev;
	cpu_set_t set;
	int cpus[2], n = 0, status, r;
	uint64_t t0, t1, t2, rd0, waited;
	pid_t pid, hog, parent;

	t_assert(sched_getaffinity(0, sizeof(set), &set) == 0);
	for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	if (n < 2)
		t_skip("fewer than 2 CPUs here");
	/* the monitor on one CPU, the stub and the hog on the other */
	r = pin(0, cpus[0]);
	if (r < 0)
		t_skip("sched_setaffinity: %s", strerror(-r));
	loop = t_loop_opts(S_TICK_NS, S_STALL, 0, 0);
	stub = t_spawn_echo(loop, T_FN);
	pid = sw_stub_pid(stub);
	r = pin(pid, cpus[1]);
	if (r < 0)
		t_skip("sched_setaffinity: %s", strerror(-r));
	t_echo(stub, 3); /* on its CPU now */

	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	t_assert(h != MAP_FAILED);
	memset(h, 0, sizeof(*h));
	h->cpu = cpus[1];
	h->stub = pid;
	h->run_ns = hog_stops ? S_NT * 16 / 10 : 0;
	parent = getpid();
	hog = fork();
	t_assert(hog >= 0);
	if (hog == 0)
		hog_main(h, parent);
	while (!(r = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE)))
		t_sleep_ns(T_MS);
	if (r < 0) {
		t_assert(waitpid(hog, &status, 0) == hog);
		t_skip("a SCHED_FIFO hog on CPU %d: %s", cpus[1], strerror(-r));
	}
	t_sleep_ns(10 * T_MS); /* the hog has the CPU */

	rd0 = t_run_delay_of(pid);
	t_pl(stub)->req = 41;
	t_pl(stub)->delay_ns = 0;
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	__atomic_store_n(&h->go_ns, t1, __ATOMIC_RELEASE);
	r = sw_stub_wait(stub, &ev);
	t2 = t_now_ns();
	/* (the kernel adds a wait to run_delay when the task gets a CPU) */
	waited = r == SW_EV_REPORT ? t_run_delay_of(pid) - rd0 : 0;
	t_assert(waitpid(hog, &status, 0) == hog);
	note_stats("beside the hog", loop);
	t_note("the hog ran %.1f ms from the resume; the wait ended %.1f ms "
	       "after the resume with %s", ms(h->done_ns - t1), ms(t2 - t1),
	       t_ev_name(r));
	if (r == SW_EV_KILL)
		t_note("killed %.1f ms after the resume: credited %.1f ms, "
		       "stall_wait_ns %.1f ms, stall_run_ns %.1f ms of a %.1f "
		       "ms window, state %c", ms(ev.kill.killed_at_ns - t1),
		       ms(ev.kill.starved_ns), ms(ev.kill.stall_wait_ns),
		       ms(ev.kill.stall_run_ns), ms(ev.kill.stall_window_ns),
		       ev.kill.state);

	if (hog_stops) {
		/* the premise: runnable, its answer ready, no CPU for longer
		 * than the stall limit (so it is, if it was killed while the
		 * hog ran: nothing else runs on its CPU then) */
		if (r == SW_EV_REPORT && waited <= S_NT)
			t_skip("the stub was given a CPU after %.1f ms beside "
			       "the hog, under N*T", ms(waited));
		t_assert_msg(r == SW_EV_REPORT, "a stub kept off its CPU by "
			     "the hog for %.1f ms ended in %s",
			     ms(h->done_ns - t1), t_ev_name(r));
		t_note("the stub waited %.1f ms for its CPU", ms(waited));
		t_assert_eq(t_pl(stub)->ack, 42);
		t_echo(stub, 10);
		t_stop(stub);
	} else {
		const struct sw_kill_info *k = &ev.kill;

		t_assert_rc(r, SW_EV_KILL);
		assert_stall_kill(&ev, pid);
		t_assert_kill_window("starved for ever", loop, t0, t1, k);
		t_note("starved_ns %.1f ms, stall_wait_ns %.1f ms of a %.1f ms "
		       "window", ms(k->starved_ns), ms(k->stall_wait_ns),
		       ms(k->stall_window_ns));
		/* it waited for a CPU, and was credited for it: up to N*T
		 * more, so dead by (2N+1)*T and the monitor's lateness */
		t_assert(k->stall_wait_ns > 0);
		t_assert(k->starved_ns > 0 && k->starved_ns <= S_NT);
		t_assert_msg(k->killed_at_ns <= t1 + (2 * S_STALL + 1) *
							  S_TICK_NS +
						     k->monitor_late_ns,
			     "killed %.3f ms after the resume",
			     ms(k->killed_at_ns - t1));
		t_assert(sw_stub_free(stub) == NULL);
	}
	munmap(h, sizeof(*h));
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_starved_reports(intptr_t unused)
{
	starved(true);
}

static void case_starved_killed(intptr_t unused)
{
	starved(false);
}

/*
 * blocked: the stub waits in the kernel, in state D, not by its own sleep:
 * it vforks a child that sleeps, and a vfork's parent waits for the child
 * uninterruptibly.  For 1.6*N*T it is credited and not killed; for ever, it
 * is killed after N*T plus its credit, at most N*T more.
 */
static void blocked(intptr_t param, bool ends)
{
	struct sw_loop *loop = t_loop_opts(S_TICK_NS, S_STALL, 0, 0);
	struct sw_stub *stub = t_spawn_echo(loop, T_PMODE(param));
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;
	uint64_t t0, t1;
	int r;

	/* the vfork child of a killed stub dies with it (PDEATHSIG) and
	 * comes to us, to be reaped */
	t_assert(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	t_echo(stub, 3);
	t_pl(stub)->delay_ns = 0;
	t_pl(stub)->arg = ends ? S_NT * 16 / 10 : 3600 * 1000 * T_MS;
	t_pl(stub)->req = T_REQ_VFORK;
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	r = sw_stub_wait(stub, &ev);
	t_note("the wait ended %.1f ms after the resume with %s",
	       ms(t_now_ns() - t1), t_ev_name(r));
	if (r == SW_EV_KILL)
		t_note("credited %.1f ms, state %c, stall_run_ns %.1f ms, "
		       "stall_wait_ns %.1f ms of a %.1f ms window",
		       ms(ev.kill.starved_ns), ev.kill.state,
		       ms(ev.kill.stall_run_ns), ms(ev.kill.stall_wait_ns),
		       ms(ev.kill.stall_window_ns));
	if (ends) {
		t_assert_msg(r == SW_EV_REPORT, "a stub blocked in the kernel "
			     "for 1.6*N*T ended in %s", t_ev_name(r));
		t_assert_eq(t_pl(stub)->ack, T_REQ_VFORK + 1);
		t_echo(stub, 3);
		t_stop(stub);
	} else {
		const struct sw_kill_info *k = &ev.kill;

		t_assert_rc(r, SW_EV_KILL);
		assert_stall_kill(&ev, pid);
		t_assert_eq(k->state, 'D');
		t_assert_kill_window("blocked for ever", loop, t0, t1, k);
		t_assert(k->starved_ns > 0 && k->starved_ns <= S_NT);
		t_assert(sw_stub_free(stub) == NULL);
		while (waitpid(-1, NULL, __WALL) > 0)
			;
	}
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_blocked_reports(intptr_t param)
{
	blocked(param, true);
}

static void case_blocked_killed(intptr_t param)
{
	blocked(param, false);
}

static const struct t_case cases[] = {
	{ "busy_blocking/fn", case_busy_blocking, T_FN, 180 },
	{ "slow_callback/fn", case_slow_callback, T_FN, 0 },
	{ "slow_callback/exec", case_slow_callback, T_EXEC, 0 },
	{ "starved_reports/fn", case_starved_reports, T_FN, 0 },
	{ "starved_killed/fn", case_starved_killed, T_FN, 0 },
	{ "blocked_reports/fn", case_blocked_reports, T_FN, 0 },
	{ "blocked_reports/exec", case_blocked_reports, T_EXEC, 0 },
	{ "blocked_killed/fn", case_blocked_killed, T_FN, 0 },
	{ "blocked_killed/exec", case_blocked_killed, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	t_cpu_alone = "starved_"; /* the SCHED_FIFO hog's cases */
	return t_main(argc, argv, cases, T_NCASES(cases));
}
