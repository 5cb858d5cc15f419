// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * wakepath: the kernel's wake-up paths alone, without the library, so that a
 * round trip's tail can be split between the kernel and stubwatch.
 *
 * Two processes, the monitor on CPU 0 and the stub on CPU 1 (or the CPUs
 * given), bounce one word of a shared page.  The monitor always resumes the
 * stub with FUTEX_WAKE and the stub always waits in FUTEX_WAIT, as in
 * stubwatch-bench; they differ only in how the stub wakes the monitor:
 *
 *   futex     FUTEX_WAKE; the monitor waits in FUTEX_WAIT (the bench's futex)
 *   epoll-et  an eventfd write; the monitor waits in epoll_wait on it,
 *             edge-triggered, no read (stubwatch's blocking wait)
 *   read      an eventfd write; the monitor blocks in read() on it
 *   poll      an eventfd write; the monitor waits in poll(), then reads
 *
 * Each path keeps one stub for the whole run.  Within a rep the paths take
 * turns, the whole rep each or --slice K round trips each, the first to go
 * rotating; the report is p50 and p99 per path (median over the reps) and
 * each path's p99 over futex's, per rep.
 *
 *   bench/wakepath [--n N] [--reps R] [--slice K] [--cpus A,B]
 */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h" /* the bench's statistics (stats.c) */

enum path { P_FUTEX, P_EPOLL, P_READ, P_POLL, NPATH };

static const char *const path_names[NPATH] = { "futex", "epoll-et", "read",
					       "poll" };

#define MAX_REPS 64
#define WARMUP   2000

struct shared {
	uint32_t to_stub; /* 1: the stub's turn */
	uint32_t to_mon;  /* 1: the monitor's turn */
};

/* One path's stub, kept for the whole run. */
struct chan {
	struct shared *sh;
	int efd, epfd;
	pid_t pid;
};

static long futex(uint32_t *w, int op, uint32_t val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		fprintf(stderr, "wakepath: CPU %d: %s\n", cpu, strerror(errno));
		_exit(1);
	}
}

static void stub_main(enum path p, struct shared *sh, int efd, int cpu)
{
	static const uint64_t one = 1;

	pin(cpu);
	for (;;) {
		while (__atomic_load_n(&sh->to_stub, __ATOMIC_ACQUIRE) != 1)
			futex(&sh->to_stub, FUTEX_WAIT, 0);
		__atomic_store_n(&sh->to_stub, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&sh->to_mon, 1, __ATOMIC_RELEASE);
		if (p == P_FUTEX)
			futex(&sh->to_mon, FUTEX_WAKE, 1);
		else if (write(efd, &one, sizeof(one)) < 0)
			_exit(1);
	}
}

static void monitor_wait(enum path p, const struct chan *c)
{
	struct shared *sh = c->sh;
	struct pollfd pfd = { .fd = c->efd, .events = POLLIN };
	struct epoll_event ev;
	uint64_t v;

	while (__atomic_load_n(&sh->to_mon, __ATOMIC_ACQUIRE) != 1) {
		switch (p) {
		case P_FUTEX:
			futex(&sh->to_mon, FUTEX_WAIT, 0);
			break;
		case P_EPOLL:
			epoll_wait(c->epfd, &ev, 1, -1);
			break;
		case P_READ:
			if (read(c->efd, &v, sizeof(v)) < 0)
				return;
			break;
		case P_POLL:
			poll(&pfd, 1, -1);
			if (read(c->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return;
			break;
		case NPATH:
			return;
		}
	}
	__atomic_store_n(&sh->to_mon, 0, __ATOMIC_RELAXED);
}

/* A path's stub on CPU cpu_b, with its own page and eventfd. */
static int chan_open(enum path p, struct chan *c, int cpu_b)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };

	c->sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c->sh == MAP_FAILED)
		return -errno;
	c->efd = eventfd(0, p == P_POLL ? EFD_NONBLOCK : 0);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->efd < 0 || c->epfd < 0 ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->efd, &ev) < 0)
		return -errno;
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (c->pid == 0)
		stub_main(p, c->sh, c->efd, cpu_b);
	return 0;
}

