// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Zero false kills, the way the reference patch was verified: heavy
 * mmap/munmap churn and CPU-bound loops on every vCPU, UP and 2-vCPU SMP,
 * with short ticks (T = 50 ms, N = 5: a stub silent for 250 ms would be
 * killed) and a 10 ms preemption tick on the same timer; once per driver
 * (sw_stub_wait, and sw_loop_dispatch with callbacks), and for the libev
 * driver (the same callbacks run from a libev loop) one short SMP run, to
 * keep the suite short.  Any kill fails.
 */
#include "t_uml.h"

#define LOAD(nm, drv, v, secs)                                             \
	static int t_##nm(void)                                            \
	{                                                                  \
		static const struct t_load L = {                           \
			.name = #nm, .driver = drv, .vcpus = v,            \
			.stubs_per_vcpu = 6, .tick_ns = 50000000ull,       \
			.stall_ticks = 5, .preempt_ns = 10000000ull,       \
			.seconds = secs,                                   \
		};                                                         \
		return t_load_run(&L);                                     \
	}

LOAD(smp_2vcpu_20s, "blocking", 2, 20)
LOAD(smp_2vcpu_20s_dispatch, "dispatch", 2, 20)
LOAD(up_1vcpu_10s, "blocking", 1, 10)
LOAD(up_1vcpu_10s_dispatch, "dispatch", 1, 10)
LOAD(smp_2vcpu_5s_libev, "libev", 2, 5)

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{ "smp_2vcpu_20s", t_smp_2vcpu_20s, 60 },
		{ "smp_2vcpu_20s_dispatch", t_smp_2vcpu_20s_dispatch, 60 },
		{ "up_1vcpu_10s", t_up_1vcpu_10s, 40 },
		{ "up_1vcpu_10s_dispatch", t_up_1vcpu_10s_dispatch, 40 },
		{ "smp_2vcpu_5s_libev", t_smp_2vcpu_5s_libev, 20 },
	};

	return t_run(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
