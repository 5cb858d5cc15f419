// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * After a plain fork(), the child's copy of a loop is refused with -ECHILD
 * (as sd-event does): sw_loop_get_fd, sw_loop_dispatch, sw_stub_resume,
 * sw_stub_wait, sw_stub_run, sw_stub_kill, sw_stub_detach, sw_stub_spawn,
 * and so sw_ev_attach.  The child can still free its copy, which kills
 * nothing and leaves the parent's loop and stubs working.  A glue attached
 * before the fork stops its watcher in the child on the first -ECHILD.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_ev.h"

static void wait_child_ok(pid_t pid)
{
	int status;

	T_EQ(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "the forked child failed: status %#x", status);
}

static int dummy_stub(struct sw_page *page, void *arg)
{
	(void)page;
	(void)arg;
	return 0;
}

static void child_checks(struct sw_loop *loop, struct sw_stub *idle,
			 struct sw_stub *busy)
{
	struct sw_spawn_opts so = { .size = sizeof(so), .fn = dummy_stub };
	struct sw_stub *ns = (struct sw_stub *)&ns;
	struct ev_loop *evl = ev_loop_new(0);
	struct sw_ev *g = (struct sw_ev *)&g;
	struct sw_event ev = { 0 };

	T_EQ(sw_loop_get_fd(loop), -ECHILD);
	T_EQ(sw_loop_dispatch(loop), -ECHILD);
	T_EQ(sw_stub_resume(idle), -ECHILD);
	T_EQ(sw_stub_run(idle, &ev), -ECHILD);
	T_EQ(sw_stub_wait(busy, &ev), -ECHILD);
	T_EQ(sw_stub_kill(idle, SW_KILL_USER), -ECHILD);
	T_EQ(sw_stub_kill(busy, SW_KILL_USER), -ECHILD);
	T_EQ(sw_stub_detach(idle), -ECHILD);
	T_EQ(sw_stub_spawn(loop, &so, &ns), -ECHILD);
	T_ASSERT(ns == (struct sw_stub *)&ns, "ret_stub clobbered");
	T_ASSERT(evl, "ev_loop_new");
	T_EQ(sw_ev_attach(loop, evl, &g), -ECHILD);
	T_ASSERT(g == (struct sw_ev *)&g, "ret_glue clobbered");
	ev_loop_destroy(evl);
	/* Freeing the copy is allowed: no SIGKILL, no epoll_ctl on the set
	 * the parent shares, only this process's fds and memory. */
	T_ASSERT(sw_loop_free(loop) == NULL, "free the child's copy");
}

/* Both stubs must still answer the parent after the child is gone. */
static void parent_goes_on(struct sw_loop *loop, struct sw_stub *idle,
			   struct sw_stub *busy, unsigned busy_reports)
{
	struct sw_event ev = { 0 };
	uint64_t seq;

	if (busy_reports == 0) {
		T_EQ(sw_stub_wait(busy, &ev), SW_EV_REPORT);
		T_EQ(t_msg(busy)->reports, 2);
	}
	seq = t_cmd(idle, T_CMD_ECHO, 0);
	T_EQ(sw_stub_run(idle, &ev), SW_EV_REPORT);
	T_EQ(t_msg(idle)->reply, seq);
	seq = t_cmd(busy, T_CMD_EXIT, 12);
	T_EQ(sw_stub_run(busy, &ev), SW_EV_EXIT);
	T_ASSERT(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 12,
		 "status %#x", ev.status);
	T_EQ(sw_loop_count_stubs(loop), 2);
}

static int case_plain(void *arg)
{
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct sw_stub *idle = t_spawn_ok(loop), *busy = t_spawn_ok(loop);
	struct sw_event ev = { 0 };
	pid_t pid;

	(void)arg;
	T_EQ(sw_stub_wait(idle, &ev), SW_EV_REPORT);
	T_EQ(sw_stub_wait(busy, &ev), SW_EV_REPORT);
	t_cmd(busy, T_CMD_SLEEP, 100 * 1000);
	T_EQ(sw_stub_resume(busy), 0); /* in flight across the fork */

	fflush(NULL);
	pid = fork();
	T_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		child_checks(loop, idle, busy);
		exit(0);
	}
	wait_child_ok(pid);
	parent_goes_on(loop, idle, busy, 0);
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	return T_PASS;
}

/* The glue in the child: libev's loop is carried over (ev_loop_fork(), as
 * libev requires), and the copied ev_io fires when the parent's stub
 * reports, since the epoll set is shared.  The glue's dispatch gets -ECHILD
 * and stops the watcher instead of spinning on a readable fd. */
struct got {
	bool done;
};

static int on_report(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct got *g = ud;

	(void)s;
	T_EQ(ev->type, SW_EV_REPORT);
	g->done = true;
	return 0;
}

static void on_child_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(l, EVBREAK_ALL);
}

static int case_glue(void *arg)
{
	enum t_evkind kind = (enum t_evkind)(intptr_t)arg;
	struct ev_loop *evl = t_evloop(kind);
	struct sw_loop *loop = t_loop(T_TICK_NS, T_STALL, 0);
	struct sw_stub *idle = t_spawn_ok(loop), *busy = t_spawn_ok(loop);
	struct sw_event ev = { 0 };
	struct got got = { false };
	struct sw_ev *g;
	pid_t pid;

	T_EQ(sw_stub_wait(idle, &ev), SW_EV_REPORT);
	T_EQ(sw_stub_wait(busy, &ev), SW_EV_REPORT);
	T_EQ(sw_ev_attach(loop, evl, &g), 0);
	T_EQ(sw_stub_set_callback(busy, on_report, &got), 0);
	t_cmd(busy, T_CMD_SLEEP, 100 * 1000);
	T_EQ(sw_stub_resume(busy), 0);

	fflush(NULL);
	pid = fork();
	T_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		ev_timer timeout;

		ev_loop_fork(evl);
		ev_timer_init(&timeout, on_child_timeout, 2.0, 0.);
		ev_timer_start(evl, &timeout);
		ev_run(evl, EVRUN_ONCE); /* the stub's report: ev_io fires */
		ev_timer_stop(evl, &timeout);
		T_EQ(sw_ev_take_error(g), -ECHILD);
		T_EQ(ev_is_active(sw_ev_watcher(g)), 0);
		T_ASSERT(!got.done, "a callback ran in the child");
		T_ASSERT(sw_ev_detach(g) == NULL, "detach in the child");
		child_checks(loop, idle, busy);
		t_evloop_free(evl);
		exit(0);
	}
	wait_child_ok(pid);
	/* The parent's glue still delivers the report the child saw. */
	T_ASSERT(t_ev_run_until(evl, &got.done, 2000), "no report in the parent");
	T_EQ(sw_ev_take_error(g), 0);
	T_EQ(sw_stub_set_callback(busy, NULL, NULL), 0);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	parent_goes_on(loop, idle, busy, 1);
	T_ASSERT(sw_loop_free(loop) == NULL, "loop free");
	t_evloop_free(evl);
	return T_PASS;
}

int main(void)
{
	static const struct t_case cases[] = {
		{ "fork: the child's copy gives -ECHILD, the parent goes on",
		  case_plain, NULL, 20000 },
		{ "fork: an attached glue stops in the child (ev_default_loop)",
		  case_glue, (void *)(intptr_t)T_EV_DEFAULT, 20000 },
		{ "fork: an attached glue stops in the child (ev_loop_new)",
		  case_glue, (void *)(intptr_t)T_EV_NEW, 20000 },
	};

	return t_run("t_ev_fork", cases, sizeof(cases) / sizeof(cases[0]));
}
