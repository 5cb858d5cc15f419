// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * No lost wake-up: whenever a host is about to block on the loop's fd,
 * everything in flight has a way to wake it.
 *
 * 400 busy stubs (150 under AddressSanitizer), each resumed from its
 * report callback (so resumed "quietly": sw_loop_prepare() tells it of the
 * sleep), for thousands of prepare/dispatch cycles, while two CPU hogs of
 * the case's own compete for the CPUs.  The load alternates: 1.75 s of calm (one answer in eight at
 * once, the others after 20 to 120 ms: the host blocks often, with hundreds
 * of stubs in flight), then 250 ms of storm (half at once, the others
 * within 2 ms: the monitor saturates, its polls fill their batches and
 * prepare chains rounds of callbacks).  One stub stalls at its third report
 * (SIGALRM blocked, silent): its kill and death complete in the middle of
 * it all.
 * Two hosts:
 *
 *   libev: sw_ev_attach() on ev_default_loop(), and a check from an
 *          ev_prepare of the lowest priority, so that it runs after the
 *          glue's sw_loop_prepare(), right before libev blocks;
 *   poll:  sw_loop_prepare(), the check, poll(), sw_loop_dispatch().
 *
 * The check is an invariant, not a timing guess.  For every stub the case
 * has resumed and not yet heard from through its callback:
 *   - its page's monitor word has SW_MON_SLEEPING (else its report, made
 *     while the host sleeps, would wake nobody);
 *   - if its state word is IN_KERN (it has reported, or the loop has queued
 *     its completion), its own wake-up is on the way: the loop's kick
 *     eventfd has a count (a queued completion) or the stub has written its
 *     report eventfd since its resume, within a grace of 1 s for a stub
 *     caught between its state store and that write.  The loop's fd being
 *     readable is not enough: the timer makes it readable every 6.25 ms
 *     while stubs are in flight, and would hide a missing kick until the
 *     moment nothing is in flight and the timer is off;
 * and if the loop counts stubs in flight, its timerfd is armed (the
 * watchdog must go on) or the loop's fd is readable; and if the case waits
 * for callbacks while the loop counts nothing in flight, the fd is
 * readable.  A host that stays blocked for 5 s with stubs in flight fails
 * the case as well.
 *
 * STUBWATCH_WAKEUP_SECONDS sets how long each case runs (default 8, for a
 * soak up to 600); a case that has not checked MIN_CYCLES sleeps by then
 * runs on until it has, or until MAX_STRETCH times that.  (A host with
 * work always pending sleeps seldom: beside two hogs and a test suite, the
 * poll host has checked 897 sleeps in 24 s, serving 100,000 reports.)
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_ev.h"

/* Built with AddressSanitizer, the monitor serves about half as many
 * reports a second: 400 stubs would keep it busy for good, and a host that
 * never blocks tests no sleep.  150 load it as 400 load a plain build. */
#if defined(__SANITIZE_ADDRESS__)
#define NSTUBS        150
#else
#define NSTUBS        400
#endif
#define SECONDS_DEF   8u
#define SECONDS_MAX   600u
#define MIN_CYCLES    1000u  /* sleeps checked: on a busy machine the case
				runs on, up to MAX_STRETCH times its seconds */
#define MAX_STRETCH   5u
#define CYCLE_NS      (2000ull * 1000000)  /* a calm, then a storm       */
#define STORM_NS      (250ull * 1000000)
#define GRACE_NS      (1000ull * 1000000)  /* a report's eventfd write   */
#define BLOCKED_MAX_S 5.0                  /* a host asleep with work    */
#define NHOGS         2
#define STALL_TICKS   20u                  /* x T = 50 ms: 1 s           */

struct wake;

struct slot {
	struct wake *w;
	struct sw_stub *s;
	unsigned idx;
	bool in_flight;    /* resumed (or spawned), its callback not yet run */
	uint64_t reports;
	uint64_t resumed_ns;
	int efd;           /* the loop's end of its report eventfd */
	uint64_t writes;   /* that eventfd's count when it was resumed */
};

