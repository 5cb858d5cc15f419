// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Many stubs in one loop, driven by callbacks under libev.
 *
 * in flight: 1,000 stubs, each resumed from its report callback and
 *   answering after its own short random delay; one of them stalls.  Only
 *   that one is killed, within [N*T, (N+1)*T] of its resume (T = 50 ms,
 *   N = 4), late by no more than the loop's own lateness and the stub's
 *   starvation credit, both reported with the kill (t_check_kill()): the
 *   monitor, kept busy by the others, says how late it was.  Every other
 *   stub's handshakes go on after the kill.  The case loads both CPUs, so
 *   no other case of the suite runs beside it: one that did could keep a
 *   busy stub off the CPU for longer than its starvation credit may cover
 *   (N ticks per resume, watchdog.h), and the watchdog would rightly kill
 *   it.
 *
 * idle: 1,000 stubs registered, three in flight (two busy, one stalled):
 *   the watchdog still kills the stalled one on time, and the 997 idle ones,
 *   silent for far longer than the stall limit, are never touched: a tick
 *   looks only at the in-flight queue (loop.c, on_timer(): the unstamped
 *   tail of the queue, its expired head, and muted stubs; never the list of
 *   all stubs).  Then the cost of a timer read is measured with 1 and with
 *   1,000 stubs attached (the idle ones moved over with sw_stub_detach() and
 *   sw_stub_attach()), one in flight: it must not grow with the stubs.
 */
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "t_ev.h"

#define NSTUBS 1000

struct many;

struct slot {
	struct many *m;
	struct sw_stub *s;
	unsigned idx;
	unsigned reports;
	unsigned after_kill;
	bool busy;         /* resumed again after each report */
};

struct many {
	struct slot *slots;
	unsigned nstubs;
	unsigned stalled;       /* its index */
	unsigned stall_at;      /* its report that is answered with STALL */
	uint32_t delay_min_us, delay_span_us;
	unsigned need_after;    /* reports after the kill, per busy stub */
	unsigned continued;     /* busy stubs that made them */
	unsigned nbusy;
	bool stopping;
	uint64_t t_stall;       /* its last resume (the STALL command), */
	uint64_t t_stall_after; /* ...and just after it */
	uint64_t t_kill;
	struct sw_event kill_ev;
	unsigned kills, exits;
	bool killed;
	uint64_t total;
	bool done;
};

static int on_event(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct slot *sl = ud;
	struct many *m = sl->m;

	switch (ev->type) {
	case SW_EV_REPORT:
		sl->reports++;
		m->total++;
		if (m->t_kill && sl->busy && ++sl->after_kill == m->need_after &&
		    ++m->continued == m->nbusy - 1)
			m->done = true;
		if (m->stopping || !sl->busy)
			return 0;
		if (sl->idx == m->stalled && sl->reports == m->stall_at) {
			t_cmd(s, T_CMD_STALL, 0);
			m->t_stall = t_now_ns();
		} else {
			t_cmd(s, T_CMD_SLEEP,
			      m->delay_min_us + t_rng() % m->delay_span_us);
		}
		T_EQ(sw_stub_resume(s), 0);
		if (sl->idx == m->stalled && sl->reports == m->stall_at)
			m->t_stall_after = t_now_ns();
		return 0;
	case SW_EV_KILL:
		m->t_kill = t_now_ns();
		m->kill_ev = *ev;
		m->kills++;
		m->killed = true;
		if (sl->idx != m->stalled)
			t_note("stub %u killed: reason %d, silent %.3f ms, "
			       "state %c, the monitor late %.3f ms, starved "
			       "%.3f ms, waited %.3f ms for a CPU", sl->idx,
			       ev->kill.reason, ev->kill.silent_ns / 1e6,
			       ev->kill.state, ev->kill.monitor_late_ns / 1e6,
			       ev->kill.starved_ns / 1e6,
			       ev->kill.stall_wait_ns / 1e6);
		/* Credited all it may be (N*T of waits for a CPU) and still
		 * silent: the host starved it past the rule's cap
		 * (watchdog.h), as two CPU hogs beside 1,000 busy stubs can.
		 * Not a fault, and nothing to judge by. */
		if (sl->idx != m->stalled &&
		    ev->kill.reason == SW_KILL_STALL &&
		    ev->kill.starved_ns >= (uint64_t)T_STALL * T_TICK_NS) {
			t_skip("inconclusive: busy stub %u starved past its "
			       "credit (%.0f ms)", sl->idx,
			       ev->kill.starved_ns / 1e6);
			_exit(T_SKIP); /* the loop left behind, as a failure */
		}
		T_EQ(sl->idx, m->stalled);
		return 0;
	default:
		m->exits++;
		T_ASSERT(0, "stub %u: unexpected event %d", sl->idx, ev->type);
	}
	return -EINVAL;
}

