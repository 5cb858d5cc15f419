/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A seccomp user-notification supervisor: the stub's system calls are
 * answered by the monitor through a notify fd, and the stub is watched for
 * stalls there as well as in its reports.
 *
 * The stub installs a filter that sends its getpgid() to a listener
 * (SECCOMP_RET_USER_NOTIF) and reports the listener's number; the monitor
 * takes a copy with pidfd_getfd() and hands it to the loop with
 * sw_stub_add_fd().  From then on, while the stub is in flight, a pending
 * notification ends the wait with SW_EV_FD: the monitor answers it
 * (SECCOMP_IOCTL_NOTIF_RECV, then _SEND) and puts the stub back in flight
 * with sw_stub_continue(), which restarts its stall accounting.
 *
 * The stub asks three questions and reports the sum of the answers; then
 * it asks one more and, answered, goes silent.  The watchdog counts from
 * that last continue and kills it on time; the program checks the window.
 *
 * Exit status: 0 if every answer arrived and the kill came on time, 1
 * otherwise, 77 if this kernel or sandbox has no user notifications,
 * pidfd_getfd() or clone3.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <stubwatch.h>

#include "example.h"

#if defined(__x86_64__)
#define THIS_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define QUESTIONS 3u
#define ANSWER0   1000 /* the monitor's answers: 1000, 1001, ... */

/* The page protocol of this example. */
struct notify_msg {
	int32_t listener; /* stub: its listener's fd number, or -errno */
	int64_t sum;      /* stub: the sum of the answers it got */
};

/* ---- the stub: system calls only (a raw clone of the monitor) --------- */

static int notify_stub(struct sw_page *page, void *arg)
{
	struct sock_filter filter[] = {
		/* another architecture's numbers mean other calls: allow */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpgid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};
	struct notify_msg *m = sw_page_payload(page);
	long fd;

	/* no privilege needed for a filter with no_new_privs */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fd = -errno;
	else
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			     SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	m->listener = fd < 0 ? -errno : (int32_t)fd;
	sw_stub_handshake(page);
	if (m->listener < 0)
		return 1;

	m->sum = 0;
	for (unsigned i = 0; i < QUESTIONS; i++)
		m->sum += syscall(SYS_getpgid, 0); /* the monitor answers */
	sw_stub_handshake(page);

	syscall(SYS_getpgid, 0); /* one last question, then silence */
	for (;;)
		pause();
}

/* ---- the monitor ------------------------------------------------------- */

/* Answer the pending notification with `val` (the stub's getpgid() result). */
static int answer(int listener, int64_t val)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;

	memset(&req, 0, sizeof(req)); /* the kernel wants it zeroed */
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
		return -errno;
	if (req.data.nr != SYS_getpgid)
		return -EPROTO;
	memset(&resp, 0, sizeof(resp));
	resp.id = req.id;
	resp.val = val;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0)
		return -errno;
	return 0;
}

/* Wait for the stub, answering every notification on the way; returns the
 * event that is not one, with the clock around the last continue. */
static int wait_answering(struct sw_stub *stub, int listener,
			  int64_t *next_answer, struct sw_event *ev,
			  uint64_t *before, uint64_t *after)
{
	int r;

	for (r = sw_stub_wait(stub, ev); r == SW_EV_FD;
	     r = sw_stub_wait(stub, ev)) {
		r = answer(listener, (*next_answer)++);
		if (r < 0) {
			fprintf(stderr, "answering: %s\n", strerror(-r));
			return r;
		}
		/* not sw_stub_resume(): the stub waits for its answer, not
		 * for a resume */
		*before = example_now_ns();
		r = sw_stub_continue(stub);
		*after = example_now_ns();
		if (r < 0)
			return r;
	}
	return r;
}

int main(void)
{
	struct sw_spawn_opts so = { .size = sizeof(so), .fn = notify_stub,
				    .flags = SW_SPAWN_PDEATHSIG };
	struct sw_loop *loop = NULL;
	struct sw_stub *stub = NULL;
	struct notify_msg *m;
	struct sw_event ev;
	uint64_t before = 0, after = 0;
	int64_t next_answer = ANSWER0, want = 0;
	int r, listener, status = 1;

	r = example_loop_new(&loop);
	if (r < 0) {
		fprintf(stderr, "sw_loop_new: %s\n", strerror(-r));
		return 1;
	}
	r = sw_stub_spawn(loop, &so, &stub);
	if (r < 0) {
		printf("cannot spawn a stub: %s\n", strerror(-r));
		sw_loop_free(loop);
		return example_spawn_unsupported(r) ? 77 : 1;
	}
	m = sw_page_payload(sw_stub_page(stub));

	/* its first report: the listener's number in the stub */
	r = sw_stub_wait(stub, &ev);
	if (r != SW_EV_REPORT) {
		fprintf(stderr, "no first report: event %d\n", r);
		goto out;
	}
	if (m->listener < 0) {
		printf("no seccomp user notifications here: %s\n",
		       strerror(-m->listener));
		status = 77;
		goto out;
	}
	listener = (int)syscall(SYS_pidfd_getfd, sw_stub_pidfd(stub),
				m->listener, 0);
	if (listener < 0) {
		printf("no pidfd_getfd() here: %s\n", strerror(errno));
		status = errno == ENOSYS || errno == EPERM ? 77 : 1;
		goto out;
	}
	/* pidfd_getfd() makes it close-on-exec already; the loop watches
	 * a duplicate of its own, this one serves the notifications */
	r = sw_stub_add_fd(stub, listener, EPOLLIN);
	if (r < 0) {
		fprintf(stderr, "sw_stub_add_fd: %s\n", strerror(-r));
		goto out_listener;
	}

	/* three questions, answered in the wait, then a report of their sum */
	r = sw_stub_resume(stub);
	if (r == 0)
		r = wait_answering(stub, listener, &next_answer, &ev, &before,
				   &after);
	for (int64_t a = ANSWER0; a < next_answer; a++)
		want += a;
	printf("%lld answers, the stub's sum %lld (want %lld); ",
	       (long long)(next_answer - ANSWER0), (long long)m->sum,
	       (long long)want);
	if (r != SW_EV_REPORT || next_answer != ANSWER0 + QUESTIONS ||
	    m->sum != want) {
		printf("no report of the right sum: event %d\n", r);
		goto out_listener;
	}

	/* one more question, then silence: killed N*T to (N+1)*T after the
	 * continue that answered it */
	r = sw_stub_resume(stub);
	if (r == 0)
		r = wait_answering(stub, listener, &next_answer, &ev, &before,
				   &after);
	if (r != SW_EV_KILL || next_answer != ANSWER0 + QUESTIONS + 1) {
		printf("ended in %d, not a kill after its last answer\n", r);
		goto out_listener;
	}
	printf("answered, then silent; ");
	status = example_check_kill(loop, before, after, &ev.kill) < 0;

out_listener:
	close(listener);
out:
	sw_stub_free(stub);
	sw_loop_free(loop);
	if (status != 77) /* a skip's last line says why */
		printf("%s\n", status ? "FAIL" : "ok");
	return status;
}
