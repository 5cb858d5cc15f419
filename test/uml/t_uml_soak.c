// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The soak (`make check-soak`, not `make check`): the reference settings,
 * T = 1 s and N = 5, for 60 s on two vCPU loops with churn, CPU-bound and
 * mixed stubs, and one hijacker of each kind going rogue on the way (h1 at
 * 5 s, h2 at 20 s, h3 at 35 s).  Zero false kills; each hijacker killed
 * after 5..6 s of silence with SIGALRM blocked; every well-behaved stub
 * making handshakes in every second, through the kills.
 */
#include "t_uml.h"

static int t_soak_60s(void)
{
	static const struct t_load L = {
		.name = "soak", .vcpus = 2, .stubs_per_vcpu = 3,
		.tick_ns = 1000000000ull, .stall_ticks = 5,
		.preempt_ns = 10000000ull, .seconds = 60,
		.nhijacks = 3,
		.hijack = { { SWU_HIJACK_SPIN, 5 }, { SWU_HIJACK_SLEEP, 20 },
			    { SWU_HIJACK_FLOOD, 35 } },
	};

	return t_load_run(&L);
}

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{ "soak_2vcpu_60s_T1s_N5", t_soak_60s, 120 },
	};

	return t_run(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
