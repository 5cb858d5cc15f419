/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What /proc says, as the phases need it: a thread's run-queue wait and run
 * time, a CPU's steal time, memory and fd counts, and whether the machine
 * has room for thousands more stub processes and their fds (raising
 * RLIMIT_NOFILE when it can).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "phase.h"

long read_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* kB value of `key` in a /proc "Key:   123 kB" file. */
long proc_kb(const char *path, const char *key)
{
	FILE *f = fopen(path, "re");
	char line[256];
	size_t len = strlen(key);
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, len) == 0 && line[len] == ':') {
			v = atol(line + len + 1);
			break;
		}
	}
	fclose(f);
	return v;
}

/* ns this thread has waited on a run queue (schedstat's run_delay). */
uint64_t thread_wait_ns(void)
{
	FILE *f = fopen("/proc/thread-self/schedstat", "re");
	unsigned long long run = 0, wait = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return wait;
}

/* ns this thread has run on a CPU (schedstat's first field). */
uint64_t thread_run_ns(void)
{
	FILE *f = fopen("/proc/thread-self/schedstat", "re");
	unsigned long long run = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &run) != 1)
		run = 0;
	fclose(f);
	return run;
}

/* ns of CPU `cpu` stolen by the hypervisor (/proc/stat's steal column). */
uint64_t cpu_steal_ns(int cpu)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[512], want[32];
	unsigned long long v[8] = { 0 };
	uint64_t r = 0;
	long hz = sysconf(_SC_CLK_TCK);

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "cpu%d ", cpu);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, want, strlen(want)) == 0) {
			if (sscanf(line + strlen(want),
				   "%llu %llu %llu %llu %llu %llu %llu %llu",
				   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
				   &v[6], &v[7]) == 8 && hz > 0)
				r = v[7] * (1000000000ull / (uint64_t)hz);
			break;
		}
	}
	fclose(f);
	return r;
}

long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static long tasks_total(void)
{
	FILE *f = fopen("/proc/loadavg", "re");
	long run, total = -1;
	double a, b, c;

	if (!f)
		return -1;
	if (fscanf(f, "%lf %lf %lf %ld/%ld", &a, &b, &c, &run, &total) != 5)
		total = -1;
	fclose(f);
	return total;
}

/* pids.max - pids.current of our pids cgroup (v1 or v2), or LONG_MAX. */
static long pids_cgroup_room(void)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[512], path[768], *p;
	long room = __LONG_MAX__;

	if (!f)
		return room;
	while (fgets(line, sizeof(line), f)) {
		const char *base = NULL;

		line[strcspn(line, "\n")] = 0;
		if (strstr(line, ":pids:"))
			base = "/sys/fs/cgroup/pids";
		else if (strncmp(line, "0::", 3) == 0)
			base = "/sys/fs/cgroup/unified";
		if (!base || !(p = strrchr(line, ':')))
			continue;
		snprintf(path, sizeof(path), "%s%s/pids.max", base, p + 1);
		long max = read_long(path);
		snprintf(path, sizeof(path), "%s%s/pids.current", base, p + 1);
		long cur = read_long(path);
		if (max > 0 && cur >= 0 && max - cur < room)
			room = max - cur;
	}
	fclose(f);
	return room;
}

/* Make room for `fds` more descriptors. */
static int raise_nofile(long fds)
{
	struct rlimit rl;
	long want = count_fds() + fds + 64, nr_open;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if ((long)rl.rlim_cur >= want)
		return 0;
	if ((long)rl.rlim_max < want) {
		nr_open = read_long("/proc/sys/fs/nr_open");
		if (nr_open > 0 && want > nr_open)
			return -EMFILE;
		rl.rlim_max = (rlim_t)want; /* root: CAP_SYS_RESOURCE */
	}
	rl.rlim_cur = (rlim_t)want;
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

/* Can this machine hold `stubs` more processes and their fds?  NULL: yes. */
const char *scale_room(long stubs, char *why, size_t len)
{
	long pid_max = read_long("/proc/sys/kernel/pid_max");
	long threads_max = read_long("/proc/sys/kernel/threads-max");
	long watches = read_long("/proc/sys/fs/epoll/max_user_watches");
	long total = tasks_total(), avail, room;
	int r;

	if (pid_max > 0 && total >= 0 && total + stubs + 256 > pid_max) {
		snprintf(why, len,
			 "kernel.pid_max %ld too small for %ld more tasks "
			 "(%ld running); sysctl kernel.pid_max=4194304",
			 pid_max, stubs, total);
		return why;
	}
	if (threads_max > 0 && total >= 0 && total + stubs + 256 > threads_max) {
		snprintf(why, len, "kernel.threads-max %ld too small",
			 threads_max);
		return why;
	}
	room = pids_cgroup_room();
	if (room < stubs + 64) {
		snprintf(why, len, "the pids cgroup allows only %ld more tasks",
			 room);
		return why;
	}
	if (watches > 0 && watches < 2 * stubs + 64) {
		snprintf(why, len, "fs.epoll.max_user_watches %ld too small",
			 watches);
		return why;
	}
	avail = proc_kb("/proc/meminfo", "MemAvailable");
	if (avail > 0 && avail < stubs * 256 + 512 * 1024) {
		snprintf(why, len, "only %ld MiB available", avail / 1024);
		return why;
	}
	r = raise_nofile(2 * stubs);
	if (r < 0) {
		snprintf(why, len, "cannot raise RLIMIT_NOFILE for %ld fds: %s",
			 2 * stubs, strerror(-r));
		return why;
	}
	return NULL;
}
