/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The embedding driver: the loop's fd in a host poll loop plus
 * sw_loop_dispatch() and callbacks; an idle loop that does not wake its
 * host; SW_LOOP_TICK_EVENTS for preemption from the same timer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "t_util.h"

#define NT ((uint64_t)T_STALL * T_TICK_NS)

/* Poll the loop's fd like a host main loop would, then dispatch. */
static int host_iteration(struct sw_loop *loop, int timeout_ms)
{
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	int rc = poll(&pfd, 1, timeout_ms);

	t_assert(rc >= 0);
	if (rc == 0)
		return 0;
	rc = sw_loop_dispatch(loop);
	t_assert_msg(rc >= 0, "sw_loop_dispatch: %s", t_errname(rc));
	return rc;
}

struct seen {
	unsigned calls;
	struct sw_event ev;
	struct sw_stub *stub;
};

static int record(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct seen *s = ud;

	t_assert(sw_stub_get_userdata(stub) == ud);
	s->calls++;
	s->ev = *ev;
	s->stub = stub;
	return 0;
}

static void case_callbacks(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct seen rep = { 0 }, ex = { 0 }, kil = { 0 };
	struct sw_stub *r = t_spawn(loop, mode, "echo", 0);
	struct sw_stub *e = t_spawn(loop, mode, "exit", 5);
	struct sw_stub *k = t_spawn(loop, mode, "stall", T_STALL_FUTEX);
	uint64_t end = t_now_ns() + 2000 * T_MS;
	int total = 0;

	t_assert_rc(sw_stub_set_callback(r, record, &rep), 0);
	t_assert_rc(sw_stub_set_callback(e, record, &ex), 0);
	t_assert_rc(sw_stub_set_callback(k, record, &kil), 0);
	while (rep.calls + ex.calls + kil.calls < 3) {
		total += host_iteration(loop, 1000);
		t_assert(t_now_ns() < end);
	}
	/* the return values count the callbacks */
	t_assert_eq(total, 3);
	t_assert_eq(rep.calls, 1);
	t_assert(rep.stub == r);
	t_assert_eq(rep.ev.type, SW_EV_REPORT);
	t_assert_eq(ex.ev.type, SW_EV_EXIT);
	t_assert(WIFEXITED(ex.ev.status) && WEXITSTATUS(ex.ev.status) == 5);
	t_assert_eq(kil.ev.type, SW_EV_KILL);
	t_assert_eq(kil.ev.kill.reason, SW_KILL_STALL);
	/* delivered through callbacks: nothing is pending for a wait */
	t_assert_rc(sw_stub_wait(r, &rep.ev), -EALREADY);

	/* a round trip driven by the host loop */
	t_pl(r)->req = 41;
	t_assert_rc(sw_stub_resume(r), 0);
	while (rep.calls < 2) {
		host_iteration(loop, 1000);
		t_assert(t_now_ns() < end);
	}
	t_assert_eq(rep.ev.type, SW_EV_REPORT);
	t_assert_eq(t_pl(r)->ack, 42);
	t_assert(sw_stub_free(e) == NULL);
	t_assert(sw_stub_free(k) == NULL);
	t_assert_rc(sw_stub_set_callback(r, NULL, NULL), 0);
	t_stop(r);
	t_assert(sw_loop_free(loop) == NULL);
}

