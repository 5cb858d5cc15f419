#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The examples (examples/), one case each: in every host loop a stub
# reports, goes silent and is killed inside the window stubwatch.h
# promises while the host loop keeps running; each program checks that
# itself and exits 0 (pass), 1 (fail) or 77 (skip, its output says why).
# An example configure left out, its library missing, is a skip with the
# reason, never a silent pass.  Run from the top build directory (make
# check); names on the command line run only those.
set -u

dir=${EXAMPLES_DIR:-./examples}
all="minimal-monitor stub-binary seccomp-notify libev glib sd-event libuv"
names=${*:-$all}

why_missing() {
	case $1 in
	libev) echo "configure found no libev (libev-dev): no libev glue" ;;
	glib) echo "configure found no glib-2.0 (libglib2.0-dev)" ;;
	sd-event) echo "configure found no libsystemd (libsystemd-dev)" ;;
	libuv) echo "configure found no libuv (libuv1-dev)" ;;
	*) echo "" ;;
	esac
}

# Timing is checked, so each example runs under the suite's CPU lock,
# shared, as every case of the C harnesses does (test/t_common.h): a
# case that hogs a CPU takes it exclusive and runs alone.  The gate, held
# only on the way in, keeps shared takers from overtaking it.
lock_cpu() {
	[ -n "${T_CPU_LOCK:-}" ] && command -v flock > /dev/null || return 0
	exec 8>> "$T_CPU_LOCK" 9>> "$T_CPU_LOCK.gate"
	flock -x 9
	flock -s 8
	exec 9>&-
}
unlock_cpu() {
	exec 8>&-
}

n=0
fails=0
echo "1..$(echo $names | wc -w)"
for ex in $names; do
	n=$((n + 1))
	if [ ! -x "$dir/$ex" ]; then
		why=$(why_missing "$ex")
		if [ -n "$why" ]; then
			echo "ok $n - $ex # SKIP $why"
		else
			echo "not ok $n - $ex # $dir/$ex not built"
			fails=$((fails + 1))
		fi
		continue
	fi
	lock_cpu
	out=$(timeout 60 "$dir/$ex" 2>&1 8>&-)
	rc=$?
	unlock_cpu
	echo "$out" | sed 's/^/# /'
	case $rc in
	0) echo "ok $n - $ex" ;;
	77) echo "ok $n - $ex # SKIP $(echo "$out" | tail -n 1)" ;;
	*)
		echo "not ok $n - $ex # exit $rc"
		fails=$((fails + 1))
		;;
	esac
done
[ $fails -eq 0 ]
