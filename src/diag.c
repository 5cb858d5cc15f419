// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Kill diagnostics, read from /proc only at kill time, just before SIGKILL:
 * the stub's state letter, its blocked-signal mask (is SIGALRM blocked?) and
 * its CPU time; and its scheduling during the stall, against a baseline the
 * loop takes once a stub has been silent for a whole tick.
 */
#include <fcntl.h>
#include <signal.h>
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

static void read_status(pid_t pid, struct sw_kill_info *k)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return;
	p = strstr(buf, "\nState:");
	if (p) {
		p += strlen("\nState:");
		p += strspn(p, " \t");
		if (*p)
			k->state = *p;
	}
	p = strstr(buf, "\nSigBlk:");
	if (p) {
		k->sigblk = strtoull(p + strlen("\nSigBlk:"), NULL, 16);
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

int sw__stat_exit(pid_t pid, int *ret_code)
{
	char path[64], buf[1024], *p;
	char state;
	int field, code;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c", &state) != 1 ||
	    (state != 'Z' && state != 'X'))
		return -1; /* not a zombie: not its exit */
	/* Field 52, exit_code: after the name, field 3 is the state. */
	for (field = 2; field < 52 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %d", &code) != 1)
		return -1;
	*ret_code = code;
	return 0;
}

int sw__sched_read(pid_t pid, struct sw_sched *out)
{
	char path[64], buf[256], *p;
	unsigned long long run, wait, slices;

	/* The state first: a change of the figures read after it is seen. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0 ||
	    !(p = strrchr(buf, ')')) || sscanf(p + 1, " %c", &out->state) != 1)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "%llu %llu %llu", &run, &wait, &slices) != 3)
		return -1;
	out->run_ns = run;
	out->wait_ns = wait;
	out->slices = slices;
	return 0;
}

void sw__diag_read(pid_t pid, struct sw_kill_info *k)
{
	k->state = '?';
	k->sigalrm_blocked = -1;
	read_status(pid, k);
	read_cpu(pid, k);
}
