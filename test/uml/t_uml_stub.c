// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The model stub on its own, driven through swu_stub_serve(): its seccomp
 * filter, its handler, served system calls, preemption, and a monitor that
 * kills any report that does not validate.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_uml.h"

/* One loop: T = 1 s, N = 5, a preemption tick every 10 ms. */
static int new_loop(struct sw_loop **ret)
{
	struct sw_loop_opts o = { .size = sizeof(o),
				  .tick_ns = 1000000000ull,
				  .stall_ticks = 5,
				  .timer_div = 100,
				  .flags = SW_LOOP_TICK_EVENTS };

	return sw_loop_new(&o, ret);
}

#define MAX_SERVED 16

struct drive {
	unsigned sigsys, sigalrm, sigsegv, violations, ticks;
	unsigned tick_rounds; /* waits that took at least one tick */
	struct swu_served served[MAX_SERVED];
	unsigned nserved;
	bool ended;
	struct sw_event end;
};

/*
 * Run one stub as a vCPU would: resume, wait, preempt on ticks (if asked),
 * serve; until it exits or is killed, or max_ms have passed (then it stops
 * after a report, not in flight).  Returns 0 or a negative errno.
 */
static int drive(struct swu_stub *s, unsigned max_ms, bool preempt,
		 struct drive *d)
{
	struct sw_stub *sw = swu_stub_sw(s);
	uint64_t deadline = swu_now_ns() + (uint64_t)max_ms * 1000000ull;
	bool resume = true;
	struct swu_served sv;
	struct sw_event ev;
	int r;

	memset(d, 0, sizeof(*d));
	for (;;) {
		if (resume) {
			r = sw_stub_resume(sw);
			if (r < 0)
				return r;
		}
		unsigned t0 = d->ticks;

		while ((r = sw_stub_wait(sw, &ev)) == SW_EV_TICK) {
			d->ticks++;
			if (preempt)
				swu_stub_preempt(s);
		}
		d->tick_rounds += d->ticks != t0;
		if (r < 0)
			return r;
		if (r == SW_EV_EXIT || r == SW_EV_KILL) {
			d->ended = true;
			d->end = ev;
			return 0;
		}
		r = swu_stub_serve(s, &sv);
		if (r < 0)
			return r;
		resume = true;
		switch (r) {
		case SWU_SERVED:
			d->sigsys++;
			if (d->nserved < MAX_SERVED)
				d->served[d->nserved++] = sv;
			break;
		case SWU_PREEMPTED:
			d->sigalrm++;
			break;
		case SWU_FAULTED:
			d->sigsegv++;
			break;
		case SWU_VIOLATION:
			d->violations++;
			resume = false; /* its kill comes next */
			continue;
		}
		if (swu_now_ns() >= deadline)
			return 0;
	}
}

static int spawn(struct sw_loop *loop, const struct swu_prog *p,
		 struct swu_stub **ret)
{
	int r = swu_stub_spawn(loop, p, 0, ret);

	if (r == -ENOSYS)
		t_info("SKIP: swu_stub_spawn: %s", strerror(-r));
	return r;
}

/* ---- cases --------------------------------------------------------------- */

/* Every mmap/munmap traps and is served; the stub checks each answer. */
static int t_churn_served(void)
{
	struct swu_prog p = { .kind = SWU_PROG_CHURN, .iterations = 1000 };
	struct sw_loop *loop;
	struct swu_stub *s;
	struct drive d;
	int r;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	r = spawn(loop, &p, &s);
	if (r == -ENOSYS)
		return T_SKIP;
	T_CHECK(r == 0, "spawn: %s", strerror(-r));
	r = drive(s, 20000, true, &d);
	T_CHECK(r == 0, "drive: %s", strerror(-r));
	T_CHECK(d.ended && d.end.type == SW_EV_EXIT, "ended %d type %d",
		d.ended, d.end.type);
	T_CHECK(WIFEXITED(d.end.status) && WEXITSTATUS(d.end.status) == 0,
		"status 0x%x: %s %d%s", d.end.status,
		WIFEXITED(d.end.status) ? "exit" : "signal",
		WIFEXITED(d.end.status) ? WEXITSTATUS(d.end.status)
					: WTERMSIG(d.end.status),
		WIFEXITED(d.end.status) && WEXITSTATUS(d.end.status) == 3
			? " (a served call came back wrong)" : "");
	/* 1000 pairs and a getpid every 64 rounds */
	T_CHECK(d.sigsys == 2000 + 1000 / 64, "%u SIGSYS reports", d.sigsys);
	T_CHECK(d.served[0].nr == SYS_mmap && d.served[0].ret >= 0x1000,
		"first call %ld -> %ld", d.served[0].nr, d.served[0].ret);
	T_CHECK(d.served[1].nr == SYS_munmap && d.served[1].ret == 0,
		"second call %ld -> %ld", d.served[1].nr, d.served[1].ret);
	T_CHECK(d.violations == 0, "%u violations", d.violations);
	/* hello + every report */
	T_CHECK(swu_stub_reports(s) == 1 + d.sigsys + d.sigalrm,
		"%llu reports", (unsigned long long)swu_stub_reports(s));
	swu_stub_free(s);
	sw_loop_free(loop);
	return T_PASS;
}

