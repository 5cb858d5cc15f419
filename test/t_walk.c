/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A seeded random walk over the whole monitor-side API, as a careless
 * caller makes it: loops and stubs made and freed in any order, invalid
 * options, NULL and foreign handles, a loop's own fd or another epoll set
 * as a watched fd, calls from inside callbacks (which call the API again),
 * stubs that report, exit, die of a signal, stall or flood, and fork()
 * with a child that tries the parent's handles.
 *
 * Every value a call returns is checked against the errors its comment in
 * include/stubwatch.h lists: the test reads the header itself (T_HEADER),
 * so the table it checks against is the one users read.  Beside that, a
 * small model: the stubs each loop holds (sw_loop_count_stubs), the loop a
 * stub is on after detach and attach, the event types a wait or callback
 * may give, and a stub whose end was delivered (pid -ESRCH).  At the end
 * everything is freed: no child is left (the harness counts fds, and
 * LeakSanitizer memory, under ASan).
 *
 * Seed and length: the case's, or T_WALK_SEED and T_WALK_STEPS from the
 * environment; a walk that has not yet seen its floor of completions goes
 * on, up to three times its length.  A failure prints the seed, the step
 * and the last calls.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

#ifndef T_HEADER
#error "T_HEADER: the path of include/stubwatch.h"
#endif

/* What the walk's callbacks return now and then: no call's own error. */
#define CB_ERR EXFULL

/* ---- the header's error table ------------------------------------------ */

enum { MAXFN = 64, NAMELEN = 48, MAXREF = 8, MAXERRNO = 256 };

struct errs {
	char name[NAMELEN];
	bool ok[MAXERRNO];
	char ref[MAXREF][NAMELEN]; /* "as sw_x()", or "theirs" */
	unsigned nref;
	unsigned long calls, seen[MAXERRNO]; /* by the walk */
};

static struct errs table[MAXFN];
static unsigned ntable;

static struct errs *errs_find(const char *name)
{
	unsigned i;

	for (i = 0; i < ntable; i++)
		if (!strcmp(table[i].name, name))
			return &table[i];
	return NULL;
}

static int errno_by_name(const char *name, size_t len)
{
	int e;

	for (e = 1; e < MAXERRNO; e++) {
		const char *n = strerrorname_np(e);

		if (n && strlen(n) == len && !strncmp(n, name, len))
			return e;
	}
	return 0;
}

static bool ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* "sw_name()" at p (p points at "sw_"): its length, 0 if not a call. */
static size_t call_at(const char *p, const char *end)
{
	size_t n = 3;

	if (end - p < 5 || strncmp(p, "sw_", 3))
		return 0;
	while (p + n < end && ident(p[n]))
		n++;
	return p + n + 1 < end && p[n] == '(' && p[n + 1] == ')' ? n : 0;
}

static void add_ref(struct errs *f, const char *name, size_t len)
{
	if (f->nref < MAXREF && len < NAMELEN &&
	    (strlen(f->name) != len || strncmp(f->name, name, len))) {
		memcpy(f->ref[f->nref], name, len);
		f->ref[f->nref++][len] = 0;
	}
}

/* The part of a comment that lists `name`'s errors: "name errors:" up to
 * the next "sw_... errors:", else "Errors:" to the end, else all of it. */
static void error_part(const char *text, const char *name, const char **ret_b,
		       const char **ret_e)
{
	char key[NAMELEN + 8];
	const char *b, *e = text + strlen(text), *p;

	snprintf(key, sizeof(key), "%s errors:", name);
	b = strstr(text, key);
	if (b) {
		for (p = b + strlen(key); (p = strstr(p, " errors:")); p++) {
			const char *q = p;

			while (q > b && ident(q[-1]))
				q--;
			if (!strncmp(q, "sw_", 3)) {
				e = q;
				break;
			}
		}
	} else if (!(b = strstr(text, "Errors:"))) {
		b = text;
	}
	*ret_b = b;
	*ret_e = e;
}

