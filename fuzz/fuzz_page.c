// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Fuzz target: what the monitor makes of whatever a stub writes into its
 * shared page and does with its report eventfd.
 *
 * The real library (every file of src/ but the libev glue, compiled
 * in) runs one stub whose kernel objects are stand-ins, so that no process
 * is needed and every run is deterministic:
 *   - the page is a plain buffer that the input writes at will (its state
 *     word, stub_cpu, monitor, magic, anything in the 64-byte header);
 *   - the report eventfd is a real eventfd, shared as a stub shares it: the
 *     input writes it, floods it, drains it, saturates it, clears its
 *     O_NONBLOCK;
 *   - the loop's timerfd is replaced by an eventfd, so the input decides
 *     when the timer is read and how many expirations each read finds;
 *   - the pidfd is an eventfd that never turns readable, and the pid is
 *     one no process can have: the kill's SIGKILL (pidfd_send_signal) and
 *     /proc reads fail harmlessly, and the stub never dies;
 *   - the optional watched fd (sw_stub_add_fd) is an eventfd the input
 *     makes ready.
 * The stub is attached with sw__loop_add_stub() and put in flight with
 * sw__stub_start(), as sw_stub_spawn() does; from then on only the public
 * calls drive the loop: sw_loop_dispatch(), sw_loop_prepare(),
 * sw_stub_resume(), sw_stub_run(), sw_stub_wait(), sw_stub_continue(),
 * sw_stub_kill(), and a completion callback.
 *
 * The decision point is watched by wrapping sw_wd_step() (linked with
 * -Wl,--wrap=sw_wd_step; the real function runs): each event the loop
 * derives from the page is checked against the state word at that moment.
 *   - REPORT only with the word IN_KERN, NOISE only with IN_CHILD;
 *   - BAD (SW_KILL_PROTOCOL) only with a word that is neither, or from
 *     sw_stub_kill(SW_KILL_PROTOCOL);
 *   - EXPIRE (a stall kill) only with the word IN_CHILD: a report found at
 *     the deadline is a report, a bad word a protocol kill;
 *   - ANSWER for a stub in flight only with the word IN_CHILD (a report
 *     seen with the fd's event wins).
 * After each step:
 *   - the monitor wrote nothing in the page but `state` (IN_CHILD only) and
 *     `monitor` (no bit it does not define, beyond those the stub left);
 *   - a stub in flight is never past its deadline (the read that makes the
 *     count judges it);
 *   - sw_loop_count_in_flight() agrees with the stub's state;
 *   - a kill carries the reason it was decided with, the pid, and for
 *     SW_KILL_PROTOCOL the state word found (sw_kill_info.bad_state);
 *   - every call returns a value its documentation lists;
 *   - a dispatch after an eventfd write (not muted) gives the word's
 *     verdict: IN_KERN a report (if in flight), IN_CHILD nothing, anything
 *     else a protocol kill.
 * A hang is a failure too (libFuzzer's -timeout): nothing the stub does
 * may block the monitor.  Sanitizers catch memory errors and undefined
 * behaviour; LeakSanitizer and an fd count catch leaks.
 *
 * Not covered here: real processes (death, reaping, /proc diagnostics,
 * starvation credit, all of which need a stub that exists: test/t_*), the
 * real timerfd's clock and lateness figures, more than one stub per loop,
 * SW_LOOP_TICK_EVENTS off (the harness relies on TICK to end waits), and
 * the adaptive poll's spin (its budget only grows on a report that a quiet
 * wait finds, which needs a second thread).
 *
 * Input: byte 0 configures, then one opcode byte per step (value % 20),
 * some followed by argument bytes.
 *   byte 0: bits 0-1 N - 1 (stall_ticks), bits 2-3 log2(k) - 1 (timer_div
 *           2..16), bit 4 SW_LOOP_ADAPTIVE_POLL (and the CPU hint forced
 *           on, so that stub_cpu is read), bit 5 a watched fd, bit 6 a
 *           completion callback, bit 7 that callback resumes (REPORT) or
 *           continues (FD) the stub.
 *   0 WORD i       state word := interesting value i (1 byte)
 *   1 WORD32 v     state word := v (4 bytes, little-endian)
 *   2 POKE o v     4 bytes v at header offset o % 61 (1 + 4 bytes)
 *   3 REPORT       the stub side's report: IN_KERN, then the eventfd if the
 *                  monitor field says SW_MON_SLEEPING
 *   4 EFD          eventfd write of 1
 *   5 FLOOD n      n % 32 + 1 eventfd writes of 1
 *   6 DRAIN        eventfd read
 *   7 NONBLOCK     toggle O_NONBLOCK on the shared eventfd
 *   8 SATURATE     eventfd write of 0xfffffffffffffffe (non-blocking mode)
 *   9 DISPATCH     sw_loop_dispatch()
 *  10 PREPARE      sw_loop_prepare()
 *  11 RESUME       sw_stub_resume()
 *  12 RUN          sw_stub_run()
 *  13 WAIT         sw_stub_wait()
 *  14 TIMER e      the next timer read finds e more expirations (1 byte)
 *  15 KILL r       sw_stub_kill(): USER, PROTOCOL or an invalid reason
 *  16 CONTINUE     sw_stub_continue()
 *  17 XFIRE        the watched fd turns ready
 *  18 XDRAIN       ... and not ready
 *  19 CALLBACK b   bit 0: set the callback, bit 1: it resumes/continues
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

/* No process has it: PID_MAX_LIMIT is 4194304. */
#define FAKE_PID ((pid_t)0x7fffffff)
#define PAGE_BYTES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
enum sw_wd_action __real_sw_wd_step(const struct sw_wd *wd,
				    struct sw_wd_stub *s, enum sw_wd_event ev);
enum sw_wd_action __wrap_sw_wd_step(const struct sw_wd *wd,
				    struct sw_wd_stub *s, enum sw_wd_event ev);

static struct {
	struct sw_loop *loop;
	struct sw_stub *s;
	struct sw_page *page;
	unsigned char shadow[PAGE_BYTES]; /* the page as the stub left it */
	int tfd, efd, pfd, xfd;
	size_t step;
	bool user_protocol;  /* inside sw_stub_kill(SW_KILL_PROTOCOL)        */
	bool fresh;          /* eventfd written, not muted, since the last call */
	bool cb_resume;
	/* what the wrapper saw */
	unsigned done_reports;
	unsigned protocol_kills;
	enum sw_kill_reason kill_reason; /* the kill decided, 0 if none      */
	uint32_t kill_word;              /* ... and the word it was found with */
} F;

static __attribute__((noreturn, format(printf, 1, 2))) void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_page: step %zu: ", F.step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

static uint32_t word(void)
{
	return __atomic_load_n(&F.page->state, __ATOMIC_RELAXED);
}

static bool word_valid(uint32_t w)
{
	return w == SW_STATE_IN_KERN || w == SW_STATE_IN_CHILD;
}

/* ---- the decision point ---------------------------------------------------- */

enum sw_wd_action __wrap_sw_wd_step(const struct sw_wd *wd,
				    struct sw_wd_stub *ws, enum sw_wd_event ev)
{
	struct sw_stub *s = (struct sw_stub *)((char *)ws -
					       offsetof(struct sw_stub, wd));
	uint32_t w = __atomic_load_n(&s->page->state, __ATOMIC_RELAXED);
	uint8_t before = ws->state;
	enum sw_wd_action a;

	switch (ev) {
	case SW_WD_EV_REPORT:
		if (w != SW_STATE_IN_KERN)
			fail("a report fed to the watchdog with state word %#x", w);
		break;
	case SW_WD_EV_NOISE:
		if (w != SW_STATE_IN_CHILD)
			fail("noise fed to the watchdog with state word %#x", w);
		break;
	case SW_WD_EV_BAD:
		if (word_valid(w) && !F.user_protocol)
			fail("a protocol violation fed with state word %#x", w);
		break;
	case SW_WD_EV_EXPIRE:
		if (w != SW_STATE_IN_CHILD)
			fail("a stall kill with state word %#x: a report at the "
			     "deadline is a report, a bad word a protocol kill",
			     w);
		break;
	case SW_WD_EV_ANSWER:
		if (before == SW_WD_RUNNING && w != SW_STATE_IN_CHILD)
			fail("an fd answer taken over state word %#x", w);
		break;
	default:
		break;
	}
	a = __real_sw_wd_step(wd, ws, ev);
	switch (a) {
	case SW_WD_DONE_REPORT:
		F.done_reports++;
		break;
	case SW_WD_KILL_STALL:
		F.kill_reason = SW_KILL_STALL;
		break;
	case SW_WD_KILL_PROTOCOL:
		F.kill_reason = SW_KILL_PROTOCOL;
		F.kill_word = w;
		F.protocol_kills++;
		break;
	case SW_WD_KILL_USER:
		F.kill_reason = SW_KILL_USER;
		break;
	case SW_WD_DONE_EXIT:
	case SW_WD_DONE_KILL:
		fail("a death with no death: action %d", (int)a);
	default:
		break;
	}
	return a;
}

/* ---- the stand-ins --------------------------------------------------------- */

static int on_event(struct sw_stub *s, const struct sw_event *ev, void *ud)
{
	int r;

	if (!F.cb_resume)
		return 0;
	if (ev->type == SW_EV_REPORT) {
		r = sw_stub_resume(s);
		if (r != 0 && r != -EBUSY)
			fail("sw_stub_resume() from a callback: %d", r);
	} else if (ev->type == SW_EV_FD) {
		r = sw_stub_continue(s);
		if (r != 0 && r != -EBUSY)
			fail("sw_stub_continue() from a callback: %d", r);
	}
	return 0;
}

static bool efd_blocking(void)
{
	return !(fcntl(F.efd, F_GETFL) & O_NONBLOCK);
}

/* The stub's eventfd write, never blocking the harness itself. */
static bool efd_write(uint64_t v)
{
	struct pollfd p = { .fd = F.efd, .events = POLLOUT };

	if (efd_blocking() && (v != 1 || poll(&p, 1, 0) != 1))
		return false;
	if (write(F.efd, &v, sizeof(v)) != sizeof(v))
		return false;
	if (!F.s->muted)
		F.fresh = true;
	return true;
}

static void fd_drain(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN))
		(void)!read(fd, &v, sizeof(v));
}

