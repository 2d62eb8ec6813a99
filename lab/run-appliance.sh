#!/usr/bin/env bash
# Start the appliance in a lab that lab/lab.sh built, and return once it forwards.
# Called by `make run` with:
#   ACM_LAB_PREFIX  lab prefix (default acm)       ACM_LAB_STATE  its state dir
#   ACM_APPLIANCE_PIDFILE  where pids go (make stop reads it)
#   ACM_BIN_DIR  where the release binaries are
# Writes $ACM_LAB_STATE/appliance.toml (appliance-config lab), starts the dataplane (log: dataplane.log), then
# the controlplane (the Connection Manager; the same appliance.toml, log controlplane.log)
# pinned to the management core and run under restartd (a kill -SEGV of the controlplane keeps
# telnet sessions, API clients and the binding cache), which installs the lab's VIP
# 10.0.0.100:80 -> rs1..rs3 by replaying its startup-config, and waits until a request through the VIP is answered.
#   ACM_TELNET_LISTEN  telnet address of the CLI (default 127.0.0.1:2323); the CLI also listens on
#   port 23 of both port addresses, through the exception path (the ports' taps).
#   ACM_LAB_PORTS  the ports' DPDK driver: af_xdp (default: native XDP on the veths, ~12 % more
#   requests/s through the VIP than af_packet here) or af_packet; when the dataplane cannot start
#   on af_xdp (kernel or PMD), it is started again on af_packet.
set -euo pipefail

P=${ACM_LAB_PREFIX:-acm}
STATE=${ACM_LAB_STATE:-/run/acm-lab/$P}
PIDFILE=${ACM_APPLIANCE_PIDFILE:-$STATE/appliance.pid}
BIN=${ACM_BIN_DIR:-target/release}
die() { echo "run-appliance: error: $*" >&2; exit 1; }

[ -s "$STATE/ports.env" ] || die "lab '$P' is not up ($STATE/ports.env missing)"
# shellcheck disable=SC1091
. "$STATE/ports.env"
[ -x "$BIN/dataplane" ] || die "$BIN/dataplane not built (make build)"
[ -x "$BIN/controlplane" ] || die "$BIN/controlplane not built (make build)"
[ -x "$BIN/restartd" ] || die "$BIN/restartd not built (make build)"
[ -x "$BIN/appliance-config" ] || die "$BIN/appliance-config not built (make build)"
TELNET=${ACM_TELNET_LISTEN:-127.0.0.1:2323}

SOCK=$STATE/dataplane.sock
CFG=$STATE/appliance.toml
if [ -s "$PIDFILE" ]; then
  while read -r pid _; do
    # ps, not kill -0: an unreaped zombie passes kill -0.
    st=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    if [ -n "$st" ] && [ "${st:0:1}" != Z ]; then die "appliance already running (pid $pid); make stop first"; fi
  done < "$PIDFILE"
fi

# The Connection Manager: lab login admin / acm-lab, enable password acm-lab.
CP_SOCK=$STATE/controlplane.sock
STARTUP=$STATE/startup-config
HASH=$(printf 'acm-lab\n' | "$BIN/acm-hash-password") || die "acm-hash-password failed"
# The lab's beacon key (a real deployment sets its own secret).
BEACON_KEY=${ACM_BEACON_KEY:-acm-lab-beacon-key}

# One appliance.toml for both processes (the dataplane reads [dataplane], [timeouts] and
# [[port]]; the control plane the rest), built from the config types by appliance-config
# (appliance-config/src/presets.rs says what the lab runs: L7 health checks out of the servers'
# tap, beacons there signed with the profile key, telnet also on port 23 of both port
# addresses). CM client modules (acm-agent, controlplane::client) on the servers beacon with
# that key, e.g. in netns rs1:
#   acm-agent run --profile local --key $BEACON_KEY --bind 10.0.0.100:80=80 --check http:/
write_config() {
  "$BIN/appliance-config" lab --prefix "$P" --state "$STATE" \
    --port0 "$PORT0_IFACE" --port0-addr "$PORT0_ADDR" --port1 "$PORT1_IFACE" --port1-addr "$PORT1_ADDR" \
    --password-hash "$HASH" --telnet "$TELNET" --beacon-key "$BEACON_KEY" \
    --maglev-table-size "${ACM_MAGLEV_TABLE_SIZE:-65537}" --port-driver "$1" > "$CFG" || die "appliance-config lab failed"
}
# start_dataplane DRIVER: returns once it answers, 1 if it did not come up.
start_dataplane() {
  write_config "$1"
  "$BIN/dataplane" --config "$CFG" --pid-file "$STATE/dataplane.pid" > "$STATE/dataplane.log" 2>&1 &
  DP=$!
  echo "$DP dataplane" > "$PIDFILE"
  for _ in $(seq 30); do
    "$BIN/dpctl" -s "$SOCK" ping --wait 1 > /dev/null 2>&1 && return 0
    st=$(ps -o stat= -p "$DP" 2>/dev/null || true)
    if [ -z "$st" ] || [ "${st:0:1}" = Z ]; then return 1; fi
  done
  return 1
}
DRIVER=${ACM_LAB_PORTS:-af_xdp}
if ! start_dataplane "$DRIVER"; then
  tail -n 20 "$STATE/dataplane.log" >&2
  [ "$DRIVER" = af_xdp ] || die "the dataplane did not come up (log: $STATE/dataplane.log)"
  echo "run-appliance: the dataplane did not start on af_xdp (above); starting it on af_packet" >&2
  kill -TERM "$DP" 2>/dev/null || true
  wait "$DP" 2>/dev/null || true
  cp "$STATE/dataplane.log" "$STATE/dataplane-af_xdp.log"
  DRIVER=af_packet
  start_dataplane af_packet || { tail -n 20 "$STATE/dataplane.log" >&2; die "the dataplane did not come up (log: $STATE/dataplane.log)"; }
