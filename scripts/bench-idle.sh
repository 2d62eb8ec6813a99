#!/usr/bin/env bash
# Adaptive polling against busy polling, in the lab (lab/lab.sh): the dataplane alone on the lab's
# ports (VIP 10.0.0.100:80 -> rs1..rs3 through dpctl, no control plane, so no health checks:
# nothing reaches the dataplane between the probes), once per `[dataplane] idle` mode. For each:
#
#   idle CPU      utime+stime of the dataplane process over IDLE_CPU_S seconds of no traffic,
#                 from /proc/<pid>/stat, in % of one core (its worker and main lcore together)
#   first packet  IDLE_SAMPLES times, after IDLE_GAP_S seconds of no traffic: the RTT of one ping
#                 of the VIP from the client netns (answered by the dataplane), and in a second
#                 series the connect time of a TCP connection through the VIP (curl
#                 time_connect; the SYN/SYN-ACK cross the dataplane twice); p50 / p99 / max
#   config ack    after the same idle gap: a binding removed and added again through dpctl, the
#                 switch's receipt-to-acknowledgement time (every worker adopted the generation)
#   wrk           wrk -t2 -c64 -d10s through the VIP: requests/s, latency p50 / p99
#
# Modes alternate (busy, adaptive, busy, adaptive with IDLE_ROUNDS=2) to share the machine's drift.
# The machine's load (uptime) is printed beside each mode's figures.
#
# Environment:
#   IDLE_LAB=idlebench   lab prefix (brought up if absent, left up: lab/lab.sh down IDLE_LAB)
#   IDLE_MODES="busy adaptive"  IDLE_ROUNDS=1  IDLE_SAMPLES=40  IDLE_GAP_S=1  IDLE_CPU_S=10
#   IDLE_MAX_SLEEP_US=1000   idle_max_sleep_us of the adaptive runs
#   IDLE_OUT=target/bench-idle   report.md goes here
#   CARGO_TARGET_DIR     where the release binaries are (default ./target)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
P=${IDLE_LAB:-idlebench}
MODES=${IDLE_MODES:-busy adaptive}
ROUNDS=${IDLE_ROUNDS:-1}
SAMPLES=${IDLE_SAMPLES:-40}
GAP=${IDLE_GAP_S:-1}
CPU_S=${IDLE_CPU_S:-10}
MAX_SLEEP=${IDLE_MAX_SLEEP_US:-1000}
OUT=${IDLE_OUT:-$ROOT/target/bench-idle}

for b in dataplane dpctl appliance-config; do
  [ -x "$BIN/$b" ] || { echo "bench-idle: $BIN/$b missing (cargo build --release)" >&2; exit 1; }
done
for c in wrk curl ping; do command -v "$c" >/dev/null || { echo "bench-idle: $c not found" >&2; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "bench-idle: needs root (lab, DPDK)" >&2; exit 1; }

"$ROOT/lab/lab.sh" up "$P" >/dev/null
STATE=/run/acm-lab/$P
# shellcheck disable=SC1091
. "$STATE/ports.env"
SOCK=$STATE/idle-dataplane.sock
CFG=$STATE/idle-appliance.toml
mkdir -p "$OUT"
DP=
stop_dp() {
  if [ -n "$DP" ]; then
    kill -TERM "$DP" 2>/dev/null || true
    wait "$DP" 2>/dev/null || true
    DP=
  fi
}
trap stop_dp EXIT
trap 'exit 130' INT TERM
log() { printf '== %s\n' "$*" >&2; }
cx() { ip netns exec "$CLIENT_NS" "$@"; }

# p50 p99 max of numbers on stdin (one a line), 3 decimals.
pct() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "- - -"; exit }
    i50 = int(NR * 0.50 + 0.999); i99 = int(NR * 0.99 + 0.999)
    printf "%.3f %.3f %.3f\n", v[i50], v[i99], v[NR] }'
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

