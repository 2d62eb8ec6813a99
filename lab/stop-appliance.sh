#!/usr/bin/env bash
# Stop the processes listed (one pid a line) in an appliance pid file, then
# remove it: SIGTERM, up to 10 s of grace, then SIGKILL. No pid file: nothing to do.
# A process run under restartd is stopped through its own pid file (see below).
#
#   lab/stop-appliance.sh /run/acm-lab/acm/appliance.pid
set -euo pipefail

PIDFILE=${1:?usage: lab/stop-appliance.sh PIDFILE}
[ -e "$PIDFILE" ] || { echo "appliance: not running (no $PIDFILE)"; exit 0; }

# kill -0 is not enough: a zombie (not reaped by an init that ignores orphans) passes it.
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st:0:1}" != Z ]; }

# A supervisor line "PID restartd CHILD_PIDFILE": stop the supervised process first. It exits
# 0, which restartd does not restart, and restartd then ends by itself; its state (kept
# sockets, the state region) goes with it.
while read -r pid name child _; do
  [[ $pid =~ ^[0-9]+$ ]] && [ "$name" = restartd ] && alive "$pid" || continue
  cpid=$(cat "$child" 2>/dev/null || true)
  [[ $cpid =~ ^[0-9]+$ ]] && alive "$cpid" && kill -TERM "$cpid" 2>/dev/null || true
  for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
done < "$PIDFILE"

pids=()
while read -r pid _; do
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && pids+=("$pid")
done < "$PIDFILE"

# Stop in reverse start order (the dataplane last, so flows drain behind the control plane).
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
for _ in $(seq 100); do
  left=0
  for pid in "${pids[@]}"; do alive "$pid" && left=1; done
  [ "$left" = 0 ] && break
  sleep 0.1
done
for pid in "${pids[@]}"; do
  if alive "$pid"; then
    echo "appliance: pid $pid ignored SIGTERM for 10 s; killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
done
rm -f "$PIDFILE"
echo "appliance: stopped ${#pids[@]} process(es)"
