#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# stubwatch-demo's command line: bad values refused with exit 2 and a
# message naming the option; a short --json run with a hijack; the same
# with --driver libev (or, in a build without libev, its refusal); a short
# human run without one.  Run from the top build directory (make check):
# config.h says whether configure found libev.
set -u

demo=${DEMO:-./stubwatch-demo}
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fails=0
n=0

ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n $1"; fails=$((fails + 1)); }

if [ "$(uname -m)" != x86_64 ]; then
	echo "1..0 # SKIP the UML model runs on x86_64 only"
	exit 77
fi
if [ ! -x "$demo" ]; then
	echo "# $demo not built"
	exit 99
fi
config_h=${CONFIG_H:-config.h}
if [ ! -f "$config_h" ]; then
	echo "# $config_h not found: run from the top build directory"
	exit 99
fi

# refused: exit 2, and stderr names the option
refuse() {
	what=$1
	shift
	timeout 10 "$demo" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -eq 2 ] && grep -q -- "$what" "$tmp/err" && [ ! -s "$tmp/out" ]; then
		ok "refuses $*"
	else
		not_ok "refuses $* (exit $rc)"
		sed 's/^/#   /' "$tmp/err"
	fi
}

refuse --vcpus --vcpus 0
refuse --vcpus --vcpus 65
refuse --vcpus --vcpus two
refuse --vcpus --vcpus=-1
refuse --stubs --stubs 0
refuse --tick-ms --tick-ms 0
refuse --tick-ms --tick-ms 1.5
refuse --stall-ticks --stall-ticks 0
refuse --duration --duration 0
refuse --duration --duration abc
refuse --duration --duration 1s
refuse --duration --duration 7.9 # the hijack's kill by 7 s, and a tick more
refuse --hijack --hijack bogus
refuse --driver --driver nosuch
refuse --poll --poll maybe
refuse --poll --poll
refuse --bogus --bogus
refuse --vcpus --vcpus
refuse extra extra

timeout 10 "$demo" --help >"$tmp/out" 2>&1
if [ $? -eq 0 ] && grep -q -- --hijack "$tmp/out" &&
   grep -q 'or libev' "$tmp/out"; then
	ok "--help"
else
	not_ok "--help"
fi

# A JSON run: T = 100 ms, N = 5, h2 after 200 ms; the kill comes
# 0.5..0.6 s after the later of the hijacker's last report and its last
# resume (the watchdog counts from there), up to N*T later for a stub the
# host starves (its credit), so by about 1.3 s; the run lasts 2.5 s, so
# that the other stubs have time to run after the kill, which the verdict
# requires.
timeout 30 "$demo" --json --vcpus 2 --stubs 2 --tick-ms 100 --stall-ticks 5 \
	--duration 2.5 --hijack sigalrm-sleep --hijack-after-ms 200 \
	>"$tmp/json" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ]; then ok "json run exits 0"; else not_ok "json run exits 0 (exit $rc)"; sed 's/^/#   /' "$tmp/err" "$tmp/json"; fi

if grep -v -q '^{.*}$' "$tmp/json"; then
	not_ok "json: every line is one object"
else
	ok "json: every line is one object"
fi
spawns=$(grep -c '"event":"spawn"' "$tmp/json")
if [ "$spawns" -eq 5 ]; then ok "json: 5 spawn events"; else not_ok "json: $spawns spawn events"; fi
kill=$(grep '"event":"kill"' "$tmp/json")
if [ "$(printf '%s\n' "$kill" | grep -c .)" -eq 1 ] &&
   printf '%s' "$kill" | grep -q '"reason":"stall"' &&
   printf '%s' "$kill" | grep -q '"sigalrm_blocked":true' &&
   printf '%s' "$kill" | grep -q '"state":"S"' &&
   printf '%s' "$kill" | grep -q '"hijack":"sigalrm-sleep"'; then
	ok "json: one kill, stall, SIGALRM blocked, sleeping"
else
	not_ok "json: kill event"
	printf '#   %s\n' "$kill"
