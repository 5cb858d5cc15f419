/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every public call's documented errors, asserted exactly (error codes are
 * API), with ret_* outputs untouched on failure and nothing left behind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

/* A non-NULL pointer that no constructor returns: "left untouched". */
static char sentinel_storage;
#define SENTINEL ((void *)&sentinel_storage)

static struct sw_loop_opts good_opts(void)
{
	struct sw_loop_opts o = {
		.size = sizeof(o),
		.tick_ns = T_TICK_NS,
		.stall_ticks = T_STALL,
	};

	return o;
}

static void loop_new_einval(const struct sw_loop_opts *o, const char *what)
{
	struct sw_loop *loop = SENTINEL;
	int rc = sw_loop_new(o, &loop);

	t_assert_msg(rc == -EINVAL, "%s: sw_loop_new returned %d (%s)", what, rc,
		     t_errname(rc));
	t_assert_msg(loop == SENTINEL, "%s: ret_loop was written", what);
}

static struct sw_loop_opts loop_new_ok(const struct sw_loop_opts *o,
				       const char *what)
{
	struct sw_loop_opts got = { .size = sizeof(got) };
	struct sw_loop *loop = NULL;
	int rc = sw_loop_new(o, &loop);

	t_assert_msg(rc == 0 && loop, "%s: sw_loop_new returned %d (%s)", what,
		     rc, t_errname(rc));
	t_assert_rc(sw_loop_get_opts(loop, &got), 0);
	t_assert(sw_loop_free(loop) == NULL);
	return got;
}

