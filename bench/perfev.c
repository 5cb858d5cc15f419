/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kernel tracepoints through perf_event_open(2), read by the bench itself:
 *
 *   - raw_syscalls:sys_enter counted per task, enabled only around the
 *     measured round trips, so "syscalls per round trip" is measured on the
 *     monitor thread and on the stub process separately, not derived;
 *   - signal:signal_generate sampled on a monitor thread with
 *     CLOCK_MONOTONIC timestamps: the moment the watchdog's SIGKILL is sent.
 *
 * Both need tracefs (perf mounts it on first use) and root or
 * perf_event_paranoid <= -1 for tracepoints.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static const char *const tracefs_dirs[] = {
	"/sys/kernel/tracing/events",
	"/sys/kernel/debug/tracing/events",
};

static FILE *tp_file(const char *event, const char *file)
{
	char path[256];
	FILE *f;

	for (size_t i = 0; i < sizeof(tracefs_dirs) / sizeof(*tracefs_dirs);
	     i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", tracefs_dirs[i], event,
			 file);
		f = fopen(path, "re");
		if (f)
			return f;
	}
	return NULL;
}

static int tp_id(const char *event)
{
	FILE *f = tp_file(event, "id");
	int id = -1;

	if (!f)
		return -ENOENT;
	if (fscanf(f, "%d", &id) != 1)
		id = -EINVAL;
	fclose(f);
	return id;
}

/* Offset of field `name` in the tracepoint's raw record, or -1. */
static int tp_field(const char *event, const char *name)
{
	FILE *f = tp_file(event, "format");
	char line[512];
	int off = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *fld = strstr(line, "field:"), *semi, *p;
		size_t len = strlen(name);

		if (!fld || !(semi = strchr(fld, ';')))
			continue;
		p = semi;
		while (p > fld && p[-1] != ' ' && p[-1] != '\t')
			p--;
		if ((size_t)(semi - p) != len || strncmp(p, name, len) != 0)
			continue;
		p = strstr(semi, "offset:");
		if (p)
			off = atoi(p + 7);
		break;
	}
	fclose(f);
	return off;
}

static int perf_open(struct perf_event_attr *a, pid_t tid)
{
	long fd = syscall(SYS_perf_event_open, a, tid, -1, -1,
			  PERF_FLAG_FD_CLOEXEC);

	return fd < 0 ? -errno : (int)fd;
}

/* ---- syscall counters -------------------------------------------------- */

static int sc_id = 0; /* 0: not looked up yet */

int sc_available(const char **why)
{
	struct sc_counter c;
	int r;

	if (!sc_id)
		sc_id = tp_id("raw_syscalls/sys_enter");
	if (sc_id < 0) {
		*why = "tracefs has no raw_syscalls/sys_enter (not mounted? "
		       "`perf stat -e raw_syscalls:sys_enter true` mounts it)";
		return 0;
	}
	r = sc_open(&c, 0);
	if (r < 0) {
		*why = r == -EACCES || r == -EPERM
			       ? "perf_event_open refused (needs root or "
				 "kernel.perf_event_paranoid <= -1)"
			       : "perf_event_open failed";
		return 0;
	}
	sc_close(&c);
	*why = NULL;
	return 1;
}

int sc_open(struct sc_counter *c, pid_t tid)
{
	struct perf_event_attr a;
	int fd;

	if (!sc_id)
		sc_id = tp_id("raw_syscalls/sys_enter");
	if (sc_id < 0)
		return sc_id;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_TRACEPOINT;
	a.config = (uint64_t)sc_id;
	a.disabled = 1;
	fd = perf_open(&a, tid);
	c->fd = fd;
	return fd < 0 ? fd : 0;
}

int sc_open_sw(struct sc_counter *c, pid_t tid, uint64_t config)
{
	struct perf_event_attr a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = config;
	a.disabled = 1;
	fd = perf_open(&a, tid);
	c->fd = fd;
	return fd < 0 ? fd : 0;
}

