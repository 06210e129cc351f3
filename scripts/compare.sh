#!/usr/bin/env bash
# Side by side on loopback (`make compare`): our load-balancer, nginx and
# HAProxy, each in front of the same four backends and under the same wrk
# load, in one run. It prints one markdown table, ready for the README, and
# under it the command, the wrk load and the machine it was measured on.
#
#   scripts/compare.sh [--duration S] [--conns N] [--body BYTES] [--workers N]
#                      [--tls] [--new-conn] [--no-pin] [--only NAME[,NAME]]
#                      [--lb PATH]
#
#   --duration S      seconds of measured load per balancer (10; "10s" works too)
#   --conns N         wrk connections (64); wrk always runs one thread
#   --body BYTES      response body size (20); above 1 KiB the backends serve a file
#   --workers N       workers for every balancer (1): our --workers N, nginx
#                     worker_processes N, HAProxy nbthread N
#   --tls             every balancer serves HTTPS with one ECDSA P-256
#                     certificate made here with openssl (ours on --tls-port),
#                     and wrk speaks HTTPS; the backends stay plain HTTP
#   --new-conn        wrk sends Connection: close, so every request opens a
#                     new connection (with --tls, a full handshake)
#   --no-pin          leave scheduling to the kernel (no taskset)
#   --only NAMES      a comma-separated subset of: load-balancer, nginx, haproxy
#   --lb PATH         the balancer binary (target/release/load-balancer, built
#                     with cargo build --release when it is missing)
#
# It measures what ../shared/bench/compare.sh (the shared referee) measures,
# the same way, so that the two agree within noise. Per balancer: 2 s of wrk to
# warm up, then wrk -t1 -c CONNS -d DURATION --latency; the balancer's CPU time
# (utime + stime from /proc, all its threads and, for nginx with more than one
# worker, its worker processes too) is read just before and after that run, RSS
# after it. Pinned (the default), the balancers run on CPU 0 (CPUs 0..N-1 with
# --workers N) and the backends and wrk share CPU 1. Throughput then depends on
# the whole machine, while CPU µs/req is the balancer's own cost, which is the
# figure to compare. The `direct` row is wrk straight at one backend: the
# ceiling of this machine with no balancer in between.
#
# Needs wrk, nginx and HAProxy (Debian: wrk nginx-light haproxy) and curl;
# installs them when run as root, otherwise exits 2 saying what to install.
# Ports: backends 127.0.0.1:19201-19204, balancers 18280-18282, so it can run
# beside make run-dev, make pprof and the referee's own ports.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
bad_usage() { printf '%s: %s (see --help)\n' "${0##*/}" "$*" >&2; exit 2; }
is_count() { [[ $1 =~ ^[0-9]+$ ]] && [ "$((10#$1))" -ge "${2:-1}" ]; }

# The command as given, for the footer: a README table must say how to
# reproduce it. Quoted only where the shell needs it, so that it reads as typed.
COMMAND=scripts/compare.sh
for arg in "$@"; do
  if [[ $arg =~ ^[A-Za-z0-9_./,=:@%+-]+$ ]]; then COMMAND+=" $arg"; else COMMAND+=" $(printf '%q' "$arg")"; fi
done

DURATION=10
CONNS=64
BODY=20
WORKERS=1
PIN=1
TLS=0
NEWCONN=0
ONLY=load-balancer,nginx,haproxy
LB=""
while [ $# -gt 0 ]; do
  case $1 in
    --duration | --conns | --body | --workers | --only | --lb)
      [ $# -ge 2 ] || bad_usage "$1 needs a value"
      case $1 in
        --duration) DURATION=$(to_seconds "$2") || bad_usage "--duration $2: expected seconds, e.g. 10 or 10s" ;;
        --conns) CONNS=$2 ;;
        --body) BODY=$2 ;;
        --workers) WORKERS=$2 ;;
        --only) ONLY=$2 ;;
        --lb) LB=$2 ;;
      esac
      shift 2
      ;;
    --no-pin) PIN=0; shift ;;
    --tls) TLS=1; shift ;;
    --new-conn) NEWCONN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) bad_usage "unknown argument: $1" ;;
  esac
