/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Adaptive polling on both ends (SW_LOOP_ADAPTIVE_POLL): the stub spins for
 * its resume on its own window (sw_stub_wait_resume(), SW_STUB_SPINNING)
 * while the monitor spins for its report, across two CPUs.
 *
 *   windows_race  20,000 round trips with a random window each: the stub
 *                 sets its spin window (this file's own, sw__spin_window())
 *                 at random before each wait, and the monitor resumes it
 *                 within 2 us either side of that window's end; the stub
 *                 reports after a random delay, every other round under
 *                 1 us (the monitor's spin catches it, so the stub spins in
 *                 turn), the others up to past the monitor's budget
 *                 (poll_max_ns 100 us, longer than a wake-up across CPUs
 *                 takes here, so that the budget can grow).  Every round
 *                 trip completes (a lost wake-up would leave the stub
 *                 asleep until its stall kill; every other report sets
 *                 SW_STUB_SPINNING before it is out, as the one of
 *                 sw_stub_handshake() does), and the stub counts the
 *                 resumes its spin caught (no sleep in a wait that began
 *                 before the resume): some must be.
 *   lying_flag    a stub that says it spins (SW_STUB_SPINNING) and then
 *                 sleeps in FUTEX_WAIT gets no wake-up from the resume (its
 *                 FUTEX_WAIT never returns): it stalls, and is killed as a
 *                 stall, on time, like any other; a second stub of the loop
 *                 goes on.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "t_util.h"

#define REQ_LIE (T_REQ_CMD + 100) /* report, then lie: SPINNING and sleep */
#define ROUNDS 20000u
#define POLL_MAX_NS 100000u /* the monitor's longest budget: past its wake-up */
#define REPORT_MAX_NS 120000u /* the stub's report delay: past that budget */
#define EDGE_NS 2000u       /* resumes land this close to a window's end  */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* the vDSO: no system call */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void busy_ns(uint64_t ns)
{
	uint64_t t0 = mono_ns();

	while (mono_ns() - t0 < ns)
		__asm__ volatile("" ::: "memory");
}

/* fn mode only: the raw clone child runs this, async-signal-safe calls
 * only.  Echo with a busy delay before each report; REQ_LIE lies. */
static int role_jitter(struct sw_page *page, void *arg)
{
	struct t_payload *p = t_payload(page);

	(void)arg;
	sw_stub_handshake(page); /* the spawn's report */
	for (;;) {
		uint64_t req = __atomic_load_n(&p->req, __ATOMIC_ACQUIRE);
		uint64_t win = __atomic_load_n(&p->arg, __ATOMIC_RELAXED);
		struct rusage ru;
		long before;
		bool resumed;

		if (req == T_REQ_STOP)
			return 0;
		if (req == REQ_LIE) {
			__atomic_store_n(&p->ack, req + 1, __ATOMIC_RELEASE);
			sw_stub_report(page);
			__atomic_store_n(&page->stub, SW_STUB_SPINNING,
					 __ATOMIC_SEQ_CST);
			/* counts each return: a wake-up would show */
			for (;;) {
				syscall(SYS_futex, &page->state, FUTEX_WAIT,
					SW_STATE_IN_KERN, NULL, NULL, 0);
				__atomic_fetch_add(&p->rounds, 1,
						   __ATOMIC_RELAXED);
			}
		}
		busy_ns(__atomic_load_n(&p->delay_ns, __ATOMIC_RELAXED));
		__atomic_store_n(&p->ack, req + 1, __ATOMIC_RELEASE);
		if (win)
			__atomic_store_n(sw__spin_window(), (uint32_t)win,
					 __ATOMIC_RELAXED);
		syscall(SYS_getrusage, RUSAGE_SELF, &ru);
		before = ru.ru_nvcsw;
		/* every other round sw_stub_handshake()'s report, which sets
		 * SW_STUB_SPINNING early, in the others sw_stub_report()'s */
		sw__report(page, (int)(req & 1));
		resumed = __atomic_load_n(&page->state, __ATOMIC_ACQUIRE) ==
			  SW_STATE_IN_CHILD;
		sw_stub_wait_resume(page);
		syscall(SYS_getrusage, RUSAGE_SELF, &ru);
		if (!resumed && ru.ru_nvcsw == before)
			__atomic_fetch_add(&p->result, 1, __ATOMIC_RELAXED);
	}
}

/* Two CPUs the test may use, the monitor pinned to the first; skip
 * without them. */
static void pin_apart(int *ret_b)
{
	cpu_set_t set;
	int a = -1, b = -1;

	t_assert(sched_getaffinity(0, sizeof(set), &set) == 0);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (a < 0)
			a = c;
		else if (b < 0)
			b = c;
	}
	if (b < 0)
		t_skip("one usable CPU: nothing runs across CPUs");
	CPU_ZERO(&set);
	CPU_SET(a, &set);
	t_assert(sched_setaffinity(0, sizeof(set), &set) == 0);
	*ret_b = b;
}

