#!/usr/bin/env bash
# Loopback throughput and start-up time of uringcat against socat, ncat and nc.openbsd.
#
# Usage: bench/throughput.sh [--runs N] [--smoke] [--size MIB] [--startup-runs N] [PATH/TO/uringcat]
#
#   PATH/TO/uringcat   default: the first of build*/tools/uringcat (repository root) that exists
#   --runs N           transfers per tool (default 3); the median is reported
#   --smoke            16 MiB, 1 run (CI)
#   --size MIB         data size (default 1024, i.e. 1 GiB)
#   --startup-runs N   start-up runs per tool (default 20)
#
# Throughput: the data (random bytes, generated once into $TMPDIR, deleted on exit) goes from
# a sender reading it on stdin to a receiver listening on 127.0.0.1 and writing it to a file;
# wall time from just before the sender starts to the receiver's exit; the output must be
# byte-exact (cmp). The same tool is used on both ends, each with its own equivalent flags:
#   uringcat    uringcat -l 127.0.0.1 PORT >out                  / uringcat --send-only 127.0.0.1 PORT <in
#   socat       socat -u TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr STDOUT >out / socat -u STDIN TCP:127.0.0.1:PORT <in
#   ncat        ncat -l 127.0.0.1 PORT >out                      / ncat --send-only 127.0.0.1 PORT <in
#   nc.openbsd  nc.openbsd -l 127.0.0.1 PORT >out                / nc.openbsd -N 127.0.0.1 PORT <in
# (receivers get stdin from /dev/null; every tool runs with its default buffer sizes).
# The input and output files live in $TMPDIR (default /tmp): with TMPDIR=/dev/shm (tmpfs) the
# figures measure the tools rather than disk writeback (needs twice the data size in RAM).
# Runs are interleaved round-robin (tool A, B, C, D, A, B, ...) so that the noise of a shared
# machine hits every tool alike; only the ratios inside one run mean anything.
#
# Start-up: wall time of `TOOL 127.0.0.1 CLOSED_PORT` (refused at once: exec, set-up, one
# connect attempt, exit), median of N runs per tool, interleaved; `/bin/true` is the floor
# (fork + exec from bash).
#
# Every transfer is bounded by `timeout 120`. Exit status: 0 if every transfer was byte-exact,
# 1 otherwise, 2 on a usage error. Only 127.0.0.1 is used.
set -euo pipefail
export LC_ALL=C  # "." as the decimal separator in $EPOCHREALTIME and awk

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=3
SIZE_MIB=1024
STARTUP_RUNS=20
SMOKE=0
URINGCAT=""
CMDLINE=$(printf '%q ' "$0" "$@"); CMDLINE=${CMDLINE% }

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die_usage() { echo "throughput.sh: $1" >&2; usage >&2; exit 2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && (( 10#$1 > 0 )); }

while (($#)); do
  case $1 in
    --runs) (($# >= 2)) && is_uint "$2" || die_usage "--runs needs a positive integer"; RUNS=$((10#$2)); shift 2 ;;
    --runs=*) is_uint "${1#*=}" || die_usage "--runs needs a positive integer"; RUNS=$((10#${1#*=})); shift ;;
    --size) (($# >= 2)) && is_uint "$2" || die_usage "--size needs a positive integer (MiB)"; SIZE_MIB=$((10#$2)); shift 2 ;;
    --startup-runs) (($# >= 2)) && is_uint "$2" || die_usage "--startup-runs needs a positive integer"; STARTUP_RUNS=$((10#$2)); shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die_usage "unknown option $1" ;;
    *) [[ -z $URINGCAT ]] || die_usage "more than one uringcat path"; URINGCAT=$1; shift ;;
  esac
done
if (($#)); then [[ -z $URINGCAT && $# -eq 1 ]] || die_usage "unexpected arguments: $*"; URINGCAT=$1; fi
if ((SMOKE)); then SIZE_MIB=16; RUNS=1; fi

if [[ -z $URINGCAT ]]; then
  for candidate in "$ROOT"/build*/tools/uringcat; do
    if [[ -x $candidate ]]; then URINGCAT=$candidate; break; fi
  done
fi
[[ -n $URINGCAT && -x $URINGCAT ]] || die_usage "no uringcat binary (give its path; looked for build*/tools/uringcat)"
URINGCAT=$(cd "$(dirname "$URINGCAT")" && pwd)/$(basename "$URINGCAT")

for cmd in python3 timeout cmp head awk sort; do
  command -v "$cmd" >/dev/null || { echo "throughput.sh: $cmd is required" >&2; exit 2; }
done

TOOLS=(uringcat)
for t in socat ncat nc.openbsd; do
  if command -v "$t" >/dev/null; then TOOLS+=("$t"); else echo "note: $t not installed, skipped"; fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/uringcat-throughput.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (up to 5 s) until PORT is in LISTEN state; fails early if PID has exited.
wait_listen() {
  local hex i
  hex=$(printf '%04X' "$1")
  for ((i = 0; i < 500; i++)); do
    if grep -qE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]+ 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}

median() {  # numbers on stdin
  awk '/^[0-9.]+$/' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

receiver_cmd() {  # tool port -> CMD
  case $1 in
    uringcat)   CMD=("$URINGCAT" -l 127.0.0.1 "$2") ;;
    socat)      CMD=(socat -u "TCP-LISTEN:$2,bind=127.0.0.1,reuseaddr" STDOUT) ;;
    ncat)       CMD=(ncat -l 127.0.0.1 "$2") ;;
    nc.openbsd) CMD=(nc.openbsd -l 127.0.0.1 "$2") ;;
  esac
}

sender_cmd() {  # tool port -> CMD
  case $1 in
    uringcat)   CMD=("$URINGCAT" --send-only 127.0.0.1 "$2") ;;
    socat)      CMD=(socat -u STDIN "TCP:127.0.0.1:$2") ;;
    ncat)       CMD=(ncat --send-only 127.0.0.1 "$2") ;;
    nc.openbsd) CMD=(nc.openbsd -N 127.0.0.1 "$2") ;;
  esac
}

# One transfer of $IN with tool $1; sets RESULT to MiB/s, or to "FAIL <why>".
# (Not run in a subshell, so that PIDS stays complete for the cleanup.)
transfer() {
  local tool=$1 out=$TMP/out port rpid="" spid t0 t1 rrc src attempt
  rm -f "$out"
  for attempt in 1 2 3; do
    port=$(free_port)
    receiver_cmd "$tool" "$port"
    timeout 120 "${CMD[@]}" </dev/null >"$out" 2>"$TMP/receiver.err" &
    rpid=$!
    PIDS+=("$rpid")
    if wait_listen "$port" "$rpid"; then break; fi
    kill "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
    rpid=""
  done
  if [[ -z $rpid ]]; then
    RESULT="FAIL receiver did not listen: $(head -c 300 "$TMP/receiver.err" | tr '\n' ' ')"; return
  fi
  sender_cmd "$tool" "$port"
  t0=$EPOCHREALTIME
  timeout 120 "${CMD[@]}" <"$IN" >/dev/null 2>"$TMP/sender.err" &
  spid=$!
  PIDS+=("$spid")
  wait "$rpid" && rrc=0 || rrc=$?
  t1=$EPOCHREALTIME
  wait "$spid" && src=0 || src=$?
  if ((rrc != 0)); then
    RESULT="FAIL receiver exit $rrc: $(head -c 300 "$TMP/receiver.err" | tr '\n' ' ')"
  elif ((src != 0)); then
    RESULT="FAIL sender exit $src: $(head -c 300 "$TMP/sender.err" | tr '\n' ' ')"
  elif ! cmp -s "$IN" "$out"; then
    RESULT="FAIL output differs ($(stat -c %s "$out") of $((SIZE_MIB * 1048576)) bytes)"
  else
    RESULT=$(awk -v mib="$SIZE_MIB" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", mib / (b - a) }')
  fi
  rm -f "$out"
  PIDS=()  # both have been waited for
}

startup_cmd() {  # tool port
  case $1 in
    true)       /bin/true ;;
    uringcat)   "$URINGCAT" 127.0.0.1 "$2" ;;
    socat)      socat -u STDIN "TCP:127.0.0.1:$2" ;;
    ncat)       ncat 127.0.0.1 "$2" ;;
    nc.openbsd) nc.openbsd 127.0.0.1 "$2" ;;
  esac </dev/null >/dev/null 2>&1
}

