// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Stubs driven entirely by callbacks from a libev loop, under
 * ev_default_loop() and under ev_loop_new(): resume from the report
 * callback, N handshakes, then exit (the exit callback gets the status); a
 * stalled stub (the kill callback gets the diagnostics); a callback's error;
 * detach and attach again.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "t_ev.h"

#define HANDSHAKES 50

struct drive {
	struct sw_ev *glue;
	unsigned reports, exits, kills;
	uint64_t expect;   /* the seq the next report must answer */
	unsigned handshakes;
	enum t_cmd last;   /* what to send after the handshakes */
	uint32_t last_arg;
	uint64_t t_last;   /* just before the last command's resume... */
	uint64_t t_last_after; /* ...and just after it */
	struct sw_event end;
	bool done;
};

static int on_event(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct drive *d = ud;

	switch (ev->type) {
	case SW_EV_REPORT:
		T_EQ(t_msg(s)->reply, d->expect);
		T_EQ(t_msg(s)->reports, d->reports + 1);
		T_EQ(sw_stub_loop(s) != NULL, 1);
		d->reports++;
		if (d->reports <= d->handshakes) {
			d->expect = t_cmd(s, T_CMD_ECHO, 0);
		} else {
			d->expect = t_cmd(s, d->last, d->last_arg);
			d->t_last = t_now_ns();
		}
		T_EQ(sw_stub_resume(s), 0);
		if (d->reports > d->handshakes)
			d->t_last_after = t_now_ns();
		T_EQ(sw_loop_count_in_flight(sw_stub_loop(s)), 1);
		break;
	case SW_EV_EXIT:
	case SW_EV_KILL:
		if (ev->type == SW_EV_KILL)
			t_note("killed: reason %d, silent %.3f ms, state %c, "
			       "the monitor late %.3f ms, starved %.3f ms",
			       ev->kill.reason, ev->kill.silent_ns / 1e6,
			       ev->kill.state, ev->kill.monitor_late_ns / 1e6,
			       ev->kill.starved_ns / 1e6);
		d->end = *ev;
		if (ev->type == SW_EV_EXIT)
			d->exits++;
		else
			d->kills++;
		d->done = true;
		break;
	default:
		T_ASSERT(0, "unexpected event %d", ev->type);
	}
	return 0;
}

/* Spawn one stub, drive it from its callback until it ends; returns the
 * run in *d.  The stub and the loop are gone when it returns. */
static void drive_one(enum t_evkind kind, struct drive *d)
{
	struct ev_loop *evl = t_evloop(kind);
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct sw_stub *s = t_spawn_ok(loop);
	pid_t pid = sw_stub_pid(s);

	T_EQ(sw_stub_set_callback(s, on_event, d), 0);
	T_EQ(sw_stub_get_userdata(s) == d, 1);
	T_EQ(sw_ev_attach(loop, evl, &d->glue), 0);
	T_EQ(ev_is_active(sw_ev_watcher(d->glue)), 1);
	T_ASSERT(t_ev_run_until(evl, &d->done, 3000), "no end after %u reports",
		 d->reports);
	T_EQ(sw_ev_take_error(d->glue), 0);
	T_EQ(d->exits + d->kills, 1);
	T_EQ(sw_stub_pid(s), -ESRCH);
	T_EQ(sw_stub_resume(s), -ESRCH);
	if (d->end.type == SW_EV_KILL)
		T_EQ(d->end.kill.pid, pid);
	T_EQ(sw_loop_count_stubs(loop), 1);
	T_ASSERT(sw_ev_detach(d->glue) == NULL, "detach");
	T_ASSERT(sw_stub_free(s) == NULL, "free");
	T_EQ(sw_loop_count_stubs(loop), 0);
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
}

static int case_exit(void *arg)
{
	struct drive d = { .handshakes = HANDSHAKES, .last = T_CMD_EXIT,
			   .last_arg = 42 };

	drive_one((enum t_evkind)(intptr_t)arg, &d);
	T_EQ(d.reports, HANDSHAKES + 1); /* the hello, then one per resume */
	T_EQ(d.end.type, SW_EV_EXIT);
	T_ASSERT(WIFEXITED(d.end.status) && WEXITSTATUS(d.end.status) == 42,
		 "status %#x", d.end.status);
	return T_PASS;
}

static int case_signal(void *arg)
{
	struct drive d = { .handshakes = 3, .last = T_CMD_SIGNAL,
			   .last_arg = SIGTERM };

	drive_one((enum t_evkind)(intptr_t)arg, &d);
	T_EQ(d.end.type, SW_EV_EXIT);
	T_ASSERT(WIFSIGNALED(d.end.status) && WTERMSIG(d.end.status) == SIGTERM,
		 "status %#x", d.end.status);
	return T_PASS;
}