static void fd_add(int fd, uint64_t v)
{
	(void)!write(fd, &v, sizeof(v));
}

static int new_efd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0)
		fail("eventfd: %s", strerror(errno));
	return fd;
}

static int lowest_free_fd(void)
{
	int fd = new_efd();

	close(fd);
	return fd;
}

static void setup(uint8_t cfg)
{
	struct sw_loop_opts o = SW_LOOP_OPTS_INIT;
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = SW_TAG_TIMER };
	struct sw_stub *s;
	int r;

	o.stall_ticks = 1u + (cfg & 3u);
	o.timer_div = 2u << ((cfg >> 2) & 3u);
	o.flags = SW_LOOP_TICK_EVENTS |
		  (cfg & 0x10 ? SW_LOOP_ADAPTIVE_POLL : 0);
	r = sw_loop_new(&o, &F.loop);
	if (r < 0)
		fail("sw_loop_new: %d", r);
	if (cfg & 0x10)
		F.loop->cpu_hint = true; /* the monitor reads stub_cpu */

	/* The timer: an eventfd the input fills with expirations. */
	epoll_ctl(F.loop->epfd, EPOLL_CTL_DEL, F.loop->tfd, NULL);
	close(F.loop->tfd);
	F.tfd = F.loop->tfd = new_efd();
	if (epoll_ctl(F.loop->epfd, EPOLL_CTL_ADD, F.tfd, &e) < 0)
		fail("epoll_ctl: %s", strerror(errno));
	F.loop->armed = true; /* and it stays so: it cannot be disarmed */

	F.page = aligned_alloc(PAGE_BYTES, PAGE_BYTES);
	if (!F.page)
		fail("out of memory");
	memset(F.page, 0, PAGE_BYTES);
	F.efd = new_efd();
	F.pfd = new_efd();
	F.xfd = -1;

	s = calloc(1, sizeof(*s));
	if (!s)
		fail("out of memory");
	s->page = F.page;
	s->shm_size = PAGE_BYTES;
	s->pid = FAKE_PID;
	s->owner = getpid();
	s->pidfd = F.pfd;
	s->report_fd = F.efd;
	s->xfd = -1;
	/* The page as sw_stub_spawn() leaves it. */
	F.page->magic = SW_PAGE_MAGIC;
	F.page->abi = SW_PAGE_ABI;
	F.page->size = PAGE_BYTES;
	F.page->report_fd = F.efd;
	F.page->monitor = SW_MON_SLEEPING;
	F.page->stub_cpu = -1;
	F.page->state = SW_STATE_IN_CHILD;
	memcpy(F.shadow, F.page, PAGE_BYTES);
	r = sw__loop_add_stub(F.loop, s);
	if (r < 0)
		fail("sw__loop_add_stub: %d", r);
	r = sw__stub_start(F.loop, s);
	if (r < 0)
		fail("sw__stub_start: %d", r);
	F.s = s;
	if (cfg & 0x20) {
		F.xfd = new_efd();
		r = sw_stub_add_fd(s, F.xfd, EPOLLIN);
		if (r < 0)
			fail("sw_stub_add_fd: %d", r);
	}
	if (cfg & 0x40)
		sw_stub_set_callback(s, on_event, NULL);
	F.cb_resume = cfg & 0x80;
}

