// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A stub that cannot touch its monitor: the threat model, enforced.
 *
 * stubwatch survives whatever a stub does through what it shares with the
 * monitor (its page, its eventfd, its watched fd) and to itself.  It
 * assumes the stub cannot act on the monitor process: signal it, ptrace
 * it, write its memory, or change the flags of the fds they share.  This
 * program takes those powers away as User Mode Linux does: the stub loads
 * a seccomp filter that allows only what the stub side of the protocol
 * needs (FUTEX_WAIT on its page, write on its report eventfd, rt_sigreturn,
 * exit) and traps everything else (SIGSYS).  Then it attacks, and the
 * filter stops it: the stub dies of SIGSYS, and the monitor carries on.
 *
 * The filter is built with libseccomp in the monitor, before the spawn
 * (an fn-mode child may not call malloc), and loaded by the child with two
 * raw system calls.
 *
 *   sandboxed-stub           every attack, in turn
 *   sandboxed-stub ATTACK    one of them (--list names them)
 *
 * Exit status: 0 if every attack was stopped, 1 otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stubwatch.h>

#define MAX_INSNS 256

enum attack {
	ATTACK_NONE,
	ATTACK_SIGSTOP,   /* kill(monitor, SIGSTOP): freeze its watchdog     */
	ATTACK_PTRACE,    /* ptrace(PTRACE_SEIZE, monitor)                   */
	ATTACK_FCNTL,     /* clear O_NONBLOCK on the shared eventfd          */
	ATTACK_PROC_MEM,  /* open /proc/MONITOR/mem to write its memory      */
	ATTACK_VM_WRITE,  /* process_vm_writev() into the monitor            */
	ATTACK_FORK,      /* a child to do any of it later                   */
	ATTACK__MAX,
};

static const char *const attack_names[ATTACK__MAX] = {
	[ATTACK_SIGSTOP] = "sigstop-monitor",
	[ATTACK_PTRACE] = "ptrace-monitor",
	[ATTACK_FCNTL] = "fcntl-report-fd",
	[ATTACK_PROC_MEM] = "proc-mem",
	[ATTACK_VM_WRITE] = "process-vm-writev",
	[ATTACK_FORK] = "fork",
};

/* What the monitor hands the stub: the filter, copied into the child by
 * the clone, and the target of the attacks. */
struct stub_arg {
	struct sock_filter insns[MAX_INSNS];
	unsigned short len;
	pid_t monitor;
	char mem_path[64]; /* "/proc/MONITOR/mem" */
};

/* The request/report payload after the 64-byte page header. */
struct payload {
	uint32_t attack; /* monitor -> stub: enum attack, 0 to echo */
	uint32_t seq;    /* monitor -> stub; the stub answers seq + 1 */
	uint32_t ack;
};

/* Allow the stub side of the protocol, trap the rest. */
static int build_filter(int report_fd, struct stub_arg *a)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int mfd = -1, r;
	ssize_t n;

	if (!ctx)
		return -ENOMEM;
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(futex), 0);
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
				     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)report_fd));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigreturn), 0);
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit), 0);
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 0);
	if (r == 0) {
		mfd = memfd_create("filter", MFD_CLOEXEC);
		r = mfd < 0 ? -errno : seccomp_export_bpf(ctx, mfd);
	}
	if (r == 0) {
		n = pread(mfd, a->insns, sizeof(a->insns), 0);
		if (n <= 0 || n % sizeof(a->insns[0]) ||
		    (size_t)n == sizeof(a->insns))
			r = -E2BIG; /* or empty */
		else
			a->len = (unsigned short)(n / sizeof(a->insns[0]));
	}
	if (mfd >= 0)
		close(mfd);
	seccomp_release(ctx);
	return r;
}

/* ---- the stub: system calls only (it runs in a raw clone) -------------- */

static long raw(long nr, long a, long b, long c, long d, long e)
{
	return syscall(nr, a, b, c, d, e);
}

static void attack(const struct stub_arg *a, struct sw_page *page,
		   enum attack what)
{
	char byte = 0;
	struct iovec local = { &byte, 1 }, remote = { (void *)page, 1 };

	switch (what) {
	case ATTACK_SIGSTOP:
		raw(SYS_kill, a->monitor, SIGSTOP, 0, 0, 0);
		break;
	case ATTACK_PTRACE:
		raw(SYS_ptrace, PTRACE_SEIZE, a->monitor, 0, 0, 0);
		break;
	case ATTACK_FCNTL:
		raw(SYS_fcntl, page->report_fd, F_SETFL, 0, 0, 0);
		break;
	case ATTACK_PROC_MEM:
		raw(SYS_openat, AT_FDCWD, (long)a->mem_path, O_RDWR, 0, 0);
		break;
	case ATTACK_VM_WRITE:
		raw(SYS_process_vm_writev, a->monitor, (long)&local, 1,
		    (long)&remote, 1);
		break;
	case ATTACK_FORK:
		raw(SYS_clone, SIGCHLD, 0, 0, 0, 0);
		break;
	default:
		break;
	}
}