static void pin_pid(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	t_assert(sched_setaffinity(pid, sizeof(set), &set) == 0);
}

static struct sw_stub *spawn_jitter(struct sw_loop *loop, int cpu)
{
	struct sw_spawn_opts so = { .size = sizeof(so), .fn = role_jitter };
	struct sw_stub *s = NULL;
	struct sw_event ev;

	t_assert_rc(sw_stub_spawn(loop, &so, &s), 0);
	pin_pid(sw_stub_pid(s), cpu);
	t_assert_rc(sw_stub_wait(s, &ev), SW_EV_REPORT);
	return s;
}

/* Run round trips until the monitor lets the stub spin (it reported from
 * the other CPU); skip where it never does (sw__cpu() fails there, so the
 * monitor cannot tell the stub's CPU). */
static void until_spin_allowed(struct sw_stub *s)
{
	struct sw_page *page = sw_stub_page(s);
	struct t_payload *p = t_pl(s);
	struct sw_event ev;

	for (unsigned i = 0; i < 100; i++) {
		p->delay_ns = 0;
		p->req = 1 + i;
		t_assert_rc(sw_stub_run(s, &ev), SW_EV_REPORT);
		if (__atomic_load_n(&page->monitor, __ATOMIC_RELAXED) &
		    SW_MON_STUB_SPIN)
			return;
	}
	t_skip("the monitor never let the stub spin (sw__cpu() fails?)");
}

/* The CPU counter's ticks per ns (the stub's windows are in ticks). */
static double ticks_per_ns(void)
{
	uint64_t t0 = mono_ns(), c0 = sw__ticks(), t1, c1;

	busy_ns(20 * 1000000ull);
	t1 = mono_ns();
	c1 = sw__ticks();
	return (double)(c1 - c0) / (double)(t1 - t0);
}

