/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch-bench: does supervising stubs from the wait itself cost anything?
 *
 * In one process run, with the same stub code and the same CPU pinning for
 * every variant, and the variants alternated over repetitions (A B C, B C A,
 * C A B, ...) because this machine is noisy:
 *
 *   latency   handshake round trips, p50 .. max, per variant, same CPU and
 *             cross CPU; ratios against futex per repetition (median and
 *             spread);
 *   syscalls  per round trip, monitor thread and stub process separately,
 *             counted by the kernel (perf raw_syscalls:sys_enter);
 *   detect    stall detection: last report -> SIGKILL sent (perf
 *             signal:signal_generate) and -> the wait returning, reaped;
 *   detect-load  stall-kill lateness past N*T, thread-wd against
 *             stubwatch: quiet, beside two CPU hogs, and with 1,000 busy
 *             stubs in the same loop;
 *   scale     1 .. 10,000 stubs in one loop (one active), 1 .. 8 vCPU loops;
 *             memory and fds per stub.
 *
 * Human table by default; --json prints one object per line; --out DIR also
 * writes DIR/results.jsonl, DIR/results.md and DIR/latency.dat (for
 * bench/latency.gp).  bench/README.md explains every number.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <linux/perf_event.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_REPS 64
#define NPIN 2
enum { PIN_SAME = 0, PIN_CROSS = 1 };
static const char *const pin_names[NPIN] = { "same", "cross" };

enum {
	PH_LATENCY = 1 << 0,
	PH_SYSCALLS = 1 << 1,
	PH_DETECT = 1 << 2,
	PH_SCALE = 1 << 3,
	PH_DETECT_LOAD = 1 << 4,
	PH_SPAWN = 1 << 5,
	PH_ALL = 0x3f,
};

static struct {
	bool quick, json, strict;
	const char *out_dir;
	int variant;   /* -1: all */
	unsigned vmask; /* --variants: 0 for all */
	size_t n;      /* round trips per run */
	int reps;
	size_t warmup;
	int pins;      /* bit PIN_SAME, bit PIN_CROSS */
	int cpu_a, cpu_b;
	unsigned phases;
	int detect_stalls;
	int detect_defaults;
	int dl_kills;  /* detect-load: stalls per variant and condition */
	uint32_t dl_busy_min_us, dl_busy_max_us; /* busy stubs' sleeps */
	size_t scale_max;
	size_t scale_n;
	int scale_reps;
	size_t loops_n;
	int loops_reps;
	size_t sc_n;
	char cmdline[512];
} o = { .variant = -1, .cpu_a = -1, .cpu_b = -1,
	/* Busy stubs sleep 2..38 ms: 1,000 of them ask ~50,000 round trips
	 * a second of one monitor, and each is silent well under N*T. */
	.dl_busy_min_us = 2000, .dl_busy_max_us = 38000 };

static int ncpus_allowed;
static int cpus_allowed[CPU_SETSIZE];

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "stubwatch-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "stubwatch-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- output: JSON lines collected, written at the end ---------------- */

static char **jlines;
static size_t njlines;

static void jsonl(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die("out of memory");
	va_end(ap);
	jlines = realloc(jlines, (njlines + 1) * sizeof(*jlines));
	if (!jlines)
		die("out of memory");
	jlines[njlines++] = s;
}

/* Human and markdown tables are built side by side. */
struct text {
	char *buf;
	size_t len;
	size_t cap;
};
static struct text human, md;

static void tprintf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int need;

	va_start(ap, fmt);
	need = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (t->len + (size_t)need + 1 > t->cap) {
		t->cap = (t->len + (size_t)need + 1) * 2;
		t->buf = realloc(t->buf, t->cap);
		if (!t->buf)
			die("out of memory");
	}
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)need;
}

/* Skips are said, in every format. */
static void skip(const char *what, const char *why)
{
	tprintf(&human, "SKIP %s: %s\n", what, why);
	tprintf(&md, "- **skipped** %s: %s\n", what, why);
	jsonl("{\"bench\":\"skip\",\"what\":\"%s\",\"reason\":\"%s\"}", what,
	      why);
}

/* ---- targets ------------------------------------------------------------ */

struct target {
	char name[96];
	char shown[128]; /* the measured value, as printed */
	bool met;
	bool ran;
};
static struct target targets[40];
static int ntargets;

static struct target *target_add(const char *name)
{
	struct target *t = &targets[ntargets++];

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	return t;
}

/* A ratio-style target: value <= limit; lo/hi its spread (NAN: none). */
static void target_le(const char *name, double value, double limit,
		      double lo, double hi)
{
	struct target *t = target_add(name);

	t->ran = !isnan(value);
	t->met = t->ran && value <= limit;
	if (isnan(lo))
		snprintf(t->shown, sizeof(t->shown), "%.3f (limit %.3f)", value,
			 limit);
	else
		snprintf(t->shown, sizeof(t->shown),
			 "%.3f, spread %.3f .. %.3f (limit %.2f)", value, lo, hi,
			 limit);
}

static void target_text(const char *name, bool met, const char *fmt, ...)
{
	struct target *t = target_add(name);
	va_list ap;

	t->ran = true;
	t->met = met;
	va_start(ap, fmt);
	vsnprintf(t->shown, sizeof(t->shown), fmt, ap);
	va_end(ap);
}

static void target_skip(const char *name, const char *why)
{
	struct target *t = target_add(name);

	snprintf(t->shown, sizeof(t->shown), "%s", why);
}

/* ---- system facts ------------------------------------------------------- */

static long read_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* kB value of `key` in a /proc "Key:   123 kB" file. */
static long proc_kb(const char *path, const char *key)
{
	FILE *f = fopen(path, "re");
	char line[256];
	size_t len = strlen(key);
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, len) == 0 && line[len] == ':') {
			v = atol(line + len + 1);
			break;
		}
	}
	fclose(f);
	return v;
}

/* ns this thread has waited on a run queue (schedstat's run_delay). */
static uint64_t thread_wait_ns(void)
{
	FILE *f = fopen("/proc/thread-self/schedstat", "re");
	unsigned long long run = 0, wait = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return wait;
}

/* ns this thread has run on a CPU (schedstat's first field). */
static uint64_t thread_run_ns(void)
{
	FILE *f = fopen("/proc/thread-self/schedstat", "re");
	unsigned long long run = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &run) != 1)
		run = 0;
	fclose(f);
	return run;
}

/* ns of CPU `cpu` stolen by the hypervisor (/proc/stat's steal column). */
static uint64_t cpu_steal_ns(int cpu)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[512], want[32];
	unsigned long long v[8] = { 0 };
	uint64_t r = 0;
	long hz = sysconf(_SC_CLK_TCK);

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "cpu%d ", cpu);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, want, strlen(want)) == 0) {
			if (sscanf(line + strlen(want),
				   "%llu %llu %llu %llu %llu %llu %llu %llu",
				   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
				   &v[6], &v[7]) == 8 && hz > 0)
				r = v[7] * (1000000000ull / (uint64_t)hz);
			break;
		}
	}
	fclose(f);
	return r;
}

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static long tasks_total(void)
{
	FILE *f = fopen("/proc/loadavg", "re");
	long run, total = -1;
	double a, b, c;

	if (!f)
		return -1;
	if (fscanf(f, "%lf %lf %lf %ld/%ld", &a, &b, &c, &run, &total) != 5)
		total = -1;
	fclose(f);
	return total;
}

/* pids.max - pids.current of our pids cgroup (v1 or v2), or LONG_MAX. */
static long pids_cgroup_room(void)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[512], path[768], *p;
	long room = __LONG_MAX__;

	if (!f)
		return room;
	while (fgets(line, sizeof(line), f)) {
		const char *base = NULL;

		line[strcspn(line, "\n")] = 0;
		if (strstr(line, ":pids:"))
			base = "/sys/fs/cgroup/pids";
		else if (strncmp(line, "0::", 3) == 0)
			base = "/sys/fs/cgroup/unified";
		if (!base || !(p = strrchr(line, ':')))
			continue;
		snprintf(path, sizeof(path), "%s%s/pids.max", base, p + 1);
		long max = read_long(path);
		snprintf(path, sizeof(path), "%s%s/pids.current", base, p + 1);
		long cur = read_long(path);
		if (max > 0 && cur >= 0 && max - cur < room)
			room = max - cur;
	}
	fclose(f);
	return room;
}

