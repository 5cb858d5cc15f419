// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Fuzz target: the watchdog's pure state machine (src/watchdog.c,
 * src/watchdog.h), step by step against a reference model written from the
 * contract that src/watchdog.h and include/stubwatch.h state, not from the
 * code.  Any disagreement aborts with a message.
 *
 * The driver plays the loop's part as the documentation describes it: a
 * timer read feeds its expiration count to sw_wd_tick(), stamps every stub
 * in flight that had no read since its resume (sw_wd_stamp()), then asks
 * sw_wd_expired() of each and feeds SW_WD_EV_EXPIRE to those that are, after
 * an optional starvation credit (sw_wd_credit()), as the loop does before a
 * stall kill.  Other events come straight from the input.
 *
 * Time.  The clock runs in steps of 1/SUB of a timer period P = T/k; the
 * timer expires at every multiple of SUB on one fixed grid.  A read takes
 * every expiration up to now that no read took yet; its lateness is the
 * time since the oldest of them.  So a run of ADVANCE steps without reads
 * is a frozen (or busy) monitor, and its next read finds many expirations.
 *
 * Input: byte 0 picks N (stall_ticks), byte 1 picks k (timer_div); then
 * one opcode byte per step, stub = bits 4-5 (four stubs), op = bits 0-3,
 * some followed by argument bytes:
 *
 *   0 ADV d       advance the clock by d steps (d: 1 byte)
 *   1 ADV4 d      advance by d steps (d: 4 bytes, little-endian)
 *   2 READ        a timer read now (nothing if no expiration is due)
 *   3 RESUME      4 REPORT   5 NOISE   6 BAD   7 KILL   8 DEATH
 *   9 ANSWER      the sw_wd_event of that name, for the stub
 *  10 CREDIT p    sw_wd_credit(p) (p: 1 byte; 0xff: 4 more bytes)
 *  11 SPAWN       a fresh stub in the slot, then RESUME (as a spawn)
 *  12 RAW e       sw_wd_step() with event number e (1 byte, any value;
 *                 EXPIRE only when the stub has expired, as the loop does)
 *  13 READC p     a timer read that credits p periods (1 byte) to each
 *                 stub it finds expired, before the kill
 *  14 ADVREAD d   ADV d then READ
 *  15 ADVREAD2 d  advance by d steps (2 bytes), then READ
 *
 * What the model holds the machine to (src/watchdog.h):
 *   - a read counts its expirations, at most k of them ("a frozen read
 *     counts at most one tick"); what it finds beyond k is dropped;
 *   - the first read after a resume counts nothing for that stub: its
 *     silence is counted from there (a later stamp changes nothing);
 *   - a stub in flight is expired exactly when N*k + 1 periods plus its
 *     credit are counted: never before (never early), and the read that
 *     makes the count kills it (the kill comes by that count);
 *   - in time: a stall kill comes after R + N*T and by
 *     R + (N*k + 2)*P + L_a + L_x + (dropped + credit)*P, with R the
 *     resume, L_a and L_x the lateness of the first and the killing read;
 *   - credit is at most N*k periods per resume, and only for a stub in
 *     flight;
 *   - the state machine: IDLE (reported or never run), RUNNING (in flight),
 *     KILLING (SIGKILL sent), DEAD (reaped), with the transitions and
 *     actions that the event and action comments describe.  An event the
 *     documentation does not give a meaning in a state must change nothing
 *     (SW_WD_NONE or SW_WD_REFUSE); an unknown event number is refused.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stubwatch.h"
#include "watchdog.h"

#define NSTUBS 4
#define SUB    8u /* clock steps per timer period */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the reference model ------------------------------------------------ */

enum ref_state { REF_IDLE, REF_RUNNING, REF_KILLING, REF_DEAD };

struct ref_stub {
	enum ref_state state;
	bool stamped;       /* a read was taken since the resume           */
	uint64_t counted;   /* periods counted since that read             */
	uint64_t dropped;   /* periods reads found beyond k since then     */
	uint64_t credit;    /* starvation credit since the resume          */
	uint64_t resume_t;  /* clock at the resume                         */
	uint64_t late_a;    /* lateness of the first read after it         */
};

struct ref {
	uint64_t n, k, nk;
	uint64_t now;       /* clock, in steps                             */
	uint64_t taken;     /* expirations 1..taken have been read         */
	uint64_t reads, periods, dropped;
	struct ref_stub st[NSTUBS];
};

/* Actions the model accepts for one event, as a bit mask. */
#define A(x) (1u << (x))
#define NOTHING (A(SW_WD_NONE) | A(SW_WD_REFUSE))

static const char *const ev_names[] = {
	[SW_WD_EV_RESUME] = "RESUME", [SW_WD_EV_REPORT] = "REPORT",
	[SW_WD_EV_NOISE] = "NOISE",   [SW_WD_EV_BAD] = "BAD",
	[SW_WD_EV_EXPIRE] = "EXPIRE", [SW_WD_EV_KILL] = "KILL",
	[SW_WD_EV_DEATH] = "DEATH",   [SW_WD_EV_ANSWER] = "ANSWER",
};

static __attribute__((noreturn, format(printf, 1, 2))) void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_watchdog: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

static const char *ev_name(unsigned ev)
{
	return ev < sizeof(ev_names) / sizeof(ev_names[0]) && ev_names[ev]
		       ? ev_names[ev]
		       : "(unknown)";
}

static void ref_start(struct ref *r, struct ref_stub *m)
{
	m->state = REF_RUNNING;
	m->stamped = false;
	m->counted = 0;
	m->dropped = 0;
	m->credit = 0;
	m->resume_t = r->now;
	m->late_a = 0;
}

/*
 * What an event does, from the documentation: the new state and the
 * actions allowed.  An event with no documented meaning in a state leaves
 * it alone.
 */
static unsigned ref_event(struct ref *r, struct ref_stub *m, unsigned ev)
{
	switch (ev) {
	case SW_WD_EV_RESUME:
		/* "monitor resumed it": starts its stall accounting; a stub
		 * already in flight cannot be resumed (-EBUSY). */
		if (m->state == REF_IDLE) {
			ref_start(r, m);
			return A(SW_WD_NONE);
		}
		if (m->state == REF_RUNNING)
			return A(SW_WD_REFUSE);
		return NOTHING; /* dying or dead: the death tells */
	case SW_WD_EV_REPORT:
		/* a valid report completes the wait of a stub in flight */
		if (m->state == REF_RUNNING) {
			m->state = REF_IDLE;
			return A(SW_WD_DONE_REPORT);
		}
		return NOTHING;
	case SW_WD_EV_NOISE:
		/* "an eventfd write without IN_KERN is not progress" */
		return NOTHING;
	case SW_WD_EV_BAD:
		/* "a bad state word is SW_KILL_PROTOCOL" */
		if (m->state == REF_IDLE || m->state == REF_RUNNING) {
			m->state = REF_KILLING;
			return A(SW_WD_KILL_PROTOCOL);
		}
		return NOTHING;
	case SW_WD_EV_EXPIRE:
		if (m->state == REF_RUNNING) {
			m->state = REF_KILLING;
			return A(SW_WD_KILL_STALL);
		}
		return NOTHING;
	case SW_WD_EV_KILL:
		if (m->state == REF_IDLE || m->state == REF_RUNNING) {
			m->state = REF_KILLING;
			return A(SW_WD_KILL_USER);
		}
		return NOTHING; /* already being killed, or dead */
	case SW_WD_EV_DEATH:
		/* died on its own: EXIT; after our SIGKILL: KILL */
		if (m->state == REF_IDLE || m->state == REF_RUNNING) {
			m->state = REF_DEAD;
			return A(SW_WD_DONE_EXIT);
		}
		if (m->state == REF_KILLING) {
			m->state = REF_DEAD;
			return A(SW_WD_DONE_KILL);
		}
		return NOTHING;
	case SW_WD_EV_ANSWER:
		/* its watched fd answers for it while in flight, as a report
		 * does; readiness while not in flight waits */
		if (m->state == REF_RUNNING) {
			m->state = REF_IDLE;
			return A(SW_WD_DONE_ANSWER);
		}
		return NOTHING;
	}
	return A(SW_WD_REFUSE); /* not an event */
}

static bool ref_expired(const struct ref *r, const struct ref_stub *m)
{
	return m->state == REF_RUNNING && m->stamped &&
	       m->counted >= r->nk + 1 + m->credit;
}

static uint64_t ref_credit(const struct ref *r, struct ref_stub *m,
			   uint64_t periods)
{
	uint64_t room;

	if (m->state != REF_RUNNING)
		return 0;
	room = r->nk - m->credit;
	if (periods > room)
		periods = room;
	m->credit += periods;
	return periods;
}

/* ---- the machine under test, and the comparison -------------------------- */

struct run {
	struct ref ref;
	struct sw_wd wd;
	struct sw_wd_stub wds[NSTUBS];
	size_t step;
};

static enum ref_state sut_state(const struct run *t, int i)
{
	switch (t->wds[i].state) {
	case SW_WD_IDLE:
		return REF_IDLE;
	case SW_WD_RUNNING:
		return REF_RUNNING;
	case SW_WD_KILLING:
		return REF_KILLING;
	case SW_WD_DEAD:
		return REF_DEAD;
	}
	fail("step %zu: stub %d: state %u out of range", t->step, i,
	     t->wds[i].state);
}

static void compare(const struct run *t)
{
	const struct ref *r = &t->ref;

	if (t->wd.reads != r->reads || t->wd.periods != r->periods ||
	    t->wd.dropped != r->dropped)
		fail("step %zu: reads/periods/dropped %" PRIu64 "/%" PRIu64
		     "/%" PRIu64 ", model %" PRIu64 "/%" PRIu64 "/%" PRIu64,
		     t->step, t->wd.reads, t->wd.periods, t->wd.dropped,
		     r->reads, r->periods, r->dropped);
	for (int i = 0; i < NSTUBS; i++) {
		const struct ref_stub *m = &r->st[i];
		const struct sw_wd_stub *s = &t->wds[i];

		if (sut_state(t, i) != m->state)
			fail("step %zu: stub %d in state %u, model %d", t->step,
			     i, s->state, (int)m->state);
		if (m->state != REF_RUNNING)
			continue;
		if (s->credit != m->credit || s->credit > r->nk)
			fail("step %zu: stub %d credit %" PRIu64 ", model %" PRIu64
			     " (at most N*k = %" PRIu64 ")",
			     t->step, i, s->credit, m->credit, r->nk);
		if (sw_wd_stamped(s) != m->stamped)
			fail("step %zu: stub %d stamped %d, model %d", t->step, i,
			     sw_wd_stamped(s), m->stamped);
		if (sw_wd_counted(&t->wd, s) != (m->stamped ? m->counted : 0))
			fail("step %zu: stub %d counted %" PRIu64
			     ", model %" PRIu64,
			     t->step, i, sw_wd_counted(&t->wd, s), m->counted);
		if (sw_wd_expired(&t->wd, s) != ref_expired(r, m))
			fail("step %zu: stub %d expired %d, model %d", t->step, i,
			     sw_wd_expired(&t->wd, s), ref_expired(r, m));
	}
}

static void step_event(struct run *t, int i, unsigned ev)
{
	struct ref_stub *m = &t->ref.st[i];
	enum ref_state before = m->state;
	unsigned ok = ref_event(&t->ref, m, ev);
	enum sw_wd_action a = sw_wd_step(&t->wd, &t->wds[i],
					 (enum sw_wd_event)ev);

	if ((unsigned)a >= 32 || !(ok & A(a)))
		fail("step %zu: stub %d: %s (%u) in state %d gave action %d, "
		     "model allows mask %#x",
		     t->step, i, ev_name(ev), ev, (int)before, (int)a, ok);
}

/* The documented time bound of a stall kill, or of a stub still alive
 * after a read at t with lateness late. */
static uint64_t kill_bound(const struct ref *r, const struct ref_stub *m,
			   uint64_t late)
{
	return m->resume_t + (r->nk + 2) * SUB + m->late_a + late +
	       (m->dropped + m->credit) * SUB;
}

static void timer_read(struct run *t, bool credit_on_expiry,
		       uint64_t credit)
{
	struct ref *r = &t->ref;
	uint64_t due = r->now / SUB, e, c, n, oldest, late;

	if (due <= r->taken)
		return; /* the loop reads nothing: no expiration */
	e = due - r->taken;
	oldest = (r->taken + 1) * SUB;
	late = r->now - oldest;
	r->taken = due;
	c = e < r->k ? e : r->k;

	n = sw_wd_tick(&t->wd, e);
	if (n != c || n > r->k)
		fail("step %zu: a read of %" PRIu64 " expirations counted %" PRIu64
		     ", model %" PRIu64 " (at most one tick, k = %" PRIu64 ")",
		     t->step, e, n, c, r->k);
	r->reads++;
	r->periods += c;
	r->dropped += e - c;
	for (int i = 0; i < NSTUBS; i++) {
		struct ref_stub *m = &r->st[i];

		if (m->state != REF_RUNNING)
			continue;
		if (m->stamped) {
			m->counted += c;
			m->dropped += e - c;
		} else {
			/* the first read since the resume: counts nothing */
			sw_wd_stamp(&t->wd, &t->wds[i]);
			m->stamped = true;
			m->late_a = late;
		}
	}
	/* "Once per resume; later calls change nothing." */
	for (int i = 0; i < NSTUBS; i++) {
		struct sw_wd_stub before = t->wds[i];

		sw_wd_stamp(&t->wd, &t->wds[i]);
		if (before.state != t->wds[i].state ||
		    before.base != t->wds[i].base ||
		    before.credit != t->wds[i].credit)
			fail("step %zu: stub %d changed by a second stamp",
			     t->step, i);
	}
	compare(t);

	for (int i = 0; i < NSTUBS; i++) {
		struct ref_stub *m = &r->st[i];
		struct sw_wd_stub *s = &t->wds[i];

		if (!sw_wd_expired(&t->wd, s)) {
			if (ref_expired(r, m))
				fail("step %zu: stub %d reached N*k + 1 + credit "
				     "= %" PRIu64 " counted periods, not expired",
				     t->step, i, r->nk + 1 + m->credit);
			if (m->state == REF_RUNNING && m->stamped &&
			    r->now > kill_bound(r, m, late))
				fail("step %zu: stub %d alive at %" PRIu64
				     ", past its bound %" PRIu64,
				     t->step, i, r->now, kill_bound(r, m, late));
			continue;
		}
		if (!ref_expired(r, m))
			fail("step %zu: stub %d expired at %" PRIu64 " counted "
			     "periods, before N*k + 1 + credit = %" PRIu64,
			     t->step, i, m->counted, r->nk + 1 + m->credit);
		if (credit_on_expiry) {
			uint64_t got = sw_wd_credit(&t->wd, s, credit);
			uint64_t want = ref_credit(r, m, credit);

			if (got != want)
				fail("step %zu: stub %d credited %" PRIu64
				     " of %" PRIu64 ", model %" PRIu64,
				     t->step, i, got, credit, want);
			if (sw_wd_expired(&t->wd, s) != ref_expired(r, m))
				fail("step %zu: stub %d expired %d after its "
				     "credit, model %d",
				     t->step, i, sw_wd_expired(&t->wd, s),
				     ref_expired(r, m));
			if (!ref_expired(r, m))
				continue;
		}
		/* never early, and by the documented bound */
		if (r->now - m->resume_t <= r->nk * SUB)
			fail("step %zu: stub %d killed %" PRIu64 " steps after "
			     "its resume, not after N*T = %" PRIu64,
			     t->step, i, r->now - m->resume_t, r->nk * SUB);
		if (r->now > kill_bound(r, m, late))
			fail("step %zu: stub %d killed at %" PRIu64
			     ", past its bound %" PRIu64,
			     t->step, i, r->now, kill_bound(r, m, late));
		step_event(t, i, SW_WD_EV_EXPIRE);
	}
}

/* ---- input decoding ------------------------------------------------------ */

struct input {
	const uint8_t *p;
	size_t n;
};

/* `len` bytes, little-endian; false at the end of the input. */
static bool take(struct input *in, size_t len, uint64_t *v)
{
	if (in->n < len)
		return false;
	*v = 0;
	for (size_t i = 0; i < len; i++)
		*v |= (uint64_t)in->p[i] << (8 * i);
	in->p += len;
	in->n -= len;
	return true;
}

static uint32_t pick_n(uint8_t b)
{
	return b < 0xf0 ? 1u + b % 6u : SW_STALL_TICKS_MAX >> (b & 0x0f);
}

static uint32_t pick_k(uint8_t b)
{
	return b < 0xf0 ? 2u + b % 15u : SW_TIMER_DIV_MAX >> (b & 0x0f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct run t;
	uint64_t b0, b1, op, v;

	if (!take(&in, 1, &b0) || !take(&in, 1, &b1))
		return 0;
	memset(&t, 0, sizeof(t));
	sw_wd_init(&t.wd, pick_n((uint8_t)b0), pick_k((uint8_t)b1));
	t.ref.n = pick_n((uint8_t)b0);
	t.ref.k = pick_k((uint8_t)b1);
	t.ref.nk = t.ref.n * t.ref.k;
	if (t.wd.limit != t.ref.nk + 1 || t.wd.credit_max != t.ref.nk ||
	    t.wd.div != t.ref.k)
		fail("init N=%" PRIu64 " k=%" PRIu64 ": limit %" PRIu64
		     " credit_max %" PRIu64 " div %u",
		     t.ref.n, t.ref.k, t.wd.limit, t.wd.credit_max, t.wd.div);
	/* Stubs as spawn allocates them (zeroed: IDLE), each spawned once. */
	for (int i = 0; i < NSTUBS; i++)
		step_event(&t, i, SW_WD_EV_RESUME);
	compare(&t);

	while (take(&in, 1, &op)) {
		int i = (int)(op >> 4) & (NSTUBS - 1);

		t.step++;
		switch (op & 0x0f) {
		case 0:
			if (!take(&in, 1, &v))
				return 0;
			t.ref.now += v;
			break;
		case 1:
			if (!take(&in, 4, &v))
				return 0;
			t.ref.now += v;
			break;
		case 2:
			timer_read(&t, false, 0);
			break;
		case 3:
			step_event(&t, i, SW_WD_EV_RESUME);
			break;
		case 4:
			step_event(&t, i, SW_WD_EV_REPORT);
			break;
		case 5:
			step_event(&t, i, SW_WD_EV_NOISE);
			break;
		case 6:
			step_event(&t, i, SW_WD_EV_BAD);
			break;
		case 7:
			step_event(&t, i, SW_WD_EV_KILL);
			break;
		case 8:
			step_event(&t, i, SW_WD_EV_DEATH);
			break;
		case 9:
			step_event(&t, i, SW_WD_EV_ANSWER);
			break;
		case 10: {
			uint64_t got, want;

			if (!take(&in, 1, &v) || (v == 0xff && !take(&in, 4, &v)))
				return 0;
			got = sw_wd_credit(&t.wd, &t.wds[i], v);
			want = ref_credit(&t.ref, &t.ref.st[i], v);
			if (got != want)
				fail("step %zu: stub %d credited %" PRIu64 " of %" PRIu64
				     ", model %" PRIu64,
				     t.step, i, got, v, want);
			break;
		}
		case 11:
			memset(&t.wds[i], 0, sizeof(t.wds[i]));
			memset(&t.ref.st[i], 0, sizeof(t.ref.st[i]));
			step_event(&t, i, SW_WD_EV_RESUME);
			break;
		case 12:
			if (!take(&in, 1, &v))
				return 0;
			if (v == SW_WD_EV_EXPIRE &&
			    !sw_wd_expired(&t.wd, &t.wds[i]))
				break; /* the loop says EXPIRE only when it is */
			step_event(&t, i, (unsigned)v);
			break;
		case 13:
			if (!take(&in, 1, &v))
				return 0;
			timer_read(&t, true, v);
			break;
		case 14:
			if (!take(&in, 1, &v))
				return 0;
			t.ref.now += v;
			timer_read(&t, false, 0);
			break;
		case 15:
			if (!take(&in, 2, &v))
				return 0;
			t.ref.now += v;
			timer_read(&t, false, 0);
			break;
		}
		compare(&t);
	}
	return 0;
}
