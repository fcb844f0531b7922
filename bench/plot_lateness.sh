#!/usr/bin/env bash
# Draws the connect-timeout lateness CDFs from bench/connect_timeout's JSON output: one panel
# per requested timeout, one line per method, lateness (log scale) against the fraction of
# connects reported by then. Uses the quantile counters q00..q100 each benchmark reports.
#
#   build/bench/connect_timeout --benchmark_out=bench/results/connect_timeout.json \
#       --benchmark_out_format=json
#   bench/plot_lateness.sh bench/results/connect_timeout.json bench/results/connect_timeout.png
#
# Needs python3 (JSON) and gnuplot (Debian: gnuplot-nox).
set -euo pipefail
in=${1:?usage: plot_lateness.sh RESULTS.json OUT.png}
out=${2:?usage: plot_lateness.sh RESULTS.json OUT.png}
command -v gnuplot >/dev/null || { echo "plot_lateness.sh: gnuplot is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One data file per (timeout, method): "lateness_us fraction" rows, and a list of panels.
python3 - "$in" "$tmp" <<'PY'
import json, re, sys, os
results, tmp = sys.argv[1], sys.argv[2]
with open(results) as f:
    data = json.load(f)
panels = {}
for b in data.get("benchmarks", []):
    if b.get("run_type") == "aggregate" or "error_occurred" in b and b["error_occurred"]:
        continue
    parts = b["name"].split("/")
    if len(parts) < 3:
        continue
    method, timeout = parts[1], parts[2]
    qs = sorted((int(k[1:]), v) for k, v in b.items() if re.fullmatch(r"q\d+", k))
    if not qs:
        continue
    panels.setdefault(timeout, []).append(method)
    with open(os.path.join(tmp, f"{timeout}__{method}.dat"), "w") as out:
        for q, v in qs:
            out.write(f"{max(v, 0.1)} {q / 100}\n")
def ms(t):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", t)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)] if m else 0
with open(os.path.join(tmp, "panels"), "w") as f:
    for t in sorted(panels, key=ms):
        f.write(t + " " + " ".join(panels[t]) + "\n")
PY

[[ -s "$tmp/panels" ]] || { echo "plot_lateness.sh: no lateness quantiles in $in" >&2; exit 1; }
n=$(wc -l <"$tmp/panels")
cols=$((n < 2 ? n : 2))
rows=$(((n + cols - 1) / cols))
{
  echo "set terminal pngcairo size $((560 * cols)),$((420 * rows + 30)) noenhanced font 'sans,10'"
  echo "set output '$out'"
  echo "set multiplot layout $rows,$cols title 'connect timeout: how late the caller learns it timed out (CDF over connects)'"
  echo "set logscale x"
  echo "set xlabel 'lateness after the deadline (us, log scale)'"
  echo "set ylabel 'fraction of connects reported'"
  echo "set yrange [0:1]"
  echo "set grid"
  echo "set key bottom right"
  while read -r timeout methods; do
    echo "set title 'requested timeout $timeout'"
    plot="plot"
    sep=""
    for m in $methods; do
      plot+="$sep '$tmp/${timeout}__$m.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 2 title '$m'"
      sep=","
    done
    echo "$plot"
  done <"$tmp/panels"
  echo "unset multiplot"
} >"$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "wrote $out"