/* Make room for `fds` more descriptors. */
static int raise_nofile(long fds)
{
	struct rlimit rl;
	long want = count_fds() + fds + 64, nr_open;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if ((long)rl.rlim_cur >= want)
		return 0;
	if ((long)rl.rlim_max < want) {
		nr_open = read_long("/proc/sys/fs/nr_open");
		if (nr_open > 0 && want > nr_open)
			return -EMFILE;
		rl.rlim_max = (rlim_t)want; /* root: CAP_SYS_RESOURCE */
	}
	rl.rlim_cur = (rlim_t)want;
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

/* Can this machine hold `stubs` more processes and their fds?  NULL: yes. */
static const char *scale_room(long stubs, char *why, size_t len)
{
	long pid_max = read_long("/proc/sys/kernel/pid_max");
	long threads_max = read_long("/proc/sys/kernel/threads-max");
	long watches = read_long("/proc/sys/fs/epoll/max_user_watches");
	long total = tasks_total(), avail, room;
	int r;

	if (pid_max > 0 && total >= 0 && total + stubs + 256 > pid_max) {
		snprintf(why, len,
			 "kernel.pid_max %ld too small for %ld more tasks "
			 "(%ld running); sysctl kernel.pid_max=4194304",
			 pid_max, stubs, total);
		return why;
	}
	if (threads_max > 0 && total >= 0 && total + stubs + 256 > threads_max) {
		snprintf(why, len, "kernel.threads-max %ld too small",
			 threads_max);
		return why;
	}
	room = pids_cgroup_room();
	if (room < stubs + 64) {
		snprintf(why, len, "the pids cgroup allows only %ld more tasks",
			 room);
		return why;
	}
	if (watches > 0 && watches < 2 * stubs + 64) {
		snprintf(why, len, "fs.epoll.max_user_watches %ld too small",
			 watches);
		return why;
	}
	avail = proc_kb("/proc/meminfo", "MemAvailable");
	if (avail > 0 && avail < stubs * 256 + 512 * 1024) {
		snprintf(why, len, "only %ld MiB available", avail / 1024);
		return why;
	}
	r = raise_nofile(2 * stubs);
	if (r < 0) {
		snprintf(why, len, "cannot raise RLIMIT_NOFILE for %ld fds: %s",
			 2 * stubs, strerror(-r));
		return why;
	}
	return NULL;
}

/* ---- latency -------------------------------------------------------------- */

struct lat_series {
	bool ran;
	struct lat_stats rep[MAX_REPS];
	int nreps;
	uint64_t *pool;
	size_t npool;
	size_t pool_bytes;
	struct lat_stats agg;
};

static struct lat_series lat[V_COUNT][NPIN];
static struct pair pairs[V_COUNT];
static bool pair_ok[V_COUNT];
static bool wd_started;

static bool variant_selected(int v)
{
	if (o.vmask && !(o.vmask & (1u << v)))
		return false;
	return o.variant < 0 || o.variant == v;
}

static int stub_cpu(int pin)
{
	return pin == PIN_SAME ? o.cpu_a : o.cpu_b;
}

static void open_pairs(void)
{
	for (int v = 0; v < V_COUNT; v++) {
		const char *why;
		int r;

		if (!variant_selected(v))
			continue;
		why = variant_unavailable(v);
		if (why) {
			char what[64];

			snprintf(what, sizeof(what), "variant %s",
				 variant_names[v]);
			skip(what, why);
			continue;
		}
		if (v == V_THREAD_WD && !wd_started) {
			r = wd_thread_start(1000000000ull, 5);
			if (r < 0)
				die("watchdog thread: %s", strerror(-r));
			wd_started = true;
		}
		r = pair_open(&pairs[v], v, NULL);
		if (r < 0)
			die("%s: cannot open a stub: %s", variant_names[v],
			    strerror(-r));
		pair_ok[v] = true;
	}
}

static void close_pairs(void)
{
	for (int v = 0; v < V_COUNT; v++)
		if (pair_ok[v])
			pair_close(&pairs[v]);
	if (wd_started)
		wd_thread_stop();
}

static void agg_series(struct lat_series *s)
{
	double v[MAX_REPS];
	int k = s->nreps;

#define AGG(F)                                      \
	do {                                        \
		for (int i = 0; i < k; i++)         \
			v[i] = s->rep[i].F;         \
		s->agg.F = median_d(v, (size_t)k);  \
	} while (0)
	AGG(p50);
	AGG(p90);
	AGG(p99);
	AGG(p999);
#undef AGG
	s->agg.max = 0;
	for (int i = 0; i < k; i++)
		if (s->rep[i].max > s->agg.max)
			s->agg.max = s->rep[i].max;
	s->agg.n = s->npool;
}

static void run_latency(void)
{
	uint64_t *buf;
	size_t bytes = o.n * sizeof(uint64_t);
	int order[V_COUNT], nv = 0;

	for (int v = 0; v < V_COUNT; v++)
		if (pair_ok[v])
			order[nv++] = v;
	if (!nv)
		return;
	buf = buf_alloc(bytes);
	if (!buf)
		die("out of memory");
	for (int v = 0; v < nv; v++) {
		for (int pin = 0; pin < NPIN; pin++) {
			struct lat_series *s = &lat[order[v]][pin];

			s->pool_bytes = bytes * (size_t)o.reps;
			s->pool = buf_alloc(s->pool_bytes);
			if (!s->pool)
				die("out of memory");
		}
	}
	for (int rep = 0; rep < o.reps; rep++) {
		for (int pk = 0; pk < NPIN; pk++) {
			/* alternate the pinning order too */
			int pin = (pk + rep) % NPIN;

			if (!(o.pins & (1 << pin)))
				continue;
			pin_self(o.cpu_a);
			for (int k = 0; k < nv; k++) {
				int v = order[(k + rep) % nv];
				struct pair *p = &pairs[v];
				struct lat_series *s = &lat[v][pin];
				int r;

				r = pin_pid(p->pid, stub_cpu(pin));
				if (r < 0)
					die("pin stub: %s", strerror(-r));
				r = pair_run(p, NULL, o.warmup);
				if (r >= 0)
					r = pair_run(p, buf, o.n);
				if (r < 0)
					die("%s: round trip failed: %s",
					    variant_names[v], strerror(-r));
				memcpy(s->pool + s->npool, buf, bytes);
				s->npool += o.n;
				stats_compute(buf, o.n, &s->rep[s->nreps++]);
				s->ran = true;
			}
		}
	}
	buf_free(buf, bytes);
	for (int v = 0; v < V_COUNT; v++)
		for (int pin = 0; pin < NPIN; pin++)
			if (lat[v][pin].ran)
				agg_series(&lat[v][pin]);
}

/* Per-rep ratio a/b of a statistic, median and spread. */
static bool lat_ratio(int a, int b, int pin, bool p99, double *med,
		      double *lo, double *hi, int *nreps)
{
	struct lat_series *sa = &lat[a][pin], *sb = &lat[b][pin];
	double r[MAX_REPS];
	int k;

	if (!sa->ran || !sb->ran)
		return false;
	k = sa->nreps < sb->nreps ? sa->nreps : sb->nreps;
	for (int i = 0; i < k; i++)
		r[i] = p99 ? sa->rep[i].p99 / sb->rep[i].p99
			   : sa->rep[i].p50 / sb->rep[i].p50;
	minmax_d(r, (size_t)k, lo, hi);
	*med = median_d(r, (size_t)k);
	*nreps = k;
	return true;
}

static const struct {
	int a, b;
} ratio_pairs[] = {
	{ V_STUBWATCH, V_FUTEX },
	{ V_THREAD_WD, V_FUTEX },
	{ V_STUBWATCH, V_THREAD_WD },
	{ V_STUBWATCH_EV, V_FUTEX },
	{ V_STUBWATCH_EV, V_STUBWATCH },
	/* informational, not targets: opt-in adaptive polling */
	{ V_STUBWATCH_POLL, V_FUTEX },
	{ V_STUBWATCH_POLL, V_STUBWATCH },
};

static void report_latency(void)
{
	bool any = false;

	for (int v = 0; v < V_COUNT; v++)
		for (int pin = 0; pin < NPIN; pin++)
			any |= lat[v][pin].ran;
	if (!any)
		return;

	tprintf(&human,
		"\n== handshake round trip, us (median over %d reps of %zu; "
		"max over all) ==\n",
		o.reps, o.n);
	tprintf(&human, "%-14s %-5s %8s %7s %7s %7s %7s %8s\n", "variant",
		"cpus", "n", "p50", "p90", "p99", "p99.9", "max");
	tprintf(&md,
		"\n### Handshake round trip (us; median over %d reps of %zu "
		"round trips, max over all)\n\n",
		o.reps, o.n);
	tprintf(&md, "| variant | cpus | n | p50 | p90 | p99 | p99.9 | max |\n"
		     "|---|---|---:|---:|---:|---:|---:|---:|\n");
	for (int pin = 0; pin < NPIN; pin++) {
		for (int v = 0; v < V_COUNT; v++) {
			struct lat_series *s = &lat[v][pin];

			if (!s->ran)
				continue;
			tprintf(&human,
				"%-14s %-5s %8zu %7.2f %7.2f %7.2f %7.2f %8.1f\n",
				variant_names[v], pin_names[pin], s->agg.n,
				s->agg.p50, s->agg.p90, s->agg.p99,
				s->agg.p999, s->agg.max);
			tprintf(&md,
				"| %s | %s | %zu | %.2f | %.2f | %.2f | %.2f | "
				"%.1f |\n",
				variant_names[v], pin_names[pin], s->agg.n,
				s->agg.p50, s->agg.p90, s->agg.p99,
				s->agg.p999, s->agg.max);
			jsonl("{\"bench\":\"latency\",\"variant\":\"%s\","
			      "\"cpus\":\"%s\",\"n\":%zu,\"p50_us\":%.3f,"
			      "\"p90_us\":%.3f,\"p99_us\":%.3f,"
			      "\"p999_us\":%.3f,\"max_us\":%.3f}",
			      variant_names[v], pin_names[pin], s->agg.n,
			      s->agg.p50, s->agg.p90, s->agg.p99, s->agg.p999,
			      s->agg.max);
		}
	}

	any = false;
	for (size_t i = 0; i < sizeof(ratio_pairs) / sizeof(*ratio_pairs); i++)
		for (int pin = 0; pin < NPIN; pin++)
			any |= lat[ratio_pairs[i].a][pin].ran &&
			       lat[ratio_pairs[i].b][pin].ran;
	if (!any)
		return;
	tprintf(&human,
		"\n== ratios, same run, per rep: median [min .. max] ==\n");
	tprintf(&human, "%-26s %-5s %-22s %-22s\n", "ratio", "cpus", "p50",
		"p99");
	tprintf(&md, "\n### Ratios (per repetition; median [min .. max])\n\n"
		     "| ratio | cpus | p50 | p99 |\n|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof(ratio_pairs) / sizeof(*ratio_pairs);
	     i++) {
		int a = ratio_pairs[i].a, b = ratio_pairs[i].b;

		for (int pin = 0; pin < NPIN; pin++) {
			double m50, l50, h50, m99, l99, h99;
			char name[64];
			int k;

			if (!lat_ratio(a, b, pin, false, &m50, &l50, &h50, &k))
				continue;
			lat_ratio(a, b, pin, true, &m99, &l99, &h99, &k);
			snprintf(name, sizeof(name), "%s / %s",
				 variant_names[a], variant_names[b]);
			tprintf(&human,
				"%-26s %-5s %.3f [%.3f .. %.3f]  %.3f [%.3f "
				".. %.3f]\n",
				name, pin_names[pin], m50, l50, h50, m99, l99,
				h99);
			tprintf(&md,
				"| %s | %s | %.3f [%.3f .. %.3f] | %.3f [%.3f "
				".. %.3f] |\n",
				name, pin_names[pin], m50, l50, h50, m99, l99,
				h99);
			for (int q = 0; q < 2; q++)
				jsonl("{\"bench\":\"ratio\",\"variant\":\"%s\","
				      "\"vs\":\"%s\",\"cpus\":\"%s\","
				      "\"stat\":\"%s\",\"median\":%.4f,"
				      "\"min\":%.4f,\"max\":%.4f,\"reps\":%d}",
				      variant_names[a], variant_names[b],
				      pin_names[pin], q ? "p99" : "p50",
				      q ? m99 : m50, q ? l99 : l50,
				      q ? h99 : h50, k);
		}
	}
}

static void latency_targets(void)
{
	for (int pin = 0; pin < NPIN; pin++) {
		double m, lo, hi;
		char name[96];
		int k;

		if (!(o.pins & (1 << pin)))
			continue;
		snprintf(name, sizeof(name), "stubwatch p50 <= 1.00x futex (%s)",
			 pin_names[pin]);
		if (lat_ratio(V_STUBWATCH, V_FUTEX, pin, false, &m, &lo, &hi, &k))
			target_le(name, m, 1.00, lo, hi);
		else
			target_skip(name, "not run");
		snprintf(name, sizeof(name), "stubwatch p99 <= 1.05x futex (%s)",
			 pin_names[pin]);
		if (lat_ratio(V_STUBWATCH, V_FUTEX, pin, true, &m, &lo, &hi, &k))
			target_le(name, m, 1.05, lo, hi);
		else
			target_skip(name, "not run");
		snprintf(name, sizeof(name),
			 "stubwatch p50 <= 1.00x thread-wd (%s)", pin_names[pin]);
		if (lat_ratio(V_STUBWATCH, V_THREAD_WD, pin, false, &m, &lo, &hi,
			      &k))
			target_le(name, m, 1.00, lo, hi);
		else
			target_skip(name, "not run");
		snprintf(name, sizeof(name),
			 "stubwatch-ev p50 <= 1.10x stubwatch (%s)",
			 pin_names[pin]);
		if (lat_ratio(V_STUBWATCH_EV, V_STUBWATCH, pin, false, &m, &lo,
			      &hi, &k))
			target_le(name, m, 1.10, lo, hi);
		else
			target_skip(name, variant_unavailable(V_STUBWATCH_EV)
						  ? variant_unavailable(V_STUBWATCH_EV)
						  : "not run");
	}
}

/* ---- syscalls per round trip ---------------------------------------------- */

struct sc_result {
	bool ran;
	double monitor, stub, helper;  /* syscalls per round trip       */
	double mon_ns, stub_ns;        /* CPU time per round trip (ns)  */
	double mon_cs, stub_cs;        /* context switches per round trip */
};
static struct sc_result scres[V_COUNT][NPIN];

/* Counters of one task: syscalls, CPU time, context switches. */
enum { C_SYS, C_CPU, C_CS, NC };

static int task_counters_open(struct sc_counter *c, pid_t tid)
{
	int r = sc_open(&c[C_SYS], tid);

	if (r >= 0)
		r = sc_open_sw(&c[C_CPU], tid, PERF_COUNT_SW_TASK_CLOCK);
	if (r >= 0)
		r = sc_open_sw(&c[C_CS], tid, PERF_COUNT_SW_CONTEXT_SWITCHES);
	return r;
}

static int task_counters_enable(struct sc_counter *c)
{
	int r = 0;

	for (int i = NC - 1; i >= 0 && r >= 0; i--)
		r = sc_enable(&c[i]);
	return r;
}

static void task_counters_disable(struct sc_counter *c)
{
	for (int i = 0; i < NC; i++)
		sc_disable(&c[i]);
}

static void task_counters_close(struct sc_counter *c)
{
	for (int i = 0; i < NC; i++)
		sc_close(&c[i]);
}

static int count_syscalls(struct pair *p, int pin, struct sc_result *res)
{
	struct sc_counter mon[NC], stub[NC], help[NC];
	pid_t helper = p->v == V_THREAD_WD ? wd_thread_tid() : 0;
	double n = (double)o.sc_n;
	int r;

	for (int i = 0; i < NC; i++)
		mon[i].fd = stub[i].fd = help[i].fd = -1;
	pin_self(o.cpu_a);
	pin_pid(p->pid, stub_cpu(pin));
	r = pair_run(p, NULL, o.warmup);
	if (r < 0)
		return r;
	r = task_counters_open(mon, (pid_t)syscall(SYS_gettid));
	if (r >= 0)
		r = task_counters_open(stub, p->pid);
	if (r >= 0 && helper)
		r = task_counters_open(help, helper);
	if (r < 0)
		goto out;
	/* The monitor's syscall counter is enabled last and disabled first:
	 * the only syscall of ours it sees is that first disable ioctl. */
	if ((r = task_counters_enable(stub)) < 0 ||
	    (helper && (r = task_counters_enable(help)) < 0) ||
	    (r = task_counters_enable(mon)) < 0)
		goto out;
	r = pair_run(p, NULL, o.sc_n);
	task_counters_disable(mon);
	/* Let the stub enter the FUTEX_WAIT that ends its last round trip. */
	usleep(2000);
	task_counters_disable(stub);
	if (helper)
		task_counters_disable(help);
	if (r < 0)
		goto out;
	res->monitor = (double)(sc_read(&mon[C_SYS]) - 1) / n;
	res->stub = (double)sc_read(&stub[C_SYS]) / n;
	res->helper = helper ? (double)sc_read(&help[C_SYS]) / n : 0;
	res->mon_ns = (double)sc_read(&mon[C_CPU]) / n;
	res->stub_ns = (double)sc_read(&stub[C_CPU]) / n;
	res->mon_cs = (double)sc_read(&mon[C_CS]) / n;
	res->stub_cs = (double)sc_read(&stub[C_CS]) / n;
	res->ran = true;
out:
	task_counters_close(mon);
	task_counters_close(stub);
	task_counters_close(help);
	return r;
}

static void run_syscalls(void)
{
	const char *why;

	if (!sc_available(&why)) {
		skip("syscalls per round trip (in-process)", why);
		target_skip("stubwatch syscalls <= futex (monitor, stub)", why);
		return;
	}
	for (int pin = 0; pin < NPIN; pin++) {
		if (!(o.pins & (1 << pin)))
			continue;
		for (int v = 0; v < V_COUNT; v++) {
			int r;

			if (!pair_ok[v])
				continue;
			r = count_syscalls(&pairs[v], pin, &scres[v][pin]);
			if (r < 0)
				die("counting syscalls of %s: %s",
				    variant_names[v], strerror(-r));
		}
	}

	tprintf(&human,
		"\n== per round trip, measured over %zu round trips: syscalls "
		"(perf raw_syscalls:sys_enter), CPU time (task-clock) and "
		"context switches, per side ==\n",
		o.sc_n);
	tprintf(&human, "%-14s %-5s %8s %8s %8s | %9s %9s | %7s %7s\n",
		"variant", "cpus", "monitor", "stub", "helper", "mon_cpu_ns",
		"stub_cpu_ns", "mon_cs", "stub_cs");
	tprintf(&md,
		"\n### Syscalls per round trip (measured with perf "
		"`raw_syscalls:sys_enter`, %zu round trips)\n\n"
		"| variant | cpus | monitor | stub | helper thread | monitor "
		"CPU ns | stub CPU ns | monitor ctx switches | stub ctx "
		"switches |\n"
		"|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
		o.sc_n);
	for (int pin = 0; pin < NPIN; pin++) {
		for (int v = 0; v < V_COUNT; v++) {
			struct sc_result *s = &scres[v][pin];

			if (!s->ran)
				continue;
			tprintf(&human,
				"%-14s %-5s %8.3f %8.3f %8.4f | %9.0f %9.0f | "
				"%7.3f %7.3f\n",
				variant_names[v], pin_names[pin], s->monitor,
				s->stub, s->helper, s->mon_ns, s->stub_ns,
				s->mon_cs, s->stub_cs);
			tprintf(&md,
				"| %s | %s | %.3f | %.3f | %.4f | %.0f | %.0f | "
				"%.3f | %.3f |\n",
				variant_names[v], pin_names[pin], s->monitor,
				s->stub, s->helper, s->mon_ns, s->stub_ns,
				s->mon_cs, s->stub_cs);
			jsonl("{\"bench\":\"cost\",\"variant\":\"%s\","
			      "\"cpus\":\"%s\",\"monitor_syscalls\":%.3f,"
			      "\"stub_syscalls\":%.3f,\"helper_syscalls\":%.4f,"
			      "\"monitor_cpu_ns\":%.0f,\"stub_cpu_ns\":%.0f,"
			      "\"monitor_cs\":%.3f,\"stub_cs\":%.3f}",
			      variant_names[v], pin_names[pin], s->monitor,
			      s->stub, s->helper, s->mon_ns, s->stub_ns,
			      s->mon_cs, s->stub_cs);
		}
	}
	/* The latency JSON shape has no pinning: it carries the cross-CPU
	 * count (each side really sleeps there), or same-CPU if only that ran. */
	for (int v = 0; v < V_COUNT; v++) {
		struct sc_result *s = scres[v][PIN_CROSS].ran ? &scres[v][PIN_CROSS]
							       : &scres[v][PIN_SAME];

		if (!s->ran)
			continue;
		jsonl("{\"bench\":\"syscalls\",\"variant\":\"%s\","
		      "\"monitor\":%.3f,\"stub\":%.3f}",
		      variant_names[v], s->monitor + s->helper, s->stub);
	}
	for (int pin = 0; pin < NPIN; pin++) {
		struct sc_result *f = &scres[V_FUTEX][pin],
				 *s = &scres[V_STUBWATCH][pin];
		char name[96];

		if (!f->ran || !s->ran)
			continue;
		/* Counts are exact; 0.005 absorbs the rounding of a count
		 * over n, nothing else. */
		snprintf(name, sizeof(name),
			 "stubwatch syscalls <= futex, monitor (%s)",
			 pin_names[pin]);
		target_le(name, s->monitor, f->monitor + 0.005, NAN, NAN);
		snprintf(name, sizeof(name),
			 "stubwatch syscalls <= futex, stub (%s)",
			 pin_names[pin]);
		target_le(name, s->stub, f->stub + 0.005, NAN, NAN);
	}
}

/* ---- stall detection ------------------------------------------------------ */

struct detect_sample {
	double detect_ms;   /* last report -> SIGKILL sent       */
	double reap_us;     /* SIGKILL sent -> wait returned     */
	double total_ms;    /* last report -> wait returned      */
	bool stall_reason;
	int sigalrm_blocked;
	uint32_t stall_ticks;
	uint64_t silent_ns;
	double wait_ms;     /* the monitor thread on a run queue, meanwhile */
	double steal_ms;    /* its CPU stolen by the hypervisor, meanwhile  */
};

/* Fallback "sent" clock: a thread blocked in poll() on the stub's pidfd
 * sees it die.  That is later than "sent" by the kernel's exit work. */
struct death_watch {
	pthread_t th;
	int pidfd;
	uint64_t t;
};

static void *death_watch_main(void *arg)
{
	struct death_watch *w = arg;
	struct pollfd pfd = { .fd = w->pidfd, .events = POLLIN };

	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	w->t = now_ns();
	return NULL;
}

struct detect_run {
	/* in */
	uint64_t tick_ns;
	uint32_t stall_ticks;
	int stalls;
	int mon_cpu, stub_cpu;
	enum stub_cmd first_cmd; /* then alternate spin/sleep */
	bool alternate;
	unsigned delay_ms;       /* before starting: staggers parallel runs */
	/* out */
	struct detect_sample *s;
	int n;
	int err;
	const char *clock; /* what "sent" is */
};

static void *detect_thread(void *arg)
{
	struct detect_run *d = arg;
	struct sw_loop_opts lo = { .size = sizeof(lo) };
	struct kill_clock *kc = NULL;
	struct sw_loop *loop = NULL;
	int r;

	lo.tick_ns = d->tick_ns;
	lo.stall_ticks = d->stall_ticks;
	pin_self(d->mon_cpu);
	if (d->delay_ms)
		usleep(d->delay_ms * 1000u);
	r = sw_loop_new(&lo, &loop);
	if (r < 0) {
		d->err = r;
		return NULL;
	}
	if (kill_clock_open(&kc, (pid_t)syscall(SYS_gettid)) < 0)
		kc = NULL;
	d->clock = kc ? "SIGKILL sent (perf signal:signal_generate)"
		      : "stub death seen on its pidfd (upper bound of sent)";
	for (int i = 0; i < d->stalls; i++) {
		struct detect_sample *s = &d->s[d->n];
		struct death_watch w = { .pidfd = -1 };
		enum stub_cmd cmd = d->first_cmd;
		struct sw_event ev;
		struct pair p;
		uint64_t t_last, t_ret, t_kill, wait0, steal0;

		if (d->alternate && i % 2)
			cmd = cmd == CMD_STALL_SPIN ? CMD_STALL_SLEEP
						    : CMD_STALL_SPIN;
		r = pair_open_in(&p, V_STUBWATCH, loop, false);
		if (r < 0)
			break;
		p.loop = NULL;
		pin_pid(p.pid, d->stub_cpu);
		r = pair_run(&p, NULL, 20);
		if (r < 0) {
			pair_close(&p);
			break;
		}
		if (!kc) {
			w.pidfd = (int)syscall(SYS_pidfd_open, p.pid, 0);
			if (w.pidfd >= 0 &&
			    pthread_create(&w.th, NULL, death_watch_main, &w)) {
				close(w.pidfd);
				w.pidfd = -1;
			}
		}
		if (kc)
			kill_clock_take(kc, 0); /* drop old samples */
		/* pair_run returned right after the last report was seen. */
		wait0 = thread_wait_ns();
		steal0 = cpu_steal_ns(d->mon_cpu);
		t_last = now_ns();
		r = pair_stall(&p, cmd, &ev);
		t_ret = now_ns();
		s->wait_ms = (double)(thread_wait_ns() - wait0) / 1e6;
		s->steal_ms = (double)(cpu_steal_ns(d->mon_cpu) - steal0) / 1e6;
		if (kc) {
			t_kill = kill_clock_take(kc, p.pid);
		} else if (w.pidfd >= 0) {
			pthread_join(w.th, NULL);
			close(w.pidfd);
			t_kill = w.t;
		} else {
			t_kill = 0;
		}
		if (r != SW_EV_KILL) {
			pair_close(&p);
			r = r < 0 ? r : -EPROTO;
			break;
		}
		if (!t_kill)
			t_kill = t_ret; /* unknown: count it all as detection */
		s->detect_ms = (double)(t_kill - t_last) / 1e6;
		s->reap_us = t_ret > t_kill ? (double)(t_ret - t_kill) / 1e3 : 0;
		s->total_ms = (double)(t_ret - t_last) / 1e6;
		s->stall_reason = ev.kill.reason == SW_KILL_STALL;
		s->sigalrm_blocked = ev.kill.sigalrm_blocked;
		s->stall_ticks = ev.kill.stall_ticks;
		s->silent_ns = ev.kill.silent_ns;
		d->n++;
		pair_close(&p);
		r = 0;
	}
	d->err = r < 0 ? r : 0;
	kill_clock_close(kc);
	sw_loop_free(loop);
	return NULL;
}


struct detect_result {
	bool ran;
	uint64_t tick_ns;
	uint32_t stall_ticks;
	int n;
	double min_ms, p50_ms, max_ms;
	double reap_p50_us, reap_max_us;
	double total_p50_ms, total_max_ms;
	int stall_kills;
	int outside; /* detections outside [N*T, (N+1)*T] */
	int late_kept_off; /* late ones whose monitor waited for its CPU as
			      long as they were late */
	double late_wait_ms, late_steal_ms; /* summed over the late ones */
	const char *clock;
};
static struct detect_result detres[2];
static int ndetres;

static void detect_summarise(struct detect_run *runs, int nruns,
			     struct detect_result *res)
{
	double det[256], reap[256], tot[256];
	int n = 0;

	memset(res, 0, sizeof(*res));
	res->tick_ns = runs[0].tick_ns;
	res->stall_ticks = runs[0].stall_ticks;
	res->clock = runs[0].clock;
	for (int i = 0; i < nruns; i++) {
		for (int j = 0; j < runs[i].n && n < 256; j++, n++) {
			struct detect_sample *s = &runs[i].s[j];

			double t_ms = (double)runs[i].tick_ns / 1e6;
			double hi = t_ms * (runs[i].stall_ticks + 1);

			res->outside += s->detect_ms < t_ms * runs[i].stall_ticks ||
					s->detect_ms > hi;
			if (s->detect_ms > hi) {
				res->late_wait_ms += s->wait_ms;
				res->late_steal_ms += s->steal_ms;
				res->late_kept_off += s->wait_ms + s->steal_ms >=
						      s->detect_ms - hi;
			}
			det[n] = s->detect_ms;
			reap[n] = s->reap_us;
			tot[n] = s->total_ms;
			res->stall_kills += s->stall_reason;
		}
	}
	res->n = n;
	res->ran = n > 0;
	res->min_ms = pct_d(det, (size_t)n, 0);
	res->p50_ms = pct_d(det, (size_t)n, 0.5);
	res->max_ms = pct_d(det, (size_t)n, 1);
	res->reap_p50_us = pct_d(reap, (size_t)n, 0.5);
	res->reap_max_us = pct_d(reap, (size_t)n, 1);
	res->total_p50_ms = pct_d(tot, (size_t)n, 0.5);
	res->total_max_ms = pct_d(tot, (size_t)n, 1);
}

static void run_detect(void)
{
	struct detect_run runs[8];
	pthread_t th[8];
	int k;

	if (o.cpu_b < 0) {
		skip("detect", "needs a second CPU for the stalled stub");
		return;
	}
	/* Short ticks, many stalls, alternating a spinning and a sleeping
	 * stub, one at a time, from one monitor thread. */
	memset(&runs[0], 0, sizeof(runs[0]));
	runs[0] = (struct detect_run){
		.tick_ns = 10000000ull, .stall_ticks = 5,
		.stalls = o.detect_stalls, .mon_cpu = o.cpu_a,
		.stub_cpu = o.cpu_b, .first_cmd = CMD_STALL_SPIN,
		.alternate = true,
	};
	runs[0].s = calloc((size_t)o.detect_stalls, sizeof(*runs[0].s));
	if (!runs[0].s)
		die("out of memory");
	if (pthread_create(&th[0], NULL, detect_thread, &runs[0]))
		die("pthread_create");
	pthread_join(th[0], NULL);
	if (runs[0].err < 0)
		die("detect (T = 10 ms): %s", strerror(-runs[0].err));
	detect_summarise(runs, 1, &detres[ndetres++]);
	free(runs[0].s);

	if (o.detect_defaults <= 0)
		return;
	/* The defaults (T = 1 s, N = 5): a few stalls in parallel, one per
	 * monitor thread and loop, so that they cost about one stall's time;
	 * started 500 ms apart so that the kills do not contend. */
	k = o.detect_defaults > 8 ? 8 : o.detect_defaults;
	for (int i = 0; i < k; i++) {
		runs[i] = (struct detect_run){
			.tick_ns = 1000000000ull, .stall_ticks = 5, .stalls = 1,
			.mon_cpu = o.cpu_a, .stub_cpu = o.cpu_b,
			.first_cmd = i == 0 ? CMD_STALL_SPIN : CMD_STALL_SLEEP,
			.delay_ms = 500u * (unsigned)i,
		};
		runs[i].s = calloc(1, sizeof(*runs[i].s));
		if (!runs[i].s ||
		    pthread_create(&th[i], NULL, detect_thread, &runs[i]))
			die("detect threads");
	}
	for (int i = 0; i < k; i++) {
		pthread_join(th[i], NULL);
		if (runs[i].err < 0)
			die("detect (defaults): %s", strerror(-runs[i].err));
	}
	detect_summarise(runs, k, &detres[ndetres++]);
	for (int i = 0; i < k; i++)
		free(runs[i].s);
}

static void report_detect(void)
{
	if (!ndetres)
		return;
	tprintf(&human,
		"\n== stall detection: last report -> SIGKILL sent (ms); "
		"SIGKILL sent -> wait returned, reaped (us) ==\n");
	tprintf(&human, "%7s %3s %6s %8s %8s %8s %12s %12s %10s\n", "tick_ms",
		"N", "stalls", "min_ms", "p50_ms", "max_ms", "bound_ms",
		"reap_p50_us", "reap_max_us");
	tprintf(&md,
		"\n### Stall detection (last report to SIGKILL sent, ms; "
		"SIGKILL sent to the wait returning with the stub reaped, "
		"us)\n\n"
		"| tick T | N | stalls | min | p50 | max | bound [N·T, "
		"(N+1)·T] | reap p50 | reap max |\n"
		"|---:|---:|---:|---:|---:|---:|---|---:|---:|\n");
	for (int i = 0; i < ndetres; i++) {
		struct detect_result *d = &detres[i];
		double t_ms = (double)d->tick_ns / 1e6;
		double lo = t_ms * d->stall_ticks, hi = t_ms * (d->stall_ticks + 1);
		char name[96];

		tprintf(&human,
			"%7.0f %3u %6d %8.2f %8.2f %8.2f %5.0f..%-6.0f %12.1f "
			"%10.1f\n",
			t_ms, d->stall_ticks, d->n, d->min_ms, d->p50_ms,
			d->max_ms, lo, hi, d->reap_p50_us, d->reap_max_us);
		tprintf(&md,
			"| %.0f ms | %u | %d | %.2f | %.2f | %.2f | [%.0f, %.0f] "
			"| %.1f us | %.1f us |\n",
			t_ms, d->stall_ticks, d->n, d->min_ms, d->p50_ms,
			d->max_ms, lo, hi, d->reap_p50_us, d->reap_max_us);
		jsonl("{\"bench\":\"detect\",\"tick_ms\":%.0f,"
		      "\"stall_ticks\":%u,\"n\":%d,\"min_ms\":%.3f,"
		      "\"p50_ms\":%.3f,\"max_ms\":%.3f,\"reap_us_p50\":%.1f}",
		      t_ms, d->stall_ticks, d->n, d->min_ms, d->p50_ms,
		      d->max_ms, d->reap_p50_us);
		snprintf(name, sizeof(name),
			 "detection in [N*T, (N+1)*T], T = %.0f ms, N = %u", t_ms,
			 d->stall_ticks);
		target_text(name,
			    d->min_ms >= lo && d->max_ms <= hi &&
				    d->stall_kills == d->n,
			    "%.2f .. %.2f ms, p50 %.2f, %d/%d outside [%.0f, %.0f], "
			    "%d/%d killed as stalls",
			    d->min_ms, d->max_ms, d->p50_ms, d->outside, d->n, lo,
			    hi, d->stall_kills, d->n);
		if (d->max_ms > hi) {
			/* The watchdog counts timer reads: a monitor kept off
			 * its CPU reads late, and kills late by as much. */
			tprintf(&human,
				"        late ones: monitor thread on a run queue "
				"%.2f ms, its CPU stolen %.2f ms (sums); %d of "
				"them waited at least as long as they were late\n",
				d->late_wait_ms, d->late_steal_ms,
				d->late_kept_off);
			tprintf(&md,
				"\nT = %.0f ms: over the stalls detected late, the "
				"monitor thread waited %.2f ms on a run queue and "
				"its CPU was stolen %.2f ms (sums); %d of them "
				"waited at least as long as they were late.\n",
				t_ms, d->late_wait_ms, d->late_steal_ms,
				d->late_kept_off);
		}
		snprintf(name, sizeof(name), "reap p50 < 1 ms, T = %.0f ms",
			 t_ms);
		target_text(name, d->reap_p50_us < 1000,
			    "%.1f us (max %.1f us)", d->reap_p50_us,
			    d->reap_max_us);
	}
	tprintf(&human, "(\"sent\" is %s; detection counts from the moment "
			"the monitor saw the last report)\n",
		detres[0].clock);
	tprintf(&md, "\n\"SIGKILL sent\" is %s; detection counts from the "
		     "moment the monitor saw the stub's last report.\n",
		detres[0].clock);
}

/* ---- stall-kill lateness under load ---------------------------------------- */

/*
 * How late past N*T does a silent stub die when the machine is quiet, beside
 * CPU hogs, and when the monitor is busy with 1,000 other stubs?  thread-wd
 * (a helper thread on its own timerfd) against stubwatch (the loop's own
 * timer), one stalled stub at a time.  Lateness = the SIGKILL's clock -
 * (the clock right after the resume returned + N*T).
 */
#define DL_TICK_NS      20000000ull /* T */
#define DL_STALL_TICKS  5u          /* N */
#define DL_HOGS         2
#define DL_WARMUP       5           /* round trips before each stall */
#define DL_RETRIES      5           /* stubs killed before their stall */
/* thread-wd with busy stubs: the loop only multiplexes their reports; its
 * own watchdog is off (a period of 125 s), the helper thread is the one. */
#define DL_MUX_TICK_NS  1000000000000ull

enum { DL_QUIET = 0, DL_HOGGED, DL_BUSY, DL_NCOND };
static const char *const dl_cond_names[DL_NCOND] = { "quiet", "2 CPU hogs",
						     "1000 busy" };
static const char *const dl_cond_keys[DL_NCOND] = { "quiet", "cpu-hogs",
						    "busy-stubs" };
enum { DL_TW = 0, DL_SW, DL_NV };
static const int dl_variant[DL_NV] = { V_THREAD_WD, V_STUBWATCH };

struct dl_kill {
	double late_ms;       /* killed - (resumed + N*T)                    */
	double mon_late_ms;   /* stubwatch: sw_kill_info.monitor_late_ns     */
	double starved_ms;    /* stubwatch: sw_kill_info.starved_ns          */
	double net_ms;        /* late_ms less starved_ms (thread-wd: late_ms) */
	double over_ms;       /* stubwatch: past N*T + 2*P + mon_late + starved */
	double early_ms;      /* before N*T, counted from before the resume  */
};

struct dl_cell;

struct dl_busy {
	struct pair p;
	struct dl_cell *cell;
	bool watched; /* thread-wd: its helper watches it */
};

struct dl_cell {
	bool ran;
	int v, cond;
	struct sw_loop *loop;
	struct dl_busy *busy;     /* DL_BUSY_STUBS of them, or NULL */
	struct pair *probes;      /* the stubs to stall, spawned ahead */
	int nprobes, next_probe;
	uint64_t busy_reports;    /* reports served while the kills ran */
	/* False kills: stubs killed that were not stalled (busy ones, and
	 * stalled ones before their stall); and for stubwatch's, what their
	 * sw_kill_info said. */
	int false_kills;
	double fk_silent_max, fk_late_max, fk_starved_max;
	int fk_info;              /* those that came with kill info      */
	int fk_runnable_idle;     /* state R, ran 0 ns in its stall window */
	uint64_t t0, t1;          /* the kills' span                     */
	struct dl_kill *k;
	int n;
	struct sw_loop_stats st;  /* stubwatch: the loop, over the stalls */
	uint64_t helper_late_ns;  /* thread-wd: the helper's timer, same  */
	double load;              /* 1-minute load average at the start  */
	uint64_t run_ns, span_ns; /* the monitor thread's CPU time, and
				     the time, over this cell's stalls    */
	double mon_cpu;           /* run_ns / span_ns                    */
	double p50, p99, max, netmax, ml50, mlmax, st50, stmax;
	int outside;              /* stubwatch kills outside the bound   */
};
static struct dl_cell dlc[DL_NV][DL_NCOND];
static char dl_skipped[DL_NCOND][200];
static pid_t dl_hog_pids[DL_HOGS];

static double loadavg1(void)
{
	FILE *f = fopen("/proc/loadavg", "re");
	double a = NAN;

	if (!f)
		return NAN;
	if (fscanf(f, "%lf", &a) != 1)
		a = NAN;
	fclose(f);
	return a;
}

static void dl_hogs_start(void)
{
	for (int i = 0; i < DL_HOGS; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			/* Spins only: no libc state after fork() from a
			 * threaded process. */
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			prctl(PR_SET_NAME, "sw-bench-hog", 0, 0, 0);
			for (;;)
				__asm__ volatile("" ::: "memory");
		}
		dl_hog_pids[i] = pid;
	}
	usleep(100000); /* let the scheduler spread them */
}