static void case_loop_new(intptr_t unused)
{
	struct sw_loop_opts o, got;
	struct sw_loop *loop = SENTINEL;

	t_assert_rc(sw_loop_new(NULL, NULL), -EINVAL);
	o = good_opts();
	t_assert_rc(sw_loop_new(&o, NULL), -EINVAL);
	t_assert(loop == SENTINEL);

#define BAD(stmt, what)                                                       \
	do {                                                                  \
		o = good_opts();                                              \
		stmt;                                                         \
		loop_new_einval(&o, what);                                    \
	} while (0)
	BAD(o.size = 0, "size 0");
	BAD(o.size = sizeof(size_t), "size covering only `size`");
	BAD((o.tick_ns = 1999, o.timer_div = 2), "period 999 ns");
	BAD((o.tick_ns = 2001, o.timer_div = 2), "tick not divisible");
	BAD((o.tick_ns = 3000, o.timer_div = 4), "period 750 ns");
	BAD(o.tick_ns = 1, "tick 1 ns");
	BAD(o.tick_ns = UINT64_MAX, "tick UINT64_MAX");
	BAD(o.stall_ticks = SW_STALL_TICKS_MAX + 1, "stall_ticks over max");
	BAD(o.stall_ticks = UINT32_MAX, "stall_ticks UINT32_MAX");
	BAD(o.timer_div = 1, "timer_div 1");
	BAD(o.timer_div = SW_TIMER_DIV_MAX + 1, "timer_div over max");
	/* tick_ns * (stall_ticks + 1) must fit in int64_t: 6 * this > 2^63-1 */
	BAD((o.tick_ns = 1537228672809129302ull, o.stall_ticks = 5,
	     o.timer_div = 2), "tick * (N+1) overflows int64");
	BAD(o.tick_ns = 0, "tick 0");
	BAD(o.stall_ticks = 0, "stall_ticks 0");
	BAD(o.flags = 1u << 31, "unknown loop flag");
	BAD((o.flags = SW_LOOP_ADAPTIVE_POLL,
	     o.poll_max_ns = SW_POLL_MAX_NS_MAX + 1), "poll_max_ns over max");
#undef BAD

	/* defaults: NULL opts, and zero optional fields */
	t_assert_rc(sw_loop_new(NULL, &loop), 0);
	t_assert(loop && loop != SENTINEL);
	got = (struct sw_loop_opts){ .size = sizeof(got) };
	t_assert_rc(sw_loop_get_opts(loop, &got), 0);
	t_assert_eq(got.tick_ns, SW_TICK_NS_DEFAULT);
	t_assert_eq(got.stall_ticks, SW_STALL_TICKS_DEFAULT);
	t_assert_eq(got.timer_div, SW_TIMER_DIV_DEFAULT);
	t_assert_eq(got.flags, 0);
	t_assert(sw_loop_free(loop) == NULL);
	o = (struct sw_loop_opts){ .size = sizeof(o), .tick_ns = 8000000,
				   .stall_ticks = 3 };
	got = loop_new_ok(&o, "optional fields zero");
	t_assert_eq(got.tick_ns, 8000000);
	t_assert_eq(got.stall_ticks, 3);
	t_assert_eq(got.timer_div, SW_TIMER_DIV_DEFAULT);
	t_assert_eq(got.poll_max_ns, SW_POLL_MAX_NS_DEFAULT);

	/* the limits themselves are accepted */
	o = good_opts();
	o.tick_ns = 2000;
	o.timer_div = 2;
	got = loop_new_ok(&o, "period exactly 1000 ns");
	t_assert_eq(got.tick_ns, 2000);
	o.stall_ticks = SW_STALL_TICKS_MAX;
	got = loop_new_ok(&o, "stall_ticks max");
	t_assert_eq(got.stall_ticks, SW_STALL_TICKS_MAX);
	o = good_opts();
	o.stall_ticks = 1;
	got = loop_new_ok(&o, "stall_ticks 1");
	t_assert_eq(got.stall_ticks, 1);
	o = good_opts();
	o.tick_ns = SW_TIMER_NS_MIN * SW_TIMER_DIV_MAX;
	o.timer_div = SW_TIMER_DIV_MAX;
	got = loop_new_ok(&o, "timer_div max");
	t_assert_eq(got.timer_div, SW_TIMER_DIV_MAX);
	o = good_opts();
	o.tick_ns = 1537228672809129300ull; /* 6 * this <= 2^63-1 */
	o.stall_ticks = 5;
	o.timer_div = 2;
	got = loop_new_ok(&o, "tick * (N+1) just fits");
	t_assert_eq(got.tick_ns, 1537228672809129300ull);
	o = good_opts();
	o.flags = SW_LOOP_TICK_EVENTS | SW_LOOP_ADAPTIVE_POLL;
	o.poll_max_ns = SW_POLL_MAX_NS_MAX;
	got = loop_new_ok(&o, "known flags");
	t_assert_eq(got.flags, SW_LOOP_TICK_EVENTS | SW_LOOP_ADAPTIVE_POLL);
	t_assert_eq(got.poll_max_ns, SW_POLL_MAX_NS_MAX);

	/* every field that size covers counts, each on its own: a size that
	 * ends with timer_div takes timer_div, and leaves flags at 0 */
	o = good_opts();
	o.size = offsetof(struct sw_loop_opts, timer_div) + sizeof(o.timer_div);
	o.timer_div = 1;
	loop_new_einval(&o, "timer_div 1, size ending with it");
	o.tick_ns = 8000000;
	o.timer_div = 4;
	o.flags = 1u << 31; /* past size: ignored */
	got = loop_new_ok(&o, "size ending with timer_div");
	t_assert_eq(got.timer_div, 4);
	t_assert_eq(got.flags, 0);
	o = good_opts();
	o.size = offsetof(struct sw_loop_opts, flags) + sizeof(o.flags);
	o.tick_ns = 8000000;
	o.timer_div = 16;
	o.flags = SW_LOOP_ADAPTIVE_POLL;
	o.poll_max_ns = SW_POLL_MAX_NS_MAX + 1; /* past size: ignored */
	got = loop_new_ok(&o, "size ending with flags");
	t_assert_eq(got.timer_div, 16);
	t_assert_eq(got.flags, SW_LOOP_ADAPTIVE_POLL);
	t_assert_eq(got.poll_max_ns, SW_POLL_MAX_NS_DEFAULT);
	o = good_opts();
	o.size = offsetof(struct sw_loop_opts, stall_ticks) + sizeof(o.stall_ticks);
	o.timer_div = 1; /* past size: the default, 8 */
	got = loop_new_ok(&o, "size ending with stall_ticks");
	t_assert_eq(got.timer_div, SW_TIMER_DIV_DEFAULT);
}