static void parse_errors(struct errs *f, const char *text)
{
	const char *b, *e, *p;
	size_t n;

	error_part(text, f->name, &b, &e);
	for (p = b; p < e; p++) {
		if (p[0] == '-' && p[1] == 'E' && (p == text || !ident(p[-1]))) {
			n = 1;
			while (p + n < e && ((p[n] >= 'A' && p[n] <= 'Z') ||
					     (p[n] >= '0' && p[n] <= '9')))
				n++;
			int err = errno_by_name(p + 1, n - 1);

			t_assert_msg(err, "%s: the header names an unknown error "
				     "%.*s", f->name, (int)n, p);
			f->ok[err] = true;
		}
		if (!strncmp(p, "as sw_", 6) && (n = call_at(p + 3, e)))
			add_ref(f, p + 3, n);
		/* "Errors: theirs": the calls the comment is made of */
		if (!strncmp(p, "theirs", 6))
			for (const char *q = text; *q; q++)
				if ((n = call_at(q, q + strlen(q))))
					add_ref(f, q, n);
		/* "the (first) negative value a callback (...) returned" */
		if (!strncmp(p, "value a callback", 16))
			f->ok[CB_ERR] = true;
	}
}

/* Add a comment line to block without its leading " * ", so that a
 * phrase broken across lines reads as one. */
static void append_line(char *block, size_t size, const char *line)
{
	size_t n = strlen(block);

	line += strspn(line, " \t");
	if (line[0] == '*' && line[1] != '/')
		line += 1 + strspn(line + 1, " \t");
	if (n + strlen(line) + 2 > size)
		return;
	strcat(block, line);
	strcat(block, " ");
}

/* Read the header: each declaration of a call returning int or pid_t
 * takes the comment above it (shared by consecutive declarations) and a
 * comment on its own line. */
static void table_load(void)
{
	static char buf[1 << 17];
	char block[8192] = "", text[8192], *line, *save = NULL, *p;
	bool in_comment = false;
	FILE *f = fopen(T_HEADER, "r");
	size_t len;
	unsigned i, j, k, pass;
	int e;

	t_assert_msg(f, "cannot open %s", T_HEADER);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	t_assert(len > 0 && len < sizeof(buf) - 1);
	buf[len] = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (in_comment || (p = strstr(line, "/*")) == line ||
		    (line[0] == '\t' && strstr(line, "/*"))) {
			if (!in_comment)
				block[0] = 0;
			in_comment = !strstr(line, "*/");
			append_line(block, sizeof(block), line);
			continue;
		}
		if (line[0] == '#' || !strncmp(line, "struct", 6) ||
		    !strncmp(line, "enum", 4) || line[0] == '}') {
			block[0] = 0;
			continue;
		}
		if (strncmp(line, "int ", 4) && strncmp(line, "pid_t ", 6))
			continue;
		p = strstr(line, "sw_");
		if (!p || !(len = strcspn(p, "(")) || len >= NAMELEN ||
		    !p[len])
			continue;
		t_assert(ntable < MAXFN);
		struct errs *fn = &table[ntable++];

		memcpy(fn->name, p, len);
		snprintf(text, sizeof(text), "%s %s", block,
			 strstr(line, "/*") ? strstr(line, "/*") : "");
		parse_errors(fn, text);
	}
	/* "as sw_x()" and "theirs": take the referenced calls' errors */
	for (pass = 0; pass < 4; pass++)
		for (i = 0; i < ntable; i++)
			for (j = 0; j < table[i].nref; j++) {
				struct errs *r = errs_find(table[i].ref[j]);

				t_assert_msg(r, "%s refers to %s, not in the header",
					     table[i].name, table[i].ref[j]);
				for (e = 0; e < MAXERRNO; e++)
					table[i].ok[e] |= r->ok[e];
			}
	/* every call takes a NULL handle as -EINVAL: a first check that the
	 * reading went right */
	for (i = 0; i < ntable; i++) {
		for (k = 0, e = 0; e < MAXERRNO; e++)
			k += table[i].ok[e];
		t_assert_msg(table[i].ok[EINVAL], "%s: no -EINVAL read (%u "
			     "errors)", table[i].name, k);
	}
}

/* ---- the walk's world -------------------------------------------------- */

enum { NLOOPS = 3, NSTUBS = 8, RING = 24 };

struct wstub {
	struct sw_stub *s;
	bool ended;     /* its EXIT or KILL was delivered          */
	bool killed;    /* sw_stub_kill() took it                  */
	int pipe[2];    /* a watched fd the walk can make readable */
};

