/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What both test harnesses (test/t_util.h and test/ev/t_ev.h) use, inline
 * so that neither links the other.
 */
#ifndef T_COMMON_H
#define T_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_PROCESS_CPUTIME_ID: what every thread of this process ran. */
static inline uint64_t t_process_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A fixed-seed xorshift, per program: the same sequence every run. */
static inline uint32_t t_rng(void)
{
	static uint64_t state = 0x9e3779b97f4a7c15ull;

	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (uint32_t)(state >> 16);
}

/*
 * A case that takes a CPU from every other process (t_busy's SCHED_FIFO
 * hog) would starve the cases that `make -j2 check` runs beside it, which
 * would then have to call their own runs inconclusive.  So every case runs
 * under one lock the suite shares, $T_CPU_LOCK (make check sets it): shared
 * for an ordinary case, exclusive for one that hogs a CPU.  A second lock,
 * held only on the way in, lets no stream of shared takers overtake a
 * waiting exclusive one.  The harness takes it before it forks the case and
 * drops it once the case is reaped; the case closes its copy at once, so no
 * process a case leaves behind can hold it.  Without T_CPU_LOCK (a program
 * run by hand) nothing is locked.  Returns the fd to hand to
 * t_cpu_unlock(), or -1.
 */
static inline int t_cpu_lock(int exclusive)
{
	const char *path = getenv("T_CPU_LOCK");
	char gate[4096];
	int fd, g;

	if (!path || !*path)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	snprintf(gate, sizeof(gate), "%s.gate", path);
	g = open(gate, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	while (g >= 0 && flock(g, LOCK_EX) < 0 && errno == EINTR)
		;
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0 && errno == EINTR)
		;
	if (g >= 0)
		close(g);
	return fd;
}

static inline void t_cpu_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

#endif
