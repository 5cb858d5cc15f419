/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Adaptive polling on both ends (SW_LOOP_ADAPTIVE_POLL): the stub spins for
 * its resume on its own window (sw_stub_wait_resume(), SW_STUB_SPINNING)
 * while the monitor spins for its report, across two CPUs.
 *
 *   windows_race  20,000 round trips in which the stub reports, and the
 *                 monitor resumes, after random busy delays from 0 to past
 *                 the longest window of either side, so that reports and
 *                 resumes land at the ends of both windows as they grow
 *                 and shrink: every round trip completes (a lost wake-up
 *                 would leave the stub asleep until its stall kill), and
 *                 the stub's spin caught some of its resumes (it slept,
 *                 voluntarily, fewer times than it waited).
 *   lying_flag    a stub that says it spins (SW_STUB_SPINNING) and then
 *                 sleeps in FUTEX_WAIT gets no wake-up from the resume: it
 *                 stalls, and is killed as a stall, on time, like any other;
 *                 a second stub of the loop goes on.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "t_util.h"

#define REQ_LIE (T_REQ_CMD + 100) /* report, then lie: SPINNING and sleep */
#define ROUNDS 20000u
#define DELAY_MAX_NS 80000u /* past both sides' longest windows (50 us) */

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

		if (req == T_REQ_STOP)
			return 0;
		if (req == REQ_LIE) {
			__atomic_store_n(&p->ack, req + 1, __ATOMIC_RELEASE);
			sw_stub_report(page);
			__atomic_store_n(&page->stub, SW_STUB_SPINNING,
					 __ATOMIC_SEQ_CST);
			for (;;)
				syscall(SYS_futex, &page->state, FUTEX_WAIT,
					SW_STATE_IN_KERN, NULL, NULL, 0);
		}
		busy_ns(__atomic_load_n(&p->delay_ns, __ATOMIC_RELAXED));
		__atomic_store_n(&p->ack, req + 1, __ATOMIC_RELEASE);
		sw_stub_handshake(page);
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

static uint64_t voluntary_switches(pid_t pid)
{
	char path[64], line[128];
	unsigned long long n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	t_assert(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %llu", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* Run round trips until the monitor lets the stub spin (it reported from
 * the other CPU); skip where it never does (no RDTSCP, so the monitor
 * cannot tell the stub's CPU). */
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
	t_skip("the monitor never let the stub spin (no RDTSCP?)");
}

static void case_windows_race(intptr_t unused)
{
	struct sw_loop *loop;
	struct sw_stub *s;
	struct t_payload *p;
	uint32_t rnd = (uint32_t)getpid() * 2654435761u | 1;
	uint64_t before, slept;
	int b;

	pin_apart(&b);
	loop = t_loop_opts(T_FTICK_NS, T_STALL, 0, SW_LOOP_ADAPTIVE_POLL);
	s = spawn_jitter(loop, b);
	p = t_pl(s);
	until_spin_allowed(s);
	before = voluntary_switches(sw_stub_pid(s));
	for (uint32_t i = 0; i < ROUNDS; i++) {
		struct sw_event ev;
		int rc;

		rnd ^= rnd << 13; /* xorshift32 */
		rnd ^= rnd >> 17;
		rnd ^= rnd << 5;
		p->delay_ns = rnd % DELAY_MAX_NS;
		p->req = 1000 + i;
		rc = sw_stub_run(s, &ev);
		if (rc != SW_EV_REPORT)
			t_note_event(rc, &ev);
		t_skip_if_held(s, rc, &ev);
		t_assert_msg(rc == SW_EV_REPORT, "round %u: %s", i,
			     t_ev_name(rc));
		t_assert_eq(__atomic_load_n(&p->ack, __ATOMIC_ACQUIRE),
			    1000 + i + 1);
		/* the resume comes after a delay of its own */
		busy_ns((rnd >> 7) % DELAY_MAX_NS);
	}
	slept = voluntary_switches(sw_stub_pid(s)) - before;
	t_note("%u round trips: the stub slept %" PRIu64 " times (%.1f %%), "
	       "its spin caught the rest", ROUNDS, slept,
	       100.0 * (double)slept / ROUNDS);
	t_assert_msg(slept < ROUNDS, "the stub's spin caught no resume: slept "
		     "%" PRIu64 " times in %u waits", slept, ROUNDS);
	t_stop(s);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_lying_flag(intptr_t unused)
{
	struct sw_loop *loop;
	struct sw_stub *liar, *other;
	struct sw_event ev;
	uint64_t t0, t1;
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
	/* its resume trusts the flag: no wake-up, so it stalls */
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