static void case_loop_calls(intptr_t unused)
{
	struct sw_loop *loop = t_loop();
	struct sw_loop_opts got;
	int fd, flags;

	t_assert(sw_loop_free(NULL) == NULL);

	t_assert_rc(sw_loop_get_opts(NULL, &got), -EINVAL);
	t_assert_rc(sw_loop_get_opts(loop, NULL), -EINVAL);
	got = (struct sw_loop_opts){ .size = 0 };
	t_assert_rc(sw_loop_get_opts(loop, &got), -EINVAL);
	got = (struct sw_loop_opts){ .size = sizeof(got) };
	t_assert_rc(sw_loop_get_opts(loop, &got), 0);
	t_assert_eq(got.tick_ns, T_FTICK_NS);
	t_assert_eq(got.stall_ticks, T_STALL);

	t_assert_rc(sw_loop_get_fd(NULL), -EINVAL);
	fd = sw_loop_get_fd(loop);
	t_assert(fd >= 0);
	t_assert_eq(sw_loop_get_fd(loop), fd);
	flags = fcntl(fd, F_GETFD);
	t_assert(flags >= 0 && (flags & FD_CLOEXEC));

	t_assert_rc(sw_loop_dispatch(NULL), -EINVAL);
	t_assert_rc(sw_loop_dispatch(loop), 0); /* nothing to do */
	t_assert_rc(sw_loop_set_tick_callback(NULL, NULL, NULL), -EINVAL);
	t_assert_rc(sw_loop_set_tick_callback(loop, NULL, NULL), 0);
	t_assert_rc(sw_loop_count_stubs(NULL), -EINVAL);
	t_assert_rc(sw_loop_count_in_flight(NULL), -EINVAL);
	t_assert_rc(sw_loop_count_stubs(loop), 0);
	t_assert_rc(sw_loop_count_in_flight(loop), 0);
	t_assert(sw_loop_free(loop) == NULL);
}

/* ---- spawn ------------------------------------------------------------- */

static void spawn_fails(struct sw_loop *loop, const struct sw_spawn_opts *o,
			int want, const char *what)
{
	struct sw_stub *stub = SENTINEL;
	int fds = t_fd_count(), rc;

	rc = sw_stub_spawn(loop, o, &stub);
	t_assert_msg(rc == want, "%s: sw_stub_spawn returned %d (%s), expected %s",
		     what, rc, t_errname(rc), t_errname(want));
	t_assert_msg(stub == SENTINEL, "%s: ret_stub was written", what);
	/* nothing left behind: no fd, no child */
	t_assert_msg(t_fd_count() == fds, "%s: %d fds before, %d after", what,
		     fds, t_fd_count());
	t_assert_msg(t_no_children(), "%s: a child is left", what);
	t_assert_rc(sw_loop_count_stubs(loop), 0);
}

static char *const stub_argv[] = { "stub", "--stub", "exit", "0", NULL };

static void case_spawn_invalid(intptr_t unused)
{
	struct sw_loop *loop = t_loop();
	struct sw_spawn_opts o;
	struct sw_stub *stub = SENTINEL;

#define FN_OPTS() (struct sw_spawn_opts){ .size = sizeof(o), .fn = t_role_exit }
	o = FN_OPTS();
	t_assert_rc(sw_stub_spawn(NULL, &o, &stub), -EINVAL);
	t_assert_rc(sw_stub_spawn(loop, NULL, &stub), -EINVAL);
	t_assert_rc(sw_stub_spawn(loop, &o, NULL), -EINVAL);
	t_assert(stub == SENTINEL);
	t_assert(t_no_children());

	o = FN_OPTS();
	o.size = 0;
	spawn_fails(loop, &o, -EINVAL, "size 0");
	o = FN_OPTS();
	o.size = offsetof(struct sw_spawn_opts, fn);
	spawn_fails(loop, &o, -EINVAL, "size without fn");
	o = FN_OPTS();
	o.fn = NULL;
	spawn_fails(loop, &o, -EINVAL, "neither fn nor path");
	o = FN_OPTS();
	o.path = "/proc/self/exe";
	o.argv = stub_argv;
	spawn_fails(loop, &o, -EINVAL, "both fn and path");
	o = (struct sw_spawn_opts){ .size = sizeof(o), .path = "/proc/self/exe" };
	spawn_fails(loop, &o, -EINVAL, "path without argv");
	o = FN_OPTS();
	o.flags = 1u << 31;
	spawn_fails(loop, &o, -EINVAL, "unknown flag");
	o = FN_OPTS();
	o.shm_size = (64u << 20) + 1;
	spawn_fails(loop, &o, -EINVAL, "shm_size over 64 MiB");
	o = FN_OPTS();
	o.shm_size = SIZE_MAX;
	spawn_fails(loop, &o, -EINVAL, "shm_size SIZE_MAX");
#undef FN_OPTS
	t_assert(sw_loop_free(loop) == NULL);
}

