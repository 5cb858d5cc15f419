/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* swuml internals shared by stub.c (the child), monitor.c, vcpu.c,
 * drivers.c and machine.c.  A file calls only into the files listed before
 * it; machine.h holds the machine's objects, for vcpu.c and machine.c. */
#ifndef SWU_PRIV_H
#define SWU_PRIV_H

#include "uml.h"

#define SWU_NR_LIMIT 1024 /* system call numbers the model accepts */

/* The monitor's fake address space for served mmap: a bump allocator over
 * [SWU_FAKE_BASE, SWU_FAKE_TOP), with a one-page gap between mappings. */
#define SWU_FAKE_BASE 0x7e0000000000ull
#define SWU_FAKE_TOP  0x7f0000000000ull
#define SWU_VMA_MAX   64
#define SWU_MMAP_MAX  (1ull << 30)

struct swu_vma {
	uint64_t addr, len;
};

struct swu_stub {
	struct sw_stub *sw;
	struct sw_page *page;
	pid_t pid;
	struct swu_prog prog;
	uint32_t seq;        /* last valid report's sequence number */
	uint64_t reports;
	uint64_t next_addr;
	unsigned nvma;
	struct swu_vma vma[SWU_VMA_MAX];
};

/* stub.c: the stub's entry point (sw_spawn_opts.fn); arg is a
 * const struct swu_prog *.  Runs in the raw clone3 child. */
int swu__stub_main(struct sw_page *page, void *arg);

/* monitor.c: swu_stub_spawn(), and when the stub is stall-killed before its
 * hello (-ETIMEDOUT) the kill's figures in *why (if why is not NULL). */
int swu__stub_spawn(struct sw_loop *loop, const struct swu_prog *prog,
		    unsigned spawn_flags, struct swu_stub **ret_stub,
		    struct sw_kill_info *why);

/* ---- vcpu.c: the interface of a vCPU driver ------------------------------
 *
 * A driver decides how a vCPU thread waits; the machine decides what it
 * does.  run(v) loops until swu__vcpu_pick() returns NULL (stopping):
 *
 *   ms = swu__vcpu_pick(v)               the next stub, attached to
 *                                        swu__vcpu_loop(v); may block
 *   swu__vcpu_quantum_begin(v, ms)
 *   repeat:
 *     sw_stub_resume(swu__mstub_sw(ms))  unless the last step said
 *     swu__vcpu_resumed(v, ms)           SWU_NEXT_WAIT
 *     wait, by any means (sw_stub_wait, or sw_loop_dispatch from a host
 *     loop with callbacks); on each timer read (SW_EV_TICK or the loop's
 *     tick callback) call swu__vcpu_tick(v, ms, in_flight), in_flight
 *     false if the stub's completion has already come
 *     next = swu__vcpu_event(v, ms, &ev) on the completion
 *   until next is SWU_NEXT_SWITCH: swu__vcpu_quantum_end(v),
 *                                  swu__vcpu_release(v, ms)
 *          or SWU_NEXT_GONE:       swu__vcpu_quantum_end(v) (ms is freed)
 *
 * run() returns 0, or a negative errno, which stops the whole machine.
 */
struct swu_vcpu;
struct swu_mstub;

enum swu_next {
	SWU_NEXT_RESUME = 1, /* served: resume the same stub              */
	SWU_NEXT_WAIT,       /* killed for a bad report: wait, no resume  */
	SWU_NEXT_SWITCH,     /* preempted: the quantum is over            */
	SWU_NEXT_GONE,       /* exited or killed: freed                   */
};

struct swu_driver {
	const char *name;
	int (*run)(struct swu_vcpu *v); /* NULL: not in this build */
};

struct swu_mstub *swu__vcpu_pick(struct swu_vcpu *v);
void swu__vcpu_quantum_begin(struct swu_vcpu *v, struct swu_mstub *ms);
void swu__vcpu_tick(struct swu_vcpu *v, struct swu_mstub *ms, bool in_flight);
void swu__vcpu_resumed(struct swu_vcpu *v, struct swu_mstub *ms);
int swu__vcpu_event(struct swu_vcpu *v, struct swu_mstub *ms,
		    const struct sw_event *ev);
void swu__vcpu_quantum_end(struct swu_vcpu *v);
int swu__vcpu_release(struct swu_vcpu *v, struct swu_mstub *ms);
struct sw_loop *swu__vcpu_loop(struct swu_vcpu *v);
struct sw_stub *swu__mstub_sw(struct swu_mstub *ms);

/* drivers.c: the driver called name, or the default one for NULL; NULL if
 * there is none of that name.  A driver this build lacks has run NULL. */
const struct swu_driver *swu__driver_find(const char *name);

#endif