static void dl_hogs_stop(void)
{
	for (int i = 0; i < DL_HOGS; i++) {
		if (dl_hog_pids[i] <= 0)
			continue;
		kill(dl_hog_pids[i], SIGKILL);
		while (waitpid(dl_hog_pids[i], NULL, 0) < 0 && errno == EINTR)
			;
		dl_hog_pids[i] = 0;
	}
}

static void dl_false_kill(struct dl_cell *c, const struct sw_event *ev)
{
	const struct sw_kill_info *k;

	c->false_kills++;
	if (!ev || ev->type != SW_EV_KILL)
		return;
	k = &ev->kill;
	c->fk_info++;
	if ((double)k->silent_ns / 1e6 > c->fk_silent_max)
		c->fk_silent_max = (double)k->silent_ns / 1e6;
	if ((double)k->monitor_late_ns / 1e6 > c->fk_late_max)
		c->fk_late_max = (double)k->monitor_late_ns / 1e6;
	if ((double)k->starved_ns / 1e6 > c->fk_starved_max)
		c->fk_starved_max = (double)k->starved_ns / 1e6;
	c->fk_runnable_idle += k->state == 'R' && k->stall_window_ns &&
			       !k->stall_run_ns;
}

/* A busy stub reported: serve it (a seq bump is thread-wd's progress) and
 * resume it at once. */
