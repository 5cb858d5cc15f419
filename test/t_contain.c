/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Containment: with SW_SPAWN_PIDNS no descendant of a stub outlives it.
 * The stub is the first process of a PID namespace of its own; it makes
 * descendants that sleep for ever (T_REQ_KIN), each holding its page and
 * its report eventfd.  The test lists every process in that namespace
 * (those whose /proc/PID/ns/pid is the stub's) and holds a pidfd on each;
 * once the stub's death is delivered, every one of them must already be
 * gone (its pidfd readable at once), however it was made and however the
 * stub died:
 *
 *   kill_fork      forked children, the stub killed (sw_stub_kill);
 *   stall_daemon   double-forked, setsid() grandchildren, the stub killed
 *                  by the watchdog as stalled;
 *   exit_fork      forked children, the stub exits by itself;
 *   sibling        clone(CLONE_PARENT), which would make a child of the
 *                  monitor, is refused to the namespace's first process;
 *   unprivileged   the same from a monitor without CAP_SYS_ADMIN (uid
 *                  nobody): the stub gets a user namespace too, keeps its
 *                  uid, and its children still die with it;
 *   self_signal    the first process of a namespace ignores the signals
 *                  it sends itself whose action is the default, as the
 *                  header says: it answers on after kill(getpid(), SIGTERM);
 *   escape_default without SW_SPAWN_PIDNS, the route is open, as the header
 *                  says: a CLONE_PARENT sibling is the monitor's child and
 *                  outlives the stub's kill and sw_stub_free() (that of an
 *                  fn-mode stub, with exit_signal 0, seen only by
 *                  waitid(__WALL)).
 *
 * Each case runs with fn-mode and exec-mode stubs (unprivileged: fn mode,
 * since the test program need not be readable to nobody).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

#define MAX_KIN 64

struct kin {
	unsigned n;
	pid_t pid[MAX_KIN];
	int pidfd[MAX_KIN];
};

static int ns_of(pid_t pid, struct stat *st)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat(path, st);
}

/* Every process in the stub's PID namespace, the stub first, each with a
 * pidfd taken now. */
static void list_kin(pid_t stub, struct kin *k)
{
	struct stat ns, st;
	struct dirent *d;
	DIR *dir;

	k->n = 0;
	t_assert(ns_of(stub, &ns) == 0);
	dir = opendir("/proc");
	t_assert(dir);
	while ((d = readdir(dir))) {
		pid_t pid = (pid_t)atoi(d->d_name);
		int fd;

		if (pid <= 0 || ns_of(pid, &st) < 0 || st.st_ino != ns.st_ino ||
		    st.st_dev != ns.st_dev)
			continue;
		fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd < 0)
			continue; /* gone since */
		t_assert(k->n < MAX_KIN);
		k->pid[k->n] = pid;
		k->pidfd[k->n++] = fd;
	}
	closedir(dir);
	/* the stub itself is in it */
	for (unsigned i = 0; i < k->n; i++)
		if (k->pid[i] == stub)
			return;
	t_fail(__FILE__, __LINE__, "the stub %d is not in its own namespace",
	       (int)stub);
}

/* After the stub's death was delivered: every process of its namespace is
 * gone already, none waited for. */
static void assert_all_gone(struct kin *k)
{
	for (unsigned i = 0; i < k->n; i++) {
		struct pollfd p = { .fd = k->pidfd[i], .events = POLLIN };

		t_assert_msg(poll(&p, 1, 0) == 1 && (p.revents & POLLIN),
			     "process %d of the stub's namespace outlived it",
			     (int)k->pid[i]);
		close(k->pidfd[i]);
	}
	t_note("all %u processes of the stub's namespace died with it", k->n);
}

/* The stub's NSpid line: its pid here, then 1 in its own namespace. */
static void assert_first_in_ns(pid_t pid)
{
	char path[64], line[256];
	bool seen = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	t_assert(f);
	while (fgets(line, sizeof(line), f)) {
		int a, b;

		if (sscanf(line, "NSpid: %d %d", &a, &b) == 2) {
			t_assert_eq(a, pid);
			t_assert_eq(b, 1);
			seen = true;
		}
	}
	fclose(f);
	t_assert_msg(seen, "no second NSpid in %s", path);
}