static void chan_close(struct chan *c)
{
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	close(c->efd);
	close(c->epfd);
	munmap(c->sh, 4096);
}

/* n round trips of one path, timed into lat unless it is NULL. */
static void run(enum path p, const struct chan *c, uint64_t *lat, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t t0 = mono_ns();

		__atomic_store_n(&c->sh->to_stub, 1, __ATOMIC_RELEASE);
		futex(&c->sh->to_stub, FUTEX_WAKE, 1);
		monitor_wait(p, c);
		if (lat)
			lat[i] = mono_ns() - t0;
	}
}

int main(int argc, char **argv)
{
	static double p50[NPATH][MAX_REPS], p99[NPATH][MAX_REPS];
	int n = 30000, reps = 8, slice = 0, cpu_a = 0, cpu_b = 1;
	struct chan chans[NPATH];
	struct lat_stats st;
	uint64_t *lat[NPATH];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--slice") && i + 1 < argc)
			slice = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cpus") && i + 1 < argc &&
			 sscanf(argv[++i], "%d,%d", &cpu_a, &cpu_b) == 2)
			;
		else {
			fprintf(stderr, "usage: wakepath [--n N] [--reps R] "
					"[--slice K] [--cpus A,B]\n");
			return 2;
		}
	}
	if (n < 100 || reps < 1 || reps > MAX_REPS || slice < 0) {
		fprintf(stderr, "wakepath: --n at least 100, --reps 1..%d, "
				"--slice at least 0\n", MAX_REPS);
		return 2;
	}
	if (!slice || slice > n)
		slice = n;
	pin(cpu_a);
	for (int p = 0; p < NPATH; p++) {
		int r = chan_open((enum path)p, &chans[p], cpu_b);

		lat[p] = malloc((size_t)n * sizeof(*lat[p]));
		if (r < 0 || !lat[p]) {
			fprintf(stderr, "wakepath: %s: %s\n", path_names[p],
				strerror(r < 0 ? -r : ENOMEM));
			return 1;
		}
	}
	for (int rep = 0; rep < reps; rep++) {
		/* The paths take turns, slice round trips each (the whole
		 * rep unless --slice), the first to go rotating. */
		for (int off = 0, t = 0; off < n; off += slice, t++) {
			int len = n - off < slice ? n - off : slice;

			for (int k = 0; k < NPATH; k++) {
				enum path p = (enum path)((k + t + rep) % NPATH);

				run(p, &chans[p], NULL,
				    t ? SLICE_WARMUP : WARMUP);
				run(p, &chans[p], lat[p] + off, len);
			}
		}
		for (int p = 0; p < NPATH; p++) {
			stats_compute(lat[p], (size_t)n, &st);
			p50[p][rep] = st.p50;
			p99[p][rep] = st.p99;
		}
	}
	for (int p = 0; p < NPATH; p++) {
		chan_close(&chans[p]);
		free(lat[p]);
	}
	printf("wakepath: monitor on CPU %d, stub on CPU %d; %d reps of %d "
	       "round trips, paths taking turns every %d\n", cpu_a, cpu_b,
	       reps, n, slice);
	printf("%-9s %8s %8s   %s\n", "path", "p50 us", "p99 us",
	       "p99 / futex p99, per rep: median [min .. max]");
	for (int p = 0; p < NPATH; p++) {
		double r[MAX_REPS], lo, hi;

		for (int i = 0; i < reps; i++)
			r[i] = p99[p][i] / p99[P_FUTEX][i];
		minmax_d(r, (size_t)reps, &lo, &hi);
		printf("%-9s %8.2f %8.2f   %.3f [%.3f .. %.3f]\n",
		       path_names[p], median_d(p50[p], (size_t)reps),
		       median_d(p99[p], (size_t)reps),
		       median_d(r, (size_t)reps), lo, hi);
	}
	return 0;
}
