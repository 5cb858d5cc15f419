#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The manual pages against the libraries they document (man/):
#   - every exported symbol of src/libstubwatch.sym and
#     src/ev/libstubwatch-ev.sym, and every public static inline sw_*
#     function of include/*.h, has a page, its own or a ".so" link to the
#     page whose NAME section lists it;
#   - the error codes a page's ERRORS section names are ones the header's
#     comment for that call lists (the header is the contract; the comment
#     is read as test/t_walk.c reads it: "NAME errors:" up to the next
#     "sw_... errors:", else "Errors:" to its end, else all of it, and
#     "as sw_x()" or "theirs" take the named calls' errors too), and every
#     code the header lists for a call the page documents is on the page,
#     under that call;
#   - every page passes `mandoc -Tlint -W warning` (skipped without mandoc)
#     and man/Makemodule.am installs it.
# In ERRORS, an error code is written with its minus sign (\-EINVAL) or as
# the tag of a .TP item; it belongs to the page's own call (its file name)
# until a .SS heading names the calls the codes below it belong to.
# Run from the top build directory (make check); the sources are found
# next to this script.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
man=${MANDIR:-$top/man}
hdrs="$top/include/stubwatch.h $top/include/stubwatch-ev.h"
syms="$top/src/libstubwatch.sym $top/src/ev/libstubwatch-ev.sym"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

for f in $hdrs $syms; do
	[ -r "$f" ] || { echo "# $f: missing"; exit 99; }
done
[ -d "$man" ] || { echo "# $man: missing"; exit 99; }

# The names that need a page: exported symbols and the public inline
# helpers (sw__* are private).
{
	sed -n 's/^[[:space:]]*\(sw_[a-z0-9_]*\);.*/\1/p' $syms
	sed -n 's/^static inline [^(]*[ *]\(sw_[a-z][a-z0-9_]*\)(.*/\1/p' $hdrs
} | sort -u > "$tmp/names"