struct wake {
	const char *host;
	struct sw_loop *loop;
	int fd;            /* the loop's epoll fd */
	int tfd;           /* its timerfd and its kick eventfd, found */
	int kickfd;        /* through /proc/self/fdinfo                 */
	struct slot *slots;
	unsigned n;
	bool stopping;
	uint64_t t0;
	uint64_t total;    /* reports delivered */
	uint64_t cycles;   /* checks made, one per host sleep */
	uint64_t in_kern;  /* checks that found a reported stub */
	uint64_t graced;   /* ... whose wake-up came only after a wait */
	unsigned kills;    /* stubs starved past the stall limit */
	unsigned stalled;  /* the one stub told to stall (blocked SIGALRM) */
	bool stall_killed;
	pid_t hogs[NHOGS];
};

/* ---- the loop's fds, seen from outside ---------------------------------- */

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static bool fd_is(int fd, const char *kind)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return strcmp(link, kind) == 0;
}

/* An eventfd's count, without reading it; -1 if unknown. */
static long long eventfd_count(int fd)
{
	char path[64], line[128];
	unsigned long long v;
	long long r = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (r < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "eventfd-count: %llx", &v) == 1)
			r = (long long)v;
	fclose(f);
	return r;
}

/*
 * Name the fds of the loop's epoll set from /proc/self/fdinfo ("tfd: N ...
 * data: D" lines): the timerfd; the kick eventfd, the one eventfd whose data
 * is a tag with bit 63 set; and each stub's report eventfd, whose data is
 * the stub's address (src/internal.h, SW_TAG_*).  Through them the check
 * tells a wake-up that a report or a kick owes from the timer's, which
 * would make the fd readable every period and hide a missing kick.
 */
static void map_epoll_set(struct wake *w)
{
	char path[64], line[256];
	unsigned long long data;
	unsigned events, i, mapped = 0;
	FILE *f;
	int fd;

	w->tfd = w->kickfd = -1;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", w->fd);
	f = fopen(path, "re");
	T_ASSERT(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "tfd: %d events: %x data: %llx", &fd, &events,
			   &data) != 3)
			continue;
		if (fd_is(fd, "anon_inode:[timerfd]")) {
			w->tfd = fd;
		} else if (!fd_is(fd, "anon_inode:[eventfd]")) {
			continue;
		} else if (data >> 63) {
			w->kickfd = fd;
		} else {
			for (i = 0; i < w->n; i++) {
				if ((uintptr_t)w->slots[i].s == data) {
					w->slots[i].efd = fd;
					mapped++;
				}
			}
		}
	}
	fclose(f);
	T_ASSERT(w->tfd >= 0 && w->kickfd >= 0 && mapped == w->n,
		 "epoll set of fd %d: timerfd %d, kick eventfd %d, %u of %u "
		 "report eventfds", w->fd, w->tfd, w->kickfd, mapped, w->n);
}

/* 1 armed, 0 disarmed, -1 unknown.  An expired timer that is not read yet
 * shows it_value (0, 0) as well, so a periodic one is told by its interval:
 * the loop always arms its timer periodic, and disarms it with zeroes. */
static int timer_armed(int tfd, char *val, size_t len)
{
	char path[64], line[256];
	long long sec, nsec, isec = -1, insec = -1, vsec = -1, vnsec = -1;
	FILE *f;

	snprintf(val, len, "?");
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", tfd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "it_value: (%lld, %lld)", &sec, &nsec) == 2) {
			vsec = sec;
			vnsec = nsec;
		} else if (sscanf(line, "it_interval: (%lld, %lld)", &sec,
				  &nsec) == 2) {
			isec = sec;
			insec = nsec;
		}
	}
	fclose(f);
	if (vsec < 0 || isec < 0)
		return -1;
	snprintf(val, len, "(%lld, %lld), it_interval (%lld, %lld)", vsec,
		 vnsec, isec, insec);
	return vsec || vnsec || isec || insec;
}

/* ---- failure report ----------------------------------------------------- */

static const char *state_name(uint32_t st)
{
	return st == SW_STATE_IN_KERN ? "IN_KERN" :
	       st == SW_STATE_IN_CHILD ? "IN_CHILD" : "garbage";
}

static void note_slot(const struct slot *sl, uint64_t now)
{
	struct sw_page *p = sw_stub_page(sl->s);
	uint32_t st = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE);
	uint32_t mon = __atomic_load_n(&p->monitor, __ATOMIC_ACQUIRE);

	t_note("  stub %u (pid %d): state %u (%s), monitor %#x (%s), "
	       "resumed %.3f ms ago, %" PRIu64 " reports, eventfd writes "
	       "%lld (%" PRIu64 " at its resume)",
	       sl->idx, (int)sw_stub_pid(sl->s), st, state_name(st), mon,
	       mon & SW_MON_SLEEPING ? "SLEEPING" : "awake",
	       (now - sl->resumed_ns) / 1e6, sl->reports,
	       eventfd_count(sl->efd), sl->writes);
}