/* Without a callback the result stays pending for sw_stub_wait(). */
static void case_pending(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn(loop, mode, "echo", 0);
	struct sw_event ev;
	uint64_t end = t_now_ns() + 1000 * T_MS;

	while (sw_stub_page(stub)->state != SW_STATE_IN_KERN)
		t_assert(t_now_ns() < end);
	t_assert_rc(host_iteration(loop, 1000), 0); /* no callback ran */
	t_assert_rc(sw_loop_count_in_flight(loop), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

/* "The timer is disarmed after a read that finds nothing in flight, so an
 * idle loop does not wake its host." */
static void case_idle_is_quiet(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	unsigned wakes = 0;

	t_echo(stub, 10);
	/* at most a read or two still pending from the last round trips */
	while (poll(&pfd, 1, (int)(2 * T_TICK_NS / T_MS)) == 1) {
		t_assert(sw_loop_dispatch(loop) >= 0);
		t_assert_msg(++wakes <= 3, "an idle loop keeps waking its host");
	}
	/* and then nothing for a long while */
	t_assert_rc(poll(&pfd, 1, (int)(3 * NT / T_MS)), 0);
	t_note("%u wake(s) after the stub went idle", wakes);
	t_echo(stub, 10);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

/* SW_LOOP_TICK_EVENTS: the wait returns a TICK per timer read while the
 * stub is in flight; waiting again goes on, and the watchdog still kills. */
static void case_tick_events(intptr_t mode)
{
	struct sw_loop *loop = t_loop_opts(T_TICK_NS, T_STALL, 2,
					   SW_LOOP_TICK_EVENTS);
	struct sw_stub *stub = t_spawn(loop, mode, "echo", 0);
	struct sw_loop_stats st = { .size = sizeof(st) };
	const uint64_t period = T_TICK_NS / 2;
	struct sw_event ev;
	unsigned ticks = 0, most, fewest;
	uint64_t t0, t1, t2;
	int rc;

	while ((rc = sw_stub_wait(stub, &ev)) == SW_EV_TICK)
		;
	t_assert_rc(rc, SW_EV_REPORT);

	t_pl(stub)->arg = T_STALL_FUTEX;
	t_pl(stub)->req = T_REQ_STALL;
	t_assert_rc(sw_loop_get_stats(loop, &st, 1), 0);
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	while ((rc = sw_stub_wait(stub, &ev)) == SW_EV_TICK) {
		ticks++;
		t_assert_rc(sw_loop_count_in_flight(loop), 1);
		t_assert(ticks < 100);
	}
	t2 = t_now_ns();
	t_assert_rc(rc, SW_EV_KILL);
	t_assert_eq(ev.kill.reason, SW_KILL_STALL);
	t_assert_rc(sw_loop_get_stats(loop, &st, 0), 0);
	/* One TICK per read: the reads before the killing one, at least.
	 * The kill needs N*k + 1 = 2N + 1 counted periods after the first
	 * read; a read counts the periods that elapsed, so a monitor late by
	 * L at most counts up to L/P + 1 of them in one read (the loop's own
	 * worst, max_late_ns), and needs that many fewer reads. */
	most = (unsigned)(st.max_late_ns / period) + 1;
	fewest = (T_STALL * 2 + 1 + most - 1) / most - 1;
	t_note("%u TICK events, killed after %.2f..%.2f ms; a read counted "
	       "at most %u periods (the monitor late %.2f ms at worst)", ticks,
	       (double)(t2 - t1) / 1e6, (double)(t2 - t0) / 1e6, most,
	       (double)st.max_late_ns / 1e6);
	t_assert_msg(ticks >= fewest && ticks <= T_STALL * 2 + 2,
		     "%u TICK events, expected %u..%u", ticks, fewest,
		     T_STALL * 2 + 2);
	t_assert_kill_window("with TICK events", loop, t0, t1, &ev.kill);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

/* The UML pattern: the monitor preempts a CPU-bound stub with SIGALRM on
 * each TICK; the stub's handler reports.  It keeps running far longer than
 * N*T and is never killed. */
static void case_tick_preempt(intptr_t mode)
{
	struct sw_loop *loop = t_loop_opts(T_TICK_NS, T_STALL, 2,
					   SW_LOOP_TICK_EVENTS);
	struct sw_stub *stub = t_spawn(loop, mode, "alarm", 0);
	pid_t pid = sw_stub_pid(stub);
	uint64_t end = t_now_ns() + 5 * NT;
	unsigned ticks = 0, reports = 0;
	struct sw_event ev;
	int rc;

	while ((rc = sw_stub_wait(stub, &ev)) == SW_EV_TICK)
		;
	t_assert_rc(rc, SW_EV_REPORT); /* ready */
	while (t_now_ns() < end) {
		t_assert_rc(sw_stub_resume(stub), 0);
		while ((rc = sw_stub_wait(stub, &ev)) == SW_EV_TICK) {
			ticks++;
			t_assert(kill(pid, SIGALRM) == 0);
		}
		if (rc != SW_EV_REPORT)
			t_note_event(rc, &ev);
		t_assert_rc(rc, SW_EV_REPORT);
		reports++;
	}
	t_note("%u ticks, %u preemptions in %.0f ms", ticks, reports,
	       (double)(5 * NT) / 1e6);
	t_assert(reports >= 10);
	t_assert_eq(t_pl(stub)->ack, reports);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

/* A host that calls sw_loop_prepare() before it sleeps: an echo stub
 * resumed from its report callback, 3,000 round trips checked one by one,
 * while a second stub stalls and is still killed on time. */
struct pingpong {
	unsigned long rounds, target;
	int other;
};

static int on_pingpong(struct sw_stub *stub, const struct sw_event *ev,
		       void *ud)
{
	struct pingpong *pp = ud;

	t_assert_eq(ev->type, SW_EV_REPORT);
	t_assert_eq(t_pl(stub)->ack, pp->rounds + 2); /* req k+1, ack k+2 */
	if (++pp->rounds == pp->target)
		return 0;
	t_pl(stub)->req = pp->rounds + 1;
	t_assert_rc(sw_loop_prepare(sw_stub_loop(stub)), -EBUSY);
	return sw_stub_resume(stub);
}

static void case_prepare(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed();
	struct sw_stub *echo = t_spawn_echo(loop, mode);
	struct sw_stub *k = t_spawn(loop, mode, "stall", T_STALL_FUTEX);
	struct pingpong pp = { .rounds = 0, .target = 3000 };
	struct seen kil = { 0 };
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	uint64_t t0 = t_now_ns(), end = t0 + 10000 * T_MS;

	t_assert_rc(sw_loop_prepare(NULL), -EINVAL);
	t_assert_rc(sw_stub_set_callback(echo, on_pingpong, &pp), 0);
	t_assert_rc(sw_stub_set_callback(k, record, &kil), 0);
	t_pl(echo)->req = 1;
	t_assert_rc(sw_stub_resume(echo), 0);
	while (pp.rounds < pp.target || !kil.calls) {
		int rc = sw_loop_prepare(loop);

		t_assert_msg(rc >= 0, "sw_loop_prepare: %s", t_errname(rc));
		/* after a prepare the host may block: nothing is lost */
		rc = poll(&pfd, 1, rc > 0 ? 0 : 1000);
		t_assert(rc >= 0);
		if (rc > 0)
			t_assert(sw_loop_dispatch(loop) >= 0);
		t_assert(t_now_ns() < end);
	}
	t_assert_eq(pp.rounds, pp.target);
	t_assert_eq(kil.ev.type, SW_EV_KILL);
	t_assert_eq(kil.ev.kill.reason, SW_KILL_STALL);
	t_assert(sw_stub_free(k) == NULL);
	/* the stub still answers, through a blocking wait too */
	t_echo(echo, 3);
	t_stop(echo);
	t_assert(sw_loop_free(loop) == NULL);
}

/* A host that prepares, then blocks in a wait on another stub instead:
 * the stubs its callbacks resumed quietly must still be able to wake the
 * monitor, so B keeps making round trips during A's 300 ms answer. */
struct counter {
	unsigned long rounds;
};

static int on_count(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct counter *c = ud;

	t_assert_eq(ev->type, SW_EV_REPORT);
	c->rounds++;
	t_pl(stub)->req = c->rounds + 1;
	return sw_stub_resume(stub);
}

static void case_prepare_then_wait(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *a = t_spawn_echo(loop, mode);
	struct sw_stub *b = t_spawn_echo(loop, mode);
	struct counter c = { 0 };
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	struct sw_event ev;
	unsigned long before;

	t_assert_rc(sw_stub_set_callback(b, on_count, &c), 0);
	t_assert(sw_loop_prepare(loop) >= 0);
	t_pl(b)->req = 1;
	t_assert_rc(sw_stub_resume(b), 0);
	/* host iterations, poll and dispatch, until B's report has come and
	 * its callback resumed it quietly (a timer read may come first: a
	 * stub the host runs late answers after a period) */
	while (!c.rounds) {
		t_assert(poll(&pfd, 1, -1) == 1);
		t_assert(sw_loop_dispatch(loop) >= 0);
	}
	/* now the host blocks in a wait on A instead of preparing */
	before = c.rounds;
	t_pl(a)->delay_ns = 300 * T_MS;
	t_assert_rc(t_request(a, 7, &ev), SW_EV_REPORT);
	t_note("B: %lu round trips during A's 300 ms", c.rounds - before);
	t_assert(c.rounds - before > 20);
	t_assert_rc(sw_stub_set_callback(b, NULL, NULL), 0);
	t_assert(sw_stub_free(b) == NULL);
	t_pl(a)->delay_ns = 0;
	t_echo(a, 3);
	t_stop(a);
	t_assert(sw_loop_free(loop) == NULL);
}

/* The same host, when B has already reported by the time the wait on A
 * begins (quietly, so with no eventfd write): the wait's own announcement
 * finds that report, and B's callback must run then, not when some later
 * event wakes the wait.  A never answers and the timer's period is 12.5 s,
 * so only B's callback, which kills A, ends the wait.  (A stalls before
 * its first report: it is in flight from its spawn.) */
struct killer {
	struct sw_stub *victim;
	unsigned calls;
};

static int on_kill_other(struct sw_stub *stub, const struct sw_event *ev,
			 void *ud)
{
	struct killer *k = ud;

	t_assert_eq(ev->type, SW_EV_REPORT);
	if (++k->calls == 1) {
		t_pl(stub)->req = 2;
		return sw_stub_resume(stub); /* quietly: a host that prepares */
	}
	return sw_stub_kill(k->victim, SW_KILL_USER);
}

static void case_prepare_reported_then_wait(intptr_t mode)
{
	struct sw_loop *loop = t_loop_opts(100000 * T_MS, T_STALL, 8, 0);
	struct sw_stub *a = t_spawn(loop, mode, "stall", T_STALL_FUTEX);
	struct sw_stub *b = t_spawn_echo(loop, mode);
	struct killer k = { .victim = a };
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	struct sw_event ev;

	t_assert_rc(sw_stub_set_callback(b, on_kill_other, &k), 0);
	t_assert(sw_loop_prepare(loop) >= 0);
	t_pl(b)->req = 1;
	t_assert_rc(sw_stub_resume(b), 0);
	while (!k.calls) {
		t_assert(poll(&pfd, 1, -1) == 1);
		t_assert(sw_loop_dispatch(loop) >= 0);
	}
	/* B was resumed quietly from its callback: wait for its report to
	 * reach the state word, then block in a wait on A instead of
	 * preparing */
	while (__atomic_load_n(&sw_stub_page(b)->state, __ATOMIC_ACQUIRE) !=
	       SW_STATE_IN_KERN)
		t_sleep_ns(T_MS);
	t_assert_rc(sw_stub_wait(a, &ev), SW_EV_KILL);
	t_assert_eq(ev.kill.reason, SW_KILL_USER);
	t_assert_eq(k.calls, 2);
	t_assert(sw_stub_free(a) == NULL);
	t_assert_rc(sw_stub_set_callback(b, NULL, NULL), 0);
	t_stop(b);
	t_assert(sw_loop_free(loop) == NULL);
}

/* A host that prepares and then sleeps in its poll, woken by a report that
 * comes after the announcement (the stub answers 2 ms after its resume):
 * the dispatch serves it from the state word, before its epoll_wait (the
 * callback still finds the loop's fd readable), and the eventfd event that
 * woke the host, stale by then, is taken in the same dispatch, so it does
 * not wake the host once more for nothing. */
struct announced {
	struct pingpong pp;
	unsigned ticks;
	int fd;            /* the loop's */
	unsigned unpolled; /* reports whose callback ran before the poll */
};

static int on_announced(struct sw_stub *stub, const struct sw_event *ev,
			void *ud)
{
	struct announced *a = ud;
	struct pollfd pfd = { .fd = a->fd, .events = POLLIN };

	/* Served from the state word, before the dispatch's epoll_wait: the
	 * event that woke the host is still in the epoll set. */
	if (poll(&pfd, 1, 0) == 1)
		a->unpolled++;
	return on_pingpong(stub, ev, &a->pp);
}

static int on_tick_count(struct sw_loop *loop, void *ud)
{
	struct announced *a = ud;

	(void)loop;
	a->ticks++;
	return 0;
}

static void case_announced(intptr_t mode)
{
	struct sw_loop *loop = t_loop_opts(T_FTICK_NS, T_STALL, 0,
					   SW_LOOP_TICK_EVENTS);
	struct sw_stub *echo = t_spawn(loop, mode, "echo", 0);
	struct announced a = { .pp = { .rounds = 0, .target = 100 } };
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	unsigned wakes = 0, empty = 0;
	bool ready = false;
	struct sw_event ev;
	int rc;
	uint64_t end = t_now_ns() + 5000 * T_MS;

	/* the hello: with tick events, the wait may return ticks first */
	while ((rc = sw_stub_wait(echo, &ev)) == SW_EV_TICK)
		;
	t_assert_rc(rc, SW_EV_REPORT);
	t_assert_rc(sw_loop_set_tick_callback(loop, on_tick_count, &a), 0);
	a.fd = pfd.fd;
	t_assert_rc(sw_stub_set_callback(echo, on_announced, &a), 0);
	t_pl(echo)->delay_ns = 2 * T_MS;
	t_pl(echo)->req = 1;
	t_assert_rc(sw_stub_resume(echo), 0);
	while (a.pp.rounds < a.pp.target) {
		unsigned ticks = a.ticks;

		rc = sw_loop_prepare(loop);
		t_assert_msg(rc >= 0, "sw_loop_prepare: %s", t_errname(rc));
		if (rc > 0) {
			/* served before the sleep (a slow monitor): the
			 * report may have written the eventfd too */
			ready = true;
			continue;
		}
		t_assert_eq(poll(&pfd, 1, 1000), 1);
		wakes++;
		rc = sw_loop_dispatch(loop);
		t_assert_msg(rc >= 0, "sw_loop_dispatch: %s", t_errname(rc));
		if (rc == 0 && a.ticks == ticks && !ready)
			empty++; /* woken for neither a report nor a tick */
		ready = false;
		t_assert(t_now_ns() < end);
	}
	t_note("%u wakes for %lu round trips, %u ticks, %u empty, %u served "
	       "before the poll", wakes, a.pp.rounds, a.ticks, empty,
	       a.unpolled);
	/* (A prepare may serve one when the monitor is slow, and a wake by
	 * the timer may race a report.) */
	t_assert(a.unpolled + 5 >= a.pp.rounds);
	/* One wake per report, plus the timer's: a stale event left in the
	 * epoll set would make an empty wake per round trip.  (One may come
	 * from a timer expiry racing a dispatch's harvest.) */
	t_assert(empty <= 1);
	/* stop it: with tick events, a wait may return a tick first */
	t_assert_rc(sw_stub_set_callback(echo, NULL, NULL), 0);
	t_pl(echo)->delay_ns = 0;
	t_pl(echo)->req = T_REQ_STOP;
	t_assert_rc(sw_stub_resume(echo), 0);
	while ((rc = sw_stub_wait(echo, &ev)) == SW_EV_TICK)
		;
	if (rc != SW_EV_EXIT)
		t_note_event(rc, &ev);
	t_assert_rc(rc, SW_EV_EXIT);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 0);
	t_assert(sw_stub_free(echo) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static const struct t_case cases[] = {
	{ "callbacks/fn", case_callbacks, T_FN, 0 },
	{ "callbacks/exec", case_callbacks, T_EXEC, 0 },
	{ "pending/fn", case_pending, T_FN, 0 },
	{ "idle_is_quiet/fn", case_idle_is_quiet, T_FN, 0 },
	{ "tick_events/fn", case_tick_events, T_FN, 0 },
	{ "tick_events/exec", case_tick_events, T_EXEC, 0 },
	{ "tick_preempt/fn", case_tick_preempt, T_FN, 0 },
	{ "tick_preempt/exec", case_tick_preempt, T_EXEC, 0 },
	{ "prepare/fn", case_prepare, T_FN, 0 },
	{ "prepare/exec", case_prepare, T_EXEC, 0 },
	{ "prepare_then_wait/fn", case_prepare_then_wait, T_FN, 0 },
	{ "prepare_then_wait/exec", case_prepare_then_wait, T_EXEC, 0 },
	{ "prepare_reported_then_wait/fn", case_prepare_reported_then_wait, T_FN, 0 },
	{ "prepare_reported_then_wait/exec", case_prepare_reported_then_wait, T_EXEC, 0 },
	{ "announced/fn", case_announced, T_FN, 0 },
	{ "announced/exec", case_announced, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
