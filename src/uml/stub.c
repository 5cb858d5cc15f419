// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The model stub: everything here runs in the raw clone3() child made by
 * sw_stub_spawn() in fn mode.  That child skipped glibc's fork handlers and
 * may share a copy of locks another monitor thread held, so this file calls
 * no malloc, no stdio, nothing that takes a lock: raw system calls, plain
 * memory, clock_gettime() (the vDSO; async-signal-safe).
 *
 * Like UML's stub (arch/um/kernel/skas/stub.c, stub_exe.c), the child:
 *   - drops inherited state: signal handlers, the host's shared memory;
 *   - puts a sigaltstack in the shared page and installs one handler for
 *     SIGSYS, SIGALRM and SIGSEGV, SA_SIGINFO | SA_ONSTACK | SA_NODEFER,
 *     with every signal masked while it runs;
 *   - reports "hello" and takes its seccomp filter from the monitor's reply;
 *   - on its first resume, unmasks signals, loads the filter (every system
 *     call traps, except futex, write to its own eventfd, rt_sigreturn,
 *     exit, exit_group) and runs the user code.
 * The handler writes the signal and the register state into the page,
 * reports, waits for the monitor, applies its answer to the saved registers
 * (RAX for a served system call) and returns through rt_sigreturn.
 *
 * Sanitizers: every function here is SWU_NOSAN, and no memset, memcpy,
 * memchr or memmove is called (the runtimes intercept them).  Under the
 * filter nearly every system call traps, and in the handler, with every
 * signal masked, a trapped call is a forced, fatal SIGSYS.  Instrumented,
 * this code made such calls: ASan puts __asan_handle_no_return() before
 * each noreturn call (die(), hijack()), which calls sigaltstack(); when
 * that came back -ENOSYS, ASan's CHECK failure went on with gettid(),
 * write(2) and mmap(), and from the handler the stub died of SIGSYS.
 * (Likewise a fake stack for use-after-return is mmap()ed, a UBSan report
 * writes.)  Left: clock_gettime()'s interceptor, which makes no system
 * call (the vDSO), and the stub side of stubwatch.h: GCC does not inline
 * it into a SWU_NOSAN caller, so its out-of-line copy keeps checks that
 * enter a runtime only on a bad access to the page.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>

#include "priv.h"

_Static_assert(SW_PAGE_PAYLOAD + sizeof(struct swu_shared) <= SWU_ALTSTACK_OFF,
	       "the report and reply overlap the signal stack");

#if defined(__x86_64__)

/* Not instrumented by ASan, TSan or UBSan: see above.  The same as the
 * child side of libstubwatch (src/child.c). */
#define SWU_NOSAN __attribute__((no_sanitize("address", "thread", "undefined")))

/* ---- raw system calls ---------------------------------------------------- */

static inline SWU_NOSAN long sys6(long nr, long a, long b, long c, long d,
				  long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define sys0(n)             sys6((n), 0, 0, 0, 0, 0, 0)
#define sys1(n, a)          sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b)       sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c)    sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) \
	sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

SWU_NOSAN __attribute__((noreturn)) static void die(int status)
{
	for (;;)
		sys1(__NR_exit_group, status);
}

/* memset, memcpy and memchr without libc (nor its interceptors): byte by
 * byte through a volatile pointer, which the compiler cannot turn back
 * into a library call.  Only for setup and the odd report. */
static SWU_NOSAN void bzero_v(void *p, size_t n)
{
	volatile unsigned char *d = p;

	while (n--)
		*d++ = 0;
}

static SWU_NOSAN void copy_v(void *dst, const void *src, size_t n)
{
	volatile unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
}

static SWU_NOSAN char *find_nl(char *p, size_t n)
{
	for (; n; n--, p++)
		if (*(volatile char *)p == '\n')
			return p;
	return NULL;
}

/* rt_sigaction()'s kernel ABI on x86_64, and the restorer it requires. */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};
#define KSA_RESTORER 0x04000000ul

