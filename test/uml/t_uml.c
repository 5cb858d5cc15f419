// SPDX-License-Identifier: LGPL-2.1-or-later
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../t_common.h"
#include "t_uml.h"

void t_fail_msg(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "#   %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void t_info(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void t_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int t_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

int t_count_children(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[300];
		FILE *f;
		long pid;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children",
			 de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fscanf(f, "%ld", &pid) == 1)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

int t_uml_can_run(void)
{
	int fd;

	if (!swu_supported()) {
		t_info("SKIP: the UML model is written for x86_64");
		return T_SKIP;
	}
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL) {
		t_info("SKIP: this kernel has no seccomp");
		return T_SKIP;
	}
	/* also catches valgrind 3.19, which does not know pidfd_open */
	fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0) {
		t_info("SKIP: pidfd_open: %s", strerror(errno));
		return T_SKIP;
	}
	close(fd);
	return T_PASS;
}

/* ---- the runner ---------------------------------------------------------- */

static int run_case(const struct t_case *c)
{
	int fds0, fds1, kids, r;

	r = t_uml_can_run();
	if (r != T_PASS)
		return r;
	fds0 = t_count_fds();
	r = c->fn();
	if (r != T_PASS)
		return r;
	fds1 = t_count_fds();
	kids = t_count_children();
	if (fds1 != fds0) {
		t_fail_msg(__FILE__, __LINE__, "%s: %d fds before, %d after",
			   c->name, fds0, fds1);
		return T_FAIL;
	}
	if (kids != 0) {
		t_fail_msg(__FILE__, __LINE__, "%s: %d child processes left",
			   c->name, kids);
		return T_FAIL;
	}
	return T_PASS;
}

/* Wait for the case's process, at most timeout_s.  Returns its result. */
static int wait_case(const struct t_case *c, pid_t pid)
{
	int pidfd, status, r;
	struct pollfd pfd;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0) {
		pfd.fd = pidfd;
		pfd.events = POLLIN;
		do
			r = poll(&pfd, 1, (int)c->timeout_s * 1000);
		while (r < 0 && errno == EINTR);
		close(pidfd);
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "#   %s: timed out after %u s\n", c->name,
				c->timeout_s);
			return T_FAIL;
		}
	} else {
		alarm(c->timeout_s); /* no pidfd: the case skips anyway */
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return T_FAIL;
	alarm(0);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fprintf(stderr, "#   %s: killed by signal %d\n", c->name,
		WTERMSIG(status));
	return T_FAIL;
}

static bool selected(int argc, char **argv, const char *name)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int t_run(int argc, char **argv, const struct t_case *cases, size_t n)
{
	unsigned planned = 0, num = 0, pass = 0, fail = 0, skip = 0;

	for (size_t i = 0; i < n; i++)
		planned += selected(argc, argv, cases[i].name);
	printf("TAP version 13\n1..%u\n", planned);
	fflush(stdout);
	for (size_t i = 0; i < n; i++) {
		const struct t_case *c = &cases[i];
		pid_t pid;
		int lock, r;

		if (!selected(argc, argv, c->name))
			continue;
		num++;
		lock = t_cpu_lock(0);
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid < 0) {
			perror("fork");
			t_cpu_unlock(lock);
			return T_FAIL;
		}
		if (pid == 0) {
			t_cpu_unlock(lock);
			r = run_case(c);
			fflush(stdout);
			exit(r); /* exit(), not _exit(): LeakSanitizer looks */
		}
		r = wait_case(c, pid);
		t_cpu_unlock(lock);
		if (r == T_PASS) {
			pass++;
			printf("ok %u %s\n", num, c->name);
		} else if (r == T_SKIP) {
			skip++;
			printf("ok %u %s # SKIP\n", num, c->name);
		} else {
			fail++;
			printf("not ok %u %s\n", num, c->name);
		}
		fflush(stdout);
	}
	printf("# passed %u, failed %u, skipped %u\n", pass, fail, skip);
	if (fail)
		return 1;
	return pass == 0 && skip > 0 ? 77 : 0;
}

/* ---- machine events ------------------------------------------------------ */

