/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The stub every variant runs, and the monitor side of each variant.
 *
 * All stubs are spawned the same way (sw_stub_spawn, a clone3 copy of the
 * bench) and run bench_stub_main(); the only per-variant difference in the
 * stub is the wake primitive of its report: an eventfd write (stubwatch) or
 * a FUTEX_WAKE on the state word (futex, thread-wd, as UML does today).
 * Every stub makes its first report through the eventfd, so that its loop
 * stops counting it in flight; after that a futex-variant stub is never
 * waited on through the loop again.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#if defined(BENCH_HAVE_SW_EV)
#include "stubwatch-ev.h"
#endif

#include "bench.h"

const char *const variant_names[V_COUNT] = {
	[V_FUTEX] = "futex",
	[V_THREAD_WD] = "thread-wd",
	[V_STUBWATCH] = "stubwatch",
	[V_STUBWATCH_POLL] = "stubwatch-poll",
	[V_STUBWATCH_EV] = "stubwatch-ev",
	[V_FLOOR] = "floor",
};

int variant_by_name(const char *name)
{
	for (int v = 0; v < V_COUNT; v++)
		if (strcmp(name, variant_names[v]) == 0)
			return v;
	return -1;
}

const char *variant_unavailable(enum variant v)
{
#if !defined(BENCH_HAVE_SW_EV)
	if (v == V_STUBWATCH_EV)
		return "built without libev: no embedding glue "
		       "(libstubwatch-ev; apt-get install libev-dev)";
#endif
	(void)v;
	return NULL;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

int pin_pid(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(pid, sizeof(set), &set) < 0 ? -errno : 0;
}

void *buf_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Stubs are fork-style copies of the bench: keep sample buffers out of
	 * them (fewer page tables to copy at spawn, none to tear down). */
	madvise(p, bytes, MADV_DONTFORK);
	return p;
}

void buf_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

