#!/usr/bin/env bash
# Stops exactly the processes listed in a pid file written by one of our
# scripts, then removes the file. Never matches processes by name.
#
#   scripts/stop-pids.sh FILE [SIGNAL]      (SIGNAL defaults to TERM)
#
# `make kill` uses it on .run/dev.pids and `make kill-loadtest` on
# .run/wrk.pid (with INT, so wrk still prints its summary). A pid whose
# process started after the file was last written belongs to some other
# program by now (the kernel reuses pids) and is left alone.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

file=${1:?usage: stop-pids.sh FILE [SIGNAL]}
sig=${2:-TERM}

if [ ! -f "$file" ]; then
  say "nothing to stop: no $file"
  exit 0
fi

written=$(stat -c %Y "$file" 2>/dev/null || date +%s)
ours=()
while read -r pid _; do
  [[ $pid =~ ^[0-9]+$ ]] || continue
  kill -0 "$pid" 2>/dev/null || continue # already gone
  started=$(proc_start "$pid")
  # +2 s: btime and the file's mtime are both rounded to whole seconds.
  if [ -n "$started" ] && [ "$started" -gt $((written + 2)) ]; then
    say "pid $pid now belongs to another program (started after $file was written); leaving it alone"
    continue
  fi
  ours+=("$pid")
done <"$file"

if [ ${#ours[@]} -eq 0 ]; then
  say "nothing to stop: none of the processes in $file is still running"
else
  say "stopping ${#ours[@]} process(es) from $file: ${ours[*]}"
  stop_pids "$sig" "${ours[@]}"
fi
rm -f "$file"