void t_events_init(struct t_events *e)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
}

void t_events_fini(struct t_events *e)
{
	pthread_mutex_destroy(&e->lock);
}

void t_events_cb(const struct swu_mevent *ev, void *userdata)
{
	struct t_events *e = userdata;

	pthread_mutex_lock(&e->lock);
	if (e->n < T_MAX_EVENTS)
		e->ev[e->n++] = *ev;
	switch (ev->type) {
	case SWU_ME_KILL:
		e->kills++;
		e->false_kills += ev->false_kill;
		break;
	case SWU_ME_EXIT:
		e->exits++;
		break;
	case SWU_ME_SPAWN:
		e->spawns++;
		break;
	}
	pthread_mutex_unlock(&e->lock);
}

unsigned t_events_kills(struct t_events *e)
{
	unsigned n;

	pthread_mutex_lock(&e->lock);
	n = e->kills;
	pthread_mutex_unlock(&e->lock);
	return n;
}

bool t_events_kill(struct t_events *e, unsigned i, struct swu_mevent *ret)
{
	bool found = false;

	pthread_mutex_lock(&e->lock);
	for (unsigned k = 0, seen = 0; k < e->n; k++) {
		if (e->ev[k].type != SWU_ME_KILL)
			continue;
		if (seen++ == i) {
			*ret = e->ev[k];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return found;
}

unsigned t_stalled_stubs(struct swu_machine *m, uint64_t *prev)
{
	unsigned stalled = 0;

	for (unsigned i = 0; i < swu_machine_nstubs(m); i++) {
		struct swu_stub_stats ss;

		if (swu_machine_stub_stats(m, i, &ss) < 0)
			continue;
		if (!ss.alive || ss.prog.hijack != SWU_HIJACK_NONE)
			continue;
		if (ss.handshakes == prev[i])
			stalled++;
		prev[i] = ss.handshakes;
	}
	return stalled;
}

/* ---- load runs ----------------------------------------------------------- */

struct load_ctx {
	struct t_events ev; /* first: t_events_cb's userdata */
	const struct t_load *L;
};

static void load_plan(unsigned vcpu, unsigned idx, struct swu_prog *p,
		      void *ud)
{
	static const enum swu_prog_kind mix[] = { SWU_PROG_CHURN, SWU_PROG_CPU,
						  SWU_PROG_MIXED };
	const struct load_ctx *c = ud;
	unsigned base = c->L->vcpus * c->L->stubs_per_vcpu;

	(void)vcpu;
	memset(p, 0, sizeof(*p));
	if (idx >= base) {
		p->kind = SWU_PROG_CHURN;
		p->hijack = c->L->hijack[idx - base].kind;
		p->hijack_after_ns = c->L->hijack[idx - base].after_s *
				     1000000000ull;
		return;
	}
	p->kind = mix[idx % 3];
}

/*
 * A kill of a well-behaved stub.  In flight it either runs (and reports
 * within a preemption tick of CPU time: at a trap, or at the SIGALRM the
 * monitor sends every tick) or waits for a CPU.  So if it had the CPU for
 * less than two preemption ticks of its silence, the host starved it: the
 * watchdog did its job on a stub that looked hung.  Otherwise it is a
 * false kill.  Returns T_PASS (starvation, counted), or T_FAIL.
 */
int t_judge_false_kill(struct t_sampler *smp, const char *name,
		       const struct swu_mevent *k, uint64_t preempt_ns)
{
	struct t_sched st;

	if (t_sampler_stub(smp, k->stub, k->t_ns - k->silence_ns, k->t_ns,
			   false, &st) < 0) {
		t_fail_msg(__FILE__, __LINE__,
			   "%s: FALSE KILL of stub %u (%s), no schedstat samples",
			   name, k->stub, swu_prog_name(k->prog.kind));
		return T_FAIL;
	}
	t_info("%s: stub %u (%s) killed after %.3f s of silence: in %.3f s "
	       "sampled it ran %.3f s and waited %.3f s for a CPU; "
	       "SigBlk %016llx, state %c; credited %.3f s",
	       name, k->stub, swu_prog_name(k->prog.kind),
	       k->silence_ns / 1e9, st.span_ns / 1e9, st.cpu_ns / 1e9,
	       st.wait_ns / 1e9, (unsigned long long)k->kill.sigblk,
	       k->kill.state, k->kill.starved_ns / 1e9);
	T_CHECK(st.cpu_ns < 2 * preempt_ns,
		"FALSE KILL: stub %u had the CPU for %.3f s and did not report",
		k->stub, st.cpu_ns / 1e9);
	t_info("%s: host starvation, not a fault: the stub was kept off the "
	       "CPUs", name);
	return T_PASS;
}

int t_machine_start(struct swu_machine *m, const char *name,
		    uint64_t preempt_ns)
{
	struct sw_kill_info k;
	unsigned stub;
	int r;

	r = swu_machine_start(m);
	if (r == 0)
		return T_PASS;
	if (r == -ENOSYS) {
		t_info("SKIP: %s", strerror(-r));
		swu_machine_free(m);
		return T_SKIP;
	}
	if (r != -ETIMEDOUT || swu_machine_start_kill(m, &stub, &k) < 0) {
		t_fail_msg(__FILE__, __LINE__, "%s: machine_start: %s", name,
			   strerror(-r));
		swu_machine_free(m);
		return T_FAIL;
	}
	t_info("%s: stub %u killed before its hello: silent %.3f s, in a "
	       "%.3f s window it ran %.3f s and waited %.3f s (credited "
	       "%.3f s), state %c, monitor late %.3f s",
	       name, stub, k.silent_ns / 1e9, k.stall_window_ns / 1e9,
	       k.stall_run_ns / 1e9, k.stall_wait_ns / 1e9,
	       k.starved_ns / 1e9, k.state, k.monitor_late_ns / 1e9);
	swu_machine_free(m);
	if (k.stall_window_ns > 0 && k.stall_run_ns < 2 * preempt_ns &&
	    2 * k.stall_wait_ns >= k.stall_window_ns) {
		t_info("SKIP: %s: host starvation, not a fault: the starting "
		       "stub was kept off the CPUs", name);
		return T_SKIP;
	}
	t_fail_msg(__FILE__, __LINE__,
		   "%s: a starting stub had the CPU and made no hello", name);
	return T_FAIL;
}

static int judge_false_kill(struct load_ctx *c, struct t_sampler *smp,
			    const struct swu_mevent *k, unsigned *starved)
{
	if (t_judge_false_kill(smp, c->L->name, k, c->L->preempt_ns) !=
	    T_PASS)
		return T_FAIL;
	(*starved)++;
	return T_PASS;
}

static int check_kills(struct load_ctx *c, struct t_sampler *smp,
		       unsigned *starved)
{
	const struct t_load *L = c->L;
	unsigned hijack_kills = 0;
	struct swu_mevent k;

	for (unsigned i = 0; t_events_kill(&c->ev, i, &k); i++) {
		t_info("%s: kill %u: pid %d stub %u (%s, hijack %s) by vcpu%u "
		       "at %.3f s: %.3f s after its last report, %.3f s of "
		       "silence (watchdog: %.3f s), SigBlk %016llx, state %c",
		       L->name, i, (int)k.pid, k.stub,
		       swu_prog_name(k.prog.kind),
		       swu_hijack_name(k.prog.hijack), k.vcpu, k.t_ns / 1e9,
		       k.detect_ns / 1e9, k.silence_ns / 1e9,
		       k.kill.silent_ns / 1e9,
		       (unsigned long long)k.kill.sigblk, k.kill.state);
		if (k.false_kill) {
			if (judge_false_kill(c, smp, &k, starved) != T_PASS)
				return T_FAIL;
			continue;
		}
		hijack_kills++;
		if (t_check_stall_kill(&k, L->tick_ns, L->stall_ticks,
				       L->preempt_ns) != T_PASS)
			return T_FAIL;
	}
	T_CHECK(hijack_kills == L->nhijacks, "%u hijackers killed of %u",
		hijack_kills, L->nhijacks);
	T_CHECK(c->ev.exits == 0, "%u stubs exited", c->ev.exits);
	return T_PASS;
}

/* The longest wait for a CPU over the second before `now`, of n entities
 * (vCPU threads, or stubs), each from the sample before the second to the
 * first after it.  That one comes within 10 ms if the host lets the sampler
 * run: wait for it (up to `tries` passes) rather than judge without it. */
static uint64_t worst_wait(struct t_sampler *smp, bool stubs, unsigned n,
			   uint64_t now, int tries)
{
	uint64_t worst = 0;

	for (unsigned i = 0; i < n; i++) {
		struct t_sched st;
		int r, k = 0;

		while ((r = (stubs ? t_sampler_stub : t_sampler_vcpu)(
				smp, i, now - 1000000000ull, now, true, &st)) <
			       0 &&
		       k++ < tries)
			t_sleep_ms(10);
		if (r == 0 && st.wait_ns > worst)
			worst = st.wait_ns;
	}
	return worst;
}

/* A second in which some well-behaved stub made no handshake: a fault,
 * unless a vCPU thread, or a stub (the one a vCPU waits for holds up the
 * others), was kept off the CPUs for a quarter of it. */
static int judge_stalled_second(const struct t_load *L, struct t_sampler *smp,
				unsigned sec, int stalled, uint64_t now,
				unsigned *starved)
{
	uint64_t worst = worst_wait(smp, false, L->vcpus, now, 500);
	/* the well-behaved stubs (load_plan() puts the hijackers last); a
	 * stub's sample of the pass that took the vCPUs' may predate `now` */
	uint64_t worst_stub = worst_wait(smp, true,
					 L->vcpus * L->stubs_per_vcpu, now, 50);

	if (worst_stub >= 250000000ull || worst >= 250000000ull) {
		bool stub = worst_stub >= 250000000ull;

		t_info("%s: second %u: %d stubs made no handshake, and a %s "
		       "waited %.3f s for a CPU: host starvation",
		       L->name, sec, stalled, stub ? "stub" : "vCPU thread",
		       (stub ? worst_stub : worst) / 1e9);
		(*starved)++;
		return T_PASS;
	}
	t_fail_msg(__FILE__, __LINE__,
		   "%s: second %u: %d stubs made no handshake (vCPU threads "
		   "waited at most %.3f s for a CPU, stubs %.3f s)",
		   L->name, sec, stalled, worst / 1e9, worst_stub / 1e9);
	return T_FAIL;
}

int t_load_run(const struct t_load *L)
{
	struct load_ctx c = { .L = L };
	struct swu_machine_opts o = {
		.vcpus = L->vcpus, .stubs_per_vcpu = L->stubs_per_vcpu,
		.extra_stubs = L->nhijacks, .tick_ns = L->tick_ns,
		.stall_ticks = L->stall_ticks, .preempt_ns = L->preempt_ns,
		.driver = L->driver, .plan = load_plan,
		.on_event = t_events_cb, .userdata = &c,
	};
	struct t_sampler *smp = NULL;
	struct swu_machine *m;
	uint64_t *prev, hs = 0, pre = 0;
	unsigned starved = 0, bad_seconds = 0;
	int r;

	if (swu_driver_check(L->driver) == -EOPNOTSUPP) {
		t_info("SKIP: driver %s: not in this build (no libev)",
		       L->driver);
		return T_SKIP;
	}
	t_events_init(&c.ev);
	r = swu_machine_new(&o, &m);
	T_CHECK(r == 0, "machine_new: %s", strerror(-r));
	prev = calloc(swu_machine_nstubs(m), sizeof(*prev));
	T_CHECK(prev, "calloc");
	r = t_machine_start(m, L->name, L->preempt_ns);
	if (r != T_PASS) {
		free(prev);
		return r;
	}
	r = t_sampler_start(m, &smp);
	T_CHECK(r == 0, "sampler: %s", strerror(-r));

	t_stalled_stubs(m, prev);
	for (unsigned s = 1; s <= L->seconds; s++) {
		t_sleep_ms(1000);
		r = (int)t_stalled_stubs(m, prev);
		if (r > 0 &&
		    judge_stalled_second(L, smp, s, r,
					 swu_machine_elapsed_ns(m),
					 &starved) != T_PASS)
			bad_seconds++;
		if (s % 10 == 0 || s == L->seconds) {
			hs = pre = 0;
			for (unsigned v = 0; v < L->vcpus; v++) {
				struct swu_vcpu_stats vs;

				swu_machine_vcpu_stats(m, v, &vs);
				hs += vs.handshakes;
				pre += vs.preempts;
			}
			t_info("%s: %u s: %llu handshakes, %llu preemptions, "
			       "%u kills", L->name, s,
			       (unsigned long long)hs, (unsigned long long)pre,
			       t_events_kills(&c.ev));
		}
	}
	r = swu_machine_stop(m);
	T_CHECK(r == 0, "a vCPU failed: %s", strerror(-r));
	r = check_kills(&c, smp, &starved);
	if (r != T_PASS)
		return r;
	T_CHECK(bad_seconds == 0, "%u seconds with a stalled stub",
		bad_seconds);
	/* preemption works: each vCPU preempts many times a second */
	T_CHECK(pre >= (uint64_t)L->seconds * L->vcpus * 10,
		"%llu preemptions", (unsigned long long)pre);
	t_sampler_stop(smp);
	swu_machine_free(m);
	free(prev);
	t_events_fini(&c.ev);
	if (starved) {
		t_info("SKIP: inconclusive: the host starved %u time(s) what "
		       "the test needs to run (see above)", starved);
		return T_SKIP;
	}
	return T_PASS;
}

/* ---- CPU starvation sampler ---------------------------------------------- */

#define SAMPLES 2048 /* per entity: 20 s at 10 ms */

struct sample {
	uint64_t t;      /* machine elapsed ns      */
	uint64_t cpu;    /* schedstat: on a CPU     */
	uint64_t rd;     /* schedstat: run_delay    */
	uint64_t slices; /* schedstat: times run    */
	char state;      /* /proc/.../stat: R, S... */
};

struct ring {
	struct sample s[SAMPLES];
	unsigned head, n;
	bool gone;
};

struct t_sampler {
	struct swu_machine *m;
	pthread_t th;
	pthread_mutex_t lock;
	bool stop;
	unsigned nstubs, nvcpus;
	struct ring *rings; /* stubs, then vCPUs */
};

/* path: the entity's /proc directory.  The state first, so that a change
 * of the figures read after it is seen. */
static int read_sample(const char *path, struct sample *x)
{
	unsigned long long c, d, sl;
	char file[128], buf[512], *p;
	FILE *f;
	size_t len;
	int n;

	snprintf(file, sizeof(file), "%s/stat", path);
	f = fopen(file, "re");
	if (!f)
		return -1;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c", &x->state) != 1)
		return -1;
	snprintf(file, sizeof(file), "%s/schedstat", path);
	f = fopen(file, "re");
	if (!f)
		return -1;
	n = fscanf(f, "%llu %llu %llu", &c, &d, &sl);
	fclose(f);
	if (n != 3)
		return -1;
	x->cpu = c;
	x->rd = d;
	x->slices = sl;
	return 0;
}

static void ring_add(struct ring *r, const struct sample *x)
{
	r->s[(r->head + r->n) % SAMPLES] = *x;
	if (r->n < SAMPLES)
		r->n++;
	else
		r->head = (r->head + 1) % SAMPLES;
}

static int entity_path(struct t_sampler *s, unsigned i, char *path, size_t len)
{
	if (i < s->nstubs) {
		struct swu_stub_stats ss;

		if (swu_machine_stub_stats(s->m, i, &ss) < 0 || !ss.alive ||
		    ss.pid <= 0)
			return -1;
		snprintf(path, len, "/proc/%d", (int)ss.pid);
	} else {
		struct swu_vcpu_stats vs;

		if (swu_machine_vcpu_stats(s->m, i - s->nstubs, &vs) < 0 ||
		    vs.tid <= 0)
			return -1;
		snprintf(path, len, "/proc/self/task/%d", (int)vs.tid);
	}
	return 0;
}

static void *sampler_main(void *arg)
{
	struct t_sampler *s = arg;
	char path[96];

	for (;;) {
		pthread_mutex_lock(&s->lock);
		if (s->stop) {
			pthread_mutex_unlock(&s->lock);
			return NULL;
		}
		for (unsigned i = 0; i < s->nstubs + s->nvcpus; i++) {
			struct ring *r = &s->rings[i];
			struct sample x;

			if (r->gone || entity_path(s, i, path, sizeof(path)) < 0)
				continue;
			x.t = swu_machine_elapsed_ns(s->m);
			if (read_sample(path, &x) == 0)
				ring_add(r, &x);
			else if (r->n)
				r->gone = true; /* dead: keep what we have */
		}
		pthread_mutex_unlock(&s->lock);
		t_sleep_ms(10);
	}
}

int t_sampler_start(struct swu_machine *m, struct t_sampler **ret)
{
	struct t_sampler *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->m = m;
	s->nstubs = swu_machine_nstubs(m);
	s->nvcpus = swu_machine_nvcpus(m);
	s->rings = calloc(s->nstubs + s->nvcpus, sizeof(*s->rings));
	if (!s->rings) {
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	r = -pthread_create(&s->th, NULL, sampler_main, s);
	if (r < 0) {
		pthread_mutex_destroy(&s->lock);
		free(s->rings);
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void t_sampler_stop(struct t_sampler *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->th, NULL);
	pthread_mutex_destroy(&s->lock);
	free(s->rings);
	free(s);
}

/*
 * The kernel adds a wait to run_delay only when it ends.  A wait still
 * going on at b: the samples up to b in state R with neither run time nor
 * run count moved, from the first of them (within [a, b]), once that is
 * over 20 ms (a running task's figures move at least every scheduler
 * tick, 10 ms at HZ = 100).
 */
static uint64_t ongoing_wait(const struct ring *r, const struct sample *a,
			     const struct sample *b)
{
	const struct sample *since = NULL;

	for (unsigned k = 0; k < r->n; k++) {
		const struct sample *x = &r->s[(r->head + k) % SAMPLES];

		if (x->t < a->t || x->t > b->t)
			continue;
		if (x->state != 'R' || !since || x->cpu != since->cpu ||
		    x->slices != since->slices)
			since = x->state == 'R' ? x : NULL;
	}
	return since && b->state == 'R' && b->cpu == since->cpu &&
			       b->slices == since->slices &&
			       b->t - since->t > 20000000ull
		       ? b->t - since->t
		       : 0;
}

static int ring_query(struct t_sampler *smp, unsigned idx, uint64_t from,
		      uint64_t to, bool superset, struct t_sched *ret)
{
	const struct ring *r = &smp->rings[idx];
	const struct sample *a = NULL, *b = NULL;
	int e = -1;

	pthread_mutex_lock(&smp->lock);
	for (unsigned k = 0; k < r->n; k++) {
		const struct sample *x = &r->s[(r->head + k) % SAMPLES];

		if (superset) {
			if (x->t <= from)
				a = x;
			if (x->t >= to && !b)
				b = x;
		} else {
			if (x->t >= from && !a)
				a = x;
			if (x->t <= to)
				b = x;
		}
	}
	/* the entity ended: its last sample; otherwise the one to come */
	if (superset && a && !b && r->n && r->gone)
		b = &r->s[(r->head + r->n - 1) % SAMPLES];
	if (a && b && b->t >= a->t) {
		ret->span_ns = b->t - a->t;
		ret->cpu_ns = b->cpu - a->cpu;
		ret->wait_ns = b->rd - a->rd + ongoing_wait(r, a, b);
		/* (run_delay also takes in the part of a wait that began
		 * before a) */
		if (ret->wait_ns > ret->span_ns)
			ret->wait_ns = ret->span_ns;
		e = 0;
	}
	pthread_mutex_unlock(&smp->lock);
	return e;
}

int t_sampler_stub(struct t_sampler *s, unsigned stub, uint64_t from,
		   uint64_t to, bool superset, struct t_sched *ret)
{
	if (!s || stub >= s->nstubs)
		return -1;
	return ring_query(s, stub, from, to, superset, ret);
}

int t_sampler_vcpu(struct t_sampler *s, unsigned vcpu, uint64_t from,
		   uint64_t to, bool superset, struct t_sched *ret)
{
	if (!s || vcpu >= s->nvcpus)
		return -1;
	return ring_query(s, s->nstubs + vcpu, from, to, superset, ret);
}

int t_check_stall_kill(const struct swu_mevent *k, uint64_t tick_ns,
		       uint32_t stall_ticks, uint64_t preempt_ns)
{
	const struct sw_kill_info *ki = &k->kill;
	const uint64_t min = tick_ns * stall_ticks + ki->starved_ns;
	const uint64_t max = tick_ns * (stall_ticks + 1) + ki->monitor_late_ns +
			     ki->starved_ns;
	const uint64_t div = tick_ns / preempt_ns; /* the loop's timer_div */
	uint64_t first_read = ki->killed_at_ns - ki->silent_ns;

	T_CHECK(ki->reason == SW_KILL_STALL, "reason %d", ki->reason);
	T_CHECK(ki->sigalrm_blocked == 1, "sigalrm_blocked %d",
		ki->sigalrm_blocked);
	T_CHECK(k->resume_at_ns != 0, "never resumed");
	t_info("vcpu%u: killed %.3f s after the stub's last resume, window "
	       "[%.3f, %.3f] s (the monitor late %.3f s, the stub starved "
	       "%.3f s); %u ticks, silent %.3f s",
	       k->vcpu, ((double)ki->killed_at_ns - (double)k->resume_at_ns) /
				1e9,
	       min / 1e9, max / 1e9, ki->monitor_late_ns / 1e9,
	       ki->starved_ns / 1e9, ki->stall_ticks, ki->silent_ns / 1e9);
	/* resume_at_ns is stamped right after sw_stub_resume(), before the
	 * vCPU's next wait, and the loop reads its timer only in its waits:
	 * every timer period counted against the stub expires after it.  So
	 * never early, with no slack (the credit only delays) ... */
	T_CHECK(ki->killed_at_ns >= k->resume_at_ns + min,
		"killed %.3f s after the resume (< N*T + starved = %.3f s)",
		((double)ki->killed_at_ns - (double)k->resume_at_ns) / 1e9,
		min / 1e9);
	/* ... and late only by what the loop owns up to with the kill */
	T_CHECK(ki->killed_at_ns <= k->resume_at_ns + max,
		"killed %.3f s after the resume (> (N+1)*T + monitor late + "
		"starved = %.3f s)",
		((double)ki->killed_at_ns - (double)k->resume_at_ns) / 1e9,
		max / 1e9);
	T_CHECK(k->report_at_ns <= k->resume_at_ns,
		"the last report after the last resume");
	/* the credit: whole periods of the run-queue wait since the stall's
	 * baseline (stall_wait_ns: that wait up to the kill), at most N*T */
	T_CHECK(ki->starved_ns <= tick_ns * stall_ticks &&
			ki->starved_ns % preempt_ns == 0 &&
			ki->starved_ns <= ki->stall_wait_ns,
		"starved %.3f s, waited %.3f s for a CPU", ki->starved_ns / 1e9,
		ki->stall_wait_ns / 1e9);
	/* periods less the credit, in ticks: N, or N + 1 if the killing read
	 * came late by k - 1 periods or more and counted a whole tick */
	T_CHECK(ki->stall_ticks == stall_ticks ||
			(ki->stall_ticks == stall_ticks + 1 &&
			 ki->monitor_late_ns >= (div - 1) * preempt_ns),
		"%u stall ticks counted (the monitor late %.3f s)",
		ki->stall_ticks, ki->monitor_late_ns / 1e9);
	/* silent_ns runs from the first timer read after the resume: after
	 * it, and by a period and that read's lateness later */
	T_CHECK(first_read >= k->resume_at_ns &&
			first_read <= k->resume_at_ns + preempt_ns +
					      ki->monitor_late_ns,
		"the watchdog saw %.3f s of silence, %.3f s since the resume",
		ki->silent_ns / 1e9,
		((double)ki->killed_at_ns - (double)k->resume_at_ns) / 1e9);
	return T_PASS;
}