static long sys_futex(uint32_t *word, int op, uint32_t val)
{
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

/* ---- the stub --------------------------------------------------------- */

/* CMD_BUSY: "user code" that runs a short random while (a sleep, so that
 * a thousand of them keep the monitor busy rather than the CPUs), then
 * reports. */
static void busy_sleep(const struct bench_payload *pl, uint32_t *rnd)
{
	uint32_t us = pl->busy_min_us;
	struct timespec ts;

	*rnd ^= *rnd << 13; /* xorshift32 */
	*rnd ^= *rnd >> 17;
	*rnd ^= *rnd << 5;
	if (pl->busy_span_us)
		us += *rnd % pl->busy_span_us;
	ts.tv_sec = us / 1000000u;
	ts.tv_nsec = (long)(us % 1000000u) * 1000;
	syscall(SYS_nanosleep, &ts, NULL);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* work_ns: CPU-bound "user code", timed on the vDSO clock. */
static void busy_work(uint32_t ns)
{
	uint64_t t0 = now_ns();

	while (now_ns() - t0 < ns)
		__asm__ volatile("" ::: "memory");
}

/* WAKE_SPIN (the floor): spin on the state word while the monitor says so
 * (a floor run is going on), else sleep; the monitor's first resume of a
 * run wakes it from that sleep. */
static void spin_wait_resume(struct sw_page *page, struct bench_payload *pl)
{
	while (__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) !=
	       SW_STATE_IN_CHILD) {
		if (__atomic_load_n(&pl->spin, __ATOMIC_RELAXED))
			cpu_relax();
		else
			sys_futex(&page->state, FUTEX_WAIT, SW_STATE_IN_KERN);
	}
}

/*
 * Runs in a raw clone3 child of the bench: only raw system calls and the
 * header's async-signal-safe helpers from here.
 */
int bench_stub_main(struct sw_page *page, void *arg)
{
	struct bench_payload *pl = sw_page_payload(page);
	uint32_t cmd, rnd = (uint32_t)syscall(SYS_getpid) * 2654435761u | 1;
	bool resumed = false; /* by the handshake at the end of the round */

	/* arg points into this copy of the bench's memory: a comm name that
	 * lets perf --per-thread tell stub from monitor. */
	syscall(SYS_prctl, PR_SET_NAME, (unsigned long)arg, 0, 0, 0);
	sw_stub_report(page); /* the spawn handshake, always via the eventfd */
	for (;;) {
		if (resumed)
			resumed = false;
		else if (__atomic_load_n(&pl->wake, __ATOMIC_RELAXED) ==
			 WAKE_SPIN)
			spin_wait_resume(page, pl);
		else
			sw_stub_wait_resume(page);
		cmd = __atomic_load_n(&pl->cmd, __ATOMIC_RELAXED);
		if (__builtin_expect(cmd != CMD_REPORT, 0)) {
			if (cmd == CMD_EXIT)
				return 0;
			if (cmd == CMD_STALL_SPIN)
				for (;;)
					__asm__ volatile("" ::: "memory");
			if (cmd == CMD_BUSY)
				busy_sleep(pl, &rnd);
			else
				for (;;)
					sys_futex(&pl->sleep_word, FUTEX_WAIT,
						  0);
		}
		if (__builtin_expect(pl->work_ns != 0, 0))
			busy_work(pl->work_ns);
		if (pl->wake == WAKE_EVENTFD) {
			sw_stub_handshake(page); /* the report, then the wait */
			resumed = true;
		} else if (pl->wake == WAKE_SPIN) {
			__atomic_store_n(&page->state, SW_STATE_IN_KERN,
					 __ATOMIC_RELEASE);
		} else {
			__atomic_store_n(&page->state, SW_STATE_IN_KERN,
					 __ATOMIC_RELEASE);
			sys_futex(&page->state, FUTEX_WAKE, 1);
		}
	}
}

/* The bench re-executed as a stub ("stubwatch-bench --stub"), as UML execs
 * its stub binary: a fresh address space, the page on SW_EXEC_PAGE_FD. */
int bench_stub_exec_main(void)
{
	struct sw_page *page = NULL;

	if (sw_stub_map(SW_EXEC_PAGE_FD, &page) < 0)
		return 120;
	return bench_stub_main(page, (void *)"sw-bench-stub");
}

/* ---- the reference fix's helper watchdog thread ----------------------- */

/*
 * Modelled on "um: skas: kill stubs that block SIGALRM via a watchdog
 * thread": a per-vCPU (pid, seq) slot; the vCPU bumps seq after each report;
 * a helper thread reads every slot on each tick of a timerfd and SIGKILLs a
 * stub whose seq has not moved for `stall_ticks` ticks.  After the kill it
 * flags the slot and wakes the vCPU's futex, which would otherwise sleep
 * forever on a dead stub.
 */
/* detect-load watches 1,000 busy stubs and a stalled one. */
#define WD_SLOTS (DL_BUSY_STUBS + 64)

struct wd_slot {
	pid_t pid;       /* 0: slot idle (atomic)                   */
	uint32_t seq;    /* bumped by the vCPU per report (atomic)  */
	uint32_t killed; /* set by the helper thread (atomic)       */
	uint64_t killed_at; /* CLOCK_MONOTONIC of the SIGKILL       */
	uint32_t *word;  /* the vCPU's futex word                   */
	/* helper-thread private */
	pid_t seen_pid;
	uint32_t seen_seq;
	unsigned still;
	bool used;
};

static struct {
	pthread_mutex_t lock;
	pthread_t thread;
	bool running;
	int tfd;
	int stopping;
	pid_t tid;
	unsigned stall_ticks;
	uint64_t tick_ns;
	uint64_t next_exp;    /* helper-private: the oldest expiration unread */
	uint64_t max_late_ns; /* longest expiration -> read (atomic)          */
	struct wd_slot slots[WD_SLOTS];
} wd = { .lock = PTHREAD_MUTEX_INITIALIZER, .tfd = -1 };

static void wd_tick(void)
{
	for (int i = 0; i < WD_SLOTS; i++) {
		struct wd_slot *s = &wd.slots[i];
		pid_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
		uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

		if (!pid || pid != s->seen_pid || seq != s->seen_seq) {
			s->seen_pid = pid;
			s->seen_seq = seq;
			s->still = 0;
			continue;
		}
		if (++s->still < wd.stall_ticks)
			continue;
		/* Stamped just before the signal, as stubwatch stamps its
		 * killed_at_ns. */
		__atomic_store_n(&s->killed_at, now_ns(), __ATOMIC_RELAXED);
		kill(pid, SIGKILL);
		__atomic_store_n(&s->killed, 1, __ATOMIC_RELEASE);
		sys_futex(s->word, FUTEX_WAKE, 1);
		s->seen_pid = 0;
		s->still = 0;
	}
}

/* How late the helper took its tick: from the oldest expiration the read
 * found, on the timer's grid, as sw_loop_stats.max_late_ns measures the
 * loop's. */
static void wd_note_lateness(uint64_t expirations)
{
	uint64_t now = now_ns(), late;

	late = now > wd.next_exp ? now - wd.next_exp : 0;
	wd.next_exp += expirations * wd.tick_ns;
	if (late > __atomic_load_n(&wd.max_late_ns, __ATOMIC_RELAXED))
		__atomic_store_n(&wd.max_late_ns, late, __ATOMIC_RELAXED);
}

static void *wd_main(void *arg)
{
	uint64_t x;

	(void)arg;
	prctl(PR_SET_NAME, "sw-bench-wd", 0, 0, 0);
	__atomic_store_n(&wd.tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	for (;;) {
		/* Stop: the flag, then one forced expiry (1 ns). */
		if (read(wd.tfd, &x, sizeof(x)) != sizeof(x))
			continue;
		if (__atomic_load_n(&wd.stopping, __ATOMIC_ACQUIRE))
			break;
		wd_note_lateness(x);
		pthread_mutex_lock(&wd.lock);
		wd_tick();
		pthread_mutex_unlock(&wd.lock);
	}
	return NULL;
}

int wd_thread_start(uint64_t tick_ns, unsigned stall_ticks)
{
	struct itimerspec its = { 0 };
	int r;

	if (wd.running)
		return 0;
	wd.stall_ticks = stall_ticks;
	wd.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (wd.tfd < 0)
		return -errno;
	its.it_interval.tv_sec = (time_t)(tick_ns / 1000000000ull);
	its.it_interval.tv_nsec = (long)(tick_ns % 1000000000ull);
	its.it_value = its.it_interval;
	wd.tick_ns = tick_ns;
	/* Before the arming: lateness is never under-estimated. */
	wd.next_exp = now_ns() + tick_ns;
	wd.max_late_ns = 0;
	if (timerfd_settime(wd.tfd, 0, &its, NULL) < 0) {
		r = -errno;
		close(wd.tfd);
		wd.tfd = -1;
		return r;
	}
	wd.stopping = 0;
	r = -pthread_create(&wd.thread, NULL, wd_main, NULL);
	if (r < 0) {
		close(wd.tfd);
		wd.tfd = -1;
		return r;
	}
	while (!__atomic_load_n(&wd.tid, __ATOMIC_ACQUIRE))
		sched_yield();
	wd.running = true;
	return 0;
}

pid_t wd_thread_tid(void)
{
	return wd.running ? wd.tid : 0;
}

void wd_thread_stop(void)
{
	struct itimerspec its = { .it_value.tv_nsec = 1 };

	if (!wd.running)
		return;
	__atomic_store_n(&wd.stopping, 1, __ATOMIC_RELEASE);
	timerfd_settime(wd.tfd, 0, &its, NULL);
	pthread_join(wd.thread, NULL);
	close(wd.tfd);
	wd.tfd = -1;
	wd.tid = 0;
	wd.running = false;
}

uint64_t wd_thread_max_late(bool reset)
{
	if (reset)
		return __atomic_exchange_n(&wd.max_late_ns, 0, __ATOMIC_RELAXED);
	return __atomic_load_n(&wd.max_late_ns, __ATOMIC_RELAXED);
}

static int wd_slot_get(uint32_t *word)
{
	int r = -ENOSPC;

	pthread_mutex_lock(&wd.lock);
	for (int i = 0; i < WD_SLOTS; i++) {
		if (!wd.slots[i].used) {
			memset(&wd.slots[i], 0, sizeof(wd.slots[i]));
			wd.slots[i].used = true;
			wd.slots[i].word = word;
			r = i;
			break;
		}
	}
	pthread_mutex_unlock(&wd.lock);
	return r;
}

static void wd_slot_put(int i)
{
	pthread_mutex_lock(&wd.lock);
	__atomic_store_n(&wd.slots[i].pid, 0, __ATOMIC_RELEASE);
	wd.slots[i].used = false;
	pthread_mutex_unlock(&wd.lock);
}

/* ---- libev embedding (stubwatch-ev) ----------------------------------- */

#if defined(BENCH_HAVE_SW_EV)
/*
 * The host main loop is libev's: the glue (include/stubwatch-ev.h) puts the
 * stubwatch loop's fd in it as one ev_io (and calls sw_loop_prepare() before
 * libev blocks).  Driven as an embedding host drives stubs: the report
 * callback times the round trip and resumes the stub for the next one.
 */
struct ev_drv {
	struct ev_loop *evl;
	struct sw_ev *glue;
	uint64_t *samples; /* NULL: untimed */
	size_t n, i;       /* round trips asked for, made */
	uint64_t t0;       /* the current round trip's resume */
	int err;
};

static int ev_on_event(struct sw_stub *stub, const struct sw_event *ev,
		       void *userdata)
{
	struct ev_drv *d = userdata;
	uint64_t t = now_ns();
	int r;

	if (ev->type != SW_EV_REPORT || d->i >= d->n) {
		d->err = -EPROTO;
		ev_break(d->evl, EVBREAK_ALL);
		return 0;
	}
	if (d->samples)
		d->samples[d->i] = t - d->t0;
	if (++d->i == d->n) {
		ev_break(d->evl, EVBREAK_ALL);
		return 0;
	}
	d->t0 = now_ns();
	r = sw_stub_resume(stub);
	if (r < 0) {
		d->err = r;
		ev_break(d->evl, EVBREAK_ALL);
	}
	return 0;
}

static int ev_open(struct pair *p)
{
	struct ev_drv *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->evl = ev_loop_new(EVFLAG_AUTO);
	if (!d->evl) {
		free(d);
		return -ENOMEM;
	}
	r = sw_ev_attach(p->loop, d->evl, &d->glue);
	if (r < 0) {
		ev_loop_destroy(d->evl);
		free(d);
		return r;
	}
	sw_stub_set_callback(p->stub, ev_on_event, d);
	p->ev = d;
	return 0;
}

static void ev_close(struct pair *p)
{
	struct ev_drv *d = p->ev;

	if (!d)
		return;
	sw_stub_set_callback(p->stub, NULL, NULL);
	sw_ev_detach(d->glue);
	ev_loop_destroy(d->evl);
	free(d);
	p->ev = NULL;
}

static int ev_run_pair(struct pair *p, uint64_t *samples, size_t n)
{
	struct ev_drv *d = p->ev;
	int r;

	if (!n)
		return 0;
	d->samples = samples;
	d->n = n;
	d->i = 0;
	d->err = 0;
	d->t0 = now_ns();
	r = sw_stub_resume(p->stub);
	while (r >= 0 && d->i < d->n && !d->err) {
		ev_run(d->evl, 0);
		r = sw_ev_take_error(d->glue);
	}
	d->n = 0;
	return r < 0 ? r : d->err;
}
#else
static int ev_open(struct pair *p)
{
	(void)p;
	return -ENOTSUP;
}

static void ev_close(struct pair *p)
{
	(void)p;
}

static int ev_run_pair(struct pair *p, uint64_t *samples, size_t n)
{
	(void)p;
	(void)samples;
	(void)n;
	return -ENOTSUP;
}
#endif

/* ---- pairs ------------------------------------------------------------ */

static int spawn_stub(struct pair *p, enum variant v, struct sw_loop *loop,
		      bool exec)
{
	static char *const argv[] = { "sw-bench-stub", "--stub", NULL };
	struct sw_spawn_opts so = {
		.size = sizeof(so),
		.flags = SW_SPAWN_PDEATHSIG,
	};
	struct sw_stub *stub = NULL;
	struct sw_page *page;
	struct bench_payload *pl;
	struct sw_event ev;
	int r;

	if (exec) {
		so.path = "/proc/self/exe";
		so.argv = argv;
	} else {
		so.fn = bench_stub_main;
		so.arg = (void *)"sw-bench-stub";
	}
	r = sw_stub_spawn(loop, &so, &stub);
	if (r < 0)
		return r;
	page = sw_stub_page(stub);
	pl = sw_page_payload(page);
	r = sw_stub_wait(stub, &ev);
	if (r != SW_EV_REPORT) {
		sw_stub_free(stub);
		return r < 0 ? r : -EPROTO;
	}
	pl->cmd = CMD_REPORT;
	pl->wake = (v == V_FUTEX || v == V_THREAD_WD) ? WAKE_FUTEX
		   : v == V_FLOOR			      ? WAKE_SPIN
							      : WAKE_EVENTFD;
	p->v = v;
	p->stub = stub;
	p->page = page;
	p->pl = pl;
	p->pid = sw_stub_pid(stub);
	p->wd_slot = -1;
	p->ev = NULL;
	return 0;
}

int pair_open_in(struct pair *p, enum variant v, struct sw_loop *loop,
		 bool exec)
{
	int r;

	memset(p, 0, sizeof(*p));
	r = spawn_stub(p, v, loop, exec);
	if (r < 0)
		return r;
	p->loop = NULL; /* not owned */
	return 0;
}

int pair_open(struct pair *p, enum variant v, const struct sw_loop_opts *opts)
{
	struct sw_loop_opts poll_opts = SW_LOOP_OPTS_INIT;
	struct sw_loop *loop = NULL;
	int r;

	memset(p, 0, sizeof(*p));
	p->wd_slot = -1;
	if (variant_unavailable(v))
		return -ENOTSUP;
	/* stubwatch-poll: the stubwatch variant's loop options (the defaults
	 * unless the caller passes its own) plus adaptive polling. */
	if (v == V_STUBWATCH_POLL) {
		if (opts)
			poll_opts = *opts;
		poll_opts.flags |= SW_LOOP_ADAPTIVE_POLL;
		opts = &poll_opts;
	}
	r = sw_loop_new(opts, &loop);
	if (r < 0)
		return r;
	r = spawn_stub(p, v, loop, false);
	if (r < 0) {
		sw_loop_free(loop);
		return r;
	}
	p->loop = loop;
	if (v == V_THREAD_WD) {
		r = wd_slot_get(&p->page->state);
		if (r < 0)
			goto fail;
		p->wd_slot = r;
	}
	if (v == V_STUBWATCH_EV) {
		r = ev_open(p);
		if (r < 0)
			goto fail;
	}
	return 0;
fail:
	pair_close(p);
	return r;
}

void pair_close(struct pair *p)
{
	if (p->ev)
		ev_close(p);
	if (p->wd_slot >= 0)
		wd_slot_put(p->wd_slot);
	p->wd_slot = -1;
	p->stub = sw_stub_free(p->stub);
	p->loop = sw_loop_free(p->loop);
}

/* ---- one round trip per variant -------------------------------------- */

/* UML's wait_stub_done_seccomp() today. */
static inline int futex_round(struct pair *p)
{
	uint32_t *w = &p->page->state;

	__atomic_store_n(w, SW_STATE_IN_CHILD, __ATOMIC_RELEASE);
	sys_futex(w, FUTEX_WAKE, 1);
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == SW_STATE_IN_CHILD)
		sys_futex(w, FUTEX_WAIT, SW_STATE_IN_CHILD);
	return 0;
}

/* The reference fix: the same wait, plus the killed flag the helper thread
 * sets, plus the seq bump per report. */
static inline int thread_wd_round(struct pair *p)
{
	struct wd_slot *s = &wd.slots[p->wd_slot];
	uint32_t *w = &p->page->state;

	__atomic_store_n(w, SW_STATE_IN_CHILD, __ATOMIC_RELEASE);
	sys_futex(w, FUTEX_WAKE, 1);
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == SW_STATE_IN_CHILD) {
		if (__atomic_load_n(&s->killed, __ATOMIC_ACQUIRE))
			return -EOWNERDEAD;
		sys_futex(w, FUTEX_WAIT, SW_STATE_IN_CHILD);
	}
	__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);
	return 0;
}

