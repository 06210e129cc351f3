#!/usr/bin/env bash
# Local playground: ten target-servers on 127.0.0.1:9000-9009 (target-9000 ..
# target-9009) and the load balancer on :8080 in front of all ten, in the
# foreground with the balancer's log on this terminal.
#
#   scripts/run-dev.sh [extra load-balancer flags, e.g. --workers 4]
#   (make run-dev LB_ARGS="--workers 4" builds first, then runs this)
#
# Ctrl-C stops everything this script started, and nothing else. The pids go
# to .run/dev.pids so that `make kill` from another terminal can do the same.
# LB_BIN and TARGET_BIN override the binaries (default target/release/...).
# shellcheck disable=SC2317 # cleanup and lb_ready are called from trap and wait_ready
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(repo_root)"

LB_BIN=${LB_BIN:-target/release/load-balancer}
TARGET_BIN=${TARGET_BIN:-target/release/target-server}
LB_PORT=8080
TARGET_PORTS=(9000 9001 9002 9003 9004 9005 9006 9007 9008 9009)
RUN=.run
PIDFILE=$RUN/dev.pids
READY_SECS=15 # deadline for each process to become ready

for bin in "$LB_BIN" "$TARGET_BIN"; do
  [ -x "$bin" ] || die "$bin not found: build it first (make build, or make run-dev)"
done

# Refuse before starting anything, naming the ports that are taken.
if ! check_ports_free "$LB_PORT" "${TARGET_PORTS[@]}"; then
  [ -f "$PIDFILE" ] && say "an earlier run-dev may still be running: 'make kill' stops it" >&2
  die "nothing was started"
fi

mkdir -p "$RUN"
: >"$PIDFILE"
PIDS=()
LB_PID=""

cleaned=0
cleanup() {
  [ "$cleaned" = 1 ] && return
  cleaned=1
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  local pid alive=()
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
  if [ ${#alive[@]} -gt 0 ]; then
    say "run-dev: stopping ${#alive[@]} process(es): ${alive[*]}" >&2
    stop_pids TERM "${alive[@]}"
  fi
  rm -f "$PIDFILE"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start LOG CMD...: starts CMD in the background with stdout and stderr to
# LOG, and records its pid at once (make kill works even mid-start-up).
start() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  PIDS+=("$!")
  record_pid "$PIDFILE" "$!"
}

say "starting ${#TARGET_PORTS[@]} target-servers (logs: $RUN/target-PORT.log)"
for port in "${TARGET_PORTS[@]}"; do
  start "$RUN/target-$port.log" \
    "$TARGET_BIN" -p "$port" --name "target-$port" --host 127.0.0.1
done
i=0
for port in "${TARGET_PORTS[@]}"; do
  status=0
  wait_ready "${PIDS[$i]}" "$READY_SECS" http_health "$port" || status=$?
  case $status in
    0) say "  target-$port  http://127.0.0.1:$port/  log $RUN/target-$port.log" ;;
    1) die "target-$port did not answer /_health within ${READY_SECS}s (see $RUN/target-$port.log)" ;;
    *) tail -n 5 "$RUN/target-$port.log" >&2 || true
       die "target-$port exited during start-up (log: $RUN/target-$port.log)" ;;
  esac
  i=$((i + 1))
done

LB_ARGS=(-p "$LB_PORT")
for port in "${TARGET_PORTS[@]}"; do LB_ARGS+=(-b "127.0.0.1:$port"); done
LB_ARGS+=("$@")
say "starting: $LB_BIN ${LB_ARGS[*]}"
say "---- load-balancer log (also in $RUN/balancer.log) ----"
# The log goes to this terminal and to a file we can poll for "listening on";
# with the process substitution $! is still the balancer's own pid. Empty the
# file first: tee opens it asynchronously, and the last run's "listening on"
# must not count as this run's.
: >"$RUN/balancer.log"
"$LB_BIN" "${LB_ARGS[@]}" 2> >(tee "$RUN/balancer.log" >&2) &
LB_PID=$!
PIDS+=("$LB_PID")
record_pid "$PIDFILE" "$LB_PID"

lb_ready() { log_says "$RUN/balancer.log" "listening on" || http_answers "http://127.0.0.1:$LB_PORT/_health"; }
status=0
wait_ready "$LB_PID" "$READY_SECS" lb_ready || status=$?
case $status in
  0) ;;
  1) die "load-balancer did not start listening on :$LB_PORT within ${READY_SECS}s" ;;
  *) die "load-balancer exited during start-up (its log is above)" ;;
esac

cat <<EOF

Ready: http://127.0.0.1:$LB_PORT/ balances over target-9000 .. target-9009.
Watch it from another terminal:
  curl -s "localhost:$LB_PORT/[1-10]"           # ten requests on one connection: round robin over the targets
                                              # (each worker has its own cursor; one connection stays on one worker)
  curl -s localhost:9003/_control/fail        # target-9003 answers 500: the balancer retries elsewhere, marks it degraded
  curl -s localhost:9003/_control/unhealthy   # its /_health fails: the health checks take it out of rotation
  curl -s localhost:9003/_control/healthy; curl -s localhost:9003/_control/ok   # bring it back
  curl -s localhost:9003/_control             # show its state (also /_control/delay/300ms)
  make loadtest                               # wrk against the balancer
Stop: Ctrl-C here, or 'make kill' from another terminal.

EOF

# Foreground until the balancer exits (Ctrl-C, make kill, or a crash).
status=0
wait "$LB_PID" || status=$?
if [ "$status" = 143 ]; then
  say "run-dev: load-balancer stopped by SIGTERM (make kill?)" >&2
  exit 0
fi
say "run-dev: load-balancer exited with status $status" >&2
exit "$status"
