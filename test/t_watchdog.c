/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pure watchdog state machine (src/watchdog.c, compiled in): every cell
 * of the state x event table, the discounted first read, elapsed periods
 * counted per read and capped at one tick, report-wins, starvation credit,
 * and a simulation of the loop driving it with a virtual timer, checking
 * the kill-time bounds the header promises: never before N*T, and by
 * (N*k + 2)*P plus the lateness of the first and the killing read, the
 * periods dropped by the cap and the credit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "t_util.h"
#include "watchdog.h"

#define N 5u
#define K 2u

static void wd_setup(struct sw_wd *wd, struct sw_wd_stub *s)
{
	sw_wd_init(wd, N, K);
	memset(s, 0, sizeof(*s));
}

/* One timer read with `exp` expirations, then the stamp the loop gives the
 * stubs resumed since the last read (NULL: none). */
static void tick(struct sw_wd *wd, uint64_t exp, struct sw_wd_stub *a,
		 struct sw_wd_stub *b)
{
	sw_wd_tick(wd, exp);
	if (a)
		sw_wd_stamp(wd, a);
	if (b)
		sw_wd_stamp(wd, b);
}

/* ---- the table --------------------------------------------------------- */

#define SAME 0xff
static const struct {
	uint8_t next;
	uint8_t action;
} expect[SW_WD_NSTATES][SW_WD_NEVENTS] = {
	[SW_WD_IDLE] = {
		[SW_WD_EV_RESUME]       = { SW_WD_RUNNING, SW_WD_NONE },
		[SW_WD_EV_REPORT]       = { SAME, SW_WD_NONE },
		[SW_WD_EV_NOISE]        = { SAME, SW_WD_NONE },
		[SW_WD_EV_BAD]          = { SW_WD_KILLING, SW_WD_KILL_PROTOCOL },
		[SW_WD_EV_EXPIRE]       = { SAME, SW_WD_NONE },
		[SW_WD_EV_KILL]         = { SW_WD_KILLING, SW_WD_KILL_USER },
		[SW_WD_EV_DEATH]        = { SW_WD_DEAD, SW_WD_DONE_EXIT },
		[SW_WD_EV_ANSWER]       = { SAME, SW_WD_NONE },
	},
	[SW_WD_RUNNING] = {
		/* a refused resume must not move the deadline: a stalled
		 * stub cannot be kept alive by resuming it again */
		[SW_WD_EV_RESUME]       = { SAME, SW_WD_REFUSE },
		[SW_WD_EV_REPORT]       = { SW_WD_IDLE, SW_WD_DONE_REPORT },
		[SW_WD_EV_NOISE]        = { SAME, SW_WD_NONE },
		[SW_WD_EV_BAD]          = { SW_WD_KILLING, SW_WD_KILL_PROTOCOL },
		[SW_WD_EV_EXPIRE]       = { SW_WD_KILLING, SW_WD_KILL_STALL },
		[SW_WD_EV_KILL]         = { SW_WD_KILLING, SW_WD_KILL_USER },
		[SW_WD_EV_DEATH]        = { SW_WD_DEAD, SW_WD_DONE_EXIT },
		[SW_WD_EV_ANSWER]       = { SW_WD_IDLE, SW_WD_DONE_ANSWER },
	},
	[SW_WD_KILLING] = {
		[SW_WD_EV_RESUME]       = { SAME, SW_WD_NONE },
		[SW_WD_EV_REPORT]       = { SAME, SW_WD_NONE },
		[SW_WD_EV_NOISE]        = { SAME, SW_WD_NONE },
		[SW_WD_EV_BAD]          = { SAME, SW_WD_NONE },
		[SW_WD_EV_EXPIRE]       = { SAME, SW_WD_NONE },
		[SW_WD_EV_KILL]         = { SAME, SW_WD_NONE },
		[SW_WD_EV_DEATH]        = { SW_WD_DEAD, SW_WD_DONE_KILL },
		[SW_WD_EV_ANSWER]       = { SAME, SW_WD_NONE },
	},
	[SW_WD_DEAD] = {
		[SW_WD_EV_RESUME]       = { SAME, SW_WD_NONE },
		[SW_WD_EV_REPORT]       = { SAME, SW_WD_NONE },
		[SW_WD_EV_NOISE]        = { SAME, SW_WD_NONE },
		[SW_WD_EV_BAD]          = { SAME, SW_WD_NONE },
		[SW_WD_EV_EXPIRE]       = { SAME, SW_WD_NONE },
		[SW_WD_EV_KILL]         = { SAME, SW_WD_NONE },
		[SW_WD_EV_DEATH]        = { SAME, SW_WD_NONE },
		[SW_WD_EV_ANSWER]       = { SAME, SW_WD_NONE },
	},
};