/* The floor: a store and a spin on each side, no system call. */
static inline int floor_round(struct pair *p)
{
	uint32_t *w = &p->page->state;

	__atomic_store_n(w, SW_STATE_IN_CHILD, __ATOMIC_RELEASE);
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == SW_STATE_IN_CHILD)
		cpu_relax();
	return 0;
}

/* A floor run: the stub spins while it lasts, and the first resume wakes
 * it from the sleep it took since the last run (or since its spawn). */
static int floor_run(struct pair *p, uint64_t *samples, size_t n)
{
	uint32_t *w = &p->page->state;
	int r;

	__atomic_store_n(&p->pl->spin, 1, __ATOMIC_RELAXED);
	__atomic_store_n(w, SW_STATE_IN_CHILD, __ATOMIC_RELEASE);
	sys_futex(w, FUTEX_WAKE, 1);
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == SW_STATE_IN_CHILD)
		cpu_relax();
	r = 0;
	if (!samples) {
		for (size_t i = 0; i < n; i++)
			floor_round(p);
	} else {
		for (size_t i = 0; i < n; i++) {
			uint64_t t0 = now_ns();

			floor_round(p);
			samples[i] = now_ns() - t0;
		}
	}
	/* the stub sleeps from its next wait on, until the next run */
	__atomic_store_n(&p->pl->spin, 0, __ATOMIC_RELAXED);
	return r;
}

