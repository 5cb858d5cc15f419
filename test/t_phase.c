/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stub's lifecycle (src/lifecycle.c, compiled in, with no kernel object:
 * the loop and its stubs are plain structs): the transition table of
 * src/lifecycle.h cell by cell, the lists that follow the phase, and the
 * invariant checker, which the rest of the suite runs after every wait and
 * dispatch (STUBWATCH_CHECK=1).  Here each invariant is broken on purpose,
 * one at a time, and the checker must name it; a checked loop that makes a
 * transition the table does not list must stop the process.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "t_util.h"

/* The table of lifecycle.h, written out again from its text. */
static const struct {
	enum sw_phase from, to;
} table[] = {
	{ SW_PH_NEW, SW_PH_IN_FLIGHT },
	{ SW_PH_HELD, SW_PH_IN_FLIGHT },
	{ SW_PH_IN_FLIGHT, SW_PH_REPORTED },
	{ SW_PH_IN_FLIGHT, SW_PH_KILLING },
	{ SW_PH_IN_FLIGHT, SW_PH_ENDED },
	{ SW_PH_HELD, SW_PH_ENDED },
	{ SW_PH_REPORTED, SW_PH_HELD },
	{ SW_PH_REPORTED, SW_PH_KILLING_REPORTED },
	{ SW_PH_REPORTED, SW_PH_OWED_REPORTED },
	{ SW_PH_HELD, SW_PH_KILLING },
	{ SW_PH_KILLING, SW_PH_ENDED },
	{ SW_PH_KILLING_REPORTED, SW_PH_KILLING },
	{ SW_PH_KILLING_REPORTED, SW_PH_OWED_REPORTED },
	{ SW_PH_OWED_REPORTED, SW_PH_OWED_HELD },
	{ SW_PH_OWED_HELD, SW_PH_ENDED },
	{ SW_PH_ENDED, SW_PH_DELIVERED },
};

static bool in_table(enum sw_phase from, enum sw_phase to)
{
	for (size_t i = 0; i < T_NCASES(table); i++)
		if (table[i].from == from && table[i].to == to)
			return true;
	return false;
}

static void test_table(intptr_t unused)
{
	int legal = 0;

	for (int f = 0; f < SW_PH_NPHASES; f++)
		for (int t = 0; t < SW_PH_NPHASES; t++) {
			t_assert_msg(sw__phase_legal(f, t) == in_table(f, t),
				     "%s -> %s", sw__phase_name(f),
				     sw__phase_name(t));
			legal += sw__phase_legal(f, t);
		}
	t_assert(legal == (int)T_NCASES(table));
	t_assert(!sw__phase_legal(SW_PH_NPHASES, SW_PH_HELD));
	t_assert(!sw__phase_legal(SW_PH_HELD, SW_PH_NPHASES));
	/* the end is the end */
	for (int t = 0; t < SW_PH_NPHASES; t++)
		t_assert(!sw__phase_legal(SW_PH_DELIVERED, t));
}

/* ---- a loop of plain structs -------------------------------------------- */

#define NSTUBS 6

static struct sw_loop loop;
static struct sw_stub st[NSTUBS];

static void add(struct sw_stub *s, pid_t pid)
{
	memset(s, 0, sizeof(*s));
	s->pid = pid;
	s->xfd = -1;
	s->loop = &loop;
	s->l_next = loop.stubs;
	if (loop.stubs)
		loop.stubs->l_prev = s;
	loop.stubs = s;
	loop.nstubs++;
}

/* Walk a stub through the table the way the loop does, keeping the
 * watchdog's state and the other columns in step. */
static void fly(struct sw_stub *s)
{
	s->ev.type = 0;
	s->wd.state = SW_WD_RUNNING;
	sw__phase_set(&loop, s, SW_PH_IN_FLIGHT);
}

static void report(struct sw_stub *s, enum sw_event_type type)
{
	s->wd.state = SW_WD_IDLE;
	sw__complete(&loop, s, type);
}

