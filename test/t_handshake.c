/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The handshake: a well-behaved stub completes 100,000 round trips with
 * every answer checked; the page header as the monitor sets it up; many
 * stubs in flight on one loop at once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/wait.h>

#include "t_util.h"

/* The quick case the README runs first: spawn, handshake, stall kill. */
static void case_smoke(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_event ev;

	t_echo(stub, 1000);
	t_assert_eq(t_pl(stub)->rounds, 1001);
	t_pl(stub)->arg = T_STALL_SPIN;
	t_assert_rc(t_request(stub, T_REQ_STALL, &ev), SW_EV_KILL);
	t_assert_eq(ev.kill.reason, SW_KILL_STALL);
	t_assert(WIFSIGNALED(ev.status) && WTERMSIG(ev.status) == SIGKILL);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_handshakes(intptr_t mode)
{
	const unsigned long rounds = 100000;
	struct sw_loop *loop = t_loop_p(mode);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	uint64_t t0, dt;

	t0 = t_now_ns();
	t_echo(stub, rounds);
	dt = t_now_ns() - t0;
	t_note("%lu round trips in %.1f ms: %.2f us each (%s mode%s)", rounds,
	       (double)dt / 1e6, (double)dt / 1e3 / (double)rounds,
	       t_mode_name(mode), mode & T_POLL ? ", adaptive polling" : "");
	t_assert_eq(t_pl(stub)->rounds, rounds + 1);
	t_assert_eq(t_pl(stub)->ack, rounds + 1);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_page_header(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn(loop, mode, "echo", 0);
	struct sw_page *page = sw_stub_page(stub);
	uint32_t state;

	t_assert(page);
	t_assert_eq(page->magic, SW_PAGE_MAGIC);
	t_assert_eq(page->abi, SW_PAGE_ABI);
	t_assert_eq(page->size, 16384); /* the default shm_size */
	if (mode == T_EXEC)
		t_assert_eq(page->report_fd, SW_EXEC_REPORT_FD);
	else
		t_assert(page->report_fd >= 3);
	/* in flight from the start; it may have reported already */
	state = __atomic_load_n(&page->state, __ATOMIC_ACQUIRE);
	t_assert(state == SW_STATE_IN_CHILD || state == SW_STATE_IN_KERN);
	t_assert_eq(sw_loop_count_stubs(loop), 1);
	t_assert_eq(sw_loop_count_in_flight(loop), 1);
	t_assert(sw_stub_loop(stub) == loop);
	t_assert(sw_stub_pid(stub) > 0);
	t_assert(sw_stub_pidfd(stub) >= 0);

	t_expect(stub, SW_EV_REPORT, NULL);
	t_assert_eq(page->state, SW_STATE_IN_KERN);
	t_assert_eq(sw_loop_count_in_flight(loop), 0);
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert_eq(sw_loop_count_in_flight(loop), 1);
	t_expect(stub, SW_EV_REPORT, NULL);
	t_assert_eq(sw_loop_count_in_flight(loop), 0);
	t_stop(stub);
	t_assert_eq(sw_loop_count_stubs(loop), 0);
	t_assert(sw_loop_free(loop) == NULL);
}

/* Many stubs in flight at once; waited in the reverse order of their
 * resumes, so most results arrive during another stub's wait and must be
 * kept pending for their own. */
static void case_many_in_flight(intptr_t mode)
{
	enum { NSTUBS = 12, ROUNDS = 300 };
	struct sw_loop *loop = t_loop_p(mode);
	struct sw_stub *stub[NSTUBS];
	struct sw_event ev;
	unsigned i, r;

	for (i = 0; i < NSTUBS; i++)
		stub[i] = t_spawn(loop, (T_PMODE(mode) + i) % 2, "echo", 0);
	for (i = NSTUBS; i-- > 0;)
		t_expect(stub[i], SW_EV_REPORT, NULL);
	t_assert_eq(sw_loop_count_stubs(loop), NSTUBS);
	for (r = 1; r <= ROUNDS; r++) {
		for (i = 0; i < NSTUBS; i++) {
			t_pl(stub[i])->req = r * 100 + i;
			t_assert_rc(sw_stub_resume(stub[i]), 0);
		}
		t_assert_eq(sw_loop_count_in_flight(loop), NSTUBS);
		for (i = NSTUBS; i-- > 0;) {
			t_assert_rc(sw_stub_wait(stub[i], &ev), SW_EV_REPORT);
			t_assert_eq(t_pl(stub[i])->ack, r * 100 + i + 1);
		}
		t_assert_eq(sw_loop_count_in_flight(loop), 0);
	}
	for (i = 0; i < NSTUBS; i++)
		t_stop(stub[i]);
	t_assert(sw_loop_free(loop) == NULL);
}

/* sw_loop_free() kills, reaps and frees what is still attached. */
static void case_loop_free_kills(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *a = t_spawn_echo(loop, mode);

	t_spawn(loop, mode, "stall", T_STALL_FUTEX);
	t_assert_rc(sw_stub_resume(a), 0);
	t_assert(sw_loop_free(loop) == NULL);
	/* the harness checks that no child, zombie or fd is left */
}

static const struct t_case cases[] = {
	{ "smoke/fn", case_smoke, T_FN, 0 },
	{ "smoke/exec", case_smoke, T_EXEC, 0 },
	{ "smoke/fn+poll", case_smoke, T_FN | T_POLL, 0 },
	{ "handshakes/fn", case_handshakes, T_FN, 60 },
	{ "handshakes/exec", case_handshakes, T_EXEC, 60 },
	{ "handshakes/fn+poll", case_handshakes, T_FN | T_POLL, 60 },
	{ "handshakes/exec+poll", case_handshakes, T_EXEC | T_POLL, 60 },
	{ "page_header/fn", case_page_header, T_FN, 0 },
	{ "page_header/exec", case_page_header, T_EXEC, 0 },
	{ "many_in_flight/fn", case_many_in_flight, T_FN, 30 },
	{ "many_in_flight/fn+poll", case_many_in_flight, T_FN | T_POLL, 30 },
	{ "loop_free_kills/fn", case_loop_free_kills, T_FN, 0 },
	{ "loop_free_kills/exec", case_loop_free_kills, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