echo "command: $CMDLINE"
echo "machine: nproc=$(nproc) kernel=$(uname -r) $(uname -m); load average: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
version=$("$URINGCAT" --version 2>/dev/null | head -1) || true
echo "uringcat: $URINGCAT (${version:-no --version})"
command -v socat >/dev/null && echo "socat: $(socat -V 2>/dev/null | grep -m1 'socat version' || true)"
command -v ncat >/dev/null && echo "ncat: $(ncat --version 2>&1 | head -1)"
command -v nc.openbsd >/dev/null && echo "nc.openbsd: $(dpkg-query -W -f='${Version}' netcat-openbsd 2>/dev/null || echo '?')"
echo "data: $SIZE_MIB MiB of random bytes in $TMP ($(stat -f -c %T "$TMP")); runs per tool: $RUNS (interleaved); start-up runs: $STARTUP_RUNS"
[[ $(stat -f -c %T "$TMP") == tmpfs ]] || echo "note: \$TMPDIR is not a tmpfs: the receivers' writes also wait on disk writeback (TMPDIR=/dev/shm avoids that)"

IN=$TMP/in
head -c "$((SIZE_MIB * 1048576))" /dev/urandom >"$IN"
cat "$IN" >/dev/null  # into the page cache before the first run

declare -A RESULTS=() FAILS=()
status=0
for ((run = 1; run <= RUNS; run++)); do
  for tool in "${TOOLS[@]}"; do
    transfer "$tool"
    r=$RESULT
    if [[ $r == FAIL* ]]; then echo "run $run/$RUNS $tool: $r"; else echo "run $run/$RUNS $tool: $r MiB/s"; fi
    if [[ $r == FAIL* ]]; then
      FAILS[$tool]=$((${FAILS[$tool]:-0} + 1)); status=1
    else
      RESULTS[$tool]="${RESULTS[$tool]:-} $r"
    fi
  done