static struct sw_loop *loops[NLOOPS];
static struct wstub stubs[NSTUBS];
static uint64_t rng, seed;
static unsigned long step;
static unsigned depth;
static char ring[RING][96];
static unsigned ringpos;
static unsigned long ncalls, nreports, nexits, nkills, nfd, nticks, ncb,
	nerrors, nforks;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned pick(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static bool chance(unsigned percent)
{
	return pick(100) < percent;
}

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ring[ringpos++ % RING], sizeof(ring[0]), fmt, ap);
	va_end(ap);
	ncalls++;
}

static __attribute__((noreturn, format(printf, 1, 2))) void
walk_fail(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	unsigned i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	t_note("seed %" PRIu64 ", step %lu; the last calls, oldest first:",
	       seed, step);
	for (i = ringpos > RING ? ringpos - RING : 0; i < ringpos; i++)
		t_note("  %s", ring[i % RING]);
	t_fail(__FILE__, __LINE__, "%s", msg);
}

/* rc must be >= 0 or an error the header lists for fn. */
static int check(const char *fn, long rc)
{
	struct errs *e = errs_find(fn);

	if (!e)
		walk_fail("%s: the header gives it no error list", fn);
	e->calls++;
	if (rc < 0) {
		nerrors++;
		if (-rc < MAXERRNO)
			e->seen[-rc]++;
		if (-rc >= MAXERRNO || !e->ok[-rc])
			walk_fail("%s returned %ld (%s): not in its header's "
				  "error list", fn, rc, t_errname(rc));
	}
	return (int)rc;
}

#define CALL(fn, ...) check(#fn, (long)fn(__VA_ARGS__))

static struct sw_loop *any_loop(void)
{
	return chance(8) ? NULL : loops[pick(NLOOPS)];
}

static struct wstub *any_stub(void)
{
	unsigned i, j = pick(NSTUBS);

	for (i = 0; i < NSTUBS; i++)
		if (stubs[(i + j) % NSTUBS].s)
			return &stubs[(i + j) % NSTUBS];
	return NULL;
}

static int loop_index(const struct sw_loop *l)
{
	int i;

	for (i = 0; i < NLOOPS; i++)
		if (l && loops[i] == l)
			return i;
	return -1;
}

static void slot_clear(struct wstub *w)
{
	if (w->pipe[0] >= 0) {
		close(w->pipe[0]);
		close(w->pipe[1]);
	}
	*w = (struct wstub){ .pipe = { -1, -1 } };
}

/* A completion seen, by a wait or a callback. */
static void saw(struct wstub *w, const struct sw_event *ev, bool callback)
{
	switch (ev->type) {
	case SW_EV_REPORT:
		nreports++;
		break;
	case SW_EV_EXIT:
	case SW_EV_KILL:
		if (w->ended)
			walk_fail("a second end for one stub");
		w->ended = true;
		if (ev->type == SW_EV_KILL) {
			nkills++;
			if (ev->kill.reason < SW_KILL_STALL ||
			    ev->kill.reason > SW_KILL_USER)
				walk_fail("kill reason %d", (int)ev->kill.reason);
		} else {
			nexits++;
		}
		break;
	case SW_EV_FD:
		nfd++;
		break;
	case SW_EV_TICK:
		if (callback)
			walk_fail("a tick event given to a stub's callback");
		nticks++;
		break;
	default:
		walk_fail("event type %d", (int)ev->type);
	}
}

static void one_step(void);

static int stub_cb(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	struct wstub *w = ud;

	ncb++;
	if (w->s != s)
		walk_fail("a callback for stub %p with the userdata of %p",
			  (void *)s, (void *)w->s);
	saw(w, ev, true);
	if (depth < 2 && chance(60)) {
		depth++;
		one_step();
		depth--;
	}
	return chance(10) ? -CB_ERR : 0;
}

static int tick_cb(struct sw_loop *l, void *ud)
{
	(void)ud;
	if (loop_index(l) < 0)
		walk_fail("a tick callback for a loop that is not there");
	if (depth < 2 && chance(30)) {
		depth++;
		one_step();
		depth--;
	}
	return chance(10) ? -CB_ERR : 0;
}

