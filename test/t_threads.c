/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SMP: one loop per thread, sharing nothing.  Several loops run at once and
 * only the stalled stub among them is killed; a stub handed from one loop
 * (thread) to another keeps working; a second wait on a loop in use by
 * another thread is refused.  This is the program to run under
 * ThreadSanitizer (configure with CFLAGS=-fsanitize=thread); there its
 * fn-mode cases skip and every stub is exec'd (see T_TSAN).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

/* Under ThreadSanitizer an exec'd stub spends tens of milliseconds in the
 * sanitizer's start-up before its first report, and everything runs several
 * times slower: the loops of case_loops tick 5 times slower there, so that a
 * well-behaved stub is not rightly killed for a start-up the test caused. */
#define W_TICK_NS (T_TSAN ? 5 * T_TICK_NS : T_TICK_NS)

/* ---- several loops, one stalled stub -------------------------------------- */

enum { NWORKERS = 4, NSTUBS = 3, STALLED_WORKER = 2, STALLED_STUB = 1 };
enum { STALL_ROUND = 20, MIN_ROUNDS = 40 };

/* The stalled stub's kill has been seen: the other loops may stop once
 * they have made MIN_ROUNDS rounds too. */
static bool killed;

struct worker {
	unsigned id;
	pthread_t th;
	/* results */
	unsigned long rounds;
	unsigned kills;
	uint64_t t_before, t_after;
};

/* Rounds, not a time: each loop makes MIN_ROUNDS rounds at least and goes
 * on until the stalled stub's kill, so that the loops run at once however
 * slowly the host schedules their stubs. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct sw_loop *loop = t_loop_opts(W_TICK_NS, T_STALL, 0, 0);
	struct sw_stub *stub[NSTUBS];
	bool stalls[NSTUBS] = { false };
	struct sw_event ev;
	unsigned i;

	for (i = 0; i < NSTUBS; i++)
		stub[i] = t_spawn_echo(loop, T_TSAN ? T_EXEC : (w->id + i) % 2);
	while (w->rounds < MIN_ROUNDS ||
	       !__atomic_load_n(&killed, __ATOMIC_ACQUIRE)) {
		w->rounds++;
		for (i = 0; i < NSTUBS; i++) {
			if (!stub[i])
				continue;
			t_pl(stub[i])->req = w->rounds * 10 + i;
			if (w->id == STALLED_WORKER && i == STALLED_STUB &&
			    w->rounds == STALL_ROUND) {
				t_pl(stub[i])->arg = T_STALL_FUTEX;
				t_pl(stub[i])->req = T_REQ_STALL;
				stalls[i] = true;
				w->t_before = t_now_ns();
			}
			t_assert_rc(sw_stub_resume(stub[i]), 0);
			if (stalls[i] && !w->t_after)
				w->t_after = t_now_ns();
		}
		for (i = 0; i < NSTUBS; i++) {
			int rc;

			if (!stub[i])
				continue;
			rc = sw_stub_wait(stub[i], &ev);
			if (!stalls[i]) {
				if (rc != SW_EV_REPORT)
					t_note_event(rc, &ev);
				t_assert_msg(rc == SW_EV_REPORT,
					     "loop %u stub %u: %s", w->id, i,
					     t_ev_name(rc));
				t_assert_eq(t_pl(stub[i])->ack,
					    w->rounds * 10 + i + 1);
				continue;
			}
			t_assert_rc(rc, SW_EV_KILL);
			t_assert_eq(ev.kill.reason, SW_KILL_STALL);
			t_assert_kill_window("the stalled stub among them",
					     loop, w->t_before, w->t_after,
					     &ev.kill);
			w->kills++;
			__atomic_store_n(&killed, true, __ATOMIC_RELEASE);
			t_assert(sw_stub_free(stub[i]) == NULL);
			stub[i] = NULL;
		}
	}
	for (i = 0; i < NSTUBS; i++)
		if (stub[i])
			t_stop(stub[i]);
	t_assert(sw_loop_free(loop) == NULL);
	return NULL;
}

static void case_loops(intptr_t unused)
{
	struct worker w[NWORKERS];
	unsigned i;

	memset(w, 0, sizeof(w));
	for (i = 0; i < NWORKERS; i++) {
		w[i].id = i;
		t_assert(pthread_create(&w[i].th, NULL, worker_main, &w[i]) == 0);
	}
	for (i = 0; i < NWORKERS; i++)
		t_assert(pthread_join(w[i].th, NULL) == 0);
	for (i = 0; i < NWORKERS; i++) {
		t_note("loop %u: %lu rounds of %u stubs, %u kill(s)", i,
		       w[i].rounds, NSTUBS, w[i].kills);
		t_assert(w[i].rounds >= MIN_ROUNDS);
		t_assert_eq(w[i].kills, i == STALLED_WORKER ? 1 : 0);
	}
}

/* ---- handing a stub between threads -------------------------------------- */

