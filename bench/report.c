/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch-bench's report writers.  The phases add to three outputs as they
 * run: the human tables, the same tables in markdown, and JSON lines; and
 * they set targets.  At the end the targets become the last table and
 * write_outputs() prints the tables (or, with --json, the JSON lines) and,
 * with --out DIR, writes all three and latency.dat, the latency phase's
 * percentile curves for bench/latency.gp.  die() and note() are the bench's
 * messages on stderr.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "phase.h"

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "stubwatch-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

void note(const char *fmt, ...)
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

void jsonl(const char *fmt, ...)
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
struct text human, md;

void tprintf(struct text *t, const char *fmt, ...)
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
void skip(const char *what, const char *why)
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
void target_le(const char *name, double value, double limit, double lo,
	       double hi)
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

void target_text(const char *name, bool met, const char *fmt, ...)
{
	struct target *t = target_add(name);
	va_list ap;

	t->ran = true;
	t->met = met;
	va_start(ap, fmt);
	vsnprintf(t->shown, sizeof(t->shown), fmt, ap);
	va_end(ap);
}

void target_skip(const char *name, const char *why)
{
	struct target *t = target_add(name);

	snprintf(t->shown, sizeof(t->shown), "%s", why);
}

/* ---- targets and output ----------------------------------------------------- */

int report_targets(void)
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

void header(void)
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
	if (o.slice && o.slice < o.n)
		tprintf(&human,
			"latency: within a rep the variants take turns every "
			"%zu round trips (%zu untimed before each later turn)\n",
			o.slice,
			o.warmup < SLICE_WARMUP ? o.warmup : (size_t)SLICE_WARMUP);
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

void write_outputs(void)
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
