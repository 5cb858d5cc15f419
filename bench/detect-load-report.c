/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The detect-load phase, reported: the lateness table in every format,
 * what stubwatch's kill info said of its false kills, any kill outside the
 * bound of src/watchdog.h, and the phase's targets.
 */
#include <math.h>
#include <stdio.h>

#include "detect-load.h"

/* "-" for a figure the variant does not have. */
static const char *dl_fmt(char *buf, size_t len, bool have, double v)
{
	if (!have || isnan(v))
		return "-";
	snprintf(buf, len, "%.2f", v);
	return buf;
}

void report_detect_load(void)
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
