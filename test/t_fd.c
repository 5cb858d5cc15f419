/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stub's watched fd (sw_stub_add_fd): a stub that answers through another
 * fd than its reports, here a real seccomp user-notification listener, is
 * served from the same wait and is still watched for stalls; readiness while
 * the stub is not in flight neither busies the loop nor gets lost; a report
 * made between SW_EV_FD and sw_stub_continue() is not lost either.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

#define NT ((uint64_t)T_STALL * T_TICK_NS)

/* Spawn the notify role and fetch its listener into this process. */
static struct sw_stub *spawn_notify(struct sw_loop *loop, intptr_t mode,
				    int *ret_listener)
{
	struct sw_stub *stub = t_spawn(loop, mode, "notify", 0);
	struct sw_event ev;
	int fd;

	t_expect(stub, SW_EV_REPORT, &ev);
	t_assert_eq(t_pl(stub)->ack, 1);
	fd = (int)syscall(SYS_pidfd_getfd, sw_stub_pidfd(stub),
			  (int)t_pl(stub)->result, 0);
	t_assert_msg(fd >= 0, "pidfd_getfd: %s", strerror(errno));
	t_assert(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0);
	*ret_listener = fd;
	return stub;
}

/* Take the stub's pending notification (its getpgid(0)) and answer val. */
static void serve_notification(int listener, pid_t pid, int64_t val)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;

	memset(&req, 0, sizeof(req));
	t_assert_msg(ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0,
		     "NOTIF_RECV: %s", strerror(errno));
	t_assert_eq(req.data.nr, SYS_getpgid);
	t_assert_eq(req.pid, (uint32_t)pid);
	memset(&resp, 0, sizeof(resp));
	resp.id = req.id;
	resp.val = val;
	t_assert_msg(ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0,
		     "NOTIF_SEND: %s", strerror(errno));
}

/* Requests that make `calls` notifications each, served through the wait:
 * SW_EV_FD, serve, continue; then the report with the sum. */
static void case_notify(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	int listener;
	struct sw_stub *stub = spawn_notify(loop, mode, &listener);
	pid_t pid = sw_stub_pid(stub);
	struct sw_event ev;
	uint64_t req = 10;
	int64_t val = 1000;

	t_assert_rc(sw_stub_add_fd(stub, listener, EPOLLIN), 0);
	for (int round = 0; round < 20; round++) {
		uint64_t calls = (uint64_t)round % 4, sum = 0, seen = 0;
		int rc;

		t_pl(stub)->arg = calls;
		t_pl(stub)->req = T_REQ_NOTIFY;
		/* both ways into flight: the quiet run and a resume */
		if (round % 2) {
			rc = sw_stub_run(stub, &ev);
		} else {
			t_assert_rc(sw_stub_resume(stub), 0);
			rc = sw_stub_wait(stub, &ev);
		}
		while (rc == SW_EV_FD) {
			t_assert(ev.revents & EPOLLIN);
			serve_notification(listener, pid, val);
			sum += (uint64_t)val++;
			seen++;
			t_assert_rc(sw_stub_continue(stub), 0);
			rc = sw_stub_wait(stub, &ev);
		}
		t_assert_msg(rc == SW_EV_REPORT, "round %d: %s", round,
			     t_ev_name(rc));
		t_assert_eq(ev.revents, 0);
		t_assert_eq(seen, calls);
		t_assert_eq(t_pl(stub)->result, sum);
		t_assert_eq(t_pl(stub)->ack, T_REQ_NOTIFY + 1);
		/* plain round trips in between are not disturbed */
		t_pl(stub)->req = req;
		t_assert_rc(sw_stub_run(stub, &ev), SW_EV_REPORT);
		t_assert_eq(t_pl(stub)->ack, req + 1);
		req++;
	}
	t_assert_rc(sw_stub_remove_fd(stub), 0);
	t_assert_rc(sw_stub_remove_fd(stub), -ENOENT);
	t_stop(stub);
	close(listener);
	t_assert(sw_loop_free(loop) == NULL);
}

/* Served through its listener, then silent: the watchdog restarted at the
 * continue, and kills it N..N+1 ticks later. */