static void case_table(intptr_t unused)
{
	struct sw_wd wd;
	struct sw_wd_stub s;
	unsigned st, ev;

	for (st = 0; st < SW_WD_NSTATES; st++) {
		for (ev = 0; ev < SW_WD_NEVENTS; ev++) {
			uint8_t next = expect[st][ev].next;
			enum sw_wd_action a;

			wd_setup(&wd, &s);
			wd.reads = 1000;
			wd.periods = 5000;
			s.state = (uint8_t)st;
			s.base = 424242;
			s.credit = 3;
			a = sw_wd_step(&wd, &s, (enum sw_wd_event)ev);
			t_assert_msg(a == expect[st][ev].action,
				     "state %u event %u: action %d, expected %d",
				     st, ev, a, expect[st][ev].action);
			t_assert_msg(s.state == (next == SAME ? st : next),
				     "state %u event %u: next %u, expected %u",
				     st, ev, s.state, next == SAME ? st : next);
			if (next == SW_WD_RUNNING) {
				t_assert(!sw_wd_stamped(&s));
				t_assert_eq(s.credit, 0);
			} else {
				t_assert_msg(s.base == 424242 && s.credit == 3,
					     "state %u event %u moved the deadline",
					     st, ev);
			}
		}
	}

	/* out of range: refused, nothing changes */
	wd_setup(&wd, &s);
	s.state = SW_WD_NSTATES;
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_RESUME), SW_WD_REFUSE);
	t_assert_eq(s.state, SW_WD_NSTATES);
	s.state = SW_WD_RUNNING;
	s.base = 7;
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_NEVENTS), SW_WD_REFUSE);
	t_assert_eq(sw_wd_step(&wd, &s, (enum sw_wd_event)-1), SW_WD_REFUSE);
	t_assert_eq(s.state, SW_WD_RUNNING);
	t_assert_eq(s.base, 7);
}

/* ---- the counting rules ------------------------------------------------ */

static void case_init(intptr_t unused)
{
	struct sw_wd wd;

	sw_wd_init(&wd, 5, 2);
	t_assert_eq(wd.reads, 0);
	t_assert_eq(wd.periods, 0);
	t_assert_eq(wd.dropped, 0);
	t_assert_eq(wd.div, 2);
	t_assert_eq(wd.limit, 5 * 2 + 1);
	t_assert_eq(wd.credit_max, 5 * 2);
	sw_wd_init(&wd, 1, 2);
	t_assert_eq(wd.limit, 3);
	/* the largest configuration must not overflow */
	sw_wd_init(&wd, SW_STALL_TICKS_MAX, SW_TIMER_DIV_MAX);
	t_assert(wd.limit == (uint64_t)SW_STALL_TICKS_MAX * SW_TIMER_DIV_MAX + 1);
}

