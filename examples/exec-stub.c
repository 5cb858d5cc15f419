/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stub as a program of its own, exec'd by examples/stub-binary through
 * sw_spawn_opts.path.  It needs no library: the stub side of stubwatch is
 * inline in stubwatch.h.  It finds the page's memfd on SW_EXEC_PAGE_FD
 * (3) and its report eventfd on SW_STUB_REPORT_FD (4, also in the page's
 * report_fd), maps the page with sw_stub_map(), and then speaks the same
 * protocol as the examples' function stubs (example.h).
 *
 *   exec-stub stall   answer three requests, then go silent
 *   exec-stub exit    answer three requests, then exit 0
 *
 * Started by hand, with no page on fd 3, it exits 2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>
#include <unistd.h>

#include <stubwatch.h>

#include "example.h"

int main(int argc, char **argv)
{
	struct sw_page *page = NULL;
	struct example_msg *m;

	if (argc != 2 || sw_stub_map(SW_EXEC_PAGE_FD, &page) < 0)
		return 2;
	m = sw_page_payload(page);
	for (unsigned i = 0; i < EXAMPLE_REPORTS; i++) {
		m->ans = m->req + 1;
		sw_stub_handshake(page); /* report, sleep until resumed */
	}
	if (!strcmp(argv[1], "exit"))
		return 0;
	for (;;)
		pause(); /* silent from here on: the watchdog's business */
}
