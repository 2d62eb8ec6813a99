#!/usr/bin/env bash
# Prove that DPDK sees a lab through net_af_packet, without the dataplane:
# dpdk-testpmd forwards between the lab's two ports in "mac" mode (rewriting
# MAC addresses like a router would), the client pings rs1 and downloads
# /big.bin through it, and the checksum must match.
#
#   lab/check-dpdk.sh [PREFIX]      (the lab must be up: lab/lab.sh up PREFIX)
#
# Static neighbour entries stand in for ARP (testpmd answers none); they are
# removed again on exit. Environment: TESTPMD_LCORES (default 0-1); VDEV0 and
# VDEV1 replace ports.env's PORT0_VDEV/PORT1_VDEV (e.g. to try net_af_xdp).
set -euo pipefail

P=${1:-acm}
RUN_ROOT=${ACM_LAB_RUN:-/run/acm-lab}
STATE=$RUN_ROOT/$P
LCORES=${TESTPMD_LCORES:-0-1}

die() { echo "check-dpdk: error: $*" >&2; exit 1; }
[ -s "$STATE/ports.env" ] || die "lab '$P' is not up ($STATE/ports.env missing)"
# shellcheck disable=SC1091
. "$STATE/ports.env"
PORT0_VDEV=${VDEV0:-$PORT0_VDEV}
PORT1_VDEV=${VDEV1:-$PORT1_VDEV}
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd not found (apt-get install dpdk)"

RS1_NS=${RS_NS%% *}
RS1_IF=${P}r1
RS1_ADDR=${RS_ADDRS%% *}
RS1_MAC=$(ip netns exec "$RS1_NS" cat "/sys/class/net/$RS1_IF/address")
LOG=$STATE/testpmd.log
pmd=""

cleanup() {
  if [ -n "$pmd" ] && kill -0 "$pmd" 2>/dev/null; then
    kill -INT "$pmd" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pmd" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pmd" 2>/dev/null || true
  fi
  ip netns exec "$CLIENT_NS" ip neigh del 10.0.0.1 dev "$CLIENT_IFACE" 2>/dev/null || true
  ip netns exec "$RS1_NS" ip neigh del 10.0.1.1 dev "$RS1_IF" 2>/dev/null || true
}
trap cleanup EXIT

ip netns exec "$CLIENT_NS" ip neigh replace 10.0.0.1 lladdr "$PORT0_MAC" dev "$CLIENT_IFACE" nud permanent
ip netns exec "$RS1_NS" ip neigh replace 10.0.1.1 lladdr "$PORT1_MAC" dev "$RS1_IF" nud permanent

# --in-memory: no files in /dev/hugepages and no clash with other DPDK
# processes (the demo, other tests). --stats-period keeps the non-interactive
# testpmd running until SIGINT (otherwise it reads stdin and exits at EOF).
dpdk-testpmd -l "$LCORES" --in-memory --no-pci -m 256 --log-level=lib.eal:warning \
  --vdev "$PORT0_VDEV" --vdev "$PORT1_VDEV" -- \
  --forward-mode=mac --eth-peer="0,$CLIENT_MAC" --eth-peer="1,$RS1_MAC" \
  --nb-cores=1 --stats-period=60 </dev/null >"$LOG" 2>&1 &
pmd=$!

ok=0
for _ in $(seq 60); do
  kill -0 "$pmd" 2>/dev/null || { cat "$LOG" >&2; die "dpdk-testpmd exited"; }
  if ip netns exec "$CLIENT_NS" ping -c1 -W1 -q "$RS1_ADDR" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.25
done
[ "$ok" = 1 ] || { cat "$LOG" >&2; die "no ping reply from $RS1_ADDR through testpmd"; }

body=$(ip netns exec "$CLIENT_NS" curl -sS --max-time 5 "http://$RS1_ADDR/")
[ "$body" = rs1 ] || die "GET / through testpmd answered '$body', want rs1"
sum=$(ip netns exec "$CLIENT_NS" curl -sS --max-time 60 "http://$RS1_ADDR$BIG_PATH" | sha256sum | awk '{print $1}')
[ "$sum" = "$BIG_SHA256" ] || die "$BIG_PATH through testpmd: sha256 $sum, want $BIG_SHA256"

kill -INT "$pmd"
for _ in $(seq 50); do kill -0 "$pmd" 2>/dev/null || break; sleep 0.1; done
wait "$pmd" 2>/dev/null || true
pmd=""
# Final per-port totals: "RX-packets: N  RX-dropped: N  RX-total: N" pairs.
stats=$(grep -E 'RX-total|TX-total' "$LOG" | head -4 | awk '
  { n = (NR - 1) / 2; split($1, k, "-"); printf "port%d %s=%s ", int(n), tolower(k[1]), $2 }')
echo "check-dpdk[$P]: ok: ping + GET / + ${BIG_SIZE}-byte $BIG_PATH (sha256 ok) through dpdk-testpmd over ${PORT0_VDEV%%,*}/${PORT1_VDEV%%,*}; ${stats% }"