static int dl_busy_event(struct sw_stub *stub, const struct sw_event *ev,
			 void *userdata)
{
	struct dl_busy *b = userdata;

	if (ev->type != SW_EV_REPORT) {
		dl_false_kill(b->cell, ev);
		if (b->p.wd_slot >= 0)
			pair_wd_watch(&b->p, false);
		return 0;
	}
	b->cell->busy_reports++;
	if (b->p.wd_slot >= 0) {
		/* Watched from its first report served on: the thousand
		 * resumed at once all report at once, and the monitor's
		 * first pass over them is the set-up, not the load. */
		if (!b->watched)
			pair_wd_watch(&b->p, true);
		b->watched = true;
		pair_wd_progress(&b->p);
	}
	return sw_stub_resume(stub);
}

/* A stub in the cell's loop.  One that cannot make its first report
 * within the stall limit is killed (-EPROTO): try again, a few times. */
static int dl_spawn(struct dl_cell *c, struct pair *p, enum variant v)
{
	int r, tries = 0;

	while ((r = pair_open_in(p, v, c->loop, false)) == -EPROTO &&
	       ++tries < DL_RETRIES)
		;
	return r;
}

/* Before the stalls, so that no spawn keeps the monitor from serving the
 * busy stubs while they run. */
static int dl_probes_open(struct dl_cell *c)
{
	bool futex = c->v == DL_TW && c->cond != DL_BUSY;
	int r;

	c->probes = calloc((size_t)o.dl_kills, sizeof(*c->probes));
	if (!c->probes)
		return -ENOMEM;
	for (int i = 0; i < o.dl_kills; i++) {
		r = dl_spawn(c, &c->probes[i],
			     futex ? V_THREAD_WD : V_STUBWATCH);
		if (r < 0)
			return r;
		c->nprobes++;
	}
	return 0;
}

/* All spawned first, then all set going: a spawn waits for the new stub's
 * first report, which is slow beside a thousand busy stubs. */
static int dl_busy_open(struct dl_cell *c)
{
	int r;

	c->busy = calloc(DL_BUSY_STUBS, sizeof(*c->busy));
	if (!c->busy)
		return -ENOMEM;
	for (size_t i = 0; i < DL_BUSY_STUBS; i++) {
		struct dl_busy *b = &c->busy[i];

		/* The eventfd report: their monitor multiplexes them. */
		r = dl_spawn(c, &b->p, V_STUBWATCH);
		if (r < 0)
			return r;
		b->cell = c;
		if (c->v == DL_TW && (r = pair_wd_slot(&b->p)) < 0)
			return r;
	}
	for (size_t i = 0; i < DL_BUSY_STUBS; i++) {
		struct dl_busy *b = &c->busy[i];

		b->p.pl->busy_min_us = o.dl_busy_min_us;
		b->p.pl->busy_span_us = o.dl_busy_max_us - o.dl_busy_min_us;
		b->p.pl->cmd = CMD_BUSY;
		sw_stub_set_callback(b->p.stub, dl_busy_event, b);
		r = sw_stub_resume(b->p.stub);
		if (r < 0)
			return r;
	}
	return 0;
}

static void dl_close(struct dl_cell *c)
{
	for (size_t i = 0; c->busy && i < DL_BUSY_STUBS; i++)
		if (c->busy[i].p.stub)
			pair_wd_release(&c->busy[i].p);
	/* Freeing the loop kills, reaps and frees the busy stubs and the
	 * probes not used. */
	c->loop = sw_loop_free(c->loop);
	free(c->busy);
	c->busy = NULL;
	free(c->probes);
	c->probes = NULL;
}

static int dl_open(struct dl_cell *c, int vi, int cond)
{
	struct sw_loop_opts lo = SW_LOOP_OPTS_INIT;
	int r;

	c->v = vi;
	c->cond = cond;
	c->load = loadavg1();
	c->k = calloc((size_t)o.dl_kills, sizeof(*c->k));
	if (!c->k)
		return -ENOMEM;
	if (vi == DL_SW) {
		lo.tick_ns = DL_TICK_NS; /* timer_div: the default, 8 */
		lo.stall_ticks = DL_STALL_TICKS;
	} else if (cond == DL_BUSY) {
		lo.tick_ns = DL_MUX_TICK_NS;
	}
	/* thread-wd otherwise: the loop only spawns its stubs; they never
	 * are in flight in it after their first report. */
	r = sw_loop_new(&lo, &c->loop);
	if (r >= 0)
		r = dl_probes_open(c);
	if (r >= 0 && cond == DL_BUSY)
		r = dl_busy_open(c);
	return r;
}

static void dl_begin(struct dl_cell *c)
{
	c->busy_reports = 0;
	c->false_kills = c->fk_info = c->fk_runnable_idle = 0;
	c->fk_silent_max = c->fk_late_max = c->fk_starved_max = 0;
	c->t0 = now_ns();
}

static void dl_end(struct dl_cell *c)
{
	c->t1 = now_ns();
	c->mon_cpu = c->span_ns ? (double)c->run_ns / (double)c->span_ns : 0;
	c->ran = c->n > 0;
}

/*
 * The timer's lateness is taken over each stall, from its resume to its
 * kill: the reads the bound depends on.  Over a whole cell it would also
 * count the time a loop sat unread while the other variant's stall ran.
 */
static void dl_timer_reset(struct dl_cell *c)
{
	struct sw_loop_stats st = { .size = sizeof(st) };

	if (c->v == DL_SW)
		sw_loop_get_stats(c->loop, &st, 1);
	else
		wd_thread_max_late(true);
}

static void dl_timer_take(struct dl_cell *c)
{
	struct sw_loop_stats st = { .size = sizeof(st) };
	uint64_t late;

	if (c->v == DL_TW) {
		late = wd_thread_max_late(false);
		if (late > c->helper_late_ns)
			c->helper_late_ns = late;
		return;
	}
	sw_loop_get_stats(c->loop, &st, 0);
	if (st.max_late_ns > c->st.max_late_ns)
		c->st.max_late_ns = st.max_late_ns;
	if (st.max_gap_ns > c->st.max_gap_ns)
		c->st.max_gap_ns = st.max_gap_ns;
}

static double ns_diff_ms(uint64_t a, uint64_t b)
{
	return ((double)(int64_t)(a - b)) / 1e6;
}

/* One stalled stub of the cell: spawned ahead (or now, once those are
 * used up), warmed up, resumed with a command to sleep (silent and not
 * runnable: no starvation credit applies), killed.  Returns 0, 1 if it
 * was killed before its stall, or -errno. */
static int dl_kill_one(struct dl_cell *c)
{
	const uint64_t nt = DL_TICK_NS * DL_STALL_TICKS;
	struct dl_kill *k = &c->k[c->n];
	bool futex = c->v == DL_TW && c->cond != DL_BUSY;
	uint64_t before = 0, resumed = 0, killed = 0;
	struct sw_event ev;
	struct pair p;
	int r;

	if (c->next_probe < c->nprobes) {
		p = c->probes[c->next_probe++];
	} else {
		r = pair_open_in(&p, futex ? V_THREAD_WD : V_STUBWATCH,
				 c->loop, false);
		if (r == -EPROTO) { /* killed before its first report */
			dl_false_kill(c, NULL);
			return 1;
		}
		if (r < 0)
			return r;
	}
	if (c->v == DL_TW)
		r = pair_wd_slot(&p);
	if (r >= 0)
		r = pair_run(&p, NULL, DL_WARMUP);
	if (r == -EPROTO || r == -EOWNERDEAD) { /* killed while warming up */
		dl_false_kill(c, NULL);
		r = 1;
	}
	if (r != 0)
		goto out;
	memset(&ev, 0, sizeof(ev));
	dl_timer_reset(c);
	if (futex) {
		before = now_ns();
		r = pair_stall_wd(&p, CMD_STALL_SLEEP, &resumed);
		killed = pair_wd_killed_at(&p);
		goto got;
	}
	p.pl->cmd = CMD_STALL_SLEEP;
	if (c->v == DL_TW)
		pair_wd_watch(&p, true);
	before = now_ns();
	r = sw_stub_resume(p.stub);
	resumed = now_ns();
	if (r >= 0)
		r = sw_stub_wait(p.stub, &ev);
	if (c->v == DL_TW) {
		pair_wd_watch(&p, false);
		killed = pair_wd_killed_at(&p);
		if (r >= 0)
			r = r == SW_EV_EXIT && killed ? 0 : -EPROTO;
	} else {
		killed = ev.kill.killed_at_ns;
		if (r >= 0)
			r = r == SW_EV_KILL && ev.kill.reason == SW_KILL_STALL
				    ? 0
				    : -EPROTO;
	}
got:
	dl_timer_take(c);
	if (r < 0)
		goto out;
	k->late_ms = ns_diff_ms(killed, resumed + nt);
	k->net_ms = k->late_ms;
	k->early_ms = ns_diff_ms(before + nt, killed);
	if (c->v == DL_SW) {
		/* watchdog.h's bound: the first read after the resume comes
		 * within a period of it, the first counted expiration a
		 * period later; each of the two reads may be late. */
		uint64_t bound = nt + 2 * (DL_TICK_NS / SW_TIMER_DIV_DEFAULT) +
				 ev.kill.monitor_late_ns + ev.kill.starved_ns;

		k->mon_late_ms = (double)ev.kill.monitor_late_ns / 1e6;
		k->starved_ms = (double)ev.kill.starved_ns / 1e6;
		k->net_ms = k->late_ms - k->starved_ms;
		k->over_ms = ns_diff_ms(killed, resumed + bound);
	}
	c->n++;
out:
	pair_close(&p);
	return r;
}

