#!/usr/bin/env bash
# The lab's port drivers against each other: wrk -t2 -c64 -d10s from the client netns through the
# VIP (10.0.0.100:80 -> rs1..rs3), the dataplane alone on the lab's veths (bindings through dpctl,
# no control plane), once per variant per round, variants alternating within a round to share
# the machine's drift. Reports requests/s, wrk's latency p50 / p99, the dataplane's CPU during
# the run (% of one core, /proc/<pid>/stat) and the load (uptime) beside each run.
#
# Variants (LP_VARIANTS, default "af_packet af_xdp"):
#   af_packet        what the lab preset writes: net_af_packet with the driver's defaults
#   af_packet_tuned  qdisc_bypass=1, framecnt=4096 (a deeper ring, the qdisc skipped on tx)
#   af_xdp           net_af_xdp, queue 0 (native XDP on the veth; the PMD's busy-poll defaults)
#   af_xdp_nobusy    the same with busy_budget=0 (no SO_PREFER_BUSY_POLL)
#
# Environment: LP_LAB=portbench (brought up if absent, left up), LP_ROUNDS=3, LP_IDLE=adaptive,
# LP_WRK="-t2 -c64 -d10s", LP_OUT=target/bench-lab-ports, CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
P=${LP_LAB:-portbench}
VARIANTS=${LP_VARIANTS:-af_packet af_xdp}
ROUNDS=${LP_ROUNDS:-3}
IDLE=${LP_IDLE:-adaptive}
read -r -a WRK_ARGS <<<"${LP_WRK:--t2 -c64 -d10s}"
OUT=${LP_OUT:-$ROOT/target/bench-lab-ports}

for b in dataplane dpctl appliance-config; do
  [ -x "$BIN/$b" ] || { echo "bench-lab-ports: $BIN/$b missing (cargo build --release)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "bench-lab-ports: wrk not found" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench-lab-ports: needs root (lab, DPDK)" >&2; exit 1; }

"$ROOT/lab/lab.sh" up "$P" >/dev/null
STATE=/run/acm-lab/$P
# shellcheck disable=SC1091
. "$STATE/ports.env"
SOCK=$STATE/lp-dataplane.sock
CFG=$STATE/lp-appliance.toml
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
cx() { ip netns exec "$CLIENT_NS" "$@"; }

device() { # VARIANT INDEX IFACE
  case $1 in
    af_packet) echo "net_af_packet$2,iface=$3" ;;
    af_packet_tuned) echo "net_af_packet$2,iface=$3,qdisc_bypass=1,framecnt=4096" ;;
    af_xdp) echo "net_af_xdp$2,iface=$3,start_queue=0,queue_count=1" ;;
    af_xdp_nobusy) echo "net_af_xdp$2,iface=$3,start_queue=0,queue_count=1,busy_budget=0" ;;
    *) echo "bench-lab-ports: unknown variant $1" >&2; exit 1 ;;
  esac
}

run() {
  local v=$1 d0 d1 hz t0 t1 w
  d0=$(device "$v" 0 "$PORT0_IFACE"); d1=$(device "$v" 1 "$PORT1_IFACE")
  "$BIN/appliance-config" lab --prefix "$P" --state "$STATE" \
    --port0 "$PORT0_IFACE" --port0-addr "$PORT0_ADDR" --port1 "$PORT1_IFACE" --port1-addr "$PORT1_ADDR" \
    --password-hash x --telnet 127.0.0.1:1 --beacon-key x > "$CFG"
  sed -i -e "s|^api_socket = .*|api_socket = \"$SOCK\"|" -e "s|^idle = .*|idle = \"$IDLE\"|" \
    -e "s|^device = \"net_af_packet0,.*|device = \"$d0\"|" -e "s|^device = \"net_af_packet1,.*|device = \"$d1\"|" "$CFG"
  "$BIN/dataplane" --config "$CFG" > "$STATE/lp-dataplane-$v.log" 2>&1 &
  DP=$!
  "$BIN/dpctl" -s "$SOCK" ping --wait 30 >/dev/null || { tail "$STATE/lp-dataplane-$v.log" >&2; exit 1; }
  for rs in $RS_ADDRS; do "$BIN/dpctl" -s "$SOCK" add "$VIP:$VPORT" "$rs:80" >/dev/null; done
  local ok=0
  for _ in $(seq 50); do cx curl -s -m 1 -o /dev/null "http://$VIP/" && { ok=1; break; }; sleep 0.2; done
  [ "$ok" = 1 ] || { echo "bench-lab-ports: $v: no answer through the VIP" >&2; tail "$STATE/lp-dataplane-$v.log" >&2; exit 1; }
  hz=$(getconf CLK_TCK)
  t0=$(awk '{ print $14 + $15 }' "/proc/$DP/stat")
  local s0; s0=$(date +%s.%N)
  w=$(cx wrk "${WRK_ARGS[@]}" --latency "http://$VIP/" 2>&1)
  t1=$(awk '{ print $14 + $15 }' "/proc/$DP/stat")
  local cpu; cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s0="$s0" -v s1="$(date +%s.%N)" \
    'BEGIN { printf "%.0f", 100 * (b - a) / hz / (s1 - s0) }')
  local drops; drops=$("$BIN/dpctl" -s "$SOCK" stats | sed -n 's/^drops: //p')
  local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
  stop_dp
  printf '| %s | %s | %s / %s | %s | %s | %s | %s |\n' "$v" \
    "$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$w")" \
    "$(awk '$1 == "50%" { print $2 }' <<<"$w")" "$(awk '$1 == "99%" { print $2 }' <<<"$w")" \
    "$(grep -o 'Socket errors.*' <<<"$w" || echo none)" "$cpu" "$drops" "$load" >> "$OUT/report.md"
  tail -n 1 "$OUT/report.md" >&2
}

{
  echo "# Lab port drivers ($(date -u +%FT%TZ), $(nproc) cores, idle = $IDLE, wrk ${WRK_ARGS[*]})"
  echo
  echo "| ports | requests/s | p50 / p99 | wrk errors | dataplane CPU % | drops | load (1/5/15 min) |"
  echo "|---|---:|---|---|---:|---|---|"
} > "$OUT/report.md"
for _ in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do run "$v"; done
done
cat "$OUT/report.md"