/* Ticks until the kill, from a resume at wd.reads = start. */
static uint64_t reads_to_kill(uint32_t n, uint32_t k, uint64_t start)
{
	struct sw_wd wd;
	struct sw_wd_stub s = { 0 };
	uint64_t reads = 0;

	sw_wd_init(&wd, n, k);
	wd.reads = start;
	wd.periods = 3 * start;
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_RESUME), SW_WD_NONE);
	t_assert_eq(sw_wd_counted(&wd, &s), 0);
	while (!sw_wd_expired(&wd, &s)) {
		tick(&wd, 1, &s, NULL);
		reads++;
		/* the discounted first read counts nothing */
		t_assert_eq(sw_wd_counted(&wd, &s), reads - 1);
		t_assert(reads < (uint64_t)n * k + 10);
	}
	t_assert_eq(sw_wd_counted(&wd, &s), (uint64_t)n * k + 1);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_EXPIRE), SW_WD_KILL_STALL);
	t_assert_eq(s.state, SW_WD_KILLING);
	/* a kill in progress is not killed again, and its count stays put */
	t_assert(!sw_wd_expired(&wd, &s));
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_EXPIRE), SW_WD_NONE);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_DEATH), SW_WD_DONE_KILL);
	t_assert_eq(s.state, SW_WD_DEAD);
	return reads;
}

static void case_first_read_discounted(intptr_t unused)
{
	uint32_t n, k;

	for (n = 1; n <= 7; n++)
		for (k = 2; k <= 6; k++) {
			t_assert_eq(reads_to_kill(n, k, 0), n * k + 2);
			t_assert_eq(reads_to_kill(n, k, 5), n * k + 2);
			t_assert_eq(reads_to_kill(n, k, 99999), n * k + 2);
		}
}

/* A read counts its expirations, at most k of them: a late read counts
 * every period it found, a frozen monitor's read one tick. */
static void case_periods_per_read(intptr_t unused)
{
	struct sw_wd wd;
	struct sw_wd_stub s = { 0 };

	sw_wd_init(&wd, 5, 8);
	sw_wd_step(&wd, &s, SW_WD_EV_RESUME);
	/* the first read after the resume: 1000 expirations, none count */
	t_assert_eq(sw_wd_tick(&wd, 1000), 8);
	sw_wd_stamp(&wd, &s);
	t_assert_eq(wd.reads, 1);
	t_assert_eq(wd.periods, 8);
	t_assert_eq(wd.dropped, 992);
	t_assert_eq(sw_wd_counted(&wd, &s), 0);
	/* a stamp is once per resume */
	tick(&wd, 3, &s, NULL);
	t_assert_eq(sw_wd_counted(&wd, &s), 3); /* a late read: 3 periods */
	tick(&wd, 1000, &s, NULL);            /* frozen: one tick, no more */
	t_assert_eq(sw_wd_counted(&wd, &s), 3 + 8);
	t_assert(!sw_wd_expired(&wd, &s));
	/* 5 * 8 + 1 counted periods kill, however they come */
	tick(&wd, 8, &s, NULL);
	tick(&wd, 8, &s, NULL);
	tick(&wd, 8, &s, NULL);
	t_assert_eq(sw_wd_counted(&wd, &s), 35);
	tick(&wd, 5, &s, NULL);
	t_assert(!sw_wd_expired(&wd, &s));
	tick(&wd, 1, &s, NULL);
	t_assert_eq(sw_wd_counted(&wd, &s), 41);
	t_assert(sw_wd_expired(&wd, &s));
	/* an unstamped stub (no read since its resume) never expires */
	sw_wd_step(&wd, &s, SW_WD_EV_REPORT);
	sw_wd_step(&wd, &s, SW_WD_EV_RESUME);
	sw_wd_tick(&wd, 100);
	t_assert(!sw_wd_expired(&wd, &s));
	t_assert_eq(sw_wd_counted(&wd, &s), 0);
}

