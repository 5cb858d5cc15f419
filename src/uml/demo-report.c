// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What stubwatch-demo prints: each of the machine's events as the main
 * thread drains them from the queue (a line of text, or with --json one
 * JSON object), the live status line of each vCPU, and the closing report
 * (text or JSON); and the verdict of the run, which the exit status follows
 * (demo.c says what a run must show).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "demo.h"

/* ---- output -------------------------------------------------------------- */

/*
 * The kill is the SIGKILL, as the library stamps it (CLOCK_MONOTONIC, as
 * are both stamps of the event); the window is judged from the later of
 * the stub's last report and its last resume, as the library counts it.
 */
static void kill_timing(const struct swu_mevent *e, struct kill_timing *t)
{
	uint64_t from = e->resume_at_ns > e->report_at_ns ? e->resume_at_ns
							  : e->report_at_ns;
	uint64_t end = e->report_at_ns + e->detect_ns;

	if (e->kill.killed_at_ns >= from)
		end = e->kill.killed_at_ns;
	t->monitor_late_ns = e->kill.monitor_late_ns;
	t->starved_ns = e->kill.starved_ns;
	t->after_report_ns = end - e->report_at_ns;
	t->after_resume_ns = e->resume_at_ns ? end - e->resume_at_ns
					     : t->after_report_ns;
	t->silence_ns = end - from;
}

static const char *reason_name(enum sw_kill_reason r)
{
	switch (r) {
	case SW_KILL_STALL:
		return "stall";
	case SW_KILL_PROTOCOL:
		return "protocol";
	case SW_KILL_USER:
		return "user";
	}
	return "?";
}

static const char *blocked_json(int b)
{
	return b < 0 ? "null" : b ? "true" : "false";
}

static void erase_status(struct state *st)
{
	for (; st->drawn; st->drawn--)
		fputs("\033[1A\033[2K", stdout);
}

static void print_event_json(const struct swu_mevent *e)
{
	struct kill_timing t;

	printf("{\"event\":\"%s\",\"t_ms\":%.1f,\"vcpu\":%u,\"stub\":%u,"
	       "\"pid\":%d,\"program\":\"%s\",\"hijack\":\"%s\"",
	       e->type == SWU_ME_SPAWN ? "spawn"
	       : e->type == SWU_ME_KILL ? "kill"
					: "exit",
	       ms(e->t_ns), e->vcpu, e->stub, (int)e->pid,
	       swu_prog_name(e->prog.kind), swu_hijack_name(e->prog.hijack));
	if (e->type == SWU_ME_KILL) {
		kill_timing(e, &t);
		printf(",\"reason\":\"%s\",\"detect_ms\":%.1f,"
		       "\"detect_resume_ms\":%.1f,\"monitor_late_ms\":%.1f,"
		       "\"starved_ms\":%.1f,\"silent_ms\":%.1f,"
		       "\"stall_ticks\":%u,\"sigalrm_blocked\":%s,"
		       "\"sigblk\":\"%016llx\",\"state\":\"%c\",\"cpu_ms\":%.1f,"
		       "\"stall_window_ms\":%.1f,\"stall_run_ms\":%.1f,"
		       "\"stall_wait_ms\":%.1f,"
		       "\"false_kill\":%s,\"others_alive\":%u,"
		       "\"others_progressed\":%u,\"monitor_wait_ms\":%.1f",
		       reason_name(e->kill.reason), ms(t.after_report_ns),
		       ms(t.after_resume_ns), ms(t.monitor_late_ns),
		       ms(t.starved_ns), ms(e->kill.silent_ns),
		       e->kill.stall_ticks,
		       blocked_json(e->kill.sigalrm_blocked),
		       (unsigned long long)e->kill.sigblk, e->kill.state,
		       ms(e->kill.cpu_ns), ms(e->kill.stall_window_ns),
		       ms(e->kill.stall_run_ns), ms(e->kill.stall_wait_ns),
		       e->false_kill ? "true" : "false",
		       e->others_alive, e->others_progressed,
		       ms(e->monitor_wait_ns));
	} else if (e->type == SWU_ME_EXIT) {
		if (WIFEXITED(e->status))
			printf(",\"exit_code\":%d", WEXITSTATUS(e->status));
		else
			printf(",\"signal\":%d", WTERMSIG(e->status));
	}
	puts("}");
}