/* Everything useful about the loop right now, then fail the case. */
__attribute__((noreturn)) static void fail_dump(struct wake *w, int idx,
						 const char *why)
{
	uint64_t now = t_now_ns();
	unsigned flying = 0, kern = 0, kern_awake = 0, child_awake = 0;
	unsigned shown = 0, i;
	char val[96];
	int armed = timer_armed(w->tfd, val, sizeof(val));

	for (i = 0; i < w->n; i++) {
		struct slot *sl = &w->slots[i];
		struct sw_page *p = sw_stub_page(sl->s);
		uint32_t st, mon;

		if (!sl->in_flight)
			continue;
		flying++;
		st = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE);
		mon = __atomic_load_n(&p->monitor, __ATOMIC_ACQUIRE);
		kern += st == SW_STATE_IN_KERN;
		kern_awake += st == SW_STATE_IN_KERN && !(mon & SW_MON_SLEEPING);
		child_awake += st == SW_STATE_IN_CHILD &&
			       !(mon & SW_MON_SLEEPING);
	}
	t_note("%s host, cycle %" PRIu64 ", %" PRIu64 " reports delivered: %s",
	       w->host, w->cycles, w->total, why);
	if (idx >= 0)
		note_slot(&w->slots[idx], now);
	t_note("  in flight: %u for the case, %d for the loop; %u reported "
	       "(%u of them without SW_MON_SLEEPING), %u running without it",
	       flying, sw_loop_count_in_flight(w->loop), kern, kern_awake,
	       child_awake);
	t_note("  loop fd %d %s; kick eventfd count %lld; timerfd %d %s, "
	       "it_value %s", w->fd,
	       fd_readable(w->fd) ? "readable" : "NOT readable",
	       eventfd_count(w->kickfd), w->tfd,
	       armed == 1 ? "armed" : armed == 0 ? "DISARMED" : "unknown",
	       val);
	for (i = 0; i < w->n && shown < 8; i++) {
		struct slot *sl = &w->slots[i];

		if (sl->in_flight && (int)i != idx) {
			note_slot(sl, now);
			shown++;
		}
	}
	t_fail(__FILE__, __LINE__, "no lost wake-up", "%s (see above)", why);
}

/* ---- the check, right before the host blocks ---------------------------- */

/* A reported stub's wake-up is on its way: a completion the loop queued
 * has kicked, or the stub wrote its eventfd since its resume (the host's
 * poll returns for that write).  Within the grace: the stub may sit between
 * its state store and its eventfd write. */
static bool wake_owed(struct wake *w, struct slot *sl)
{
	uint64_t t0 = t_now_ns();
	bool waited = false;

	for (;;) {
		long long kick = eventfd_count(w->kickfd);
		long long writes = eventfd_count(sl->efd);

		T_ASSERT(kick >= 0 && writes >= 0, "eventfd counts: %lld %lld",
			 kick, writes);
		if (kick > 0 || (uint64_t)writes > sl->writes) {
			w->graced += waited;
			return fd_readable(w->fd);
		}
		if (t_now_ns() - t0 >= GRACE_NS)
			return false;
		usleep(200);
		waited = true;
	}
}

