// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The machine: a UML-like SMP guest.  Each vCPU is a thread with its own
 * stubwatch loop; all vCPUs schedule the stubs from one shared run queue,
 * as UML's scheduler moves processes between vCPUs.  A vCPU runs one stub
 * at a time (resume, wait, serve, resume, ...) until the stub reports the
 * SIGALRM that ends its quantum, then puts it back.
 *
 * This file makes the machine (its objects are in machine.h), spawns each
 * vCPU's stubs, runs the vCPU threads and answers the public swu_machine_*
 * calls.  A vCPU thread runs its driver (drivers.c: how it waits), which
 * takes the steps of each quantum from vcpu.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine.h"

/* ---- vCPU threads ------------------------------------------------------- */

static int loop_opts(const struct swu_machine_opts *o, struct sw_loop_opts *lo)
{
	if (!o->preempt_ns || o->tick_ns % o->preempt_ns ||
	    o->tick_ns / o->preempt_ns < 2 ||
	    o->tick_ns / o->preempt_ns > SW_TIMER_DIV_MAX)
		return -EINVAL;
	memset(lo, 0, sizeof(*lo));
	lo->size = sizeof(*lo);
	lo->tick_ns = o->tick_ns;
	lo->stall_ticks = o->stall_ticks;
	lo->timer_div = (uint32_t)(o->tick_ns / o->preempt_ns);
	lo->flags = SW_LOOP_TICK_EVENTS |
		    (o->poll ? SW_LOOP_ADAPTIVE_POLL : 0);
	return 0;
}

static int vcpu_spawn_one(struct swu_vcpu *v, unsigned idx)
{
	struct swu_machine *m = v->m;
	struct swu_mstub *ms = &m->stubs[idx];
	struct swu_mevent e = { 0 };
	struct sw_kill_info why;
	struct swu_stub *s;
	int r;

	ms->prog = (struct swu_prog){ .kind = SWU_PROG_MIXED };
	if (m->o.plan)
		m->o.plan(v->id, idx, &ms->prog, m->o.userdata);
	r = swu__stub_spawn(v->loop, &ms->prog, 0, &s, &why);
	if (r == -ETIMEDOUT) {
		pthread_mutex_lock(&m->lock);
		if (!m->start_killed) {
			m->start_killed = true;
			m->start_kill_stub = idx;
			m->start_kill = why;
		}
		pthread_mutex_unlock(&m->lock);
	}
	if (r < 0)
		return r;
	ms->s = s;
	ms->pid = swu_stub_pid(s);
	ms->on_vcpu = (int)v->id;
	STORE(ms->last_report_ns, swu_now_ns()); /* its hello */
	STORE(ms->alive, true);
	__atomic_fetch_add(&v->spawned_alive, 1, __ATOMIC_RELAXED);

	e.type = SWU_ME_SPAWN;
	e.t_ns = swu_now_ns() - m->t0;
	e.vcpu = v->id;
	e.stub = idx;
	e.pid = ms->pid;
	e.prog = ms->prog;
	if (m->o.on_event)
		m->o.on_event(&e, m->o.userdata);
	return swu__vcpu_release(v, ms);
}

static int vcpu_setup(struct swu_vcpu *v)
{
	struct swu_machine *m = v->m;
	struct sw_loop_opts lo;
	unsigned spv = m->o.stubs_per_vcpu, base = m->o.vcpus * spv;
	int r;

	r = loop_opts(&m->o, &lo);
	if (r == 0)
		r = sw_loop_new(&lo, &v->loop);
	for (unsigned j = 0; r == 0 && j < spv; j++)
		r = vcpu_spawn_one(v, v->id * spv + j);
	for (unsigned j = 0; r == 0 && v->id == 0 && j < m->o.extra_stubs; j++)
		r = vcpu_spawn_one(v, base + j);
	return r;
}

/* After every vCPU has stopped scheduling: free the stubs attached to this
 * vCPU's loop, and the detached ones it spawned (their PDEATHSIG is tied
 * to this thread), then the loop. */