fi
# `write memory` overwrites this; a fresh lab starts with the three real servers bound.
if [ ! -s "$STARTUP" ]; then
  {
    i=0
    for rs in $RS_ADDRS; do i=$((i + 1)); printf 'server real rs%s %s\n port http\n' "$i" "$rs"; done
    printf 'server virtual www %s\n port http\n' "$VIP"
    i=0
    for rs in $RS_ADDRS; do i=$((i + 1)); printf ' bind http rs%s http\n' "$i"; done
  } > "$STARTUP"
fi
PIN=()
if command -v taskset > /dev/null; then PIN=(taskset -c "${ACM_MGMT_CPU:-0}"); fi
# Under restartd (same release dir): it keeps the controlplane's sockets and sessions and
# starts the next generation when it crashes; the controlplane keeps its cache in a state
# region. The pid file line "RD restartd CHILD_PIDFILE" tells make stop to stop the
# controlplane first (a clean exit ends restartd too).
RD_SOCK=$STATE/restartd.sock
CP_PIDFILE=$STATE/controlplane.pid
rm -f "$CP_PIDFILE"
"${PIN[@]}" "$BIN/restartd" --control "$RD_SOCK" --name controlplane -- \
  "$BIN/controlplane" --config "$CFG" --pid-file "$CP_PIDFILE" > "$STATE/controlplane.log" 2>&1 &
CP=$!
echo "$CP restartd $CP_PIDFILE" >> "$PIDFILE"
for _ in $(seq 100); do
  [ -S "$CP_SOCK" ] && "$BIN/acmctl" -s "$CP_SOCK" status > /dev/null 2>&1 && break
  ps -o stat= -p "$CP" > /dev/null 2>&1 || { tail -n 20 "$STATE/controlplane.log" >&2; die "the controlplane exited (log: $STATE/controlplane.log)"; }
  sleep 0.1
done
"$BIN/acmctl" -s "$CP_SOCK" status > /dev/null || die "the controlplane does not answer on $CP_SOCK"
ok=0
for _ in $(seq 50); do
  if ip netns exec "$CLIENT_NS" curl -s -m 1 "http://$VIP/" > /dev/null 2>&1; then ok=1; break; fi
  sleep 0.2
done
[ "$ok" = 1 ] || die "no answer through the VIP (logs: $STATE/dataplane.log, $STATE/controlplane.log)"

cat <<MSG

The appliance forwards (ports: $DRIVER). VIP $VIP:$VPORT -> rs1..rs3 (${RS_ADDRS// /, }).
  ip netns exec $CLIENT_NS curl http://$VIP/            # answers rs1, rs2 or rs3
  ip netns exec $CLIENT_NS curl -o /dev/null http://$VIP/big.bin
  ip netns exec $CLIENT_NS ping -c 3 $VIP
  telnet ${TELNET%:*} ${TELNET##*:}        # ServerIron CLI: admin / acm-lab, enable: acm-lab
  ip netns exec $CLIENT_NS telnet ${PORT0_ADDR%/*} 23   # the same CLI on the port address (exception path)
  export ACM_CONTROLPLANE_SOCKET=$CP_SOCK
  $BIN/acmctl list                        # the CM's binding cache (add --json for machines)
  $BIN/acmctl remove $VIP:$VPORT 10.0.1.12:80   # drain rs2 (add puts it back)
  $BIN/acmctl drop $VIP:$VPORT 0.5              # admission control
  $BIN/acmctl cli 'show server bind'            # any CLI command
  $BIN/acmctl latency                     # config latency per primitive and switch
  $BIN/dpctl -s $SOCK stats               # dataplane: ports, services, drops by reason
  $BIN/dpctl -s $SOCK sessions            # dataplane: live flows (CLI: show server sessions)
  $BIN/restartctl --control $RD_SOCK status   # controlplane under restartd: generation, pid, kept channels
  kill -SEGV \$(cat $CP_PIDFILE)             # crash it: telnet sessions, acmctl and forwarding carry on
Logs: $STATE/dataplane.log $STATE/controlplane.log     Stop everything: make stop
MSG