static void dl_summarise(struct dl_cell *c)
{
	double *v = calloc((size_t)c->n + 1, sizeof(*v));

	if (!v)
		die("out of memory");
#define DL_COL(F)                                    \
	do {                                         \
		for (int i = 0; i < c->n; i++)       \
			v[i] = c->k[i].F;            \
	} while (0)
	DL_COL(late_ms);
	c->p50 = pct_d(v, (size_t)c->n, 0.50);
	c->p99 = pct_d(v, (size_t)c->n, 0.99);
	c->max = pct_d(v, (size_t)c->n, 1);
	DL_COL(net_ms);
	c->netmax = pct_d(v, (size_t)c->n, 1);
	DL_COL(mon_late_ms);
	c->ml50 = pct_d(v, (size_t)c->n, 0.50);
	c->mlmax = pct_d(v, (size_t)c->n, 1);
	DL_COL(starved_ms);
	c->st50 = pct_d(v, (size_t)c->n, 0.50);
	c->stmax = pct_d(v, (size_t)c->n, 1);
#undef DL_COL
	free(v);
	for (int i = 0; i < c->n && c->v == DL_SW; i++)
		c->outside += c->k[i].over_ms > 0 || c->k[i].early_ms > 0;
}

static void dl_run_kills(struct dl_cell **cells, int ncells)
{
	for (int i = 0; i < ncells; i++)
		dl_begin(cells[i]);
	for (int j = 0; j < o.dl_kills; j++) {
		for (int i = 0; i < ncells; i++) {
			/* Alternate which variant goes first. */
			struct dl_cell *c = cells[(i + j) % ncells];
			uint64_t run = thread_run_ns(), t = now_ns();
			int r, tries = 0;

			while ((r = dl_kill_one(c)) == 1 && ++tries < DL_RETRIES)
				;
			c->span_ns += now_ns() - t;
			c->run_ns += thread_run_ns() - run;
			if (r == 1)
				die("detect-load %s %s: %d stubs in a row killed "
				    "before their stall (machine overloaded?)",
				    variant_names[dl_variant[c->v]],
				    dl_cond_names[c->cond], DL_RETRIES);
			if (r < 0)
				die("detect-load %s %s: %s",
				    variant_names[dl_variant[c->v]],
				    dl_cond_names[c->cond], strerror(-r));
		}
	}
	for (int i = 0; i < ncells; i++)
		dl_end(cells[i]);
}

static void *dl_thread(void *arg)
{
	cpu_set_t all;
	int r;

	(void)arg;
	/* Nothing pinned: this thread, the helper thread and every stub it
	 * spawns inherit all usable CPUs, as the hogs do. */
	CPU_ZERO(&all);
	for (int i = 0; i < ncpus_allowed; i++)
		CPU_SET(cpus_allowed[i], &all);
	sched_setaffinity(0, sizeof(all), &all);
	wd_thread_stop();
	r = wd_thread_start(DL_TICK_NS, DL_STALL_TICKS);
	if (r < 0)
		die("watchdog thread: %s", strerror(-r));
	for (int cond = 0; cond < DL_NCOND; cond++) {
		if (cond == DL_BUSY &&
		    scale_room(DL_BUSY_STUBS + 16, dl_skipped[cond],
			       sizeof(dl_skipped[cond])))
			continue;
		if (cond == DL_HOGGED)
			dl_hogs_start();
		if (cond != DL_BUSY) {
			/* Both variants side by side, stalls alternated. */
			struct dl_cell *cells[DL_NV];

			for (int v = 0; v < DL_NV; v++) {
				cells[v] = &dlc[v][cond];
				r = dl_open(cells[v], v, cond);
				if (r < 0)
					die("detect-load %s: %s",
					    dl_cond_names[cond], strerror(-r));
			}
			dl_run_kills(cells, DL_NV);
			for (int v = 0; v < DL_NV; v++)
				dl_close(cells[v]);
		} else {
			/* One variant's busy stubs at a time. */
			for (int v = 0; v < DL_NV; v++) {
				struct dl_cell *c = &dlc[v][cond];
				uint64_t t = now_ns();

				r = dl_open(c, v, cond);
				note("detect-load: %d busy stubs for %s in %.1f s",
				     DL_BUSY_STUBS, variant_names[dl_variant[v]],
				     (double)(now_ns() - t) / 1e9);
				if (r < 0)
					die("detect-load %s %s: %s",
					    variant_names[dl_variant[v]],
					    dl_cond_names[cond], strerror(-r));
				dl_run_kills(&c, 1);
				dl_close(c);
			}
		}
		if (cond == DL_HOGGED)
			dl_hogs_stop();
		for (int v = 0; v < DL_NV; v++)
			dl_summarise(&dlc[v][cond]);
	}
	wd_thread_stop();
	return NULL;
}

static void run_detect_load(void)
{
	pthread_t th;

	if (pthread_create(&th, NULL, dl_thread, NULL))
		die("pthread_create");
	pthread_join(th, NULL);
	for (int cond = 0; cond < DL_NCOND; cond++) {
		char what[96];

		if (!dl_skipped[cond][0])
			continue;
		snprintf(what, sizeof(what), "detect-load with %d busy stubs",
			 DL_BUSY_STUBS);
		skip(what, dl_skipped[cond]);
	}
}

/* "-" for a figure the variant does not have. */
static const char *dl_fmt(char *buf, size_t len, bool have, double v)
{
	if (!have || isnan(v))
		return "-";
	snprintf(buf, len, "%.2f", v);
	return buf;
}

static void report_detect_load(void)
{
	const double t_ms = (double)DL_TICK_NS / 1e6;
	const double p_ms = t_ms / SW_TIMER_DIV_DEFAULT;
	bool any = false;

	for (int v = 0; v < DL_NV; v++)
		for (int cond = 0; cond < DL_NCOND; cond++)
			any |= dlc[v][cond].ran;
	if (!any)
		return;
	tprintf(&human,
		"\n== stall-kill lateness under load: SIGKILL - (resume + N*T), "
		"ms; T = %.0f ms, N = %u, stubwatch timer every T/%u; the "
		"stalled stub sleeps ==\n",
		t_ms, DL_STALL_TICKS, SW_TIMER_DIV_DEFAULT);
	tprintf(&human,
		"%-9s %-10s %5s %7s %7s %7s %7s | %8s %7s | %8s %7s | %7s %7s | "
		"%6s | %10s %5s | %4s | %5s\n",
		"variant", "condition", "kills", "p50", "p99", "max", "netmax",
		"tmr_late", "tmr_gap", "mlate50", "mlatemx", "starv50",
		"starvmx", "bound", "busy_rep/s", "false", "mon", "load");
	tprintf(&md,
		"\n### Stall-kill lateness under load (SIGKILL - (resume + "
		"N·T), ms; T = %.0f ms, N = %u, stubwatch's timer every T/%u "
		"= %.2f ms; the stalled stub sleeps)\n\n"
		"| variant | condition | kills | p50 | p99 | max | max less "
		"starved | timer max late | timer max gap | monitor_late p50 | monitor_late max | "
		"starved p50 | starved max | in bound | busy reports/s | false "
		"kills | monitor CPU | load avg |\n"
		"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		"---:|---:|---:|---:|---:|---:|\n",
		t_ms, DL_STALL_TICKS, SW_TIMER_DIV_DEFAULT, p_ms);
	for (int cond = 0; cond < DL_NCOND; cond++) {
		for (int v = 0; v < DL_NV; v++) {
			struct dl_cell *c = &dlc[v][cond];
			bool sw = v == DL_SW, busy = cond == DL_BUSY;
			double tmr_late = sw ? (double)c->st.max_late_ns / 1e6
					     : (double)c->helper_late_ns / 1e6;
			double rps = c->t1 > c->t0
					     ? (double)c->busy_reports * 1e9 /
						       (double)(c->t1 - c->t0)
					     : NAN;
			char b[12][32], bound[32] = "-", rate[32] = "-",
					      bk[16] = "-";
			const char *f[12];
			char swj[256];

			if (!c->ran)
				continue;
			if (sw)
				snprintf(bound, sizeof(bound), "%d/%d",
					 c->n - c->outside, c->n);
			if (busy)
				snprintf(rate, sizeof(rate), "%.0f", rps);
			snprintf(bk, sizeof(bk), "%d", c->false_kills);
			f[0] = dl_fmt(b[0], 32, true, c->p50);
			f[1] = dl_fmt(b[1], 32, true, c->p99);
			f[2] = dl_fmt(b[2], 32, true, c->max);
			f[3] = dl_fmt(b[3], 32, true, tmr_late);
			f[4] = dl_fmt(b[4], 32, sw,
				      (double)c->st.max_gap_ns / 1e6);
			f[5] = dl_fmt(b[5], 32, sw, c->ml50);
			f[6] = dl_fmt(b[6], 32, sw, c->mlmax);
			f[7] = dl_fmt(b[7], 32, sw, c->st50);
			f[8] = dl_fmt(b[8], 32, sw, c->stmax);
			f[9] = dl_fmt(b[9], 32, true, c->load);
			snprintf(b[10], 32, "%.0f%%", c->mon_cpu * 100);
			f[10] = b[10];
			f[11] = dl_fmt(b[11], 32, true, c->netmax);
			tprintf(&human,
				"%-9s %-10s %5d %7s %7s %7s %7s | %8s %7s | %8s "
				"%7s | %7s %7s | %6s | %10s %5s | %4s | %5s\n",
				variant_names[dl_variant[v]],
				dl_cond_names[cond], c->n, f[0], f[1], f[2],
				f[11], f[3], f[4], f[5], f[6], f[7], f[8], bound,
				rate, bk, f[10], f[9]);
			tprintf(&md,
				"| %s | %s | %d | %s | %s | %s | %s | %s | %s | "
				"%s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				variant_names[dl_variant[v]],
				dl_cond_names[cond], c->n, f[0], f[1], f[2],
				f[11], f[3], f[4], f[5], f[6], f[7], f[8], bound,
				rate, bk, f[10], f[9]);
			/* The loop's own figures only where there is one. */
			if (sw)
				snprintf(swj, sizeof(swj),
					 ",\"timer_max_gap_ms\":%.3f,"
					 "\"monitor_late_p50_ms\":%.3f,"
					 "\"monitor_late_max_ms\":%.3f,"
					 "\"starved_p50_ms\":%.3f,"
					 "\"starved_max_ms\":%.3f,"
					 "\"in_bound\":%d",
					 (double)c->st.max_gap_ns / 1e6, c->ml50,
					 c->mlmax, c->st50, c->stmax,
					 c->n - c->outside);
			else
				swj[0] = 0;
			jsonl("{\"bench\":\"detect-load\",\"variant\":\"%s\","
			      "\"condition\":\"%s\",\"tick_ms\":%.0f,"
			      "\"stall_ticks\":%u,\"timer_div\":%u,"
			      "\"kills\":%d,\"late_p50_ms\":%.3f,"
			      "\"late_p99_ms\":%.3f,\"late_max_ms\":%.3f,"
			      "\"late_max_less_starved_ms\":%.3f,"
			      "\"timer_max_late_ms\":%.3f%s,\"busy_stubs\":%d,"
			      "\"busy_reports_per_s\":%.0f,"
			      "\"false_kills\":%d,\"monitor_cpu\":%.3f,"
			      "\"loadavg\":%.2f}",
			      variant_names[dl_variant[v]], dl_cond_keys[cond],
			      t_ms, DL_STALL_TICKS, SW_TIMER_DIV_DEFAULT, c->n,
			      c->p50, c->p99, c->max, c->netmax, tmr_late, swj,
			      busy ? DL_BUSY_STUBS : 0, busy ? rps : 0.0,
			      c->false_kills, c->mon_cpu, c->load);
		}
	}
	tprintf(&human,
		"(tmr_late: the longest a timer expiration waited for its "
		"read, the loop's max_late_ns for stubwatch, the helper "
		"thread's for thread-wd; tmr_gap: the loop's max_gap_ns; both "
		"over the stalls, resume to kill; "
		"mlate/starv: each kill's monitor_late_ns and starved_ns; "
		"netmax: the max less each kill's starved_ns (thread-wd: the "
		"max); bound: stubwatch kills within [N*T, N*T + 2*T/8 + "
		"monitor_late + starved] of the resume (watchdog.h); false: stubs killed that were not "
		"stalled; mon: the monitor thread's CPU share; load: 1-minute "
		"load average at the start)\n");
	tprintf(&md,
		"\nLateness counts from the clock read right after the resume "
		"returned; the SIGKILL time is stubwatch's "
		"`sw_kill_info.killed_at_ns` and, for thread-wd, the helper "
		"thread's clock right before its `kill()`. Timer max late: "
		"the longest a timer expiration waited for its read "
		"(`sw_loop_stats.max_late_ns`; thread-wd: its helper thread's "
		"timerfd) and timer max gap (`max_gap_ns`), over each stall "
		"from its resume to its kill. Max less starved: each kill's lateness less its "
		"`starved_ns`, the starvation credit (thread-wd has none). "
		"In bound: stubwatch kills within [N·T, N·T + 2·T/8 + "
		"monitor_late + starved] of the resume, the bound of "
		"src/watchdog.h. False kills: stubs "
		"killed that were not stalled (busy ones, or a stalled one "
		"before its stall). bench/README.md says what each variant "
		"does in each condition.\n");
	for (int cond = 0; cond < DL_NCOND; cond++) {
		struct dl_cell *c = &dlc[DL_SW][cond];

		if (!c->ran || !c->false_kills)
			continue;
		/* What stubwatch's kill info said of the busy stubs it should
		 * not have killed (a stalled stub killed while warming up comes
		 * without it). */
		tprintf(&human, "stubwatch %s: false kills %d, of busy stubs %d",
			dl_cond_names[cond], c->false_kills, c->fk_info);
		tprintf(&md, "\nstubwatch, %s: false kills %d, of busy stubs %d",
			dl_cond_names[cond], c->false_kills, c->fk_info);
		if (c->fk_info) {
			tprintf(&human,
				"; at those: silence up to %.1f ms, "
				"monitor_late up to %.1f ms, starved up to %.1f "
				"ms; %d were runnable (R) and had not run in "
				"their stall window",
				c->fk_silent_max, c->fk_late_max,
				c->fk_starved_max, c->fk_runnable_idle);
			tprintf(&md,
				"; at those: silence up to %.1f ms, "
				"monitor_late up to %.1f ms, starved up to %.1f "
				"ms; %d were runnable (R) and had not run in "
				"their stall window",
				c->fk_silent_max, c->fk_late_max,
				c->fk_starved_max, c->fk_runnable_idle);
		}
		tprintf(&human, "\n");
		tprintf(&md, ".\n");
	}

	for (int cond = 0; cond < DL_NCOND; cond++) {
		struct dl_cell *tw = &dlc[DL_TW][cond], *sw = &dlc[DL_SW][cond];
		/* The promise against the watchdog thread's: late by no more
		 * than one tick plus the monitor's own longest gap between
		 * timer reads, starvation credit aside. */
		double lim = t_ms + (double)sw->st.max_gap_ns / 1e6;
		char name[96];

		for (int i = 0; i < sw->n; i++) {
			struct dl_kill *k = &sw->k[i];

			if (k->over_ms <= 0 && k->early_ms <= 0)
				continue;
			/* The watchdog's own bound broken: a library bug. */
			tprintf(&human,
				"OUT OF BOUND stubwatch %s stall %d: lateness "
				"%.3f ms, monitor_late %.3f ms, starved %.3f "
				"ms: %.3f ms past N*T + 2*T/8 + both, %.3f ms "
				"before N*T\n",
				dl_cond_names[cond], i, k->late_ms,
				k->mon_late_ms, k->starved_ms, k->over_ms,
				k->early_ms);
			tprintf(&md,
				"\n**Out of bound**: stubwatch, %s, stall %d: "
				"lateness %.3f ms, monitor_late %.3f ms, "
				"starved %.3f ms: %.3f ms past N·T + 2·T/8 + both, "
				"%.3f ms before N·T.\n",
				dl_cond_names[cond], i, k->late_ms,
				k->mon_late_ms, k->starved_ms, k->over_ms,
				k->early_ms);
		}
		snprintf(name, sizeof(name),
			 "detect-load %s: stubwatch max less starved <= "
			 "thread-wd max",
			 dl_cond_names[cond]);
		/* A thread-wd that killed busy stubs ran the rest of its
		 * stalls with fewer: say so beside the comparison. */
		if (tw->ran && sw->ran)
			target_text(name, sw->netmax <= tw->max,
				    "stubwatch %.2f ms (max %.2f ms, less each "
				    "kill's starvation credit), thread-wd %.2f "
				    "ms (its false kills: %d)",
				    sw->netmax, sw->max, tw->max,
				    tw->false_kills);
		else
			target_skip(name, dl_skipped[cond][0] ? dl_skipped[cond]
							      : "not run");
		snprintf(name, sizeof(name),
			 "detect-load %s: stubwatch max less starved <= T + "
			 "loop max gap",
			 dl_cond_names[cond]);
		if (sw->ran)
			target_text(name, sw->netmax <= lim,
				    "%.2f ms (limit %.2f + %.2f = %.2f ms)",
				    sw->netmax, t_ms,
				    (double)sw->st.max_gap_ns / 1e6, lim);
		else
			target_skip(name, "not run");
		snprintf(name, sizeof(name),
			 "detect-load %s: stubwatch kills within bound",
			 dl_cond_names[cond]);
		if (sw->ran)
			target_text(name, !sw->outside && !sw->false_kills,
				    "%d/%d in [N*T, N*T + 2*T/8 + "
				    "monitor_late + starved]; false kills: %d",
				    sw->n - sw->outside, sw->n,
				    sw->false_kills);
		else
			target_skip(name, "not run");
	}
}