/* execve() errors come back from the child, which leaves nothing. */
static void case_spawn_exec_errors(intptr_t unused)
{
	char noexec[] = "/tmp/t_errors_noexec_XXXXXX";
	char garbage[] = "/tmp/t_errors_garbage_XXXXXX";
	struct sw_loop *loop = t_loop();
	struct sw_spawn_opts o = { .size = sizeof(o), .argv = stub_argv };
	int fd;

	fd = mkstemp(noexec);
	t_assert(fd >= 0);
	t_assert(write(fd, "#!/bin/sh\nexit 0\n", 17) == 17);
	close(fd);
	t_assert(chmod(noexec, 0644) == 0);
	fd = mkstemp(garbage);
	t_assert(fd >= 0);
	t_assert(write(fd, "\x01\x02\x03\x04 not a program\n", 20) == 20);
	close(fd);
	t_assert(chmod(garbage, 0755) == 0);

	o.path = "/nonexistent/stubwatch-stub";
	spawn_fails(loop, &o, -ENOENT, "missing path");
	o.path = "t_no_such_stub_here";
	spawn_fails(loop, &o, -ENOENT, "missing relative path");
	o.path = "/";
	spawn_fails(loop, &o, -EACCES, "a directory");
	o.path = noexec;
	spawn_fails(loop, &o, -EACCES, "not executable");
	o.path = garbage;
	spawn_fails(loop, &o, -ENOEXEC, "not a program");
	o.path = "/proc/self/exe/x";
	spawn_fails(loop, &o, -ENOTDIR, "a file as a directory");

	unlink(noexec);
	unlink(garbage);
	/* and the loop still works */
	t_stop(t_spawn_echo(loop, T_EXEC));
	t_assert(sw_loop_free(loop) == NULL);
}

/* ---- the handshake calls ----------------------------------------------- */

/* Let the loop collect what is ready without delivering it (no callback). */
static void dispatch_until_quiet(struct sw_loop *loop, uint64_t ms)
{
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	uint64_t end = t_now_ns() + ms * T_MS;

	while (t_now_ns() < end) {
		if (poll(&pfd, 1, 5) == 1)
			t_assert(sw_loop_dispatch(loop) >= 0);
	}
}

static void case_resume(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn(loop, mode, "echo", 0);
	struct sw_event ev;

	t_assert_rc(sw_stub_resume(NULL), -EINVAL);
	/* in flight from the spawn */
	t_assert_rc(sw_stub_resume(stub), -EBUSY);
	/* its first report collected by a dispatch but not delivered:
	 * a completion is pending */
	dispatch_until_quiet(loop, 50);
	t_assert_rc(sw_stub_resume(stub), -EBUSY);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert_rc(sw_stub_resume(stub), -EBUSY);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	/* detached */
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_resume(stub), -ENOLINK);
	t_assert_rc(sw_stub_attach(stub, loop), 0);
	/* reaped */
	t_pl(stub)->arg = 0;
	t_assert_rc(t_request(stub, T_REQ_EXIT, &ev), SW_EV_EXIT);
	t_assert_rc(sw_stub_resume(stub), -ESRCH);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

/* A death the loop has collected (pending, not yet delivered) is a pending
 * completion too.  The stub dies once its report is taken, killed by the
 * test (one that exited by itself soon after its report could die before
 * a late monitor took the report). */
