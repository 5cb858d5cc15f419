// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The model's monitor side: spawn a stub and give it its seccomp filter,
 * then read, validate and serve its reports.  The page is shared with a
 * process that may be hostile, so every report is copied out once and only
 * the copy is looked at (no double fetch), and every field used is checked.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/audit.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "priv.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

uint64_t swu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool swu_supported(void)
{
#if defined(__x86_64__)
	return true;
#else
	return false;
#endif
}

static const char *const prog_names[SWU_PROG__MAX] = {
	[SWU_PROG_CHURN] = "churn", [SWU_PROG_CPU] = "cpu",
	[SWU_PROG_MIXED] = "mixed", [SWU_PROG_LIAR] = "liar",
	[SWU_PROG_PROBE] = "probe", [SWU_PROG_SEGV] = "segv",
};

static const char *const hijack_names[SWU_HIJACK__MAX] = {
	[SWU_HIJACK_NONE] = "none",
	[SWU_HIJACK_SPIN] = "sigalrm-spin",
	[SWU_HIJACK_SLEEP] = "sigalrm-sleep",
	[SWU_HIJACK_FLOOD] = "flood",
};

const char *swu_prog_name(enum swu_prog_kind kind)
{
	if ((unsigned)kind >= SWU_PROG__MAX || !prog_names[kind])
		return "?";
	return prog_names[kind];
}

const char *swu_hijack_name(enum swu_hijack h)
{
	return (unsigned)h < SWU_HIJACK__MAX ? hijack_names[h] : "?";
}