static void print_event_human(const struct state *st,
			      const struct swu_mevent *e)
{
	const char *prog = swu_prog_name(e->prog.kind);
	struct kill_timing t;
	char what[96];

	if (e->prog.hijack != SWU_HIJACK_NONE)
		snprintf(what, sizeof(what), "%s, hijacks itself: %s", prog,
			 swu_hijack_name(e->prog.hijack));
	else
		snprintf(what, sizeof(what), "%s", prog);

	switch (e->type) {
	case SWU_ME_SPAWN:
		printf("%7.3f s  spawn  stub %-3u pid %-7d vcpu%u  %s\n",
		       ms(e->t_ns) / 1e3, e->stub, (int)e->pid, e->vcpu, what);
		break;
	case SWU_ME_EXIT:
		if (WIFEXITED(e->status))
			printf("%7.3f s  exit   stub %-3u pid %-7d vcpu%u  %s: "
			       "status %d\n",
			       ms(e->t_ns) / 1e3, e->stub, (int)e->pid, e->vcpu,
			       what, WEXITSTATUS(e->status));
		else
			printf("%7.3f s  exit   stub %-3u pid %-7d vcpu%u  %s: "
			       "signal %d\n",
			       ms(e->t_ns) / 1e3, e->stub, (int)e->pid, e->vcpu,
			       what, WTERMSIG(e->status));
		break;
	case SWU_ME_KILL:
		kill_timing(e, &t);
		printf("%7.3f s  KILL   stub %-3u pid %-7d vcpu%u  %s\n"
		       "           reason %s, %.3f s after its last resume "
		       "(%.3f s after its last valid report; watchdog: %u "
		       "ticks, %.3f s silent)\n"
		       "           SIGALRM blocked: %s (SigBlk %016llx), state %c, "
		       "%.2f s CPU (%.2f s ran, %.2f s waited for a CPU in "
		       "the stall's last %.2f s); %u/%u other stubs ran "
		       "during the stall%s\n",
		       ms(e->t_ns) / 1e3, e->stub, (int)e->pid, e->vcpu, what,
		       reason_name(e->kill.reason), ms(t.after_resume_ns) / 1e3,
		       ms(t.after_report_ns) / 1e3, e->kill.stall_ticks,
		       ms(e->kill.silent_ns) / 1e3,
		       e->kill.sigalrm_blocked < 0 ? "n/a"
		       : e->kill.sigalrm_blocked   ? "yes"
						   : "no",
		       (unsigned long long)e->kill.sigblk, e->kill.state,
		       ms(e->kill.cpu_ns) / 1e3,
		       ms(e->kill.stall_run_ns) / 1e3,
		       ms(e->kill.stall_wait_ns) / 1e3,
		       ms(e->kill.stall_window_ns) / 1e3, e->others_progressed,
		       e->others_alive, e->false_kill ? "  ** FALSE KILL **" : "");
		break;
	}
	(void)st;
}

static void account(struct state *st, const struct swu_mevent *e)
{
	if (e->type == SWU_ME_KILL) {
		if (st->nkills < MAX_KILLS) {
			struct kill_rec *k = &st->kills[st->nkills];

			k->ev = *e;
			kill_timing(e, &k->t);
		}
		st->nkills++;
		if (e->false_kill)
			st->false_kills++;
		if (e->kill.reason == SW_KILL_PROTOCOL)
			st->protocol_kills++;
	} else if (e->type == SWU_ME_EXIT) {
		st->exits++;
		/* the demo's programs run for ever: any exit is a failure */
		st->unexpected_exits++;
	}
}