static void kill_it(struct sw_stub *s)
{
	s->wd.state = SW_WD_KILLING;
	sw__phase_set(&loop, s, s->phase == SW_PH_REPORTED
					? SW_PH_KILLING_REPORTED
					: SW_PH_KILLING);
}

static void die(struct sw_stub *s)
{
	s->reaped = true;
	if (s->phase == SW_PH_REPORTED || s->phase == SW_PH_KILLING_REPORTED) {
		sw__phase_set(&loop, s, SW_PH_OWED_REPORTED);
		return;
	}
	s->wd.state = SW_WD_DEAD;
	sw__complete(&loop, s, s->phase == SW_PH_KILLING ? SW_EV_KILL
							  : SW_EV_EXIT);
}

/* One stub in each of the phases a wait can leave behind. */
static void build(void)
{
	memset(&loop, 0, sizeof(loop));
	loop.kickfd = -1;
	loop.armed = true;
	loop.check = true;
	for (int i = 0; i < NSTUBS; i++)
		add(&st[i], 100 + i);
	fly(&st[0]); /* IN_FLIGHT */
	fly(&st[1]);
	report(&st[1], SW_EV_FD); /* REPORTED (an answer) */
	fly(&st[2]);
	report(&st[2], SW_EV_REPORT);
	sw__take_event(&loop, &st[2], NULL); /* HELD */
	fly(&st[3]);
	kill_it(&st[3]); /* KILLING */
	fly(&st[4]);
	report(&st[4], SW_EV_REPORT);
	kill_it(&st[4]); /* KILLING_REPORTED */
	die(&st[4]);     /* OWED_REPORTED */
	fly(&st[5]);
	kill_it(&st[5]);
	die(&st[5]); /* ENDED */
}

static void test_lists(intptr_t unused)
{
	struct sw_event ev;

	build();
	t_assert(st[0].phase == SW_PH_IN_FLIGHT);
	t_assert(st[1].phase == SW_PH_REPORTED);
	t_assert(st[2].phase == SW_PH_HELD);
	t_assert(st[3].phase == SW_PH_KILLING);
	t_assert(st[4].phase == SW_PH_OWED_REPORTED);
	t_assert(st[5].phase == SW_PH_ENDED);
	t_assert(loop.n_in_flight == 1 && loop.q_head == &st[0] &&
		 loop.q_tail == &st[0]);
	t_assert(loop.dying == &st[3] && !st[3].k_next);
	t_assert_msg(!sw__loop_check(&loop, NULL), "%s", sw__loop_check(&loop, NULL));

	/* taken: an owed death stays owed until it is delivered */
	t_assert(sw__take_event(&loop, &st[4], &ev) == SW_EV_REPORT);
	t_assert(st[4].phase == SW_PH_OWED_HELD);
	st[4].wd.state = SW_WD_DEAD;
	sw__complete(&loop, &st[4], SW_EV_KILL);
	t_assert(st[4].phase == SW_PH_ENDED);
	t_assert(sw__take_event(&loop, &st[4], &ev) == SW_EV_KILL);
	t_assert(st[4].phase == SW_PH_DELIVERED);
	/* the dying one's death takes it off the list of the dying */
	die(&st[3]);
	t_assert(st[3].phase == SW_PH_ENDED && !loop.dying);
	/* a held one goes back in flight at the tail of the queue */
	fly(&st[2]);
	t_assert(loop.n_in_flight == 2 && loop.q_tail == &st[2] &&
		 loop.q_head == &st[0]);
	t_assert_msg(!sw__loop_check(&loop, NULL), "%s", sw__loop_check(&loop, NULL));
	/* leaving the loop takes it off every list; the phase stays */
	sw__lists_leave(&loop, &st[0]);
	t_assert(loop.n_in_flight == 1 && loop.q_head == &st[2]);
	t_assert(st[0].phase == SW_PH_IN_FLIGHT);
}