static void case_notify_stall(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed();
	int listener;
	struct sw_stub *stub = spawn_notify(loop, mode, &listener);
	struct sw_event ev;
	uint64_t t0, t1;

	t_assert_rc(sw_stub_add_fd(stub, listener, EPOLLIN), 0);
	t_pl(stub)->arg = T_STALL_SPIN;
	t_pl(stub)->req = T_REQ_NOTIFY_STALL;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_FD);
	/* a stub that waits for its notification's answer is not stalled:
	 * the watchdog stopped counting at SW_EV_FD; the host goes on
	 * dispatching for twice the stall limit */
	t_assert_eq(sw_loop_count_in_flight(loop), 0);
	for (uint64_t end = t_now_ns() + 2 * NT; t_now_ns() < end;) {
		struct pollfd pfd = { .fd = sw_loop_get_fd(loop),
				      .events = POLLIN };

		if (poll(&pfd, 1, 10) == 1)
			t_assert_rc(sw_loop_dispatch(loop), 0);
	}
	serve_notification(listener, sw_stub_pid(stub), 1);
	t0 = t_now_ns();
	t_assert_rc(sw_stub_continue(stub), 0);
	t1 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_KILL);
	t_note_event(SW_EV_KILL, &ev);
	t_assert_eq(ev.kill.reason, SW_KILL_STALL);
	t_assert_kill_window("after a continue", loop, t0, t1, &ev.kill);
	t_assert(sw_stub_free(stub) == NULL);
	close(listener);
	t_assert(sw_loop_free(loop) == NULL);
}

/* A stub that exits in flight hangs up its listener: that is no answer,
 * the wait returns its EXIT.  (The exec'd stub's listener hangs up before
 * its pidfd is readable; a function stub's only once it is reaped.) */
static void case_notify_exit(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	int listener;
	struct sw_stub *stub = spawn_notify(loop, mode, &listener);
	struct sw_event ev;

	t_assert_rc(sw_stub_add_fd(stub, listener, EPOLLIN), 0);
	t_pl(stub)->arg = 4;
	t_assert_rc(t_request(stub, T_REQ_EXIT, &ev), SW_EV_EXIT);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 4);
	t_assert(sw_stub_free(stub) == NULL);
	close(listener);
	t_assert(sw_loop_free(loop) == NULL);
}

/* A stub resumed with T_REQ_GATED answers once the gate opens. */
static void open_gate(struct sw_stub *stub)
{
	__atomic_store_n(&t_pl(stub)->gate, 1, __ATOMIC_RELEASE);
	t_futex_wake(&t_pl(stub)->gate);
}

static void make_pipe(int p[2])
{
	t_assert(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
}

static void put_byte(int fd)
{
	t_assert(write(fd, "x", 1) == 1);
}

static void take_byte(int fd)
{
	char c;

	t_assert(read(fd, &c, 1) == 1);
}

/* The end of a pipe case: the stub still answers, then stops. */
static void finish(struct sw_loop *loop, struct sw_stub *stub, int p[2])
{
	t_pl(stub)->delay_ns = 0;
	t_echo(stub, 2);
	t_stop(stub);
	close(p[0]);
	close(p[1]);
	t_assert(sw_loop_free(loop) == NULL);
}

/* With nothing in flight the loop's fd goes quiet: the timer's last read
 * disarms it, and a watched fd that fired once stays disarmed (a
 * level-triggered one would wake the host for ever). */
static void assert_goes_quiet(struct sw_loop *loop)
{
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };

	for (int wakes = 0; wakes < 4; wakes++) {
		if (poll(&pfd, 1, 300) == 0)
			return;
		t_assert_rc(sw_loop_dispatch(loop), 0);
	}
	t_fail(__FILE__, __LINE__, "the loop's fd stays readable");
}

/* Readiness while the stub is idle fires the loop's fd once, then waits
 * for the stub's next time in flight, where it answers at once. */
static void case_idle_ready(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	struct sw_event ev;
	int p[2];

	make_pipe(p);
	t_assert_rc(sw_stub_add_fd(stub, p[0], EPOLLIN), 0);
	t_echo(stub, 3);
	assert_goes_quiet(loop);
	put_byte(p[1]);
	t_assert_eq(poll(&pfd, 1, 1000), 1);
	assert_goes_quiet(loop);
	/* in flight again: the fd answers at once (the stub answers only
	 * once its gate opens) */
	t_pl(stub)->req = T_REQ_GATED;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_FD);
	t_assert(ev.revents & EPOLLIN);
	/* it is not waiting for a resume, which would overwrite a report */
	t_assert_rc(sw_stub_resume(stub), -EINVAL);
	t_assert_rc(sw_stub_run(stub, &ev), -EINVAL);
	take_byte(p[0]);
	t_assert_rc(sw_stub_continue(stub), 0);
	t_assert_rc(sw_stub_continue(stub), -EBUSY);
	open_gate(stub);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	t_assert_eq(t_pl(stub)->ack, T_REQ_GATED + 1);
	finish(loop, stub, p);
}