static void spawn_all(struct many *m, struct sw_loop *loop)
{
	uint64_t t0 = t_now_ns();
	unsigned i;

	m->slots = calloc(m->nstubs, sizeof(*m->slots));
	T_ASSERT(m->slots, "calloc");
	for (i = 0; i < m->nstubs; i++) {
		struct slot *sl = &m->slots[i];

		sl->m = m;
		sl->idx = i;
		sl->s = t_spawn_ok(loop);
		T_EQ(sw_stub_set_callback(sl->s, on_event, sl), 0);
	}
	T_EQ(sw_loop_count_stubs(loop), (int)m->nstubs);
	t_note("%u stubs spawned in %.0f ms", m->nstubs,
	       (t_now_ns() - t0) / 1e6);
	/* the loop's timeliness from here on, not the spawning's */
	T_EQ(sw_loop_get_stats(loop, &(struct sw_loop_stats){
				       .size = sizeof(struct sw_loop_stats) },
			       1), 0);
}

static void check_kill(struct many *m, struct sw_loop *loop)
{
	const struct sw_kill_info *k = &m->kill_ev.kill;
	struct sw_loop_stats st = { .size = sizeof(st) };

	T_EQ(sw_loop_get_stats(loop, &st, 0), 0);
	t_note("stalled stub %u: its KILL delivered %.1f ms after its resume; %llu "
	       "reports in all; the loop's timer reads late by %.2f ms at "
	       "worst, %.2f ms at most between two", m->stalled,
	       (m->t_kill - m->t_stall) / 1e6, (unsigned long long)m->total,
	       st.max_late_ns / 1e6, st.max_gap_ns / 1e6);
	T_EQ(m->kills, 1);
	T_EQ(m->exits, 0);
	T_EQ(m->kill_ev.type, SW_EV_KILL);
	t_check_kill("the stalled stub among the busy ones", m->t_stall,
		     m->t_stall_after, k);
	T_EQ(k->sigalrm_blocked, 1);
	T_ASSERT(WIFSIGNALED(m->kill_ev.status) &&
			 WTERMSIG(m->kill_ev.status) == SIGKILL,
		 "status %#x", m->kill_ev.status);
}

/* The state letter and wait channel of a process, for a failure message:
 * "R", "D (do_exit)", "gone". */
static const char *proc_state(pid_t pid, char *buf, size_t len)
{
	char path[64], st[512], wchan[64] = "";
	const char *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f || !fgets(st, sizeof(st), f) || !(p = strrchr(st, ')'))) {
		if (f)
			fclose(f);
		return "gone";
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	f = fopen(path, "r");
	if (f) {
		if (!fgets(wchan, sizeof(wchan), f))
			wchan[0] = 0;
		fclose(f);
	}
	snprintf(buf, len, "%c (%s)", p[2], wchan[0] ? wchan : "-");
	return buf;
}

