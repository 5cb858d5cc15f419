/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The page is untrusted input.  A garbage state word with an eventfd write
 * is a protocol violation: SW_EV_KILL, SW_KILL_PROTOCOL, kill.bad_state set
 * to what was found, and the monitor carries on.  Scribbling over the
 * header's other fields changes nothing for the monitor.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <sys/wait.h>

#include "t_util.h"

static const uint32_t garbage[] = {
	0, 3, 0xdeadbeefu, 0xffffffffu, SW_STATE_IN_KERN | 0x100,
};

static void assert_protocol_kill(const struct sw_event *ev, pid_t pid,
				 uint32_t value)
{
	t_assert_eq(ev->type, SW_EV_KILL);
	t_assert_eq(ev->kill.reason, SW_KILL_PROTOCOL);
	t_assert_eq(ev->kill.pid, pid);
	t_assert_eq(ev->kill.bad_state, value);
	t_assert_eq(ev->kill.silent_ns, 0); /* "0 unless STALL" */
	t_assert(WIFSIGNALED(ev->status) && WTERMSIG(ev->status) == SIGKILL);
}

/* In flight: the stub writes garbage and wakes its monitor. */
static void case_garbage_in_flight(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub;
	struct sw_event ev;
	uint64_t t0;
	unsigned i;

	for (i = 0; i < T_NCASES(garbage); i++) {
		pid_t pid;

		stub = t_spawn_echo(loop, mode);
		pid = sw_stub_pid(stub);
		t_echo(stub, 5);
		t_pl(stub)->arg = T_STALL_ARG(T_STALL_GARBAGE, garbage[i]);
		/* every other time after some timer reads of silence, which
		 * still make no STALL: silent_ns stays 0 */
		t_pl(stub)->delay_ns = i % 2 ? T_FTICK_NS / 2 : 0;
		t_pl(stub)->req = T_REQ_STALL;
		t0 = t_now_ns();
		t_assert_rc(sw_stub_run(stub, &ev), SW_EV_KILL);
		assert_protocol_kill(&ev, pid, garbage[i]);
		/* found when the eventfd fires, not by the stall watchdog,
		 * which cannot look before N*T after the resume (t0 is
		 * before it): its lower bound is exact, so the time of the
		 * SIGKILL tells the two apart */
		t_assert_msg(ev.kill.killed_at_ns - t0 < T_STALL * T_FTICK_NS,
			     "the protocol kill took %.1f ms",
			     (double)(ev.kill.killed_at_ns - t0) / 1e6);
		t_assert(sw_stub_free(stub) == NULL);

		/* the monitor carries on */
		stub = t_spawn_echo(loop, mode);
		t_echo(stub, 100);
		t_stop(stub);
	}
	t_assert(sw_loop_free(loop) == NULL);
}

/* Garbage from birth: the very first wake carries a bad state word. */
static void case_garbage_at_spawn(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn(loop, mode, "stall",
				       T_STALL_ARG(T_STALL_GARBAGE, 0x5a5a5a5a));
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;

	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	assert_protocol_kill(&ev, pid, 0x5a5a5a5a);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

struct done {
	bool done;
	struct sw_event ev;
};

static int on_done(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct done *d = ud;

	d->done = true;
	d->ev = *ev;
	return 0;
}

/* Not in flight: a stub that has reported writes garbage later, while the
 * monitor is busy with another stub; it is killed during that stub's wait
 * and its callback tells. */
static void case_garbage_while_idle(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *bad = t_spawn_echo(loop, mode);
	struct sw_stub *good = t_spawn_echo(loop, !mode);
	pid_t pid = sw_stub_pid(bad);
	struct done d = { 0 };
	struct sw_event ev;
	uint64_t end;

	t_assert_rc(sw_stub_set_callback(bad, on_done, &d), 0);
	t_pl(bad)->arg = 0xbadbad;
	t_pl(bad)->delay_ns = 20 * T_MS; /* after the report is taken */
	t_assert_rc(t_request(bad, T_REQ_GARBAGE_IDLE, &ev), SW_EV_REPORT);
	end = t_now_ns() + 2000 * T_MS;
	while (!d.done) {
		t_echo(good, 1);
		t_assert(t_now_ns() < end);
	}
	assert_protocol_kill(&d.ev, pid, 0xbadbad);
	/* delivered through the callback: nothing is left to wait for */
	t_assert_rc(sw_stub_resume(bad), -ESRCH);
	t_assert(sw_stub_free(bad) == NULL);
	t_echo(good, 100);
	t_stop(good);
	t_assert(sw_loop_free(loop) == NULL);
}

/* magic, abi, size, reserved: written once by the monitor, never trusted
 * back; a stub that scribbles over them goes on working. */
static void case_scribble(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_page *page = sw_stub_page(stub);
	struct sw_event ev;

	t_assert_rc(t_request(stub, T_REQ_SCRIBBLE, &ev), SW_EV_REPORT);
	t_assert_eq(page->magic, 0);
	t_assert_eq(page->abi, 0xffffffffu);
	t_echo(stub, 100);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

static const struct t_case cases[] = {
	{ "garbage_in_flight/fn", case_garbage_in_flight, T_FN, 0 },
	{ "garbage_in_flight/exec", case_garbage_in_flight, T_EXEC, 0 },
	{ "garbage_at_spawn/fn", case_garbage_at_spawn, T_FN, 0 },
	{ "garbage_at_spawn/exec", case_garbage_at_spawn, T_EXEC, 0 },
	{ "garbage_while_idle/fn", case_garbage_while_idle, T_FN, 0 },
	{ "garbage_while_idle/exec", case_garbage_while_idle, T_EXEC, 0 },
	{ "scribble/fn", case_scribble, T_FN, 0 },
	{ "scribble/exec", case_scribble, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
