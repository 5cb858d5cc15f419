// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The blocking wait and the embedded dispatch are two drivers of one core:
 * the same scenario run through sw_stub_run() (with and without
 * SW_LOOP_ADAPTIVE_POLL) and through callbacks under libev (ev_default_loop
 * and ev_loop_new) gives the same results: the same
 * reports, the same end (exit status; kill reason, state word, stall ticks,
 * SIGALRM mask), a stall killed within the same window, and a slow stub that
 * answers inside the limit killed by neither.
 */
#include <signal.h>
#include <sys/wait.h>

#include "t_ev.h"

struct scenario {
	unsigned echoes;        /* handshakes after the hello              */
	uint32_t echo_sleep_us; /* how long each takes                     */
	enum t_cmd last;        /* then this command...                    */
	uint32_t last_arg;
	bool user_kill;         /* ...or sw_stub_kill(SW_KILL_USER)         */
};

struct outcome {
	unsigned reports;
	struct sw_event end;
	uint64_t t_before, t_after; /* around the last resume (or kill) */
};

enum driver { D_BLOCKING, D_BLOCKING_POLL, D_EV_DEFAULT, D_EV_NEW, NDRIVERS };
static const char *const driver_name[NDRIVERS] = {
	"blocking sw_stub_run", "blocking, adaptive poll",
	"ev_default_loop dispatch", "ev_loop_new dispatch"
};

/* After `reports` reports, move the stub on: echo, or the last step; note
 * when the step began and ended. */
static void step(const struct scenario *sc, struct sw_stub *s,
		 unsigned reports, struct outcome *o)
{
	o->t_before = t_now_ns();
	if (reports <= sc->echoes) {
		t_cmd(s, sc->echo_sleep_us ? T_CMD_SLEEP : T_CMD_ECHO,
		      sc->echo_sleep_us);
		T_EQ(sw_stub_resume(s), 0);
	} else if (sc->user_kill) {
		T_EQ(sw_stub_kill(s, SW_KILL_USER), 0);
	} else {
		t_cmd(s, sc->last, sc->last_arg);
		T_EQ(sw_stub_resume(s), 0);
	}
	o->t_after = t_now_ns();
}

static void run_blocking(const struct scenario *sc, struct outcome *o,
			 unsigned flags)
{
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, flags);
	struct sw_stub *s;
	int r;

	o->t_before = t_now_ns();
	s = t_spawn_ok(loop);
	o->t_after = t_now_ns();
	while ((r = sw_stub_wait(s, &o->end)) == SW_EV_REPORT) {
		o->reports++;
		step(sc, s, o->reports, o);
	}
	T_EQ(r, o->end.type);
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
}

struct emb {
	const struct scenario *sc;
	struct outcome *o;
	bool done;
};

static int on_event(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct emb *e = ud;

	if (ev->type == SW_EV_REPORT) {
		e->o->reports++;
		step(e->sc, s, e->o->reports, e->o);
		return 0;
	}
	e->o->end = *ev;
	e->done = true;
	return 0;
}

static void run_embedded(enum t_evkind kind, const struct scenario *sc,
			 struct outcome *o)
{
	struct ev_loop *evl = t_evloop(kind);
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct emb e = { .sc = sc, .o = o };
	struct sw_stub *s;
	struct sw_ev *g;

	o->t_before = t_now_ns();
	s = t_spawn_ok(loop);
	o->t_after = t_now_ns();
	T_EQ(sw_stub_set_callback(s, on_event, &e), 0);
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	T_ASSERT(t_ev_run_until(evl, &e.done, 3000), "no end after %u reports",
		 o->reports);
	T_EQ(sw_ev_take_error(g), 0);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
}

