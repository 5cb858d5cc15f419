#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# CI: build the Debian packages from a clean copy of the tree, lint them,
# install them, build and run debian/tests/smoke against the installed
# files only, then purge them, leaving the system as it was.
#
# The copy is the working tree as git sees it (committed and uncommitted
# changes, untracked files that are not ignored), so the in-tree configured
# build is neither used nor touched.  The package build skips the test
# suite (debian/rules), which the rest of .ci/run covers.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

debs="libstubwatch0 libstubwatch-ev0 libstubwatch-dev stubwatch-tools"

# Purging at the end must not remove what someone installed before.
for p in $debs; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		echo "debian.sh: $p is installed already; remove it first (dpkg --purge $p)" >&2
		exit 1
	fi
done

work=$(mktemp -d)
installed=no
cleanup() {
	rc=$?
	if [ $installed = yes ]; then
		# shellcheck disable=SC2086
		dpkg --purge $debs >/dev/null || rc=1
	fi
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT

version=$(dpkg-parsechangelog -S Version)
src=$work/stubwatch-$version
mkdir "$src"
git ls-files -z --cached --others --exclude-standard |
	tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$src"

echo "debian.sh: dpkg-buildpackage -us -uc -b (log: build.log, shown on failure)"
if ! (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
	dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log"
	echo "debian.sh: the package build failed" >&2
	exit 1
fi

changes=$work/stubwatch_${version}_$(dpkg --print-architecture).changes
echo "debian.sh: lintian (errors fail, warnings are shown)"
lintian --fail-on error "$changes"

files=
for p in $debs; do files="$files $work/${p}_${version}_$(dpkg --print-architecture).deb"; done
installed=yes
# shellcheck disable=SC2086
if ! dpkg -i $files; then
	# A missing dependency leaves them unconfigured: let apt fetch it.
	apt-get install -f -y -q --no-install-recommends
fi
for p in $debs; do
	dpkg-query -W -f='${Status}' "$p" | grep -q "ok installed" || {
		echo "debian.sh: $p did not install" >&2
		exit 1
	}
done

echo "debian.sh: the smoke test against the installed packages"
AUTOPKGTEST_TMP=$work debian/tests/smoke
stubwatch-demo --help > /dev/null
echo "debian.sh: OK ($debs)"
