#!/usr/bin/env bash
# wrk against a running balancer (start one with `make run-dev`), in the
# foreground, with the latency distribution at the end.
#
#   URL=http://127.0.0.1:8080/ DURATION=30s CONNECTIONS=64 THREADS=2 scripts/loadtest.sh [extra wrk flags]
#   make loadtest DURATION=30s CONNECTIONS=64 THREADS=2      (the same, through make)
#
# CONNS is the older name of CONNECTIONS and still works; when both are set,
# CONNECTIONS wins.
# The wrk pid goes to .run/wrk.pid; `make kill-loadtest` (another terminal)
# stops that wrk and only it. Ctrl-C here stops it too; either way wrk still
# prints its summary.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(repo_root)"

URL=${URL:-http://127.0.0.1:8080/}
DURATION=${DURATION:-30s}
CONNS=${CONNECTIONS:-${CONNS:-64}}
THREADS=${THREADS:-2}
PIDFILE=.run/wrk.pid

if ! command -v wrk >/dev/null 2>&1; then
  apt_install wrk || exit 1
fi

if ! http_answers "$URL"; then
  die "nothing answers at $URL: start it first with make run-dev (or set URL=...)"
fi

mkdir -p .run
if [ -f "$PIDFILE" ] && kill -0 "$(head -n 1 "$PIDFILE")" 2>/dev/null; then
  say "note: another loadtest may be running (pid $(head -n 1 "$PIDFILE")); both will share the balancer" >&2
fi

cmd=(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$URL")
say "${cmd[*]}"
"${cmd[@]}" &
WRK_PID=$!
printf '%s\n' "$WRK_PID" >"$PIDFILE"

# wrk handles SIGINT itself (stops, prints the summary); pass ours on to it and
# keep waiting so that the summary is printed before we exit.
trap 'kill -s INT "$WRK_PID" 2>/dev/null || true' INT TERM
status=0
while :; do
  wait "$WRK_PID" && status=0 || status=$?
  kill -0 "$WRK_PID" 2>/dev/null || break
done
# Remove the pid file only if it is still ours (a second loadtest may own it).
[ "$(head -n 1 "$PIDFILE" 2>/dev/null)" = "$WRK_PID" ] && rm -f "$PIDFILE"
exit "$status"