static inline int stubwatch_round(struct pair *p)
{
	struct sw_event ev;
	int r = sw_stub_run(p->stub, &ev);

	if (r < 0)
		return r;
	return r == SW_EV_REPORT ? 0 : -EPROTO;
}

#define RUN_LOOP(ROUND)                                               \
	do {                                                          \
		if (!samples) {                                       \
			for (size_t i = 0; i < n; i++)                \
				if ((r = ROUND(p)) < 0)               \
					return r;                     \
			return 0;                                     \
		}                                                     \
		for (size_t i = 0; i < n; i++) {                      \
			uint64_t t0 = now_ns();                       \
			if ((r = ROUND(p)) < 0)                       \
				return r;                             \
			samples[i] = now_ns() - t0;                   \
		}                                                     \
		return 0;                                             \
	} while (0)

static int thread_wd_run(struct pair *p, uint64_t *samples, size_t n)
{
	int r;

	RUN_LOOP(thread_wd_round);
}

int pair_run(struct pair *p, uint64_t *samples, size_t n)
{
	struct wd_slot *s;
	int r;

	p->pl->cmd = CMD_REPORT;
	switch (p->v) {
	case V_FUTEX:
		RUN_LOOP(futex_round);
	case V_THREAD_WD:
		/* The slot watches this vCPU only while it runs its stub, so
		 * the pair can sit idle between runs without being killed. */
		s = &wd.slots[p->wd_slot];
		__atomic_store_n(&s->pid, p->pid, __ATOMIC_RELEASE);
		r = thread_wd_run(p, samples, n);
		__atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
		return r;
	case V_STUBWATCH:
	case V_STUBWATCH_POLL:
		RUN_LOOP(stubwatch_round);
	case V_STUBWATCH_EV:
		return ev_run_pair(p, samples, n);
	case V_FLOOR:
		return floor_run(p, samples, n);
	case V_COUNT:
		break;
	}
	return -EINVAL;
}

