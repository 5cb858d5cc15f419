/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The detect-load phase, run: stall-kill lateness past N*T, thread-wd
 * against stubwatch, quiet, beside CPU hogs, and with 1,000 busy stubs in
 * the same loop (detect-load.h says how it is measured;
 * detect-load-report.c writes the tables and the targets).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "detect-load.h"

const char *const dl_cond_names[DL_NCOND] = { "quiet", "2 CPU hogs",
					      "1000 busy" };
const char *const dl_cond_keys[DL_NCOND] = { "quiet", "cpu-hogs",
					     "busy-stubs" };
const int dl_variant[DL_NV] = { V_THREAD_WD, V_STUBWATCH };

struct dl_busy {
	struct pair p;
	struct dl_cell *cell;
	bool watched; /* thread-wd: its helper watches it */
};

struct dl_cell dlc[DL_NV][DL_NCOND];
char dl_skipped[DL_NCOND][200];
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

void dl_hogs_start(void)
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

void dl_hogs_stop(void)
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

void run_detect_load(void)
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