/* Each way to break the table, and what the checker must say. */
static void test_checker(intptr_t unused)
{
	static const struct {
		const char *says;
	} breaks[] = {
		{ "the watchdog's state does not fit the phase" },
		{ "reaped, or not, against the phase" },
		{ "a pending report that is neither REPORT nor FD" },
		{ "a pending end that is neither EXIT nor KILL" },
		{ "a stub in flight that still holds an event" },
		{ "on the callback queue with nothing pending" },
		{ "muted while killed or dead" },
		{ "the target of a wait that has returned" },
		{ "a watched fd armed that is not there" },
		{ "nstubs is not the number of stubs" },
		{ "the in-flight queue is not every stub in flight" },
		{ "the list of the dying is not every stub killed" },
		{ "stubs in flight or dying with the timer off" },
		{ "a stub of the loop in no phase, or never put in flight" },
		{ "the in-flight queue holds a stub not in flight" },
		{ "the muted list holds a stub not muted" },
	};

	for (size_t i = 0; i < T_NCASES(breaks); i++) {
		const char *said;

		build();
		t_assert_msg(!sw__loop_check(&loop, NULL), "%s", sw__loop_check(&loop, NULL));
		switch (i) {
		case 0: st[0].wd.state = SW_WD_IDLE; break;
		case 1: st[2].reaped = true; break;
		case 2: st[1].ev.type = SW_EV_KILL; break;
		case 3: st[5].ev.type = SW_EV_REPORT; break;
		case 4: st[0].ev.type = SW_EV_REPORT; break;
		case 5: st[2].on_done = true; break;
		case 6: st[3].muted = true; break;
		case 7: st[2].waited = true; break;
		case 8: st[2].xfd_armed = true; break;
		case 9: loop.nstubs++; break;
		case 10: loop.n_in_flight++; break;
		case 11: loop.dying = NULL; break;
		case 12: loop.armed = false; break;
		case 13: st[2].phase = SW_PH_NPHASES; break;
		case 14:
			/* in phase, but queued twice over: the queue's walk */
			st[2].phase = SW_PH_IN_FLIGHT;
			st[2].wd.state = SW_WD_RUNNING;
			st[2].ev.type = 0;
			loop.q_tail->q_next = &st[2];
			st[2].q_prev = loop.q_tail;
			loop.q_tail = &st[2];
			loop.n_in_flight++;
			st[0].q_next = &st[3]; /* a killed one in between */
			break;
		case 15: loop.muted = &st[2]; break;
		}
		said = sw__loop_check(&loop, NULL);
		t_assert_msg(said && !strcmp(said, breaks[i].says),
			     "break %zu: checker said \"%s\", not \"%s\"", i,
			     said ? said : "(nothing)", breaks[i].says);
	}
}

/* A checked loop stops at a transition the table does not list. */
static void test_illegal_aborts(intptr_t unused)
{
	int p[2], status;
	char buf[256] = "";
	pid_t pid;
	ssize_t n;

	t_assert(pipe(p) == 0);
	pid = fork();
	t_assert(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 2);
		build();
		/* a report cannot go back in flight without being taken */
		sw__phase_set(&loop, &st[1], SW_PH_IN_FLIGHT);
		exit(0);
	}
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	t_assert(waitpid(pid, &status, 0) == pid);
	t_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		     "status %#x", status);
	t_assert(n > 0);
	t_assert_msg(strstr(buf, "a transition lifecycle.h does not list") &&
			     strstr(buf, "phase REPORTED"),
		     "said: %s", buf);

	/* unchecked, the same call is made (the library never aborts) */
	build();
	loop.check = false;
	sw__phase_set(&loop, &st[1], SW_PH_IN_FLIGHT);
	t_assert(st[1].phase == SW_PH_IN_FLIGHT && loop.n_in_flight == 2);
}

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{ "table", test_table, 0, 0 },
		{ "lists", test_lists, 0, 0 },
		{ "checker", test_checker, 0, 0 },
		{ "illegal_aborts", test_illegal_aborts, 0, 0 },
	};

	return t_main(argc, argv, cases, T_NCASES(cases));
}
