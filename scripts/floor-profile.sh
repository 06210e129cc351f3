#!/usr/bin/env bash
# Where our CPU per request goes, beside the relay floor's (`make floor-profile`).
#
#   CONNS=1000 ROUNDS=3 DURATION=5s scripts/floor-profile.sh
#
# Runs ../shared/bench/relay.c (a bare epoll TCP relay, the referee's
# relay-floor row) and our balancer (--workers 1) in turns, each pinned to
# CPU 0 in front of the same four target-servers, with `wrk -t1 -c$CONNS` on
# CPU 1. For each run it samples the relay's or the balancer's threads with
# `perf record -F 1999` (no call graphs: the flat self time of each symbol)
# and reads its CPU time from /proc, then sorts the symbols into a few kinds
# of work and prints µs per request for each kind, median of ROUNDS runs:
#
#   net      the TCP/IP stack, send and receive (on loopback the receiving
#            side's softirq runs in the sender's context: the balancer pays
#            for its peers' receives too)
#   wakeups  lock releases with interrupts off: mostly waking the process
#            at the other end of a socket (sock_def_readable)
#   ring     io_uring's own machinery (ours) / epoll's (the floor's)
#   files    the file lookups each operation makes (fget, fput)
#   entry    system-call entry and exit
#   sched    the process's own sleeps and wakeups
#   mem      slab and page allocation
#   user     the process's own code and libc
#   other    the rest of the kernel
#
# perf itself adds a few percent to both rows; compare the two within a run.
# Ports: targets 19301-19304, the relay and the balancer 18380.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(repo_root)"

CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
DURATION=$(to_seconds "${DURATION:-5s}") || die "DURATION=$DURATION: expected e.g. 5s"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS=$ROUNDS: expected a whole number"
PORT=18380
TARGET_PORTS=(19301 19302 19303 19304)
RELAY_C=../shared/bench/relay.c

command -v wrk >/dev/null 2>&1 || apt_install wrk || exit 1
command -v curl >/dev/null 2>&1 || apt_install curl || exit 1
if ! command -v perf >/dev/null 2>&1 || ! perf version >/dev/null 2>&1; then
  apt_install linux-perf || exit 1
fi
[ -f "$RELAY_C" ] || die "$RELAY_C not found (the shared referee's relay)"
command -v cc >/dev/null 2>&1 || die "no C compiler for $RELAY_C (apt-get install -y gcc)"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs (the balancer on CPU 0, targets and wrk on CPU 1)"
check_ports_free "$PORT" "${TARGET_PORTS[@]}" || die "nothing was started"

cargo build --release --quiet
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lb-floor-profile.XXXXXX")
cc -O2 -o "$WORK/relay" "$RELAY_C"

# The kinds are mostly kernel work: perf must be allowed to sample the
# kernel side of our own processes.
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)
if ! perf record -q -o "$WORK/probe.data" -- true >/dev/null 2>&1; then
  rm -rf "$WORK"
  die "perf is not permitted here (kernel.perf_event_paranoid=$paranoid); scripts/profile.sh explains the fixes"
fi
if ! is_root && [ "$paranoid" -gt 1 ]; then
  rm -rf "$WORK"
  die "kernel.perf_event_paranoid=$paranoid hides kernel samples (sudo sysctl -w kernel.perf_event_paranoid=1)"
fi