static void case_resume_pending_exit(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_event ev;

	t_echo(stub, 1);
	t_assert(kill(sw_stub_pid(stub), SIGKILL) == 0);
	t_assert(t_wait_proc_state(sw_stub_pid(stub), "Z", 2000 * T_MS));
	dispatch_until_quiet(loop, 30);
	t_assert_rc(sw_stub_resume(stub), -EBUSY);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
	t_assert(WIFSIGNALED(ev.status) && WTERMSIG(ev.status) == SIGKILL);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_wait(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn(loop, mode, "echo", 0);
	struct sw_event ev;

	t_assert_rc(sw_stub_wait(NULL, &ev), -EINVAL);
	t_assert_rc(sw_stub_wait(stub, NULL), -EINVAL);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	/* not in flight, nothing pending */
	t_assert_rc(sw_stub_wait(stub, &ev), -EALREADY);
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), -ENOLINK);
	t_assert_rc(sw_stub_attach(stub, loop), 0);
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t_assert_eq(ev.kill.reason, SW_KILL_USER);
	t_assert_rc(sw_stub_wait(stub, &ev), -ESRCH);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_run(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn(loop, mode, "echo", 0);
	struct sw_event ev;

	t_assert_rc(sw_stub_run(NULL, &ev), -EINVAL);
	t_assert_rc(sw_stub_run(stub, &ev), -EBUSY); /* in flight */
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	/* a NULL ret_ev is refused before anything is resumed */
	t_assert_rc(sw_stub_run(stub, NULL), -EINVAL);
	t_assert_rc(sw_loop_count_in_flight(loop), 0);
	t_echo(stub, 3);
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_run(stub, &ev), -ENOLINK);
	t_assert_rc(sw_stub_attach(stub, loop), 0);
	t_pl(stub)->arg = 0;
	t_assert_rc(t_request(stub, T_REQ_EXIT, &ev), SW_EV_EXIT);
	t_assert_rc(sw_stub_run(stub, &ev), -ESRCH);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_kill(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_event ev;

	t_assert_rc(sw_stub_kill(NULL, SW_KILL_USER), -EINVAL);
	t_assert_rc(sw_stub_kill(stub, 0), -EINVAL);
	t_assert_rc(sw_stub_kill(stub, 4), -EINVAL);
	t_assert_rc(sw_stub_kill(stub, (enum sw_kill_reason)-1), -EINVAL);
	t_assert_rc(sw_stub_kill(stub, SW_KILL_STALL), -EINVAL);
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), -ENOLINK);
	t_assert_rc(sw_stub_attach(stub, loop), 0);
	/* still alive after all the refusals */
	t_echo(stub, 3);
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), 0);
	/* already being killed */
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), -ESRCH);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t_assert_eq(ev.kill.reason, SW_KILL_USER);
	t_assert(WIFSIGNALED(ev.status) && WTERMSIG(ev.status) == SIGKILL);
	/* reaped */
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), -ESRCH);
	t_assert(sw_stub_free(stub) == NULL);

	/* dead on its own, not yet reaped */
	stub = t_spawn(loop, mode, "exit", 0);
	t_assert(t_wait_proc_state(sw_stub_pid(stub), "Z", 2000 * T_MS));
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), -ESRCH);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_accessors(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_event ev;
	int flags, fd;

	t_assert(sw_stub_free(NULL) == NULL);
	t_assert(sw_stub_page(NULL) == NULL);
	t_assert_rc(sw_stub_pid(NULL), -EINVAL);
	t_assert_rc(sw_stub_pidfd(NULL), -EINVAL);
	t_assert(sw_stub_loop(NULL) == NULL);
	t_assert(sw_stub_get_userdata(NULL) == NULL);
	t_assert_rc(sw_stub_set_callback(NULL, NULL, NULL), -EINVAL);

	t_assert(sw_stub_page(stub) != NULL);
	t_assert(sw_stub_pid(stub) > 0);
	fd = sw_stub_pidfd(stub);
	t_assert(fd >= 0);
	flags = fcntl(fd, F_GETFD);
	t_assert(flags >= 0 && (flags & FD_CLOEXEC));
	t_assert(sw_stub_loop(stub) == loop);
	t_assert(sw_stub_get_userdata(stub) == NULL);
	t_assert_rc(sw_stub_set_callback(stub, NULL, SENTINEL), 0);
	t_assert(sw_stub_get_userdata(stub) == SENTINEL);

	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert(sw_stub_loop(stub) == NULL);
	t_assert_rc(sw_stub_attach(stub, loop), 0);
	t_assert(sw_stub_loop(stub) == loop);

	t_pl(stub)->arg = 0;
	t_assert_rc(t_request(stub, T_REQ_EXIT, &ev), SW_EV_EXIT);
	t_assert_rc(sw_stub_pid(stub), -ESRCH);
	t_assert_rc(sw_stub_pidfd(stub), -ESRCH);
	t_assert(sw_stub_page(stub) != NULL); /* still mapped until freed */
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_detach_attach(intptr_t mode)
{
	struct sw_loop *a = t_loop(), *b = t_loop();
	struct sw_stub *stub = t_spawn(a, mode, "echo", 0);
	struct sw_event ev;

	t_assert_rc(sw_stub_detach(NULL), -EINVAL);
	t_assert_rc(sw_stub_attach(NULL, a), -EINVAL);
	t_assert_rc(sw_stub_attach(stub, NULL), -EINVAL);
	/* in flight from the spawn */
	t_assert_rc(sw_stub_detach(stub), -EBUSY);
	/* a completion pending */
	dispatch_until_quiet(a, 50);
	t_assert_rc(sw_stub_detach(stub), -EBUSY);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	/* attached: to this loop or another */
	t_assert_rc(sw_stub_attach(stub, a), -EBUSY);
	t_assert_rc(sw_stub_attach(stub, b), -EBUSY);
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_detach(stub), -ENOLINK);
	t_assert_rc(sw_loop_count_stubs(a), 0);
	t_assert_rc(sw_stub_attach(stub, b), 0);
	t_assert_rc(sw_loop_count_stubs(b), 1);
	t_echo(stub, 10);
	/* reaped: it can leave, but not join again */
	t_pl(stub)->arg = 0;
	t_assert_rc(t_request(stub, T_REQ_EXIT, &ev), SW_EV_EXIT);
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_attach(stub, a), -ESRCH);
	t_assert(sw_stub_free(stub) == NULL);
	t_assert(sw_loop_free(a) == NULL);
	t_assert(sw_loop_free(b) == NULL);
}

