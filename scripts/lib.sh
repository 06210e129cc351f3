# shellcheck shell=bash
# Helpers shared by the scripts in this directory. Sourced, never run:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Everything here is plain bash plus curl, and ss when it is installed.

say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# The repository root, whatever directory the script was started from.
repo_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); }

is_root() { [ "$(id -u)" = 0 ]; }

# apt_install PKG...: installs Debian packages when we are root and apt-get
# exists (status 0 on success); otherwise prints the command to run and
# returns 1, so the caller decides whether that is fatal or a skip.
apt_install() {
  if is_root && command -v apt-get >/dev/null 2>&1; then
    say "installing: apt-get install -y $*"
    # A fresh container often has empty package lists: update once, retry.
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" \
      || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; }
  else
    say "missing: install it with: sudo apt-get install -y $*" >&2
    return 1
  fi
}

# port_taken PORT: status 0 (and prints who holds it) when something already
# listens on TCP PORT on any address. ss sees listeners on every address and,
# as root, names the process; the /dev/tcp connect is the fallback without ss.
port_taken() {
  local port=$1 line=""
  if command -v ss >/dev/null 2>&1; then
    line=$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 1) || line=""
  fi
  if [ -n "$line" ]; then
    # "LISTEN 0 128 0.0.0.0:8080 0.0.0.0:* users:(("nginx",pid=12,fd=6))"
    printf '%s\n' "$line" | awk '{ $1 = $2 = $3 = $5 = ""; sub(/^ +/, ""); gsub(/ +/, " "); print }'
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "127.0.0.1:$port"
    return 0
  fi
  return 1
}

# check_ports_free PORT...: status 1 after naming (on stderr) every port that
# is taken, so the caller can refuse before it starts anything.
check_ports_free() {
  local port who busy=0
  for port in "$@"; do
    if who=$(port_taken "$port"); then
      printf 'port %s is already in use: %s\n' "$port" "$who" >&2
      busy=1
    fi
  done
  return "$busy"
}

# wait_ready PID SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
# Status 1 when the deadline passes, 2 when PID exits first (no point waiting
# for a process that is gone).
wait_ready() {
  local pid=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    kill -0 "$pid" 2>/dev/null || return 2
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# http_health PORT: the target answers 200 on /_health.
http_health() { curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$1/_health"; }

# http_answers URL: anything answers HTTP at URL (any status, even 503).
http_answers() { curl -s -o /dev/null --max-time 2 "$1"; }

# log_says FILE TEXT: FILE contains TEXT (used for "listening on").
log_says() { grep -qF -- "$2" "$1" 2>/dev/null; }

# proc_start PID: when PID started, in seconds since the epoch (Linux /proc);
# prints nothing when it cannot tell. Used to recognise a pid that the kernel
# has since handed to another program.
proc_start() {
  local stat rest ticks btime hz
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  rest=${stat##*) }                            # fields 3.. (the name may hold spaces)
  ticks=$(awk '{ print $20 }' <<<"$rest")      # field 22: starttime, in clock ticks since boot
  btime=$(awk '/^btime/ { print $2 }' /proc/stat)
  hz=$(getconf CLK_TCK)
  [ -n "$ticks" ] && [ -n "$btime" ] && printf '%s\n' $((btime + ticks / hz))
}

# record_pid FILE PID: appends PID to FILE (one pid per line, nothing else, so
# that `kill $(cat FILE)` by hand stays safe).
record_pid() { printf '%s\n' "$2" >>"$1"; }

# stop_pids SIGNAL PID...: sends SIGNAL, waits up to 5 s, then SIGKILLs what is
# left. Only ever the pids it is given.
stop_pids() {
  local sig=$1 pid left deadline
  shift
  [ $# -gt 0 ] || return 0
  kill -s "$sig" "$@" 2>/dev/null || true
  deadline=$((SECONDS + 5))
  while :; do
    left=()
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    [ ${#left[@]} -gt 0 ] || return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "still running after 5 s, sending SIGKILL: ${left[*]}" >&2
      kill -s KILL "${left[@]}" 2>/dev/null || true
      return 0
    fi
    sleep 0.1
  done
}

# to_seconds DURATION: wrk-style duration (15, 15s, 2m, 1h) to whole seconds;
# status 1 for anything else.
to_seconds() {
  [[ $1 =~ ^([0-9]+)([smh]?)$ ]] || return 1
  local n=$((10#${BASH_REMATCH[1]}))
  case "${BASH_REMATCH[2]}" in
    h) printf '%s\n' $((n * 3600)) ;;
    m) printf '%s\n' $((n * 60)) ;;
    *) printf '%s\n' "$n" ;;
  esac
}

# kill_all PID...: stops these processes (those still running) and reaps them.
kill_all() {
  local p
  for p in "$@"; do
    if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true
}
