/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The syscalls phase: per round trip, syscalls, CPU time and context
 * switches of the monitor thread, the stub process and thread-wd's helper,
 * counted by the kernel (perf_event counters, perfev.c) around the measured
 * round trips only; and the syscall targets.
 */
#include <linux/perf_event.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "phase.h"

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

void run_syscalls(void)
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

			if (!pair_ok[v] || (v == V_FLOOR && pin == PIN_SAME))
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
	/* Adaptive polling across CPUs: both sides spin, so a round trip
	 * makes no system call on either (the monitor's look at its epoll
	 * set once per timer period rounds to 0). */
	if (scres[V_STUBWATCH_POLL][PIN_CROSS].ran) {
		struct sc_result *p = &scres[V_STUBWATCH_POLL][PIN_CROSS];

		target_le("stubwatch-poll syscalls = 0, monitor (cross)",
			  p->monitor, 0.005, NAN, NAN);
		target_le("stubwatch-poll syscalls = 0, stub (cross)", p->stub,
			  0.005, NAN, NAN);
	}
}