/* ---- inside a callback ---------------------------------------------------- */

struct reentry {
	struct sw_loop *loop;
	struct sw_stub *waited; /* the target of the running wait */
	struct sw_stub *self;
	bool ran;
	int dispatch, wait_other, wait_self, detach_self;
	void *loop_free, *free_waited;
};

static int reentry_cb(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct reentry *r = ud;
	struct sw_event e;

	r->ran = true;
	t_assert(stub == r->self);
	r->dispatch = sw_loop_dispatch(r->loop);
	r->wait_other = sw_stub_wait(r->waited, &e);
	r->wait_self = sw_stub_wait(stub, &e);
	r->detach_self = sw_stub_detach(stub);
	r->loop_free = sw_loop_free(r->loop);
	r->free_waited = sw_stub_free(r->waited);
	return 0;
}

static void case_callback_reentry(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *waited = t_spawn_echo(loop, mode);
	struct reentry r = { .loop = loop, .waited = waited };
	struct sw_event ev;

	/* the waited stub answers after 50 ms; meanwhile the other one's
	 * first report runs its callback inside this wait */
	t_pl(waited)->delay_ns = 50 * T_MS;
	t_pl(waited)->req = 1;
	t_assert_rc(sw_stub_resume(waited), 0);
	r.self = t_spawn(loop, mode, "echo", 0);
	t_assert_rc(sw_stub_set_callback(r.self, reentry_cb, &r), 0);
	t_assert_rc(sw_stub_wait(waited, &ev), SW_EV_REPORT);
	t_assert(r.ran);
	t_assert_rc(r.dispatch, -EBUSY);
	t_assert_rc(r.wait_other, -EBUSY);
	t_assert_rc(r.wait_self, -EBUSY);
	t_assert_rc(r.detach_self, -EBUSY);
	t_assert(r.loop_free == loop);    /* refused: returned unchanged */
	t_assert(r.free_waited == waited);
	/* everything still works */
	t_pl(waited)->delay_ns = 0;
	t_echo(waited, 5);
	t_stop(waited);
	t_assert_rc(sw_stub_set_callback(r.self, NULL, NULL), 0);
	t_echo(r.self, 5);
	t_stop(r.self);
	t_assert(sw_loop_free(loop) == NULL);
}