static void run_all(const struct scenario *sc, struct outcome o[NDRIVERS])
{
	memset(o, 0, NDRIVERS * sizeof(*o));
	run_blocking(sc, &o[D_BLOCKING], 0);
	run_blocking(sc, &o[D_BLOCKING_POLL], SW_LOOP_ADAPTIVE_POLL);
	run_embedded(T_EV_DEFAULT, sc, &o[D_EV_DEFAULT]);
	run_embedded(T_EV_NEW, sc, &o[D_EV_NEW]);
	for (int d = 0; d < NDRIVERS; d++)
		t_note("%-24s %u reports, end %d, status %#x, kill reason %d, "
		       "killed %.1f ms after the last step",
		       driver_name[d], o[d].reports, o[d].end.type,
		       o[d].end.status, o[d].end.kill.reason,
		       o[d].end.type == SW_EV_KILL ?
			       ((double)o[d].end.kill.killed_at_ns -
				(double)o[d].t_after) / 1e6 : 0.);
	for (int d = 0; d < NDRIVERS; d++) {
		const struct sw_kill_info *k = &o[d].end.kill;

		if (o[d].end.type != SW_EV_KILL || k->reason != SW_KILL_STALL)
			continue;
		/* what the stub did: a starved one waited, a hijacked one
		 * ran, a sleeping one did neither */
		t_note("%-24s state %c, silent %.1f ms; in the last %.1f ms it "
		       "ran %.1f ms and waited %.1f ms for a CPU; monitor "
		       "late %.1f ms, starvation credit %.1f ms",
		       driver_name[d], k->state, (double)k->silent_ns / 1e6,
		       (double)k->stall_window_ns / 1e6,
		       (double)k->stall_run_ns / 1e6,
		       (double)k->stall_wait_ns / 1e6,
		       (double)k->monitor_late_ns / 1e6,
		       (double)k->starved_ns / 1e6);
	}
}

/* Every driver's outcome equals the blocking one's; stall ticks follow the
 * same rule in each (t_check_kill(): N, or N + 1 after a read a whole tick
 * late, which only that driver's run can tell). */
static void check_same(const struct outcome o[NDRIVERS])
{
	/* A stall kill with the whole credit spent (N*T of waits for a CPU
	 * or in D): the host starved the stub past the rule's cap
	 * (watchdog.h), and that driver's run has nothing to compare. */
	for (int d = 0; d < NDRIVERS; d++)
		if (o[d].end.type == SW_EV_KILL &&
		    o[d].end.kill.reason == SW_KILL_STALL &&
		    o[d].end.kill.starved_ns >= (uint64_t)T_STALL * T_TICK_NS) {
			t_skip("inconclusive: %s: the stub starved past its "
			       "credit (%.0f ms)", driver_name[d],
			       o[d].end.kill.starved_ns / 1e6);
			_exit(T_SKIP);
		}
	for (int d = 1; d < NDRIVERS; d++) {
		const struct sw_event *a = &o[D_BLOCKING].end, *b = &o[d].end;

		T_EQ(o[d].reports, o[D_BLOCKING].reports);
		T_EQ(b->type, a->type);
		T_EQ(b->status, a->status);
		if (a->type != SW_EV_KILL)
			continue;
		T_EQ(b->kill.reason, a->kill.reason);
		T_EQ(b->kill.bad_state, a->kill.bad_state);
		T_EQ(b->kill.sigalrm_blocked, a->kill.sigalrm_blocked);
	}
}

static int case_exit(void *arg)
{
	static const struct scenario sc = { .echoes = 5, .last = T_CMD_EXIT,
					    .last_arg = 42 };
	struct outcome o[NDRIVERS];

	(void)arg;
	run_all(&sc, o);
	check_same(o);
	T_EQ(o[D_BLOCKING].reports, 6);
	T_EQ(o[D_BLOCKING].end.type, SW_EV_EXIT);
	T_ASSERT(WIFEXITED(o[D_BLOCKING].end.status) &&
			 WEXITSTATUS(o[D_BLOCKING].end.status) == 42,
		 "status %#x", o[D_BLOCKING].end.status);
	return T_PASS;
}

static int case_signal(void *arg)
{
	static const struct scenario sc = { .echoes = 2, .last = T_CMD_SIGNAL,
					    .last_arg = SIGUSR2 };
	struct outcome o[NDRIVERS];

	(void)arg;
	run_all(&sc, o);
	check_same(o);
	T_EQ(o[D_BLOCKING].end.type, SW_EV_EXIT);
	T_ASSERT(WIFSIGNALED(o[D_BLOCKING].end.status) &&
			 WTERMSIG(o[D_BLOCKING].end.status) == SIGUSR2,
		 "status %#x", o[D_BLOCKING].end.status);
	return T_PASS;
}

