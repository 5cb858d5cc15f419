/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What both test harnesses (test/t_util.h and test/ev/t_ev.h) use, inline
 * so that neither links the other.
 */
#ifndef T_COMMON_H
#define T_COMMON_H

#include <stdint.h>
#include <time.h>

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

#endif