static void teardown(void)
{
	struct sw_stub *s = F.s;

	/* Not sw_stub_free(): it would wait for a death that never comes. */
	sw__loop_remove_stub(F.loop, s);
	if (s->xfd >= 0)
		close(s->xfd);
	close(F.efd);
	close(F.pfd);
	if (F.xfd >= 0)
		close(F.xfd);
	free(s);
	if (sw_loop_free(F.loop))
		fail("sw_loop_free refused");
	free(F.page);
}

/* ---- checks ------------------------------------------------------------------ */

static void check_ret(const char *call, int r, const int *ok, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r == ok[i])
			return;
	fail("%s returned %d, not a documented value", call, r);
}

/* Whether byte i of the page is one the monitor may write: the state word
 * (only to resume the stub, checked below), its own bits and the CPU
 * counter it leaves for a stub it lets spin. */
static int monitor_byte(size_t i)
{
	static const struct {
		size_t off, len;
	} own[] = {
		{offsetof(struct sw_page, state), 4},
		{offsetof(struct sw_page, monitor), 4},
		{offsetof(struct sw_page, resume_ticks), 8},
	};

	for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++)
		if (i >= own[k].off && i < own[k].off + own[k].len)
			return 1;
	return 0;
}

/* What the monitor wrote in the page since the last look. */
static void check_page(void)
{
	const unsigned char *p = (const unsigned char *)F.page;
	size_t st = offsetof(struct sw_page, state);
	size_t mon = offsetof(struct sw_page, monitor);
	uint32_t old_mon, new_mon;

	for (size_t i = 0; i < PAGE_BYTES; i++)
		if (p[i] != F.shadow[i] && !monitor_byte(i))
			fail("the monitor wrote byte %zu of the page: "
			     "%#x -> %#x",
			     i, F.shadow[i], p[i]);
	if (memcmp(p + st, F.shadow + st, 4) && word() != SW_STATE_IN_CHILD)
		fail("the monitor wrote state word %#x", word());
	memcpy(&old_mon, F.shadow + mon, 4);
	new_mon = __atomic_load_n(&F.page->monitor, __ATOMIC_RELAXED);
	if (new_mon &
	    ~(SW_MON_SLEEPING | SW_MON_WANT_CPU | SW_MON_STUB_SPIN |
	      SW_MON_CPU_SEG) &
	    ~old_mon)
		fail("the monitor wrote monitor bits %#x", new_mon);
	memcpy(F.shadow, F.page, PAGE_BYTES);
}