/* A CPU-bound stub reports only when the monitor preempts it. */
static int t_cpu_preempted(void)
{
	struct swu_prog p = { .kind = SWU_PROG_CPU };
	struct sw_loop *loop;
	struct swu_stub *s;
	struct sw_event ev;
	struct drive d;
	int r;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	r = spawn(loop, &p, &s);
	if (r == -ENOSYS)
		return T_SKIP;
	T_CHECK(r == 0, "spawn: %s", strerror(-r));
	r = drive(s, 300, true, &d);
	T_CHECK(r == 0, "drive: %s", strerror(-r));
	T_CHECK(!d.ended, "ended: type %d status 0x%x", d.end.type,
		d.end.status);
	T_CHECK(d.sigsys == 0, "%u SIGSYS from pure computation", d.sigsys);
	/* 300 ms of 10 ms ticks: every wait that took a tick preempted the
	 * stub, which then reported exactly that (ticks that came while it
	 * was already being preempted add none).  How many ticks came is the
	 * loop's timeliness and the host's load: counted, not bounded. */
	t_info("%u preemptions, %u ticks in 300 ms", d.sigalrm, d.ticks);
	T_CHECK(d.sigalrm >= 1, "no preemption");
	T_CHECK(d.sigalrm == d.tick_rounds, "%u preemptions for %u waits "
		"that took a tick", d.sigalrm, d.tick_rounds);
	T_CHECK(d.sigalrm <= d.ticks, "%u preemptions for %u ticks",
		d.sigalrm, d.ticks);

	r = sw_stub_kill(swu_stub_sw(s), SW_KILL_USER);
	T_CHECK(r == 0, "kill: %s", strerror(-r));
	r = sw_stub_wait(swu_stub_sw(s), &ev);
	T_CHECK(r == SW_EV_KILL && ev.kill.reason == SW_KILL_USER,
		"wait %d reason %d", r, ev.kill.reason);
	swu_stub_free(s);
	sw_loop_free(loop);
	return T_PASS;
}

/* The filter: write(1) and getppid() trap (the monitor answers -ENOSYS);
 * write() to its own eventfd does not; the stub checks all three. */
static int t_filter_probe(void)
{
	struct swu_prog p = { .kind = SWU_PROG_PROBE };
	struct sw_loop *loop;
	struct swu_stub *s;
	struct drive d;
	int r;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	r = spawn(loop, &p, &s);
	if (r == -ENOSYS)
		return T_SKIP;
	T_CHECK(r == 0, "spawn: %s", strerror(-r));
	r = drive(s, 5000, false, &d);
	T_CHECK(r == 0 && d.ended, "drive: %d ended %d", r, d.ended);
	T_CHECK(d.end.type == SW_EV_EXIT && WIFEXITED(d.end.status) &&
			WEXITSTATUS(d.end.status) == SWU_EXIT_PROBE_OK,
		"type %d status 0x%x", d.end.type, d.end.status);
	T_CHECK(d.nserved == 2, "%u calls served", d.nserved);
	T_CHECK(d.served[0].nr == SYS_write && d.served[0].ret == -ENOSYS,
		"write: %ld -> %ld", d.served[0].nr, d.served[0].ret);
	T_CHECK(d.served[1].nr == SYS_getppid && d.served[1].ret == -ENOSYS,
		"getppid: %ld -> %ld", d.served[1].nr, d.served[1].ret);
	swu_stub_free(s);
	sw_loop_free(loop);
	return T_PASS;
}