void swu__restorer(void) __attribute__((visibility("hidden")));
__asm__(".text\n"
	".globl swu__restorer\n"
	".hidden swu__restorer\n"
	".type swu__restorer,@function\n"
	"swu__restorer:\n"
	"\tmovl $15, %eax\n" /* __NR_rt_sigreturn */
	"\tsyscall\n"
	"\tud2\n"
	".size swu__restorer, .-swu__restorer\n");

/* ---- the child's own state (its private copy of this memory) ------------- */

static struct {
	struct sw_page *page;
	struct swu_shared *sh;
	int report_fd;
	pid_t pid;
	uint32_t seq;
	struct swu_prog prog;
	uint64_t start_ns;
} child;

static volatile uint64_t sink; /* keeps the computation alive */

static SWU_NOSAN uint64_t now_ns(void)
{
	struct timespec ts;

	/* The vDSO: no system call.  Should it fall back to one, that traps,
	 * the monitor answers -ENOSYS and the hijack timers fire at once. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return UINT64_MAX;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the signal handler -------------------------------------------------- */

static SWU_NOSAN void on_signal(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	struct swu_report *r = &child.sh->report;
	const struct swu_reply *rp = &child.sh->reply;

	r->seq = ++child.seq;
	r->signo = sig;
	r->si_code = si->si_code;
	if (sig == SIGSYS) {
		r->arch = si->si_arch;
		r->nr = si->si_syscall;
		r->args[0] = (uint64_t)g[REG_RDI];
		r->args[1] = (uint64_t)g[REG_RSI];
		r->args[2] = (uint64_t)g[REG_RDX];
		r->args[3] = (uint64_t)g[REG_R10];
		r->args[4] = (uint64_t)g[REG_R8];
		r->args[5] = (uint64_t)g[REG_R9];
	} else {
		r->arch = 0;
		r->nr = -1;
		bzero_v(r->args, sizeof(r->args));
	}
	r->ip = (uint64_t)g[REG_RIP];
	r->sp = (uint64_t)g[REG_RSP];
	r->fault_addr = sig == SIGSEGV ? (uint64_t)(uintptr_t)si->si_addr : 0;

	sw_stub_handshake(child.page);

	switch (rp->action) {
	case SWU_ACT_RETURN:
		g[REG_RAX] = (greg_t)rp->ret;
		break;
	case SWU_ACT_EXIT:
		die(rp->exit_status);
	default:
		break;
	}
	/* returns through swu__restorer: rt_sigreturn restores the user
	 * registers and the user signal mask from the frame */
}

/* ---- setup ------------------------------------------------------------- */

static SWU_NOSAN int parse_hex(const char **p, uintptr_t *ret)
{
	uintptr_t v = 0;
	int n = 0;

	for (;; (*p)++, n++) {
		char c = **p;

		if (c >= '0' && c <= '9')
			v = v << 4 | (uintptr_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uintptr_t)(c - 'a' + 10);
		else
			break;
	}
	*ret = v;
	return n ? 0 : -1;
}

/* One /proc/self/maps line: unmap it if it is a shared mapping other than
 * our own page.  A clone3 child inherits the monitor's MAP_SHARED mappings
 * live.  libstubwatch now keeps other stubs' pages out of the child
 * (MADV_DONTFORK); this also drops any shared memory of the host process,
 * which a hijacked stub could otherwise write. */
static SWU_NOSAN void drop_if_foreign(const char *line, uintptr_t keep)
{
	uintptr_t lo, hi;
	const char *p = line;

	if (parse_hex(&p, &lo) || *p++ != '-' || parse_hex(&p, &hi) ||
	    *p++ != ' ')
		return;
	if (p[0] == '\0' || p[1] == '\0' || p[2] == '\0' || p[3] != 's')
		return;
	if (lo != keep && hi > lo)
		sys2(__NR_munmap, lo, hi - lo);
}

static SWU_NOSAN int drop_foreign_shared(uintptr_t keep)
{
	char buf[8192];
	size_t have = 0;
	long fd, n;

	fd = sys4(__NR_openat, AT_FDCWD, "/proc/self/maps",
		  O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	for (;;) {
		char *nl, *start;

		n = sys3(__NR_read, fd, buf + have, sizeof(buf) - 1 - have);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		start = buf;
		while ((nl = find_nl(start, have - (size_t)(start - buf)))) {
			*nl = '\0';
			drop_if_foreign(start, keep);
			start = nl + 1;
		}
		have -= (size_t)(start - buf);
		if (have == sizeof(buf) - 1)
			have = 0; /* an absurd line: skip it */
		copy_v(buf, start, have); /* forwards: start >= buf */
	}
	sys1(__NR_close, fd);
	return n < 0 ? -1 : 0;
}

static SWU_NOSAN int install_handler(void)
{
	struct ksigaction sa = {
		.handler = (void *)on_signal,
		.flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | KSA_RESTORER,
		.restorer = swu__restorer,
		.mask = ~0ull, /* every signal masked while it runs */
	};
	struct ksigaction dfl = { .handler = SIG_DFL };
	static const int sigs[] = { SIGSYS, SIGALRM, SIGSEGV };
	int sig;

	/* The monitor's handlers mean nothing here. */
	for (sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sys4(__NR_rt_sigaction, sig, &dfl, 0, 8);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sys4(__NR_rt_sigaction, sigs[i], &sa, 0, 8) != 0)
			return -1;
	return 0;
}

/* ---- user code ----------------------------------------------------------- */

static SWU_NOSAN uint64_t spin(uint64_t x, unsigned n)
{
	while (n--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static SWU_NOSAN void landing(void);

/*
 * The attack: rt_sigreturn is on every seccomp stub's allowlist, and it
 * loads the signal mask from a frame on the caller's own stack.  Craft one
 * whose uc_sigmask holds SIGALRM (not SIGSYS or SIGSEGV: with those blocked
 * the next trap is fatal, not a hang) and whose rip/rsp land in landing().
 */
SWU_NOSAN __attribute__((noreturn, noinline)) static void hijack(void)
{
	static ucontext_t frame;
	static uint8_t stack[16384] __attribute__((aligned(64)));
	uint64_t mask = 1ull << (SIGALRM - 1);
	greg_t *g = frame.uc_mcontext.gregs;

	bzero_v(&frame, sizeof(frame));
	g[REG_RIP] = (greg_t)(uintptr_t)landing;
	g[REG_RSP] = (greg_t)(uintptr_t)(stack + sizeof(stack) - 8);
	g[REG_EFL] = 0x202;
	g[REG_CSGSFS] = (greg_t)(0x33ull | 0x2bull << 48); /* cs, ss */
	/* the real sigaltstack, or rt_sigreturn fails the frame */
	frame.uc_stack.ss_sp = (char *)child.page + SWU_ALTSTACK_OFF;
	frame.uc_stack.ss_size = SWU_SHM_SIZE - SWU_ALTSTACK_OFF;
	frame.uc_stack.ss_flags = 0;
	copy_v(&frame.uc_sigmask, &mask, sizeof(mask));
	/* the kernel reads the ucontext at rsp (the return address that
	 * precedes it in a real frame has been popped) */
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "movl $15, %%eax\n\t"
			 "syscall\n\t"
			 "ud2"
			 :
			 : "r"(&frame)
			 : "memory", "rax");
	__builtin_unreachable();
}

/* Where the hijacked stub lands, SIGALRM blocked. */
static SWU_NOSAN void landing(void)
{
	static const uint64_t one = 1;
	static uint32_t word;
	uint64_t x = 88172645463325252ull;

	switch (child.prog.hijack) {
	case SWU_HIJACK_SLEEP:
		for (;;)
			sys4(__NR_futex, &word, FUTEX_WAIT_PRIVATE, 0, 0);
	case SWU_HIJACK_FLOOD:
		for (;;)
			sys3(__NR_write, child.report_fd, &one, sizeof(one));
	default:
		for (;;)
			sink = x = spin(x, 4096);
	}
}

static SWU_NOSAN void maybe_hijack(void)
{
	if (child.prog.hijack == SWU_HIJACK_NONE)
		return;
	if (now_ns() - child.start_ns >= child.prog.hijack_after_ns)
		hijack();
}

/* One mmap/munmap pair, both trapped and served.  Checks the answers: a
 * page-aligned address, then 0; and now and then getpid(). */
static SWU_NOSAN void churn_pair(uint64_t i)
{
	size_t len = (size_t)4096 << (i & 3);
	long a, r;

	a = sys6(__NR_mmap, 0, (long)len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((a < 0 && a > -4096) || (a & 4095) || a == 0)
		die(SWU_EXIT_BADRESULT);
	r = sys2(__NR_munmap, a, len);
	if (r != 0)
		die(SWU_EXIT_BADRESULT);
	if ((i & 63) == 63 && sys0(__NR_getpid) != child.pid)
		die(SWU_EXIT_BADRESULT);
}

static SWU_NOSAN void prog_churn(void)
{
	for (uint64_t i = 0; !child.prog.iterations || i < child.prog.iterations;
	     i++) {
		churn_pair(i);
		maybe_hijack();
	}
}

static SWU_NOSAN void prog_cpu(void)
{
	uint64_t x = 88172645463325252ull ^ (uint64_t)child.pid;

	for (uint64_t i = 0; !child.prog.iterations || i < child.prog.iterations;
	     i++) {
		sink = x = spin(x, 4096);
		maybe_hijack();
	}
}

static SWU_NOSAN void prog_mixed(void)
{
	uint64_t x = 88172645463325252ull ^ (uint64_t)child.pid, t0;

	for (uint64_t i = 0; !child.prog.iterations || i < child.prog.iterations;
	     i++) {
		t0 = now_ns();
		do
			sink = x = spin(x, 1024);
		while (now_ns() - t0 < 200000);
		for (unsigned k = 0; k < 32; k++)
			churn_pair(i * 32 + k);
		maybe_hijack();
	}
}

/* Forge one report, then spin: the monitor must kill it (PROTOCOL). */
static SWU_NOSAN void prog_liar(void)
{
	static const uint64_t one = 1;
	struct swu_report *r = &child.sh->report;
	uint64_t x = 1;

	for (unsigned i = 0; i < 8; i++)
		churn_pair(i);
	bzero_v(r, sizeof(*r));
	r->seq = ++child.seq;
	r->nr = -1;
	switch (child.prog.lie) {
	case SWU_LIE_SIGNO:
		r->signo = 77;
		break;
	case SWU_LIE_NR:
		r->signo = SIGSYS;
		r->si_code = 1; /* SYS_SECCOMP */
		r->arch = AUDIT_ARCH_X86_64;
		r->nr = 100000;
		break;
	case SWU_LIE_SEQ:
		r->signo = SIGALRM;
		r->seq += 5;
		break;
	case SWU_LIE_ARCH:
		r->signo = SIGSYS;
		r->si_code = 1;
		r->arch = AUDIT_ARCH_I386;
		r->nr = 20;
		break;
	case SWU_LIE_STATE:
		__atomic_store_n(&child.page->state, 0xdeadu, __ATOMIC_RELEASE);
		sys3(__NR_write, child.report_fd, &one, sizeof(one));
		for (;;)
			sink = x = spin(x, 4096);
	}
	sw_stub_handshake(child.page);
	for (;;)
		sink = x = spin(x, 4096);
}

/* The filter at work: write(1) and getppid() trap and get the monitor's
 * -ENOSYS; write() to its own eventfd goes to the kernel. */
static SWU_NOSAN void prog_probe(void)
{
	static const uint64_t one = 1;
	long a, b, c;

	a = sys3(__NR_write, 1, "x", 1);
	b = sys3(__NR_write, child.report_fd, &one, sizeof(one));
	c = sys0(__NR_getppid);
	die(a == -ENOSYS && b == 8 && c == -ENOSYS ? SWU_EXIT_PROBE_OK
						   : SWU_EXIT_BADRESULT);
}

static SWU_NOSAN void prog_segv(void)
{
	static volatile uintptr_t unmapped = 16;

	*(volatile int *)unmapped = 1;
	die(SWU_EXIT_BADRESULT); /* the monitor should have ended us */
}

/* ---- the entry point ----------------------------------------------------- */

SWU_NOSAN int swu__stub_main(struct sw_page *page, void *arg)
{
	uint64_t all = ~0ull, none = 0;
	struct sock_filter filter[SWU_FILTER_MAX];
	struct sock_fprog fprog;
	stack_t ss;
	uint32_t len;

	child.page = page;
	child.sh = sw_page_payload(page);
	child.report_fd = page->report_fd;
	child.prog = *(const struct swu_prog *)arg;
	child.pid = (pid_t)sys0(__NR_getpid);

	if (sys4(__NR_rt_sigprocmask, SIG_SETMASK, &all, 0, 8) != 0)
		die(SWU_EXIT_SETUP + 0);
	sys0(__NR_setsid); /* out of the terminal's reach: ^C is the monitor's */
	sys2(__NR_prctl, PR_SET_NAME, "swu-stub");
	if (drop_foreign_shared((uintptr_t)page) != 0)
		die(SWU_EXIT_SETUP + 1);
	ss.ss_sp = (char *)page + SWU_ALTSTACK_OFF;
	ss.ss_size = SWU_SHM_SIZE - SWU_ALTSTACK_OFF;
	ss.ss_flags = 0;
	if (sys2(__NR_sigaltstack, &ss, 0) != 0)
		die(SWU_EXIT_SETUP + 2);
	if (install_handler() != 0)
		die(SWU_EXIT_SETUP + 3);

	/* hello: the monitor answers with our filter */
	bzero_v(&child.sh->report, sizeof(child.sh->report));
	child.seq = 1;
	child.sh->report.seq = 1;
	child.sh->report.signo = SWU_SIG_HELLO;
	child.sh->report.nr = -1;
	sw_stub_handshake(page);
	len = child.sh->reply.filter_len;
	if (child.sh->reply.action != SWU_ACT_FILTER || len == 0 ||
	    len > SWU_FILTER_MAX)
		die(SWU_EXIT_SETUP + 4);
	copy_v(filter, child.sh->reply.filter, len * sizeof(filter[0]));
	fprog.len = (unsigned short)len;
	fprog.filter = filter;

	if (sys2(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1) != 0)
		die(SWU_EXIT_SETUP + 5);
	/* From here a SIGALRM is a normal preemption (the handler is in). */
	if (sys4(__NR_rt_sigprocmask, SIG_SETMASK, &none, 0, 8) != 0)
		die(SWU_EXIT_SETUP + 6);
	if (sys3(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0)
		die(SWU_EXIT_SETUP + 7);

	child.start_ns = now_ns();
	switch (child.prog.kind) {
	case SWU_PROG_CHURN:
		prog_churn();
		break;
	case SWU_PROG_CPU:
		prog_cpu();
		break;
	case SWU_PROG_MIXED:
		prog_mixed();
		break;
	case SWU_PROG_LIAR:
		prog_liar();
		break;
	case SWU_PROG_PROBE:
		prog_probe();
		break;
	case SWU_PROG_SEGV:
		prog_segv();
		break;
	default:
		die(SWU_EXIT_BADRESULT);
	}
	die(SWU_EXIT_OK);
}

#else /* !__x86_64__ */

int swu__stub_main(struct sw_page *page, void *arg)
{
	(void)page;
	(void)arg;
	return 127;
}

#endif
