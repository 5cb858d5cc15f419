/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Monitor-side helpers: loops with the suite's ticks, spawning roles, the
 * echo protocol. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

struct sw_loop *t_loop_opts(uint64_t tick_ns, uint32_t stall_ticks,
			    uint32_t timer_div, unsigned flags)
{
	struct sw_loop_opts o = {
		.size = sizeof(o),
		.tick_ns = tick_ns,
		.stall_ticks = stall_ticks,
		.timer_div = timer_div,
		.flags = flags,
	};
	struct sw_loop *loop = NULL;

	t_assert_rc(sw_loop_new(&o, &loop), 0);
	t_assert(loop);
	return loop;
}

struct sw_loop *t_loop(void)
{
	return t_loop_opts(T_FTICK_NS, T_STALL, 0, 0);
}

struct sw_loop *t_loop_timed(void)
{
	return t_loop_opts(T_TICK_NS, T_STALL, 0, 0);
}

struct sw_loop *t_loop_p(intptr_t param)
{
	return t_loop_opts(T_FTICK_NS, T_STALL, 0, T_PFLAGS(param));
}

struct sw_loop *t_loop_timed_p(intptr_t param)
{
	return t_loop_opts(T_TICK_NS, T_STALL, 0, T_PFLAGS(param));
}

static double t_ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* t - t0 in ms, negative if t comes first */
static double t_ms_since(uint64_t t, uint64_t t0)
{
	return ((double)t - (double)t0) / 1e6;
}

void t_assert_kill_window(const char *what, struct sw_loop *loop,
			  uint64_t t_before, uint64_t t_after,
			  const struct sw_kill_info *k)
{
	struct sw_loop_opts o = { .size = sizeof(o) };
	uint64_t tick, period, min, max;
	uint32_t n;

	t_assert_rc(sw_loop_get_opts(loop, &o), 0);
	tick = o.tick_ns;
	n = o.stall_ticks;
	period = tick / o.timer_div;
	t_assert_eq(k->reason, SW_KILL_STALL);
	min = n * tick + k->starved_ns;
	max = (n + 1) * tick + k->monitor_late_ns + k->starved_ns;
	t_note("%s: killed %.2f..%.2f ms after the resume, window [%.2f, %.2f] "
	       "ms (N*T %.0f, (N+1)*T %.0f, the monitor late %.2f, the stub "
	       "starved %.2f); %u ticks", what,
	       t_ms_since(k->killed_at_ns, t_after),
	       t_ms_since(k->killed_at_ns, t_before),
	       t_ms(min), t_ms(max), t_ms(n * tick), t_ms((n + 1) * tick),
	       t_ms(k->monitor_late_ns), t_ms(k->starved_ns), k->stall_ticks);
	t_assert_msg(k->killed_at_ns >= t_after + min,
		     "%s: killed %.3f ms after the resume, before N*T + starved "
		     "= %.3f ms", what, t_ms_since(k->killed_at_ns, t_after),
		     t_ms(min));
	t_assert_msg(k->killed_at_ns <= t_after + max,
		     "%s: killed %.3f ms after the resume, after (N+1)*T + "
		     "monitor_late + starved = %.3f ms", what,
		     t_ms_since(k->killed_at_ns, t_after), t_ms(max));
	t_assert_msg(k->starved_ns <= n * tick && k->starved_ns % period == 0,
		     "%s: starved_ns %" PRIu64 ", N*T %" PRIu64 ", period %"
		     PRIu64, what, k->starved_ns, n * tick, period);
	/* the credit is the run-queue wait since the stall's baseline, in
	 * whole periods, and stall_wait_ns is that wait up to the kill */
	t_assert_msg(k->starved_ns <= k->stall_wait_ns,
		     "%s: credited %.3f ms, but waited %.3f ms for a CPU", what,
		     t_ms(k->starved_ns), t_ms(k->stall_wait_ns));
	t_assert_msg(k->stall_ticks == n ||
			     (k->stall_ticks == n + 1 &&
			      k->monitor_late_ns >= (o.timer_div - 1) * period),
		     "%s: %u stall ticks, N = %u, the monitor late %.3f ms",
		     what, k->stall_ticks, n, t_ms(k->monitor_late_ns));
}

int t_spawn_rc(struct sw_loop *loop, intptr_t mode, const char *role,
	       uint64_t arg, unsigned flags, struct sw_stub **ret_stub)
{
	char argbuf[32];
	char *argv[] = { "/proc/self/exe", "--stub", (char *)role, argbuf, NULL };
	struct sw_spawn_opts o = { .size = sizeof(o), .flags = flags };
	int rc;

	mode = T_PMODE(mode);
	if (mode == T_FN && T_TSAN)
		t_skip("fn-mode stubs are not supported under ThreadSanitizer");
	if (mode == T_FN) {
		o.fn = t_role_find(role);
		o.arg = (void *)(uintptr_t)arg;
		t_assert(o.fn);
	} else {
		snprintf(argbuf, sizeof(argbuf), "%" PRIu64, arg);
		o.path = "/proc/self/exe";
		o.argv = argv;
	}
	rc = sw_stub_spawn(loop, &o, ret_stub);
	/* e.g. valgrind 3.19, which does not know clone3 or pidfd_open */
	if (rc == -ENOSYS)
		t_skip("no clone3 or pidfd here (an old kernel, or valgrind)");
	return rc;
}

