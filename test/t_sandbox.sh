#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The threat model, enforced (examples/sandboxed-stub): a stub under a
# seccomp filter that allows only the stub side of the protocol attacks its
# monitor (signal, ptrace, the shared fd's flags, /proc/PID/mem,
# process_vm_writev, fork); each attack is one case, and passes when the
# filter stopped it (the stub died of SIGSYS) and the monitor carried on.
# Run from the top build directory (make check).
set -u

ex=${EXAMPLE:-./examples/sandboxed-stub}
if [ ! -x "$ex" ]; then
	echo "# $ex not built"
	exit 99
fi
attacks=$("$ex" --list) || exit 99
n=0
fails=0
echo "1..$(echo "$attacks" | wc -l)"
for a in $attacks; do
	n=$((n + 1))
	out=$(timeout 30 "$ex" "$a" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	if [ $rc -eq 0 ]; then
		echo "ok $n - $a"
	else
		echo "not ok $n - $a # exit $rc"
		fails=$((fails + 1))
	fi
done
[ $fails -eq 0 ]
