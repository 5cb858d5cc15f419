#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Print the automake test harness's totals as one line:
#   N passed, N failed, N skipped
log=${1:-test-suite.log}
if [ ! -f "$log" ]; then
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
get() { sed -n "s/^# $1: *//p" "$log" | head -n 1; }
pass=$(get PASS); fail=$(get FAIL); err=$(get ERROR); xpass=$(get XPASS)
skip=$(get SKIP)
echo "${pass:-0} passed, $(( ${fail:-0} + ${err:-0} + ${xpass:-0} )) failed, ${skip:-0} skipped"
