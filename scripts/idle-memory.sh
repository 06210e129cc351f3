#!/usr/bin/env bash
# Resident memory per idle keep-alive client connection, for our balancer and
# for nginx, in one run: each in front of the same backend, each given CONNS
# connections that have made one request and now wait (measured with
# ../shared/bench/idle_conns.py, which reads VmRSS before and after).
#
#   scripts/idle-memory.sh [--conns N]     (default 10000)
#
# Needs nginx (apt-get install -y nginx-light) and python3; the file
# descriptor limit must allow N connections on each side (ulimit -n).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

CONNS=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) CONNS=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "idle-memory.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

IDLE=../shared/bench/idle_conns.py
[ -f "$IDLE" ] || { echo "idle-memory.sh: $IDLE not found" >&2; exit 2; }
command -v nginx >/dev/null || { echo "idle-memory.sh: nginx missing (apt-get install -y nginx-light)" >&2; exit 2; }
if [ "$(ulimit -n)" -lt $((CONNS + 100)) ]; then
  ulimit -n $((CONNS + 100)) 2>/dev/null || {
    echo "idle-memory.sh: ulimit -n is $(ulimit -n); raise it above $CONNS" >&2; exit 2; }
fi
cargo build --release --quiet  # never measure a stale binary

BACKEND_PORT=19301 LB_PORT=18301 NGINX_PORT=18302
WORK=$(mktemp -d /tmp/idlemem.XXXXXX)
PIDS=()
cleanup() { kill_all "${PIDS[@]:-}"; rm -rf "$WORK"; }
trap cleanup EXIT

cat > "$WORK/backend.conf" <<EOF
worker_processes 1; master_process off; daemon off; pid $WORK/backend.pid; error_log $WORK/backend.err warn;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$BACKEND_PORT;
  location = /_health { return 200 "ok"; }
  location / { return 200 "xxxxxxxxxxxxxxxxxxxx"; } } }
EOF
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1; master_process off; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.err warn;
worker_rlimit_nofile $((CONNS + 1000));
events { worker_connections $((CONNS + 1000)); }
http { access_log off; keepalive_timeout 75s; keepalive_requests 10000000;
  upstream pool { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_PORT backlog=4096; location / {
    proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF

wait_port() { # port: poll until it answers, for at most 10 s
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done
  echo "idle-memory.sh: nothing answers on port $1" >&2; return 1
}

nginx -c "$WORK/backend.conf" & PIDS+=("$!")
wait_port $BACKEND_PORT

measure() { # name pid port
  local out
  out=$(python3 "$IDLE" --pid "$2" --port "$3" --conns "$CONNS")
  printf '%-14s %s\n' "$1" "$out"
}

target/release/load-balancer -p $LB_PORT --bind 127.0.0.1 -b 127.0.0.1:$BACKEND_PORT --workers 1 2>"$WORK/lb.log" &
LB=$!; PIDS+=("$LB")
wait_port $LB_PORT
measure load-balancer $LB $LB_PORT
kill $LB

nginx -c "$WORK/nginx.conf" & NGINX=$!; PIDS+=("$NGINX")
wait_port $NGINX_PORT
measure nginx $NGINX $NGINX_PORT
echo "command: scripts/idle-memory.sh --conns $CONNS ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r))"