/* Starvation credit moves the deadline, by at most N*k periods a resume. */
static void case_credit(intptr_t unused)
{
	struct sw_wd wd;
	struct sw_wd_stub s;
	unsigned i;

	wd_setup(&wd, &s);
	t_assert_eq(sw_wd_credit(&wd, &s, 3), 0); /* idle: none */
	sw_wd_step(&wd, &s, SW_WD_EV_RESUME);
	for (i = 0; i < N * K + 2; i++)
		tick(&wd, 1, &s, NULL);
	t_assert(sw_wd_expired(&wd, &s));
	t_assert_eq(sw_wd_credit(&wd, &s, 3), 3);
	t_assert(!sw_wd_expired(&wd, &s));
	t_assert_eq(sw_wd_credit(&wd, &s, 1000), N * K - 3); /* capped */
	t_assert_eq(sw_wd_credit(&wd, &s, 1), 0);
	for (i = 0; i < N * K - 1; i++) {
		tick(&wd, 1, &s, NULL);
		t_assert(!sw_wd_expired(&wd, &s));
	}
	tick(&wd, 1, &s, NULL);
	t_assert(sw_wd_expired(&wd, &s));
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_EXPIRE), SW_WD_KILL_STALL);
	t_assert_eq(sw_wd_credit(&wd, &s, 1), 0); /* killing: none */
	/* a new resume starts with no credit */
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_DEATH), SW_WD_DONE_KILL);
	wd_setup(&wd, &s);
	sw_wd_step(&wd, &s, SW_WD_EV_RESUME);
	t_assert_eq(sw_wd_credit(&wd, &s, 2), 2);
	sw_wd_step(&wd, &s, SW_WD_EV_REPORT);
	sw_wd_step(&wd, &s, SW_WD_EV_RESUME);
	t_assert_eq(s.credit, 0);
}

static void case_report_wins(intptr_t unused)
{
	struct sw_wd wd;
	struct sw_wd_stub s;
	unsigned i;

	wd_setup(&wd, &s);
	sw_wd_step(&wd, &s, SW_WD_EV_RESUME);
	for (i = 0; i < N * K + 2; i++)
		tick(&wd, 1, &s, NULL);
	t_assert(sw_wd_expired(&wd, &s));
	/* the report, ready in the same epoll_wait, is handled first */
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_REPORT), SW_WD_DONE_REPORT);
	t_assert_eq(s.state, SW_WD_IDLE);
	t_assert(!sw_wd_expired(&wd, &s));
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_EXPIRE), SW_WD_NONE);
	t_assert_eq(s.state, SW_WD_IDLE);
}

/* A report then a resume starts a new count from the resume. */
static void case_resume_restarts(intptr_t unused)
{
	struct sw_wd wd;
	struct sw_wd_stub s;
	unsigned round, i;

	wd_setup(&wd, &s);
	for (round = 0; round < 50; round++) {
		t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_RESUME), SW_WD_NONE);
		for (i = 0; i < N * K + 1; i++) {
			tick(&wd, 1, &s, NULL);
			t_assert(!sw_wd_expired(&wd, &s));
		}
		t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_REPORT),
			    SW_WD_DONE_REPORT);
	}
	/* a resume refused while running does not restart the count */
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_RESUME), SW_WD_NONE);
	for (i = 0; i < N * K + 1; i++) {
		tick(&wd, 1, &s, NULL);
		t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_RESUME), SW_WD_REFUSE);
	}
	tick(&wd, 1, &s, NULL);
	t_assert(sw_wd_expired(&wd, &s));
}

/* Eventfd writes without IN_KERN never move the deadline. */
static void case_noise_not_progress(intptr_t unused)
{
	struct sw_wd wd;
	struct sw_wd_stub s;
	unsigned i, j;

	wd_setup(&wd, &s);
	sw_wd_step(&wd, &s, SW_WD_EV_RESUME);
	for (i = 0; i < N * K + 2; i++) {
		t_assert(!sw_wd_expired(&wd, &s));
		for (j = 0; j < 1000; j++)
			t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_NOISE),
				    SW_WD_NONE);
		tick(&wd, 1, &s, NULL);
	}
	t_assert(sw_wd_expired(&wd, &s));
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_EXPIRE), SW_WD_KILL_STALL);
}