start_dp() {
  local mode=$1
  "$BIN/appliance-config" lab --prefix "$P" --state "$STATE" \
    --port0 "$PORT0_IFACE" --port0-addr "$PORT0_ADDR" --port1 "$PORT1_IFACE" --port1-addr "$PORT1_ADDR" \
    --password-hash x --telnet 127.0.0.1:1 --beacon-key x --maglev-table-size 65537 > "$CFG"
  # This run's socket, the mode under test.
  sed -i -e "s|^api_socket = .*|api_socket = \"$SOCK\"|" \
    -e "s|^idle = .*|idle = \"$mode\"|" -e "s|^idle_max_sleep_us = .*|idle_max_sleep_us = $MAX_SLEEP|" "$CFG"
  grep -q "^idle = \"$mode\"" "$CFG" || { echo "bench-idle: $CFG has no idle = \"$mode\"" >&2; exit 1; }
  "$BIN/dataplane" --config "$CFG" > "$STATE/idle-dataplane-$mode.log" 2>&1 &
  DP=$!
  "$BIN/dpctl" -s "$SOCK" ping --wait 30 >/dev/null
  for rs in $RS_ADDRS; do "$BIN/dpctl" -s "$SOCK" add "$VIP:$VPORT" "$rs:80" >/dev/null; done
  for _ in $(seq 50); do cx curl -s -m 1 -o /dev/null "http://$VIP/" && return 0; sleep 0.2; done
  echo "bench-idle: no answer through the VIP ($STATE/idle-dataplane-$mode.log)" >&2
  exit 1
}

measure() {
  local mode=$1 hz t0 t1 ping conn ack w rs3
  hz=$(getconf CLK_TCK)
  rs3=${RS_ADDRS##* }
  start_dp "$mode"
  sleep 2
  t0=$(cpu_ticks "$DP"); sleep "$CPU_S"; t1=$(cpu_ticks "$DP")
  local cpu; cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$CPU_S" 'BEGIN { printf "%.1f", 100 * (b - a) / hz / s }')
  log "$mode: idle CPU $cpu % of a core"
  : > "$OUT/ping-$mode.txt"; : > "$OUT/connect-$mode.txt"; : > "$OUT/ack-$mode.txt"
  for _ in $(seq "$SAMPLES"); do
    sleep "$GAP"
    cx ping -c 1 -W 1 "$VIP" | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' >> "$OUT/ping-$mode.txt"
  done
  for _ in $(seq "$SAMPLES"); do
    sleep "$GAP"
    cx curl -s -m 2 -o /dev/null -w '%{time_connect}\n' "http://$VIP/" |
      awk '{ printf "%.3f\n", $1 * 1000 }' >> "$OUT/connect-$mode.txt"
  done
  for _ in $(seq "$SAMPLES"); do
    sleep "$GAP"
    # Only changes wait for the workers' acknowledgement.
    "$BIN/dpctl" -s "$SOCK" --json remove "$VIP:$VPORT" "$rs3:80" | grep '"changed":true' |
      sed -n 's/.*"latency_us":\([0-9.]*\).*/\1/p' | awk '{ printf "%.3f\n", $1 / 1000 }' >> "$OUT/ack-$mode.txt" || true
    "$BIN/dpctl" -s "$SOCK" add "$VIP:$VPORT" "$rs3:80" >/dev/null
  done
  sleep 1
  w=$(cx wrk -t2 -c64 -d10s --latency "http://$VIP/" 2>&1)
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$w")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$w")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$w")
  "$BIN/dpctl" -s "$SOCK" stats | grep '^worker' > "$OUT/stats-$mode.txt" || true
  local load; load=$(uptime | sed 's/.*load average: //')
  stop_dp
  printf '| %s | %s | %s | %s | %s | %s | %s / %s | %s |\n' "$mode" "$cpu" \
    "$(pct < "$OUT/ping-$mode.txt")" "$(pct < "$OUT/connect-$mode.txt")" "$(pct < "$OUT/ack-$mode.txt")" \
    "$rps" "$p50" "$p99" "$load" >> "$OUT/report.md"
  log "$mode: $(tail -n 1 "$OUT/report.md")"
}

{
  echo "# Adaptive polling ($(date -u +%FT%TZ), $(nproc) cores, idle_max_sleep_us = $MAX_SLEEP, $SAMPLES samples after ${GAP} s idle)"
  echo
  echo "| idle | idle CPU % | ping p50 p99 max ms | TCP connect p50 p99 max ms | config ack p50 p99 max ms | wrk req/s | wrk p50 / p99 | load (1/5/15 min) |"
  echo "|---|---:|---|---|---|---:|---|---|"
} > "$OUT/report.md"
for _ in $(seq "$ROUNDS"); do
  for mode in $MODES; do measure "$mode"; done
done
cat "$OUT/report.md"