static void check_before_block(struct wake *w)
{
	unsigned flying = 0, i;
	int loop_flying;
	char val[96];

	w->cycles++;
	for (i = 0; i < w->n; i++) {
		struct slot *sl = &w->slots[i];
		struct sw_page *p;
		uint32_t st, mon;

		if (!sl->in_flight)
			continue;
		flying++;
		p = sw_stub_page(sl->s);
		/* The monitor word first: the loop's thread is this one, so
		 * it cannot change under us; the state word can. */
		mon = __atomic_load_n(&p->monitor, __ATOMIC_SEQ_CST);
		st = __atomic_load_n(&p->state, __ATOMIC_SEQ_CST);
		if (!(mon & SW_MON_SLEEPING))
			fail_dump(w, (int)i,
				  "a stub in flight was not told the monitor "
				  "sleeps: its report will write no eventfd");
		if (st != SW_STATE_IN_KERN && st != SW_STATE_IN_CHILD)
			fail_dump(w, (int)i, "garbage in a state word");
		if (st != SW_STATE_IN_KERN)
			continue;
		w->in_kern++;
		if (!wake_owed(w, sl))
			fail_dump(w, (int)i,
				  "a stub has reported, but neither its eventfd "
				  "nor a kick makes the loop's fd readable: "
				  "only the timer could wake the host");
	}
	loop_flying = sw_loop_count_in_flight(w->loop);
	T_ASSERT(loop_flying >= 0, "sw_loop_count_in_flight: %d", loop_flying);
	if (loop_flying > 0 && timer_armed(w->tfd, val, sizeof(val)) != 1 &&
	    !fd_readable(w->fd))
		fail_dump(w, -1, "stubs in flight, but the watchdog's timer is "
			  "disarmed and the loop's fd is not readable");
	if (flying > 0 && loop_flying == 0 && !fd_readable(w->fd))
		fail_dump(w, -1, "the loop counts nothing in flight and its fd "
			  "is not readable, but stubs wait for their callbacks");
}

/* ---- stubs and load ----------------------------------------------------- */

static int on_event(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct slot *sl = ud;
	struct wake *w = sl->w;

	if (ev->type == SW_EV_KILL && sl->idx == w->stalled) {
		/* The hijacked one: its kill, a death, completes mid-run. */
		T_EQ(ev->kill.reason, SW_KILL_STALL);
		T_EQ(ev->kill.sigalrm_blocked, 1);
		T_ASSERT(sl->in_flight, "stub %u: killed while not in flight",
			 sl->idx);
		sl->in_flight = false;
		w->stall_killed = true;
		return 0;
	}
	if (ev->type == SW_EV_KILL && ev->kill.reason == SW_KILL_STALL) {
		/* Its state word still said IN_CHILD when the watchdog ran
		 * out (on_timer() takes a report it finds there): it never
		 * answered, so no wake-up of the host was lost.  Under this
		 * load that is a stub kept off the CPUs (state R, its wait
		 * for a CPU in stall_wait_ns). */
		t_note("stub %u killed as stalled, not answering: state %c, "
		       "ran %.0f ms and waited %.0f ms for a CPU in %.0f ms",
		       sl->idx, ev->kill.state, ev->kill.stall_run_ns / 1e6,
		       ev->kill.stall_wait_ns / 1e6,
		       ev->kill.stall_window_ns / 1e6);
		T_ASSERT(sl->in_flight, "stub %u: killed while not in flight",
			 sl->idx);
		sl->in_flight = false;
		w->kills++;
		return 0;
	}
	if (ev->type != SW_EV_REPORT)
		fail_dump(w, (int)sl->idx, "a busy stub ended");
	T_ASSERT(sl->in_flight, "stub %u: a report while not in flight",
		 sl->idx);
	sl->in_flight = false;
	sl->reports++;
	w->total++;
	if (w->stopping)
		return 0;
	if (sl->idx == w->stalled && sl->reports == 3) {
		t_cmd(s, T_CMD_STALL, 0);
	} else if ((t_now_ns() - w->t0) % CYCLE_NS < CYCLE_NS - STORM_NS) {
		/* calm */
		if (t_rng() % 8 == 0)
			t_cmd(s, T_CMD_ECHO, 0);
		else
			t_cmd(s, T_CMD_SLEEP, 20000 + t_rng() % 100000);
	} else {
		/* storm */
		if (t_rng() % 2 == 0)
			t_cmd(s, T_CMD_ECHO, 0);
		else
			t_cmd(s, T_CMD_SLEEP, t_rng() % 2000);
	}
	sl->in_flight = true;
	sl->resumed_ns = t_now_ns();
	sl->writes = (uint64_t)eventfd_count(sl->efd);
	T_EQ(sw_stub_resume(s), 0);
	return 0;
}

static unsigned case_seconds(void)
{
	const char *e = getenv("STUBWATCH_WAKEUP_SECONDS");
	unsigned long v;
	char *end;

	if (!e || !*e)
		return SECONDS_DEF;
	v = strtoul(e, &end, 10);
	if (*end || v == 0 || v > SECONDS_MAX)
		return SECONDS_DEF;
	return (unsigned)v;
}