static void case_bad_and_kill(intptr_t unused)
{
	struct sw_wd wd;
	struct sw_wd_stub s;

	/* protocol violation in flight, then the death completes a kill */
	wd_setup(&wd, &s);
	sw_wd_step(&wd, &s, SW_WD_EV_RESUME);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_BAD), SW_WD_KILL_PROTOCOL);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_BAD), SW_WD_NONE);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_KILL), SW_WD_NONE);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_REPORT), SW_WD_NONE);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_DEATH), SW_WD_DONE_KILL);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_DEATH), SW_WD_NONE);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_RESUME), SW_WD_NONE);
	t_assert_eq(s.state, SW_WD_DEAD);

	/* death on its own while running or idle is an EXIT */
	wd_setup(&wd, &s);
	sw_wd_step(&wd, &s, SW_WD_EV_RESUME);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_DEATH), SW_WD_DONE_EXIT);
	wd_setup(&wd, &s);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_DEATH), SW_WD_DONE_EXIT);

	/* a user kill of an idle stub */
	wd_setup(&wd, &s);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_KILL), SW_WD_KILL_USER);
	t_assert_eq(s.state, SW_WD_KILLING);
	t_assert_eq(sw_wd_step(&wd, &s, SW_WD_EV_DEATH), SW_WD_DONE_KILL);
}

/* Stubs sharing one loop keep separate deadlines. */
static void case_stubs_independent(intptr_t unused)
{
	struct sw_wd wd;
	struct sw_wd_stub a = { 0 }, b = { 0 };
	unsigned i;

	sw_wd_init(&wd, N, K);
	sw_wd_step(&wd, &a, SW_WD_EV_RESUME); /* at read 0: killed at read 12 */
	for (i = 0; i < 4; i++)
		tick(&wd, 1, &a, NULL);
	sw_wd_step(&wd, &b, SW_WD_EV_RESUME); /* at read 4: killed at read 16 */
	while (wd.reads < N * K + 1) {
		tick(&wd, 1, &a, &b);
		t_assert(!sw_wd_expired(&wd, &a));
		t_assert(!sw_wd_expired(&wd, &b));
	}
	tick(&wd, 1, &a, &b); /* read 12 */
	t_assert(sw_wd_expired(&wd, &a));
	t_assert(!sw_wd_expired(&wd, &b));
	t_assert_eq(sw_wd_counted(&wd, &a), N * K + 1);
	t_assert_eq(sw_wd_counted(&wd, &b), N * K + 1 - 4);
	t_assert_eq(sw_wd_step(&wd, &a, SW_WD_EV_EXPIRE), SW_WD_KILL_STALL);
	while (wd.reads < 4 + N * K + 1) {
		tick(&wd, 1, NULL, &b);
		t_assert(!sw_wd_expired(&wd, &b));
	}
	tick(&wd, 1, NULL, &b); /* read 16 */
	t_assert(sw_wd_expired(&wd, &b));
}

/* ---- simulation -------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static uint64_t rnd_in(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

enum policy {
	PROMPT, /* every expiration read at once                       */
	LATE,   /* reads up to 4 periods late, folding expirations      */
	BUSY,   /* prompt, but sometimes the monitor is away for long   */
	NPOLICIES
};
static const char *const policy_name[] = { "prompt", "late", "busy" };

#define NEVER UINT64_MAX
#define MAXSTUBS 4

struct sim_stub {
	struct sw_wd_stub wd;
	uint64_t resume_at; /* IDLE: when the monitor resumes it     */
	uint64_t report_at; /* RUNNING: when it reports (NEVER: stall) */
	uint64_t resumed;   /* RUNNING: time of its resume           */
	uint64_t late_first;   /* lateness of the first read after it  */
	uint64_t dropped_base; /* wd.dropped at that read              */
};

struct sim {
	enum policy policy;
	uint32_t n, k;
	uint64_t p, t;          /* period P = T/k; tick T = k*P */
	uint64_t now;
	bool armed;
	uint64_t next_exp;      /* the first unread expiration   */
	uint64_t read_at;       /* when the loop reads the timer */
	struct sw_wd wd;
	unsigned nstubs;
	struct sim_stub s[MAXSTUBS];
	/* statistics */
	uint64_t kills, reports, min_kill, max_kill, credited, capped;
	uint64_t arming;        /* resumes that armed the timer      */
	uint64_t ticking;       /* resumes with the timer running    */
};

