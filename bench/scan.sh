#!/usr/bin/env bash
# uringcat -z over a range of black-holed ports: is each port reported at its deadline?
#   bench/scan.sh [--ports N] [--timeout SECONDS] [--smoke] [URINGCAT]
# Runs inside a network namespace of its own (unshare -n, needs root): there, a route sends
# 10.213.0.0/24 to the loopback device, which drops packets for addresses it does not own, so
# every SYN to 10.213.0.2 vanishes and every connect waits for its deadline. No packet leaves
# the namespace. Reports each port's lateness (time to its "timed out" minus the timeout, from
# uringcat -vv) as percentiles, and, in the same run, nc.openbsd -z over a few ports, which
# probes one port after another.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ports=10000
timeout_s=1
uringcat=
while (( $# > 0 )); do
  case $1 in
    --ports) ports=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --smoke) ports=500; timeout_s=0.2; shift ;;
    *) uringcat=$1; shift ;;
  esac
done
if [[ -z $uringcat ]]; then
  for candidate in build/tools/uringcat build-test-gcc/tools/uringcat build-*/tools/uringcat; do
    [[ -x $candidate ]] && { uringcat=$candidate; break; }
  done
fi
[[ -x $uringcat ]] || { echo "scan.sh: no uringcat binary (build it, or pass its path)" >&2; exit 2; }
uringcat=$(realpath "$uringcat")

if [[ ${URINGCAT_SCAN_INSIDE:-} != 1 ]]; then
  echo "# bench/scan.sh --ports $ports --timeout $timeout_s $uringcat"
  echo "# $(nproc) cores, Linux $(uname -r)"
  exec env URINGCAT_SCAN_INSIDE=1 timeout 300 unshare -n bash "$0" --ports "$ports" \
    --timeout "$timeout_s" "$uringcat"
fi

# Only inside the namespace made above: a fresh one has nothing but lo. Anywhere else (this
# script run with URINGCAT_SCAN_INSIDE=1 by hand) the SYNs could leave the machine: refuse.
if [[ $(ip -o link show | wc -l) != 1 ]] || ! ip -o link show lo >/dev/null 2>&1; then
  echo "scan.sh: not inside a fresh network namespace; refusing to probe 10.213.0.2" >&2
  exit 2
fi
ip link set lo up
ip route add 10.213.0.0/24 dev lo
ulimit -n "$(ulimit -Hn)"

log=$(mktemp "${TMPDIR:-/tmp}/uringcat-scan.XXXXXX")
trap 'rm -f "$log"' EXIT
start=$(date +%s.%N)
status=0
"$uringcat" -z -vv -w "$timeout_s" 10.213.0.2 "1-$ports" >/dev/null 2>"$log" || status=$?
end=$(date +%s.%N)
python3 - "$log" "$timeout_s" "$ports" "$start" "$end" "$status" <<'PY'
import re, sys
log, timeout_s, ports, start, end, status = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
late = sorted(float(m.group(1)) - timeout_s * 1000
              for m in re.finditer(r"timed out after ([0-9.]+) ms", open(log).read()))
if len(late) != ports or status != 1:
    sys.exit(f"scan.sh: expected {ports} timed-out ports and exit 1, got {len(late)} and exit {status}")
pct = lambda p: late[min(len(late) - 1, int(p * len(late)))]
print(f"uringcat -z: {ports} ports, -w {timeout_s}s, all timed out; wall {end - start:.3f} s")
print(f"  lateness after each port's deadline (ms): min {late[0]:.3f}  p50 {pct(0.5):.3f}  "
      f"p90 {pct(0.9):.3f}  p99 {pct(0.99):.3f}  max {late[-1]:.3f}")
PY
n=5
start=$(date +%s.%N)
nc.openbsd -z -w 1 10.213.0.2 "1-$n" 2>/dev/null || true
end=$(date +%s.%N)
python3 -c "print(f'nc.openbsd -z -w 1: {$n} ports one after another; wall {$end - $start:.3f} s')"