static void check_state(void)
{
	struct sw_stub *s = F.s;
	const struct sw_kill_info *k = &s->ev.kill;
	int in_flight = sw_loop_count_in_flight(F.loop);

	check_page();
	if (in_flight != (s->wd.state == SW_WD_RUNNING))
		fail("%d in flight, stub in watchdog state %u", in_flight,
		     s->wd.state);
	if (s->wd.state == SW_WD_RUNNING && sw_wd_stamped(&s->wd) &&
	    sw_wd_counted(&F.loop->wd, &s->wd) >=
		    F.loop->wd.limit + s->wd.credit)
		fail("in flight %llu periods after its first read, past its "
		     "deadline of %llu",
		     (unsigned long long)sw_wd_counted(&F.loop->wd, &s->wd),
		     (unsigned long long)(F.loop->wd.limit + s->wd.credit));
	if (s->wd.state == SW_WD_KILLING) {
		if (!F.kill_reason)
			fail("killing, no kill decided");
		if (k->reason != F.kill_reason || k->pid != FAKE_PID)
			fail("kill info reason %d pid %d, decided %d", k->reason,
			     (int)k->pid, F.kill_reason);
		if (k->reason == SW_KILL_PROTOCOL && k->bad_state != F.kill_word)
			fail("kill info bad_state %#x, the word was %#x",
			     k->bad_state, F.kill_word);
	} else if (s->wd.state != SW_WD_RUNNING && s->wd.state != SW_WD_IDLE) {
		fail("watchdog state %u with no death", s->wd.state);
	}
}