struct mailbox {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sw_stub *slot[2]; /* slot[i]: for thread i */
};

static void give(struct mailbox *m, unsigned to, struct sw_stub *stub)
{
	pthread_mutex_lock(&m->mu);
	m->slot[to] = stub;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

static struct sw_stub *take(struct mailbox *m, unsigned me)
{
	struct sw_stub *stub;

	pthread_mutex_lock(&m->mu);
	while (!m->slot[me])
		pthread_cond_wait(&m->cv, &m->mu);
	stub = m->slot[me];
	m->slot[me] = NULL;
	pthread_mutex_unlock(&m->mu);
	return stub;
}

enum { HANDOFFS = 4, HANDOFF_ROUNDS = 300 };

struct handoff {
	struct mailbox box;
	intptr_t mode;
};

/* Thread 0: spawns the stub on its loop, works with it, hands it over,
 * takes it back, HANDOFFS times. */
static void *handoff_a(void *arg)
{
	struct handoff *h = arg;
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, h->mode);
	unsigned i;

	for (i = 0; i < HANDOFFS; i++) {
		t_echo(stub, HANDOFF_ROUNDS);
		t_assert_rc(sw_stub_detach(stub), 0);
		t_assert(sw_stub_loop(stub) == NULL);
		t_assert_rc(sw_loop_count_stubs(loop), 0);
		give(&h->box, 1, stub);
		stub = take(&h->box, 0);
		t_assert_rc(sw_stub_attach(stub, loop), 0);
		t_assert(sw_stub_loop(stub) == loop);
		t_assert_rc(sw_loop_count_stubs(loop), 1);
	}
	t_echo(stub, HANDOFF_ROUNDS);
	t_assert_rc(sw_stub_detach(stub), 0);
	give(&h->box, 1, stub); /* for good */
	t_assert(sw_loop_free(loop) == NULL);
	return NULL;
}

/* Thread 1: a loop with other watchdog settings; at the end the stub
 * stalls there and is killed by this loop's limits. */