done

closed=$(free_port)
declare -A STARTS=() START_RC=()
for ((run = 1; run <= STARTUP_RUNS; run++)); do
  for tool in true "${TOOLS[@]}"; do
    t0=$EPOCHREALTIME
    startup_cmd "$tool" "$closed" && rc=0 || rc=$?
    t1=$EPOCHREALTIME
    START_RC[$tool]=$rc
    STARTS[$tool]="${STARTS[$tool]:-} $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')"
  done
done

echo
echo "Throughput, $SIZE_MIB MiB over 127.0.0.1 (median of $RUNS; ratio = tool / uringcat):"
printf '%-12s %12s %10s %10s %12s %8s\n' tool "MiB/s" min max "vs uringcat" failed
u_med=$(printf '%s\n' ${RESULTS[uringcat]:-} | median)
for tool in "${TOOLS[@]}"; do
  vals=${RESULTS[$tool]:-}
  if [[ -z $vals ]]; then
    printf '%-12s %12s %10s %10s %12s %8s\n' "$tool" FAIL - - - "${FAILS[$tool]:-0}/$RUNS"; continue
  fi
  med=$(printf '%s\n' $vals | median)
  min=$(printf '%s\n' $vals | sort -g | head -1)
  max=$(printf '%s\n' $vals | sort -g | tail -1)
  ratio=$(awk -v a="$med" -v b="$u_med" 'BEGIN { if (b !~ /^[0-9.]+$/ || b + 0 == 0) print "-"; else printf "%.2fx", a / b }')
  printf '%-12s %12.1f %10.1f %10.1f %12s %8s\n' "$tool" "$med" "$min" "$max" "$ratio" "${FAILS[$tool]:-0}/$RUNS"
done

echo
echo "Start-up, \`TOOL 127.0.0.1 $closed\` (refused at once), wall ms, median of $STARTUP_RUNS (ratio = tool / uringcat):"
printf '%-12s %10s %10s %10s %12s %10s\n' tool "ms" min max "vs uringcat" "exit"
u_start=$(printf '%s\n' ${STARTS[uringcat]} | median)
for tool in true "${TOOLS[@]}"; do
  vals=${STARTS[$tool]}
  med=$(printf '%s\n' $vals | median)
  min=$(printf '%s\n' $vals | sort -g | head -1)
  max=$(printf '%s\n' $vals | sort -g | tail -1)
  ratio=$(awk -v a="$med" -v b="$u_start" 'BEGIN { if (b !~ /^[0-9.]+$/ || b + 0 == 0) print "-"; else printf "%.2fx", a / b }')
  printf '%-12s %10.2f %10.2f %10.2f %12s %10s\n' "$( [[ $tool == true ]] && echo /bin/true || echo "$tool")" "$med" "$min" "$max" "$ratio" "${START_RC[$tool]}"
done
exit "$status"
