// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The spawn phase: what containment (SW_SPAWN_PIDNS) costs a spawn.  One
 * cycle is sw_stub_spawn(), the wait for the stub's first report, and
 * sw_stub_free() (SIGKILL, the death, the reap).  The variants alternate
 * cycle by cycle in one loop, so that a change of load hits them alike.
 * An unprivileged monitor (uid nobody, in a child process of the bench)
 * pays for a user namespace too; a root one does not.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static int one_cycle(struct sw_loop *loop, const struct spawn_variant *v,
		     uint64_t *ret_up_ns, uint64_t *ret_cycle_ns)
{
	static char *const argv[] = { "sw-bench-stub", "--stub", NULL };
	struct sw_spawn_opts so = {
		.size = sizeof(so),
		.flags = SW_SPAWN_PDEATHSIG | v->flags,
	};
	struct sw_stub *stub = NULL;
	struct sw_event ev;
	uint64_t t0, t1;
	int r;

	if (v->exec) {
		so.path = "/proc/self/exe";
		so.argv = argv;
	} else {
		so.fn = bench_stub_main;
		so.arg = (void *)"sw-bench-stub";
	}
	t0 = now_ns();
	r = sw_stub_spawn(loop, &so, &stub);
	if (r < 0)
		return r;
	r = sw_stub_wait(stub, &ev);
	t1 = now_ns();
	sw_stub_free(stub);
	*ret_up_ns = t1 - t0;
	*ret_cycle_ns = now_ns() - t0;
	return r == SW_EV_REPORT ? 0 : r < 0 ? r : -EPROTO;
}

/* The variants in `vs`, n cycles each, alternating. */
static int run_here(struct spawn_variant *vs, int nv, size_t n)
{
	uint64_t *up = calloc(n * (size_t)nv, sizeof(*up));
	uint64_t *cyc = calloc(n * (size_t)nv, sizeof(*cyc));
	struct sw_loop *loop = NULL;
	int r;

	if (!up || !cyc) {
		r = -ENOMEM;
		goto out;
	}
	r = sw_loop_new(NULL, &loop);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n && r == 0; i++)
		for (int k = 0; k < nv && r == 0; k++)
			r = one_cycle(loop, &vs[k], &up[(size_t)k * n + i],
				      &cyc[(size_t)k * n + i]);
	for (int k = 0; k < nv && r == 0; k++) {
		stats_compute(&up[(size_t)k * n], n, &vs[k].up);
		stats_compute(&cyc[(size_t)k * n], n, &vs[k].cycle);
		vs[k].ran = true;
	}
out:
	sw_loop_free(loop);
	free(up);
	free(cyc);
	return r;
}

/* The same as uid nobody, in a child; its figures come back in a pipe. */
static int run_unprivileged(struct spawn_variant *vs, int nv, size_t n)
{
	const uid_t nobody = 65534;
	int pfd[2], r = 0, status;
	ssize_t got;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return r;
	}
	if (pid == 0) {
		close(pfd[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) < 0 ||
		     setresgid(nobody, nobody, nobody) < 0 ||
		     setresuid(nobody, nobody, nobody) < 0))
			r = -errno;
		prctl(PR_SET_DUMPABLE, 1);
		if (r == 0)
			r = run_here(vs, nv, n);
		if (write(pfd[1], &r, sizeof(r)) != sizeof(r) ||
		    (r == 0 && write(pfd[1], vs, sizeof(*vs) * (size_t)nv) !=
				       (ssize_t)(sizeof(*vs) * (size_t)nv)))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	got = read(pfd[0], &r, sizeof(r));
	if (got != sizeof(r))
		r = -EPIPE;
	else if (r == 0 &&
		 read(pfd[0], vs, sizeof(*vs) * (size_t)nv) !=
			 (ssize_t)(sizeof(*vs) * (size_t)nv))
		r = -EPIPE;
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return r;
}

int spawn_cost_run(struct spawn_variant *vs, int nv, size_t n,
		   bool unprivileged)
{
	return unprivileged ? run_unprivileged(vs, nv, n) : run_here(vs, nv, n);
}
