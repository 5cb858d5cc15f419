/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The spawn phase: which kinds of spawn run (plain and SW_SPAWN_PIDNS, fn
 * and exec mode; as uid nobody too when the bench is root), and their
 * table.  spawn.c times them, apart from this file so that its timed
 * cycles compile as they did.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "phase.h"

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

void run_spawn(void)
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

void report_spawn(void)
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
