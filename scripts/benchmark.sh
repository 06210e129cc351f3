#!/usr/bin/env bash
# `make benchmark`: the criterion micro-benchmarks (benches/), then, when the
# shared harness is there, the side-by-side comparison with nginx and HAProxy
# (../shared/bench/compare.sh) on the release build.
#
#   DURATION=10s CONNS=64 scripts/benchmark.sh [extra cargo bench args]
#
# DURATION (seconds, "10" or "10s") and CONNS pass through to compare.sh.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(repo_root)"

COMPARE=../shared/bench/compare.sh

say "== cargo bench"
cargo bench "$@"

if [ ! -f "$COMPARE" ]; then
  say "== no $COMPARE: skipping the side-by-side comparison"
  exit 0
fi

say "== side-by-side comparison ($COMPARE)"
missing=()
for tool in wrk nginx haproxy; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "missing: ${missing[*]}"
  if ! apt_install wrk nginx-light haproxy; then
    say "skipping the comparison until they are installed"
    exit 0
  fi
fi

cargo build --release

args=(--lb target/release/load-balancer)
if [ -n "${DURATION:-}" ]; then
  secs=$(to_seconds "$DURATION") || die "DURATION=$DURATION: expected seconds, e.g. 10 or 10s"
  args+=(--duration "$secs")
fi
[ -n "${CONNS:-}" ] && args+=(--conns "$CONNS")
bash "$COMPARE" "${args[@]}"
