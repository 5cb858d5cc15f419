// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * SW_LOOP_ADAPTIVE_POLL and the embedded driver.  Blocking round trips
 * across CPUs grow a stub's spin budget; a report must still wake whoever
 * collects it next when nobody spins: a dispatch after blocking waits, or a
 * callback run inside another stub's blocking wait.  A report nobody sees
 * turns into a false stall kill, which these cases catch.  (At commit
 * 90a8656, sw_stub_resume() told the stub the monitor spins whoever waited
 * next, and on a quiet machine the first case failed: a stall kill 250 ms
 * after an echo that was answered at once.)
 */
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include "t_ev.h"

struct spin {
	struct sw_event ev;
	uint64_t t_resume, took;
	bool done;
};

static int on_spin(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct spin *sp = ud;

	(void)s;
	sp->ev = *ev;
	sp->took = t_now_ns() - sp->t_resume;
	sp->done = true;
	return 0;
}

/* The core spins only when stubs can tell their CPU (sw__cpu()). */
static bool cpu_known(void)
{
	int agree = 0;

	for (int i = 0; i < 3; i++) {
		int cpu = sched_getcpu();

		agree += cpu >= 0 && sw__cpu() == (cpu & 0xfff);
	}
	return agree >= 2; /* as the loop decides (src/poll.c) */
}

static bool pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(pid, sizeof(set), &set) == 0;
}

static int case_spin_then_dispatch(void *arg)
{
	struct sw_loop_opts o = { .size = sizeof(o), .tick_ns = T_TICK_NS,
				  .stall_ticks = T_STALL,
				  .flags = SW_LOOP_ADAPTIVE_POLL };
	struct pollfd p = { .events = POLLIN };
	struct spin sp = { .done = false };
	struct sw_event ev = { 0 };
	struct sw_loop *loop;
	struct sw_stub *s;
	int i;

	(void)arg;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return t_skip("one CPU: no cross-CPU spin");
	if (!cpu_known())
		return t_skip("stubs cannot tell their CPU: the monitor "
			      "never spins");
	T_EQ(sw_loop_new(&o, &loop), 0);
	T_ASSERT(pin(0, 0), "pin the monitor: %s", strerror(errno));
	s = t_spawn_ok(loop);
	T_ASSERT(pin(sw_stub_pid(s), 1), "pin the stub: %s", strerror(errno));
	T_EQ(sw_stub_wait(s, &ev), SW_EV_REPORT);
	/* Blocking round trips across CPUs grow the stub's spin budget. */
	for (i = 0; i < 200; i++) {
		t_cmd(s, T_CMD_ECHO, 0);
		T_EQ(sw_stub_run(s, &ev), SW_EV_REPORT);
	}
	/* Now the embedded way: resume, and let dispatch deliver it. */
	T_EQ(sw_stub_set_callback(s, on_spin, &sp), 0);
	t_cmd(s, T_CMD_ECHO, 0);
	sp.t_resume = t_now_ns();
	T_EQ(sw_stub_resume(s), 0);
	p.fd = sw_loop_get_fd(loop);
	/* until it completes: a report, or a kill by the watchdog (the case's
	 * timeout catches neither) */
	while (!sp.done)
		if (poll(&p, 1, 50) == 1)
			T_ASSERT(sw_loop_dispatch(loop) >= 0, "dispatch");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	T_ASSERT(sp.ev.type == SW_EV_REPORT,
		 "an echo answered at once ended in event %d (kill reason %d) "
		 "after %.0f ms", sp.ev.type, sp.ev.kill.reason, sp.took / 1e6);
	return T_PASS;
}


/* Stub B, driven by its callback, goes on while the monitor makes blocking
 * round trips with stub A on the same ADAPTIVE_POLL loop, across CPUs.
 * (Its timeout is long: sw_loop_free() waits for the kernel to take both
 * stubs down, which a host that stops their CPU for a while delays.) */
struct mixed {
	unsigned b_reports, b_kills;
};

static int on_b(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct mixed *m = ud;

	if (ev->type != SW_EV_REPORT) {
		m->b_kills++;
		return 0;
	}
	m->b_reports++;
	t_cmd(s, T_CMD_SLEEP, 2000);
	return sw_stub_resume(s);
}

