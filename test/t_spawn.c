/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a stub starts with: only stdio and its own fds (or all of the
 * monitor's with SW_SPAWN_KEEP_FDS), its page of the size asked, the
 * environment given; SW_SPAWN_PDEATHSIG.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

/* Fd numbers far from anything the library or the harness opens. */
#define FD_CLOEXEC_PIPE 200
#define FD_PLAIN_PIPE   201

static void open_probe_fds(void)
{
	int p[2];

	t_assert(pipe2(p, O_CLOEXEC) == 0);
	t_assert(dup3(p[0], FD_CLOEXEC_PIPE, O_CLOEXEC) == FD_CLOEXEC_PIPE);
	t_assert(dup2(p[1], FD_PLAIN_PIPE) == FD_PLAIN_PIPE); /* no CLOEXEC */
	close(p[0]);
	close(p[1]);
}

static void close_probe_fds(void)
{
	close(FD_CLOEXEC_PIPE);
	close(FD_PLAIN_PIPE);
}

/* Ask an echo stub which of four fd numbers are open in it. */
static uint64_t probe(struct sw_stub *stub, int64_t a, int64_t b, int64_t c,
		      int64_t d)
{
	struct t_payload *p = t_pl(stub);
	struct sw_event ev;

	p->fds[0] = (uint64_t)a;
	p->fds[1] = (uint64_t)b;
	p->fds[2] = (uint64_t)c;
	p->fds[3] = (uint64_t)d;
	t_assert_rc(t_request(stub, T_REQ_FDCHECK, &ev), SW_EV_REPORT);
	return p->result;
}

static void case_fds_closed(intptr_t mode)
{
	struct sw_loop *loop;
	struct sw_stub *first, *stub;
	int64_t other_fd, own_report_fd;

	open_probe_fds();
	loop = t_loop();
	first = t_spawn_echo(loop, mode);
	stub = t_spawn_echo(loop, mode);
	own_report_fd = sw_stub_page(stub)->report_fd;
	/* another stub's pidfd, at its number in the monitor, unless that
	 * number is one of the stub's own */
	other_fd = sw_stub_pidfd(first);
	if (other_fd <= SW_EXEC_REPORT_FD || other_fd == own_report_fd)
		other_fd = -1;
	/* the monitor's pipes, another stub's fd: all closed; the stub's own
	 * eventfd: open */
	t_assert_eq(probe(stub, FD_CLOEXEC_PIPE, FD_PLAIN_PIPE, other_fd,
			  own_report_fd), 0x8);
	t_assert_eq(probe(stub, 0, 1, 2, -1), 0x7); /* stdio stays */
	t_stop(first);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
	close_probe_fds();
}

static void case_keep_fds(intptr_t mode)
{
	struct sw_loop *loop;
	struct sw_stub *stub = NULL;
	struct sw_event ev;

	open_probe_fds();
	loop = t_loop();
	t_assert_rc(t_spawn_rc(loop, mode, "echo", 0, SW_SPAWN_KEEP_FDS, &stub),
		    0);
	t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
	/* the fds an exec would keep, in both modes: the close-on-exec one
	 * goes (every library fd is one), the plain one and the stub's own
	 * eventfd stay */
	t_assert_eq(probe(stub, FD_CLOEXEC_PIPE, FD_PLAIN_PIPE, 0,
			  sw_stub_page(stub)->report_fd), 0xe);
	t_stop(stub);
	t_assert(sw_loop_free(loop) == NULL);
	close_probe_fds();
}

static void case_shm_size(intptr_t mode)
{
	const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	const struct {
		size_t asked, got;
	} sizes[] = {
		{ 0, 16384 },
		{ 1, pg },
		{ pg, pg },
		{ 3 * pg + 1, 4 * pg },
		{ 64u << 20, 64u << 20 },
	};
	struct sw_loop *loop = t_loop();
	unsigned i;

	for (i = 0; i < T_NCASES(sizes); i++) {
		char argbuf[] = "0";
		char *argv[] = { "stub", "--stub", "echo", argbuf, NULL };
		struct sw_spawn_opts o = {
			.size = sizeof(o),
			.shm_size = sizes[i].asked,
		};
		struct sw_stub *stub = NULL;
		struct sw_event ev;

		if (mode == T_FN) {
			o.fn = t_role_echo;
		} else {
			o.path = "/proc/self/exe";
			o.argv = argv;
		}
		t_assert_rc(sw_stub_spawn(loop, &o, &stub), 0);
		t_assert_eq(sw_stub_page(stub)->size, sizes[i].got);
		t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_REPORT);
		/* the whole area is shared: the monitor can use its end */
		((volatile char *)sw_stub_page(stub))[sizes[i].got - 1] = 1;
		t_echo(stub, 5);
		t_stop(stub);
	}
	t_assert(sw_loop_free(loop) == NULL);
}