PIDS=()
RUN_PID=""
cleanup() {
  [ -n "$RUN_PID" ] && stop_pids TERM "$RUN_PID"
  [ ${#PIDS[@]} -gt 0 ] && stop_pids TERM "${PIDS[@]}"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BACKENDS=()
for port in "${TARGET_PORTS[@]}"; do
  taskset -c 1 target/release/target-server -p "$port" >"$WORK/target-$port.log" 2>&1 &
  PIDS+=("$!")
  BACKENDS+=("127.0.0.1:$port")
done
i=0
for port in "${TARGET_PORTS[@]}"; do
  wait_ready "${PIDS[$i]}" 15 http_health "$port" || die "target-server on :$port did not start"
  i=$((i + 1))
done

LB_ARGS=(-p "$PORT" --bind 127.0.0.1 --workers 1)
for b in "${BACKENDS[@]}"; do LB_ARGS+=(-b "$b"); done
RELAY_BACKENDS=$(IFS=,; echo "${BACKENDS[*]}")
URL=http://127.0.0.1:$PORT/
TCK=$(getconf CLK_TCK)

# The kind of work a kernel symbol does (see the header).
KINDS='
function kind(dso, s) {
  if (dso == "[.]") return "user"
  if (s ~ /^(io_|__io_|io_uring)|^(ep_|__ep_|do_epoll|epoll)/) return "ring"
  if (s ~ /^(fget|fput|__fget|__fput|fdget|__fdget)/) return "files"
  if (s ~ /_raw_spin_unlock_irq/) return "wakeups"
  if (s ~ /(finish_task_switch|__schedule|schedule|pick_next|dequeue_|enqueue_|update_curr|psi_)/) return "sched"
  if (s ~ /(tcp|skb|inet|^ip_|__ip_|sock|net_|napi|softirq|dev_|loopback|bbr|^sk_|__sk_|copy_(to|from)_iter|datagram)/) return "net"
  if (s ~ /(syscall|^entry_|x64_sys|exit_to_user)/) return "entry"
  if (s ~ /(slab|kmem|kfree|alloc|page)/) return "mem"
  return "other"
}'

# run NAME CMD...: one measured run; appends "NAME KIND US_PER_REQ" lines.
run() {
  local name=$1; shift
  taskset -c 0 "$@" >"$WORK/$name.log" 2>&1 &
  RUN_PID=$!
  wait_ready "$RUN_PID" 15 curl -sf -o /dev/null --max-time 1 "$URL" || {
    cat "$WORK/$name.log" >&2
    die "$name did not answer on :$PORT"
  }
  taskset -c 1 wrk -t1 -c"$CONNS" -d2 "$URL" >/dev/null 2>&1 || true
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$((DURATION + 2))" "$URL" >"$WORK/wrk.out" 2>&1 &
  local wrk_pid=$!
  sleep 1
  local t0 t1
  t0=$(awk '{print $14 + $15}' "/proc/$RUN_PID/stat")
  perf record -q -F 1999 -p "$RUN_PID" -o "$WORK/perf.data" -- sleep "$DURATION" >/dev/null 2>&1
  t1=$(awk '{print $14 + $15}' "/proc/$RUN_PID/stat")
  wait "$wrk_pid" || true
  stop_pids TERM "$RUN_PID"
  RUN_PID=""
  local rate
  rate=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  [ -n "$rate" ] || die "wrk gave no rate for $name"
  local us_per_req
  us_per_req=$(awk -v a="$t0" -v b="$t1" -v r="$rate" -v d="$DURATION" -v t="$TCK" \
    'BEGIN { printf "%.3f", (b - a) / t * 1e6 / (r * d) }')
  perf report -i "$WORK/perf.data" --no-children --sort sym 2>/dev/null |
    awk -v name="$name" -v total="$us_per_req" "$KINDS"'
      /^ +[0-9.]+%/ { p = $1; sub("%", "", p); share[kind($2, $3)] += p }
      END { for (k in share) printf "%s %s %.3f\n", name, k, share[k] * total / 100
            printf "%s total %s\n", name, total }' >>"$WORK/rows"
}

say "relay-floor and load-balancer, $ROUNDS rounds each, wrk -t1 -c$CONNS, ${DURATION}s sampled"
for round in $(seq "$ROUNDS"); do
  say "  round $round"
  run relay-floor "$WORK/relay" "$PORT" "$RELAY_BACKENDS"
  run load-balancer target/release/load-balancer "${LB_ARGS[@]}"
done

# Medians per name and kind, as a table: kind, floor, ours, ours - floor.
awk '
  { v[$1 SUBSEP $2] = v[$1 SUBSEP $2] " " $3; kinds[$2] = 1 }
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return 0
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    printf "%-8s %12s %14s %10s\n", "work", "relay-floor", "load-balancer", "difference"
    split("net wakeups ring files entry sched mem user other total", order, " ")
    for (i = 1; i <= 10; i++) {
      k = order[i]
      f = median(v["relay-floor" SUBSEP k]); o = median(v["load-balancer" SUBSEP k])
      printf "%-8s %12.2f %14.2f %+10.2f\n", k, f, o, o - f
    }
  }' "$WORK/rows"
say "(µs of CPU per request, median of $ROUNDS runs each; perf adds a few percent to both)"