/* ---- the calls ------------------------------------------------------------ */

static void op_loop_new(void)
{
	struct sw_loop_opts o = { .size = sizeof(o), .tick_ns = 10 * T_MS,
				  .stall_ticks = 2, .timer_div = 2u << pick(3) };
	struct sw_loop *l = (struct sw_loop *)&o, *keep = l;
	unsigned i;
	int rc;

	for (i = 0; i < NLOOPS && loops[i]; i++)
		;
	if (chance(20))
		o.flags |= SW_LOOP_TICK_EVENTS;
	if (chance(20))
		o.flags |= SW_LOOP_ADAPTIVE_POLL;
	if (chance(30)) { /* garbage */
		o.size = pick(sizeof(o) + 16);
		o.tick_ns = rnd() % (1ull << pick(40));
		o.stall_ticks = (uint32_t)rnd() % 8;
		o.timer_div = (uint32_t)rnd() % 20;
		o.flags = (unsigned)rnd() & 0x7;
		o.poll_max_ns = (uint32_t)rnd() % (2 * SW_POLL_MAX_NS_MAX);
	}
	trace("sw_loop_new(size %zu tick %" PRIu64 " N %u div %u flags %#x)",
	      o.size, o.tick_ns, o.stall_ticks, o.timer_div, o.flags);
	rc = CALL(sw_loop_new, chance(3) ? NULL : &o, chance(3) ? NULL : &l);
	if (rc < 0) {
		if (l != keep)
			walk_fail("sw_loop_new failed and wrote *ret_loop");
		return;
	}
	/* a loop whose stall limit is long would make a wait slow: keep only
	 * short ones, and only while there is room */
	struct sw_loop_opts got = { .size = sizeof(got) };

	CALL(sw_loop_get_opts, l, &got);
	if (i == NLOOPS || got.tick_ns * (got.stall_ticks + 1) > 60 * T_MS) {
		if (sw_loop_free(l) != NULL)
			walk_fail("freeing a new empty loop was refused");
		return;
	}
	loops[i] = l;
}

static void op_loop_free(void)
{
	struct sw_loop *l = any_loop();
	bool mine[NSTUBS];
	unsigned i;

	for (i = 0; i < NSTUBS; i++)
		mine[i] = stubs[i].s && l && sw_stub_loop(stubs[i].s) == l;
	trace("sw_loop_free(loop %d)", loop_index(l));
	if (sw_loop_free(l) != NULL) {
		if (!depth)
			walk_fail("sw_loop_free refused outside any callback");
		return;
	}
	if (!l)
		return;
	loops[loop_index(l)] = NULL;
	for (i = 0; i < NSTUBS; i++)
		if (mine[i]) { /* killed, reaped and freed with it */
			stubs[i].s = NULL;
			slot_clear(&stubs[i]);
		}
}

static void op_loop_calls(void)
{
	struct sw_loop *l = any_loop();
	struct sw_loop_opts o = { .size = chance(80) ? sizeof(o) : pick(64) };
	struct sw_loop_stats st = { .size = chance(80) ? sizeof(st) : pick(64) };
	int rc, n = 0;
	unsigned i;

	trace("loop %d: get_fd, get_opts, get_stats, counts", loop_index(l));
	rc = CALL(sw_loop_get_fd, l);
	if (l && rc < 0)
		walk_fail("sw_loop_get_fd of a live loop: %s", t_errname(rc));
	CALL(sw_loop_get_opts, l, &o);
	CALL(sw_loop_get_stats, l, &st, (int)pick(2));
	CALL(sw_loop_count_in_flight, l);
	rc = CALL(sw_loop_count_stubs, l);
	for (i = 0; i < NSTUBS; i++)
		n += l && stubs[i].s && sw_stub_loop(stubs[i].s) == l;
	if (l && rc != n)
		walk_fail("sw_loop_count_stubs %d, the walk attached %d", rc, n);
	if (chance(30))
		CALL(sw_loop_set_tick_callback, l, chance(70) ? tick_cb : NULL,
		     NULL);
}

static void op_dispatch(void)
{
	struct sw_loop *l = any_loop();
	bool prep = chance(40);

	trace("sw_loop_%s(loop %d) depth %u", prep ? "prepare" : "dispatch",
	      loop_index(l), depth);
	if (prep)
		CALL(sw_loop_prepare, l);
	else
		CALL(sw_loop_dispatch, l);
}