static int case_mixed(void *arg)
{
	struct sw_loop_opts o = { .size = sizeof(o), .tick_ns = T_TICK_NS,
				  .stall_ticks = T_STALL,
				  .flags = SW_LOOP_ADAPTIVE_POLL };
	struct mixed m = { 0 };
	struct sw_event ev = { 0 };
	struct sw_loop *loop;
	struct sw_stub *a, *b;
	uint64_t t0;
	unsigned rounds = 0;

	(void)arg;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return t_skip("one CPU: no cross-CPU spin");
	T_EQ(sw_loop_new(&o, &loop), 0);
	T_ASSERT(pin(0, 0), "pin the monitor: %s", strerror(errno));
	a = t_spawn_ok(loop);
	b = t_spawn_ok(loop);
	T_ASSERT(pin(sw_stub_pid(a), 1), "pin: %s", strerror(errno));
	T_ASSERT(pin(sw_stub_pid(b), 1), "pin: %s", strerror(errno));
	T_EQ(sw_stub_set_callback(b, on_b, &m), 0);
	T_EQ(sw_stub_wait(a, &ev), SW_EV_REPORT);
	/* (N+2)*T of round trips with A, and until B, which answers every
	 * 2 ms meanwhile, has answered 3 times: its pace depends on the CPU
	 * it shares with A (and the host's load); that it goes on, and is not
	 * killed, is the point. */
	t0 = t_now_ns();
	while ((t_now_ns() - t0 < (T_STALL + 2) * T_TICK_NS ||
		m.b_reports < 3) && !m.b_kills) {
		t_cmd(a, T_CMD_ECHO, 0);
		T_EQ(sw_stub_run(a, &ev), SW_EV_REPORT);
		rounds++;
	}
	t_note("%u round trips with A in %.0f ms, %u reports from B", rounds,
	       (t_now_ns() - t0) / 1e6, m.b_reports);
	T_EQ(m.b_kills, 0);
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	return T_PASS;
}

/* The watchdog of the other stubs, while the monitor makes fast blocking
 * round trips that the spin settles without an epoll_wait: stub B stalls
 * and must be killed on time all the same. */
struct stalled {
	struct sw_event ev;
	uint64_t t_resume, t_resumed; /* around its resume */
	bool killed;
	unsigned reports;
};

static int on_stalled(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct stalled *st = ud;

	if (ev->type == SW_EV_REPORT) {
		int r;

		st->reports++;
		t_cmd(s, T_CMD_STALL, 0);
		st->t_resume = t_now_ns();
		r = sw_stub_resume(s);
		st->t_resumed = t_now_ns();
		return r;
	}
	st->ev = *ev;
	st->killed = true;
	return 0;
}

/* One attempt: a fresh B stalls while A round-trips; B must be killed in
 * its window (the case's timeout catches a B never killed). */
static void stall_during_spin(void)
{
	struct sw_loop_opts o = { .size = sizeof(o), .tick_ns = T_TICK_NS,
				  .stall_ticks = T_STALL,
				  .flags = SW_LOOP_ADAPTIVE_POLL,
				  .poll_max_ns = SW_POLL_MAX_NS_MAX };
	struct stalled st = { .reports = 0 };
	struct sw_event ev = { 0 };
	struct sw_loop *loop;
	struct sw_stub *a, *b;
	unsigned rounds = 0;

	T_EQ(sw_loop_new(&o, &loop), 0);
	a = t_spawn_ok(loop);
	b = t_spawn_ok(loop);
	T_ASSERT(pin(sw_stub_pid(a), 1), "pin: %s", strerror(errno));
	T_EQ(sw_stub_set_callback(b, on_stalled, &st), 0);
	T_EQ(sw_stub_wait(a, &ev), SW_EV_REPORT);
	while (!st.killed) {
		t_cmd(a, T_CMD_ECHO, 0);
		T_EQ(sw_stub_run(a, &ev), SW_EV_REPORT);
		rounds++;
	}
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	T_EQ(st.reports, 1);
	t_note("B killed; %u round trips with A", rounds);
	T_EQ(st.ev.type, SW_EV_KILL);
	t_check_kill("B, during A's round trips", st.t_resume, st.t_resumed,
		     &st.ev.kill);
}

static int case_stall_during_spin(void *arg)
{
	int attempts = 3;

	(void)arg;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return t_skip("one CPU: no cross-CPU spin");
	if (!cpu_known())
		return t_skip("stubs cannot tell their CPU: the monitor "
			      "never spins");
	T_ASSERT(pin(0, 0), "pin the monitor: %s", strerror(errno));
	for (int i = 0; i < attempts; i++)
		stall_during_spin();
	return T_PASS;
}

/* A wait settled by the spin (or the look before the sleep) makes no
 * epoll_wait: the loop must still read its timer once a period, or other
 * stubs' stalls go unpunished while round trips stay fast (seen before the
 * harvest: B killed after 640-700 ms, or not at all, for 200-250 ms). */
int main(void)
{
	static const struct t_case cases[] = {
		{ "ADAPTIVE_POLL: a stub driven by dispatch after blocking "
		  "waits is not killed for a report nobody saw",
		  case_spin_then_dispatch, NULL, 20000 },
		{ "ADAPTIVE_POLL: a callback-driven stub goes on during another "
		  "stub's blocking round trips", case_mixed, NULL, 20000 },
		{ "ADAPTIVE_POLL: another stub's stall is caught during fast "
		  "round trips", case_stall_during_spin, NULL, 20000 },
	};

	return t_run("t_ev_adaptive", cases, 3);
}
