#!/usr/bin/env bash
# What a flag costs in CPU per request: the same build run with and without
# it, in turns (so that the machine's drift hits every variant alike), each
# pinned to CPU 0 in front of four nginx backends on CPU 1 under the same wrk
# load. Prints every run and the mean per variant. FLAGS starting with
# @PATH run the binary at PATH instead of target/release/load-balancer (to
# compare two builds).
#
#   scripts/flag-cost.sh [--runs N] [--duration S] [--conns N] LABEL="FLAGS" [LABEL="FLAGS"...]
#   scripts/flag-cost.sh --runs 5 plain="" metrics="--admin 127.0.0.1:0"
#   scripts/flag-cost.sh --runs 5 now="" before="@/tmp/lb-before"
#
# Needs wrk and nginx (apt-get install -y wrk nginx-light).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUNS=5
DURATION=4
CONNS=64
VARIANTS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *=*) VARIANTS+=("$1"); shift ;;
    *) echo "flag-cost.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ ${#VARIANTS[@]} -gt 0 ] || { echo "flag-cost.sh: give at least one LABEL=\"FLAGS\" (try --help)" >&2; exit 2; }
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "flag-cost.sh: $tool missing (apt-get install -y wrk nginx-light)" >&2; exit 2; }
done
cargo build --release --quiet  # never measure a stale binary

PORTS=(19401 19402 19403 19404)
LB_PORT=18401
WORK=$(mktemp -d /tmp/flagcost.XXXXXX)
PIDS=()
cleanup() { kill_all "${PIDS[@]:-}"; rm -rf "$WORK"; }
trap cleanup EXIT

{
  echo "worker_processes 1; master_process off; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.err warn;"
  echo "events { worker_connections 4096; }"
  echo "http { access_log off; keepalive_requests 10000000; server {"
  for p in "${PORTS[@]}"; do echo "  listen 127.0.0.1:$p backlog=4096;"; done
  echo '  location = /_health { return 200 "ok"; }'
  echo '  location / { return 200 "xxxxxxxxxxxxxxxxxxxx"; } } }'
} > "$WORK/nginx.conf"
taskset -c 1 nginx -c "$WORK/nginx.conf" & PIDS+=("$!")

wait_port() { # port: poll until it answers, for at most 10 s
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$1/_health" && return 0; sleep 0.1; done
  echo "flag-cost.sh: nothing answers on port $1" >&2; return 1
}
wait_port "${PORTS[0]}"

BACKENDS=()
for p in "${PORTS[@]}"; do BACKENDS+=(-b "127.0.0.1:$p"); done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # user + system
TCK=$(getconf CLK_TCK)

printf '%-4s %-20s %12s %10s\n' run variant cpu_us/req req/s
for run in $(seq "$RUNS"); do
  for variant in "${VARIANTS[@]}"; do
    label=${variant%%=*}; flags=${variant#*=}; bin=target/release/load-balancer
    if [[ $flags == @* ]]; then bin=${flags%% *}; bin=${bin#@}; flags=${flags#@"$bin"}; fi
    # shellcheck disable=SC2086 # the flags are words on purpose
    taskset -c 0 "$bin" -p $LB_PORT --bind 127.0.0.1 "${BACKENDS[@]}" \
      --workers 1 $flags 2>"$WORK/lb.log" &
    lb=$!; PIDS+=("$lb")
    wait_port $LB_PORT
    taskset -c 1 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$LB_PORT/" >/dev/null
    t0=$(ticks $lb)
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$LB_PORT/" > "$WORK/wrk.out"
    t1=$(ticks $lb)
    kill $lb; wait $lb 2>/dev/null || true
    awk -v run="$run" -v label="$label" -v t=$((t1 - t0)) -v tck="$TCK" '
      /requests in/ {reqs=$1} /Requests\/sec/ {rps=$2}
      END { printf "%-4s %-20s %12.3f %10.0f\n", run, label, t/tck*1e6/reqs, rps }' "$WORK/wrk.out"
  done
done | tee "$WORK/runs"
echo
awk '{ s[$2] += $3; n[$2]++ } END { for (k in s) printf "mean %-15s %8.3f cpu_us/req over %d runs\n", k, s[k]/n[k], n[k] }' "$WORK/runs" | sort
printf 'command: scripts/flag-cost.sh --runs %s --duration %s --conns %s' "$RUNS" "$DURATION" "$CONNS"
printf ' %q' "${VARIANTS[@]}"
printf ' (%s, %s)\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(uname -r)"