fi
# The kill's timing, from a kill event or a summary's kill: "detect_ms"
# from the last valid report, "detect_resume_ms" from the last resume, and
# the lateness the library owns up to.  Sets detect, resumed, late, starved.
field() { printf '%s' "$2" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
timing() {
	detect=$(field detect_ms "$1")
	resumed=$(field detect_resume_ms "$1")
	late=$(field monitor_late_ms "$1")
	starved=$(field starved_ms "$1")
}
# never before N*T = 500 ms after the resume; by (N+1)*T = 600 ms, plus
# however late the monitor's own timer reads and the stub's run-queue wait
# made it (the demo's verdict); the resume comes after the report it answers
in_window() {
	[ -n "$detect" ] && [ -n "$resumed" ] && [ -n "$late" ] &&
	[ -n "$starved" ] &&
	awk -v d="$detect" -v r="$resumed" -v l="$late" -v s="$starved" \
		'BEGIN { exit !(r >= 500 && r <= 600 + l + s && d >= r) }'
}
timing "$kill"
if in_window; then
	ok "json: detect_resume_ms $resumed in 500..600 (+$late late, +$starved starved), detect_ms $detect"
else
	not_ok "json: detect_resume_ms '$resumed' not in 500..600 (+'$late' late, +'$starved' starved), detect_ms '$detect'"
fi
last=$(tail -n 1 "$tmp/json")
missing=
for key in '"event":"summary"' '"vcpus":2' '"stubs":2' '"tick_ms":100' \
	'"stall_ticks":5' '"duration_s":' '"handshakes":' '"false_kills":0' \
	'"kills":\[{"pid":' '"vcpu":' '"reason":"stall"' '"detect_ms":' \
	'"detect_resume_ms":' '"sigalrm_blocked":true' '"state":"S"' \
	'"poll":false'; do
	printf '%s' "$last" | grep -q "$key" || missing="$missing $key"
done
if [ -z "$missing" ]; then ok "json: summary last, with its keys"; else not_ok "json: summary lacks$missing"; printf '#   %s\n' "$last"; fi

# The libev driver: the same scenario with each vCPU's loop in a libev loop
# of its own (h1 this time), and the same summary.  Without libev: exit 2,
# and a message that says so.
if grep -q '^#define HAVE_LIBEV 1' "$config_h"; then
	timeout 30 "$demo" --json --driver libev --vcpus 2 --stubs 2 \
		--tick-ms 100 --stall-ticks 5 --duration 2.5 \
		--hijack sigalrm-spin --hijack-after-ms 200 \
		>"$tmp/libev" 2>"$tmp/err"
	rc=$?
	if [ $rc -eq 0 ]; then ok "libev: json run exits 0"; else not_ok "libev: json run exits 0 (exit $rc)"; sed 's/^/#   /' "$tmp/err" "$tmp/libev"; fi
	last=$(tail -n 1 "$tmp/libev")
	missing=
	for key in '"event":"summary"' '"driver":"libev"' '"false_kills":0' \
		'"protocol_kills":0' '"exits":0' '"kills":\[{"pid":' \
		'"reason":"stall"' '"sigalrm_blocked":true' '"false_kill":false' \
		'"ok":true'; do
		printf '%s' "$last" | grep -q "$key" || missing="$missing $key"
	done
	nkills=$(printf '%s' "$last" | grep -o '"pid":' | grep -c .)
	if [ -z "$missing" ] && [ "$nkills" -eq 1 ]; then
		ok "libev: summary: one stall kill, SIGALRM blocked, no false kill"
	else
		not_ok "libev: summary lacks$missing ($nkills kills)"
		printf '#   %s\n' "$last"
	fi
	timing "$last"
	if in_window; then
		ok "libev: detect_resume_ms $resumed in 500..600 (+$late late, +$starved starved), detect_ms $detect"
	else
		not_ok "libev: detect_resume_ms '$resumed' not in 500..600 (+'$late' late, +'$starved' starved), detect_ms '$detect'"
	fi
else
	timeout 10 "$demo" --driver libev >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -eq 2 ] && [ ! -s "$tmp/out" ] &&
	   grep -q -- "--driver: 'libev' is not in this build" "$tmp/err"; then
		ok "refuses --driver libev: no libev in this build"
	else
		not_ok "refuses --driver libev without libev (exit $rc)"
		sed 's/^/#   /' "$tmp/err"
	fi
fi

# A human run, no hijack.
timeout 30 "$demo" --vcpus 1 --stubs 3 --tick-ms 100 --duration 1 --hijack none \
	>"$tmp/human" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ] && grep -q '^verdict  *OK' "$tmp/human" &&
   grep -q '^false kills  *0' "$tmp/human" && grep -q 'vcpu0 ' "$tmp/human"; then
	ok "human run: report, verdict OK"
else
	not_ok "human run (exit $rc)"
	sed 's/^/#   /' "$tmp/human" "$tmp/err"
fi

# Adaptive polling on both ends: the same verdict, and the report says so.
timeout 30 "$demo" --vcpus 1 --stubs 3 --tick-ms 100 --duration 1 --hijack none \
	--poll on >"$tmp/poll" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ] && grep -q '^verdict  *OK' "$tmp/poll" &&
   grep -q '^run .*polling on$' "$tmp/poll" &&
   grep -q '^handshakes  *[1-9]' "$tmp/poll"; then
	ok "--poll on: report, polling on, verdict OK"
else
	not_ok "--poll on (exit $rc)"
	sed 's/^/#   /' "$tmp/poll" "$tmp/err"
fi

echo "1..$n"
[ $fails -eq 0 ]