/* A wait must not be left waiting for a death that never comes here (in
 * real use the SIGKILL brings it): wait only when it surely ends, on a
 * pending completion, on -EALREADY, or on the TICK of the timer read it is
 * given, which neither expires the stub nor finds a bad word. */
static bool wait_ends(void)
{
	struct sw_stub *s = F.s;
	uint64_t counted = sw_wd_counted(&F.loop->wd, &s->wd);

	if (sw__phase_pending(s->phase))
		return true;
	if (s->wd.state == SW_WD_KILLING)
		return false;
	if (s->wd.state != SW_WD_RUNNING)
		return true;
	if (!word_valid(word()))
		return false;
	return word() != SW_STATE_IN_CHILD || !sw_wd_stamped(&s->wd) ||
	       counted + 1 < F.loop->wd.limit + s->wd.credit;
}

/* ---- the steps --------------------------------------------------------------- */

static const uint32_t words[] = {
	SW_STATE_IN_KERN, SW_STATE_IN_CHILD, 0, 3, 0xffffffffu, 0x80000001u,
	0x101, 0x201, SW_PAGE_MAGIC, 0x80000002u,
};

struct input {
	const uint8_t *p;
	size_t n;
};

static bool take(struct input *in, size_t len, uint64_t *v)
{
	if (in->n < len)
		return false;
	*v = 0;
	for (size_t i = 0; i < len; i++)
		*v |= (uint64_t)in->p[i] << (8 * i);
	in->p += len;
	in->n -= len;
	return true;
}

static const int dispatch_ok[] = { -EINVAL, -ECHILD, -EBUSY };
static const int resume_ok[] = { 0, -EINVAL, -EBUSY };
static const int kill_ok[] = { 0, -EINVAL, -ESRCH };
static const int wait_ok[] = { SW_EV_REPORT, SW_EV_TICK, SW_EV_FD,
			       -EALREADY, -EINVAL, -EBUSY };

static void do_dispatch(void)
{
	struct sw_stub *s = F.s;
	bool running = s->wd.state == SW_WD_RUNNING;
	/* (a completion not yet delivered runs its callback first, which
	 * may resume the stub and so rewrite the word) */
	bool judge = F.fresh && !s->muted && !sw__phase_pending(s->phase) &&
		     (running || s->wd.state == SW_WD_IDLE);
	uint32_t w = word();
	unsigned reports = F.done_reports, kills = F.protocol_kills;
	int r = sw_loop_dispatch(F.loop);

	if (r < 0)
		check_ret("sw_loop_dispatch", r, dispatch_ok, 3);
	if (!judge)
		return;
	/* The eventfd event is there: the word's verdict, now. */
	if (w == SW_STATE_IN_KERN &&
	    F.done_reports != reports + (running ? 1 : 0))
		fail("eventfd written with IN_KERN, %s: %u reports taken",
		     running ? "in flight" : "idle", F.done_reports - reports);
	if (word_valid(w) && F.protocol_kills != kills)
		fail("eventfd written with state word %#x: a protocol kill", w);
	if (w == SW_STATE_IN_CHILD && F.done_reports != reports)
		fail("eventfd written with IN_CHILD: a report");
	if (!word_valid(w) &&
	    (F.protocol_kills != kills + 1 || F.kill_word != w))
		fail("eventfd written with state word %#x: no protocol kill", w);
}