static void *handoff_b(void *arg)
{
	const uint64_t tick = 10 * T_MS;
	const uint32_t n = 3;
	struct handoff *h = arg;
	struct sw_loop *loop = t_loop_opts(tick, n, 2, 0);
	struct sw_stub *stub;
	struct sw_event ev;
	uint64_t t0, t1;
	unsigned i;

	for (i = 0; i < HANDOFFS; i++) {
		stub = take(&h->box, 1);
		t_assert_rc(sw_stub_attach(stub, loop), 0);
		t_assert(sw_stub_loop(stub) == loop);
		t_echo(stub, HANDOFF_ROUNDS);
		t_assert_rc(sw_stub_detach(stub), 0);
		give(&h->box, 0, stub);
	}
	stub = take(&h->box, 1);
	t_assert_rc(sw_stub_attach(stub, loop), 0);
	t_pl(stub)->arg = T_STALL_FUTEX;
	t_pl(stub)->req = T_REQ_STALL;
	t0 = t_now_ns();
	t_assert_rc(sw_stub_resume(stub), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t_assert_eq(ev.kill.reason, SW_KILL_STALL);
	t_assert_kill_window("by the loop it was handed to", loop, t0, t1,
			     &ev.kill);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
	return NULL;
}

static void case_handoff(intptr_t mode)
{
	struct handoff h = { .mode = mode };
	pthread_t a, b;

	pthread_mutex_init(&h.box.mu, NULL);
	pthread_cond_init(&h.box.cv, NULL);
	t_assert(pthread_create(&a, NULL, handoff_a, &h) == 0);
	t_assert(pthread_create(&b, NULL, handoff_b, &h) == 0);
	t_assert(pthread_join(a, NULL) == 0);
	t_assert(pthread_join(b, NULL) == 0);
	pthread_cond_destroy(&h.box.cv);
	pthread_mutex_destroy(&h.box.mu);
}

/* ---- a loop in use by another thread's wait -------------------------------- */

struct waiter {
	struct sw_stub *stub;
	int rc;
	pid_t tid; /* atomic */
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct sw_event ev;

	__atomic_store_n(&w->tid, gettid(), __ATOMIC_RELEASE);
	w->rc = sw_stub_wait(w->stub, &ev);
	return NULL;
}

/* The thread sleeps in epoll_wait(2) (or epoll_pwait(2)): inside a wait. */
static bool in_epoll_wait(pid_t tid)
{
	char path[64];
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fscanf(f, "%ld", &nr) != 1)
		nr = -1;
	fclose(f);
#ifdef SYS_epoll_wait
	if (nr == SYS_epoll_wait)
		return true;
#endif
#ifdef SYS_epoll_pwait2
	if (nr == SYS_epoll_pwait2)
		return true;
#endif
	return nr == SYS_epoll_pwait;
}

static void case_wait_busy(intptr_t mode)
{
	/* T = 1 s: the gated stub stays silent while this thread looks */
	struct sw_loop *loop = t_loop_opts(1000 * T_MS, T_STALL, 0, 0);
	struct sw_stub *slow = t_spawn_echo(loop, mode);
	struct sw_stub *other = t_spawn_echo(loop, mode);
	struct waiter w = { .stub = slow };
	struct sw_event ev;
	pthread_t th;
	pid_t tid;

	/* answers once this thread opens its gate: the other thread's wait
	 * lasts until then, whatever the host's scheduling */
	__atomic_store_n(&t_pl(slow)->gate, 0, __ATOMIC_RELEASE);
	t_pl(slow)->req = T_REQ_GATED;
	t_assert_rc(sw_stub_resume(slow), 0);
	t_pl(other)->req = 1;
	t_assert_rc(sw_stub_resume(other), 0);
	t_assert(pthread_create(&th, NULL, waiter_main, &w) == 0);
	while (!(tid = __atomic_load_n(&w.tid, __ATOMIC_ACQUIRE)))
		;
	/* inside the other thread's wait, not before it */
	while (!in_epoll_wait(tid))
		t_sleep_ns(T_MS / 10);
	/* the loop is in use by another wait: refused, whichever stub */
	t_assert_rc(sw_stub_wait(other, &ev), -EBUSY);
	t_assert_rc(sw_stub_wait(slow, &ev), -EBUSY);
	t_assert_rc(sw_loop_dispatch(loop), -EBUSY);
	__atomic_store_n(&t_pl(slow)->gate, 1, __ATOMIC_RELEASE);
	t_futex_wake(&t_pl(slow)->gate);
	t_assert(pthread_join(th, NULL) == 0);
	t_assert_rc(w.rc, SW_EV_REPORT);
	t_assert_eq(t_pl(slow)->ack, T_REQ_GATED + 1);
	/* once that wait is over, this thread may use the loop */
	t_assert_rc(sw_stub_wait(other, &ev), SW_EV_REPORT);
	t_stop(slow);
	t_stop(other);
	t_assert(sw_loop_free(loop) == NULL);
}

static const struct t_case cases[] = {
	{ "loops", case_loops, 0, 20 },
	{ "handoff/fn", case_handoff, T_FN, 20 },
	{ "handoff/exec", case_handoff, T_EXEC, 20 },
	{ "wait_busy/fn", case_wait_busy, T_FN, 0 },
	{ "wait_busy/exec", case_wait_busy, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
