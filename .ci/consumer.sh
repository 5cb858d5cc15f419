#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A consumer's view: install stubwatch into a scratch prefix, then build two
# examples out of the tree with nothing but what pkg-config says
# (minimal-monitor against stubwatch, libev against stubwatch-ev) and run
# them against the installed libraries.  Catches a .pc file that lacks a
# flag, a header that is not installed, a library the examples need that
# no Libs line names.
#
# Run from a tree that configure has run in (as .ci/run's earlier steps
# leave it): the install is built from `make dist`'s tarball, since an
# out-of-tree build next to a configured source is refused.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f Makefile ]; then
	autoreconf -fi
	./configure -q
fi
version=$(sed -n 's/^PACKAGE_VERSION = //p' Makefile)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

make -s dist-gzip
tar -C "$tmp" -xzf "stubwatch-$version.tar.gz"
src=$tmp/stubwatch-$version
prefix=$tmp/prefix
(cd "$src" && ./configure -q --prefix="$prefix" && make -s -j2 &&
	make -s install > /dev/null)

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export LD_LIBRARY_PATH=$prefix/lib
for pc in stubwatch stubwatch-ev; do
	pkg-config --print-errors --exists "$pc"
	echo "$pc: $(pkg-config --cflags --libs "$pc")"
done

# Only the installed headers and libraries: the examples' own directory
# gives example.h ("..." includes), nothing else from the tree.
build() { # example, package
	# shellcheck disable=SC2046
	cc -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror \
		-o "$tmp/$1" "$src/examples/$1.c" \
		$(pkg-config --cflags --libs "$2")
	ldd "$tmp/$1" > "$tmp/$1.ldd"
	if ! grep -q "libstubwatch\.so.* => $prefix/lib/" "$tmp/$1.ldd"; then
		echo "$1 does not load the installed libstubwatch:"
		cat "$tmp/$1.ldd"
		exit 1
	fi
}
build minimal-monitor stubwatch
build libev stubwatch-ev

for ex in minimal-monitor libev; do
	echo "== $ex"
	"$tmp/$ex"
done
echo "consumer: both examples built from pkg-config alone and passed"