static void setup(struct wake *w, const char *host)
{
	uint64_t t0 = t_now_ns();
	unsigned i;

	memset(w, 0, sizeof(*w));
	w->host = host;
	w->n = NSTUBS;
	w->stalled = NSTUBS / 2;
	T_EQ(t_raise_nofile(2 * NSTUBS + 64), 0);
	/* The timer of the other cases (T = 50 ms, every 6.25 ms), but a
	 * stall limit of 1 s: the hogs and a parallel build may keep a stub
	 * off the CPUs for a while, which is no lost wake-up. */
	w->loop = t_loop(T_TICK_NS, STALL_TICKS, 0);
	w->fd = sw_loop_get_fd(w->loop);
	T_ASSERT(w->fd >= 0, "sw_loop_get_fd: %d", w->fd);
	w->slots = calloc(w->n, sizeof(*w->slots));
	T_ASSERT(w->slots, "calloc");
	for (i = 0; i < w->n; i++) {
		struct slot *sl = &w->slots[i];

		sl->w = w;
		sl->idx = i;
		sl->s = t_spawn_ok(w->loop);
		sl->in_flight = true; /* its hello report is to come */
		sl->resumed_ns = t_now_ns();
		T_EQ(sw_stub_set_callback(sl->s, on_event, sl), 0);
	}
	map_epoll_set(w);
	t_note("%u stubs spawned in %.0f ms", w->n, (t_now_ns() - t0) / 1e6);
}

/* Two processes that only burn CPU, for the case's duration: the stubs and
 * the host are preempted at every point of the handshake. */
static void hogs_start(struct wake *w)
{
	pid_t parent = getpid();
	int i;

	for (i = 0; i < NHOGS; i++) {
		pid_t pid;

		fflush(NULL);
		pid = fork();
		T_ASSERT(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			for (volatile uint64_t x = 0;; x++)
				;
		}
		w->hogs[i] = pid;
	}
}

static void hogs_stop(struct wake *w)
{
	int i;

	for (i = 0; i < NHOGS; i++) {
		if (w->hogs[i] <= 0)
			continue;
		kill(w->hogs[i], SIGKILL);
		/* ev_default_loop() reaps every child: it may have been first */
		while (waitpid(w->hogs[i], NULL, 0) < 0 && errno == EINTR)
			;
		w->hogs[i] = 0;
	}
}

/* The case has run its time and checked enough sleeps, or run out of
 * time: MAX_STRETCH times its seconds. */
static bool done(const struct wake *w, uint64_t now)
{
	uint64_t secs = case_seconds() * 1000000000ull;

	return now - w->t0 >= MAX_STRETCH * secs ||
	       (now - w->t0 >= secs && w->cycles >= MIN_CYCLES);
}

static void finish(struct wake *w)
{
	double secs = (t_now_ns() - w->t0) / 1e9;

	t_note("%s host: %" PRIu64 " sleeps checked in %.1f s, %" PRIu64
	       " reports (%.0f/s); %" PRIu64 " checks found a stub reported, "
	       "%" PRIu64 " of them saw its wake-up only after a wait",
	       w->host, w->cycles, secs, w->total, w->total / secs, w->in_kern,
	       w->graced);
	if (w->kills)
		t_note("%u stubs killed as stalled (starved, see above)",
		       w->kills);
	T_ASSERT(w->kills < w->n / 10, "%u of %u stubs killed as stalled",
		 w->kills, w->n);
	if (!w->stall_killed)
		t_note("stub %u stalled, its kill still to come", w->stalled);
	T_ASSERT(w->cycles >= MIN_CYCLES, "only %" PRIu64 " host cycles",
		 w->cycles);
	T_ASSERT(w->total >= 10 * w->n, "only %" PRIu64 " reports", w->total);
	w->stopping = true;
	T_ASSERT(sw_loop_free(w->loop) == NULL, "loop free"); /* kills them */
	free(w->slots);
}

/* ---- host (a): libev ---------------------------------------------------- */

struct evhost {
	struct wake w;
	ev_prepare check;  /* after the glue's prepare: lowest priority */
	ev_timer asleep;   /* pushed back at every check: fires only if
			      libev stays blocked BLOCKED_MAX_S */
	ev_timer end;
};

static unsigned count_flying(const struct wake *w)
{
	unsigned n = 0, i;

	for (i = 0; i < w->n; i++)
		n += w->slots[i].in_flight;
	return n;
}