static void vcpu_cleanup(struct swu_vcpu *v)
{
	struct swu_machine *m = v->m;

	for (unsigned i = 0; i < m->nstubs; i++) {
		struct swu_mstub *ms = &m->stubs[i];

		if (!ms->s)
			continue;
		if (ms->on_vcpu == (int)v->id ||
		    (ms->on_vcpu < 0 && ms->home == v->id)) {
			/* `alive` stays: it was alive when the run ended */
			swu_stub_free(ms->s);
			ms->s = NULL;
		}
	}
	v->loop = sw_loop_free(v->loop);
}

static void *vcpu_main(void *arg)
{
	struct swu_vcpu *v = arg;
	struct swu_machine *m = v->m;
	sigset_t all;
	int r;

	/* Asynchronous signals are the host's (the demo's main thread). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	__atomic_store_n(&v->tid, gettid(), __ATOMIC_RELAXED);

	r = vcpu_setup(v);
	if (r < 0)
		swu__vcpu_fail(v, r);
	pthread_mutex_lock(&m->lock);
	m->ready++;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);

	if (r == 0) {
		r = m->drv->run(v);
		if (r < 0)
			swu__vcpu_fail(v, r);
	}
	STORE(v->running, -1);

	pthread_mutex_lock(&m->lock);
	m->finished++;
	pthread_cond_broadcast(&m->cond);
	while (m->finished < m->o.vcpus)
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);

	vcpu_cleanup(v);
	return NULL;
}

/* ---- public -------------------------------------------------------------- */

int swu_machine_new(const struct swu_machine_opts *opts,
		    struct swu_machine **ret)
{
	struct swu_machine *m;
	struct sw_loop_opts lo;
	struct sw_loop *probe;
	int r;

	if (!opts || !ret)
		return -EINVAL;
	if (opts->vcpus < 1 || opts->vcpus > 64 || opts->stubs_per_vcpu < 1 ||
	    opts->stubs_per_vcpu > 256 || opts->extra_stubs > 256 ||
	    !swu__driver_find(opts->driver))
		return -EINVAL;
	if (!swu__driver_find(opts->driver)->run)
		return -EOPNOTSUPP;
	if (!swu_supported())
		return -ENOSYS;
	r = loop_opts(opts, &lo);
	if (r < 0)
		return r;
	r = sw_loop_new(&lo, &probe); /* let the core judge T and N */
	if (r < 0)
		return r;
	sw_loop_free(probe);

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->o = *opts;
	m->drv = swu__driver_find(opts->driver);
	m->nstubs = opts->vcpus * opts->stubs_per_vcpu + opts->extra_stubs;
	m->stubs = calloc(m->nstubs, sizeof(*m->stubs));
	m->vcpus = calloc(opts->vcpus, sizeof(*m->vcpus));
	m->rq = calloc(m->nstubs, sizeof(*m->rq));
	if (!m->stubs || !m->vcpus || !m->rq) {
		swu_machine_free(m);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < m->nstubs; i++) {
		unsigned base = opts->vcpus * opts->stubs_per_vcpu;

		m->stubs[i].idx = i;
		m->stubs[i].home = i < base ? i / opts->stubs_per_vcpu : 0;
		m->stubs[i].on_vcpu = -1;
	}
	for (unsigned i = 0; i < opts->vcpus; i++) {
		m->vcpus[i].m = m;
		m->vcpus[i].id = i;
		m->vcpus[i].running = -1;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	*ret = m;
	return 0;
}

int swu_machine_start(struct swu_machine *m)
{
	int r = 0;

	if (!m)
		return -EINVAL;
	if (m->started)
		return -EALREADY;
	m->started = true;
	m->t0 = swu_now_ns();
	for (unsigned i = 0; i < m->o.vcpus; i++) {
		r = -pthread_create(&m->vcpus[i].th, NULL, vcpu_main,
				    &m->vcpus[i]);
		if (r < 0) {
			/* the started ones must still meet at the barrier */
			pthread_mutex_lock(&m->lock);
			m->ready += m->o.vcpus - i;
			m->finished += m->o.vcpus - i;
			m->stop = true;
			pthread_cond_broadcast(&m->cond);
			pthread_mutex_unlock(&m->lock);
			break;
		}
		m->vcpus[i].th_started = true;
	}
	pthread_mutex_lock(&m->lock);
	while (m->ready < m->o.vcpus)
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	for (unsigned i = 0; r == 0 && i < m->o.vcpus; i++)
		r = LOAD(m->vcpus[i].error);
	if (r < 0)
		swu_machine_stop(m);
	return r;
}

int swu_machine_stop(struct swu_machine *m)
{
	int r = 0;

	if (!m)
		return -EINVAL;
	if (!m->started || m->joined)
		goto out;
	swu__request_stop(m);
	for (unsigned i = 0; i < m->o.vcpus; i++)
		if (m->vcpus[i].th_started)
			pthread_join(m->vcpus[i].th, NULL);
	m->joined = true;
out:
	for (unsigned i = 0; r == 0 && i < m->o.vcpus; i++)
		r = LOAD(m->vcpus[i].error);
	return r;
}

struct swu_machine *swu_machine_free(struct swu_machine *m)
{
	if (!m)
		return NULL;
	swu_machine_stop(m);
	if (m->vcpus) {
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cond);
	}
	free(m->rq);
	free(m->vcpus);
	free(m->stubs);
	free(m);
	return NULL;
}

int swu_machine_start_kill(struct swu_machine *m, unsigned *ret_stub,
			   struct sw_kill_info *ret)
{
	int r = -ENOENT;

	if (!m || !ret_stub || !ret)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (m->start_killed) {
		*ret_stub = m->start_kill_stub;
		*ret = m->start_kill;
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int swu_machine_request_stop(struct swu_machine *m)
{
	if (!m)
		return -EINVAL;
	swu__request_stop(m);
	return 0;
}

unsigned swu_machine_running(const struct swu_machine *m)
{
	struct swu_machine *mm = (struct swu_machine *)m;
	unsigned n;

	if (!m || !m->started)
		return 0;
	pthread_mutex_lock(&mm->lock);
	n = m->o.vcpus - m->finished;
	pthread_mutex_unlock(&mm->lock);
	return n;
}

unsigned swu_machine_nstubs(const struct swu_machine *m)
{
	return m ? m->nstubs : 0;
}

unsigned swu_machine_nvcpus(const struct swu_machine *m)
{
	return m ? m->o.vcpus : 0;
}

uint64_t swu_machine_elapsed_ns(const struct swu_machine *m)
{
	return m && m->started ? swu_now_ns() - m->t0 : 0;
}

int swu_machine_vcpu_stats(const struct swu_machine *m, unsigned vcpu,
			   struct swu_vcpu_stats *ret)
{
	const struct swu_vcpu *v;
	int run;

	if (!m || !ret || vcpu >= m->o.vcpus)
		return -EINVAL;
	v = &m->vcpus[vcpu];
	memset(ret, 0, sizeof(*ret));
	ret->handshakes = LOAD(v->handshakes);
	ret->syscalls = LOAD(v->syscalls);
	ret->preempts = LOAD(v->preempts);
	ret->quanta = LOAD(v->quanta);
	ret->kills = LOAD(v->kills);
	ret->exits = LOAD(v->exits);
	ret->spawned_alive = LOAD(v->spawned_alive);
	ret->error = LOAD(v->error);
	ret->tid = LOAD(v->tid);
	run = LOAD(v->running);
	ret->running_stub = run;
	if (run >= 0 && (unsigned)run < m->nstubs) {
		const struct swu_mstub *ms = &m->stubs[run];
		uint64_t since = LOAD(ms->last_report_ns), now = swu_now_ns();

		if (LOAD(ms->quantum_ns) > since)
			since = LOAD(ms->quantum_ns);
		ret->running_silent_ns = now > since ? now - since : 0;
	}
	return 0;
}

int swu_machine_stub_stats(const struct swu_machine *m, unsigned stub,
			   struct swu_stub_stats *ret)
{
	const struct swu_mstub *ms;
	uint64_t last;

	if (!m || !ret || stub >= m->nstubs)
		return -EINVAL;
	ms = &m->stubs[stub];
	memset(ret, 0, sizeof(*ret));
	/* pid and prog are final once swu_machine_start() has returned */
	ret->pid = ms->pid;
	ret->home_vcpu = ms->home;
	ret->prog = ms->prog;
	ret->alive = LOAD(ms->alive);
	ret->handshakes = LOAD(ms->handshakes);
	last = LOAD(ms->last_report_ns);
	ret->last_report_ns = last > m->t0 ? last - m->t0 : 0;
	return 0;
}
