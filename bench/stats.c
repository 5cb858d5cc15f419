/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Percentiles (nearest rank) and medians. */
#include <math.h>
#include <stdlib.h>

#include "bench.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least q of the samples at or
 * below it. */
double quantile_sorted(const uint64_t *sorted, size_t n, double q)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)ceil(q * (double)n);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)sorted[k - 1];
}

void stats_compute(uint64_t *samples, size_t n, struct lat_stats *st)
{
	qsort(samples, n, sizeof(*samples), cmp_u64);
	st->n = n;
	st->p50 = quantile_sorted(samples, n, 0.50) / 1e3;
	st->p90 = quantile_sorted(samples, n, 0.90) / 1e3;
	st->p99 = quantile_sorted(samples, n, 0.99) / 1e3;
	st->p999 = quantile_sorted(samples, n, 0.999) / 1e3;
	st->max = n ? (double)samples[n - 1] / 1e3 : 0;
}

double median_d(double *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Nearest rank over doubles (sorts v); NAN if there are none. */
double pct_d(double *v, size_t n, double q)
{
	size_t k;

	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_d);
	k = (size_t)ceil(q * (double)n);
	if (k < 1)
		k = 1;
	return v[k - 1];
}

void minmax_d(const double *v, size_t n, double *lo, double *hi)
{
	*lo = *hi = n ? v[0] : NAN;
	for (size_t i = 1; i < n; i++) {
		if (v[i] < *lo)
			*lo = v[i];
		if (v[i] > *hi)
			*hi = v[i];
	}
}
