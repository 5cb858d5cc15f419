#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# `make bench`: the full stubwatch-bench run.
#
#   run.sh BENCH OUTDIR GNUPLOT_SCRIPT [GNUPLOT]
#
# Writes into OUTDIR:
#   results.txt        the human tables (also printed)
#   results.jsonl      one JSON object per line (one shape per phase)
#   results.md         the markdown tables the README shows
#   latency.dat        round-trip percentile curves
#   latency.png        their plot, when gnuplot is there
#   syscalls-perf.txt  syscalls per round trip counted from outside by perf
set -eu

bench=$1
out=$2
gp=$3
gnuplot=${4:-}

mkdir -p "$out"

# Syscalls per round trip counted from outside the bench, as a cross-check
# of its in-process counters: perf record on the raw_syscalls:sys_enter
# tracepoint follows the stub processes, samples are split by thread name
# (sw-bench-mon, sw-bench-stub, sw-bench-wd); two runs of different lengths
# make setup and teardown cancel out.  Running perf first also mounts
# tracefs, which the in-process counters need.
perf_count() { # variant n -> "monitor stub helper" raw counts
	data=$out/perf.data.tmp
	perf record -q -e raw_syscalls:sys_enter -o "$data" -- \
		"$bench" --variant "$1" --n "$2" --pin cross --warmup 0 \
		>/dev/null 2>&1 || return 1
	perf report -i "$data" --stdio --sort comm -F sample,comm 2>/dev/null |
		awk '$2 == "sw-bench-mon" { m = $1 }
		     $2 == "sw-bench-stub" { s = $1 }
		     $2 == "sw-bench-wd" { h = $1 }
		     END { printf "%d %d %d\n", m, s, h }'
	rm -f "$data" "$data.old"
}

perf_txt=$out/syscalls-perf.txt
if command -v perf >/dev/null 2>&1 &&
   perf record -q -e raw_syscalls:sys_enter -o /dev/null -- true \
	>/dev/null 2>&1; then
	n1=20000
	n2=60000
	{
		echo "syscalls per round trip, counted by perf record -e" \
		     "raw_syscalls:sys_enter, (count(n=$n2) - count(n=$n1))" \
		     "/ $((n2 - n1)), cross CPU"
		printf '%-14s %8s %8s %8s\n' variant monitor stub helper
	} >"$perf_txt"
	for v in futex thread-wd stubwatch stubwatch-poll stubwatch-ev; do
		a=$(perf_count "$v" $n1) || continue
		b=$(perf_count "$v" $n2) || continue
		echo "$a $b" | awk -v v="$v" -v d=$((n2 - n1)) \
			'{ printf "%-14s %8.3f %8.3f %8.4f\n", v,
			   ($4 - $1) / d, ($5 - $2) / d, ($6 - $3) / d }' \
			>>"$perf_txt"
	done
else
	echo "perf not available (apt-get install linux-perf):" \
	     "no outside syscall count" >"$perf_txt"
fi

"$bench" --out "$out"

{
	echo
	echo "### Syscalls per round trip, counted from outside by perf"
	echo
	echo '```'
	cat "$perf_txt"
	echo '```'
} >>"$out/results.md"
echo
cat "$perf_txt"

if [ -n "$gnuplot" ]; then
	"$gnuplot" -e "datafile='$out/latency.dat'; outfile='$out/latency.png'" \
		"$gp"
	printf '\n![round trip percentiles](latency.png)\n' >>"$out/results.md"
	echo "plot: $out/latency.png"
fi
echo "results: $out/results.md $out/results.jsonl"
