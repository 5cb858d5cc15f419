// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Kill diagnostics, read from /proc only at kill time, just before SIGKILL:
 * the stub's state letter, its blocked-signal mask (is SIGALRM blocked?) and
 * its CPU time; and its scheduling during the stall, against a baseline the
 * loop takes once a stub has been silent for a whole tick.  All of them are
 * the whole thread group's: a stub whose main thread has exited (a zombie
 * leader) while another thread spins is running, not dead.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((size_t)total < size - 1) {
		n = read(fd, buf + total, size - 1 - (size_t)total);
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

/* How awake a thread in this state is; a group is as awake as its most
 * awake thread. */
static int awake_rank(char c)
{
	switch (c) {
	case 'R':
		return 6;
	case 'D':
		return 5;
	case 'S':
		return 4;
	case 'T':
	case 't':
		return 3;
	case 'Z':
		return 1;
	case 'X':
		return 0;
	}
	return 2;
}

/* fn(dir) for each thread of pid, dir being /proc/PID/task/TID (or, if
 * the task directory cannot be read, /proc/PID alone).  Returns how many
 * calls returned 0. */
static int for_each_thread(pid_t pid, int (*fn)(const char *dir, void *arg),
			   void *arg)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d) {
		snprintf(path, sizeof(path), "/proc/%d", (int)pid);
		return fn(path, arg) == 0;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s", (int)pid,
			 e->d_name);
		n += fn(path, arg) == 0;
	}
	closedir(d);
	return n;
}

struct status_acc {
	char state;
	bool any_live;
	uint64_t live_blk; /* the signals every live thread blocks */
	uint64_t any_blk;  /* the first thread's mask, if none is live */
	bool any;
};

static int status_one(const char *dir, void *arg)
{
	struct status_acc *a = arg;
	char path[80], buf[4096], *p, state = '?';
	uint64_t blk = 0;
	bool has_blk = false;

	snprintf(path, sizeof(path), "%s/status", dir);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	p = strstr(buf, "\nState:");
	if (p) {
		p += strlen("\nState:");
		p += strspn(p, " \t");
		if (*p)
			state = *p;
	}
	p = strstr(buf, "\nSigBlk:");
	if (p) {
		blk = strtoull(p + strlen("\nSigBlk:"), NULL, 16);
		has_blk = true;
	}
	if (state != '?' &&
	    (a->state == '?' || awake_rank(state) > awake_rank(a->state)))
		a->state = state;
	if (!has_blk)
		return 0;
	if (state != 'Z' && state != 'X') {
		a->live_blk = a->any_live ? a->live_blk & blk : blk;
		a->any_live = true;
	}
	if (!a->any)
		a->any_blk = blk;
	a->any = true;
	return 0;
}

/* The group's state (its most awake thread's) and the signals it blocks
 * (those every live thread blocks: a process-directed signal goes to any
 * thread that does not). */
static void read_status(pid_t pid, struct sw_kill_info *k)
{
	struct status_acc a = { .state = '?' };

	for_each_thread(pid, status_one, &a);
	k->state = a.state;
	if (a.any) {
		k->sigblk = a.any_live ? a.live_blk : a.any_blk;
		k->sigalrm_blocked = !!(k->sigblk & (1ull << (SIGALRM - 1)));
	}
}

static void read_cpu(pid_t pid, struct sw_kill_info *k)
{
	char path[64], buf[1024], *p;
	unsigned long long utime, stime;
	long hz = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0 || hz <= 0)
		return;
	/* After the command name, whose parentheses may nest: field 3 on. */
	p = strrchr(buf, ')');
	if (!p)
		return;
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &utime, &stime) != 2)
		return;
	k->cpu_ns = (utime + stime) * (1000000000ull / (unsigned long long)hz);
}

/* PF_EXITING of /proc/PID/stat's flags (field 9): the task is in do_exit(). */
#define SW_PF_EXITING 0x4u