static int case_in_flight(void *arg)
{
	struct ev_loop *evl = t_evloop((enum t_evkind)(intptr_t)arg);
	struct many m = {
		.nstubs = NSTUBS,
		.stall_at = 3,
		.delay_min_us = 5000,
		.delay_span_us = 45000, /* 5 to 50 ms */
		.need_after = 3,
		.nbusy = NSTUBS,
	};
	struct sw_loop *loop;
	struct sw_ev *g;
	unsigned i, fewest = ~0u;

	T_EQ(t_raise_nofile(2 * NSTUBS + 64), 0);
	loop = t_loop(T_TICK_NS, T_STALL, 0);
	m.stalled = 617;
	spawn_all(&m, loop);
	for (i = 0; i < NSTUBS; i++)
		m.slots[i].busy = true;
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	if (!t_ev_run_until(evl, &m.done, 10000)) {
		struct sw_loop_stats st = { .size = sizeof(st) };
		char buf[96];

		T_EQ(sw_loop_get_stats(loop, &st, 0), 0);
		T_ASSERT(0,
			 "kills %u, busy stubs that went on after it: %u of "
			 "%u; %llu reports in all, %u from the one to stall "
			 "(at its %u-th), %s %.0f ms ago, its process now %s; "
			 "the loop's timer reads late by %.2f ms at worst, "
			 "%.2f ms at most between two (spawning included)",
			 m.kills, m.continued, NSTUBS - 1,
			 (unsigned long long)m.total,
			 m.slots[m.stalled].reports, m.stall_at,
			 m.t_stall ? "stalled" : "not stalled yet",
			 m.t_stall ? (t_now_ns() - m.t_stall) / 1e6 : 0.0,
			 proc_state(sw_stub_pid(m.slots[m.stalled].s), buf,
				    sizeof(buf)),
			 st.max_late_ns / 1e6, st.max_gap_ns / 1e6);
	}
	T_EQ(sw_ev_take_error(g), 0);
	check_kill(&m, loop);
	for (i = 0; i < NSTUBS; i++) {
		if (i == m.stalled)
			continue;
		T_ASSERT(m.slots[i].after_kill >= m.need_after,
			 "stub %u: %u reports after the kill", i,
			 m.slots[i].after_kill);
		if (m.slots[i].reports < fewest)
			fewest = m.slots[i].reports;
	}
	t_note("every other stub went on: at least %u reports each", fewest);
	T_EQ(m.slots[m.stalled].reports, m.stall_at);
	m.stopping = true;
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free"); /* kills them all */
	free(m.slots);
	t_evloop_free(evl);
	return T_PASS;
}

/* ---- 1,000 registered, few in flight ------------------------------------ */

static void on_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(l, EVBREAK_ONE);
}