/* The stub reports between SW_EV_FD and the continue, and another stub's
 * wait takes that report's eventfd event meanwhile (the stub was not in
 * flight then): the continue looks at the state word and finds it. */
static void case_report_before_continue(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *a = t_spawn_echo(loop, mode);
	struct sw_stub *b = t_spawn_echo(loop, mode);
	struct sw_event ev;
	int p[2];

	make_pipe(p);
	t_assert_rc(sw_stub_add_fd(a, p[0], EPOLLIN), 0);
	t_pl(a)->req = T_REQ_GATED;
	t_assert_rc(sw_stub_resume(a), 0);
	put_byte(p[1]);
	t_assert_rc(sw_stub_wait(a, &ev), SW_EV_FD);
	/* now A reports (its wait had set SW_MON_SLEEPING: eventfd
	 * written) */
	open_gate(a);
	for (uint64_t end = t_now_ns() + 2000 * T_MS;
	     __atomic_load_n(&sw_stub_page(a)->state, __ATOMIC_ACQUIRE) !=
	     SW_STATE_IN_KERN;)
		t_assert(t_now_ns() < end);
	t_sleep_ns(20 * T_MS);
	t_assert_eq(t_pl(a)->ack, T_REQ_GATED + 1);
	t_echo(b, 3); /* B's waits drain the epoll set */
	take_byte(p[0]);
	t_assert_rc(sw_stub_continue(a), 0);
	/* taken at once: pending, not in flight (the watchdog would find
	 * it only at the stall limit) */
	t_assert_eq(sw_loop_count_in_flight(loop), 0);
	t_assert_rc(sw_stub_wait(a, &ev), SW_EV_REPORT);
	t_assert_eq(t_pl(a)->ack, T_REQ_GATED + 1);
	t_echo(a, 2);
	t_stop(a);
	t_stop(b);
	close(p[0]);
	close(p[1]);
	t_assert(sw_loop_free(loop) == NULL);
}

/* Embedded: the callback serves the fd and continues the stub. */
struct served {
	int rfd;
	unsigned fds, reports;
};

static int on_event(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	struct served *s = ud;

	if (ev->type == SW_EV_FD) {
		s->fds++;
		take_byte(s->rfd);
		open_gate(stub);
		return sw_stub_continue(stub);
	}
	t_assert_eq(ev->type, SW_EV_REPORT);
	s->reports++;
	return 0;
}

static void case_dispatch(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	uint64_t end = t_now_ns() + 5000 * T_MS;
	int p[2];
	struct served s = { 0 };

	make_pipe(p);
	s.rfd = p[0];
	t_assert_rc(sw_stub_add_fd(stub, p[0], EPOLLIN), 0);
	t_assert_rc(sw_stub_set_callback(stub, on_event, &s), 0);
	for (unsigned i = 0; i < 10; i++) {
		t_pl(stub)->req = T_REQ_GATED;
		t_assert_rc(sw_stub_resume(stub), 0);
		put_byte(p[1]);
		while (s.reports < i + 1) {
			t_assert(poll(&pfd, 1, 1000) == 1);
			t_assert(sw_loop_dispatch(loop) >= 0);
			t_assert(t_now_ns() < end);
		}
		t_assert_eq(t_pl(stub)->ack, T_REQ_GATED + 1);
	}
	t_assert_eq(s.fds, 10);
	t_assert_rc(sw_stub_set_callback(stub, NULL, NULL), 0);
	t_stop(stub);
	close(p[0]);
	close(p[1]);
	t_assert(sw_loop_free(loop) == NULL);
}

/* The fd follows the stub from one loop to another. */
static void case_detach_attach(intptr_t mode)
{
	struct sw_loop *one = t_loop(), *two = t_loop();
	struct sw_stub *stub = t_spawn_echo(one, mode);
	struct pollfd pfd = { .fd = sw_loop_get_fd(one), .events = POLLIN };
	struct sw_event ev;
	int p[2];

	make_pipe(p);
	t_assert_rc(sw_stub_add_fd(stub, p[0], EPOLLIN), 0);
	t_assert_rc(sw_stub_detach(stub), 0);
	t_assert_rc(sw_stub_continue(stub), -ENOLINK);
	t_assert_rc(sw_stub_attach(stub, two), 0);
	assert_goes_quiet(one); /* its timer's last reads */
	put_byte(p[1]);
	t_assert_eq(poll(&pfd, 1, 100), 0); /* gone from the first loop */
	t_pl(stub)->req = T_REQ_GATED;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_FD);
	take_byte(p[0]);
	t_assert_rc(sw_stub_continue(stub), 0);
	open_gate(stub);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	t_assert_eq(t_pl(stub)->ack, T_REQ_GATED + 1);
	t_pl(stub)->delay_ns = 0;
	t_stop(stub);
	close(p[0]);
	close(p[1]);
	t_assert(sw_loop_free(two) == NULL);
	t_assert(sw_loop_free(one) == NULL);
}