void demo_drain(struct state *st)
{
	struct swu_mevent *ev;
	size_t n;

	pthread_mutex_lock(&st->q.lock);
	ev = st->q.ev;
	n = st->q.n;
	st->q.ev = NULL;
	st->q.n = st->q.cap = 0;
	pthread_mutex_unlock(&st->q.lock);
	if (!n)
		return;
	if (!st->c.json && st->tty)
		erase_status(st);
	for (size_t i = 0; i < n; i++) {
		account(st, &ev[i]);
		if (st->c.json)
			print_event_json(&ev[i]);
		else
			print_event_human(st, &ev[i]);
	}
	free(ev);
	fflush(stdout);
}

void demo_status(struct state *st, uint64_t now_rel)
{
	double dt = (double)(now_rel - st->prev_t) / 1e9;

	if (st->c.json)
		return;
	if (st->tty)
		erase_status(st);
	for (unsigned i = 0; i < st->c.vcpus; i++) {
		struct swu_vcpu_stats vs;
		struct swu_stub_stats ss;
		uint64_t d;

		swu_machine_vcpu_stats(st->m, i, &vs);
		d = vs.handshakes - st->prev_hs[i];
		st->prev_hs[i] = vs.handshakes;
		printf("%7.3f s  vcpu%-2u %9.0f handshakes/s  stubs alive %u  ",
		       (double)now_rel / 1e9, i,
		       dt > 0 ? (double)d / dt : 0.0, vs.spawned_alive);
		if (vs.running_stub >= 0 &&
		    swu_machine_stub_stats(st->m, (unsigned)vs.running_stub,
					   &ss) == 0) {
			if (vs.running_silent_ns > 100000000ull)
				printf("WAITING on stub %d (pid %d, %s): silent "
				       "%.1f s",
				       vs.running_stub, (int)ss.pid,
				       swu_prog_name(ss.prog.kind),
				       (double)vs.running_silent_ns / 1e9);
			else
				printf("running stub %d (%s)", vs.running_stub,
				       swu_prog_name(ss.prog.kind));
		} else {
			printf("idle");
		}
		putchar('\n');
		st->drawn++;
	}
	if (!st->tty)
		st->drawn = 0;
	st->prev_t = now_rel;
	fflush(stdout);
}

/* ---- the report ---------------------------------------------------------- */

