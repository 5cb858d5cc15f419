// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The attack: a stub's user code calls rt_sigreturn on a crafted frame whose
 * uc_sigmask blocks SIGALRM, then spins (h1), sleeps in FUTEX_WAIT (h2) or
 * floods its eventfd (h3).  It never reports again.  Each case runs a
 * machine of one or two vCPU loops (threads) with three well-behaved stubs
 * per vCPU and one hijacker, T = 200 ms, N = 5, a 10 ms preemption tick,
 * once per driver (sw_stub_wait, and sw_loop_dispatch with callbacks; the
 * libev driver, the same callbacks run from a libev loop, with the flood
 * only: its eventfd writes fire the ev_io over and over during the stall),
 * and checks that:
 *   - the watchdog kills the hijacker, and nothing else, for a stall;
 *   - N*T to (N+1)*T after its last resume, late only by what the loop
 *     reports with the kill: its own lateness and the stub's starvation
 *     credit (t_check_stall_kill());
 *   - the kill diagnostics see SIGALRM blocked (and only SIGALRM);
 *   - with two vCPUs every other stub made handshakes during the stall;
 *   - every other stub makes handshakes after the kill.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "t_uml.h"

#define TICK_NS     200000000ull
#define STALL_TICKS 5u
#define PREEMPT_NS  10000000ull
#define SPV         3u
#define HIJACK_MS   300u

struct ctx {
	struct t_events ev; /* first: t_events_cb's userdata */
	unsigned vcpus;
	enum swu_hijack hijack;
};

static void plan(unsigned vcpu, unsigned idx, struct swu_prog *p, void *ud)
{
	static const enum swu_prog_kind mix[] = { SWU_PROG_CHURN, SWU_PROG_CPU,
						  SWU_PROG_MIXED };
	const struct ctx *c = ud;

	(void)vcpu;
	memset(p, 0, sizeof(*p));
	if (idx >= c->vcpus * SPV) {
		p->kind = SWU_PROG_CHURN;
		p->hijack = c->hijack;
		p->hijack_after_ns = HIJACK_MS * 1000000ull;
		return;
	}
	p->kind = mix[idx % 3];
}

/* Alive well-behaved stubs with no handshake since `base` (left as it
 * is, unlike t_stalled_stubs()). */
static unsigned still_silent(struct swu_machine *m, const uint64_t *base)
{
	unsigned silent = 0;

	for (unsigned i = 0; i < swu_machine_nstubs(m); i++) {
		struct swu_stub_stats ss;

		if (swu_machine_stub_stats(m, i, &ss) < 0 || !ss.alive ||
		    ss.prog.hijack != SWU_HIJACK_NONE)
			continue;
		if (ss.handshakes == base[i])
			silent++;
	}
	return silent;
}