/* A stub that dies while watched: its EXIT, and the fd left alone. */
static void case_death(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	struct sw_event ev;
	int p[2];

	make_pipe(p);
	t_assert_rc(sw_stub_add_fd(stub, p[0], EPOLLIN), 0);
	t_pl(stub)->arg = 9;
	t_assert_rc(t_request(stub, T_REQ_EXIT, &ev), SW_EV_EXIT);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 9);
	t_assert_rc(sw_stub_continue(stub), -ESRCH);
	t_assert_rc(sw_stub_add_fd(stub, p[1], EPOLLOUT), -ESRCH);
	/* out of the epoll set with the dead stub */
	assert_goes_quiet(loop);
	put_byte(p[1]);
	t_assert_eq(poll(&pfd, 1, 100), 0);
	t_assert(sw_stub_free(stub) == NULL);
	/* still ours and open */
	take_byte(p[0]);
	close(p[0]);
	close(p[1]);
	t_assert(sw_loop_free(loop) == NULL);
}

/* The caller's fd closed while watched (the file still open elsewhere, as
 * a listener stays open in its stub): the loop's duplicate keeps working,
 * and leaves the epoll set with sw_stub_remove_fd(). */
static void case_closed_fd(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct pollfd pfd = { .fd = sw_loop_get_fd(loop), .events = POLLIN };
	struct sw_event ev;
	int p[2], mine;

	make_pipe(p);
	mine = fcntl(p[0], F_DUPFD_CLOEXEC, 0);
	t_assert(mine >= 0);
	t_assert_rc(sw_stub_add_fd(stub, mine, EPOLLIN), 0);
	close(mine);
	t_pl(stub)->req = T_REQ_GATED;
	t_assert_rc(sw_stub_resume(stub), 0);
	put_byte(p[1]);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_FD);
	take_byte(p[0]);
	t_assert_rc(sw_stub_continue(stub), 0);
	open_gate(stub);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	t_assert_eq(t_pl(stub)->ack, T_REQ_GATED + 1);
	t_assert_rc(sw_stub_remove_fd(stub), 0);
	assert_goes_quiet(loop);
	put_byte(p[1]);
	t_assert_eq(poll(&pfd, 1, 100), 0);
	finish(loop, stub, p);
}

/* With SW_LOOP_TICK_EVENTS, a timer read in the wait that ends with
 * SW_EV_FD is owed, as after a report: the next wait returns it at once
 * (the next read is a timer period, 125 ms, away). */
static void case_tick_owed(intptr_t mode)
{
	struct sw_loop *loop = t_loop_opts(1000 * T_MS, T_STALL, 0,
					   SW_LOOP_TICK_EVENTS);
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_event ev;
	uint64_t t0;
	int p[2], rc;

	make_pipe(p);
	t_assert_rc(sw_stub_add_fd(stub, p[0], EPOLLIN), 0);
	t_pl(stub)->req = T_REQ_GATED;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_sleep_ns(150 * T_MS); /* a timer expiry, then the fd: one batch */
	put_byte(p[1]);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_FD);
	take_byte(p[0]);
	t_assert_rc(sw_stub_continue(stub), 0);
	t_assert_rc(sw_loop_count_in_flight(loop), 1);
	/* owed: returned at once, not at the next read 125 ms away */
	t0 = t_now_ns();
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_TICK);
	t_assert_msg(t_now_ns() - t0 < 100 * T_MS, "the tick came after %.1f ms",
		     (double)(t_now_ns() - t0) / 1e6);
	open_gate(stub);
	while ((rc = sw_stub_wait(stub, &ev)) == SW_EV_TICK)
		;
	t_assert_rc(rc, SW_EV_REPORT);
	t_stop(stub);
	close(p[0]);
	close(p[1]);
	t_assert(sw_loop_free(loop) == NULL);
}

