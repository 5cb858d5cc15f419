// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Foreign reapers.  Under ev_default_loop() with an ev_child watcher for any
 * pid, libev's SIGCHLD handler reaps every child it can with waitpid(-1).
 * Stubs are spawned with exit_signal 0, so it cannot see fn-mode stubs:
 * their exit status still reaches stubwatch's callbacks, and the ev_child
 * watcher sees only the plain fork() children.  Also with SIGCHLD set to
 * SIG_IGN.  Where a foreign reaper does take a stub (an exec'd stub, whose
 * exit_signal execve() resets to SIGCHLD; or a waitid() with __WALL), the
 * stub still completes, with the status its pidfd kept (Linux 6.15+; -1
 * before), and the loop does not spin on its readable pidfd.
 */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_ev.h"

#define MAX_SEEN 8

struct reaper {
	ev_child any, one;   /* pid 0 (any child), and one stub's pid */
	pid_t seen[MAX_SEEN];
	int seen_status[MAX_SEEN];
	int nseen, one_fired;
	bool got_plain;
};

static void on_child(struct ev_loop *l, ev_child *w, int revents)
{
	struct reaper *r = (struct reaper *)((char *)w -
					     offsetof(struct reaper, any));

	(void)l;
	(void)revents;
	T_ASSERT(r->nseen < MAX_SEEN, "too many children");
	r->seen[r->nseen] = w->rpid;
	r->seen_status[r->nseen++] = w->rstatus;
	r->got_plain = true;
}

static void on_child_one(struct ev_loop *l, ev_child *w, int revents)
{
	struct reaper *r = (struct reaper *)((char *)w -
					     offsetof(struct reaper, one));

	(void)l;
	(void)revents;
	r->one_fired++;
}

struct ends {
	struct sw_event ev[3];
	int n;
	bool done;
};

struct stubctx {
	struct ends *ends;
	int idx;
};

static int on_stub(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct stubctx *c = ud;

	(void)s;
	if (ev->type == SW_EV_REPORT)
		T_ASSERT(0, "stub %d: unexpected report", c->idx);
	c->ends->ev[c->idx] = *ev;
	if (++c->ends->n == 3)
		c->ends->done = true;
	return 0;
}

/* Block until the stub is a zombie, without reaping it. */
static void wait_zombie(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	T_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | __WALL), 0);
	T_EQ(si.si_pid, pid);
}

static pid_t plain_child(int code)
{
	pid_t pid = fork();

	T_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
		_exit(code); /* a plain child: nothing of ours to leak-check */
	return pid;
}