int pair_stall(struct pair *p, enum stub_cmd cmd, struct sw_event *ret_ev)
{
	if (p->v != V_STUBWATCH && p->v != V_STUBWATCH_POLL)
		return -ENOTSUP;
	p->pl->cmd = cmd;
	return sw_stub_run(p->stub, ret_ev);
}

/* ---- thread-wd stubs outside pair_open() (detect-load) ---------------- */

int pair_wd_slot(struct pair *p)
{
	int r;

	if (p->wd_slot >= 0)
		return 0;
	r = wd_slot_get(&p->page->state);
	if (r < 0)
		return r;
	p->wd_slot = r;
	return 0;
}

void pair_wd_release(struct pair *p)
{
	if (p->wd_slot >= 0)
		wd_slot_put(p->wd_slot);
	p->wd_slot = -1;
}

void pair_wd_watch(struct pair *p, bool on)
{
	struct wd_slot *s = &wd.slots[p->wd_slot];

	/* Off under the helper's lock: once this returns no tick holds the
	 * pid, so the stub may be reaped (and its pid reused) safely. */
	if (!on)
		pthread_mutex_lock(&wd.lock);
	__atomic_store_n(&s->pid, on ? p->pid : 0, __ATOMIC_RELEASE);
	if (!on)
		pthread_mutex_unlock(&wd.lock);
}