static uint64_t sim_read_delay(struct sim *m)
{
	switch (m->policy) {
	case LATE:
		return rnd_in(0, 4 * m->p);
	case BUSY:
		return rnd() % 20 ? 0 : rnd_in(0, 3 * (m->n + 1) * m->t);
	default:
		return 0;
	}
}

static void sim_plan_resume(struct sim *m, struct sim_stub *s)
{
	uint64_t gap = rnd() % 4 ? rnd_in(0, 3 * m->p) : 0;

	/* sometimes exactly on an expiration, to exercise the ties */
	if (m->armed && rnd() % 5 == 0) {
		s->resume_at = m->next_exp + m->p * rnd_in(0, 2);
		if (s->resume_at < m->now)
			s->resume_at = m->now;
	} else
		s->resume_at = m->now + gap;
	s->report_at = NEVER;
}

/* Always SW_WD_EV_RESUME, as the loop does, even when this resume arms the
 * timer: the first read is discounted either way. */
static void sim_resume(struct sim *m, struct sim_stub *s)
{
	uint64_t d;

	if (!m->armed) {
		m->armed = true;
		m->next_exp = m->now + m->p;
		m->read_at = m->next_exp + sim_read_delay(m);
		m->arming++;
	} else {
		m->ticking++;
	}
	t_assert_eq(sw_wd_step(&m->wd, &s->wd, SW_WD_EV_RESUME), SW_WD_NONE);
	s->resumed = m->now;
	s->resume_at = NEVER;
	/* a third stall; the rest report within (N+2)*T */
	if (rnd() % 3 == 0)
		s->report_at = NEVER;
	else {
		d = rnd_in(0, (m->n + 2) * m->t);
		s->report_at = m->now + d;
	}
}

static void sim_report(struct sim *m, struct sim_stub *s)
{
	uint64_t silence = m->now - s->resumed;

	t_assert_eq(sw_wd_step(&m->wd, &s->wd, SW_WD_EV_REPORT),
		    SW_WD_DONE_REPORT);
	/* prompt reads: a stub silent past (N+1)*T (and its credit) must
	 * have been killed */
	t_assert_msg(m->policy != PROMPT ||
			     silence <= (m->n + 1) * m->t + s->wd.credit * m->p,
		     "%s N=%u k=%u P=%" PRIu64 ": a stub silent for %" PRIu64
		     " (%.3f T) was not killed", policy_name[m->policy], m->n,
		     m->k, m->p, silence, (double)silence / (double)m->t);
	m->reports++;
	sim_plan_resume(m, s);
}