/* A death and the fd's event in one batch: the death wins. */
static void case_death_wins(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_event ev;
	int p[2];

	make_pipe(p);
	t_assert_rc(sw_stub_add_fd(stub, p[0], EPOLLIN), 0);
	t_pl(stub)->req = T_REQ_GATED;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert(kill(sw_stub_pid(stub), SIGKILL) == 0);
	t_assert(t_wait_proc_state(sw_stub_pid(stub), "Z", 2000 * T_MS));
	put_byte(p[1]);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
	t_assert(WIFSIGNALED(ev.status) && WTERMSIG(ev.status) == SIGKILL);
	t_assert(sw_stub_free(stub) == NULL);
	close(p[0]);
	close(p[1]);
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_errors(intptr_t mode)
{
	struct sw_loop *loop = t_loop(), *other;
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct sw_event ev;
	int p[2], file, fds, ep;
	char path[] = "/tmp/t_fd.XXXXXX";

	make_pipe(p);
	file = mkostemp(path, O_CLOEXEC);
	t_assert(file >= 0);
	unlink(path);
	fds = t_fd_count();
	t_assert_rc(sw_stub_add_fd(NULL, p[0], EPOLLIN), -EINVAL);
	t_assert_rc(sw_stub_add_fd(stub, -1, EPOLLIN), -EINVAL);
	t_assert_rc(sw_stub_add_fd(stub, p[0], 0), -EINVAL);
	t_assert_rc(sw_stub_add_fd(stub, p[0], EPOLLIN | EPOLLET), -EINVAL);
	t_assert_rc(sw_stub_add_fd(stub, 1000000, EPOLLIN), -EBADF);
	t_assert_eq(t_fd_count(), fds); /* no duplicate left behind */
	t_assert_rc(sw_stub_add_fd(stub, file, EPOLLIN), -EPERM);
	t_assert_eq(t_fd_count(), fds);
	/* an epoll set: this loop's own, another loop's, anyone's */
	other = t_loop();
	ep = epoll_create1(EPOLL_CLOEXEC);
	t_assert(ep >= 0);
	fds = t_fd_count();
	t_assert_rc(sw_stub_add_fd(stub, sw_loop_get_fd(loop), EPOLLIN), -EINVAL);
	t_assert_rc(sw_stub_add_fd(stub, sw_loop_get_fd(other), EPOLLIN),
		    -EINVAL);
	t_assert_rc(sw_stub_add_fd(stub, ep, EPOLLIN), -EINVAL);
	t_assert_eq(t_fd_count(), fds);
	t_assert_rc(sw_stub_remove_fd(stub), -ENOENT);
	close(ep);
	t_assert(sw_loop_free(other) == NULL);
	fds = t_fd_count();
	t_assert_rc(sw_stub_remove_fd(NULL), -EINVAL);
	t_assert_rc(sw_stub_remove_fd(stub), -ENOENT);
	t_assert_rc(sw_stub_continue(NULL), -EINVAL);
	/* its last event was a report: resume it, not continue */
	t_assert_rc(sw_stub_continue(stub), -EINVAL);
	t_assert_rc(sw_stub_add_fd(stub, p[0], EPOLLIN), 0);
	t_assert_rc(sw_stub_add_fd(stub, p[1], EPOLLOUT), -EEXIST);
	t_pl(stub)->req = 3;
	t_assert_rc(sw_stub_resume(stub), 0);
	t_assert_rc(sw_stub_continue(stub), -EBUSY);
	t_expect(stub, SW_EV_REPORT, &ev);
	t_assert_rc(sw_stub_continue(stub), -EINVAL);
	t_stop(stub);
	close(file);
	close(p[0]);
	close(p[1]);
	t_assert(sw_loop_free(loop) == NULL);
}

static const struct t_case cases[] = {
	{ "notify/fn", case_notify, T_FN, 0 },
	{ "notify/exec", case_notify, T_EXEC, 0 },
	{ "notify_stall/fn", case_notify_stall, T_FN, 0 },
	{ "notify_stall/exec", case_notify_stall, T_EXEC, 0 },
	{ "notify_exit/fn", case_notify_exit, T_FN, 0 },
	{ "notify_exit/exec", case_notify_exit, T_EXEC, 0 },
	{ "idle_ready/fn", case_idle_ready, T_FN, 0 },
	{ "closed_fd/fn", case_closed_fd, T_FN, 0 },
	{ "report_before_continue/fn", case_report_before_continue, T_FN, 0 },
	{ "report_before_continue/exec", case_report_before_continue, T_EXEC,
	  0 },
	{ "dispatch/fn", case_dispatch, T_FN, 0 },
	{ "detach_attach/fn", case_detach_attach, T_FN, 0 },
	{ "death/fn", case_death, T_FN, 0 },
	{ "death_wins/fn", case_death_wins, T_FN, 0 },
	{ "tick_owed/fn", case_tick_owed, T_FN, 0 },
	{ "errors/fn", case_errors, T_FN, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