void sc_close(struct sc_counter *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int sc_enable(struct sc_counter *c)
{
	if (ioctl(c->fd, PERF_EVENT_IOC_RESET, 0) < 0 ||
	    ioctl(c->fd, PERF_EVENT_IOC_ENABLE, 0) < 0)
		return -errno;
	return 0;
}

int sc_disable(struct sc_counter *c)
{
	return ioctl(c->fd, PERF_EVENT_IOC_DISABLE, 0) < 0 ? -errno : 0;
}

int64_t sc_read(struct sc_counter *c)
{
	uint64_t v;

	if (read(c->fd, &v, sizeof(v)) != sizeof(v))
		return -EIO;
	return (int64_t)v;
}

/* ---- the kill clock ---------------------------------------------------- */

#define KC_DATA_PAGES 16

struct kill_clock {
	int fd;
	void *base;
	size_t page;
	size_t data_size;
	int off_sig;
	int off_pid;
};

int kill_clock_open(struct kill_clock **ret, pid_t tid)
{
	struct perf_event_attr a;
	struct kill_clock *kc;
	int id, r;

	id = tp_id("signal/signal_generate");
	if (id < 0)
		return id;
	kc = calloc(1, sizeof(*kc));
	if (!kc)
		return -ENOMEM;
	kc->off_sig = tp_field("signal/signal_generate", "sig");
	kc->off_pid = tp_field("signal/signal_generate", "pid");
	if (kc->off_sig < 0 || kc->off_pid < 0) {
		free(kc);
		return -EINVAL;
	}
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_TRACEPOINT;
	a.config = (uint64_t)id;
	a.sample_period = 1;
	a.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_RAW;
	a.use_clockid = 1;
	a.clockid = CLOCK_MONOTONIC;
	a.wakeup_events = 1;
	kc->fd = perf_open(&a, tid);
	if (kc->fd < 0) {
		r = kc->fd;
		free(kc);
		return r;
	}
	kc->page = (size_t)sysconf(_SC_PAGESIZE);
	kc->data_size = KC_DATA_PAGES * kc->page;
	kc->base = mmap(NULL, kc->page + kc->data_size, PROT_READ | PROT_WRITE,
			MAP_SHARED, kc->fd, 0);
	if (kc->base == MAP_FAILED) {
		r = -errno;
		close(kc->fd);
		free(kc);
		return r;
	}
	*ret = kc;
	return 0;
}

static void ring_copy(const struct kill_clock *kc, uint64_t pos, void *dst,
		      size_t len)
{
	const unsigned char *data = (const unsigned char *)kc->base + kc->page;
	unsigned char *d = dst;

	for (size_t i = 0; i < len; i++)
		d[i] = data[(pos + i) % kc->data_size];
}

uint64_t kill_clock_take(struct kill_clock *kc, pid_t target)
{
	struct perf_event_mmap_page *mp = kc->base;
	uint64_t head, tail, found = 0;

	head = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE);
	tail = mp->data_tail;
	while (tail < head) {
		struct perf_event_header h;

		ring_copy(kc, tail, &h, sizeof(h));
		if (h.size < sizeof(h))
			break;
		if (h.type == PERF_RECORD_SAMPLE &&
		    h.size >= sizeof(h) + 8 + 4) {
			unsigned char rec[512];
			size_t len = h.size - sizeof(h);
			uint64_t t;
			uint32_t raw_size;
			int sig, pid;

			if (len > sizeof(rec))
				len = sizeof(rec);
			ring_copy(kc, tail + sizeof(h), rec, len);
			memcpy(&t, rec, 8);
			memcpy(&raw_size, rec + 8, 4);
			if ((size_t)kc->off_pid + 4 <= raw_size &&
			    12 + (size_t)kc->off_pid + 4 <= len) {
				memcpy(&sig, rec + 12 + kc->off_sig, 4);
				memcpy(&pid, rec + 12 + kc->off_pid, 4);
				if (sig == 9 && pid == target)
					found = t;
			}
		}
		tail += h.size;
	}
	__atomic_store_n(&mp->data_tail, tail, __ATOMIC_RELEASE);
	return found;
}

void kill_clock_close(struct kill_clock *kc)
{
	if (!kc)
		return;
	munmap(kc->base, kc->page + kc->data_size);
	close(kc->fd);
	free(kc);
}
