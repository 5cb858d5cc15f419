// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Fuzz target: the one check of the page header that the library makes,
 * sw_stub_map() in include/stubwatch.h: an exec'd stub maps its page from
 * SW_EXEC_PAGE_FD and checks magic and abi.  The input is the whole file
 * behind the fd (a memfd of the input's size).
 *
 * The verdict is defined for every input: 0 and the page mapped (all of
 * the file, its bytes as written) when the file holds at least the 64-byte
 * header with SW_PAGE_MAGIC and SW_PAGE_ABI; -EINVAL otherwise.  Nothing
 * may be left mapped when it fails.
 *
 * fuzz/corpus/map/ keeps two inputs that once found a leak here: a header
 * with a wrong magic, or abi, was rejected and its mapping left behind.
 *
 * The monitor side never reads magic, abi, size or report_fd back (see
 * fuzz_page.c for what it does read).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stubwatch.h"

#define MEMFD_NAME "stubwatch-fuzz-map"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static __attribute__((noreturn, format(printf, 1, 2))) void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_map: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

/* Unmap every mapping of our memfd that is still there; how many. */
static int unmap_ours(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0;

	if (!f)
		fail("/proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (!strstr(line, "/memfd:" MEMFD_NAME) ||
		    sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		munmap((void *)lo, hi - lo);
		n++;
	}
	fclose(f);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sw_page hdr;
	struct sw_page *page = NULL;
	bool valid;
	int fd, r, left;

	fd = memfd_create(MEMFD_NAME, MFD_CLOEXEC);
	if (fd < 0)
		fail("memfd_create: %s", strerror(errno));
	if (size && write(fd, data, size) != (ssize_t)size)
		fail("write: %s", strerror(errno));

	memset(&hdr, 0, sizeof(hdr));
	memcpy(&hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
	valid = size >= SW_PAGE_PAYLOAD && hdr.magic == SW_PAGE_MAGIC &&
		hdr.abi == SW_PAGE_ABI;

	r = sw_stub_map(fd, &page);
	close(fd);
	if (valid) {
		if (r != 0 || !page)
			fail("a valid header of %zu bytes: %d", size, r);
		if (memcmp(page, data, size) != 0)
			fail("the page does not hold the file's bytes");
		if (munmap(page, size) != 0)
			fail("munmap: %s", strerror(errno));
	} else if (r != -EINVAL) {
		fail("%zu bytes, magic %#x abi %u: %d, not -EINVAL", size,
		     hdr.magic, hdr.abi, r);
	} else if (page) {
		fail("-EINVAL, and ret_page set");
	}
	left = unmap_ours();
	if (left)
		fail("%d mapping(s) of the page left after %d", left, r);
	return 0;
}