/* SIGSEGV is reported like the others; the model ends the process. */
static int t_segv(void)
{
	struct swu_prog p = { .kind = SWU_PROG_SEGV };
	struct sw_loop *loop;
	struct swu_stub *s;
	struct drive d;
	int r;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	r = spawn(loop, &p, &s);
	if (r == -ENOSYS)
		return T_SKIP;
	T_CHECK(r == 0, "spawn: %s", strerror(-r));
	r = drive(s, 5000, false, &d);
	T_CHECK(r == 0 && d.ended, "drive: %d ended %d", r, d.ended);
	T_CHECK(d.sigsegv == 1, "%u SIGSEGV reports", d.sigsegv);
	T_CHECK(d.end.type == SW_EV_EXIT && WIFEXITED(d.end.status) &&
			WEXITSTATUS(d.end.status) == 128 + SIGSEGV,
		"type %d status 0x%x", d.end.type, d.end.status);
	swu_stub_free(s);
	sw_loop_free(loop);
	return T_PASS;
}

/* While the stub waits in its handler: every signal masked, the three
 * handlers in place, and (after its first run) seccomp in filter mode. */
static int t_handler_state(void)
{
	struct swu_prog p = { .kind = SWU_PROG_CHURN };
	struct sw_loop *loop;
	struct swu_stub *s;
	struct drive d;
	unsigned long long blk = 0, cgt = 0;
	int seccomp = -1, r;
	char path[64], line[256];
	FILE *f;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	r = spawn(loop, &p, &s);
	if (r == -ENOSYS)
		return T_SKIP;
	T_CHECK(r == 0, "spawn: %s", strerror(-r));
	r = drive(s, 20, false, &d); /* stops right after a report */
	T_CHECK(r == 0 && !d.ended, "drive: %d ended %d", r, d.ended);

	snprintf(path, sizeof(path), "/proc/%d/status", (int)swu_stub_pid(s));
	f = fopen(path, "re");
	T_CHECK(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "SigBlk: %llx", &blk);
		sscanf(line, "SigCgt: %llx", &cgt);
		sscanf(line, "Seccomp: %d", &seccomp);
	}
	fclose(f);
	/* everything but SIGKILL and SIGSTOP, which cannot be blocked */
	T_CHECK((blk | 1ull << (SIGKILL - 1) | 1ull << (SIGSTOP - 1)) == ~0ull,
		"SigBlk %016llx", blk);
	T_CHECK(cgt == (1ull << (SIGSYS - 1) | 1ull << (SIGALRM - 1) |
			1ull << (SIGSEGV - 1)),
		"SigCgt %016llx", cgt);
	T_CHECK(seccomp == 2, "Seccomp: %d", seccomp);
	swu_stub_free(s);
	sw_loop_free(loop);
	return T_PASS;
}

/* Nothing to serve while the stub runs: -EALREADY, page untouched. */
static int t_serve_in_flight(void)
{
	struct swu_prog p = { .kind = SWU_PROG_CPU };
	struct sw_loop *loop;
	struct swu_stub *s;
	struct sw_event ev;
	int r;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	r = spawn(loop, &p, &s);
	if (r == -ENOSYS)
		return T_SKIP;
	T_CHECK(r == 0, "spawn: %s", strerror(-r));
	T_CHECK(swu_stub_serve(NULL, NULL) == -EINVAL, "NULL");
	T_CHECK(sw_stub_resume(swu_stub_sw(s)) == 0, "resume");
	r = swu_stub_serve(s, NULL);
	T_CHECK(r == -EALREADY, "serve in flight: %d", r);
	T_CHECK(swu_stub_preempt(s) == 0, "preempt");
	while ((r = sw_stub_wait(swu_stub_sw(s), &ev)) == SW_EV_TICK)
		;
	T_CHECK(r == SW_EV_REPORT, "wait: %d", r);
	r = swu_stub_serve(s, NULL);
	T_CHECK(r == SWU_PREEMPTED, "serve: %d", r);
	swu_stub_free(s);
	sw_loop_free(loop);
	return T_PASS;
}

static int count_stub_pages(pid_t pid)
{
	char path[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "memfd:stubwatch") != NULL;
	fclose(f);
	return n;
}

/* A stub keeps no other stub's page: the monitor's pages are MAP_SHARED,
 * so a clone3 child would inherit them live (libstubwatch marks them
 * MADV_DONTFORK; the model's stub also unmaps foreign shared memory). */
static int t_isolation(void)
{
	struct swu_prog p = { .kind = SWU_PROG_CHURN };
	struct sw_loop *loop;
	struct swu_stub *s[3];
	int r;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	for (int i = 0; i < 3; i++) {
		r = spawn(loop, &p, &s[i]);
		if (r == -ENOSYS)
			return T_SKIP;
		T_CHECK(r == 0, "spawn: %s", strerror(-r));
	}
	for (int i = 0; i < 3; i++) {
		r = count_stub_pages(swu_stub_pid(s[i]));
		T_CHECK(r == 1, "stub %d maps %d stubwatch pages", i, r);
	}
	for (int i = 0; i < 3; i++)
		swu_stub_free(s[i]);
	sw_loop_free(loop);
	return T_PASS;
}

