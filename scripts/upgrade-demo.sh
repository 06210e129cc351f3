#!/usr/bin/env bash
# Upgrades under load (`make upgrade-demo`): wrk drives a balancer in front
# of two demo targets while the balancer upgrades itself three times (each
# successor started with --upgrade-from on the socket its predecessor offers
# with --upgrade-socket). Prints each upgrade and wrk's summary: expect no
# non-2xx answers and no socket errors.
#
#   scripts/upgrade-demo.sh [--duration S] [--conns N] [--lb PATH]
#
# Ports: targets 127.0.0.1:19501-19502, balancer 18580. Needs wrk (Debian:
# wrk) and curl; installs them when run as root.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=12
CONNS=64
LB=""
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$(to_seconds "$2") || die "--duration $2: expected seconds"; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --lb) LB=$(realpath -m -- "$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
cd "$(repo_root)"
for tool in wrk curl; do
  command -v "$tool" >/dev/null 2>&1 || apt_install wrk curl >&2 || exit 2
done
if [ -z "$LB" ]; then
  LB=target/release/load-balancer
  cargo build --release --quiet >&2  # never run a stale binary
fi
TARGET=$(dirname "$LB")/target-server
check_ports_free 19501 19502 18580 || die "nothing was started"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lb-upgrade.XXXXXX")
SOCK=$WORK/upgrade.sock
PIDS=()
cleanup() {
  local alive=() pid
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
  [ ${#alive[@]} -gt 0 ] && stop_pids TERM "${alive[@]}"
  rm -rf "$WORK"
}
trap cleanup EXIT

for port in 19501 19502; do
  "$TARGET" -p "$port" --name "t$port" >"$WORK/t$port.log" 2>&1 &
  PIDS+=($!)
done
for port in 19501 19502; do wait_ready "${PIDS[0]}" 10 http_health "$port" || die "target $port did not start"; done

# generation N [--upgrade-from]: starts a balancer, waits for its start-up line.
generation() {
  local n=$1
  shift
  "$LB" -p 18580 --bind 127.0.0.1 -b 127.0.0.1:19501 -b 127.0.0.1:19502 \
    --upgrade-socket "$SOCK" "$@" >"$WORK/lb$n.log" 2>&1 &
  PIDS+=($!)
  local pid=$!
  wait_ready "$pid" 30 log_says "$WORK/lb$n.log" "listening on" || { cat "$WORK/lb$n.log" >&2; die "generation $n did not start"; }
  say "generation $n (pid $pid): $(grep -o 'listening on [^ ]*.*' "$WORK/lb$n.log" | head -1 | cut -c1-100)..."
  LAST=$pid
}

generation 0
wrk -t2 -c"$CONNS" -d"${DURATION}s" http://127.0.0.1:18580/ >"$WORK/wrk.txt" 2>&1 &
WRK=$!
step=$((DURATION / 4))
for n in 1 2 3; do
  sleep "$step"
  old=$LAST
  generation "$n" --upgrade-from "$SOCK"
  wait_ready "$LAST" 30 bash -c "! kill -0 $old 2>/dev/null" || die "generation $((n - 1)) did not exit"
  say "generation $((n - 1)) (pid $old) drained and exited"
done
wait "$WRK" || true
say ""
cat "$WORK/wrk.txt"
if grep -qE "Non-2xx|Socket errors" "$WORK/wrk.txt"; then
  say "" && say "FAILED: some requests failed (above)"
  exit 1
fi
say "" && say "no failed request, no socket error across 3 upgrades"