static int case_default_loop(void *arg)
{
	struct ev_loop *evl = t_evloop(T_EV_DEFAULT);
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct sw_stub *st[3];
	struct stubctx ctx[3];
	struct ends ends = { .n = 0 };
	struct reaper r = { .nseen = 0 };
	pid_t pids[3], plain[2];
	struct sw_ev *g;
	int i;

	(void)arg;
	for (i = 0; i < 3; i++) {
		st[i] = t_spawn_ok(loop);
		pids[i] = sw_stub_pid(st[i]);
		ctx[i] = (struct stubctx){ &ends, i };
	}
	ev_child_init(&r.any, on_child, 0, 0);
	ev_child_start(evl, &r.any);
	ev_child_init(&r.one, on_child_one, pids[0], 0);
	ev_child_start(evl, &r.one);

	/* Stubs 0 and 1 die while nobody collects them (the glue is not
	 * attached yet): zombies.  Then a plain child exits: libev's SIGCHLD
	 * handler runs its waitpid(-1) loop with both zombies there. */
	for (i = 0; i < 3; i++) {
		t_wait_reported(st[i], 2000);
		T_EQ(sw_stub_wait(st[i], &(struct sw_event){ 0 }), SW_EV_REPORT);
	}
	t_cmd(st[0], T_CMD_EXIT, 7);
	T_EQ(sw_stub_resume(st[0]), 0);
	t_cmd(st[1], T_CMD_SIGNAL, SIGTERM);
	T_EQ(sw_stub_resume(st[1]), 0);
	wait_zombie(pids[0]);
	wait_zombie(pids[1]);
	plain[0] = plain_child(5);
	T_ASSERT(t_ev_run_until(evl, &r.got_plain, 2000),
		 "ev_child never saw the plain child");
	T_EQ(r.nseen, 1);
	T_EQ(r.seen[0], plain[0]);

	/* Now stubwatch collects them; stub 2 stalls meanwhile and a second
	 * plain child exits while it does. */
	for (i = 0; i < 3; i++)
		T_EQ(sw_stub_set_callback(st[i], on_stub, &ctx[i]), 0);
	t_cmd(st[2], T_CMD_STALL, 0);
	T_EQ(sw_stub_resume(st[2]), 0);
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	r.got_plain = false;
	plain[1] = plain_child(6);
	T_ASSERT(t_ev_run_until(evl, &ends.done, 3000), "%d of 3 stubs ended",
		 ends.n);
	T_ASSERT(t_ev_run_until(evl, &r.got_plain, 2000),
		 "ev_child never saw the second plain child");

	T_EQ(ends.ev[0].type, SW_EV_EXIT);
	T_ASSERT(WIFEXITED(ends.ev[0].status) &&
			 WEXITSTATUS(ends.ev[0].status) == 7,
		 "status %#x", ends.ev[0].status);
	T_EQ(ends.ev[1].type, SW_EV_EXIT);
	T_ASSERT(WIFSIGNALED(ends.ev[1].status) &&
			 WTERMSIG(ends.ev[1].status) == SIGTERM,
		 "status %#x", ends.ev[1].status);
	T_EQ(ends.ev[2].type, SW_EV_KILL);
	T_EQ(ends.ev[2].kill.reason, SW_KILL_STALL);
	T_ASSERT(WIFSIGNALED(ends.ev[2].status) &&
			 WTERMSIG(ends.ev[2].status) == SIGKILL,
		 "status %#x", ends.ev[2].status);

	/* ev_child saw the two plain children, with their status, and no
	 * stub: neither through pid 0 nor through a stub's own pid. */
	T_EQ(r.nseen, 2);
	T_EQ(r.seen[1], plain[1]);
	T_ASSERT(WIFEXITED(r.seen_status[0]) && WEXITSTATUS(r.seen_status[0]) == 5,
		 "plain status %#x", r.seen_status[0]);
	T_ASSERT(WIFEXITED(r.seen_status[1]) && WEXITSTATUS(r.seen_status[1]) == 6,
		 "plain status %#x", r.seen_status[1]);
	for (i = 0; i < r.nseen; i++)
		T_ASSERT(r.seen[i] != pids[0] && r.seen[i] != pids[1] &&
				 r.seen[i] != pids[2],
			 "ev_child saw stub pid %d", (int)r.seen[i]);
	T_EQ(r.one_fired, 0);

	ev_child_stop(evl, &r.any);
	ev_child_stop(evl, &r.one);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
	return T_PASS;
}

/* SIGCHLD = SIG_IGN makes the kernel auto-reap children whose exit signal
 * is SIGCHLD; a stub's is 0, so it stays for stubwatch to reap. */
struct one_end {
	struct sw_event ev;
	bool done;
};

static int on_one_end(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct one_end *e = ud;

	(void)s;
	e->ev = *ev;
	e->done = ev->type != SW_EV_REPORT;
	return 0;
}

static int case_sig_ign(void *arg)
{
	struct ev_loop *evl = t_evloop(T_EV_NEW);
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct sw_stub *s = t_spawn_ok(loop);
	struct one_end e = { .done = false };
	struct sw_ev *g;

	(void)arg;
	T_ASSERT(signal(SIGCHLD, SIG_IGN) != SIG_ERR, "signal");
	t_wait_reported(s, 2000);
	T_EQ(sw_stub_wait(s, &(struct sw_event){ 0 }), SW_EV_REPORT);
	t_cmd(s, T_CMD_EXIT, 9);
	T_EQ(sw_stub_resume(s), 0);
	wait_zombie(sw_stub_pid(s));
	T_EQ(sw_stub_set_callback(s, on_one_end, &e), 0);
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	T_ASSERT(t_ev_run_until(evl, &e.done, 2000), "no exit callback");
	T_EQ(e.ev.type, SW_EV_EXIT);
	T_ASSERT(WIFEXITED(e.ev.status) && WEXITSTATUS(e.ev.status) == 9,
		 "status %#x", e.ev.status);
	signal(SIGCHLD, SIG_DFL);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
	return T_PASS;
}

/* A stub whose status someone else took: it completes all the same, and
 * the loop's fd goes quiet (no spinning on a readable pidfd). */
struct taken {
	struct sw_event ev;
	bool done;
};

static int on_taken(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct taken *t = ud;

	(void)s;
	t->ev = *ev;
	t->done = true;
	return 0;
}

static void check_taken_status(const struct sw_event *ev, int code)
{
	T_EQ(ev->type, SW_EV_EXIT);
	if (ev->status == -1) {
		t_note("status lost: the kernel's pidfd has no exit info "
		       "(before 6.15)");
		return;
	}
	T_ASSERT(WIFEXITED(ev->status) && WEXITSTATUS(ev->status) == code,
		 "status %#x", ev->status);
}

