# Soak bench plot: gnuplot -e "dir='DIR'" bench/soak/plot.gp   ->  DIR/soak.png
# Reads DIR/soak.csv and DIR/faults.csv written by bench/soak/soak.py (columns: README.md).
# Optional: -e "labels=0" leaves out the fault names (soak.py does that above 40 faults).
if (!exists("dir")) dir = "."
if (!exists("labels")) labels = 1
csv = dir."/soak.csv"
fcsv = dir."/faults.csv"

set datafile separator ","
set datafile missing ""
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1400,1200 font "sans,10"
} else {
    set terminal png size 1400,1200
}
set output dir."/soak.png"

# Number of faults (soak.py passes it; stats would fail on a faults.csv with only its header).
if (!exists("nfaults")) nfaults = int(system("tail -n +2 '".fcsv."' | grep -c . || true"))

set grid
set lmargin 10
set rmargin 10   # the same plot width in every panel (the last one has a right axis)
set key top left opaque
set xlabel "elapsed (s)"
# All stats first: stats filters by the current axis ranges, which the panels below set.
stats csv skip 1 using 1 nooutput
xmax = STATS_max
stats csv skip 1 using 5 nooutput
hwm_max = STATS_max
stats csv skip 1 using 6 nooutput
fd_max = STATS_max
stats csv skip 1 using 7 nooutput
thr_max = STATS_max
stats csv skip 1 using 9 nooutput
exp_max = STATS_max
stats csv skip 1 using 11 nooutput
dup_max = STATS_max
stats csv skip 1 using 13 nooutput
miss_max = STATS_max
set xrange [0:xmax]

set multiplot layout 3,1 title "gateway-agent soak: ".dir

# --- 1: memory --------------------------------------------------------------------------------
ymax = hwm_max / 1024.0 * 1.15
set yrange [0:ymax]
set ylabel "MiB"
set key bottom right opaque
set title "agent memory (VmRSS, VmHWM); grey lines: faults"
if (nfaults > 0 && labels) {
    plot fcsv skip 1 using 1:(ymax) with impulses lc rgb "#bbbbbb" dt 2 notitle, \
         fcsv skip 1 using 1:(ymax*0.98):2 with labels rotate by 90 right font ",7" \
             tc rgb "#777777" notitle, \
         csv skip 1 using 1:($4/1024.0) with linespoints pt 7 ps 0.4 lw 1.5 lc rgb "#1f77b4" \
             title "VmRSS", \
         csv skip 1 using 1:($5/1024.0) with lines lw 1 lc rgb "#ff7f0e" title "VmHWM"
} else {
    if (nfaults > 0) {
        plot fcsv skip 1 using 1:(ymax) with impulses lc rgb "#bbbbbb" dt 2 notitle, \
             csv skip 1 using 1:($4/1024.0) with linespoints pt 7 ps 0.4 lw 1.5 \
                 lc rgb "#1f77b4" title "VmRSS", \
             csv skip 1 using 1:($5/1024.0) with lines lw 1 lc rgb "#ff7f0e" title "VmHWM"
    } else {
        plot csv skip 1 using 1:($4/1024.0) with linespoints pt 7 ps 0.4 lw 1.5 \
                 lc rgb "#1f77b4" title "VmRSS", \
             csv skip 1 using 1:($5/1024.0) with lines lw 1 lc rgb "#ff7f0e" title "VmHWM"
    }
}

# --- 2: FDs and threads -----------------------------------------------------------------------
m = fd_max > thr_max ? fd_max : thr_max
ymax = (m > 1 ? m : 1) * 1.3
set yrange [0:ymax]
set ylabel "count"
set key bottom right opaque
set title "agent open file descriptors and threads"
if (nfaults > 0) {
    plot fcsv skip 1 using 1:(ymax) with impulses lc rgb "#bbbbbb" dt 2 notitle, \
         csv skip 1 using 1:6 with linespoints pt 7 ps 0.4 lw 1.5 lc rgb "#2ca02c" \
             title "open FDs", \
         csv skip 1 using 1:7 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#9467bd" title "threads"
} else {
    plot csv skip 1 using 1:6 with linespoints pt 7 ps 0.4 lw 1.5 lc rgb "#2ca02c" \
             title "open FDs", \
         csv skip 1 using 1:7 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#9467bd" title "threads"
}

# --- 3: alerts --------------------------------------------------------------------------------
ymax = (exp_max > 1 ? exp_max : 1) * 1.1
set yrange [0:ymax]
set ylabel "alerts"
set y2label "duplicates, missing"
set y2tics
m = dup_max > miss_max ? dup_max : miss_max
set y2range [0:(m > 1 ? m : 1) * 1.1]
set key below horizontal noopaque
set title "alerts: expected (sent above threshold) vs received upstream (distinct); duplicates"
if (nfaults > 0) {
    plot fcsv skip 1 using 1:(ymax) with impulses lc rgb "#bbbbbb" dt 2 notitle, \
         csv skip 1 using 1:9 with lines lw 2 lc rgb "#1f77b4" title "expected", \
         csv skip 1 using 1:10 with linespoints pt 7 ps 0.4 lw 1.5 lc rgb "#d62728" \
             title "received", \
         csv skip 1 using 1:11 axes x1y2 with lines lw 1 lc rgb "#8c564b" title "duplicates (right axis)", \
         csv skip 1 using 1:13 axes x1y2 with lines lw 1 lc rgb "#e377c2" \
             title "missing, not yet received (right axis)"
} else {
    plot csv skip 1 using 1:9 with lines lw 2 lc rgb "#1f77b4" title "expected", \
         csv skip 1 using 1:10 with linespoints pt 7 ps 0.4 lw 1.5 lc rgb "#d62728" \
             title "received", \
         csv skip 1 using 1:11 axes x1y2 with lines lw 1 lc rgb "#8c564b" title "duplicates (right axis)", \
         csv skip 1 using 1:13 axes x1y2 with lines lw 1 lc rgb "#e377c2" \
             title "missing, not yet received (right axis)"
}

unset multiplot
