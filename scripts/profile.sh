#!/usr/bin/env bash
# CPU flamegraph of the load balancer under wrk load (`make pprof`).
#
#   DURATION=15s CONNS=64 THREADS=1 FREQ=499 scripts/profile.sh
#
# Starts its own four target-servers (127.0.0.1:19101-19104) and one balancer
# (--workers 1, 127.0.0.1:18180), so it never clashes with `make run-dev` or
# with ../shared/bench/compare.sh. It runs wrk against the balancer while
# `perf record` samples the balancer's threads, and turns the samples into
# profiling/flamegraph-<timestamp>.svg (inferno). Also kept, git-ignored:
# profiling/perf.data (latest run, for `perf report -i`) and
# profiling/flamegraph-<timestamp>.folded (for inferno-diff-folded).
#
# Call stacks: DWARF unwinding (--call-graph dwarf) on the ordinary release
# binary, because
#   - it profiles the very binary we ship and benchmark (fat LTO; `debug = 1`
#     in the release profile keeps the line tables that name inlined frames);
#   - glibc (the syscall wrappers on the io_uring path, malloc, memcpy) and,
#     on most toolchains, the prebuilt Rust std have no frame pointers, so even
#     a -Cforce-frame-pointers build drops or misattributes callers at those
#     frames, while their .eh_frame unwinds fine;
#   - it needs no second fat-LTO build.
# The cost is a bigger perf.data (perf copies 8 KiB of stack per sample: about
# 3-4 MB/s at 499 Hz on one busy worker) and a slower `perf script` (a few
# seconds for 15 s of samples). Checked on this balancer: complete stacks from
# the worker thread through load_balancer::proxy and monoio's driver into the
# kernel's io_uring and TCP frames.
# FRAME_POINTERS=1 instead builds into target/profiling with
# RUSTFLAGS=-Cforce-frame-pointers=yes and records with --call-graph fp:
# tiny perf.data, but callers go missing wherever libc or std sit in the stack.
#
# Inlined frames (INLINE=1, the default) come from the line tables via
# addr2line: with fat LTO most of the proxy is inlined into a few functions,
# so without them the graph is flat. Should that ever take longer than
# INLINE_TIMEOUT (120 s) we fall back to --no-inline. INLINE=0 skips it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(repo_root)"

DURATION=${DURATION:-15s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
FREQ=${FREQ:-499}
FRAME_POINTERS=${FRAME_POINTERS:-0}
INLINE=${INLINE:-1}
INLINE_TIMEOUT=${INLINE_TIMEOUT:-120}
LB_PORT=18180
TARGET_PORTS=(19101 19102 19103 19104)
OUT=profiling
STAMP=$(date +%Y%m%d-%H%M%S)
SVG=$OUT/flamegraph-$STAMP.svg
FOLDED=$OUT/flamegraph-$STAMP.folded
DATA=$OUT/perf.data

secs=$(to_seconds "$DURATION") || die "DURATION=$DURATION: expected e.g. 15s, 2m"
[ "$secs" -ge 2 ] || die "DURATION=$DURATION: too short to profile (2s at least)"

# ---- tools --------------------------------------------------------------
[ -d "$HOME/.cargo/bin" ] && PATH=$PATH:$HOME/.cargo/bin
command -v wrk >/dev/null 2>&1 || apt_install wrk || exit 1
command -v curl >/dev/null 2>&1 || apt_install curl || exit 1
if ! command -v perf >/dev/null 2>&1 || ! perf version >/dev/null 2>&1; then
  apt_install linux-perf || exit 1
fi
if ! command -v inferno-flamegraph >/dev/null 2>&1 || ! command -v inferno-collapse-perf >/dev/null 2>&1; then
  say "installing inferno (cargo install inferno; takes a few minutes, once)"
  cargo install inferno
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lb-profile.XXXXXX")

# Can we sample at all? Containers often forbid perf_event_open (seccomp, or no
# CAP_PERFMON), and perf_event_paranoid > 1 forbids it to non-root users.
if ! perf record -q -g -o "$WORK/probe.data" -- true >"$WORK/probe.log" 2>&1; then
  sed -n '1,12p' "$WORK/probe.log" >&2
  paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo '?')
  cat >&2 <<EOF

profile.sh: perf is not permitted here (kernel.perf_event_paranoid=$paranoid, uid $(id -u)).
Fix, then run make pprof again:
  - on a normal machine: sudo sysctl -w kernel.perf_event_paranoid=1
    (1: your own processes, kernel frames included; Debian kernels default to 3,
    which forbids perf to non-root users; put it in /etc/sysctl.d/ to keep it), or run as root;
  - in a container: start it with --cap-add PERFMON (or SYS_ADMIN) and a seccomp
    profile that allows perf_event_open (docker run --privileged does both), and set
    the sysctl on the host;
  - in a VM: perf falls back to the cpu-clock software event when there is no PMU; that is fine.
EOF
  rm -rf "$WORK"
  exit 1
fi

if ! is_root && [ "$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)" -gt 1 ]; then
  say "note: kernel.perf_event_paranoid > 1: user-space frames only, the kernel side of io_uring"
  say "      and TCP will be missing (sudo sysctl -w kernel.perf_event_paranoid=1 to see them;"
  say "      kernel.kptr_restrict=0 as well to get their names)"
fi

# ---- build --------------------------------------------------------------
if [ "$FRAME_POINTERS" = 1 ]; then
  say "building with frame pointers into target/profiling"
  RUSTFLAGS="${RUSTFLAGS:-} -Cforce-frame-pointers=yes" cargo build --release --target-dir target/profiling
  BIN=target/profiling/release
  CALLGRAPH=fp