static void op_spawn(void)
{
	static char *argv[] = { "/proc/self/exe", "--stub", "echo", "0", NULL };
	struct sw_spawn_opts o = { .size = sizeof(o) };
	struct sw_stub *s = (struct sw_stub *)&o, *keep = s;
	struct sw_loop *l = any_loop();
	unsigned i;
	int rc;

	for (i = 0; i < NSTUBS && stubs[i].s; i++)
		;
	if (i == NSTUBS)
		return;
	if (chance(85)) {
		o.fn = t_role_find("echo");
	} else {
		o.path = argv[0];
		o.argv = argv;
	}
	o.flags = chance(10) ? SW_SPAWN_PIDNS : 0;
	o.flags |= chance(10) ? SW_SPAWN_PDEATHSIG : 0;
	if (chance(20)) { /* garbage */
		o.size = pick(sizeof(o) + 16);
		o.shm_size = rnd() % (1ull << pick(30));
		o.flags = (unsigned)rnd() & 0xf;
		if (chance(30))
			o.path = argv[0];
		if (chance(30))
			o.argv = NULL;
	}
	trace("sw_stub_spawn(loop %d, size %zu %s flags %#x)", loop_index(l),
	      o.size, o.fn && o.path ? "fn+path" : o.fn ? "fn" : "exec",
	      o.flags);
	rc = CALL(sw_stub_spawn, l, chance(3) ? NULL : &o,
		  chance(3) ? NULL : &s);
	if (rc < 0) {
		if (s != keep)
			walk_fail("sw_stub_spawn failed and wrote *ret_stub");
		return;
	}
	slot_clear(&stubs[i]);
	stubs[i].s = s;
	if (chance(50))
		CALL(sw_stub_set_callback, s, stub_cb, &stubs[i]);
}

/* What the stub does when next resumed. */
static void next_request(struct wstub *w)
{
	struct sw_page *page = sw_stub_page(w->s);
	struct t_payload *p;
	static const int sigs[] = { SIGSEGV, SIGTERM, SIGKILL, SIGSTOP };
	unsigned r = pick(100);

	if (!page)
		return;
	p = t_payload(page);
	if (r < 84) {
		uint64_t req = __atomic_load_n(&p->req, __ATOMIC_RELAXED);

		__atomic_store_n(&p->req, (req >= T_REQ_CMD ? 0 : req) + 1,
				 __ATOMIC_RELAXED);
		return;
	}
	if (r < 89) {
		p->arg = pick(256);
		__atomic_store_n(&p->req, T_REQ_EXIT, __ATOMIC_RELAXED);
	} else if (r < 94) {
		p->delay_ns = 0;
		p->arg = chance(50) ? T_STALL_SPIN : T_STALL_FUTEX;
		__atomic_store_n(&p->req, T_REQ_STALL, __ATOMIC_RELAXED);
	} else if (r < 97) {
		p->arg = (uint64_t)sigs[pick(4)];
		__atomic_store_n(&p->req, T_REQ_SIGNAL, __ATOMIC_RELAXED);
	} else {
		__atomic_store_n(&p->req, T_REQ_FLOOD_IDLE, __ATOMIC_RELAXED);
	}
}

static void op_resume(void)
{
	struct wstub *w = any_stub();
	bool run = chance(30), ended;
	struct sw_event ev;
	int rc;

	if (!w)
		return;
	ended = w->ended;
	if (chance(70))
		next_request(w);
	trace("sw_stub_%s(stub %ld) depth %u", run ? "run" : "resume",
	      (long)(w - stubs), depth);
	if (!run) {
		rc = CALL(sw_stub_resume, w->s);
	} else {
		rc = CALL(sw_stub_run, w->s, &ev);
		if (rc > 0) {
			if (rc != (int)ev.type)
				walk_fail("sw_stub_run returned %d, event %d",
					  rc, (int)ev.type);
			saw(w, &ev, false);
		}
	}
	/* sw_stub_run() refuses inside a callback first, as its wait would */
	if (ended && sw_stub_loop(w->s) && rc != -ESRCH &&
	    !(run && depth && rc == -EBUSY))
		walk_fail("resuming an ended stub gave %s", t_errname(rc));
}