/* A forged report is killed at once with SW_KILL_PROTOCOL. */
static int liar(enum swu_lie lie)
{
	struct swu_prog p = { .kind = SWU_PROG_LIAR, .lie = lie };
	struct sw_loop *loop;
	struct swu_stub *s;
	struct drive d;
	uint64_t t0;
	int r;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	r = spawn(loop, &p, &s);
	if (r == -ENOSYS)
		return T_SKIP;
	T_CHECK(r == 0, "spawn: %s", strerror(-r));
	t0 = swu_now_ns();
	r = drive(s, 10000, true, &d);
	T_CHECK(r == 0 && d.ended, "drive: %d ended %d", r, d.ended);
	T_CHECK(d.end.type == SW_EV_KILL &&
			d.end.kill.reason == SW_KILL_PROTOCOL,
		"type %d reason %d", d.end.type, d.end.kill.reason);
	/* before any stall could count: the watchdog never acts before
	 * N*T = 5 s after a resume, all of which come after t0 (an exact
	 * bound, so the SIGKILL's time tells a report's kill from a stall's) */
	T_CHECK(d.end.kill.killed_at_ns - t0 < 5000000000ull, "took %llu ms",
		(unsigned long long)(d.end.kill.killed_at_ns - t0) / 1000000);
	T_CHECK(d.sigsys == 16, "%u calls served before the lie", d.sigsys);
	if (lie == SWU_LIE_STATE)
		T_CHECK(d.end.kill.bad_state == 0xdead && d.violations == 0,
			"bad_state %x, %u violations", d.end.kill.bad_state,
			d.violations);
	else
		T_CHECK(d.violations == 1, "%u violations", d.violations);
	swu_stub_free(s);
	sw_loop_free(loop);
	return T_PASS;
}

static int t_lie_signo(void)
{
	return liar(SWU_LIE_SIGNO);
}

static int t_lie_nr(void)
{
	return liar(SWU_LIE_NR);
}

static int t_lie_seq(void)
{
	return liar(SWU_LIE_SEQ);
}

static int t_lie_arch(void)
{
	return liar(SWU_LIE_ARCH);
}

static int t_lie_state(void)
{
	return liar(SWU_LIE_STATE);
}

static int t_bad_args(void)
{
	struct swu_prog p = { .kind = SWU_PROG_CHURN };
	struct sw_loop *loop;
	struct swu_stub *s = (void *)1;

	T_CHECK(new_loop(&loop) == 0, "sw_loop_new");
	T_CHECK(swu_stub_spawn(NULL, &p, 0, &s) == -EINVAL, "NULL loop");
	T_CHECK(swu_stub_spawn(loop, NULL, 0, &s) == -EINVAL, "NULL prog");
	p.kind = SWU_PROG__MAX;
	T_CHECK(swu_stub_spawn(loop, &p, 0, &s) == -EINVAL, "bad kind");
	p.kind = SWU_PROG_LIAR;
	T_CHECK(swu_stub_spawn(loop, &p, 0, &s) == -EINVAL, "liar, no lie");
	p.kind = SWU_PROG_CHURN;
	p.hijack = SWU_HIJACK__MAX;
	T_CHECK(swu_stub_spawn(loop, &p, 0, &s) == -EINVAL, "bad hijack");
	T_CHECK(s == (void *)1, "ret_stub clobbered");
	T_CHECK(swu_stub_free(NULL) == NULL, "free(NULL)");
	T_CHECK(swu_stub_preempt(NULL) == -EINVAL, "preempt(NULL)");
	sw_loop_free(loop);
	return T_PASS;
}

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{ "churn_served", t_churn_served, 30 },
		{ "cpu_preempted", t_cpu_preempted, 10 },
		{ "filter_probe", t_filter_probe, 10 },
		{ "segv", t_segv, 10 },
		{ "handler_state", t_handler_state, 10 },
		{ "serve_in_flight", t_serve_in_flight, 10 },
		{ "isolation", t_isolation, 10 },
		{ "lie_signo", t_lie_signo, 15 },
		{ "lie_nr", t_lie_nr, 15 },
		{ "lie_seq", t_lie_seq, 15 },
		{ "lie_arch", t_lie_arch, 15 },
		{ "lie_state", t_lie_state, 15 },
		{ "bad_args", t_bad_args, 10 },
	};

	return t_run(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
