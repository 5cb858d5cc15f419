/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one clock of the library: CLOCK_MONOTONIC in ns, read through the
 * vDSO (no system call), so the hot path may read it. */
#ifndef SW_CLOCK_H
#define SW_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t sw__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