static void op_wait(void)
{
	struct wstub *w = any_stub();
	struct sw_event ev;
	int rc;

	trace("sw_stub_wait(stub %ld) depth %u", w ? (long)(w - stubs) : -1L,
	      depth);
	rc = CALL(sw_stub_wait, w ? w->s : NULL, &ev);
	if (rc > 0) {
		if (rc != (int)ev.type)
			walk_fail("sw_stub_wait returned %d, event %d", rc,
				  (int)ev.type);
		saw(w, &ev, false);
	}
}

static void op_kill(void)
{
	struct wstub *w = any_stub();
	int reason = (int)pick(5);

	trace("sw_stub_kill(stub %ld, %d)", w ? (long)(w - stubs) : -1L, reason);
	if (CALL(sw_stub_kill, w ? w->s : NULL, (enum sw_kill_reason)reason) == 0)
		w->killed = true;
}

static void op_detach_attach(void)
{
	struct wstub *w = any_stub();
	struct sw_loop *l = any_loop();
	int rc;

	if (!w)
		return;
	if (chance(50)) {
		trace("sw_stub_detach(stub %ld)", (long)(w - stubs));
		rc = CALL(sw_stub_detach, w->s);
		if (rc == 0 && sw_stub_loop(w->s))
			walk_fail("detached, and still on a loop");
	} else {
		trace("sw_stub_attach(stub %ld, loop %d)", (long)(w - stubs),
		      loop_index(l));
		rc = CALL(sw_stub_attach, w->s, l);
		if (rc == 0 && sw_stub_loop(w->s) != l)
			walk_fail("attached, and not on that loop");
		/* its -EINVAL is for a NULL argument only */
		if (rc == -EINVAL && l)
			walk_fail("sw_stub_attach of a stub to a loop: -EINVAL");
	}
}

static void op_fd(void)
{
	struct wstub *w = any_stub();
	unsigned what = pick(10);
	int fd = -1, ep = -1;
	uint32_t events = chance(85) ? EPOLLIN : (uint32_t)rnd();

	if (!w)
		return;
	if (w->pipe[0] < 0)
		t_assert(pipe2(w->pipe, O_CLOEXEC | O_NONBLOCK) == 0);
	switch (what) {
	case 0: /* a loop's own fd */
		fd = (ep = (int)pick(NLOOPS), loops[ep]) ?
			     sw_loop_get_fd(loops[ep]) : -1;
		ep = -1;
		break;
	case 1: /* anyone's epoll set */
		fd = ep = epoll_create1(EPOLL_CLOEXEC);
		break;
	case 2:
		fd = chance(50) ? -1 : 1000000;
		break;
	case 3: /* the write end: EPOLLOUT is ready at once */
		fd = w->pipe[1];
		events = EPOLLOUT;
		break;
	case 4:
	case 5:
		trace("sw_stub_remove_fd(stub %ld)", (long)(w - stubs));
		CALL(sw_stub_remove_fd, w->s);
		return;
	case 6: /* make the watched fd readable, or drain it */
		if (chance(50)) {
			trace("poke stub %ld's pipe", (long)(w - stubs));
			if (write(w->pipe[1], "x", 1) < 0 && errno != EAGAIN)
				walk_fail("write: %s", strerror(errno));
		} else {
			char b[64];

			trace("drain stub %ld's pipe", (long)(w - stubs));
			while (read(w->pipe[0], b, sizeof(b)) > 0)
				;
		}
		return;
	case 7:
		trace("sw_stub_continue(stub %ld)", (long)(w - stubs));
		CALL(sw_stub_continue, w->s);
		return;
	default:
		fd = w->pipe[0];
		break;
	}
	trace("sw_stub_add_fd(stub %ld, fd %d, %#x)", (long)(w - stubs), fd,
	      events);
	CALL(sw_stub_add_fd, chance(5) ? NULL : w->s, fd, events);
	if (ep >= 0)
		close(ep);
}