static void sim_read(struct sim *m)
{
	uint64_t exp = 0, oldest = m->next_exp, late;
	bool running = false;
	unsigned i;

	/* one read consumes every expiration up to now */
	while (m->next_exp <= m->now) {
		m->next_exp += m->p;
		exp++;
	}
	t_assert(exp > 0);
	late = m->now - oldest;
	sw_wd_tick(&m->wd, exp);
	if (exp > m->k)
		m->capped++;
	for (i = 0; i < m->nstubs; i++) {
		struct sim_stub *s = &m->s[i];

		if (s->wd.state == SW_WD_RUNNING && !sw_wd_stamped(&s->wd)) {
			sw_wd_stamp(&m->wd, &s->wd);
			s->late_first = late;
			s->dropped_base = m->wd.dropped;
		}
	}
	for (i = 0; i < m->nstubs; i++) {
		struct sim_stub *s = &m->s[i];
		uint64_t silence, over, bound;

		if (!sw_wd_expired(&m->wd, &s->wd)) {
			running |= s->wd.state == SW_WD_RUNNING;
			continue;
		}
		/* sometimes the stub was starved: credit moves its deadline */
		if (rnd() % 4 == 0 &&
		    sw_wd_credit(&m->wd, &s->wd, rnd_in(1, m->n * m->k)) &&
		    !sw_wd_expired(&m->wd, &s->wd)) {
			m->credited++;
			running = true;
			continue;
		}
		silence = m->now - s->resumed;
		t_assert(sw_wd_counted(&m->wd, &s->wd) >=
			 (uint64_t)m->n * m->k + 1 + s->wd.credit);
		if (m->policy == PROMPT)
			t_assert_eq(sw_wd_counted(&m->wd, &s->wd),
				    (uint64_t)m->n * m->k + 1 + s->wd.credit);
		t_assert_eq(sw_wd_step(&m->wd, &s->wd, SW_WD_EV_EXPIRE),
			    SW_WD_KILL_STALL);
		/* never before N*T, whatever the delivery */
		t_assert_msg(silence > (uint64_t)m->n * m->t,
			     "%s N=%u k=%u P=%" PRIu64 ": killed after %" PRIu64
			     " = %.3f T of silence", policy_name[m->policy],
			     m->n, m->k, m->p, silence,
			     (double)silence / (double)m->t);
		/* and by (N*k + 2)*P plus the lateness of the first and the
		 * killing read, the periods the cap dropped and the credit */
		bound = ((uint64_t)m->n * m->k + 2) * m->p + s->late_first +
			late + (m->wd.dropped - s->dropped_base) * m->p +
			s->wd.credit * m->p;
		t_assert_msg(silence <= bound,
			     "%s N=%u k=%u P=%" PRIu64 ": killed after %" PRIu64
			     " = %.3f T, bound %" PRIu64 " (late %" PRIu64
			     " + %" PRIu64 ", credit %" PRIu64 ")",
			     policy_name[m->policy], m->n, m->k, m->p, silence,
			     (double)silence / (double)m->t, bound,
			     s->late_first, late, s->wd.credit);
		/* which with prompt reads is (N+1)*T */
		t_assert_msg(m->policy != PROMPT ||
				     silence <= (uint64_t)(m->n + 1) * m->t +
							s->wd.credit * m->p,
			     "prompt N=%u k=%u P=%" PRIu64 ": killed only after %"
			     PRIu64 " = %.3f T", m->n, m->k, m->p, silence,
			     (double)silence / (double)m->t);
		/* beyond N*T, in thousandths of T */
		if (!s->wd.credit) {
			over = (silence - (uint64_t)m->n * m->t) * 1000 / m->t;
			if (over < m->min_kill)
				m->min_kill = over;
			if (over > m->max_kill)
				m->max_kill = over;
		}
		t_assert_eq(sw_wd_step(&m->wd, &s->wd, SW_WD_EV_DEATH),
			    SW_WD_DONE_KILL);
		/* a new stub takes its place */
		memset(&s->wd, 0, sizeof(s->wd));
		m->kills++;
		sim_plan_resume(m, s);
	}
	if (!running)
		m->armed = false; /* nothing in flight: the loop disarms */
	else
		m->read_at = m->next_exp + sim_read_delay(m);
}

static void sim_run(struct sim *m, unsigned events)
{
	unsigned e, i;

	for (e = 0; e < events; e++) {
		struct sim_stub *first_report = NULL, *first_resume = NULL;
		uint64_t t_read = m->armed ? m->read_at : NEVER;
		uint64_t t_report = NEVER, t_resume = NEVER;

		for (i = 0; i < m->nstubs; i++) {
			struct sim_stub *s = &m->s[i];

			if (s->wd.state == SW_WD_RUNNING &&
			    s->report_at < t_report) {
				t_report = s->report_at;
				first_report = s;
			}
			if (s->wd.state == SW_WD_IDLE &&
			    s->resume_at < t_resume) {
				t_resume = s->resume_at;
				first_resume = s;
			}
		}
		/* a report ready with a tick wins (<=); a resume and a read
		 * at the same instant may come in either order */
		if (first_report && t_report <= t_read && t_report <= t_resume) {
			m->now = t_report;
			sim_report(m, first_report);
		} else if (first_resume &&
			   (t_resume < t_read ||
			    (t_resume == t_read && rnd() % 2))) {
			m->now = t_resume;
			sim_resume(m, first_resume);
		} else {
			t_assert(t_read != NEVER);
			m->now = t_read;
			sim_read(m);
		}
	}
}

