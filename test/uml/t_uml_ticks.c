// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Preemption ticks reach the monitor.  include/stubwatch.h: with
 * SW_LOOP_TICK_EVENTS, "sw_stub_wait() also returns SW_EV_TICK for each
 * timer read during the wait (every T/timer_div), so that a monitor can
 * preempt the stub it waits on".  A UML monitor that loses ticks cannot
 * preempt a stub that makes system calls all the time: it runs on, and the
 * other processes of its vCPU starve.
 *
 * One stub kept in flight for 2 s (served and resumed at once), a 10 ms
 * timer: about 200 timer periods.  Each driver must see every timer read
 * the loop made (sw_loop_get_stats()) as a tick: sw_stub_wait() as
 * SW_EV_TICK, owing at most the last one, sw_loop_dispatch() through the
 * tick callback.  How many reads there are is the host's: a monitor the
 * host runs late makes fewer, each counting all the periods it finds, and
 * a read that finds nothing in flight (the churning stub's report came in
 * the same batch) disarms the timer until the next resume, whose grid
 * starts anew.  A CPU-bound stub (no reports to race with) and a churning
 * one (a report in almost every epoll batch).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "t_uml.h"

#define RUN_NS    2000000000ull
#define PERIOD_NS 10000000ull

static int new_loop(struct sw_loop **ret)
{
	struct sw_loop_opts o = { .size = sizeof(o),
				  .tick_ns = 1000000000ull,
				  .stall_ticks = 5,
				  .timer_div = 100,
				  .flags = SW_LOOP_TICK_EVENTS };

	return sw_loop_new(&o, ret);
}

/* Serve every report and resume; never preempt (the stub must not stop
 * being in flight).  Counts SW_EV_TICK for RUN_NS; the stub may be left in
 * flight (swu_stub_free() kills it). */
static int count_wait(struct swu_stub *s, unsigned *ticks)
{
	struct sw_stub *sw = swu_stub_sw(s);
	uint64_t t0 = swu_now_ns();
	struct sw_event ev;
	int r;

	*ticks = 0;
	while (swu_now_ns() - t0 < RUN_NS) {
		r = sw_stub_resume(sw);
		if (r < 0)
			return r;
		while ((r = sw_stub_wait(sw, &ev)) == SW_EV_TICK)
			if (++*ticks && swu_now_ns() - t0 >= RUN_NS)
				return 0;
		if (r != SW_EV_REPORT)
			return r < 0 ? r : -EPROTO;
		r = swu_stub_serve(s, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

struct dctx {
	unsigned ticks;
	bool done;
	int type;
};

static int on_event(struct sw_stub *sw, const struct sw_event *ev, void *ud)
{
	struct dctx *c = ud;

	(void)sw;
	c->done = true;
	c->type = ev->type;
	return 0;
}

static int on_tick(struct sw_loop *loop, void *ud)
{
	(void)loop;
	((struct dctx *)ud)->ticks++;
	return 0;
}

static int count_dispatch(struct sw_loop *loop, struct swu_stub *s,
			  unsigned *ticks)
{
	struct sw_stub *sw = swu_stub_sw(s);
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	uint64_t t0 = swu_now_ns();
	struct dctx c = { 0 };
	int r;

	sw_stub_set_callback(sw, on_event, &c);
	sw_loop_set_tick_callback(loop, on_tick, &c);
	while (swu_now_ns() - t0 < RUN_NS) {
		r = sw_stub_resume(sw);
		if (r < 0)
			return r;
		c.done = false;
		while (!c.done && swu_now_ns() - t0 < RUN_NS) {
			poll(&pfd, 1, -1);
			r = sw_loop_dispatch(loop);
			if (r < 0)
				return r;
		}
		if (!c.done)
			break;
		if (c.type != SW_EV_REPORT)
			return -EPROTO;
		r = swu_stub_serve(s, NULL);
		if (r < 0)
			return r;
	}
	sw_loop_set_tick_callback(loop, NULL, NULL);
	sw_stub_set_callback(sw, NULL, NULL);
	*ticks = c.ticks;
	return 0;
}

static int run(enum swu_prog_kind kind, bool dispatch)
{
	struct swu_prog p = { .kind = kind };
	const unsigned expect = (unsigned)(RUN_NS / PERIOD_NS);
	struct sw_loop_stats st = { .size = sizeof(st) };
	struct sw_loop *loop;
	struct swu_stub *s;
	unsigned ticks = 0;
	int r;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	r = swu_stub_spawn(loop, &p, 0, &s);
	if (r == -ENOSYS) {
		t_info("SKIP: %s", strerror(-r));
		sw_loop_free(loop);
		return T_SKIP;
	}
	T_CHECK(r == 0, "spawn: %s", strerror(-r));
	T_CHECK(sw_loop_get_stats(loop, &st, 1) == 0, "stats");
	r = dispatch ? count_dispatch(loop, s, &ticks) : count_wait(s, &ticks);
	T_CHECK(r == 0, "drive: %s", strerror(-r));
	T_CHECK(sw_loop_get_stats(loop, &st, 0) == 0, "stats");
	t_info("%s stub, %s: %u ticks of %llu timer reads, %llu periods "
	       "counted of ~%u (reads late by %.2f ms at worst)",
	       swu_prog_name(kind), dispatch ? "sw_loop_dispatch" : "sw_stub_wait",
	       ticks, (unsigned long long)st.timer_reads,
	       (unsigned long long)st.timer_periods, expect,
	       st.max_late_ns / 1e6);
	/* One tick per read, but for the last read (its tick may be still to
	 * come) and, with sw_stub_wait(), one read before the count began:
	 * the spawn's wait for the hello may find the report and a timer
	 * read together, and the report wins; the tick is owed, and the
	 * first wait here returns it. */
	T_CHECK(ticks <= st.timer_reads + (dispatch ? 0 : 1) &&
			ticks + 1 >= st.timer_reads,
		"%u of %llu timer reads reached the monitor as ticks", ticks,
		(unsigned long long)st.timer_reads);
	T_CHECK(st.timer_reads > 0, "no timer read in %u periods", expect);
	swu_stub_free(s);
	sw_loop_free(loop);
	return T_PASS;
}

static __attribute__((unused)) int t_wait_cpu(void)
{
	return run(SWU_PROG_CPU, false);
}

static __attribute__((unused)) int t_wait_churn(void)
{
	return run(SWU_PROG_CHURN, false);
}

static __attribute__((unused)) int t_dispatch_cpu(void)
{
	return run(SWU_PROG_CPU, true);
}

static __attribute__((unused)) int t_dispatch_churn(void)
{
	return run(SWU_PROG_CHURN, true);
}

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{ "wait_churn", t_wait_churn, 15 },
		{ "wait_cpu", t_wait_cpu, 15 },
		{ "dispatch_cpu", t_dispatch_cpu, 15 },
		{ "dispatch_churn", t_dispatch_churn, 15 },
	};

	return t_run(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