static int run(enum swu_hijack h, unsigned vcpus, const char *driver)
{
	struct ctx c = { .vcpus = vcpus, .hijack = h };
	struct swu_machine_opts o = {
		.vcpus = vcpus, .stubs_per_vcpu = SPV, .extra_stubs = 1,
		.tick_ns = TICK_NS, .stall_ticks = STALL_TICKS,
		.preempt_ns = PREEMPT_NS, .driver = driver, .plan = plan,
		.on_event = t_events_cb, .userdata = &c,
	};
	const uint64_t blk_alrm = 1ull << (SIGALRM - 1);
	struct t_sampler *smp = NULL;
	uint64_t prev[SPV * 2 + 1] = { 0 }, quanta0, t0;
	struct swu_vcpu_stats vs;
	struct swu_machine *m;
	struct swu_mevent k;
	unsigned stalled;
	int r;

	r = swu_driver_check(driver);
	if (r == -EOPNOTSUPP) {
		t_info("SKIP: driver %s: not in this build (no libev)", driver);
		return T_SKIP;
	}
	t_events_init(&c.ev);
	r = swu_machine_new(&o, &m);
	T_CHECK(r == 0, "machine_new: %s", strerror(-r));
	r = t_machine_start(m, swu_hijack_name(h), PREEMPT_NS);
	if (r != T_PASS)
		return r;
	r = t_sampler_start(m, &smp);
	T_CHECK(r == 0, "sampler: %s", strerror(-r));

	/* Until the kill: when it came is checked below, against the kill's
	 * own figures; one that never comes is the case's timeout. */
	t0 = swu_now_ns();
	while (!t_events_kills(&c.ev))
		t_sleep_ms(10);
	T_CHECK(t_events_kill(&c.ev, 0, &k), "no kill event");
	t_info("the kill event %.3f s after the start",
	       (swu_now_ns() - t0) / 1e9);

	/* After the kill: every other stub and the killing vCPU go on, each
	 * as soon as the host lets it (a vCPU that stopped scheduling, or a
	 * stub that never answers again, is the case's timeout). */
	t_stalled_stubs(m, prev);
	swu_machine_vcpu_stats(m, k.vcpu, &vs);
	quanta0 = vs.quanta;
	do {
		t_sleep_ms(10);
		stalled = still_silent(m, prev);
		swu_machine_vcpu_stats(m, k.vcpu, &vs);
	} while (stalled || vs.quanta == quanta0);
	r = swu_machine_stop(m);
	T_CHECK(r == 0, "a vCPU failed: %s", strerror(-r));

	t_info("%s, %u vCPU(s), %s: pid %d killed by vcpu%u, %.3f s after its "
	       "last report (%.3f s of silence; the watchdog saw %.3f s), "
	       "SigBlk %016llx, state %c; %u/%u others ran during the stall",
	       swu_hijack_name(h), vcpus, driver, (int)k.pid, k.vcpu,
	       k.detect_ns / 1e9, k.silence_ns / 1e9, k.kill.silent_ns / 1e9,
	       (unsigned long long)k.kill.sigblk, k.kill.state,
	       k.others_progressed, k.others_alive);

	if (k.stub != vcpus * SPV) {
		/* a well-behaved stub first: the host starved it, or a fault */
		char name[64];

		snprintf(name, sizeof(name), "%s, %u vCPU(s), %s",
			 swu_hijack_name(h), vcpus, driver);
		T_CHECK(t_judge_false_kill(smp, name, &k, PREEMPT_NS) ==
				T_PASS,
			"killed stub %u, not the hijacker", k.stub);
		t_sampler_stop(smp);
		swu_machine_free(m);
		t_events_fini(&c.ev);
		t_info("SKIP: inconclusive: the host starved a stub the test "
		       "needs to run (see above)");
		return T_SKIP;
	}
	T_CHECK(!k.false_kill, "counted as a false kill");
	if (t_check_stall_kill(&k, TICK_NS, STALL_TICKS, PREEMPT_NS) != T_PASS)
		return T_FAIL;
	T_CHECK(k.kill.sigblk == blk_alrm, "SigBlk %016llx, crafted %016llx",
		(unsigned long long)k.kill.sigblk,
		(unsigned long long)blk_alrm);
	if (h == SWU_HIJACK_SLEEP)
		T_CHECK(k.kill.state == 'S', "state %c", k.kill.state);
	else
		T_CHECK(k.kill.state == 'R', "state %c", k.kill.state);
	T_CHECK(k.detect_ns >= k.silence_ns, "detect %llu < silence %llu",
		(unsigned long long)k.detect_ns,
		(unsigned long long)k.silence_ns);
	if (vcpus > 1)
		T_CHECK(k.others_progressed == k.others_alive,
			"%u/%u other stubs ran during the stall",
			k.others_progressed, k.others_alive);
	T_CHECK(k.others_alive == vcpus * SPV, "%u others alive",
		k.others_alive);
	T_CHECK(stalled == 0, "%u stubs made no handshake after the kill",
		stalled);
	T_CHECK(vs.quanta > quanta0, "vcpu%u stopped scheduling", k.vcpu);
	T_CHECK(c.ev.kills == 1 && c.ev.exits == 0,
		"%u kills, %u exits", c.ev.kills, c.ev.exits);

	t_sampler_stop(smp);
	swu_machine_free(m);
	t_events_fini(&c.ev);
	return T_PASS;
}

#define CASE(name, h, v, drv)                  \
	static int t_##name(void)              \
	{                                      \
		return run(h, v, drv);         \
	}
CASE(h1_spin_1vcpu, SWU_HIJACK_SPIN, 1, "blocking")
CASE(h1_spin_2vcpu, SWU_HIJACK_SPIN, 2, "blocking")
CASE(h2_sleep_1vcpu, SWU_HIJACK_SLEEP, 1, "blocking")
CASE(h2_sleep_2vcpu, SWU_HIJACK_SLEEP, 2, "blocking")
CASE(h3_flood_1vcpu, SWU_HIJACK_FLOOD, 1, "blocking")
CASE(h3_flood_2vcpu, SWU_HIJACK_FLOOD, 2, "blocking")
CASE(h1_spin_1vcpu_dispatch, SWU_HIJACK_SPIN, 1, "dispatch")
CASE(h1_spin_2vcpu_dispatch, SWU_HIJACK_SPIN, 2, "dispatch")
CASE(h2_sleep_1vcpu_dispatch, SWU_HIJACK_SLEEP, 1, "dispatch")
CASE(h2_sleep_2vcpu_dispatch, SWU_HIJACK_SLEEP, 2, "dispatch")
CASE(h3_flood_1vcpu_dispatch, SWU_HIJACK_FLOOD, 1, "dispatch")
CASE(h3_flood_2vcpu_dispatch, SWU_HIJACK_FLOOD, 2, "dispatch")
CASE(h3_flood_2vcpu_libev, SWU_HIJACK_FLOOD, 2, "libev")

#define ENTRY(name) { #name, t_##name, 20 }

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		ENTRY(h1_spin_1vcpu),
		ENTRY(h1_spin_2vcpu),
		ENTRY(h2_sleep_1vcpu),
		ENTRY(h2_sleep_2vcpu),
		ENTRY(h3_flood_1vcpu),
		ENTRY(h3_flood_2vcpu),
		ENTRY(h1_spin_1vcpu_dispatch),
		ENTRY(h1_spin_2vcpu_dispatch),
		ENTRY(h2_sleep_1vcpu_dispatch),
		ENTRY(h2_sleep_2vcpu_dispatch),
		ENTRY(h3_flood_1vcpu_dispatch),
		ENTRY(h3_flood_2vcpu_dispatch),
		ENTRY(h3_flood_2vcpu_libev),
	};

	return t_run(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