/* ---- scale: stubs per loop ------------------------------------------------ */

static const size_t scale_levels[] = { 1, 10, 100, 1000, 10000 };
#define NSCALE (sizeof(scale_levels) / sizeof(*scale_levels))

struct mem_snap {
	long rss, avail, kstack, ptables, sunreclaim, shmem, fds;
};

static void mem_snap(struct mem_snap *m)
{
	m->rss = proc_kb("/proc/self/status", "VmRSS");
	m->avail = proc_kb("/proc/meminfo", "MemAvailable");
	m->kstack = proc_kb("/proc/meminfo", "KernelStack");
	m->ptables = proc_kb("/proc/meminfo", "PageTables");
	m->sunreclaim = proc_kb("/proc/meminfo", "SUnreclaim");
	m->shmem = proc_kb("/proc/meminfo", "Shmem");
	m->fds = count_fds();
}

struct scale_level {
	size_t count;
	bool ran;
	char skip[200];
	struct pair active;
	struct pair *extra;
	double spawn_us;
	double fds_per, mon_kib, kern_kib, shmem_kib, sys_kib, pss_kib;
	struct lat_stats rep[MAX_REPS];
	struct lat_stats base_rep[MAX_REPS]; /* the 1-stub loop, same rep */
	int nreps;
	double p50, p99;
	size_t n;
	char limited[200]; /* why fewer stubs than asked */
};
static struct scale_level scl[NSCALE];

static double stub_pss_kib(struct scale_level *l)
{
	size_t k = 0;
	double sum = 0;

	/* The idle stubs (exec'd) when there are any, else the active one. */
	for (size_t i = l->count > 1; i < l->count && k < 16; i++) {
		pid_t pid = i == 0 ? l->active.pid : l->extra[i - 1].pid;
		char path[64];
		long v;

		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
		v = proc_kb(path, "Pss");
		if (v >= 0) {
			sum += (double)v;
			k++;
		}
	}
	return k ? sum / (double)k : NAN;
}

static int scale_build(struct scale_level *l)
{
	struct mem_snap a, b;
	uint64_t t0;
	double c = (double)l->count;
	int r;

	mem_snap(&a);
	t0 = now_ns();
	r = pair_open(&l->active, V_STUBWATCH, NULL);
	if (r < 0)
		return r;
	l->extra = calloc(l->count, sizeof(*l->extra));
	if (!l->extra)
		return -ENOMEM;
	for (size_t i = 1; i < l->count; i++) {
		r = pair_open_in(&l->extra[i - 1], V_STUBWATCH, l->active.loop,
				 true);
		if (r < 0)
			return r;
	}
	l->spawn_us = (double)(now_ns() - t0) / 1e3 / c;
	mem_snap(&b);
	l->fds_per = (double)(b.fds - a.fds) / c;
	l->mon_kib = (double)(b.rss - a.rss) / c;
	l->kern_kib = (double)((b.kstack - a.kstack) + (b.ptables - a.ptables) +
			       (b.sunreclaim - a.sunreclaim)) / c;
	l->shmem_kib = (double)(b.shmem - a.shmem) / c;
	l->sys_kib = (double)(a.avail - b.avail) / c;
	l->pss_kib = stub_pss_kib(l);
	return 0;
}

static void scale_free(struct scale_level *l)
{
	/* Freeing the loop kills, reaps and frees every stub in it. */
	if (l->active.stub) {
		pair_close(&l->active);
	}
	free(l->extra);
	l->extra = NULL;
}

static void scale_measure(struct scale_level *l, uint64_t *buf,
			  struct lat_stats *out)
{
	int r;

	pin_pid(l->active.pid, o.cpu_a);
	r = pair_run(&l->active, NULL, o.warmup);
	if (r >= 0)
		r = pair_run(&l->active, buf, o.scale_n);
	if (r < 0)
		die("scale %zu: %s", l->count, strerror(-r));
	stats_compute(buf, o.scale_n, out);
}

static void scale_summarise(struct scale_level *l)
{
	double v[MAX_REPS];

	for (int i = 0; i < l->nreps; i++)
		v[i] = l->rep[i].p50;
	l->p50 = median_d(v, (size_t)l->nreps);
	for (int i = 0; i < l->nreps; i++)
		v[i] = l->rep[i].p99;
	l->p99 = median_d(v, (size_t)l->nreps);
	l->n = o.scale_n * (size_t)l->nreps;
}

static bool scale_try_build(struct scale_level *l)
{
	char what[64];
	int r;

	snprintf(what, sizeof(what), "scale %zu stubs", l->count);
	if (scale_room((long)l->count, l->skip, sizeof(l->skip))) {
		skip(what, l->skip);
		return false;
	}
	r = scale_build(l);
	if (r < 0) {
		snprintf(l->skip, sizeof(l->skip), "spawn failed: %s",
			 strerror(-r));
		skip(what, l->skip);
		scale_free(l);
		return false;
	}
	l->ran = true;
	return true;
}

/* How many more stubs the fd limit allows, at 2 fds each. */
static size_t scale_fit(void)
{
	struct rlimit rl;
	long room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	room = (long)rl.rlim_max - count_fds() - 64;
	return room > 0 ? (size_t)room / 2 : 0;
}

/*
 * Phase A: 1, 10, 100, 1000 stubs, each level its own loop, all alive, the
 * levels alternated.  Phase B: the levels but 1 freed, then the 10,000 stub
 * loop (or as many as RLIMIT_NOFILE allows), alternated with the 1-stub
 * loop; its ratio pairs with the 1-stub runs of phase B.
 */
static void run_scale_stubs(void)
{
	size_t bytes = o.scale_n * sizeof(uint64_t);
	struct scale_level *top = &scl[NSCALE - 1], *base = &scl[0];
	uint64_t *buf;
	int nl = 0, idx[NSCALE];

	buf = buf_alloc(bytes);
	if (!buf)
		die("out of memory");
	for (size_t i = 0; i + 1 < NSCALE; i++) {
		scl[i].count = scale_levels[i];
		if (scl[i].count <= o.scale_max && scale_try_build(&scl[i]))
			idx[nl++] = (int)i;
	}
	pin_self(o.cpu_a);
	for (int rep = 0; rep < o.scale_reps; rep++) {
		for (int k = 0; k < nl; k++) {
			struct scale_level *l = &scl[idx[(k + rep) % nl]];

			scale_measure(l, buf, &l->rep[l->nreps++]);
		}
	}
	for (int k = 0; k < nl; k++) {
		struct scale_level *l = &scl[idx[k]];

		memcpy(l->base_rep, base->rep, sizeof(l->base_rep));
		scale_summarise(l);
	}

	top->count = scale_levels[NSCALE - 1];
	if (top->count <= o.scale_max && base->ran) {
		size_t fit;

		for (size_t i = 1; i + 1 < NSCALE; i++)
			scale_free(&scl[i]);
		fit = scale_fit();
		if (fit < top->count) {
			struct rlimit rl;

			getrlimit(RLIMIT_NOFILE, &rl);
			snprintf(top->limited, sizeof(top->limited),
				 "%zu stubs need %zu fds; RLIMIT_NOFILE hard "
				 "limit %lu, and raising it needs "
				 "CAP_SYS_RESOURCE: ran %zu",
				 top->count, 2 * top->count,
				 (unsigned long)rl.rlim_max, fit);
			note("%s", top->limited);
			top->count = fit;
		}
		if (top->count > base->count && scale_try_build(top)) {
			for (int rep = 0; rep < o.scale_reps; rep++) {
				bool top_first = rep % 2;

				if (top_first)
					scale_measure(top, buf, &top->rep[rep]);
				scale_measure(base, buf, &top->base_rep[rep]);
				if (!top_first)
					scale_measure(top, buf, &top->rep[rep]);
			}
			top->nreps = o.scale_reps;
			scale_summarise(top);
		}
	}
	buf_free(buf, bytes);
}

/* Per-rep p50 ratio of a level to the 1-stub loop measured beside it. */
static double scale_ratio(struct scale_level *l, double *lo, double *hi)
{
	double r[MAX_REPS];

	for (int i = 0; i < l->nreps; i++)
		r[i] = l->rep[i].p50 / l->base_rep[i].p50;
	minmax_d(r, (size_t)l->nreps, lo, hi);
	return median_d(r, (size_t)l->nreps);
}

