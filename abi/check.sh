#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Compare the exported ABI of the built libraries with the baseline in
# abi/ARCH/LIB.abi, with libabigail (Debian: abigail-tools).
#
#   abi/check.sh [--update] [BUILDDIR]
#
# BUILDDIR is a configured build tree (default: the current directory); the
# script builds the libraries there first (`make check-abi` runs it so).
# Any difference fails, an added function included: the baseline is the
# ABI the released sonames promise, and a change that is meant must be
# recorded, in two places, in the same commit:
#
#   1. -version-info current:revision:age (Makefile.am for libstubwatch,
#      src/ev/Makemodule.am for libstubwatch-ev), by libtool's rule:
#        interfaces added only:     current+1, revision 0, age+1
#        interfaces removed or changed incompatibly (a struct's layout, a
#        parameter, an enum value): current+1, revision 0, age 0, which
#        moves the soname (libstubwatch.so.1, and the Debian package
#        libstubwatch1);
#      new functions also go into a new version node of the version script
#      (src/libstubwatch.sym: STUBWATCH_0.2 { ... } STUBWATCH_0.1;) and
#      into debian/libstubwatch0.symbols with the version that adds them;
#   2. the baseline: `abi/check.sh --update` (or `make update-abi`), then
#      commit abi/ARCH/*.abi.
#
# The baseline holds only what a reader of include/ can reach (--headers-dir
# with --drop-private-types: the opaque structs stay opaque) and nothing of
# the machine that made it (no corpus path, no compilation directory, no
# source locations, source paths relative to the tree), so that an
# in-tree build (./configure in the top directory) regenerates it byte for
# byte from the same sources and compiler, wherever the tree is.  A VPATH
# build lists some declarations in another order (abidw sorts them by
# path): it compares equal, but regenerate the baseline in-tree.  It needs
# the libraries built with -g, as the default CFLAGS (-g -O2) are.
# Baselines are per architecture; an architecture without one is reported
# and skipped.
set -eu

# Every installed library; a new one adds its name here and its baseline.
libs="libstubwatch libstubwatch-ev"

update=no
if [ "${1:-}" = --update ]; then
	update=yes
	shift
fi
builddir=${1:-.}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
arch=$(uname -m)
basedir=$srcdir/abi/$arch

for tool in abidw abidiff readelf; do
	command -v $tool >/dev/null 2>&1 || {
		echo "check-abi: $tool not found (apt-get install abigail-tools binutils)" >&2
		exit 1
	}
done
if [ $update = no ] && [ ! -d "$basedir" ]; then
	echo "check-abi: no baseline for $arch in abi/, skipped (abi/check.sh --update makes one)"
	exit 0
fi

targets=
for lib in $libs; do targets="$targets $lib.la"; done
# shellcheck disable=SC2086
${MAKE:-make} -s -C "$builddir" $targets || {
	echo "check-abi: cannot build$targets in $builddir (configured --without-libev?)" >&2
	exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

dump() { # LIB OUT
	so=$builddir/.libs/$1.so
	if ! readelf -S "$so" | grep -q '\.debug_info'; then
		echo "check-abi: $so has no debug info: configure with CFLAGS='-g -O2'" >&2
		exit 1
	fi
	abidw --no-corpus-path --no-comp-dir-path --no-show-locs \
		--type-id-style hash --headers-dir "$srcdir/include" \
		--drop-private-types --out-file "$2.tmp" "$so"
	# A translation unit's path is relative to the build directory: make
	# it relative to the source tree, the same from any build directory.
	sed "/<abi-instr /s|path='[^']*/src/|path='src/|" "$2.tmp" > "$2"
	rm -f "$2.tmp"
}

if [ $update = yes ]; then
	mkdir -p "$basedir"
	for lib in $libs; do
		dump "$lib" "$basedir/$lib.abi"
		echo "check-abi: wrote abi/$arch/$lib.abi"
	done
	exit 0
fi

fail=0
for lib in $libs; do
	if [ ! -f "$basedir/$lib.abi" ]; then
		echo "check-abi: $lib: no baseline abi/$arch/$lib.abi" >&2
		fail=1
		continue
	fi
	dump "$lib" "$tmp/$lib.abi"
	# --harmless: an added enumerator or typedef counts as a change too.
	rc=0
	abidiff --harmless "$basedir/$lib.abi" "$tmp/$lib.abi" > "$tmp/$lib.diff" 2>&1 || rc=$?
	if [ $rc -eq 0 ]; then
		echo "check-abi: $lib: same ABI as abi/$arch/$lib.abi"
		continue
	fi
	fail=1
	# abidiff's status is a bit set: 1 error, 2 usage, 4 a change,
	# 8 an incompatible change.
	what=
	[ $((rc & 1)) -ne 0 ] && what="$what, abidiff failed"
	[ $((rc & 2)) -ne 0 ] && what="$what, usage error"
	[ $((rc & 4)) -ne 0 ] && what="$what, ABI changed"
	[ $((rc & 8)) -ne 0 ] && what="$what, INCOMPATIBLY"
	echo "check-abi: $lib: abidiff status $rc${what}:" >&2
	sed 's/^/  /' "$tmp/$lib.diff" >&2
done
if [ $fail -ne 0 ]; then
	cat >&2 <<EOF
check-abi: the exported ABI differs from the baseline.  If the change is
meant, update in the same commit both the libtool -version-info (rule in
abi/check.sh and next to -version-info in Makefile.am) and the baseline
(make update-abi, then commit abi/$arch/).  If not, undo it.
EOF
	exit 1
fi
