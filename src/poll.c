// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Adaptive polling (SW_LOOP_ADAPTIVE_POLL).  A cross-CPU round trip costs a
 * sleep and an inter-processor wake-up, not system calls; a short spin on
 * the state word before epoll_wait saves both.  The budget adapts per stub,
 * as KVM's halt_poll_ns does, and is never spent when the stub last reported
 * from the monitor's CPU: there the spin would only keep it from running.
 */
#include <sched.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h> /* RUNNING_ON_VALGRIND: no-op code natively */
#define SW_HAVE_VALGRIND_H 1
#endif
#endif

#include "internal.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* Can stubs say which CPU they reported from (sw__cpu())?  Only if it
 * agrees with the kernel here, twice in three tries (a migration between
 * the two reads may spoil one).  Stubs built before SW_MON_CPU_SEG read it
 * with RDTSCP, asked only where CPUID says the CPU has it: elsewhere the
 * instruction may fault, or run and return the host's number. */
void sw__poll_init(struct sw_loop *loop)
{
	int agree = 0;

#ifdef SW_HAVE_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		return; /* it does not know LSL: no cross-CPU spin there */
#endif

	for (int i = 0; i < 3; i++) {
		int cpu = sched_getcpu();

		agree += cpu >= 0 && sw__cpu() == (cpu & 0xfff);
	}
	loop->cpu_hint = agree >= 2;
#if defined(__x86_64__)
	{
		unsigned a, b, c, d;

		/* CPUID 0x80000001 EDX bit 27: RDTSCP */
		loop->rdtscp = loop->cpu_hint &&
			       __get_cpuid(0x80000001, &a, &b, &c, &d) &&
			       (d & (1u << 27));
	}
#endif
}

static uint32_t budget_start(const struct sw_loop *loop)
{
	uint32_t start = loop->poll_max_ns / 16;

	return start < 1000 ? 1000 : start;
}

/* At resume: spin in the wait that follows?  Only across CPUs, only with a
 * budget, only when that wait follows at once (quiet).  Returns the bits of
 * sw_page.monitor that polling needs. */
uint32_t sw__poll_decide(struct sw_loop *loop, struct sw_stub *s, bool quiet)
{
	int32_t cpu = __atomic_load_n(&s->page->stub_cpu, __ATOMIC_RELAXED);
	bool cross;

	if (!loop->cpu_hint)
		return 0;
	cross = quiet && cpu >= 0 && cpu != (sched_getcpu() & 0xfff);
	s->poll_measure = cross;
	s->poll_now = cross && s->poll_ns > 0;
	/* The stub may spin for its next resume too, on its own window
	 * (sw_stub_wait_resume()), when the wait that follows is ours and it
	 * reported from another CPU: never beside the monitor on one CPU. */
	return SW_MON_CPU_SEG | (loop->rdtscp ? SW_MON_WANT_CPU : 0) |
	       (cross ? SW_MON_STUB_SPIN : 0);
}

/* Spin on the state word until it leaves IN_CHILD or the budget is spent.
 * Returns true if it left IN_CHILD. */
bool sw__poll_spin(struct sw_stub *s, uint64_t t0)
{
	uint32_t *state = &s->page->state;
	unsigned i;

	for (i = 1;; i++) {
		if (__atomic_load_n(state, __ATOMIC_ACQUIRE) != SW_STATE_IN_CHILD)
			return true;
		cpu_relax();
		if (!(i & 31) && sw__now_ns() - t0 >= s->poll_ns)
			return false;
	}
}

/* After a cross-CPU wait that ended in a report: grow the budget if the
 * report came soon after the spin gave up, shrink it if the stub took long. */
void sw__poll_adapt(struct sw_loop *loop, struct sw_stub *s, bool hit,
		    uint64_t t0)
{
	uint64_t took;

	if (hit)
		return;
	took = sw__now_ns() - t0;
	if (took <= loop->poll_max_ns) {
		uint32_t grown = s->poll_ns ? s->poll_ns * 2 : budget_start(loop);

		s->poll_ns = grown < loop->poll_max_ns ? grown
						       : loop->poll_max_ns;
	} else {
		s->poll_ns /= 2;
		if (s->poll_ns < budget_start(loop))
			s->poll_ns = 0;
	}
}