struct sw_stub *t_spawn(struct sw_loop *loop, intptr_t mode, const char *role,
			uint64_t arg)
{
	struct sw_stub *stub = NULL;

	t_assert_rc(t_spawn_rc(loop, mode, role, arg, 0, &stub), 0);
	t_assert(stub);
	return stub;
}

struct t_payload *t_pl(struct sw_stub *stub)
{
	struct sw_page *page = sw_stub_page(stub);

	t_assert(page);
	return t_payload(page);
}

const char *t_ev_name(int type)
{
	switch (type) {
	case SW_EV_REPORT: return "REPORT";
	case SW_EV_EXIT: return "EXIT";
	case SW_EV_KILL: return "KILL";
	case SW_EV_TICK: return "TICK";
	case SW_EV_FD: return "FD";
	}
	return t_errname(type);
}

const char *t_reason_name(int reason)
{
	switch (reason) {
	case SW_KILL_STALL: return "STALL";
	case SW_KILL_PROTOCOL: return "PROTOCOL";
	case SW_KILL_USER: return "USER";
	}
	return "?";
}

const char *t_status_str(int status, char buf[static 32])
{
	if (WIFEXITED(status))
		snprintf(buf, 32, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, 32, "signal %d", WTERMSIG(status));
	else
		snprintf(buf, 32, "status 0x%x", status);
	return buf;
}

void t_note_event(int rc, const struct sw_event *ev)
{
	char buf[32];

	if (rc == SW_EV_KILL)
		t_note("killed: reason %s, silent %" PRIu64 " ns, ticks %u, "
		       "state %c, bad_state 0x%x, monitor late %" PRIu64
		       " ns, starved %" PRIu64 " ns",
		       t_reason_name(ev->kill.reason), ev->kill.silent_ns,
		       ev->kill.stall_ticks, ev->kill.state, ev->kill.bad_state,
		       ev->kill.monitor_late_ns, ev->kill.starved_ns);
	else if (rc == SW_EV_EXIT)
		t_note("exited: %s", t_status_str(ev->status, buf));
}

void t_skip_if_held(struct sw_stub *stub, int rc, const struct sw_event *ev)
{
	struct sw_loop_opts o = { .size = sizeof(o) };
	struct sw_loop *loop = sw_stub_loop(stub);

	if (rc != SW_EV_KILL || ev->kill.reason != SW_KILL_STALL || !loop ||
	    sw_loop_get_opts(loop, &o) < 0)
		return;
	if (ev->kill.starved_ns < (uint64_t)o.stall_ticks * o.tick_ns)
		return;
	t_skip("the host held a well-behaved stub off the CPUs or in the "
	       "kernel (state %c) past its whole credit: ran %.2f ms, waited "
	       "%.2f ms in a %.2f ms window, credited %.2f ms (N*T)",
	       ev->kill.state, ev->kill.stall_run_ns / 1e6,
	       ev->kill.stall_wait_ns / 1e6, ev->kill.stall_window_ns / 1e6,
	       ev->kill.starved_ns / 1e6);
}

void t_expect(struct sw_stub *stub, enum sw_event_type type,
	      struct sw_event *ret_ev)
{
	struct sw_event ev;
	int rc;

	memset(&ev, 0, sizeof(ev));
	rc = sw_stub_wait(stub, &ev);
	if (rc != (int)type) {
		t_note_event(rc, &ev);
		if (type == SW_EV_REPORT)
			t_skip_if_held(stub, rc, &ev);
		t_fail(__FILE__, __LINE__, "wait returned %s (%d), expected %s",
		       t_ev_name(rc), rc, t_ev_name(type));
	}
	if (ret_ev)
		*ret_ev = ev;
}

int t_request(struct sw_stub *stub, uint64_t req, struct sw_event *ev)
{
	__atomic_store_n(&t_pl(stub)->req, req, __ATOMIC_RELEASE);
	return sw_stub_run(stub, ev);
}

struct sw_stub *t_spawn_echo(struct sw_loop *loop, intptr_t mode)
{
	struct sw_stub *stub = t_spawn(loop, mode, "echo", 0);

	t_expect(stub, SW_EV_REPORT, NULL);
	t_assert_eq(t_pl(stub)->ack, 1);
	return stub;
}

void t_echo(struct sw_stub *stub, unsigned long n)
{
	struct t_payload *p = t_pl(stub);
	struct sw_event ev;
	unsigned long i;
	uint64_t req;
	int rc;

	for (i = 0; i < n; i++) {
		req = __atomic_load_n(&p->req, __ATOMIC_RELAXED);
		/* after a command, numbering starts again */
		req = (req >= T_REQ_CMD ? 0 : req) + 1;
		rc = t_request(stub, req, &ev);
		if (rc != SW_EV_REPORT) {
			t_note("round %lu of %lu", i, n);
			t_note_event(rc, &ev);
			t_skip_if_held(stub, rc, &ev);
			t_assert_rc(rc, SW_EV_REPORT);
		}
		t_assert_msg(__atomic_load_n(&p->ack, __ATOMIC_ACQUIRE) == req + 1,
			     "round %lu: ack %" PRIu64 ", expected %" PRIu64, i,
			     p->ack, req + 1);
	}
}

void t_stop(struct sw_stub *stub)
{
	struct sw_event ev;
	int rc = t_request(stub, T_REQ_STOP, &ev);

	if (rc != SW_EV_EXIT)
		t_note_event(rc, &ev);
	t_assert_rc(rc, SW_EV_EXIT);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 0);
	t_assert(sw_stub_free(stub) == NULL);
}

void t_futex_wake(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}