# The header's error table: "name CODE CODE ..." for each declared call.
awk '
function errpart(name, text,    i, rest, s) {
	i = index(text, name " errors:")
	if (i) {
		rest = substr(text, i + length(name " errors:"))
		if (match(rest, /sw_[a-z0-9_]+ errors:/))
			rest = substr(rest, 1, RSTART - 1)
		return rest
	}
	i = index(text, "Errors:")
	return i ? substr(text, i) : text
}
function decl(name, text,    part, s, c) {
	part = errpart(name, text)
	errs[name] = " "
	s = part
	while (match(s, /(^|[^a-z0-9_])-E[A-Z0-9]+/)) {
		c = substr(s, RSTART, RLENGTH)
		sub(/^[^-]*-/, "", c)
		if (index(errs[name], " " c " ") == 0)
			errs[name] = errs[name] c " "
		s = substr(s, RSTART + RLENGTH)
	}
	refs[name] = " "
	s = part
	while (match(s, /as sw_[a-z0-9_]+\(\)/)) {
		c = substr(s, RSTART + 3, RLENGTH - 5)
		if (c != name)
			refs[name] = refs[name] c " "
		s = substr(s, RSTART + RLENGTH)
	}
	if (index(part, "theirs")) {
		s = text
		while (match(s, /sw_[a-z0-9_]+\(\)/)) {
			c = substr(s, RSTART, RLENGTH - 2)
			if (c != name)
				refs[name] = refs[name] c " "
			s = substr(s, RSTART + RLENGTH)
		}
	}
	names[++n] = name
}
{
	line = $0
	if (incomment || line ~ /^\/\*/ || (line ~ /^\t/ && index(line, "/*"))) {
		if (!incomment)
			block = ""
		incomment = index(line, "*/") == 0
		sub(/^[ \t]*/, "", line)
		if (line ~ /^\*[^\/]/ || line == "*") {
			line = substr(line, 2)
			sub(/^[ \t]*/, "", line)
		}
		block = block line " "
		next
	}
	if (match(line, /^[a-z][a-z0-9_ ]*[ *]sw_[a-z][a-z0-9_]*\(/)) {
		name = substr(line, 1, RLENGTH - 1)
		sub(/.*[ *]/, "", name)
		trail = index(line, "/*") ? substr(line, index(line, "/*")) : ""
		decl(name, block " " trail)
		isint[name] = line ~ /^(static inline )?(int|pid_t) /
		next
	}
	if (line ~ /^(#|struct|enum|typedef struct|})/)
		block = ""
}
END {
	for (pass = 0; pass < 4; pass++)
		for (i = 1; i <= n; i++) {
			k = split(refs[names[i]], r, " ")
			for (j = 1; j <= k; j++) {
				if (!(r[j] in errs)) {
					print "ref " names[i] " " r[j]
					continue
				}
				m = split(errs[r[j]], e, " ")
				for (l = 1; l <= m; l++)
					if (index(errs[names[i]], " " e[l] " ") == 0)
						errs[names[i]] = errs[names[i]] e[l] " "
			}
		}
	for (i = 1; i <= n; i++)
		print names[i], (isint[names[i]] ? "int" : "ptr") errs[names[i]]
}' $hdrs > "$tmp/errs"

if grep -q '^ref ' "$tmp/errs"; then
	sed -n 's/^ref \([^ ]*\) \(.*\)/# the header: \1 refers to \2, which it does not declare/p' "$tmp/errs"
	exit 99
fi
# A first check that the reading went right: the loop's constructor.
grep -q '^sw_loop_new int .*EINVAL' "$tmp/errs" || {
	echo "# could not read the error lists of the headers"
	exit 99
}

# What a page documents: the names of its NAME section.
page_names() {
	sed -n '/^\.SH NAME/,/^\.SH/p' "$1" | sed '1d;$d' |
		sed 's/\\-.*//' | tr ',' '\n' | sed 's/[[:space:]\\]//g' |
		grep '^sw_' || :
}

# A .so page: its target (man3/x.3 -> x.3), else nothing.
so_target() {
	sed -n '1{s/^\.so[[:space:]]*man[0-9]\///p;}' "$1"
}

pages=$(cd "$man" && ls *.1 *.3 *.7 2>/dev/null)
real=
for p in $pages; do
	[ -n "$(so_target "$man/$p")" ] || real="$real $p"
done
if command -v mandoc >/dev/null 2>&1; then
	lint=mandoc
else
	lint=
fi

n=0
fails=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
notok() {
	n=$((n + 1))
	echo "not ok $n - $1"
	fails=$((fails + 1))
}
skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

total=$(($(wc -l < "$tmp/names") + $(echo $real | wc -w) * 2 + 1))
echo "1..$total"

# Each name has a page.
while read -r name; do
	f=$man/$name.3
	if [ ! -f "$f" ]; then
		notok "$name(3): no page (man/$name.3)"
		continue
	fi
	t=$(so_target "$f")
	if [ -n "$t" ]; then
		if [ ! -f "$man/$t" ] || [ -n "$(so_target "$man/$t")" ]; then
			notok "$name(3): .so link to $t, which is no page"
			continue
		fi
		f=$man/$t
	fi
	if page_names "$f" | grep -qx "$name"; then
		ok "$name(3): $(basename "$f")"
	else
		notok "$name(3): $(basename "$f") does not list it in NAME"
	fi
done < "$tmp/names"

# Each page is installed.
missing=
for p in $pages; do
	grep -q "man/$p\\>" "$man/Makemodule.am" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	ok "man/Makemodule.am installs every page"
else
	notok "man/Makemodule.am installs every page: not$missing"
fi

# Each page: lint, then its ERRORS against the header.
for p in $real; do
	f=$man/$p
	if [ -z "$lint" ]; then
		skip "$p: mandoc -Tlint" "mandoc not installed"
	elif out=$(mandoc -Tlint -W warning "$f" 2>&1) && [ -z "$out" ]; then
		ok "$p: mandoc -Tlint"
	else
		echo "$out" | sed 's/^/# /'
		notok "$p: mandoc -Tlint"
	fi

	# "call CODE" for each code ERRORS names, then "doc NAME" for each
	# name the page documents.
	base=${p%.*}
	sed -n '/^\.SH ERRORS/,/^\.SH/p' "$f" | awk -v call="$base" '
		/^\.SH/ { next }
		/^\.SS/ {
			call = ""
			s = $0
			while (match(s, /sw_[a-z0-9_]+/)) {
				call = call " " substr(s, RSTART, RLENGTH)
				s = substr(s, RSTART + RLENGTH)
			}
			next
		}
		{
			s = $0
			if (tag && match(s, /^\.B[RI]? +(\\-|-)?E[A-Z0-9]+/)) {
				c = substr(s, RSTART, RLENGTH)
				sub(/.* /, "", c)
				sub(/^(\\-|-)/, "", c)
				emit(c)
				s = substr(s, RSTART + RLENGTH)
			}
			tag = $0 ~ /^\.TP/
			while (match(s, /(\\-|-)E[A-Z][A-Z0-9]+/)) {
				c = substr(s, RSTART, RLENGTH)
				sub(/^(\\-|-)/, "", c)
				emit(c)
				s = substr(s, RSTART + RLENGTH)
			}
		}
		function emit(c,    k, i, a) {
			k = split(call, a, " ")
			for (i = 1; i <= k; i++)
				print a[i], c
		}' | sort -u > "$tmp/page"
	page_names "$f" | sed 's/^/doc /' >> "$tmp/page"

	msg=$(awk '
		FNR == NR {
			e[$1] = " "
			for (i = 3; i <= NF; i++)
				e[$1] = e[$1] $i " "
			if ($2 == "int")
				isint[$1] = 1
			next
		}
		$1 == "doc" {
			if ($2 in isint)
				doc[$2] = 1
			next
		}
		{
			named[$1 " " $2] = 1
			if (!($1 in e))
				print "ERRORS: " $1 "() is no call of the headers"
			else if (index(e[$1], " " $2 " ") == 0)
				print "ERRORS: -" $2 " for " $1 "(), which its header comment does not list"
		}
		END {
			for (d in doc) {
				k = split(e[d], a, " ")
				for (i = 1; i <= k; i++)
					if (!((d " " a[i]) in named))
						print "ERRORS: -" a[i] " of " d "() is missing"
			}
		}' "$tmp/errs" "$tmp/page" | sort -u)
	if [ -z "$msg" ]; then
		ok "$p: ERRORS as the header lists them"
	else
		echo "$msg" | sed 's/^/# /'
		notok "$p: ERRORS as the header lists them"
	fi
done

[ $fails -eq 0 ]