static void op_misc(void)
{
	struct wstub *w = any_stub();
	pid_t pid;
	int fd;

	if (!w) {
		CALL(sw_stub_pid, NULL);
		return;
	}
	trace("stub %ld: pid, pidfd, set_callback", (long)(w - stubs));
	pid = (pid_t)CALL(sw_stub_pid, w->s);
	fd = CALL(sw_stub_pidfd, w->s);
	if (w->ended != (pid == -ESRCH) || w->ended != (fd == -ESRCH))
		walk_fail("ended %d: pid %d, pidfd %d", w->ended, (int)pid, fd);
	if (!w->ended && pid <= 0)
		walk_fail("a live stub's pid is %d", (int)pid);
	if (chance(30))
		CALL(sw_stub_set_callback, w->s, chance(60) ? stub_cb : NULL, w);
	if (sw_stub_get_userdata(w->s) && sw_stub_get_userdata(w->s) != w)
		walk_fail("userdata changed");
}

static void op_free(void)
{
	struct wstub *w = any_stub();

	if (!w)
		return;
	trace("sw_stub_free(stub %ld) depth %u", (long)(w - stubs), depth);
	if (sw_stub_free(w->s) != NULL) {
		if (!depth)
			walk_fail("sw_stub_free refused outside any callback");
		return;
	}
	w->s = NULL;
	slot_clear(w);
}

/*
 * A child after fork holds copies of every handle, none of them its own:
 * every call on them is refused, and freeing them only forgets them.  A
 * stub that has reported and sleeps until resumed (state IN_KERN, not
 * killed) can die only of someone's signal: it must outlive the child.
 */
