/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nothing accumulates: thousands of stubs spawned and ended on one loop
 * leave the monitor's process as they found it.
 *
 * spawn_kill: each cycle spawns an echo stub and takes its first report,
 *   then ends it one of three ways in turn: sw_stub_kill() and its KILL
 *   collected, sw_stub_free() of the live stub, or sw_stub_free() of a stub
 *   in flight (resumed into a request it never answers).
 * spawn_exit: each cycle's stub exits by itself and its EXIT, with the
 *   status, is collected: in turn the "exit" role (in flight from the
 *   spawn, it returns at once) and an echo stub asked to exit after its
 *   first report.
 *
 * Before and after the cycles the case prints the open fds, the children
 * (live and zombie, from /proc), the lines of /proc/self/maps, VmRSS and
 * malloc's bytes in use (mallinfo2).  The baseline is taken after a
 * warm-up (300 cycles in fn mode), so that first-use effects (malloc's
 * arena and free lists, stdio buffers, the loop's first timer arming, the
 * dynamic linker's lazy bindings) are not counted as leaks.  Then fds,
 * children, mappings and the heap's bytes in use must be exactly where
 * they were, and RSS may have grown by less than RSS_GROWTH_MAX_KB
 * (1 MiB): a stub's monitor-side state is a struct sw_stub (448 bytes on
 * x86_64) plus a page mapping and four fds, so a leak of any one of them
 * per cycle over thousands of cycles costs a megabyte of heap or more (and
 * the fd, mapping and heap leaks are caught exactly anyway), while what
 * the kernel and the allocator keep of a steady state (a heap top not yet
 * trimmed, stack and page-table pages touched once) is a few hundred KiB
 * at most, and does not grow with the cycles.
 *
 * Under AddressSanitizer, freed memory sits in a quarantine (up to 256 MB)
 * and the allocator maps regions as it needs them (ThreadSanitizer's too):
 * RSS, the mapping count and the heap are printed but not asserted there;
 * fds and children are.
 *
 * Cycles: 10,000 of each kind in fn mode.  A spawn forks the monitor's
 * address space (clone3 without CLONE_VM: page tables copied, copy-on-write
 * faults after it), about 1.4 ms of CPU per cycle on a 2-CPU VM, so under a
 * load that leaves this program a fraction of a CPU the 10,000 would take
 * minutes: each case stops after a time budget (20 s), once it has made at
 * least 2,000 cycles, and says so.  The exact checks above do not need
 * more cycles to see a leak; the RSS bound does not depend on them.  In
 * exec mode each spawn also re-executes this program (the dynamic linker,
 * libc's start-up: several times an fn-mode spawn), so 1,000 of each, after
 * a warm-up of 100 (the monitor side is the same code as in fn mode), with
 * a budget of 5 s and at least 200: the whole program stays around a minute
 * on a loaded 2-CPU machine, and well under it on an idle one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_util.h"

#define RSS_GROWTH_MAX_KB 1024l

/* Cycles of each kind, and the warm-up, per mode; and a time budget: past
 * it the case stops early, once it has made at least min_cycles. */
struct plan {
	unsigned warmup, cycles, min_cycles;
	uint64_t budget_ns;
};

static const struct plan fn_plan = {
	.warmup = 300, .cycles = 10000, .min_cycles = 2000,
	.budget_ns = 20000ull * T_MS,
};
static const struct plan exec_plan = {
	.warmup = 100, .cycles = 1000, .min_cycles = 200,
	.budget_ns = 5000ull * T_MS,
};

/* ---- what the process holds ----------------------------------------------- */

struct usage {
	int fds;
	int children; /* live and zombie */
	int zombies;
	int maps;
	long rss_kb;
	size_t heap;  /* malloc's bytes in use (mallinfo2) */
};

/* Lines of /proc/self/maps, read without stdio. */
static int maps_count(void)
{
	char buf[4096];
	ssize_t n, i;
	int fd, lines = 0;

	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(fd);
	return lines;
}

/* A field of /proc/self/status in kB ("VmRSS:"). */
static long status_kb(const char *field)
{
	char buf[8192], *p;
	ssize_t n;
	int fd;

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strstr(buf, field);
	return p ? strtol(p + strlen(field), NULL, 10) : -1;
}

/* Processes whose parent is this one, and how many of them are zombies
 * (stubs have exit_signal 0: only /proc, or waitid(__WALL), sees them). */
static void count_children(int *ret_children, int *ret_zombies)
{
	char path[300], buf[512], *p, state;
	pid_t self = getpid();
	struct dirent *d;
	int ppid, fd;
	ssize_t n;
	DIR *proc;

	*ret_children = *ret_zombies = 0;
	proc = opendir("/proc");
	t_assert(proc);
	while ((d = readdir(proc))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", d->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2 ||
		    ppid != self)
			continue;
		(*ret_children)++;
		*ret_zombies += state == 'Z';
	}
	closedir(proc);
}

static void usage_take(struct usage *u)
{
	u->fds = t_fd_count();
	count_children(&u->children, &u->zombies);
	u->maps = maps_count();
	u->rss_kb = status_kb("VmRSS:");
	u->heap = mallinfo2().uordblks;
	t_assert(u->fds > 0 && u->maps > 0 && u->rss_kb > 0);
}

static void usage_note(const char *what, const struct usage *u)
{
	t_note("%-20s fds %d, children %d (zombies %d), mappings %d, VmRSS "
	       "%ld kB, heap in use %zu B", what, u->fds, u->children,
	       u->zombies, u->maps, u->rss_kb, u->heap);
}

/* ---- the cycles ------------------------------------------------------------ */

static void end_killed(struct sw_stub *stub, enum sw_kill_reason reason)
{
	struct sw_event ev;
	int rc = sw_stub_wait(stub, &ev);

	if (rc != SW_EV_KILL)
		t_note_event(rc, &ev);
	t_assert_rc(rc, SW_EV_KILL);
	t_assert_eq(ev.kill.reason, reason);
	t_assert(WIFSIGNALED(ev.status) && WTERMSIG(ev.status) == SIGKILL);
}

/*
 * The cycles run in batches of BATCH stubs, each stub through its own whole
 * cycle: the spawns one after another (a spawn waits for its child's
 * setup), then the first reports, then the ends, so that the stubs' own
 * work (starting, reporting, dying) overlaps instead of each one waiting
 * for a CPU in turn: on a loaded machine that is most of a cycle's time.
 */
#define BATCH 16u

/* Spawn, first report, then a kill, a free, or a free in flight. */
static void batch_kill(struct sw_loop *loop, intptr_t mode, unsigned first,
		       unsigned n)
{
	struct sw_stub *stub[BATCH];
	struct t_payload *p;
	unsigned j;

	for (j = 0; j < n; j++)
		stub[j] = t_spawn(loop, mode, "echo", 0);
	for (j = 0; j < n; j++) {
		t_expect(stub[j], SW_EV_REPORT, NULL);
		t_assert_eq(t_pl(stub[j])->ack, 1);
	}
	for (j = 0; j < n; j++) {
		switch ((first + j) % 3) {
		case 0:
			t_assert_rc(sw_stub_kill(stub[j], SW_KILL_USER), 0);
			break;
		case 1:
			break; /* freed alive, between round trips */
		case 2:
			/* in flight, waiting at a gate that never opens */
			p = t_pl(stub[j]);
			__atomic_store_n(&p->gate, 0, __ATOMIC_RELEASE);
			p->req = T_REQ_GATED;
			t_assert_rc(sw_stub_resume(stub[j]), 0);
			break;
		}
	}
	for (j = 0; j < n; j++) {
		if ((first + j) % 3 == 0)
			end_killed(stub[j], SW_KILL_USER);
		t_assert(sw_stub_free(stub[j]) == NULL);
	}
}

static void assert_exit(int rc, const struct sw_event *ev, int code)
{
	char buf[32];

	if (rc != SW_EV_EXIT)
		t_note_event(rc, ev);
	t_assert_rc(rc, SW_EV_EXIT);
	t_assert_msg(WIFEXITED(ev->status) && WEXITSTATUS(ev->status) == code,
		     "status %s, expected exit %d", t_status_str(ev->status, buf),
		     code);
}

/* The stub exits by itself: at once (the "exit" role, in flight from the
 * spawn), or asked to after its first report. */
static void batch_exit(struct sw_loop *loop, intptr_t mode, unsigned first,
		       unsigned n)
{
	struct sw_stub *stub[BATCH];
	struct sw_event ev;
	unsigned j, i;

	for (j = 0; j < n; j++) {
		i = first + j;
		stub[j] = t_spawn(loop, mode, i % 2 ? "echo" : "exit", i % 120);
	}
	for (j = 0; j < n; j++) {
		i = first + j;
		if (i % 2 == 0)
			continue;
		t_expect(stub[j], SW_EV_REPORT, NULL);
		t_assert_eq(t_pl(stub[j])->ack, 1);
		t_pl(stub[j])->arg = i % 120;
		t_pl(stub[j])->req = T_REQ_EXIT;
		t_assert_rc(sw_stub_resume(stub[j]), 0);
	}
	for (j = 0; j < n; j++) {
		assert_exit(sw_stub_wait(stub[j], &ev), &ev,
			    (int)((first + j) % 120));
		t_assert(sw_stub_free(stub[j]) == NULL);
	}
}

typedef void (*batch_fn)(struct sw_loop *loop, intptr_t mode,
			 unsigned first, unsigned n);

/* Cycles first .. first + n - 1, in batches; past `deadline` (0: none)
 * stop once at least `min` are made.  Returns the number made. */
static unsigned run_batches(struct sw_loop *loop, intptr_t mode,
			    batch_fn batch, unsigned first, unsigned n,
			    unsigned min, uint64_t deadline)
{
	unsigned i;

	for (i = 0; i < n; i += BATCH) {
		if (deadline && i >= min && t_now_ns() >= deadline)
			break;
		batch(loop, mode, first + i, n - i < BATCH ? n - i : BATCH);
	}
	return i < n ? i : n;
}

static void run_cycles(intptr_t mode, batch_fn batch, const char *what)
{
	const struct plan *pl = T_PMODE(mode) == T_EXEC ? &exec_plan : &fn_plan;
	struct sw_loop *loop = t_loop();
	struct usage before, after;
	uint64_t t0, ns;
	unsigned made;

	run_batches(loop, mode, batch, 0, pl->warmup, 0, 0);
	usage_take(&before);
	usage_note("after the warm-up:", &before);
	t0 = t_now_ns();
	made = run_batches(loop, mode, batch, pl->warmup, pl->cycles,
			   pl->min_cycles, t0 + pl->budget_ns);
	ns = t_now_ns() - t0;
	usage_take(&after);
	usage_note("after the cycles:", &after);
	t_note("%u %s cycles (%s mode) in %.2f s, %.0f us each; VmRSS %+ld "
	       "kB, mappings %+d, heap in use %+lld B", made, what,
	       t_mode_name(mode), (double)ns / 1e9, (double)ns / 1e3 / made,
	       after.rss_kb - before.rss_kb, after.maps - before.maps,
	       (long long)after.heap - (long long)before.heap);
	if (made < pl->cycles)
		t_note("the %.0f s budget ran out after %u of %u cycles (a "
		       "loaded machine)", (double)pl->budget_ns / 1e9, made,
		       pl->cycles);
	t_assert_eq(sw_loop_count_stubs(loop), 0);
	t_assert_eq(sw_loop_count_in_flight(loop), 0);
	t_assert_eq(after.fds, before.fds);
	t_assert_eq(after.children, before.children);
	t_assert_eq(after.zombies, before.zombies);
	if (T_ASAN || T_TSAN) {
		t_note("a sanitizer's allocator: mappings, RSS and the heap not "
		       "asserted (quarantine, allocator regions)");
	} else {
		t_assert_eq(after.maps, before.maps);
		t_assert_eq(after.heap, before.heap);
		t_assert_msg(after.rss_kb - before.rss_kb < RSS_GROWTH_MAX_KB,
			     "VmRSS grew by %ld kB over %u cycles (bound %ld "
			     "kB)", after.rss_kb - before.rss_kb, made,
			     RSS_GROWTH_MAX_KB);
	}
	t_assert(sw_loop_free(loop) == NULL);
	/* and once the loop is gone, no child at all */
	t_assert(t_no_children());
}

static void case_spawn_kill(intptr_t mode)
{
	run_cycles(mode, batch_kill, "spawn/kill");
}

static void case_spawn_exit(intptr_t mode)
{
	run_cycles(mode, batch_exit, "spawn/exit");
}

static const struct t_case cases[] = {
	/* the budgets above, plus the warm-up and the minimum of cycles on a
	 * loaded machine (an ASan build's spawn costs several times more) */
	{ "spawn_kill/fn", case_spawn_kill, T_FN, 120 },
	{ "spawn_exit/fn", case_spawn_exit, T_FN, 120 },
	{ "spawn_kill/exec", case_spawn_kill, T_EXEC, 120 },
	{ "spawn_exit/exec", case_spawn_exit, T_EXEC, 120 },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, T_NCASES(cases));
}
