#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build the fuzz targets with clang (libFuzzer, AddressSanitizer,
# UndefinedBehaviorSanitizer) and run each one for a bounded time.
#
#   fuzz/run.sh [SECONDS [TARGET...]]
#
# SECONDS per target (default 60); TARGETs among watchdog, page, map (default
# all).  Needs no configure: the library's sources are compiled straight in.
# Each run starts from a copy of fuzz/corpus/TARGET, so the repository's
# corpus does not grow.  Builds and crash inputs go to fuzz/build/ (or
# $SW_FUZZ_BUILD).  Exits non-zero if any target crashed, hung, leaked or
# failed to build, after printing the input that did it.
#
# Environment: CC (default clang), SW_FUZZ_BUILD, SW_FUZZ_FLAGS (more
# libFuzzer flags, e.g. "-jobs=2" or "-seed=1").
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-watchdog page map}
cc=${CC:-clang}
build=${SW_FUZZ_BUILD:-$here/build}

case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS [TARGET...]]" >&2
	exit 2
	;;
esac

# The library's own warnings, plus what the fuzzer needs.
cflags="-std=gnu11 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE
	-I$top/include -I$top/src
	-Wall -Wextra -Wno-unused-parameter -Wshadow -Wmissing-prototypes
	-Wstrict-prototypes -Wformat=2
	-fsanitize=address,undefined -fno-sanitize-recover=undefined"

mkdir -p "$build/obj"

# The library files each target compiles in.
lib_objs() {
	case $1 in
	watchdog) echo watchdog ;;
	page) echo watchdog lifecycle timer reap mute loop kill watch death fd events dispatch handshake wait stub child poll diag ;;
	map) ;;
	*)
		echo "$0: unknown target $1" >&2
		return 1
		;;
	esac
}

# Extra link flags: fuzz_page watches the watchdog's decisions.
link_flags() {
	case $1 in
	page) echo "-Wl,--wrap=sw_wd_step" ;;
	esac
}

build_target() {
	t=$1
	objs=
	for o in $(lib_objs "$t"); do
		# shellcheck disable=SC2086
		$cc $cflags -fsanitize=fuzzer-no-link -c "$top/src/$o.c" \
			-o "$build/obj/$o.o"
		objs="$objs $build/obj/$o.o"
	done
	# shellcheck disable=SC2046,SC2086
	$cc $cflags -fsanitize=fuzzer "$here/fuzz_$t.c" $objs \
		$(link_flags "$t") -o "$build/fuzz_$t"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/stubwatch-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

failed=
for t in $targets; do
	echo "== build fuzz_$t"
	if ! build_target "$t"; then
		failed="$failed $t(build)"
		continue
	fi
	corpus=$work/corpus-$t
	arts=$build/artifacts/$t
	mkdir -p "$corpus" "$arts"
	if [ -d "$here/corpus/$t" ]; then
		cp "$here/corpus/$t"/* "$corpus"/ 2>/dev/null || :
	fi
	echo "== run fuzz_$t for ${secs}s"
	log=$build/fuzz_$t.log
	rc=0
	# STUBWATCH_CHECK=1: the loop checks a stub's phase and its lists at
	# every transition and every wait's end (src/lifecycle.h).
	# shellcheck disable=SC2086
	STUBWATCH_CHECK=1 "$build/fuzz_$t" -max_total_time="$secs" -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$arts/" \
		${SW_FUZZ_FLAGS:-} "$corpus" >"$log" 2>&1 || rc=$?
	grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
		"$log" || :
	if [ "$rc" -ne 0 ]; then
		failed="$failed $t"
		echo "fuzz_$t FAILED (exit $rc), log: $log"
		grep -E 'fuzz_[a-z]+: |ERROR: |SUMMARY: ' "$log" | head -n 5 || :
		sed -n 's/.*Test unit written to \(.*\)$/crash input: \1/p' "$log"
		echo "reproduce: $build/fuzz_$t INPUT"
	fi
done

if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed"
	exit 1
fi
echo "fuzz: all targets ran ${secs}s with no crash"