static int case_stall(void *arg)
{
	static const struct scenario sc = { .echoes = 3, .last = T_CMD_STALL };
	struct outcome o[NDRIVERS];

	(void)arg;
	run_all(&sc, o);
	check_same(o);
	T_EQ(o[D_BLOCKING].end.type, SW_EV_KILL);
	T_EQ(o[D_BLOCKING].end.kill.reason, SW_KILL_STALL);
	T_EQ(o[D_BLOCKING].end.kill.sigalrm_blocked, 1);
	for (int d = 0; d < NDRIVERS; d++)
		t_check_kill(driver_name[d], o[d].t_before, o[d].t_after,
			     &o[d].end.kill);
	return T_PASS;
}

static int case_protocol(void *arg)
{
	static const struct scenario sc = { .echoes = 2, .last = T_CMD_BAD,
					    .last_arg = 0xdeadbeef };
	struct outcome o[NDRIVERS];

	(void)arg;
	run_all(&sc, o);
	check_same(o);
	T_EQ(o[D_BLOCKING].end.type, SW_EV_KILL);
	T_EQ(o[D_BLOCKING].end.kill.reason, SW_KILL_PROTOCOL);
	T_EQ(o[D_BLOCKING].end.kill.bad_state, 0xdeadbeef);
	T_ASSERT(WIFSIGNALED(o[D_BLOCKING].end.status) &&
			 WTERMSIG(o[D_BLOCKING].end.status) == SIGKILL,
		 "status %#x", o[D_BLOCKING].end.status);
	/* the stall watchdog cannot act before N*T after the resume (an
	 * exact bound): a kill before that came from the report itself */
	for (int d = 0; d < NDRIVERS; d++)
		T_ASSERT(o[d].end.kill.killed_at_ns - o[d].t_before < T_KILL_MIN,
			 "%s: %.3f ms: a protocol kill is at once, not a stall",
			 driver_name[d],
			 (o[d].end.kill.killed_at_ns - o[d].t_before) / 1e6);
	return T_PASS;
}

static int case_user_kill(void *arg)
{
	static const struct scenario sc = { .echoes = 2, .user_kill = true };
	struct outcome o[NDRIVERS];

	(void)arg;
	run_all(&sc, o);
	check_same(o);
	T_EQ(o[D_BLOCKING].reports, 3);
	T_EQ(o[D_BLOCKING].end.type, SW_EV_KILL);
	T_EQ(o[D_BLOCKING].end.kill.reason, SW_KILL_USER);
	return T_PASS;
}

/* 150 ms per answer, under N*T = 200 ms: slow, never killed. */
static int case_slow(void *arg)
{
	static const struct scenario sc = { .echoes = 3,
					    .echo_sleep_us = 150 * 1000,
					    .last = T_CMD_EXIT, .last_arg = 0 };
	struct outcome o[NDRIVERS];

	(void)arg;
	run_all(&sc, o);
	check_same(o);
	T_EQ(o[D_BLOCKING].reports, 4);
	T_EQ(o[D_BLOCKING].end.type, SW_EV_EXIT);
	T_EQ(o[D_BLOCKING].end.status, 0);
	return T_PASS;
}

int main(void)
{
	static const struct t_case cases[] = {
		{ "exit status: blocking == embedded", case_exit, NULL, 20000 },
		{ "death by signal: blocking == embedded", case_signal, NULL,
		  5000 },
		{ "stall kill and its time: blocking == embedded", case_stall,
		  NULL, 20000 },
		{ "protocol kill: blocking == embedded", case_protocol, NULL,
		  5000 },
		{ "user kill: blocking == embedded", case_user_kill, NULL, 20000 },
		{ "slow stub inside the limit: no kill in either", case_slow,
		  NULL, 20000 },
	};

	return t_run("t_ev_drivers", cases, sizeof(cases) / sizeof(cases[0]));
}
