/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch-demo's state: set up and fed with the machine's events by
 * demo.c, printed and judged by demo-report.c.
 */
#ifndef SWU_DEMO_H
#define SWU_DEMO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "uml/uml.h"

#define MAX_KILLS 64

struct cfg {
	unsigned vcpus, stubs, tick_ms, stall_ticks;
	double duration_s;
	unsigned hijack_after_ms;
	enum swu_hijack hijack;
	const char *driver;
	bool poll;
	bool json;
	uint64_t preempt_ns;
};

/* Events from the vCPU threads, handed to the main thread. */
struct evq {
	pthread_mutex_t lock;
	struct swu_mevent *ev;
	size_t n, cap;
	bool oom;
};

/*
 * When a kill came, judged as the watchdog counts: its silence starts at
 * the later of the stub's last valid report and its last resume.  The two
 * differ: the monitor resumes a stub only after serving its report, and a
 * preempted stub waits in the run queue for a vCPU before its next resume.
 */
struct kill_timing {
	uint64_t after_report_ns; /* from its last valid report to the kill */
	uint64_t after_resume_ns; /* from its last resume to the kill       */
	uint64_t silence_ns;      /* from the later of the two              */
	uint64_t monitor_late_ns; /* the monitor's own timer reads were late */
	uint64_t starved_ns;      /* run-queue wait credited to the stub    */
};

struct kill_rec {
	struct swu_mevent ev;
	struct kill_timing t;
};

struct state {
	struct cfg c;
	struct swu_machine *m;
	struct evq q;
	bool tty;
	unsigned drawn; /* live status lines on screen */
	uint64_t prev_hs[64];
	uint64_t prev_t;
	struct kill_rec kills[MAX_KILLS];
	unsigned nkills, false_kills, protocol_kills, unexpected_exits;
	unsigned exits;
};

static inline double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

struct verdict {
	bool ok;
	uint64_t handshakes, syscalls, preempts;
	unsigned alive, ran_after_kill;
	char why[256];
};

/* demo-report.c: the events drained from the queue (counted and printed),
 * the live status lines, the verdict and the closing report. */
void demo_drain(struct state *st);
void demo_status(struct state *st, uint64_t now_rel);
void demo_add_why(struct verdict *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void demo_judge(struct state *st, uint64_t elapsed, struct verdict *v);
void demo_report_human(struct state *st, uint64_t elapsed,
		       const struct verdict *v);
void demo_report_json(struct state *st, uint64_t elapsed,
		      const struct verdict *v);

#endif