done
is_count "$DURATION" 1 || bad_usage "--duration must be at least 1 second"
is_count "$CONNS" 1 || bad_usage "--conns must be a whole number, at least 1"
is_count "$BODY" 0 || bad_usage "--body must be a whole number of bytes"
is_count "$WORKERS" 1 || bad_usage "--workers must be a whole number, at least 1"
DURATION=$((10#$DURATION)) CONNS=$((10#$CONNS)) BODY=$((10#$BODY)) WORKERS=$((10#$WORKERS))

# Always measured in this order, however --only lists them, so that runs with
# different subsets line up.
ALL=(load-balancer nginx haproxy)
IFS=, read -r -a names <<<"$ONLY"
for name in "${names[@]}"; do
  [[ " ${ALL[*]} " == *" $name "* ]] || bad_usage "--only: unknown balancer '$name' (${ALL[*]})"
done
SELECTED=()
for name in "${ALL[@]}"; do
  [[ ",$ONLY," == *",$name,"* ]] && SELECTED+=("$name")
done
[ ${#SELECTED[@]} -gt 0 ] || bad_usage "--only: name at least one balancer"
selected() { [[ " ${SELECTED[*]} " == *" $1 "* ]]; }

# A --lb given relative to where we were started must still name the same file
# once we are in the repository root.
[ -n "$LB" ] && LB=$(realpath -m -- "$LB")
cd "$(repo_root)"

# ---- tools ------------------------------------------------------------------
missing=()
tools=(wrk nginx haproxy curl)
[ "$TLS" = 1 ] && tools+=(openssl)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "missing: ${missing[*]}" >&2
  # lib.sh's apt_install says what to run when we are not root.
  apt_install wrk nginx-light haproxy curl openssl >&2 || exit 2
fi

if selected load-balancer; then
  if [ -z "$LB" ]; then
    LB=target/release/load-balancer
    if [ ! -x "$LB" ]; then
      say "no $LB yet: cargo build --release" >&2
      cargo build --release >&2
    fi
  fi
  [ -x "$LB" ] || die "--lb $LB: no such executable"
fi

# ---- pinning ----------------------------------------------------------------
# BAL_CPU and LOAD_CPU are command prefixes, not functions, so that $! is the
# pid of the program itself (taskset execs it). Empty with --no-pin.
NCPU=$(getconf _NPROCESSORS_ONLN)
NOTES=()
BAL_CPU=()
LOAD_CPU=()
if [ "$PIN" = 1 ] && [ "$NCPU" -lt 2 ]; then
  NOTES+=("only $NCPU CPU online: not pinned, everything shares it")
  PIN=0
fi
PIN_TEXT="not pinned"
if [ "$PIN" = 1 ]; then
  last=$((WORKERS < NCPU ? WORKERS - 1 : NCPU - 1))
  bal_cpus=0 on="CPU 0"
  [ "$last" -gt 0 ] && bal_cpus=0-$last on="CPUs 0-$last"
  BAL_CPU=(taskset -c "$bal_cpus")
  LOAD_CPU=(taskset -c 1)
  PIN_TEXT="balancers on $on, backends and wrk on CPU 1"
  if [ "$last" -ge 1 ]; then
    NOTES+=("with $WORKERS workers the balancers run on $on, so wrk and the backends (CPU 1) share cores with them: req/s and CPU µs/req include that contention")
  fi
  if [ "$WORKERS" -gt "$NCPU" ]; then
    NOTES+=("$WORKERS workers on $NCPU CPUs: some workers share a core")
  fi
fi

# ---- ports and files ----------------------------------------------------------
BACKEND_PORTS=(19201 19202 19203 19204)
declare -A PORT=([load-balancer]=18280 [nginx]=18281 [haproxy]=18282)
# With --tls, ours serves HTTPS on its port and plain HTTP (unused) here.
LB_PLAIN_PORT=18283
want_ports=("${BACKEND_PORTS[@]}")
[ "$TLS" = 1 ] && want_ports+=("$LB_PLAIN_PORT")
for name in "${SELECTED[@]}"; do want_ports+=("${PORT[$name]}"); done
check_ports_free "${want_ports[@]}" || die "nothing was started"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lb-compare.XXXXXX")
PIDS=()    # every long-lived process we start: stopped on exit
WRK_PID="" # the wrk of the moment, so that Ctrl-C does not leave it running
cleaned=0
cleanup() {
  [ "$cleaned" = 1 ] && return
  cleaned=1
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  [ -n "$WRK_PID" ] && stop_pids TERM "$WRK_PID"
  local pid alive=()
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
  [ ${#alive[@]} -gt 0 ] && stop_pids TERM "${alive[@]}"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --tls: one certificate for every balancer, and the lines that use it.
SCHEME=http NGINX_SSL="" HAPROXY_SSL=""
if [ "$TLS" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null || die "openssl could not make a certificate"
  cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/both.pem"
  SCHEME=https
  NGINX_SSL=" ssl; ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem"
  HAPROXY_SSL=" ssl crt $WORK/both.pem alpn http/1.1"
fi
WRK_EXTRA=()
[ "$NEWCONN" = 1 ] && WRK_EXTRA=(-H "Connection: close")

# One nginx, one worker, listening on all four backend ports: four backends
# for the balancers to spread over, at the cost of one core. Small bodies come
# from the config itself (`return`), larger ones from a file, as the referee
# does.
{
  cat <<EOF
worker_processes 1; master_process off; daemon off;
pid $WORK/backend.pid; error_log $WORK/backend.err warn;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 10000000;
  server {
EOF
  for port in "${BACKEND_PORTS[@]}"; do say "    listen 127.0.0.1:$port backlog=4096;"; done
  say '    location = /_health { return 200 "ok"; }'
  if [ "$BODY" -le 1024 ]; then
    say "    location / { return 200 \"$(head -c "$BODY" /dev/zero | tr '\0' x)\"; }"
  else
    mkdir "$WORK/www"
    head -c "$BODY" /dev/zero | tr '\0' x >"$WORK/www/body"
    say "    location / { default_type text/plain; root $WORK/www; try_files /body =404; }"
  fi
  say "  }"
  say "}"
} >"$WORK/backend.conf"

# nginx as a balancer: round robin over an upstream with a keep-alive pool.
# nginx ignores worker_processes when master_process is off, so one worker
# runs as a single process (as the referee runs it) and N workers under a
# master, whose workers we then find and measure too.
nginx_conf() {
  if [ "$WORKERS" = 1 ]; then
    say "worker_processes 1; master_process off; daemon off;"
  else
    say "worker_processes $WORKERS; master_process on; daemon off;"
  fi
  cat <<EOF
pid $WORK/nginx.pid; error_log $WORK/nginx.err warn;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 10000000;
  upstream pool {
EOF
  for port in "${BACKEND_PORTS[@]}"; do say "    server 127.0.0.1:$port max_fails=1 fail_timeout=2s;"; done
  cat <<EOF
    keepalive 512; keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${PORT[nginx]} backlog=4096${NGINX_SSL};
    location / {
      proxy_pass http://pool;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_next_upstream error timeout http_500;
    }
  }
}
EOF
}

# HAProxy: round robin, server connections reused across clients, active
# health checks, and retries on a failed connect or a 500 like ours.
haproxy_conf() {
  cat <<EOF
global
  nbthread $WORKERS
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  retries 2
  option redispatch
  retry-on conn-failure 500
frontend fe
  bind 127.0.0.1:${PORT[haproxy]}${HAPROXY_SSL}
  default_backend pool
backend pool
  balance roundrobin
  http-reuse always
  option httpchk GET /_health
EOF
  local i=0 port
  for port in "${BACKEND_PORTS[@]}"; do
    i=$((i + 1))
    say "  server s$i 127.0.0.1:$port check inter 1s"
  done
}

# ---- measuring ------------------------------------------------------------------
TCK=$(getconf CLK_TCK)

# cpu_ticks PID...: "user system" clock ticks, summed over the processes (each
# over all its threads). Fields 14 and 15 of /proc/PID/stat, counted after the
# ")" that ends the name, since a name may hold spaces.
cpu_ticks() {
  local pid stat rest user=0 sys=0 u s
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    rest=${stat##*) }
    read -r u s <<<"$(awk '{ print $12, $13 }' <<<"$rest")"
    user=$((user + u)) sys=$((sys + s))
  done
  say "$user $sys"
}

# rss_kb PID...: resident memory, summed (for nginx's master and workers the
# pages they share are counted in each).
rss_kb() {
  local pid kb total=0
  for pid in "$@"; do
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || kb=0
    total=$((total + ${kb:-0}))
  done
  say "$total"
}

# family PID: PID and its child processes (nginx's workers under the master).
family() { say "$1"; pgrep -P "$1" || true; }

# wrk_run OUT SECONDS URL: wrk on the load CPU, in the background so that the
# traps can stop it, and waited for.
wrk_run() {
  local out=$1 secs=$2 url=$3
  "${LOAD_CPU[@]}" wrk -t1 -c"$CONNS" -d"${secs}s" --latency "${WRK_EXTRA[@]}" "$url" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || true
  WRK_PID=""
}

# wrk_figures FILE: "req/s p50_ms p99_ms requests errors" from wrk's summary,
# nothing when there is no summary. Errors are non-2xx/3xx answers plus socket
# errors (connect, read, write, timeout).
wrk_figures() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /m$/) return v * 60000
      if (v ~ /s$/) return v * 1000
      return v + 0
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    / requests in / { reqs = $1 }
    $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx or 3xx responses:/ { errors += $NF }
    /Socket errors:/ { gsub(/,/, ""); for (i = 3; i < NF; i += 2) errors += $(i + 1) }
    END { if (reqs > 0) printf "%.0f %.3f %.3f %d %d\n", rps, p50, p99, reqs, errors }
  ' "$1"
}

ROWS=()

# serves PORT: the balancer answers 200 on / (so at least one backend is up).
serves() { curl -sfk -o /dev/null --max-time 1 "$SCHEME://127.0.0.1:$1/"; }

# nginx_workers_up PID: the master has forked all its workers.
nginx_workers_up() { [ "$(pgrep -c -P "$1" || true)" -ge "$WORKERS" ]; }

# measure NAME CMD...: starts the balancer NAME on its CPUs, warms it up,
# measures it under wrk, stops it and adds its row to ROWS.
measure() {
  local name=$1 port=${PORT[$1]} pid status
  shift
  say "== $name: $*" >&2
  "${BAL_CPU[@]}" "$@" >"$WORK/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  status=0
  wait_ready "$pid" 15 serves "$port" || status=$?
  if [ "$status" = 0 ] && [ "$name" = nginx ] && [ "$WORKERS" -gt 1 ]; then
    wait_ready "$pid" 15 nginx_workers_up "$pid" || status=$?
  fi
  if [ "$status" != 0 ]; then
    tail -n 5 "$WORK/$name.log" >&2 || true
    [ "$status" = 1 ] && say "$name did not answer 200 on :$port within 15 s" >&2
    [ "$status" = 2 ] && say "$name exited during start-up" >&2
    ROWS+=("| $name | did not start | | | | | | | |")
    stop_pids TERM "$pid"
    return
  fi
  # HAProxy checks every backend once a second, starting at random within the
  # first second; 1.5 s after the first 200 every balancer has finished its
  # first health round, so none marks a backend up or down during the run.
  # The referee waits the same, and we measure from the same state as it does.
  sleep 1.5
  wrk_run /dev/null 2 "$SCHEME://127.0.0.1:$port/"

  local pids user0 sys0 user1 sys1 rss figures
  mapfile -t pids < <(family "$pid")
  read -r user0 sys0 <<<"$(cpu_ticks "${pids[@]}")"
  wrk_run "$WORK/$name.wrk" "$DURATION" "$SCHEME://127.0.0.1:$port/"
  read -r user1 sys1 <<<"$(cpu_ticks "${pids[@]}")"
  rss=$(rss_kb "${pids[@]}")
  stop_pids TERM "$pid"

  figures=$(wrk_figures "$WORK/$name.wrk")
  if [ -z "$figures" ]; then
    cat "$WORK/$name.wrk" >&2
    ROWS+=("| $name | wrk failed | | | | | | | |")
    return
  fi
  ROWS+=("$(awk -v name="$name" -v ut=$((user1 - user0)) -v st=$((sys1 - sys0)) \
    -v tck="$TCK" -v rss="$rss" '{
      user = ut / tck * 1e6 / $4; sys = st / tck * 1e6 / $4
      printf "| %s | %d | %.3f | %.3f | %.2f | %.2f | %.2f | %.1f | %d |\n",
        name, $1, $2, $3, user + sys, user, sys, rss / 1024, $5
    }' <<<"$figures")")
}

# ---- the run --------------------------------------------------------------------
say "== backends: nginx on 127.0.0.1:${BACKEND_PORTS[0]}-${BACKEND_PORTS[3]}, $BODY-byte bodies" >&2
"${LOAD_CPU[@]}" nginx -c "$WORK/backend.conf" >"$WORK/backend.log" 2>&1 &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
for port in "${BACKEND_PORTS[@]}"; do
  wait_ready "$BACKEND_PID" 15 http_health "$port" || {
    cat "$WORK/backend.log" "$WORK/backend.err" >&2 2>/dev/null || true
    die "the backend nginx did not answer on :$port"
  }
done

for name in "${SELECTED[@]}"; do
  case $name in
    load-balancer)
      lb_args=(-p "${PORT[$name]}" --bind 127.0.0.1)
      if [ "$TLS" = 1 ]; then
        lb_args=(-p "$LB_PLAIN_PORT" --tls-port "${PORT[$name]}" --bind 127.0.0.1
          --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem")
      fi
      for port in "${BACKEND_PORTS[@]}"; do lb_args+=(-b "127.0.0.1:$port"); done
      measure load-balancer "$LB" "${lb_args[@]}" --workers "$WORKERS"
      ;;
    nginx)
      nginx_conf >"$WORK/nginx.conf"
      measure nginx nginx -c "$WORK/nginx.conf"
      ;;
    haproxy)
      haproxy_conf >"$WORK/haproxy.cfg"
      measure haproxy haproxy -f "$WORK/haproxy.cfg"
      ;;
  esac
done

# The ceiling: wrk straight at one backend, the two sharing CPU 1.
say "== direct: wrk at the backend on :${BACKEND_PORTS[0]}" >&2
wrk_run "$WORK/direct.wrk" "$DURATION" "http://127.0.0.1:${BACKEND_PORTS[0]}/"
if figures=$(wrk_figures "$WORK/direct.wrk") && [ -n "$figures" ]; then
  ROWS+=("$(awk '{ printf "| direct | %d | %.3f | %.3f | | | | | %d |\n", $1, $2, $3, $5 }' <<<"$figures")")
else
  ROWS+=("| direct | wrk failed | | | | | | | |")
fi

# ---- the table ----------------------------------------------------------------------
versions="nginx $(nginx -v 2>&1 | sed -n 's|.*nginx/\([^ ]*\).*|\1|p'), HAProxy $(haproxy -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p')"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ "$WORKERS" = 1 ] && per="1 worker each" || per="$WORKERS workers each"

say ""
say "| balancer | req/s | p50 ms | p99 ms | CPU µs/req | user µs | sys µs | RSS MB | errors |"
say "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
say ""
say "\`$COMMAND\`: wrk -t1 -c$CONNS -d${DURATION}s --latency (after 2 s of warm-up), $BODY-byte bodies, $per, $PIN_TEXT."
say "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $NCPU CPUs${cpu_model:+ ($cpu_model)}, $versions."
if [ "$TLS" = 1 ]; then
  NOTES+=("--tls: clients speak HTTPS to the balancers (ECDSA P-256, TLS 1.3 as wrk negotiates it); the backends and the direct row are plain HTTP")
fi
if [ "$NEWCONN" = 1 ]; then
  NOTES+=("--new-conn: every request opens a new connection (Connection: close), so 1e6 / CPU µs/req is connections (with --tls, full handshakes) per second of CPU")
fi
if [ "$WORKERS" -gt 1 ] && selected nginx; then
  NOTES+=("nginx runs a master and $WORKERS worker processes: its CPU is all of theirs, its RSS their sum")
fi
for note in "${NOTES[@]}"; do say "Note: $note."; done
