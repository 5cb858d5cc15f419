/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The machine's objects, shared by machine.c (which makes them and runs the
 * vCPU threads) and vcpu.c (the steps of a quantum).  The drivers see none
 * of this: they take a vCPU and a stub through priv.h's steps. */
#ifndef SWU_MACHINE_H
#define SWU_MACHINE_H

#include <pthread.h>

#include "priv.h"

#define LOAD(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define BUMP(x)     STORE(x, LOAD(x) + 1) /* single writer at a time */

struct swu_mstub {
	unsigned idx, home;
	struct swu_stub *s;      /* NULL once freed                        */
	struct swu_prog prog;
	pid_t pid;
	int on_vcpu;             /* loop it is attached to; -1: detached    */
	uint64_t first_run_ns;   /* abs; start of its first quantum         */
	/* relaxed; written by the vCPU running it, read by anyone */
	bool alive;
	uint64_t handshakes;
	uint64_t last_report_ns; /* abs */
	uint64_t last_resume_ns; /* abs; right after its last resume        */
	uint64_t quantum_ns;     /* abs; start of its current quantum       */
	uint64_t quantum_wait;   /* the vCPU thread's run_delay then        */
};

struct swu_vcpu {
	struct swu_machine *m;
	unsigned id;
	pthread_t th;
	bool th_started;
	struct sw_loop *loop;
	pid_t tid;
	/* the preemption of the current quantum */
	bool preempt_sent;      /* SIGALRM sent                              */
	bool preempt_owed;      /* a tick came while the stub was not in
	                           flight: send it right after the resume    */
	/* relaxed; written by this vCPU's thread */
	uint64_t handshakes, syscalls, preempts, quanta, kills, exits;
	int running;
	unsigned spawned_alive; /* atomic: decremented by any vCPU */
	int error;
};

struct swu_machine {
	struct swu_machine_opts o;
	const struct swu_driver *drv;
	unsigned nstubs;
	struct swu_mstub *stubs;
	struct swu_vcpu *vcpus;
	uint64_t t0;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct swu_mstub **rq; /* ring of nstubs */
	unsigned rq_head, rq_len;
	bool stop;
	unsigned ready, finished;
	bool started, joined;
	/* The first stub stall-killed before its hello (under lock). */
	bool start_killed;
	unsigned start_kill_stub;
	struct sw_kill_info start_kill;
};

/* vcpu.c: stop the machine, from any thread (every vCPU ends its quantum
 * and leaves its driver's run()); or stop it for a vCPU's error, which its
 * stats keep (the first one). */
void swu__request_stop(struct swu_machine *m);
void swu__vcpu_fail(struct swu_vcpu *v, int err);

#endif