static struct sw_stub *spawn_contained(struct sw_loop *loop, intptr_t mode)
{
	struct sw_stub *stub = NULL;

	t_assert_rc(t_spawn_rc(loop, mode, "echo", 0, SW_SPAWN_PIDNS, &stub),
		    0);
	t_expect(stub, SW_EV_REPORT, NULL);
	t_assert_eq(t_pl(stub)->ack, 1);
	assert_first_in_ns(sw_stub_pid(stub));
	return stub;
}

/* Ask for n descendants of `kind`; returns the last clone's value. */
static long make_kin(struct sw_stub *stub, enum t_kin kind, unsigned n)
{
	struct sw_event ev;

	t_pl(stub)->arg = T_KIN_ARG(kind, n);
	t_assert_rc(t_request(stub, T_REQ_KIN, &ev), SW_EV_REPORT);
	return (long)t_pl(stub)->result;
}

static void kill_fork(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = spawn_contained(loop, mode);
	struct sw_event ev;
	struct kin k;

	t_assert(make_kin(stub, T_KIN_FORK, 3) > 0);
	t_echo(stub, 2);
	list_kin(sw_stub_pid(stub), &k);
	t_assert_eq(k.n, 4);
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), 0);
	t_expect(stub, SW_EV_KILL, &ev);
	t_assert_eq(ev.kill.reason, SW_KILL_USER);
	assert_all_gone(&k);
	sw_stub_free(stub);
	sw_loop_free(loop);
}

static void stall_daemon(intptr_t mode)
{
	struct sw_loop *loop = t_loop_timed();
	struct sw_stub *stub = spawn_contained(loop, mode);
	struct sw_event ev;
	struct kin k;

	t_assert(make_kin(stub, T_KIN_DAEMON, 2) > 0);
	list_kin(sw_stub_pid(stub), &k);
	t_assert_eq(k.n, 3); /* the stub and two orphaned grandchildren */
	t_pl(stub)->arg = T_STALL_FUTEX;
	t_pl(stub)->delay_ns = 0;
	t_assert_rc(t_request(stub, T_REQ_STALL, &ev), SW_EV_KILL);
	t_assert_eq(ev.kill.reason, SW_KILL_STALL);
	assert_all_gone(&k);
	sw_stub_free(stub);
	sw_loop_free(loop);
}

static void exit_fork(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = spawn_contained(loop, mode);
	struct sw_event ev;
	struct kin k;

	t_assert(make_kin(stub, T_KIN_FORK, 2) > 0);
	list_kin(sw_stub_pid(stub), &k);
	t_assert_eq(k.n, 3);
	t_pl(stub)->arg = 7;
	t_assert_rc(t_request(stub, T_REQ_EXIT, &ev), SW_EV_EXIT);
	t_assert(WIFEXITED(ev.status) && WEXITSTATUS(ev.status) == 7);
	assert_all_gone(&k);
	sw_stub_free(stub);
	sw_loop_free(loop);
}

static void sibling(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = spawn_contained(loop, mode);
	siginfo_t si;
	struct kin k;

	t_assert_rc(make_kin(stub, T_KIN_SIBLING, 1), -EINVAL);
	list_kin(sw_stub_pid(stub), &k);
	t_assert_eq(k.n, 1);
	t_echo(stub, 2);
	sw_stub_free(stub);
	assert_all_gone(&k);
	/* no child of the monitor left, of any kind */
	memset(&si, 0, sizeof(si));
	t_assert(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) <
			 0 ||
		 si.si_pid == 0);
	sw_loop_free(loop);
}

static void self_signal(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = spawn_contained(loop, mode);
	struct sw_event ev;

	t_pl(stub)->arg = SIGTERM;
	t_assert_rc(t_request(stub, T_REQ_SIGNAL, &ev), SW_EV_REPORT);
	t_echo(stub, 2);
	t_stop(stub);
	sw_loop_free(loop);
}