static void case_simulation(intptr_t unused)
{
	const char *seed_env = getenv("T_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : t_now_ns();
	uint64_t kills[NPOLICIES] = { 0 }, reports[NPOLICIES] = { 0 };
	uint64_t arming = 0, ticking = 0, lo = UINT64_MAX, hi = 0;
	uint64_t credited = 0, capped = 0;
	unsigned trial, i;

	t_note("seed %" PRIu64 " (set T_SEED to replay)", seed);
	rng_state = seed;
	for (trial = 0; trial < 6000; trial++) {
		struct sim m;

		memset(&m, 0, sizeof(m));
		m.policy = (enum policy)(trial % NPOLICIES);
		m.n = (uint32_t)rnd_in(1, 8);
		m.k = (uint32_t)rnd_in(2, 7);
		m.p = rnd_in(1000, 100000);
		m.t = m.k * m.p;
		m.nstubs = (unsigned)rnd_in(1, MAXSTUBS);
		m.min_kill = UINT64_MAX;
		sw_wd_init(&m.wd, m.n, m.k);
		m.wd.reads = rnd() % 1000;
		/* the timer has run for a while with an arbitrary phase */
		m.now = rnd_in(1000, 2000) * m.p + rnd_in(0, m.p - 1);
		m.armed = rnd() % 2;
		if (m.armed) {
			m.next_exp = m.now + rnd_in(1, m.p);
			m.read_at = m.next_exp + sim_read_delay(&m);
		}
		for (i = 0; i < m.nstubs; i++)
			sim_plan_resume(&m, &m.s[i]);
		sim_run(&m, 3000);
		kills[m.policy] += m.kills;
		reports[m.policy] += m.reports;
		arming += m.arming;
		ticking += m.ticking;
		credited += m.credited;
		capped += m.capped;
		if (m.policy == PROMPT && m.kills) {
			if (m.min_kill < lo)
				lo = m.min_kill;
			if (m.max_kill > hi)
				hi = m.max_kill;
		}
	}
	for (i = 0; i < NPOLICIES; i++) {
		t_note("%s: %" PRIu64 " kills, %" PRIu64 " reports",
		       policy_name[i], kills[i], reports[i]);
		t_assert(kills[i] > 1000 && reports[i] > 1000);
	}
	t_note("resumes: %" PRIu64 " arming the timer, %" PRIu64
	       " with the timer running", arming, ticking);
	t_note("prompt kills after N*T + %.3f .. %.3f T of silence",
	       (double)lo / 1000, (double)hi / 1000);
	/* both paths exercised: both discount the first read */
	t_assert(arming > 1000 && ticking > 1000);
	t_note("%" PRIu64 " credits, %" PRIu64 " reads capped at one tick",
	       credited, capped);
	t_assert(credited > 1000 && capped > 1000);
}

static const struct t_case cases[] = {
	{ "init", case_init, 0, 0 },
	{ "table", case_table, 0, 0 },
	{ "first_read_discounted", case_first_read_discounted, 0, 0 },
	{ "periods_per_read", case_periods_per_read, 0, 0 },
	{ "credit", case_credit, 0, 0 },
	{ "report_wins", case_report_wins, 0, 0 },
	{ "resume_restarts", case_resume_restarts, 0, 0 },
	{ "noise_not_progress", case_noise_not_progress, 0, 0 },
	{ "bad_and_kill", case_bad_and_kill, 0, 0 },
	{ "stubs_independent", case_stubs_independent, 0, 0 },
	{ "simulation", case_simulation, 0, 60 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