static void report_scale_stubs(void)
{
	struct scale_level *base = &scl[0], *top = NULL;
	char name[128];
	double med, lo, hi;

	for (size_t i = 0; i < NSCALE; i++)
		if (scl[i].ran)
			top = &scl[i];
	if (!top)
		return;
	tprintf(&human,
		"\n== scale: stubs registered in one loop, one active (same "
		"CPU; median over %d reps) ==\n",
		o.scale_reps);
	tprintf(&human, "%6s %8s %8s %22s %8s %8s %8s %8s %8s %8s\n", "stubs",
		"p50_us", "p99_us", "p50 vs 1 stub", "fds/stub", "mon_KiB",
		"kern_KiB", "shm_KiB", "stubPss", "spawn_us");
	tprintf(&md,
		"\n### Scale: stubs registered in one loop, one active (same "
		"CPU; median over %d reps)\n\n"
		"| stubs | p50 us | p99 us | p50 vs 1 stub | fds/stub | monitor "
		"KiB/stub | kernel KiB/stub | shmem KiB/stub | stub Pss KiB | "
		"spawn us/stub |\n"
		"|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
		o.scale_reps);
	for (size_t i = 0; i < NSCALE; i++) {
		struct scale_level *l = &scl[i];

		if (!l->ran)
			continue;
		med = scale_ratio(l, &lo, &hi);
		tprintf(&human,
			"%6zu %8.2f %8.2f %6.3f [%5.3f .. %5.3f] %8.2f %8.1f "
			"%8.1f %8.1f %8.1f %8.1f\n",
			l->count, l->p50, l->p99, med, lo, hi, l->fds_per,
			l->mon_kib, l->kern_kib, l->shmem_kib, l->pss_kib,
			l->spawn_us);
		tprintf(&md,
			"| %zu | %.2f | %.2f | %.3f [%.3f .. %.3f] | %.2f | %.1f | "
			"%.1f | %.1f | %.1f | %.1f |\n",
			l->count, l->p50, l->p99, med, lo, hi, l->fds_per,
			l->mon_kib, l->kern_kib, l->shmem_kib, l->pss_kib,
			l->spawn_us);
		jsonl("{\"bench\":\"scale\",\"variant\":\"stubwatch\","
		      "\"stubs\":%zu,\"loops\":1,\"cpus\":\"same\",\"n\":%zu,"
		      "\"p50_us\":%.3f,\"p99_us\":%.3f,"
		      "\"p50_vs_1_stub\":%.4f,\"fds_per_stub\":%.2f,"
		      "\"monitor_kib_per_stub\":%.1f,"
		      "\"kernel_kib_per_stub\":%.1f,"
		      "\"shmem_kib_per_stub\":%.1f,\"stub_pss_kib\":%.1f,"
		      "\"system_kib_per_stub\":%.1f,\"spawn_us\":%.1f}",
		      l->count, l->n, l->p50, l->p99, med, l->fds_per,
		      l->mon_kib, l->kern_kib, l->shmem_kib, l->pss_kib,
		      l->sys_kib, l->spawn_us);
	}
	tprintf(&human,
		"(idle stubs are the bench re-executed as a stub, as UML execs "
		"its stub; per stub: fds and RSS of the monitor process; "
		"kern = KernelStack + PageTables + SUnreclaim; stubPss from "
		"smaps_rollup; deltas at 1 and 10 stubs are noise)\n");
	tprintf(&md,
		"\nIdle stubs are the bench re-executed as a stub, as UML execs "
		"its stub binary. Per stub: fds and RSS of the monitor process; "
		"kernel = KernelStack + PageTables + SUnreclaim; stub Pss from "
		"`smaps_rollup`. The top level is paired with the 1-stub loop "
		"measured beside it after the middle levels are freed.\n");
	if (scl[NSCALE - 1].limited[0]) {
		tprintf(&human, "NOTE %s\n", scl[NSCALE - 1].limited);
		tprintf(&md, "\n**Note:** %s.\n", scl[NSCALE - 1].limited);
	}

	if (top == base) {
		target_skip("p50 with 10000 stubs <= 1.10x p50 with 1",
			    "scale levels did not run");
		return;
	}
	med = scale_ratio(top, &lo, &hi);
	snprintf(name, sizeof(name), "p50 with %zu stubs <= 1.10x p50 with 1",
		 top->count);
	target_le(name, med, 1.10, lo, hi);
	if (top != &scl[NSCALE - 1])
		target_skip("p50 with 10000 stubs <= 1.10x p50 with 1",
			    o.scale_max < 10000
				    ? "not in this mode (--quick stops at 1000)"
				    : scl[NSCALE - 1].skip);
}

/* ---- scale: vCPU loops ---------------------------------------------------- */

static const int loop_levels[] = { 1, 2, 4, 8 };
#define NLOOPS (sizeof(loop_levels) / sizeof(*loop_levels))
static const int loop_variants[] = { V_FUTEX, V_STUBWATCH };
#define NLV 2

struct loops_res {
	struct lat_stats rep[MAX_REPS];
	int nreps;
	double p50, p99;
	size_t n;
};
static struct loops_res lres[NLOOPS][NLV];
static bool loops_ran;

struct loop_thr {
	int cpu;
	enum variant v;
	size_t n;
	uint64_t *samples;
	pthread_barrier_t *bar;
	int err;
};

static void *loop_thread(void *arg)
{
	struct loop_thr *t = arg;
	struct pair p;
	int r;

	pin_self(t->cpu);
	r = pair_open(&p, t->v, NULL);
	if (r >= 0) {
		pin_pid(p.pid, t->cpu);
		r = pair_run(&p, NULL, o.warmup);
	}
	pthread_barrier_wait(t->bar);
	if (r >= 0)
		r = pair_run(&p, t->samples, t->n);
	pthread_barrier_wait(t->bar);
	if (p.stub || p.loop)
		pair_close(&p);
	t->err = r < 0 ? r : 0;
	return NULL;
}

static void run_scale_loops(void)
{
	size_t per = o.loops_n, max_total = per * 8;
	uint64_t *pool = buf_alloc(max_total * sizeof(uint64_t));

	if (!pool)
		die("out of memory");
	for (int rep = 0; rep < o.loops_reps; rep++) {
		for (size_t k = 0; k < NLOOPS * NLV; k++) {
			size_t cell = (k + (size_t)rep) % (NLOOPS * NLV);
			int li = (int)(cell / NLV), vi = (int)(cell % NLV);
			int nthr = loop_levels[li];
			struct loop_thr t[8];
			pthread_t th[8];
			pthread_barrier_t bar;
			struct loops_res *res = &lres[li][vi];

			pthread_barrier_init(&bar, NULL, (unsigned)nthr);
			for (int i = 0; i < nthr; i++) {
				t[i] = (struct loop_thr){
					.cpu = cpus_allowed[i % ncpus_allowed],
					.v = loop_variants[vi],
					.n = per,
					.samples = pool + (size_t)i * per,
					.bar = &bar,
				};
				if (pthread_create(&th[i], NULL, loop_thread, &t[i]))
					die("pthread_create");
			}
			for (int i = 0; i < nthr; i++) {
				pthread_join(th[i], NULL);
				if (t[i].err < 0)
					die("loops %d %s: %s", nthr,
					    variant_names[loop_variants[vi]],
					    strerror(-t[i].err));
			}
			pthread_barrier_destroy(&bar);
			stats_compute(pool, per * (size_t)nthr,
				      &res->rep[res->nreps++]);
		}
	}
	buf_free(pool, max_total * sizeof(uint64_t));
	for (size_t li = 0; li < NLOOPS; li++) {
		for (int vi = 0; vi < NLV; vi++) {
			struct loops_res *res = &lres[li][vi];
			double v[MAX_REPS];

			for (int i = 0; i < res->nreps; i++)
				v[i] = res->rep[i].p50;
			res->p50 = median_d(v, (size_t)res->nreps);
			for (int i = 0; i < res->nreps; i++)
				v[i] = res->rep[i].p99;
			res->p99 = median_d(v, (size_t)res->nreps);
			res->n = per * (size_t)loop_levels[li] *
				 (size_t)res->nreps;
		}
	}
	loops_ran = true;
}

static void report_scale_loops(void)
{
	if (!loops_ran)
		return;
	tprintf(&human,
		"\n== scale: vCPU loops, each its own thread, loop and stub "
		"(loop i and its stub on CPU i mod %d; median over %d reps) "
		"==\n",
		ncpus_allowed, o.loops_reps);
	tprintf(&human, "%5s %-10s %9s %8s %8s %20s\n", "loops", "variant", "n",
		"p50_us", "p99_us", "p50 vs futex");
	tprintf(&md,
		"\n### Scale: vCPU loops, each its own thread, loop and stub "
		"(loop i and its stub on CPU i mod %d; median over %d reps)\n\n"
		"| loops | variant | n | p50 us | p99 us | p50 vs futex |\n"
		"|---:|---|---:|---:|---:|---|\n",
		ncpus_allowed, o.loops_reps);
	for (size_t li = 0; li < NLOOPS; li++) {
		for (int vi = 0; vi < NLV; vi++) {
			struct loops_res *res = &lres[li][vi];
			struct loops_res *f = &lres[li][0];
			double r[MAX_REPS], lo = NAN, hi = NAN, med = NAN;
			char rs[64] = "";
			int k = res->nreps;

			if (vi > 0) {
				for (int i = 0; i < k; i++)
					r[i] = res->rep[i].p50 / f->rep[i].p50;
				minmax_d(r, (size_t)k, &lo, &hi);
				med = median_d(r, (size_t)k);
				snprintf(rs, sizeof(rs), "%.3f [%.3f .. %.3f]",
					 med, lo, hi);
			}
			tprintf(&human, "%5d %-10s %9zu %8.2f %8.2f %20s\n",
				loop_levels[li],
				variant_names[loop_variants[vi]], res->n,
				res->p50, res->p99, rs);
			tprintf(&md, "| %d | %s | %zu | %.2f | %.2f | %s |\n",
				loop_levels[li],
				variant_names[loop_variants[vi]], res->n,
				res->p50, res->p99, rs);
			jsonl("{\"bench\":\"scale\",\"variant\":\"%s\","
			      "\"stubs\":1,\"loops\":%d,\"n\":%zu,"
			      "\"p50_us\":%.3f,\"p99_us\":%.3f}",
			      variant_names[loop_variants[vi]],
			      loop_levels[li], res->n, res->p50, res->p99);
		}
	}
}

/* ---- spawn: what containment costs ------------------------------------------ */

static struct spawn_variant spawn_root[] = {
	{ .name = "fn" },
	{ .name = "fn+pidns", .flags = SW_SPAWN_PIDNS },
	{ .name = "exec", .exec = true },
	{ .name = "exec+pidns", .exec = true, .flags = SW_SPAWN_PIDNS },
};
static struct spawn_variant spawn_user[] = {
	{ .name = "fn" },
	{ .name = "fn+pidns+userns", .flags = SW_SPAWN_PIDNS },
};
#define NSPAWN_ROOT (int)(sizeof(spawn_root) / sizeof(spawn_root[0]))
#define NSPAWN_USER (int)(sizeof(spawn_user) / sizeof(spawn_user[0]))
static char spawn_user_skip[160];

static void run_spawn(void)
{
	size_t n = o.quick ? 50 : 400;
	int r;

	r = spawn_cost_run(spawn_root, NSPAWN_ROOT, n, false);
	if (r < 0)
		skip("spawn", strerror(-r));
	if (geteuid() != 0)
		return; /* the rows above are the unprivileged ones */
	r = spawn_cost_run(spawn_user, NSPAWN_USER, n, true);
	if (r < 0) {
		snprintf(spawn_user_skip, sizeof(spawn_user_skip),
			 "as uid nobody: %s", strerror(-r));
		skip("spawn, unprivileged", spawn_user_skip);
	}
}

static void report_spawn_rows(const char *who, struct spawn_variant *vs,
			      int nv)
{
	for (int k = 0; k < nv; k++) {
		struct spawn_variant *v = &vs[k];
		/* against the plain spawn of the same mode, in this run */
		struct spawn_variant *base = v->exec ? &vs[2] : &vs[0];
		char rs[32] = "";

		if (!v->ran)
			continue;
		if (v != base)
			snprintf(rs, sizeof(rs), "%.2f",
				 v->cycle.p50 / base->cycle.p50);
		tprintf(&human, "%-12s %-16s %6zu %9.1f %9.1f %9.1f %9.1f %8s\n",
			who, v->name, v->cycle.n, v->up.p50, v->up.p99,
			v->cycle.p50, v->cycle.p99, rs);
		tprintf(&md, "| %s | %s | %zu | %.1f | %.1f | %.1f | %.1f | %s |\n",
			who, v->name, v->cycle.n, v->up.p50, v->up.p99,
			v->cycle.p50, v->cycle.p99, rs);
		jsonl("{\"bench\":\"spawn\",\"monitor\":\"%s\","
		      "\"variant\":\"%s\",\"n\":%zu,\"up_p50_us\":%.1f,"
		      "\"up_p99_us\":%.1f,\"cycle_p50_us\":%.1f,"
		      "\"cycle_p99_us\":%.1f}",
		      who, v->name, v->cycle.n, v->up.p50, v->up.p99,
		      v->cycle.p50, v->cycle.p99);
	}
}

static void report_spawn(void)
{
	if (!spawn_root[0].ran && !spawn_user[0].ran)
		return;
	tprintf(&human,
		"\n== spawn: sw_stub_spawn() to the first report (up), and to "
		"the end of sw_stub_free() (cycle); variants alternate ==\n");
	tprintf(&human, "%-12s %-16s %6s %9s %9s %9s %9s %8s\n", "monitor",
		"spawn", "n", "up_p50", "up_p99", "cyc_p50", "cyc_p99",
		"x plain");
	tprintf(&md,
		"\n### Spawn: sw_stub_spawn() to the first report (up), and to "
		"the end of sw_stub_free() (cycle), in us; variants alternate\n\n"
		"| monitor | spawn | n | up p50 | up p99 | cycle p50 | "
		"cycle p99 | cycle p50 vs plain |\n"
		"|---|---|---:|---:|---:|---:|---:|---:|\n");
	report_spawn_rows(geteuid() == 0 ? "root" : "unprivileged",
			  spawn_root, NSPAWN_ROOT);
	if (geteuid() == 0)
		report_spawn_rows("uid nobody", spawn_user, NSPAWN_USER);
	else if (spawn_user_skip[0])
		tprintf(&human, "(unprivileged rows: %s)\n", spawn_user_skip);
}

/* ---- targets and output ----------------------------------------------------- */

static int report_targets(void)
{
	int missed = 0;

	if (!ntargets)
		return 0;
	tprintf(&human, "\n== targets (ratios against futex in this "
			"run) ==\n");
	tprintf(&md, "\n### Targets\n\n| target | result | measured |\n"
		     "|---|---|---|\n");
	for (int i = 0; i < ntargets; i++) {
		struct target *t = &targets[i];
		const char *verdict = !t->ran ? "SKIP" : t->met ? "MET" : "MISSED";

		missed += t->ran && !t->met;
		tprintf(&human, "%-7s %-48s %s\n", verdict, t->name, t->shown);
		tprintf(&md, "| %s | %s | %s |\n", t->name, verdict, t->shown);
		jsonl("{\"bench\":\"target\",\"name\":\"%s\",\"result\":\"%s\","
		      "\"measured\":\"%s\"}",
		      t->name, !t->ran ? "skip" : t->met ? "met" : "missed",
		      t->shown);
	}
	return missed;
}