void pair_wd_progress(struct pair *p)
{
	struct wd_slot *s = &wd.slots[p->wd_slot];

	__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);
}

uint64_t pair_wd_killed_at(const struct pair *p)
{
	const struct wd_slot *s = &wd.slots[p->wd_slot];

	if (!__atomic_load_n(&s->killed, __ATOMIC_ACQUIRE))
		return 0;
	return __atomic_load_n(&s->killed_at, __ATOMIC_RELAXED);
}

int pair_stall_wd(struct pair *p, enum stub_cmd cmd, uint64_t *ret_resumed)
{
	/* The helper sets `killed` and then wakes the futex: a wake that
	 * comes between our look at the flag and our FUTEX_WAIT is lost, so
	 * the wait is bounded (the kill time is the helper's, not ours). */
	const struct timespec bound = { .tv_nsec = 10000000 };
	struct wd_slot *s;
	uint32_t *w = &p->page->state;

	if (p->v != V_THREAD_WD || p->wd_slot < 0)
		return -EINVAL;
	s = &wd.slots[p->wd_slot];
	p->pl->cmd = cmd;
	pair_wd_watch(p, true);
	__atomic_store_n(w, SW_STATE_IN_CHILD, __ATOMIC_RELEASE);
	sys_futex(w, FUTEX_WAKE, 1);
	*ret_resumed = now_ns();
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == SW_STATE_IN_CHILD &&
	       !__atomic_load_n(&s->killed, __ATOMIC_ACQUIRE))
		syscall(SYS_futex, w, FUTEX_WAIT, SW_STATE_IN_CHILD, &bound,
			NULL, 0);
	pair_wd_watch(p, false);
	return __atomic_load_n(&s->killed, __ATOMIC_ACQUIRE) ? 0 : -EPROTO;
}
