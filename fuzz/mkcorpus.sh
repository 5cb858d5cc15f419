#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Write the seed corpus, fuzz/corpus/TARGET/NAME, from the hex strings below
# (the input formats are described at the top of each fuzz_TARGET.c).  The
# output is deterministic; run it after editing a seed and commit the files.
# Files in fuzz/corpus/ that no seed line names are left alone.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

# seed TARGET NAME HEX...: the bytes, whitespace ignored.
seed() {
	dir=$here/corpus/$1
	name=$2
	shift 2
	mkdir -p "$dir"
	hex=$(printf '%s' "$*" | tr -d ' \t\n')
	esc=
	while [ -n "$hex" ]; do
		rest=${hex#??}
		esc="$esc\\$(printf '%03o' "0x${hex%"$rest"}")"
		hex=$rest
	done
	# shellcheck disable=SC2059
	printf "$esc" >"$dir/$name"
}

# A page header as sw_stub_spawn() writes it: magic, abi, size 4096,
# state IN_CHILD, report_fd 4, monitor SLEEPING, stub_cpu -1, reserved.
hdr="53745377 01000000 00100000 02000000 04000000 01000000 ffffffff
     000000000000000000000000000000000000000000000000000000000000000000000000"

# ---- watchdog: N, k, then op bytes (stub << 4 | op) ---------------------------
# N = 1, k = 2: the first read stamps the four stubs, the fourth kills them
seed watchdog stall          00 00  0e08 0e08 0e08 0e08  08 18 0b 0e08
# a report before the deadline, a resume, then silence to the kill
seed watchdog report-resume  01 02  0e08 04 14 0e08 03 13 0e08 0e08 0e08 0e08 0e08 0e08 0e08
# a frozen monitor: one read after 512 periods counts one tick
seed watchdog frozen         00 02  0e03 01 00100000 02 0e08 0100100000 02 0e08 0e08
# starvation credit at the kill, and outside it
seed watchdog credit         01 00  0e08 0a04 1aff ffffffff 0e08 0e08 0d02 0e08 0d10 0e08 0e08
# every event number in every state, and unknown ones
seed watchdog raw            02 03  0c00 0c01 0c02 0c03 0c04 0c05 0c06 0c07 0c08 0c09 \
                                    1c07 1c06 2c05 2c03 3cff 0e08 0c04
# the largest N and k: counts that do not overflow
seed watchdog large          f0 f0  0e08 0f ffff 0f ffff 01 ffffffff 02 0aff ffffffff
# a late first read, answers, deaths and spawns
seed watchdog answer-death   03 05  00 05 0e10 09 19 29 03 0e08 39 08 18 28 38 0b 1b 0e10 0e10

# ---- page: configuration byte, then op bytes (op % 20) -------------------------
# N = 1, k = 2 unless said
seed page report             00  03 09 0d 0b 03 09 0d 0c 03 0d
seed page bad-word           00  01 01010000 04 09
seed page bad-word-idle      00  03 09 0d 00 03 04 09
seed page stall              00  0e00 09 0e01 09 0e00 09
seed page report-at-deadline 00  0e00 09 0000 0e01 09 0e00 09
# eight eventfd writes without a report, each seen: muted; a report made
# while muted is found at the next timer read
seed page flood-mute         00  0409 0409 0409 0409 0409 0409 0409 0409 \
                                 051f 03 09 0e00 09 0d
# the stub clears O_NONBLOCK, floods to a mute, drains: the unmute must
# not block on the empty counter
seed page blocking-eventfd   00  07 0409 0409 0409 0409 0409 0409 0409 0409 \
                                 06 0e00 09 03 09 0d 07
seed page saturate           00  08 03 09 0d 0b 08 06 03 09
seed page fd-answer          20  11 09 0d 12 10 03 09 0d 11 0b 09
seed page callback-prepare   c0  0a 03 09 0a 03 0a 09 0e00 0a
seed page run                00  03 09 0d 0c 03 0d 0c 0e00 0d
seed page kill               00  0f00 09 0d
seed page kill-protocol      00  0002 0f01 09
seed page adaptive-cpu       10  02 18 01000000 03 09 0d 0c 0d 02 18 ffffffff 0c
seed page scribble           04  02 00 ffffffff 02 08 00000000 02 14 00000000 \
                                 02 10 ffffffff 03 0e00 09 0e07 09 0e07 09
seed page noise-then-report  00  04 09 04 09 03 09 0d

# ---- map: the file behind the page's fd -----------------------------------------
seed map valid               "$hdr"
seed map valid-payload       "$hdr" 6869207374756221
seed map short               53745377 01000000 00100000
seed map bad-abi             53745377 02000000 00100000 02000000 04000000 \
                             01000000 ffffffff 000000000000000000000000 \
                             000000000000000000000000000000000000000000000000