static void write_latency_dat(FILE *f)
{
	/* Percentile curves: x = 1/(1-q) (HdrHistogram style), y = us; one
	 * block per series, its first line the title for gnuplot. */
	static const double qs[] = { 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
				     0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.96,
				     0.97, 0.98, 0.99, 0.992, 0.994, 0.996,
				     0.998, 0.999, 0.9995, 0.9999, 0.99995,
				     0.99999 };
	int blocks = 0;

	for (int pin = 0; pin < NPIN; pin++) {
		for (int v = 0; v < V_COUNT; v++) {
			struct lat_series *s = &lat[v][pin];
			uint64_t *sorted;

			if (!s->ran)
				continue;
			sorted = s->pool;
			stats_compute(sorted, s->npool,
				      &(struct lat_stats){ 0 });
			fprintf(f, "%s%s-%s\n", blocks++ ? "\n\n" : "",
				variant_names[v], pin_names[pin]);
			for (size_t i = 0; i < sizeof(qs) / sizeof(*qs); i++) {
				if (qs[i] >= 1.0 - 1.0 / (double)s->npool)
					break;
				fprintf(f, "%.6g %.3f\n", 1 / (1 - qs[i]),
					quantile_sorted(sorted, s->npool, qs[i]) /
						1e3);
			}
		}
	}
}

static void header(void)
{
	struct utsname u;
	char model[128] = "?";
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "model name", 10) == 0) {
				char *p = strchr(line, ':');

				if (p) {
					snprintf(model, sizeof(model), "%s", p + 2);
					model[strcspn(model, "\n")] = 0;
				}
				break;
			}
		}
		fclose(f);
	}
	uname(&u);
	tprintf(&human,
		"stubwatch-bench (%s): Linux %s, %d CPUs usable (%s), "
		"monitor on CPU %d, cross-CPU stub on CPU %d\n"
		"variants alternated in rotating order over %d reps; warm-up "
		"%zu round trips before each run\n",
		o.quick ? "quick" : "full", u.release, ncpus_allowed, model,
		o.cpu_a, o.cpu_b, o.reps, o.warmup);
	tprintf(&md,
		"## stubwatch-bench results\n\n"
		"`%s` (%s mode) on Linux %s, %d CPUs (%s); monitor on CPU %d, "
		"cross-CPU stub on CPU %d. Variants alternate in rotating order "
		"over %d repetitions in one process run; warm-up %zu round "
		"trips before each run.\n",
		o.cmdline, o.quick ? "quick" : "full", u.release, ncpus_allowed,
		model, o.cpu_a, o.cpu_b, o.reps, o.warmup);
	jsonl("{\"bench\":\"info\",\"mode\":\"%s\",\"kernel\":\"%s\","
	      "\"cpus\":%d,\"monitor_cpu\":%d,\"stub_cpu_cross\":%d,"
	      "\"reps\":%d,\"n\":%zu,\"warmup\":%zu}",
	      o.quick ? "quick" : "full", u.release, ncpus_allowed, o.cpu_a,
	      o.cpu_b, o.reps, o.n, o.warmup);
}

static void write_outputs(void)
{
	char path[4096];
	FILE *f;

	if (o.json) {
		for (size_t i = 0; i < njlines; i++)
			puts(jlines[i]);
	} else {
		fwrite(human.buf, 1, human.len, stdout);
	}
	fflush(stdout);
	if (!o.out_dir)
		return;
	mkdir(o.out_dir, 0755);
	snprintf(path, sizeof(path), "%s/results.jsonl", o.out_dir);
	f = fopen(path, "we");
	if (!f)
		die("%s: %s", path, strerror(errno));
	for (size_t i = 0; i < njlines; i++)
		fprintf(f, "%s\n", jlines[i]);
	fclose(f);
	snprintf(path, sizeof(path), "%s/results.md", o.out_dir);
	f = fopen(path, "we");
	if (!f)
		die("%s: %s", path, strerror(errno));
	fwrite(md.buf, 1, md.len, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/results.txt", o.out_dir);
	f = fopen(path, "we");
	if (!f)
		die("%s: %s", path, strerror(errno));
	fwrite(human.buf, 1, human.len, f);
	fclose(f);
	if (!(o.phases & PH_LATENCY))
		return; /* no curves to plot */
	snprintf(path, sizeof(path), "%s/latency.dat", o.out_dir);
	f = fopen(path, "we");
	if (!f)
		die("%s: %s", path, strerror(errno));
	write_latency_dat(f);
	fclose(f);
}

/* ---- main ------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stubwatch-bench [options]\n"
		"  --quick          short run for CI (< 45 s)\n"
		"  --json           one JSON object per line instead of tables\n"
		"  --out DIR        also write DIR/results.{jsonl,md,txt} and "
		"DIR/latency.dat\n"
		"  --variant V      only latency of V (futex, thread-wd, "
		"stubwatch, stubwatch-poll, stubwatch-ev)\n"
		"  --variants A,B   only these variants, every phase and rep\n"
		"  --n N            round trips per run\n"
		"  --reps R         repetitions (variants alternate)\n"
		"  --warmup W       untimed round trips before each run\n"
		"  --pin same|cross|both\n"
		"  --cpus A,B       monitor CPU A; cross-CPU stub on B\n"
		"  --only LIST      phases: latency,syscalls,detect,"
		"detect-load,scale,spawn\n"
		"  --kills K        detect-load: stalls per variant and "
		"condition\n"
		"  --busy-sleep A,B detect-load: busy stubs sleep A..B us "
		"before each report\n"
		"  --scale-max N    largest stub count for the scale runs\n"
		"  --strict         exit 3 when a target is missed\n");
}

static unsigned parse_phases(const char *s)
{
	unsigned ph = 0;
	char *dup = strdup(s), *tok, *save = NULL;

	for (tok = strtok_r(dup, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "latency"))
			ph |= PH_LATENCY;
		else if (!strcmp(tok, "syscalls"))
			ph |= PH_SYSCALLS;
		else if (!strcmp(tok, "detect"))
			ph |= PH_DETECT;
		else if (!strcmp(tok, "detect-load"))
			ph |= PH_DETECT_LOAD;
		else if (!strcmp(tok, "scale"))
			ph |= PH_SCALE;
		else if (!strcmp(tok, "spawn"))
			ph |= PH_SPAWN;
		else
			die("--only: unknown phase '%s'", tok);
	}
	free(dup);
	return ph;
}

static long parse_num(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		fprintf(stderr, "stubwatch-bench: %s: bad value '%s' (%ld..%ld)\n",
			opt, s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	enum { O_VARIANT = 256, O_N, O_REPS, O_WARMUP, O_PIN, O_CPUS, O_ONLY,
	       O_OUT, O_SCALE_MAX, O_STRICT, O_VARIANTS, O_KILLS,
	       O_BUSY_SLEEP };
	static const struct option lopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "out", required_argument, NULL, O_OUT },
		{ "variant", required_argument, NULL, O_VARIANT },
		{ "variants", required_argument, NULL, O_VARIANTS },
		{ "n", required_argument, NULL, O_N },
		{ "reps", required_argument, NULL, O_REPS },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "pin", required_argument, NULL, O_PIN },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "only", required_argument, NULL, O_ONLY },
		{ "scale-max", required_argument, NULL, O_SCALE_MAX },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "kills", required_argument, NULL, O_KILLS },
		{ "busy-sleep", required_argument, NULL, O_BUSY_SLEEP },
		{ 0 },
	};
	long n = -1, reps = -1, warmup = -1, scale_max = -1, kills = -1;
	size_t len = 0;
	int c;

	for (int i = 0; i < argc && len < sizeof(o.cmdline) - 1; i++)
		len += (size_t)snprintf(o.cmdline + len, sizeof(o.cmdline) - len,
					"%s%s", i ? " " : "",
					i ? argv[i] : "stubwatch-bench");
	o.pins = (1 << PIN_SAME) | (1 << PIN_CROSS);
	o.phases = PH_ALL;
	while ((c = getopt_long(argc, argv, "qjh", lopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			o.quick = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case O_OUT:
			o.out_dir = optarg;
			break;
		case O_VARIANT:
			o.variant = variant_by_name(optarg);
			if (o.variant < 0) {
				fprintf(stderr,
					"stubwatch-bench: --variant: unknown "
					"'%s'\n",
					optarg);
				exit(2);
			}
			break;
		case O_VARIANTS: {
			char *list = strdup(optarg), *tok, *save = NULL;

			for (tok = strtok_r(list, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				int v = variant_by_name(tok);

				if (v < 0) {
					fprintf(stderr,
						"stubwatch-bench: --variants: "
						"unknown '%s'\n",
						tok);
					exit(2);
				}
				o.vmask |= 1u << v;
			}
			free(list);
			break;
		}
		case O_N:
			n = parse_num("--n", optarg, 1, 100000000);
			break;
		case O_REPS:
			reps = parse_num("--reps", optarg, 1, MAX_REPS);
			break;
		case O_WARMUP:
			warmup = parse_num("--warmup", optarg, 0, 100000000);
			break;
		case O_PIN:
			if (!strcmp(optarg, "same"))
				o.pins = 1 << PIN_SAME;
			else if (!strcmp(optarg, "cross"))
				o.pins = 1 << PIN_CROSS;
			else if (!strcmp(optarg, "both"))
				o.pins = 3;
			else {
				fprintf(stderr, "stubwatch-bench: --pin: "
						"same, cross or both\n");
				exit(2);
			}
			break;
		case O_CPUS:
			if (sscanf(optarg, "%d,%d", &o.cpu_a, &o.cpu_b) != 2 ||
			    o.cpu_a < 0 || o.cpu_b < 0 || o.cpu_a == o.cpu_b) {
				fprintf(stderr, "stubwatch-bench: --cpus A,B: "
						"two different CPU numbers\n");
				exit(2);
			}
			break;
		case O_ONLY:
			o.phases = parse_phases(optarg);
			break;
		case O_SCALE_MAX:
			scale_max = parse_num("--scale-max", optarg, 1, 10000);
			break;
		case O_STRICT:
			o.strict = true;
			break;
		case O_KILLS:
			kills = parse_num("--kills", optarg, 1, 1000);
			break;
		case O_BUSY_SLEEP:
			if (sscanf(optarg, "%u,%u", &o.dl_busy_min_us,
				   &o.dl_busy_max_us) != 2 ||
			    o.dl_busy_min_us > o.dl_busy_max_us ||
			    o.dl_busy_max_us > 10000000) {
				fprintf(stderr, "stubwatch-bench: --busy-sleep "
						"A,B: microseconds, A <= B <= "
						"10000000\n");
				exit(2);
			}
			break;
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}

	o.n = o.quick ? 5000 : 30000;
	o.reps = o.quick ? 5 : 9;
	o.warmup = o.quick ? 500 : 2000;
	o.sc_n = o.quick ? 5000 : 20000;
	o.detect_stalls = o.quick ? 10 : 60;
	o.detect_defaults = o.quick ? 0 : 3;
	o.dl_kills = o.quick ? 10 : 40;
	o.scale_max = o.quick ? 1000 : 10000;
	o.scale_n = o.quick ? 3000 : 20000;
	o.scale_reps = o.quick ? 5 : 7;
	o.loops_n = o.quick ? 2000 : 10000;
	o.loops_reps = o.quick ? 3 : 5;
	if (o.variant >= 0) {
		/* One variant, for an outside counter: latency only. */
		o.phases = PH_LATENCY;
		o.reps = 1;
	}
	if (n > 0)
		o.n = o.sc_n = o.scale_n = o.loops_n = (size_t)n;
	if (reps > 0)
		o.reps = o.scale_reps = o.loops_reps = (int)reps;
	if (warmup >= 0)
		o.warmup = (size_t)warmup;
	if (scale_max > 0)
		o.scale_max = (size_t)scale_max;
	if (kills > 0)
		o.dl_kills = (int)kills;
}

static void find_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		die("sched_getaffinity: %s", strerror(errno));
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			cpus_allowed[ncpus_allowed++] = i;
	if (o.cpu_a < 0) {
		o.cpu_a = cpus_allowed[0];
		o.cpu_b = ncpus_allowed > 1 ? cpus_allowed[1] : -1;
	} else if (!CPU_ISSET(o.cpu_a, &set) || !CPU_ISSET(o.cpu_b, &set)) {
		fprintf(stderr, "stubwatch-bench: --cpus: CPU not usable\n");
		exit(2);
	}
	if (o.cpu_b < 0 && (o.pins & (1 << PIN_CROSS))) {
		o.pins &= ~(1 << PIN_CROSS);
		skip("cross-CPU runs", "only one CPU is usable");
	}
}

int main(int argc, char **argv)
{
	int missed;

	if (argc == 2 && strcmp(argv[1], "--stub") == 0)
		return bench_stub_exec_main();
	parse_args(argc, argv);
	/* Names that let `perf stat --per-thread` tell the sides apart. */
	prctl(PR_SET_NAME, "sw-bench-mon", 0, 0, 0);
	/* A futex-variant monitor waits forever on a dead stub (that is the
	 * bug under study): never let the bench hang CI.  Stubs have
	 * PDEATHSIG and die with us. */
	alarm(o.quick ? 300 : 3600);
	find_cpus();
	header();

	if (o.phases & (PH_LATENCY | PH_SYSCALLS))
		open_pairs();
	if (o.phases & PH_LATENCY) {
		note("latency: %d reps x %zu round trips per variant and "
		     "pinning",
		     o.reps, o.n);
		run_latency();
		report_latency();
		latency_targets();
	}
	if (o.phases & PH_SYSCALLS) {
		note("syscalls per round trip");
		run_syscalls();
	}
	if (o.phases & (PH_LATENCY | PH_SYSCALLS))
		close_pairs();
	if (o.phases & PH_DETECT) {
		note("stall detection: %d stalls at T = 10 ms%s",
		     o.detect_stalls,
		     o.detect_defaults > 0 ?  ", then at the defaults (~7 s)"
					   : "");
		run_detect();
		report_detect();
	}
	if (o.phases & PH_DETECT_LOAD) {
		note("stall-kill lateness under load: %d stalls per variant, "
		     "quiet, beside %d CPU hogs, with %d busy stubs (~%d s)",
		     o.dl_kills, DL_HOGS, DL_BUSY_STUBS,
		     6 * o.dl_kills / 8 + 8);
		run_detect_load();
		report_detect_load();
	}
	if (o.phases & PH_SCALE) {
		note("scale: up to %zu stubs in one loop", o.scale_max);
		run_scale_stubs();
		report_scale_stubs();
		for (size_t i = 0; i < NSCALE; i++)
			scale_free(&scl[i]);
		note("scale: 1, 2, 4, 8 vCPU loops");
		run_scale_loops();
		report_scale_loops();
	}
	if (o.phases & PH_SPAWN) {
		note("spawn: plain against SW_SPAWN_PIDNS, %d cycles each",
		     o.quick ? 50 : 400);
		run_spawn();
		report_spawn();
	}
	missed = report_targets();
	write_outputs();
	return o.strict && missed ? 3 : 0;
}