static void op_fork(void)
{
	struct wstub *w = any_stub();
	struct sw_loop *l = any_loop(), *mine = NULL;
	struct sw_page *page = w ? sw_stub_page(w->s) : NULL;
	pid_t pid, spid = w ? sw_stub_pid(w->s) : -1;
	bool idle = page && !w->ended && !w->killed && spid > 0 &&
		    __atomic_load_n(&page->state, __ATOMIC_ACQUIRE) ==
			    SW_STATE_IN_KERN &&
		    strchr("SR", t_proc_state(spid));
	struct sw_event ev;
	int status, rc = 0;

	if (depth)
		return;
	trace("fork, the child tries stub %ld%s and loop %d",
	      w ? (long)(w - stubs) : -1L, idle ? " (idle)" : "",
	      loop_index(l));
	nforks++;
	fflush(NULL);
	pid = fork();
	t_assert(pid >= 0);
	if (pid == 0) {
		if (l && sw_loop_dispatch(l) != -ECHILD)
			_exit(2);
		if (idle && sw_stub_loop(w->s) && sw_stub_resume(w->s) != -ECHILD)
			_exit(3);
		if (w && sw_stub_wait(w->s, &ev) >= 0)
			_exit(4);
		if (sw_loop_new(NULL, &mine) == 0) {
			if (w && !sw_stub_loop(w->s) &&
			    sw_stub_attach(w->s, mine) != -ECHILD)
				rc = 5;
			sw_loop_free(mine);
		}
		if (w)
			sw_stub_free(w->s);
		if (l)
			sw_loop_free(l);
		_exit(rc);
	}
	t_assert(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		walk_fail("the forked child failed (status %#x)", status);
	if (idle && t_wait_proc_state(spid, "ZX", 20 * T_MS))
		walk_fail("the child's sw_stub_free() killed the parent's "
			  "stub %d", (int)spid);
	if (idle && __atomic_load_n(&page->state, __ATOMIC_ACQUIRE) !=
			    SW_STATE_IN_KERN)
		walk_fail("the child resumed the parent's stub");
}

static void one_step(void)
{
	unsigned r = pick(100);

	if (r < 4)
		op_loop_new();
	else if (r < 6)
		op_loop_free();
	else if (r < 12)
		op_loop_calls();
	else if (r < 22)
		op_dispatch();
	else if (r < 32)
		op_spawn();
	else if (r < 50)
		op_resume();
	else if (r < 64)
		op_wait();
	else if (r < 67)
		op_kill();
	else if (r < 73)
		op_detach_attach();
	else if (r < 83)
		op_fd();
	else if (r < 92)
		op_misc();
	else if (r < 99)
		op_free();
	else if (chance(25))
		op_fork();
}

/* The model against the library: who is on which loop. */
static void check_model(void)
{
	unsigned i, j;
	int n;

	for (i = 0; i < NSTUBS; i++) {
		struct sw_loop *l;

		if (!stubs[i].s)
			continue;
		l = sw_stub_loop(stubs[i].s);
		if (l && loop_index(l) < 0)
			walk_fail("stub %u is on a loop the walk does not have", i);
	}
	for (j = 0; j < NLOOPS; j++) {
		if (!loops[j])
			continue;
		for (n = 0, i = 0; i < NSTUBS; i++)
			n += stubs[i].s && sw_stub_loop(stubs[i].s) == loops[j];
		if (sw_loop_count_stubs(loops[j]) != n)
			walk_fail("loop %u counts %d stubs, the walk has %d", j,
				  sw_loop_count_stubs(loops[j]), n);
	}
}

/* Per call: how often the walk made it, and each error it got; with
 * T_WALK_TABLE=1 also the errors the header allows. */
static void print_table(void)
{
	bool all = getenv("T_WALK_TABLE") != NULL;
	char line[512];
	unsigned i;
	int e, n;

	for (i = 0; i < ntable; i++) {
		unsigned long errs = 0;

		for (e = 0; e < MAXERRNO; e++)
			errs += table[i].seen[e];
		n = snprintf(line, sizeof(line), "%-26s %6lu calls, %6lu ok",
			     table[i].name, table[i].calls,
			     table[i].calls - errs);
		for (e = 0; e < MAXERRNO && n < (int)sizeof(line) - 32; e++)
			if (table[i].seen[e] || (all && table[i].ok[e]))
				n += snprintf(line + n, sizeof(line) - (size_t)n,
					      " -%s %lu", strerrorname_np(e),
					      table[i].seen[e]);
		t_note("%s", line);
	}
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

/* a walk that only ever failed proves little: one report per 40 steps and
 * one end (exit or kill) per 200, of the walk's nominal length */
static bool enough(unsigned long steps)
{
	return nreports >= steps / 40 && nexits + nkills >= steps / 200;
}

static void case_walk(intptr_t param)
{
	unsigned long steps = env_u64("T_WALK_STEPS", 20000), walked;
	unsigned i;

	if (T_TSAN)
		t_skip("the walk spawns fn-mode stubs");
	seed = env_u64("T_WALK_SEED", (uint64_t)param);
	rng = seed * 0x9e3779b97f4a7c15ull + 1;
	table_load();
	for (i = 0; i < NSTUBS; i++)
		stubs[i] = (struct wstub){ .pipe = { -1, -1 } };
	/* the walk goes on past its length, up to three times it, until it
	 * has seen its floor of completions: on a loaded host the stubs get
	 * less CPU between the walk's calls, so fewer of them end per step */
	for (step = 0; step < steps || (!enough(steps) && step < 3 * steps);
	     step++) {
		one_step();
		check_model();
	}
	walked = step;
	trace("the end: free every stub, then every loop");
	for (i = 0; i < NSTUBS; i++)
		if (stubs[i].s) {
			if (sw_stub_free(stubs[i].s) != NULL)
				walk_fail("sw_stub_free refused at the end");
			stubs[i].s = NULL;
			slot_clear(&stubs[i]);
		}
	for (i = 0; i < NLOOPS; i++)
		if (sw_loop_free(loops[i]) != NULL)
			walk_fail("sw_loop_free refused at the end");
	t_note("seed %" PRIu64 ": %lu steps (of %lu), %lu calls (%lu errors), "
	       "%lu callbacks; %lu reports, %lu exits, %lu kills, %lu fd, %lu "
	       "ticks; %lu forks; %u calls read from the header",
	       seed, walked, steps, ncalls, nerrors, ncb, nreports, nexits, nkills,
	       nfd, nticks, nforks, ntable);
	print_table();
	t_assert(t_no_children());
	t_assert_msg(enough(steps),
		     "too few completions in %lu steps: %lu reports, %lu ends",
		     walked, nreports, nexits + nkills);
}

int main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{ "seed_1", case_walk, 1, 120 },
		{ "seed_2", case_walk, 2, 120 },
		{ "seed_3", case_walk, 3, 120 },
	};

	return t_main(argc, argv, cases, T_NCASES(cases));
}