static int case_waitid_wall(void *arg)
{
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct sw_stub *s = t_spawn_ok(loop);
	struct sw_event ev = { 0 };
	struct pollfd p = { .events = POLLIN };
	struct taken t = { .done = false };
	siginfo_t si;
	int dispatches = 0;

	(void)arg;
	T_EQ(sw_stub_wait(s, &ev), SW_EV_REPORT);
	T_EQ(sw_stub_set_callback(s, on_taken, &t), 0);
	t_cmd(s, T_CMD_EXIT, 5);
	T_EQ(sw_stub_resume(s), 0);
	/* A careless host reaps every child, clones included. */
	memset(&si, 0, sizeof(si));
	T_EQ(waitid(P_PID, (id_t)sw_stub_pid(s), &si, WEXITED | __WALL), 0);
	p.fd = sw_loop_get_fd(loop);
	/* The death is there before the first poll (the test reaped the
	 * stub), so its pidfd is readable: the loop's fd is at once, and stays
	 * so until the death is delivered; a loop that lost it never
	 * completes (the case's timeout). */
	while (!t.done) {
		T_ASSERT(poll(&p, 1, 0) == 1, "the loop's fd is not readable "
			 "with a death to deliver; %d dispatches", dispatches);
		dispatches++;
		T_ASSERT(sw_loop_dispatch(loop) >= 0, "dispatch");
	}
	T_ASSERT(dispatches < 10, "%d dispatches for one death", dispatches);
	check_taken_status(&t.ev, 5);
	/* Nothing left to wake the host but, if a period went by since, the
	 * timer armed while the stub was in flight: the read that finds
	 * nothing in flight disarms it (a loaded host can be that late). */
	if (poll(&p, 1, 0) == 1)
		T_EQ(sw_loop_dispatch(loop), 0);
	T_EQ(poll(&p, 1, 0), 0);
	T_ASSERT(sw_stub_free(s) == NULL, "free");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	return T_PASS;
}

/* An exec'd stub under ev_default_loop: execve() gave it exit_signal
 * SIGCHLD, so libev's waitpid(-1) reaps it and ev_child sees it. */
static int case_exec_default_loop(void *arg)
{
	static char *const argv[] = { "sh", "-c", "exit 7", NULL };
	struct sw_spawn_opts so = { .size = sizeof(so), .path = "/bin/sh",
				    .argv = argv, .flags = SW_SPAWN_PDEATHSIG };
	struct ev_loop *evl = t_evloop(T_EV_DEFAULT);
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct taken t = { .done = false };
	struct reaper r = { .nseen = 0 };
	struct sw_stub *s;
	struct sw_ev *g;
	pid_t pid;
	int ret;

	(void)arg;
	ev_child_init(&r.any, on_child, 0, 0);
	ev_child_start(evl, &r.any);
	ret = sw_stub_spawn(loop, &so, &s);
	if (ret == -ENOSYS)
		return t_skip("clone3 or pidfds missing");
	T_EQ(ret, 0);
	pid = sw_stub_pid(s);
	T_EQ(sw_stub_set_callback(s, on_taken, &t), 0);
	/* libev first: let its SIGCHLD handler take the zombie. */
	wait_zombie(pid);
	T_ASSERT(t_ev_run_until(evl, &r.got_plain, 2000),
		 "ev_child never saw the exec'd stub");
	T_EQ(r.nseen, 1);
	T_EQ(r.seen[0], pid);
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	T_ASSERT(t_ev_run_until(evl, &t.done, 2000), "the stub never completes");
	check_taken_status(&t.ev, 7);
	ev_child_stop(evl, &r.any);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
	return T_PASS;
}

int main(void)
{
	static const struct t_case cases[] = {
		{ "ev_default_loop + ev_child(0): stubs report their own exit, "
		  "ev_child sees only plain children",
		  case_default_loop, NULL, 20000 },
		{ "SIGCHLD = SIG_IGN: a stub's exit status still arrives",
		  case_sig_ign, NULL, 20000 },
		{ "a foreign waitid(__WALL) takes a stub: it still completes, "
		  "no spinning", case_waitid_wall, NULL, 20000 },
		{ "an exec'd stub under ev_default_loop: libev reaps it, "
		  "stubwatch still completes it", case_exec_default_loop, NULL,
		  5000 },
	};

	return t_run("t_ev_reaper", cases, sizeof(cases) / sizeof(cases[0]));
}