static int free_self_cb(struct sw_stub *stub, const struct sw_event *ev,
			void *ud)
{
	*(void **)ud = sw_stub_free(stub);
	return 0;
}

/* "Safe from inside the stub's own callback." */
static void case_free_in_own_callback(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn(loop, mode, "echo", 0);
	void *freed = SENTINEL;
	uint64_t end = t_now_ns() + 2000 * T_MS;

	t_assert_rc(sw_stub_set_callback(stub, free_self_cb, &freed), 0);
	while (freed == SENTINEL) {
		t_assert(sw_loop_dispatch(loop) >= 0);
		t_assert(t_now_ns() < end);
	}
	t_assert(freed == NULL);
	t_assert_rc(sw_loop_count_stubs(loop), 0);
	t_assert(sw_loop_free(loop) == NULL);
}

static int eio_once_cb(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	unsigned *calls = ud;

	return (*calls)++ == 0 ? -EIO : 0;
}

/* A callback's error is what the dispatch returns, and every completion
 * is still delivered: none is left queued behind the error. */
static void case_callback_error(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *a = t_spawn(loop, mode, "echo", 0);
	struct sw_stub *b = t_spawn(loop, mode, "echo", 0);
	uint64_t end = t_now_ns() + 2000 * T_MS;
	unsigned calls = 0;

	t_assert_rc(sw_stub_set_callback(a, eio_once_cb, &calls), 0);
	t_assert_rc(sw_stub_set_callback(b, eio_once_cb, &calls), 0);
	/* both reports made before the dispatch: published, and the stub
	 * asleep in its wait, so its eventfd write (which follows the state
	 * word) is done too */
	while (sw_stub_page(a)->state != SW_STATE_IN_KERN ||
	       sw_stub_page(b)->state != SW_STATE_IN_KERN)
		t_assert(t_now_ns() < end);
	t_assert(t_wait_proc_state(sw_stub_pid(a), "S", 2000 * T_MS));
	t_assert(t_wait_proc_state(sw_stub_pid(b), "S", 2000 * T_MS));
	t_assert_rc(sw_loop_dispatch(loop), -EIO);
	t_assert_eq(calls, 2);
	t_assert_rc(sw_loop_dispatch(loop), 0);
	t_assert_eq(calls, 2);
	t_assert_rc(sw_stub_set_callback(a, NULL, NULL), 0);
	t_assert_rc(sw_stub_set_callback(b, NULL, NULL), 0);
	t_stop(a);
	t_stop(b);
	t_assert(sw_loop_free(loop) == NULL);
}

/* ---- after fork ------------------------------------------------------------- */

static void case_after_fork(intptr_t mode)
{
	struct sw_loop *loop = t_loop(), *other = t_loop(), *mine;
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_stub *loose = t_spawn_echo(loop, mode);
	struct sw_stub *child_stub = SENTINEL;
	struct sw_spawn_opts o = { .size = sizeof(o), .fn = t_role_exit };
	struct sw_event ev;
	int status;
	pid_t pid;

	t_assert_rc(sw_stub_detach(loose), 0);
	fflush(NULL);
	pid = fork();
	t_assert(pid >= 0);
	if (pid == 0) {
		t_assert_rc(sw_loop_get_fd(loop), -ECHILD);
		t_assert_rc(sw_loop_dispatch(loop), -ECHILD);
		t_assert_rc(sw_loop_prepare(loop), -ECHILD);
		t_assert_rc(sw_stub_resume(stub), -ECHILD);
		t_assert_rc(sw_stub_wait(stub, &ev), -ECHILD);
		t_assert_rc(sw_stub_run(stub, &ev), -ECHILD);
		t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), -ECHILD);
		t_assert_rc(sw_stub_continue(stub), -ECHILD);
		t_assert_rc(sw_stub_add_fd(stub, 0, EPOLLIN), -ECHILD);
		t_assert_rc(sw_stub_detach(stub), -ECHILD);
		t_assert_rc(sw_stub_attach(loose, other), -ECHILD);
		/* a loop of the child's own: the stub is still the parent's */
		mine = t_loop();
		t_assert_rc(sw_stub_attach(loose, mine), -ECHILD);
		t_assert_rc(sw_loop_count_stubs(mine), 0);
		t_assert(sw_loop_free(mine) == NULL);
		t_assert_rc(sw_stub_spawn(loop, &o, &child_stub), -ECHILD);
		t_assert(child_stub == SENTINEL);
		/* "in a child after fork they are only forgotten" */
		t_assert(sw_loop_free(loop) == NULL);
		t_assert(sw_loop_free(other) == NULL);
		t_assert(sw_stub_free(loose) == NULL); /* forgotten, not killed */
		exit(0);
	}
	t_assert(waitpid(pid, &status, 0) == pid);
	t_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "the forked child failed (status 0x%x)", status);
	/* the parent's stubs did not notice */
	t_echo(stub, 10);
	t_stop(stub);
	t_assert_rc(sw_stub_attach(loose, other), 0);
	t_echo(loose, 10);
	t_stop(loose);
	t_assert(sw_loop_free(loop) == NULL);
	t_assert(sw_loop_free(other) == NULL);
}