static void unprivileged(intptr_t mode)
{
	const uid_t nobody = 65534;
	struct sw_loop *loop;
	struct sw_stub *stub = NULL;
	struct sw_event ev;
	char path[64], map[64] = "";
	struct kin k;
	FILE *f;
	int rc;

	if (geteuid() == 0) {
		t_assert(setgroups(0, NULL) == 0);
		t_assert(setresgid(nobody, nobody, nobody) == 0);
		t_assert(setresuid(nobody, nobody, nobody) == 0);
		prctl(PR_SET_DUMPABLE, 1);
	}
	loop = t_loop();
	rc = t_spawn_rc(loop, mode, "echo", 0, SW_SPAWN_PIDNS, &stub);
	if (rc == -EPERM || rc == -ENOSPC)
		t_skip("no user namespaces for uid %d here: %s", (int)geteuid(),
		       t_errname(rc));
	t_assert_rc(rc, 0);
	t_expect(stub, SW_EV_REPORT, NULL);
	assert_first_in_ns(sw_stub_pid(stub));
	/* its uid, mapped to itself */
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)sw_stub_pid(stub));
	f = fopen(path, "r");
	t_assert(f);
	t_assert(fgets(map, sizeof(map), f));
	fclose(f);
	{
		unsigned in, out, len;

		t_assert(sscanf(map, "%u %u %u", &in, &out, &len) == 3);
		t_assert_eq(in, geteuid());
		t_assert_eq(out, geteuid());
		t_assert_eq(len, 1);
	}
	t_assert(make_kin(stub, T_KIN_FORK, 2) > 0);
	list_kin(sw_stub_pid(stub), &k);
	t_assert_eq(k.n, 3);
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), 0);
	t_expect(stub, SW_EV_KILL, &ev);
	assert_all_gone(&k);
	sw_stub_free(stub);
	sw_loop_free(loop);
}

static void escape_default(intptr_t mode)
{
	struct sw_loop *loop = t_loop();
	struct sw_stub *stub = t_spawn_echo(loop, mode);
	struct pollfd p;
	siginfo_t si;
	long sib;
	int fd;

	sib = make_kin(stub, T_KIN_SIBLING, 1);
	t_assert(sib > 0);
	fd = (int)syscall(SYS_pidfd_open, (pid_t)sib, 0);
	t_assert(fd >= 0);
	t_assert_rc(sw_stub_kill(stub, SW_KILL_USER), 0);
	t_expect(stub, SW_EV_KILL, NULL);
	sw_stub_free(stub);
	sw_loop_free(loop);
	/* the sibling lives on, a child of this process; one of an fn-mode
	 * stub has the stub's exit_signal, 0, and only __WALL sees it (an
	 * exec'd stub's is SIGCHLD again) */
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	t_assert_rc(poll(&p, 1, 0), 0);
	memset(&si, 0, sizeof(si));
	t_assert(waitid(P_PID, (id_t)sib, &si,
			WEXITED | WNOHANG | WNOWAIT | __WALL) == 0);
	t_assert_eq(si.si_pid, 0); /* a child, alive */
	if (T_PMODE(mode) == T_FN)
		t_assert(waitid(P_PID, (id_t)sib, &si,
				WEXITED | WNOHANG | WNOWAIT) < 0 &&
			 errno == ECHILD);
	t_note("without SW_SPAWN_PIDNS a CLONE_PARENT sibling (%ld) outlives "
	       "the stub, as documented", sib);
	t_assert(syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) == 0);
	t_assert(waitid(P_PIDFD, (id_t)fd, &si, WEXITED | __WALL) == 0);
	close(fd);
}

#define BOTH(name, t)                                   \
	{ #name "/fn", name, T_FN, t },                 \
	{ #name "/exec", name, T_EXEC, t }

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		BOTH(kill_fork, 0),
		BOTH(stall_daemon, 0),
		BOTH(exit_fork, 0),
		BOTH(sibling, 0),
		BOTH(self_signal, 0),
		{ "unprivileged/fn", unprivileged, T_FN, 0 },
		BOTH(escape_default, 0),
	};

	return t_main(argc, argv, cases, T_NCASES(cases));
}