static void case_envp(intptr_t unused)
{
	char *yes[] = { "T_ENV_PROBE=yes", NULL };
	char *no[] = { "T_ENV_PROBE=no", NULL };
	char *argv[] = { "stub", "--stub", "envcheck", "0", NULL };
	struct sw_loop *loop = t_loop();
	struct sw_spawn_opts o = {
		.size = sizeof(o),
		.path = "/proc/self/exe",
		.argv = argv,
	};
	struct sw_stub *stub;
	struct sw_event ev;
	unsigned i;
	const struct {
		char **envp;
		const char *environ_value; /* NULL: unset */
		int code;
	} runs[] = {
		{ yes, NULL, 0 },
		{ no, "yes", 1 },
		{ NULL, "yes", 0 }, /* NULL: the caller's environ */
		{ NULL, NULL, 1 },
	};

	for (i = 0; i < T_NCASES(runs); i++) {
		if (runs[i].environ_value)
			setenv("T_ENV_PROBE", runs[i].environ_value, 1);
		else
			unsetenv("T_ENV_PROBE");
		o.envp = runs[i].envp;
		stub = NULL;
		t_assert_rc(sw_stub_spawn(loop, &o, &stub), 0);
		t_assert_rc(sw_stub_wait(stub, &ev), SW_EV_EXIT);
		t_assert_msg(WIFEXITED(ev.status) &&
				     WEXITSTATUS(ev.status) == runs[i].code,
			     "run %u: status 0x%x", i, ev.status);
		t_assert(sw_stub_free(stub) == NULL);
	}
	unsetenv("T_ENV_PROBE");
	t_assert(sw_loop_free(loop) == NULL);
}

struct spawner {
	struct sw_loop *loop;
	intptr_t mode;
	unsigned flags;
	struct sw_stub *stub;
};

static void *spawner_thread(void *arg)
{
	struct spawner *s = arg;
	struct sw_event ev;

	t_assert_rc(t_spawn_rc(s->loop, s->mode, "echo", 0, s->flags, &s->stub),
		    0);
	t_assert_rc(sw_stub_wait(s->stub, &ev), SW_EV_REPORT);
	return NULL;
}

/* SIGKILL when the spawning thread exits; without the flag, it lives on. */
static void case_pdeathsig(intptr_t mode)
{
	struct spawner s = { .loop = t_loop(), .mode = mode };
	struct sw_event ev;
	pthread_t th;
	int rc;

	s.flags = SW_SPAWN_PDEATHSIG;
	t_assert(pthread_create(&th, NULL, spawner_thread, &s) == 0);
	t_assert(pthread_join(th, NULL) == 0);
	/* The join returns once the thread's tid is cleared, before the
	 * kernel sends the parent-death signal: wait for the death, so that
	 * the resume below finds a dead stub, not a live one. */
	t_assert(t_wait_proc_state(sw_stub_pid(s.stub), "Z", 5000 * T_MS));
	t_pl(s.stub)->req = 1;
	rc = sw_stub_resume(s.stub);
	t_assert(rc == 0);
	t_assert_rc(sw_stub_wait(s.stub, &ev), SW_EV_EXIT);
	t_assert(WIFSIGNALED(ev.status) && WTERMSIG(ev.status) == SIGKILL);
	t_assert(sw_stub_free(s.stub) == NULL);

	s.flags = 0;
	t_assert(pthread_create(&th, NULL, spawner_thread, &s) == 0);
	t_assert(pthread_join(th, NULL) == 0);
	t_echo(s.stub, 10);
	t_stop(s.stub);
	t_assert(sw_loop_free(s.loop) == NULL);
}

static const struct t_case cases[] = {
	{ "fds_closed/fn", case_fds_closed, T_FN, 0 },
	{ "fds_closed/exec", case_fds_closed, T_EXEC, 0 },
	{ "keep_fds/fn", case_keep_fds, T_FN, 0 },
	{ "keep_fds/exec", case_keep_fds, T_EXEC, 0 },
	{ "shm_size/fn", case_shm_size, T_FN, 0 },
	{ "shm_size/exec", case_shm_size, T_EXEC, 0 },
	{ "envp/exec", case_envp, T_EXEC, 0 },
	{ "pdeathsig/fn", case_pdeathsig, T_FN, 0 },
	{ "pdeathsig/exec", case_pdeathsig, T_EXEC, 0 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