else
  cargo build --release
  BIN=target/release
  CALLGRAPH=dwarf
fi
LB_BIN=${LB_BIN:-$BIN/load-balancer}
TARGET_BIN=${TARGET_BIN:-$BIN/target-server}
for bin in "$LB_BIN" "$TARGET_BIN"; do
  [ -x "$bin" ] || die "$bin not found after the build"
done

check_ports_free "$LB_PORT" "${TARGET_PORTS[@]}" || die "nothing was started"

# ---- processes, all cleaned up on exit -------------------------------------
PIDS=()     # targets and balancer
PERF_PID="" # stopped first, with SIGINT, so that it writes a complete file
WRK_PID=""
cleaned=0
cleanup() {
  [ "$cleaned" = 1 ] && return
  cleaned=1
  trap '' INT TERM
  [ -n "$WRK_PID" ] && stop_pids TERM "$WRK_PID"
  [ -n "$PERF_PID" ] && stop_pids INT "$PERF_PID"
  [ ${#PIDS[@]} -gt 0 ] && stop_pids TERM "${PIDS[@]}"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in "${TARGET_PORTS[@]}"; do
  "$TARGET_BIN" -p "$port" --name "prof-$port" --host 127.0.0.1 >"$WORK/target-$port.log" 2>&1 &
  PIDS+=("$!")
done
i=0
for port in "${TARGET_PORTS[@]}"; do
  wait_ready "${PIDS[$i]}" 15 http_health "$port" || {
    cat "$WORK/target-$port.log" >&2
    die "target-server on :$port did not become ready"
  }
  i=$((i + 1))
done

LB_ARGS=(-p "$LB_PORT" --bind 127.0.0.1 --workers 1)
for port in "${TARGET_PORTS[@]}"; do LB_ARGS+=(-b "127.0.0.1:$port"); done
"$LB_BIN" "${LB_ARGS[@]}" >"$WORK/lb.log" 2>&1 &
LB_PID=$!
PIDS+=("$LB_PID")
lb_ready() { log_says "$WORK/lb.log" "listening on" || http_answers "http://127.0.0.1:$LB_PORT/"; }
wait_ready "$LB_PID" 15 lb_ready || {
  cat "$WORK/lb.log" >&2
  die "load-balancer did not become ready"
}
# The health checks must have marked the targets up before load starts.
lb_serves() { curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$LB_PORT/"; }
wait_ready "$LB_PID" 15 lb_serves || {
  cat "$WORK/lb.log" >&2
  die "load-balancer did not answer 200 within 15s"
}
say "balancer pid $LB_PID: $LB_BIN ${LB_ARGS[*]}"

# ---- load + sampling ----------------------------------------------------
URL=http://127.0.0.1:$LB_PORT/
say "warm-up: 1s of wrk"
wrk -t"$THREADS" -c"$CONNS" -d1s "$URL" >/dev/null 2>&1 || true

mkdir -p "$OUT"
rm -f "$DATA" "$DATA.old"
say "perf record -F $FREQ -g --call-graph $CALLGRAPH -p $LB_PID, for the wrk run"
# Root may lock a bigger ring buffer, so that DWARF samples are not lost
# ("lost N chunks"); other users keep perf's default (perf_event_mlock_kb).
mmap=()
is_root && mmap=(--mmap-pages 16M)
perf record -F "$FREQ" -g --call-graph "$CALLGRAPH" "${mmap[@]}" -p "$LB_PID" -o "$DATA" >"$WORK/perf.log" 2>&1 &
PERF_PID=$!
# perf needs a moment to attach: wait until it has created its output file.
wait_ready "$PERF_PID" 10 test -s "$DATA" || {
  cat "$WORK/perf.log" >&2
  die "perf record did not start"
}

say "wrk -t$THREADS -c$CONNS -d$DURATION --latency $URL"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$URL" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
wait "$WRK_PID" || true
WRK_PID=""

stop_pids INT "$PERF_PID"
wait "$PERF_PID" 2>/dev/null || true
PERF_PID=""
grep -E 'Captured|lost|LOST' "$WORK/perf.log" || true

# ---- flamegraph -----------------------------------------------------------
say "perf script | inferno-collapse-perf | inferno-flamegraph"
collapse() { # TIMEOUT perf-script-flags... (TIMEOUT 0: none)
  local limit=$1
  shift
  timeout "$limit" perf script -i "$DATA" "$@" 2>"$WORK/script.err" | inferno-collapse-perf >"$FOLDED"
}
status=0
if [ "$INLINE" = 1 ]; then
  collapse "$INLINE_TIMEOUT" --inline || status=$?
  if [ "$status" = 124 ]; then
    say "inline resolution took over ${INLINE_TIMEOUT}s; falling back to --no-inline"
    status=0
    collapse 0 --no-inline || status=$?
  fi
else
  collapse 0 --no-inline || status=$?
fi
if [ "$status" != 0 ]; then
  cat "$WORK/script.err" >&2
  die "perf script | inferno-collapse-perf failed (status $status)"
fi
[ -s "$FOLDED" ] || {
  cat "$WORK/script.err" >&2
  die "no samples collected (see above)"
}
inferno-flamegraph --title "load-balancer, --workers 1, wrk -c$CONNS -d$DURATION ($STAMP)" <"$FOLDED" >"$SVG"

say ""
say "---- wrk summary ----"
cat "$WORK/wrk.out"
say ""
say "flamegraph: $SVG   (open it in a browser; click to zoom, Ctrl-F to search)"
say "also:       perf report --no-children -i $DATA   ·   $FOLDED (inferno-diff-folded)"