static void case_windows_race(intptr_t unused)
{
	struct sw_loop *loop;
	struct sw_stub *s;
	struct t_payload *p;
	uint32_t rnd = (uint32_t)getpid() * 2654435761u | 1;
	double tpn;
	int b;

	pin_apart(&b);
	tpn = ticks_per_ns();
	{
		struct sw_loop_opts lo = SW_LOOP_OPTS_INIT;

		lo.tick_ns = T_FTICK_NS;
		lo.stall_ticks = T_STALL;
		lo.flags = SW_LOOP_ADAPTIVE_POLL;
		lo.poll_max_ns = POLL_MAX_NS;
		t_assert_rc(sw_loop_new(&lo, &loop), 0);
	}
	s = spawn_jitter(loop, b);
	p = t_pl(s);
	until_spin_allowed(s);
	p->result = 0;
	for (uint32_t i = 0; i < ROUNDS; i++) {
		struct sw_event ev;
		uint32_t win;
		int64_t at;
		int rc;

		rnd ^= rnd << 13; /* xorshift32 */
		rnd ^= rnd >> 17;
		rnd ^= rnd << 5;
		win = SW__SPIN_START + rnd % (SW__SPIN_MAX - SW__SPIN_START);
		p->arg = win;
		/* every other round a report the monitor's spin catches, so
		 * that the stub spins (it does not while the monitor
		 * sleeps); the others up to past the monitor's budget */
		p->delay_ns = (rnd >> 3) % (rnd & 1 ? 1000u : REPORT_MAX_NS);
		p->req = 1000 + i;
		rc = sw_stub_run(s, &ev);
		if (rc != SW_EV_REPORT)
			t_note_event(rc, &ev);
		t_skip_if_held(s, rc, &ev);
		t_assert_msg(rc == SW_EV_REPORT, "round %u: %s", i,
			     t_ev_name(rc));
		t_assert_eq(__atomic_load_n(&p->ack, __ATOMIC_ACQUIRE),
			    1000 + i + 1);
		/* the next resume: within EDGE_NS of the end of the window
		 * the stub spins on now */
		at = (int64_t)((double)win / tpn) +
		     (int64_t)((rnd >> 11) % (2 * EDGE_NS)) - EDGE_NS;
		busy_ns(at > 0 ? (uint64_t)at : 0);
	}
	t_note("%u round trips at the ends of random windows (%.2f counter "
	       "ticks a ns): the stub's spin caught %" PRIu64 " resumes", ROUNDS,
	       tpn, p->result);
	t_assert_msg(p->result > 0, "the stub's spin caught no resume in %u",
		     ROUNDS);
	p->arg = 0;
	t_stop(s);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_lying_flag(intptr_t unused)
{
	struct sw_loop *loop;
	struct sw_stub *liar, *other;
	struct sw_event ev;
	uint64_t t0, t1, returns;
	int b, rc;

	pin_apart(&b);
	loop = t_loop_opts(T_TICK_NS, T_STALL, 0, SW_LOOP_ADAPTIVE_POLL);
	liar = spawn_jitter(loop, b);
	other = spawn_jitter(loop, b);
	until_spin_allowed(liar);
	/* it reports, says it spins, and sleeps */
	t_pl(liar)->req = REQ_LIE;
	t_assert_rc(sw_stub_run(liar, &ev), SW_EV_REPORT);
	t_assert(t_wait_proc_state(sw_stub_pid(liar), "S", 10ull * 1000000000));
	t_assert(__atomic_load_n(&sw_stub_page(liar)->stub, __ATOMIC_SEQ_CST) &
		 SW_STUB_SPINNING);
	/* it waits under a word that lets it spin, so its resume trusts the
	 * flag: no wake-up (its FUTEX_WAIT never returns), so it stalls */
	t_assert(__atomic_load_n(&sw_stub_page(liar)->monitor,
				 __ATOMIC_RELAXED) & SW_MON_STUB_SPIN);
	returns = __atomic_load_n(&t_pl(liar)->rounds, __ATOMIC_RELAXED);
	t_pl(liar)->req = 7;
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(liar), 0);
	t1 = t_now_ns();
	/* the loop's other stub goes on meanwhile */
	for (unsigned i = 0; i < 50; i++) {
		t_pl(other)->delay_ns = 0;
		t_pl(other)->req = 2000 + i;
		t_assert_rc(sw_stub_run(other, &ev), SW_EV_REPORT);
	}
	rc = sw_stub_wait(liar, &ev);
	if (rc != SW_EV_KILL)
		t_note_event(rc, &ev);
	t_assert_rc(rc, SW_EV_KILL);
	t_assert_kill_window("lying stub", loop, t0, t1, &ev.kill);
	t_assert_msg(__atomic_load_n(&t_pl(liar)->rounds, __ATOMIC_RELAXED) ==
			     returns,
		     "the lying stub's FUTEX_WAIT returned: it was woken");
	t_assert(sw_stub_free(liar) == NULL);
	t_stop(other);
	t_assert(sw_loop_free(loop) == NULL);
}

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{ "windows_race", case_windows_race, 0, 60 },
		{ "lying_flag", case_lying_flag, 0, 20 },
	};

	return t_main(argc, argv, cases, T_NCASES(cases));
}