static void run_for(struct ev_loop *evl, double seconds)
{
	ev_timer t;

	ev_timer_init(&t, on_timeout, seconds, 0.);
	ev_now_update(evl);
	ev_timer_start(evl, &t);
	ev_run(evl, 0);
	ev_timer_stop(evl, &t);
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int on_tick(struct sw_loop *loop, void *ud)
{
	(void)loop;
	++*(uint64_t *)ud;
	return 0;
}

/* CPU time per timer read of `fast`, over `seconds` of ev_run. */
static double per_read_ns(struct ev_loop *evl, uint64_t *reads, double seconds)
{
	uint64_t r0 = *reads, c0 = cpu_ns();

	run_for(evl, seconds);
	T_ASSERT(*reads - r0 > 100, "%llu timer reads",
		 (unsigned long long)(*reads - r0));
	return (double)(cpu_ns() - c0) / (double)(*reads - r0);
}

static int case_idle(void *arg)
{
	struct ev_loop *evl = t_evloop((enum t_evkind)(intptr_t)arg);
	struct many m = {
		.nstubs = NSTUBS,
		.stall_at = 2,
		.delay_min_us = 5000,
		.delay_span_us = 10000,
		.need_after = 3,
		.nbusy = 3,
	};
	struct sw_loop *loop, *fast;
	struct sw_stub *probe;
	struct sw_event ev;
	struct sw_ev *g, *gf;
	uint64_t reads = 0;
	double one, all;
	unsigned i, moved = 0;
	int r;

	T_EQ(t_raise_nofile(2 * NSTUBS + 64), 0);
	loop = t_loop(T_TICK_NS, T_STALL, 0);
	m.stalled = 500;
	spawn_all(&m, loop);
	m.slots[10].busy = m.slots[500].busy = m.slots[990].busy = true;
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	if (!t_ev_run_until(evl, &m.done, 5000)) {
		char buf[96];

		T_ASSERT(0,
			 "kills %u, busy stubs that went on: %u of 2; the "
			 "stub to stall %s, its process now %s",
			 m.kills, m.continued,
			 m.t_stall ? "stalled" : "not stalled yet",
			 proc_state(sw_stub_pid(m.slots[m.stalled].s), buf,
				    sizeof(buf)));
	}
	/* The idle ones stay silent for more than another (N+1)*T. */
	run_for(evl, (T_STALL + 2) * T_TICK_NS / 1e9);
	T_EQ(sw_ev_take_error(g), 0);
	check_kill(&m, loop);
	for (i = 0; i < NSTUBS; i++)
		T_EQ(m.slots[i].reports, m.slots[i].busy ? m.slots[i].reports :
				      1u); /* the hello, then silence */
	T_EQ(sw_loop_count_stubs(loop), NSTUBS);

	/* The cost of a timer read: a fast loop (T = 200 us, a 100 us timer,
	 * never a kill) with one stalled stub in flight; then the same with
	 * the 997 idle stubs attached to it as well. */
	m.stopping = true;
	run_for(evl, 0.06); /* the two busy stubs report and stay idle */
	T_EQ(sw_loop_count_in_flight(loop), 0);
	fast = t_loop(200000, SW_STALL_TICKS_MAX, SW_LOOP_TICK_EVENTS);
	T_EQ(sw_loop_set_tick_callback(fast, on_tick, &reads), 0);
	probe = t_spawn_ok(fast);
	while ((r = sw_stub_wait(probe, &ev)) == SW_EV_TICK)
		;
	T_EQ(r, SW_EV_REPORT);
	t_cmd(probe, T_CMD_STALL, 0);
	T_EQ(sw_stub_resume(probe), 0);
	T_EQ(sw_ev_attach(fast, evl, &gf), 0);
	one = per_read_ns(evl, &reads, 0.3);
	for (i = 0; i < NSTUBS; i++) {
		struct sw_stub *s = m.slots[i].s;

		if (i == m.stalled)
			continue;
		T_EQ(sw_stub_detach(s), 0);
		T_EQ(sw_stub_attach(s, fast), 0);
		moved++;
	}
	T_EQ(sw_loop_count_stubs(fast), (int)moved + 1);
	T_EQ(sw_loop_count_in_flight(fast), 1);
	all = per_read_ns(evl, &reads, 0.3);
	t_note("CPU per timer read: %.0f ns with 1 stub, %.0f ns with %u "
	       "(1 in flight)", one, all, moved + 1);
	/* A walk over 1,000 stubs per read would add several microseconds;
	 * the bound leaves room for noise only. */
	T_ASSERT(all < 2.0 * one + 2000.0,
		 "a timer read costs %.0f ns with %u stubs, %.0f ns with 1",
		 all, moved + 1, one);

	T_ASSERT(sw_ev_detach(gf) == NULL, "detach");
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_loop_free(fast) == NULL, "loop free");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	free(m.slots);
	t_evloop_free(evl);
	return T_PASS;
}

int main(void)
{
	static const struct t_case cases[] = {
		{ "1000 stubs in flight under ev_default_loop, one stalled: "
		  "only it is killed, on time",
		  case_in_flight, (void *)(intptr_t)T_EV_DEFAULT, 60000 },
		{ "1000 stubs registered, 3 in flight (ev_loop_new): the "
		  "watchdog works, a tick costs O(in flight)",
		  case_idle, (void *)(intptr_t)T_EV_NEW, 60000 },
	};

	t_ev_alone = "1000 stubs in flight"; /* 1,000 busy stubs */
	return t_run("t_ev_many", cases, sizeof(cases) / sizeof(cases[0]));
}
