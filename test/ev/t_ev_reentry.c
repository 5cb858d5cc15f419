// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Re-entrancy: what each call does from inside a stubwatch callback.
 *
 *   from a stub's callback (dispatched by the glue)   result
 *   sw_stub_resume(this stub)                          0 (and -EBUSY again)
 *   sw_stub_free(this stub / another stub)             NULL: freed
 *   sw_stub_kill(another stub)                         0: its KILL follows
 *   sw_loop_free(loop)                                 refused: returns loop
 *   sw_loop_dispatch(loop)                             -EBUSY
 *   sw_stub_wait(any stub of the loop)                 -EBUSY (-ESRCH for a
 *                                                      stub whose EXIT/KILL
 *                                                      is being delivered)
 *   sw_stub_detach(stub)                               -EBUSY
 *   sw_ev_detach(glue)                                 refused: returns glue
 *
 * The same from the tick callback, and from callbacks that run inside a
 * blocking sw_stub_wait() of another stub (there sw_stub_free() of the
 * waited stub is refused, and a callback's error ends that wait).
 */
#include <signal.h>
#include <sys/wait.h>

#include "t_ev.h"

enum { A, B, C, D, NSTUBS };

struct re {
	struct sw_loop *loop;
	struct sw_ev *glue;
	struct sw_stub *st[NSTUBS];
	unsigned calls[NSTUBS];
	bool a_exited, d_killed, checked;
	bool done;
};

static int idx_of(struct re *re, struct sw_stub *s)
{
	for (int i = 0; i < NSTUBS; i++)
		if (re->st[i] == s)
			return i;
	t_fail(__FILE__, __LINE__, "idx_of", "unknown stub %p", (void *)s);
}

/* What every callback may not do: enter the loop again, free it, detach.
 * Waiting on a stub whose EXIT or KILL was delivered (or is being
 * delivered, as `ended`'s) gives -ESRCH, checked before -EBUSY. */
static void check_refusals(struct re *re, struct sw_stub *ended)
{
	struct sw_event ev = { 0 };

	T_EQ(sw_loop_dispatch(re->loop), -EBUSY);
	if (ended)
		T_EQ(sw_stub_pid(ended), -ESRCH);
	for (int i = 0; i < NSTUBS; i++)
		if (re->st[i])
			T_EQ(sw_stub_wait(re->st[i], &ev),
			     sw_stub_pid(re->st[i]) == -ESRCH ? -ESRCH : -EBUSY);
	T_ASSERT(sw_loop_free(re->loop) == re->loop, "sw_loop_free not refused");
	if (re->glue)
		T_ASSERT(sw_ev_detach(re->glue) == re->glue,
			 "sw_ev_detach not refused");
}

static void check_done(struct re *re)
{
	re->done = re->a_exited && re->d_killed;
}

static int on_event(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct re *re = ud;
	int i = idx_of(re, s);

	re->calls[i]++;
	switch (i) {
	case A:
		if (ev->type == SW_EV_REPORT) {
			T_EQ(re->calls[A], 1);
			check_refusals(re, NULL);
			T_EQ(sw_stub_detach(s), -EBUSY);
			/* Free another stub, whose completion may be queued
			 * behind this one: its callback never runs. */
			T_ASSERT(sw_stub_free(re->st[C]) == NULL, "free C");
			re->st[C] = NULL;
			T_EQ(sw_stub_kill(re->st[D], SW_KILL_USER), 0);
			T_EQ(sw_stub_kill(re->st[D], SW_KILL_USER), -ESRCH);
			t_cmd(s, T_CMD_EXIT, 3);
			T_EQ(sw_stub_resume(s), 0);
			T_EQ(sw_stub_resume(s), -EBUSY);
			re->checked = true;
		} else {
			T_EQ(ev->type, SW_EV_EXIT);
			T_ASSERT(WIFEXITED(ev->status) &&
					 WEXITSTATUS(ev->status) == 3,
				 "status %#x", ev->status);
			re->a_exited = true;
			/* Its end is being delivered: -ESRCH comes first. */
			T_EQ(sw_stub_wait(s, &(struct sw_event){ 0 }), -ESRCH);
			T_EQ(sw_stub_resume(s), -ESRCH);
			check_refusals(re, s);
			T_ASSERT(sw_stub_free(s) == NULL, "free A in its callback");
			re->st[A] = NULL;
		}
		break;
	case B:
		/* Free itself from its own report callback. */
		T_EQ(ev->type, SW_EV_REPORT);
		check_refusals(re, NULL);
		T_ASSERT(sw_stub_free(s) == NULL, "free B in its callback");
		re->st[B] = NULL;
		break;
	case C:
		/* Only if it came before A's: then A frees a reported stub. */
		T_EQ(ev->type, SW_EV_REPORT);
		T_ASSERT(!re->checked, "C's callback ran after C was freed");
		break;
	case D:
		if (ev->type == SW_EV_REPORT)
			break;
		T_EQ(ev->type, SW_EV_KILL);
		T_EQ(ev->kill.reason, SW_KILL_USER);
		T_ASSERT(WIFSIGNALED(ev->status) && WTERMSIG(ev->status) == SIGKILL,
			 "status %#x", ev->status);
		check_refusals(re, s);
		re->d_killed = true;
		break;
	}
	check_done(re);
	return 0;
}

static int case_glue(void *arg)
{
	struct ev_loop *evl = t_evloop((enum t_evkind)(intptr_t)arg);
	struct re re = { .loop = t_loop(T_TICK_NS, T_STALL, 0) };
	int i;

	for (i = 0; i < NSTUBS; i++) {
		re.st[i] = t_spawn_ok(re.loop);
		T_EQ(sw_stub_set_callback(re.st[i], on_event, &re), 0);
	}
	/* All four hellos made: one dispatch delivers them all, A's first
	 * when A reported first. */
	for (i = 0; i < NSTUBS; i++)
		t_wait_reported(re.st[i], 2000);
	T_EQ(sw_ev_attach(re.loop, evl, &re.glue), 0);
	T_ASSERT(t_ev_run_until(evl, &re.done, 3000),
		 "calls A %u B %u C %u D %u", re.calls[A], re.calls[B],
		 re.calls[C], re.calls[D]);
	T_EQ(re.calls[B], 1);
	T_EQ(re.calls[A], 2);
	T_EQ(sw_ev_take_error(re.glue), 0);
	/* A, B and C freed from callbacks; D is left, killed and reaped. */
	T_EQ(sw_loop_count_stubs(re.loop), 1);
	T_EQ(sw_loop_count_in_flight(re.loop), 0);
	T_ASSERT(sw_ev_detach(re.glue) == NULL, "detach after ev_run");
	T_ASSERT(sw_loop_free(re.loop) == NULL, "loop free after ev_run");
	t_evloop_free(evl);
	return T_PASS;
}

/* The tick callback: the same refusals.  The stub is slow, not stalled. */
struct tick {
	struct re re;
	unsigned ticks;
	bool reported;
};

static int on_tick(struct sw_loop *loop, void *ud)
{
	struct tick *t = ud;

	T_ASSERT(loop == t->re.loop, "tick loop");
	if (t->ticks++ == 0)
		check_refusals(&t->re, NULL);
	return 0;
}

static int on_slow(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct tick *t = ud;

	(void)s;
	T_EQ(ev->type, SW_EV_REPORT);
	if (t->re.calls[A]++ == 0) {
		t_cmd(s, T_CMD_SLEEP, 120 * 1000);
		T_EQ(sw_stub_resume(s), 0);
	} else {
		t->reported = true;
	}
	return 0;
}

static int case_tick(void *arg)
{
	struct ev_loop *evl = t_evloop((enum t_evkind)(intptr_t)arg);
	struct tick t = { .re.loop = t_loop(T_TICK_NS, T_STALL,
					    SW_LOOP_TICK_EVENTS) };

	t.re.st[A] = t_spawn_ok(t.re.loop);
	T_EQ(sw_stub_set_callback(t.re.st[A], on_slow, &t), 0);
	T_EQ(sw_loop_set_tick_callback(t.re.loop, on_tick, &t), 0);
	T_EQ(sw_ev_attach(t.re.loop, evl, &t.re.glue), 0);
	T_ASSERT(t_ev_run_until(evl, &t.reported, 3000), "no second report");
	T_ASSERT(t.ticks >= 3, "%u ticks in 120 ms of 25 ms timer periods",
		 t.ticks);
	T_ASSERT(sw_ev_detach(t.re.glue) == NULL, "detach");
	T_ASSERT(sw_loop_free(t.re.loop) == NULL, "loop free");
	t_evloop_free(evl);
	return T_PASS;
}

/* Callbacks that run inside a blocking sw_stub_wait() of another stub. */
struct inwait {
	struct re re;
	int ret; /* what B's callback returns */
	unsigned b_calls;
	bool b_freed;
};

static int on_b_in_wait(struct sw_stub *s, const struct sw_event *ev,
			void *ud)
{
	struct inwait *w = ud;

	w->b_calls++;
	check_refusals(&w->re, ev->type == SW_EV_REPORT ? NULL : s);
	/* A is the target of the running wait: its free is refused. */
	T_ASSERT(sw_stub_free(w->re.st[A]) == w->re.st[A], "free A not refused");
	T_EQ(sw_stub_detach(s), -EBUSY);
	if (ev->type == SW_EV_REPORT) {
		t_cmd(s, T_CMD_EXIT, 4);
		T_EQ(sw_stub_resume(s), 0);
	} else {
		T_EQ(ev->type, SW_EV_EXIT);
		T_ASSERT(WIFEXITED(ev->status) && WEXITSTATUS(ev->status) == 4,
			 "status %#x", ev->status);
		T_ASSERT(sw_stub_free(s) == NULL, "free B");
		w->re.st[B] = NULL;
		w->b_freed = true;
	}
	return w->ret;
}

static int case_in_wait(void *arg)
{
	struct inwait w = { .re.loop = t_loop(T_TICK_NS, T_STALL, 0) };
	struct sw_event ev = { 0 };
	struct sw_stub *a;

	(void)arg;
	a = w.re.st[A] = t_spawn_ok(w.re.loop);
	w.re.st[B] = t_spawn_ok(w.re.loop);
	T_EQ(sw_stub_set_callback(w.re.st[B], on_b_in_wait, &w), 0);
	t_wait_reported(a, 2000);
	t_wait_reported(w.re.st[B], 2000);

	/* One poll sees both hellos: B's callback runs inside A's wait. */
	T_EQ(sw_stub_wait(a, &ev), SW_EV_REPORT);
	T_EQ(w.b_calls, 1);

	/* B exits during A's next wait; its callback frees it there. */
	t_cmd(a, T_CMD_SLEEP, 100 * 1000);
	T_EQ(sw_stub_run(a, &ev), SW_EV_REPORT);
	T_EQ(w.b_calls, 2);
	T_ASSERT(w.b_freed, "B not freed");
	T_EQ(sw_loop_count_stubs(w.re.loop), 1);

	/* A callback's error ends the wait it runs in: the wait returns the
	 * error, and the waited stub stays in flight for the next wait. */
	w.re.st[B] = t_spawn_ok(w.re.loop);
	T_EQ(sw_stub_set_callback(w.re.st[B], on_b_in_wait, &w), 0);
	w.ret = -EPIPE;
	t_cmd(a, T_CMD_SLEEP, 150 * 1000);
	T_EQ(sw_stub_run(a, &ev), -EPIPE);
	T_EQ(sw_loop_count_in_flight(w.re.loop), 2); /* a, and b exiting */
	w.ret = 0;
	T_EQ(sw_stub_wait(a, &ev), SW_EV_REPORT);
	T_ASSERT(sw_loop_free(w.re.loop) == NULL, "loop free");
	return T_PASS;
}

/* Respawn from the kill callback, the natural supervisor pattern.  The
 * header lists -EBUSY for sw_stub_spawn() from inside a callback, but the
 * core allows it and it is safe (the new stub joins the epoll set between
 * two polls); this case pins the behaviour the report proposes to document. */
struct respawn {
	struct sw_loop *loop;
	struct sw_stub *first, *second;
	unsigned first_reports;
	bool killed, second_hello;
};

static int on_respawn(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct respawn *r = ud;

	if (s == r->second) {
		T_EQ(ev->type, SW_EV_REPORT);
		r->second_hello = true;
		return 0;
	}
	if (ev->type == SW_EV_REPORT) {
		T_EQ(++r->first_reports, 1);
		t_cmd(s, T_CMD_STALL, 0);
		T_EQ(sw_stub_resume(s), 0);
		return 0;
	}
	T_EQ(ev->type, SW_EV_KILL);
	T_EQ(ev->kill.reason, SW_KILL_STALL);
	r->killed = true;
	T_ASSERT(sw_stub_free(s) == NULL, "free the dead one");
	r->first = NULL;
	T_EQ(t_spawn(r->loop, &r->second), 0);
	T_EQ(sw_stub_set_callback(r->second, on_respawn, r), 0);
	return 0;
}

static int case_respawn(void *arg)
{
	struct ev_loop *evl = t_evloop((enum t_evkind)(intptr_t)arg);
	struct respawn r = { .loop = t_loop(T_TICK_NS, T_STALL, 0) };
	struct sw_ev *g;

	r.first = t_spawn_ok(r.loop);
	T_EQ(sw_stub_set_callback(r.first, on_respawn, &r), 0);
	T_EQ(sw_ev_attach(r.loop, evl, &g), 0);
	T_ASSERT(t_ev_run_until(evl, &r.second_hello, 3000),
		 "killed %d, respawned %d", r.killed, r.second != NULL);
	T_EQ(sw_loop_count_stubs(r.loop), 1);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_loop_free(r.loop) == NULL, "loop free");
	t_evloop_free(evl);
	return T_PASS;
}

#define BOTH(name, fn, ms)                                                  \
	{ name " (ev_default_loop)", fn, (void *)(intptr_t)T_EV_DEFAULT, ms }, \
	{ name " (ev_loop_new)", fn, (void *)(intptr_t)T_EV_NEW, ms }

int main(void)
{
	static const struct t_case cases[] = {
		BOTH("stub callbacks: resume, free, kill work; loop free, "
		     "dispatch, wait, detach refused",
		     case_glue, 5000),
		BOTH("tick callback: the same refusals", case_tick, 5000),
		BOTH("kill callback: free the dead stub, spawn a new one",
		     case_respawn, 5000),
		{ "callbacks inside a blocking sw_stub_wait(): the waited stub "
		  "cannot be freed, an error ends the wait",
		  case_in_wait, NULL, 20000 },
	};

	return t_run("t_ev_reentry", cases, sizeof(cases) / sizeof(cases[0]));
}