void demo_add_why(struct verdict *v, const char *fmt, ...)
{
	size_t len = strlen(v->why);
	va_list ap;

	v->ok = false;
	if (len && len + 2 < sizeof(v->why)) {
		strcpy(v->why + len, "; ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(v->why + len, sizeof(v->why) - len, fmt, ap);
	va_end(ap);
}

void demo_judge(struct state *st, uint64_t elapsed, struct verdict *v)
{
	const struct cfg *c = &st->c;
	uint64_t t_ns = (uint64_t)c->tick_ms * 1000000ull;
	uint64_t lo = t_ns * c->stall_ticks, hi = t_ns * (c->stall_ticks + 1);
	uint64_t last_kill = 0;
	unsigned hijack_kills = 0;

	memset(v, 0, sizeof(*v));
	v->ok = true;
	for (unsigned i = 0; i < c->vcpus; i++) {
		struct swu_vcpu_stats vs;

		swu_machine_vcpu_stats(st->m, i, &vs);
		v->handshakes += vs.handshakes;
		v->syscalls += vs.syscalls;
		v->preempts += vs.preempts;
		if (vs.error)
			demo_add_why(v, "vcpu%u failed: %s", i,
				strerror(-vs.error));
	}
	for (unsigned i = 0; i < st->nkills && i < MAX_KILLS; i++) {
		const struct swu_mevent *e = &st->kills[i].ev;
		const struct kill_timing *t = &st->kills[i].t;
		uint64_t late = t->monitor_late_ns + t->starved_ns;

		if (e->false_kill)
			continue;
		hijack_kills++;
		if (e->t_ns > last_kill)
			last_kill = e->t_ns;
		/* never early; late only by what the library owns up to */
		if (t->silence_ns < lo || t->silence_ns > hi + late)
			demo_add_why(v, "pid %d detected %.3f s after its "
					"last resume, not in %.3f..%.3f s "
					"(+%.3f s late)",
				(int)e->pid, ms(t->silence_ns) / 1e3,
				ms(lo) / 1e3, ms(hi) / 1e3, ms(late) / 1e3);
		if (e->kill.sigalrm_blocked != 1)
			demo_add_why(v, "pid %d: SIGALRM not seen blocked",
				(int)e->pid);
		if (c->vcpus > 1 && e->others_progressed < e->others_alive)
			demo_add_why(v, "only %u/%u other stubs ran during "
					"the stall",
				e->others_progressed, e->others_alive);
	}
	if (st->false_kills)
		demo_add_why(v, "%u false kill(s)", st->false_kills);
	if (st->unexpected_exits)
		demo_add_why(v, "%u unexpected exit(s)", st->unexpected_exits);
	if (c->hijack != SWU_HIJACK_NONE && !hijack_kills &&
	    elapsed > (uint64_t)c->hijack_after_ms * 1000000ull + hi)
		demo_add_why(v, "the hijacked stub was not killed");
	for (unsigned i = 0; i < swu_machine_nstubs(st->m); i++) {
		struct swu_stub_stats ss;

		swu_machine_stub_stats(st->m, i, &ss);
		if (!ss.alive || ss.prog.hijack != SWU_HIJACK_NONE)
			continue;
		v->alive++;
		if (!last_kill || ss.last_report_ns > last_kill)
			v->ran_after_kill++;
	}
	if (last_kill && v->ran_after_kill < v->alive)
		demo_add_why(v, "only %u/%u stubs ran after the kill",
			v->ran_after_kill, v->alive);
}

void demo_report_human(struct state *st, uint64_t elapsed,
		       const struct verdict *v)
{
	const struct cfg *c = &st->c;
	double secs = (double)elapsed / 1e9;

	printf("\n== stubwatch-demo report ==\n");
	printf("run           %.2f s, %u vCPUs, %u stubs, tick %u ms, %u stall "
	       "ticks, preemption every %.3g ms, driver %s, polling %s\n",
	       secs, c->vcpus, swu_machine_nstubs(st->m), c->tick_ms,
	       c->stall_ticks, ms(c->preempt_ns), c->driver,
	       c->poll ? "on" : "off");
	printf("handshakes    %llu (%.0f/s): %llu served syscalls, %llu "
	       "preemptions\n",
	       (unsigned long long)v->handshakes,
	       secs > 0 ? (double)v->handshakes / secs : 0.0,
	       (unsigned long long)v->syscalls, (unsigned long long)v->preempts);
	for (unsigned i = 0; i < c->vcpus; i++) {
		struct swu_vcpu_stats vs;

		swu_machine_vcpu_stats(st->m, i, &vs);
		printf("  vcpu%-2u      %llu handshakes in %llu quanta, %llu "
		       "kill(s)\n",
		       i, (unsigned long long)vs.handshakes,
		       (unsigned long long)vs.quanta,
		       (unsigned long long)vs.kills);
	}
	printf("kills         %u\n", st->nkills);
	for (unsigned i = 0; i < st->nkills && i < MAX_KILLS; i++) {
		const struct swu_mevent *e = &st->kills[i].ev;
		const struct kill_timing *t = &st->kills[i].t;

		printf("  pid %d (stub %u, %s, hijack %s) on vcpu%u: %s\n"
		       "    detected %.3f s after its last resume (%.3f s after "
		       "its last valid report); expected %.3f..%.3f s; "
		       "watchdog counted %u ticks\n",
		       (int)e->pid, e->stub, swu_prog_name(e->prog.kind),
		       swu_hijack_name(e->prog.hijack), e->vcpu,
		       reason_name(e->kill.reason), ms(t->after_resume_ns) / 1e3,
		       ms(t->after_report_ns) / 1e3,
		       c->tick_ms * c->stall_ticks / 1e3,
		       c->tick_ms * (c->stall_ticks + 1) / 1e3,
		       e->kill.stall_ticks);
		if (t->monitor_late_ns)
			printf("    the monitor itself was %.1f ms late\n",
			       ms(t->monitor_late_ns));
		if (t->starved_ns)
			printf("    %.1f ms of run-queue wait were credited to "
			       "the stub\n",
			       ms(t->starved_ns));
		printf("    the vCPU thread waited %.3f s for a CPU meanwhile\n"
		       "    SIGALRM blocked: %s (SigBlk %016llx), state %c, "
		       "%.2f s CPU at the kill\n",
		       ms(e->monitor_wait_ns) / 1e3,
		       e->kill.sigalrm_blocked < 0 ? "n/a"
		       : e->kill.sigalrm_blocked   ? "yes"
						   : "no",
		       (unsigned long long)e->kill.sigblk, e->kill.state,
		       ms(e->kill.cpu_ns) / 1e3);
		if (e->kill.stall_window_ns)
			printf("    in the last %.2f s of the stall it ran %.2f s "
			       "and waited %.2f s for a CPU\n",
			       ms(e->kill.stall_window_ns) / 1e3,
			       ms(e->kill.stall_run_ns) / 1e3,
			       ms(e->kill.stall_wait_ns) / 1e3);
		printf("    other stubs: %u/%u made handshakes during the "
		       "stall%s\n",
		       e->others_progressed, e->others_alive,
		       c->vcpus == 1 ? " (one vCPU: they wait for it)" : "");
	}
	printf("false kills   %u\n", st->false_kills);
	printf("exits         %u\n", st->exits);
	printf("stubs alive   %u well-behaved, %u made handshakes after the "
	       "last kill\n",
	       v->alive, v->ran_after_kill);
	printf("verdict       %s%s%s\n", v->ok ? "OK" : "FAIL",
	       v->ok ? "" : ": ", v->why);
}

void demo_report_json(struct state *st, uint64_t elapsed,
		      const struct verdict *v)
{
	const struct cfg *c = &st->c;

	printf("{\"event\":\"summary\",\"vcpus\":%u,\"stubs\":%u,"
	       "\"stubs_total\":%u,\"tick_ms\":%u,\"stall_ticks\":%u,"
	       "\"preempt_ms\":%.3f,\"duration_s\":%.3f,\"driver\":\"%s\","
	       "\"poll\":%s,\"hijack\":\"%s\",\"handshakes\":%llu,\"syscalls\":%llu,"
	       "\"preempts\":%llu,\"false_kills\":%u,\"protocol_kills\":%u,"
	       "\"exits\":%u,\"kills\":[",
	       c->vcpus, c->stubs, swu_machine_nstubs(st->m), c->tick_ms,
	       c->stall_ticks, ms(c->preempt_ns), (double)elapsed / 1e9,
	       c->driver, c->poll ? "true" : "false",
	       swu_hijack_name(c->hijack), (unsigned long long)v->handshakes,
	       (unsigned long long)v->syscalls,
	       (unsigned long long)v->preempts, st->false_kills,
	       st->protocol_kills, st->exits);
	for (unsigned i = 0; i < st->nkills && i < MAX_KILLS; i++) {
		const struct swu_mevent *e = &st->kills[i].ev;
		const struct kill_timing *t = &st->kills[i].t;

		printf("%s{\"pid\":%d,\"vcpu\":%u,\"reason\":\"%s\","
		       "\"detect_ms\":%.1f,\"detect_resume_ms\":%.1f,"
		       "\"monitor_late_ms\":%.1f,\"starved_ms\":%.1f,"
		       "\"sigalrm_blocked\":%s,"
		       "\"state\":\"%c\",\"hijack\":\"%s\",\"false_kill\":%s}",
		       i ? "," : "", (int)e->pid, e->vcpu,
		       reason_name(e->kill.reason), ms(t->after_report_ns),
		       ms(t->after_resume_ns), ms(t->monitor_late_ns),
		       ms(t->starved_ns),
		       blocked_json(e->kill.sigalrm_blocked), e->kill.state,
		       swu_hijack_name(e->prog.hijack),
		       e->false_kill ? "true" : "false");
	}
	printf("],\"ok\":%s}\n", v->ok ? "true" : "false");
}