static bool step(struct input *in)
{
	struct sw_stub *s = F.s;
	struct sw_event ev;
	uint64_t op, v, o;
	int r;

	if (!take(in, 1, &op))
		return false;
	switch (op % 20) {
	case 0:
		if (!take(in, 1, &v))
			return false;
		__atomic_store_n(&F.page->state,
				 words[v % (sizeof(words) / sizeof(words[0]))],
				 __ATOMIC_RELEASE);
		break;
	case 1:
		if (!take(in, 4, &v))
			return false;
		__atomic_store_n(&F.page->state, (uint32_t)v, __ATOMIC_RELEASE);
		break;
	case 2: {
		uint32_t v32;

		if (!take(in, 1, &o) || !take(in, 4, &v))
			return false;
		v32 = (uint32_t)v;
		memcpy((char *)F.page + o % 61, &v32, sizeof(v32));
		break;
	}
	case 3:
		/* sw_stub_report() without its sw__cpu() (a handshake's
		 * early SW_STUB_SPINNING is case 2's to write)
		 * and on the harness's fd, whatever report_fd says */
		__atomic_store_n(&F.page->state, SW_STATE_IN_KERN,
				 __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&F.page->monitor, __ATOMIC_SEQ_CST) &
		    SW_MON_SLEEPING)
			efd_write(1);
		break;
	case 4:
		efd_write(1);
		break;
	case 5:
		if (!take(in, 1, &v))
			return false;
		for (v = v % 32 + 1; v; v--)
			efd_write(1);
		break;
	case 6:
		/* epoll drops an event whose fd is no longer readable */
		fd_drain(F.efd);
		F.fresh = false;
		break;
	case 7:
		fcntl(F.efd, F_SETFL, fcntl(F.efd, F_GETFL) ^ O_NONBLOCK);
		break;
	case 8:
		if (!efd_blocking())
			efd_write(0xfffffffffffffffeull);
		break;
	case 9:
		do_dispatch();
		F.fresh = false;
		break;
	case 10:
		r = sw_loop_prepare(F.loop);
		if (r < 0)
			check_ret("sw_loop_prepare", r, dispatch_ok, 3);
		F.fresh = false;
		break;
	case 11:
		r = sw_stub_resume(s);
		check_ret("sw_stub_resume", r, resume_ok, 3);
		F.fresh = false;
		break;
	case 12:
		/* The resume first unmutes, and a bad word kills an idle stub
		 * whose death never comes here: the wait would not end. */
		if (s->wd.state == SW_WD_KILLING && !sw__phase_pending(s->phase))
			break;
		if (s->muted && !word_valid(word()))
			break;
		fd_drain(F.tfd);
		fd_add(F.tfd, 1);
		r = sw_stub_run(s, &ev);
		check_ret("sw_stub_run", r, wait_ok, 6);
		F.fresh = false;
		break;
	case 13:
		if (!wait_ends())
			break;
		fd_drain(F.tfd);
		fd_add(F.tfd, 1);
		r = sw_stub_wait(s, &ev);
		check_ret("sw_stub_wait", r, wait_ok, 6);
		if (r == SW_EV_KILL || r == SW_EV_EXIT)
			fail("an end with no death");
		F.fresh = false;
		break;
	case 14:
		if (!take(in, 1, &v))
			return false;
		fd_add(F.tfd, v < 0xf0 ? v % (3 * F.loop->timer_div) + 1
				       : 1ull << (v & 0x0f) << 20);
		break;
	case 15: {
		static const enum sw_kill_reason reasons[] = {
			SW_KILL_USER, SW_KILL_PROTOCOL, SW_KILL_STALL, 0, 99
		};
		enum sw_kill_reason reason;

		if (!take(in, 1, &v))
			return false;
		reason = reasons[v % 5];
		F.user_protocol = reason == SW_KILL_PROTOCOL;
		r = sw_stub_kill(s, reason);
		F.user_protocol = false;
		check_ret("sw_stub_kill", r, kill_ok, 3);
		if ((reason == SW_KILL_USER || reason == SW_KILL_PROTOCOL) !=
		    (r != -EINVAL))
			fail("sw_stub_kill(%d) returned %d", reason, r);
		F.fresh = false;
		break;
	}
	case 16:
		r = sw_stub_continue(s);
		check_ret("sw_stub_continue", r, resume_ok, 3);
		F.fresh = false;
		break;
	case 17:
		if (F.xfd >= 0)
			fd_add(F.xfd, 1);
		break;
	case 18:
		if (F.xfd >= 0)
			fd_drain(F.xfd);
		break;
	case 19:
		if (!take(in, 1, &v))
			return false;
		sw_stub_set_callback(s, v & 1 ? on_event : NULL, NULL);
		F.cb_resume = v & 2;
		break;
	}
	if (op % 20 <= 3) /* the stub wrote its page */
		memcpy(F.shadow, F.page, PAGE_BYTES);
	check_state();
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	uint64_t cfg;
	int fd_base;

	if (!take(&in, 1, &cfg))
		return 0;
	fd_base = lowest_free_fd();
	memset(&F, 0, sizeof(F));
	setup((uint8_t)cfg);
	check_state();
	while (step(&in))
		F.step++;
	teardown();
	if (lowest_free_fd() != fd_base)
		fail("an fd leaked: the lowest free one is %d, was %d",
		     lowest_free_fd(), fd_base);
	return 0;
}
