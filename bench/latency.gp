# SPDX-License-Identifier: LGPL-2.1-or-later
# Handshake round-trip percentiles from stubwatch-bench's latency.dat.
# gnuplot -e "datafile='bench/results/latency.dat'; outfile='bench/results/latency.png'" bench/latency.gp
if (!exists("datafile")) datafile = 'bench/results/latency.dat'
if (!exists("outfile")) outfile = 'bench/results/latency.png'

set terminal pngcairo size 960,600 font ",10"
set output outfile
set title "stubwatch-bench: handshake round trip by percentile (all repetitions pooled)"
set logscale x
set logscale y
set xrange [1:100000]
set xtics ("0%%" 1, "50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)
set xlabel "percentile"
set ylabel "round trip (us)"
set grid xtics ytics mytics
set key top left
stats datafile using 1 nooutput
plot for [i=0:STATS_blocks-1] datafile index i using 1:2 with linespoints \
	pointsize 0.5 lw 2 title columnheader(1)