/* ---- every fd close-on-exec ----------------------------------------------- */

static void case_cloexec(intptr_t mode)
{
	enum { MAXFD = 1024 };
	static bool before[MAXFD];
	struct sw_loop *loop;
	struct sw_stub *a, *b;
	int fd, n = 0;

	/* only the fds the library opens: the harness may inherit others */
	for (fd = 0; fd < MAXFD; fd++)
		before[fd] = fcntl(fd, F_GETFD) >= 0;
	loop = t_loop();
	a = t_spawn_echo(loop, T_FN);
	b = t_spawn_echo(loop, T_EXEC);
	for (fd = 0; fd < MAXFD; fd++) {
		int flags = fcntl(fd, F_GETFD);

		if (flags < 0 || before[fd])
			continue;
		n++;
		if (!(flags & FD_CLOEXEC)) {
			char path[64], target[256] = "";

			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			t_assert(readlink(path, target, sizeof(target) - 1) > 0);
			t_fail(__FILE__, __LINE__, "fd %d (%s) is not close-on-exec",
			       fd, target);
		}
	}
	t_note("the library opened %d fds, all close-on-exec", n);
	t_assert(n >= 6); /* epoll, timer; per stub a pidfd and an eventfd */
	t_stop(a);
	t_stop(b);
	t_assert(sw_loop_free(loop) == NULL);
}

static const struct t_case cases[] = {
	{ "loop_new", case_loop_new, 0, 0 },
	{ "loop_calls", case_loop_calls, 0, 0 },
	{ "spawn_invalid", case_spawn_invalid, 0, 0 },
	{ "spawn_exec_errors", case_spawn_exec_errors, 0, 0 },
	{ "resume/fn", case_resume, T_FN, 0 },
	{ "resume/exec", case_resume, T_EXEC, 0 },
	{ "resume_pending_exit/fn", case_resume_pending_exit, T_FN, 0 },
	{ "wait/fn", case_wait, T_FN, 0 },
	{ "wait/exec", case_wait, T_EXEC, 0 },
	{ "run/fn", case_run, T_FN, 0 },
	{ "kill/fn", case_kill, T_FN, 0 },
	{ "kill/exec", case_kill, T_EXEC, 0 },
	{ "accessors/fn", case_accessors, T_FN, 0 },
	{ "accessors/exec", case_accessors, T_EXEC, 0 },
	{ "detach_attach/fn", case_detach_attach, T_FN, 0 },
	{ "detach_attach/exec", case_detach_attach, T_EXEC, 0 },
	{ "callback_reentry/fn", case_callback_reentry, T_FN, 0 },
	{ "free_in_own_callback/fn", case_free_in_own_callback, T_FN, 0 },
	{ "callback_error/fn", case_callback_error, T_FN, 0 },
	{ "after_fork/fn", case_after_fork, T_FN, 0 },
	{ "after_fork/exec", case_after_fork, T_EXEC, 0 },
	{ "cloexec", case_cloexec, 0, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