static int stub_main(struct sw_page *page, void *arg)
{
	const struct stub_arg *a = arg;
	struct sock_fprog prog = { a->len, (struct sock_filter *)a->insns };
	struct payload *p = sw_page_payload(page);

	/* no core dump for the SIGSYS: the death stays quick */
	raw(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (raw(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    raw(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&prog, 0, 0) < 0)
		return 2;
	/* From here on: futex, the eventfd write, rt_sigreturn, exit. */
	for (;;) {
		uint32_t what = __atomic_load_n(&p->attack, __ATOMIC_ACQUIRE);

		if (what != ATTACK_NONE)
			attack(a, page, (enum attack)what);
		p->ack = p->seq + 1;
		sw_stub_handshake(page);
	}
}

/* ---- the monitor -------------------------------------------------------- */

static int round_trip(struct sw_stub *stub, uint32_t attack_req,
		      struct sw_event *ev)
{
	struct payload *p = sw_page_payload(sw_stub_page(stub));

	p->seq++;
	__atomic_store_n(&p->attack, attack_req, __ATOMIC_RELEASE);
	return sw_stub_run(stub, ev);
}

/* Spawn a sandboxed stub, serve it a few round trips, then let it attack.
 * Returns 0 if the filter stopped the attack. */
static int try_attack(struct sw_loop *loop, enum attack what)
{
	struct sw_spawn_opts o = { .size = sizeof(o),
				   .flags = SW_SPAWN_PDEATHSIG };
	static struct stub_arg a;
	struct sw_stub *stub = NULL;
	struct sw_event ev;
	int r;

	memset(&a, 0, sizeof(a));
	a.monitor = getpid();
	snprintf(a.mem_path, sizeof(a.mem_path), "/proc/%d/mem", (int)a.monitor);
	r = build_filter(SW_STUB_REPORT_FD, &a);
	if (r < 0) {
		fprintf(stderr, "filter: %s\n", strerror(-r));
		return -1;
	}
	o.fn = stub_main;
	o.arg = &a;
	r = sw_stub_spawn(loop, &o, &stub);
	if (r < 0) {
		fprintf(stderr, "spawn: %s\n", strerror(-r));
		return -1;
	}
	/* its first report, then a few round trips through the filter */
	r = sw_stub_wait(stub, &ev);
	for (int i = 0; r == SW_EV_REPORT && i < 3; i++)
		r = round_trip(stub, ATTACK_NONE, &ev);
	if (r != SW_EV_REPORT) {
		fprintf(stderr, "%s: the sandboxed stub did not serve: %d\n",
			attack_names[what], r);
		sw_stub_free(stub);
		return -1;
	}
	r = round_trip(stub, what, &ev);
	sw_stub_free(stub);
	if (r == SW_EV_EXIT && WIFSIGNALED(ev.status) &&
	    WTERMSIG(ev.status) == SIGSYS) {
		printf("%-18s stopped by the filter: the stub died of SIGSYS, "
		       "the monitor carries on\n", attack_names[what]);
		return 0;
	}
	printf("%-18s NOT stopped (event %d, status 0x%x)\n",
	       attack_names[what], r, r == SW_EV_EXIT ? ev.status : 0);
	return -1;
}

int main(int argc, char **argv)
{
	struct sw_loop *loop = NULL;
	int r, failed = 0;
	bool any = false;

	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (int i = 1; i < ATTACK__MAX; i++)
			puts(attack_names[i]);
		return 0;
	}
	r = sw_loop_new(NULL, &loop);
	if (r < 0) {
		fprintf(stderr, "sw_loop_new: %s\n", strerror(-r));
		return 1;
	}
	for (int i = 1; i < ATTACK__MAX; i++) {
		bool wanted = argc < 2;

		for (int j = 1; j < argc; j++)
			wanted |= !strcmp(argv[j], attack_names[i]);
		if (!wanted)
			continue;
		any = true;
		failed |= try_attack(loop, (enum attack)i) < 0;
	}
	sw_loop_free(loop);
	if (!any) {
		fprintf(stderr, "no such attack (--list names them)\n");
		return 1;
	}
	return failed ? 1 : 0;
}