static int case_stall(void *arg)
{
	struct drive d = { .handshakes = 5, .last = T_CMD_STALL };
	const struct sw_kill_info *k = &d.end.kill;

	drive_one((enum t_evkind)(intptr_t)arg, &d);
	T_EQ(d.end.type, SW_EV_KILL);
	/* the window, the ticks and silent_ns */
	t_check_kill("stall", d.t_last, d.t_last_after, k);
	T_ASSERT(WIFSIGNALED(d.end.status) && WTERMSIG(d.end.status) == SIGKILL,
		 "status %#x", d.end.status);
	T_EQ(k->reason, SW_KILL_STALL);
	T_EQ(k->sigalrm_blocked, 1);
	T_ASSERT(k->sigblk & (1ull << (SIGALRM - 1)), "sigblk %#llx",
		 (unsigned long long)k->sigblk);
	T_EQ(k->state, 'S');
	T_EQ(k->bad_state, 0);
	return T_PASS;
}

/* A callback's error: sw_ev_take_error() gets it once, and the completion
 * that the stopped dispatch left queued is still delivered, although no fd
 * becomes readable for it. */
struct errs {
	unsigned calls;
	bool done;
};

static int on_error_cb(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct errs *e = ud;

	(void)s;
	T_EQ(ev->type, SW_EV_REPORT);
	if (++e->calls == 2)
		e->done = true;
	return e->calls == 1 ? -EIO : 0;
}

static int case_error(void *arg)
{
	struct ev_loop *evl = t_evloop((enum t_evkind)(intptr_t)arg);
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct sw_stub *a = t_spawn_ok(loop), *b = t_spawn_ok(loop);
	struct errs e = { 0 };
	struct sw_ev *g;

	T_EQ(sw_stub_set_callback(a, on_error_cb, &e), 0);
	T_EQ(sw_stub_set_callback(b, on_error_cb, &e), 0);
	/* Both reports made, and one timer period gone: the first dispatch
	 * sees both reports and the timer, whose read finds nothing in
	 * flight and disarms it.  Nothing will make the fd readable again. */
	t_wait_reported(a, 2000);
	t_wait_reported(b, 2000);
	ev_sleep(T_TICK_NS / 1e9);
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	T_ASSERT(t_ev_run_until(evl, &e.done, 1000),
		 "%u of 2 callbacks: the queued completion was not delivered",
		 e.calls);
	T_EQ(sw_ev_take_error(g), -EIO);
	T_EQ(sw_ev_take_error(g), 0);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free"); /* frees a and b */
	t_evloop_free(evl);
	return T_PASS;
}

/* Detach leaves the loop and its stubs as they are: a report that arrives
 * while detached waits, and is delivered once attached again. */
struct count {
	unsigned n;
	bool done;
};

static int on_count(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct count *c = ud;

	(void)s;
	T_EQ(ev->type, SW_EV_REPORT);
	c->n++;
	c->done = true;
	return 0;
}

static int case_detach(void *arg)
{
	struct ev_loop *evl = t_evloop((enum t_evkind)(intptr_t)arg);
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct sw_stub *s = t_spawn_ok(loop);
	struct count c = { 0 };
	struct sw_ev *g;

	T_EQ(sw_stub_set_callback(s, on_count, &c), 0);
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	t_wait_reported(s, 2000);
	ev_run(evl, EVRUN_NOWAIT);
	T_EQ(c.n, 0);
	T_EQ(sw_loop_count_stubs(loop), 1);
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	T_ASSERT(t_ev_run_until(evl, &c.done, 1000), "no report after attach");
	T_EQ(c.n, 1);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_stub_free(s) == NULL, "free");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
	return T_PASS;
}

static int case_args(void *arg)
{
	struct ev_loop *evl = t_evloop((enum t_evkind)(intptr_t)arg);
	struct sw_loop *loop = t_loop(SW_TICK_NS_DEFAULT, SW_STALL_TICKS_DEFAULT, 0);
	struct sw_ev *g = (struct sw_ev *)&g; /* must stay untouched */

	T_EQ(sw_ev_attach(NULL, evl, &g), -EINVAL);
	T_EQ(sw_ev_attach(loop, NULL, &g), -EINVAL);
	T_EQ(sw_ev_attach(loop, evl, NULL), -EINVAL);
	T_ASSERT(g == (struct sw_ev *)&g, "ret_glue clobbered on failure");
	T_ASSERT(sw_ev_detach(NULL) == NULL, "detach(NULL)");
	T_EQ(sw_ev_take_error(NULL), -EINVAL);
	T_ASSERT(sw_ev_watcher(NULL) == NULL, "watcher(NULL)");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
	return T_PASS;
}

#define BOTH(name, fn, ms)                                                  \
	{ name " (ev_default_loop)", fn, (void *)(intptr_t)T_EV_DEFAULT, ms }, \
	{ name " (ev_loop_new)", fn, (void *)(intptr_t)T_EV_NEW, ms }

int main(void)
{
	static const struct t_case cases[] = {
		BOTH("exit: 50 handshakes from the report callback, then exit 42",
		     case_exit, 5000),
		BOTH("exit: a stub killed by SIGTERM gets WTERMSIG", case_signal,
		     5000),
		BOTH("kill: a stalled stub, kill callback with diagnostics",
		     case_stall, 5000),
		BOTH("error: kept for take_error, queued completion delivered",
		     case_error, 5000),
		BOTH("detach: a report waits, attach again delivers it",
		     case_detach, 5000),
		BOTH("args: -EINVAL and NULL", case_args, 5000),
	};

	return t_run("t_ev_callbacks", cases, sizeof(cases) / sizeof(cases[0]));
}