/* /proc/PID/stat's exit_code (field 52) of a zombie (zombie) or of a task
 * in its exit, past the point where the kernel sets it (!zombie: the exit
 * runs on; the code is already the one a wait will give). */
static int stat_exit(pid_t pid, bool zombie, int *ret_code, int *ret_threads)
{
	char path[64], buf[1024], *p;
	char state;
	unsigned flags;
	int field, code, threads = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %u", &state,
			 &flags) != 2)
		return -1;
	if (zombie ? state != 'Z' && state != 'X' : !(flags & SW_PF_EXITING))
		return -1; /* not a zombie, or not exiting: not its exit */
	/* Field 20, num_threads, and 52, exit_code: after the name, field 3
	 * is the state. */
	for (field = 2; field < 52 && p; field++) {
		p = strchr(p + 1, ' ');
		if (field == 19 && p && sscanf(p, " %d", &threads) != 1)
			return -1;
	}
	if (!p || sscanf(p, " %d", &code) != 1)
		return -1;
	*ret_code = code;
	if (ret_threads)
		*ret_threads = threads;
	return 0;
}

int sw__stat_exit(pid_t pid, int *ret_code)
{
	return stat_exit(pid, true, ret_code, NULL);
}

int sw__stat_exiting(pid_t pid, int *ret_code, int *ret_threads)
{
	return stat_exit(pid, false, ret_code, ret_threads);
}

/* for_each_thread(): counts the threads that are not zombies */
static int live_one(const char *dir, void *arg)
{
	char path[80], buf[512], *p;

	(void)arg;
	snprintf(path, sizeof(path), "%s/stat", dir);
	if (read_file(path, buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')))
		return -1; /* gone */
	return p[2] == 'Z' || p[2] == 'X' ? -1 : 0;
}

bool sw__all_zombies(pid_t pid)
{
	return for_each_thread(pid, live_one, NULL) == 0;
}

int sw__kill_queued(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long mask;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0 ||
	    !(p = strstr(buf, "\nShdPnd:")) ||
	    sscanf(p + 8, " %llx", &mask) != 1)
		return -1;
	return !!(mask & (1ull << (SIGKILL - 1)));
}

int sw__exit_call(pid_t pid)
{
	char path[64], buf[256];
	unsigned long long arg;
	long nr;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "%ld %llx", &nr, &arg) != 2 ||
	    (nr != SYS_exit_group && nr != SYS_exit))
		return -1; /* running, not in a call, or in another one */
	return (int)((arg & 0xff) << 8);
}

static int sched_one(const char *dir, void *arg)
{
	struct sw_sched *out = arg;
	char path[80], buf[256], *p, state;
	unsigned long long run, wait, slices;

	/* The state first: a change of the figures read after it is seen. */
	snprintf(path, sizeof(path), "%s/stat", dir);
	if (read_file(path, buf, sizeof(buf)) <= 0 ||
	    !(p = strrchr(buf, ')')) || sscanf(p + 1, " %c", &state) != 1)
		return -1;
	snprintf(path, sizeof(path), "%s/schedstat", dir);
	if (read_file(path, buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "%llu %llu %llu", &run, &wait, &slices) != 3)
		return -1;
	out->run_ns += run;
	out->wait_ns += wait;
	out->slices += slices;
	if (out->state == '?' || awake_rank(state) > awake_rank(out->state))
		out->state = state;
	return 0;
}

/* The group's run time, run-queue wait and slices (the sums over its
 * threads now: a thread that exits takes its figures along, and the sums
 * then go back, which the loop's looks take as "unknown"), and the state of
 * its most awake thread. */
int sw__sched_read(pid_t pid, struct sw_sched *out)
{
	memset(out, 0, sizeof(*out));
	out->state = '?';
	return for_each_thread(pid, sched_one, out) > 0 ? 0 : -1;
}

void sw__diag_read(pid_t pid, struct sw_kill_info *k)
{
	k->state = '?';
	k->sigalrm_blocked = -1;
	read_status(pid, k);
	read_cpu(pid, k);
}