static void on_check(struct ev_loop *l, ev_prepare *pw, int revents)
{
	struct evhost *h = (struct evhost *)((char *)pw -
					     offsetof(struct evhost, check));

	(void)revents;
	check_before_block(&h->w);
	ev_timer_again(l, &h->asleep);
}

static void on_asleep(struct ev_loop *l, ev_timer *tw, int revents)
{
	struct evhost *h = (struct evhost *)((char *)tw -
					     offsetof(struct evhost, asleep));

	(void)l;
	(void)revents;
	if (count_flying(&h->w))
		fail_dump(&h->w, -1, "libev slept 5 s with stubs in flight");
}

static void on_end(struct ev_loop *l, ev_timer *tw, int revents)
{
	struct evhost *h = (struct evhost *)((char *)tw -
					     offsetof(struct evhost, end));

	(void)revents;
	if (done(&h->w, t_now_ns())) {
		ev_break(l, EVBREAK_ALL);
		return;
	}
	ev_timer_set(tw, 0.1, 0.); /* not enough sleeps yet */
	ev_timer_start(l, tw);
}

static int case_libev(void *arg)
{
	struct ev_loop *evl = t_evloop(T_EV_DEFAULT);
	struct evhost *h = calloc(1, sizeof(*h));
	struct sw_ev *g;

	(void)arg;
	T_ASSERT(h, "calloc");
	setup(&h->w, "libev");
	T_EQ(sw_ev_attach(h->w.loop, evl, &g), 0);
	ev_prepare_init(&h->check, on_check);
	ev_set_priority(&h->check, EV_MINPRI);
	ev_prepare_start(evl, &h->check);
	ev_unref(evl);
	ev_init(&h->asleep, on_asleep);
	h->asleep.repeat = BLOCKED_MAX_S;
	ev_timer_again(evl, &h->asleep);
	ev_unref(evl);
	ev_timer_init(&h->end, on_end, (double)case_seconds(), 0.);
	ev_now_update(evl);
	ev_timer_start(evl, &h->end);
	hogs_start(&h->w);
	h->w.t0 = t_now_ns();
	ev_run(evl, 0);
	hogs_stop(&h->w);
	T_EQ(sw_ev_take_error(g), 0);
	ev_ref(evl);
	ev_timer_stop(evl, &h->asleep);
	ev_ref(evl);
	ev_prepare_stop(evl, &h->check);
	ev_timer_stop(evl, &h->end);
	T_ASSERT(sw_ev_detach(g) == NULL, "detach");
	finish(&h->w);
	free(h);
	t_evloop_free(evl);
	return T_PASS;
}

/* ---- host (b): a plain poll() loop -------------------------------------- */

static int case_poll(void *arg)
{
	struct wake w;
	uint64_t now;
	int r;

	(void)arg;
	setup(&w, "poll");
	hogs_start(&w);
	w.t0 = t_now_ns();
	do {
		struct pollfd p = { .fd = w.fd, .events = POLLIN };

		r = sw_loop_prepare(w.loop);
		T_ASSERT(r >= 0, "sw_loop_prepare: %d", r);
		check_before_block(&w);
		r = poll(&p, 1, (int)(BLOCKED_MAX_S * 1000));
		T_ASSERT(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
		if (r == 0 && count_flying(&w))
			fail_dump(&w, -1, "poll() slept 5 s with stubs in "
				  "flight");
		r = sw_loop_dispatch(w.loop);
		T_ASSERT(r >= 0, "sw_loop_dispatch: %d", r);
		now = t_now_ns();
	} while (!done(&w, now));
	hogs_stop(&w);
	finish(&w);
	return T_PASS;
}

int main(void)
{
	/* Spawning under heavy load takes seconds; the run itself is fixed. */
	unsigned timeout_ms = 60000 + MAX_STRETCH * case_seconds() * 1000;
	const struct t_case cases[] = {
		{ "busy stubs under ev_default_loop, CPU hogs: before "
		  "every sleep, each stub in flight can wake the host",
		  case_libev, NULL, timeout_ms },
		{ "busy stubs in a poll() host, CPU hogs: before every "
		  "sleep, each stub in flight can wake the host",
		  case_poll, NULL, timeout_ms },
	};

	return t_run("t_ev_wakeup", cases, sizeof(cases) / sizeof(cases[0]));
}