int swu_hijack_parse(const char *s, enum swu_hijack *ret)
{
	if (!s || !ret)
		return -EINVAL;
	for (unsigned i = 0; i < SWU_HIJACK__MAX; i++) {
		if (strcmp(s, hijack_names[i]) == 0) {
			*ret = (enum swu_hijack)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- the filter ---------------------------------------------------------- */

/*
 * Trap everything but the report path: futex (report wait, and what the
 * stub's user code may use of it), write to the stub's own eventfd and
 * nothing else, rt_sigreturn, exit and exit_group.  Built per stub, since
 * the eventfd's number is the monitor's.  libseccomp keeps process-wide
 * state (its API level probe), so builds are serialised.
 */
static pthread_mutex_t filter_lock = PTHREAD_MUTEX_INITIALIZER;

static int filter_build(int report_fd, struct sock_filter *out,
			uint32_t *ret_len)
{
	static const int allow[] = { SCMP_SYS(futex), SCMP_SYS(rt_sigreturn),
				     SCMP_SYS(exit), SCMP_SYS(exit_group) };
	scmp_filter_ctx ctx;
	int r, mfd = -1;
	off_t size;

	pthread_mutex_lock(&filter_lock);
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		r = -ENOMEM;
		goto out;
	}
	/* Another ABI (int 0x80, x32) is no way around the filter. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
			     SCMP_ACT_KILL_PROCESS) < 0)
		seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL);
	for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]); i++) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allow[i], 0);
		if (r < 0)
			goto out;
	}
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
			     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)report_fd));
	if (r < 0)
		goto out;

	mfd = memfd_create("swu-bpf", MFD_CLOEXEC);
	if (mfd < 0) {
		r = -errno;
		goto out;
	}
	r = seccomp_export_bpf(ctx, mfd);
	if (r < 0)
		goto out;
	size = lseek(mfd, 0, SEEK_CUR);
	if (size <= 0 || size % sizeof(*out) ||
	    (size_t)size > SWU_FILTER_MAX * sizeof(*out)) {
		r = -E2BIG;
		goto out;
	}
	if (pread(mfd, out, (size_t)size, 0) != size) {
		r = -EIO;
		goto out;
	}
	*ret_len = (uint32_t)(size / (off_t)sizeof(*out));
	r = 0;
out:
	if (mfd >= 0)
		close(mfd);
	seccomp_release(ctx);
	pthread_mutex_unlock(&filter_lock);
	return r;
}

/* ---- spawn --------------------------------------------------------------- */

static int prog_valid(const struct swu_prog *p)
{
	if (p->kind < SWU_PROG_CHURN || p->kind >= SWU_PROG__MAX)
		return 0;
	if ((unsigned)p->hijack >= SWU_HIJACK__MAX)
		return 0;
	if (p->kind == SWU_PROG_LIAR &&
	    (p->lie < SWU_LIE_SIGNO || p->lie > SWU_LIE_STATE))
		return 0;
	return 1;
}

/* Snapshot the report: read once, use the copy only. */
static void snapshot(const struct swu_stub *s, struct swu_report *r)
{
	const struct swu_shared *sh = sw_page_payload(s->page);

	memcpy(r, (const void *)&sh->report, sizeof(*r));
}

static int page_in_kern(const struct swu_stub *s)
{
	return __atomic_load_n(&s->page->state, __ATOMIC_ACQUIRE) ==
	       SW_STATE_IN_KERN;
}

/* Wait out the setup report, ignoring preemption ticks. */
static int wait_hello(struct swu_stub *s, int report_fd,
		      struct sw_kill_info *why)
{
	struct swu_shared *sh = sw_page_payload(s->page);
	struct swu_report r;
	struct sw_event ev;
	uint32_t len = 0;
	int t;

	do
		t = sw_stub_wait(s->sw, &ev);
	while (t == SW_EV_TICK);
	if (t < 0)
		return t;
	if (t == SW_EV_KILL && ev.kill.reason == SW_KILL_STALL) {
		if (why)
			*why = ev.kill;
		return -ETIMEDOUT; /* silent past N*T, starvation credit and all */
	}
	if (t != SW_EV_REPORT || !page_in_kern(s))
		return -EPROTO;
	snapshot(s, &r);
	if (r.seq != 1 || r.signo != SWU_SIG_HELLO)
		return -EPROTO;
	s->seq = 1;
	s->reports = 1;

	t = filter_build(report_fd, sh->reply.filter, &len);
	if (t < 0)
		return t;
	sh->reply.filter_len = len;
	sh->reply.action = SWU_ACT_FILTER;
	return 0;
}

int swu_stub_spawn(struct sw_loop *loop, const struct swu_prog *prog,
		   unsigned spawn_flags, struct swu_stub **ret_stub)
{
	return swu__stub_spawn(loop, prog, spawn_flags, ret_stub, NULL);
}

int swu__stub_spawn(struct sw_loop *loop, const struct swu_prog *prog,
		    unsigned spawn_flags, struct swu_stub **ret_stub,
		    struct sw_kill_info *why)
{
	struct sw_spawn_opts o = { .size = sizeof(o) };
	struct swu_stub *s;
	int r, report_fd;

	if (!loop || !prog || !ret_stub || !prog_valid(prog))
		return -EINVAL;
	if (!swu_supported())
		return -ENOSYS;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->prog = *prog;
	s->next_addr = SWU_FAKE_BASE;

	o.shm_size = SWU_SHM_SIZE;
	o.flags = spawn_flags | SW_SPAWN_PDEATHSIG;
	o.fn = swu__stub_main;
	o.arg = &s->prog; /* the child reads its own copy */
	r = sw_stub_spawn(loop, &o, &s->sw);
	if (r < 0) {
		free(s);
		return r;
	}
	s->page = sw_stub_page(s->sw);
	s->pid = sw_stub_pid(s->sw);
	/* The monitor wrote it before the clone, and only our own setup code
	 * runs in the child until the filter is loaded, so this read-back is
	 * still the monitor's value (the core has no accessor for it). */
	report_fd = s->page->report_fd;

	r = report_fd >= 0 && report_fd < (1 << 20) ? 0 : -EPROTO;
	if (r == 0)
		r = wait_hello(s, report_fd, why);
	if (r < 0) {
		s->sw = sw_stub_free(s->sw);
		free(s);
		return r == -ESRCH ? -EPROTO : r;
	}
	*ret_stub = s;
	return 0;
}

struct swu_stub *swu_stub_free(struct swu_stub *s)
{
	if (!s)
		return NULL;
	if (sw_stub_free(s->sw))
		return s;
	free(s);
	return NULL;
}

struct sw_stub *swu_stub_sw(struct swu_stub *s)
{
	return s ? s->sw : NULL;
}

pid_t swu_stub_pid(const struct swu_stub *s)
{
	return s ? s->pid : -EINVAL;
}

const struct swu_prog *swu_stub_prog(const struct swu_stub *s)
{
	return s ? &s->prog : NULL;
}

uint64_t swu_stub_reports(const struct swu_stub *s)
{
	return s ? s->reports : 0;
}

int swu_stub_preempt(struct swu_stub *s)
{
	int fd;

	if (!s)
		return -EINVAL;
	fd = sw_stub_pidfd(s->sw);
	if (fd < 0)
		return fd;
	if (syscall(SYS_pidfd_send_signal, fd, SIGALRM, NULL, 0) < 0)
		return -errno;
	return 0;
}

/* ---- the model's "kernel" ------------------------------------------------ */

static long serve_mmap(struct swu_stub *s, const uint64_t *a)
{
	uint64_t len = (a[1] + 4095) & ~4095ull;

	if (a[1] == 0 || a[1] > SWU_MMAP_MAX)
		return -EINVAL;
	if (!(a[3] & MAP_ANONYMOUS) || (a[3] & MAP_FIXED))
		return -EINVAL; /* the model maps nothing real */
	if (s->nvma == SWU_VMA_MAX)
		return -ENOMEM;
	if (s->next_addr + len > SWU_FAKE_TOP)
		s->next_addr = SWU_FAKE_BASE;
	s->vma[s->nvma].addr = s->next_addr;
	s->vma[s->nvma].len = len;
	s->nvma++;
	s->next_addr += len + 4096;
	return (long)(s->next_addr - len - 4096);
}

static long serve_munmap(struct swu_stub *s, const uint64_t *a)
{
	uint64_t len = (a[1] + 4095) & ~4095ull;

	for (unsigned i = 0; i < s->nvma; i++) {
		if (s->vma[i].addr == a[0] && s->vma[i].len == len) {
			s->vma[i] = s->vma[--s->nvma];
			return 0;
		}
	}
	return -EINVAL;
}

static long serve_syscall(struct swu_stub *s, const struct swu_report *r)
{
	switch (r->nr) {
	case SYS_mmap:
		return serve_mmap(s, r->args);
	case SYS_munmap:
		return serve_munmap(s, r->args);
	case SYS_getpid:
		return s->pid;
	case SYS_sched_yield:
		return 0;
	default:
		return -ENOSYS;
	}
}

static int report_valid(const struct swu_stub *s, const struct swu_report *r)
{
	if (r->seq != s->seq + 1)
		return 0;
	switch (r->signo) {
	case SIGSYS:
		return r->si_code == SYS_SECCOMP && r->arch == AUDIT_ARCH_X86_64 &&
		       r->nr >= 0 && r->nr < SWU_NR_LIMIT;
	case SIGALRM:
	case SIGSEGV:
		return 1;
	default:
		return 0;
	}
}

int swu_stub_serve(struct swu_stub *s, struct swu_served *ret_served)
{
	struct swu_shared *sh;
	struct swu_report r;
	struct swu_served out = { .nr = -1 };
	int verdict, e;

	if (!s)
		return -EINVAL;
	if (!page_in_kern(s))
		return -EALREADY;
	sh = sw_page_payload(s->page);
	snapshot(s, &r);
	if (!report_valid(s, &r)) {
		e = sw_stub_kill(s->sw, SW_KILL_PROTOCOL);
		if (e < 0)
			return e;
		out.signo = r.signo;
		if (ret_served)
			*ret_served = out;
		return SWU_VIOLATION;
	}
	s->seq = r.seq;
	s->reports++;
	out.signo = r.signo;

	switch (r.signo) {
	case SIGSYS:
		out.nr = (long)r.nr;
		out.ret = serve_syscall(s, &r);
		sh->reply.ret = out.ret;
		sh->reply.action = SWU_ACT_RETURN;
		verdict = SWU_SERVED;
		break;
	case SIGALRM:
		sh->reply.action = SWU_ACT_CONTINUE;
		verdict = SWU_PREEMPTED;
		break;
	default: /* SIGSEGV: the model's user processes do not handle it */
		sh->reply.exit_status = 128 + SIGSEGV;
		sh->reply.action = SWU_ACT_EXIT;
		verdict = SWU_FAULTED;
		break;
	}
	if (ret_served)
		*ret_served = out;
	return verdict;
}
