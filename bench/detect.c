/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The detect phase: how long from a stub's last report to its SIGKILL (the
 * signal:signal_generate tracepoint, perfev.c) and to the wait returning
 * with it reaped; many stalls at T = 10 ms, and in full mode a few at the
 * defaults, in parallel loops.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "phase.h"

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

void run_detect(void)
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

void report_detect(void)
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
