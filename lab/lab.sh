#!/usr/bin/env bash
# The ACM lab: a client, three real servers and the appliance's two ports,
# built from network namespaces, veth pairs and a bridge. See lab/README.md.
#
#   lab/lab.sh up     [PREFIX]          build the lab (idempotent)
#   lab/lab.sh down   [PREFIX]          remove everything the lab made (safe twice)
#   lab/lab.sh status [PREFIX]          exit 0 complete, 1 absent, 2 partial
#   lab/lab.sh kgw    [PREFIX] on|off   kernel stand-in for the appliance (tests only)
#   lab/lab.sh list                     every lab on this machine and its state
#
# PREFIX (default "acm") names everything, so tests build their own labs beside
# the demo: at most 12 characters, [a-z][a-z0-9]*, as interface names are
# "${PREFIX}br1" and must fit in 15.
#
#   netns ${P}-client   ${P}c0 10.0.0.2/24 via 10.0.0.1 ── veth ── ${P}p0 (root netns: port 0)
#   netns ${P}-rs{1,2,3} ${P}r{1,2,3} 10.0.1.1{1,2,3}/24 via 10.0.1.1
#                       └─ veth ─ ${P}b{1,2,3} ┐
#   netns ${P}-lan      bridge ${P}br1 ────────┤
#                       ${P}bp ── veth ───────────────────── ${P}p1 (root netns: port 1)
#
# Environment: ACM_LAB_RUN (default /run/acm-lab) holds one state dir per prefix.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN_ROOT=${ACM_LAB_RUN:-/run/acm-lab}
BIG_MB=20
BIG_SEED=20261122
RS_COUNT=3

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 64
}

die() { echo "lab: error: $*" >&2; exit 1; }
say() { echo "lab[$P]: $*"; }

[ $# -ge 1 ] || usage
CMD=$1
if [ "$CMD" = list ]; then
  # Prefixes with a state dir or a netns of ours (a lab a killed test left behind shows here).
  { ls -1 "$RUN_ROOT" 2>/dev/null || true
    ip netns list 2>/dev/null | awk '{print $1}' | sed -nE 's/^([a-z][a-z0-9]{0,11})-(client|lan|rs[0-9]|kgw)$/\1/p'
  } | grep -E '^[a-z][a-z0-9]{0,11}$' | sort -u | while read -r p; do
    st=0; "${BASH_SOURCE[0]}" status "$p" >/dev/null 2>&1 || st=$?
    case $st in 0) echo "$p up";; 1) ;; *) echo "$p partial";; esac
  done
  exit 0
fi
P=${2:-acm}
[[ $P =~ ^[a-z][a-z0-9]{0,11}$ ]] || die "bad prefix '$P': want [a-z][a-z0-9]*, at most 12 characters"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"

STATE=$RUN_ROOT/$P
NS_CLIENT=$P-client
NS_LAN=$P-lan
NS_KGW=$P-kgw
PORT0=${P}p0
PORT1=${P}p1
CLIENT_IF=${P}c0
BRIDGE=${P}br1
LAN_P1=${P}bp
rs_ns() { echo "$P-rs$1"; }
rs_if() { echo "${P}r$1"; }      # in the real server's netns
rs_br() { echo "${P}b$1"; }      # its peer, on the bridge
rs_ip() { echo "10.0.1.$((10 + $1))"; }
all_ns() {
  echo "$NS_CLIENT $NS_LAN"
  for i in $(seq "$RS_COUNT"); do rs_ns "$i"; done
  echo "$NS_KGW"
}

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
ns_exists() { [ -e "/var/run/netns/$1" ] || ip netns list 2>/dev/null | grep -qE "^$1( |$)"; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
# kill -0 is not enough: a zombie (not reaped by an init that ignores orphans) passes it.
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st:0:1}" != Z ]; }

# Every lab shares this lock for building and tearing down: ip netns has races
# on a fresh /run/netns, and the big.bin cache is shared.
lock() {
  mkdir -p "$RUN_ROOT"
  exec 9>"$RUN_ROOT/.lock"
  flock -w 120 9 || die "timed out waiting for $RUN_ROOT/.lock"
}

# Checksum offload and segmentation must be off on both ends of every veth:
# otherwise an af_packet socket sees frames with partial checksums and 64 KB
# GSO/GRO super-frames, which a DPDK dataplane would forward as they are.
offloads_off() {
  local ns=$1 dev=$2
  nsx "$ns" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>&1 \
    || die "ethtool -K $dev (netns $ns) failed"
}

new_netns() {
  local ns=$1
  ip netns add "$ns"
  nsx "$ns" ip link set lo up
  # No IPv6: keeps router solicitations, MLD and DAD off the appliance's ports.
  nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
}

# The root-side ends are the appliance's ports. The root kernel must stay
# blind to them, as if the NIC were bound to DPDK: no addresses, no IPv6, no
# ARP, no forwarding, strict reverse-path filter (lab sources do not route via
# these ports, so the root stack drops whatever reaches it). af_packet/af_xdp
# sockets still see every frame: packet taps run before the IP stack.
# (A tc ingress drop would be tidier, but this kernel has no act_gact.)
setup_port() {
  local dev=$1
  sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" "net.ipv4.conf.$dev.forwarding=0" \
    "net.ipv4.conf.$dev.rp_filter=1" "net.ipv4.conf.$dev.arp_ignore=8" \
    "net.ipv4.conf.$dev.accept_local=0" "net.ipv4.conf.$dev.send_redirects=0" >/dev/null
  ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>&1 || die "ethtool -K $dev failed"
  ip link set dev "$dev" arp off promisc on up
}

big_file() {
  local cache=$RUN_ROOT/.cache big
  big=$cache/big-${BIG_MB}M-${BIG_SEED}.bin
  if ! [ -s "$big" ] || ! [ -s "$big.sha256" ]; then
    mkdir -p "$cache"
    python3 - "$big.tmp" "$BIG_MB" "$BIG_SEED" <<'PY'
import random, sys
path, mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with open(path, "wb") as f:
    for _ in range(mb):
        f.write(rng.randbytes(1 << 20))
PY
    (cd "$cache" && sha256sum "$(basename "$big.tmp")" | awk '{print $1}') > "$big.sha256.tmp"
    mv -f "$big.tmp" "$big"
    mv -f "$big.sha256.tmp" "$big.sha256"
  fi
  mkdir -p "$STATE/www"
  ln -f "$big" "$STATE/www/big.bin" 2>/dev/null || cp -f "$big" "$STATE/www/big.bin"
  cp -f "$big.sha256" "$STATE/big.bin.sha256"
}

start_nginx() {
  local i=$1 ns name dir
  ns=$(rs_ns "$i"); name=rs$i; dir=$STATE/$name
  mkdir -p "$dir/tmp"
  # File descriptors: as many as the hard limit allows (raising it needs
  # CAP_SYS_RESOURCE, which some sandboxes drop), at most 65536.
  local nofile conns
  nofile=$(ulimit -Hn)
  { [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ]; } && nofile=65536
  conns=$((nofile * 3 / 4)); [ "$conns" -gt 16384 ] && conns=16384
  sed -e "s|@DIR@|$dir|g" -e "s|@WWW@|$STATE/www|g" -e "s|@NAME@|$name|g" \
    -e "s|@NOFILE@|$nofile|g" -e "s|@CONNS@|$conns|g" \
    "$LAB_DIR/nginx/rs.conf.in" > "$dir/nginx.conf"
  # 9>&-: the daemon must not inherit (and hold) the lab lock.
  nsx "$ns" nginx -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 9>&- \
    || { cat "$dir/error.log" >&2 2>/dev/null; die "nginx for $name failed to start"; }
}

wait_http() {
  local ns=$1 want=$2 body
  for _ in $(seq 100); do
    body=$(nsx "$ns" curl -s --max-time 1 http://127.0.0.1/ 2>/dev/null || true)
    [ "$body" = "$want" ] && return 0
    sleep 0.05
  done
  die "no HTTP answer '$want' in netns $ns"
}

write_ports_env() {
  local rs_list="" rs_addrs="" i
  for i in $(seq "$RS_COUNT"); do rs_list+="$(rs_ns "$i") "; rs_addrs+="$(rs_ip "$i") "; done
  cat > "$STATE/ports.env.tmp" <<EOF
# ACM lab '$P' (lab/lab.sh). Shell-sourceable.
PORT0_IFACE=$PORT0
PORT1_IFACE=$PORT1
PORT0_MAC=$(cat "/sys/class/net/$PORT0/address")
PORT1_MAC=$(cat "/sys/class/net/$PORT1/address")
PORT0_VDEV=net_af_packet0,iface=$PORT0,qpairs=1,blocksz=4096,framesz=2048,framecnt=512,qdisc_bypass=0
PORT1_VDEV=net_af_packet1,iface=$PORT1,qpairs=1,blocksz=4096,framesz=2048,framecnt=512,qdisc_bypass=0
PORT0_ADDR=10.0.0.1/24
PORT1_ADDR=10.0.1.1/24
VIP=10.0.0.100
VPORT=80
CLIENT_NS=$NS_CLIENT
CLIENT_IFACE=$CLIENT_IF
CLIENT_ADDR=10.0.0.2
CLIENT_MAC=$(nsx "$NS_CLIENT" cat "/sys/class/net/$CLIENT_IF/address")
LAN_NS=$NS_LAN
RS_NS="${rs_list% }"
RS_ADDRS="${rs_addrs% }"
BIG_PATH=/big.bin
BIG_SIZE=$((BIG_MB << 20))
BIG_SHA256=$(cat "$STATE/big.bin.sha256")
STATE_DIR=$STATE
EOF
  mv -f "$STATE/ports.env.tmp" "$STATE/ports.env"
}

build() {
  local i ns
  mkdir -p "$STATE"
  big_file

  for ns in $NS_CLIENT $NS_LAN; do new_netns "$ns"; done
  for i in $(seq "$RS_COUNT"); do new_netns "$(rs_ns "$i")"; done

  # client <-> port 0
  ip link add "$PORT0" type veth peer name "$CLIENT_IF" netns "$NS_CLIENT"
  offloads_off "$NS_CLIENT" "$CLIENT_IF"
  nsx "$NS_CLIENT" ip addr add 10.0.0.2/24 dev "$CLIENT_IF"
  nsx "$NS_CLIENT" ip link set "$CLIENT_IF" up
  nsx "$NS_CLIENT" ip route add default via 10.0.0.1
  # Many short connections from one address (wrk, curl loops).
  nsx "$NS_CLIENT" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1 >/dev/null

  # the real servers' LAN: a bridge in its own netns
  nsx "$NS_LAN" ip link add "$BRIDGE" type bridge stp_state 0 forward_delay 0
  nsx "$NS_LAN" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-arptables=0 >/dev/null 2>&1 || true
  nsx "$NS_LAN" ip link set "$BRIDGE" up
  for i in $(seq "$RS_COUNT"); do
    ns=$(rs_ns "$i")
    ip link add "$(rs_if "$i")" netns "$ns" type veth peer name "$(rs_br "$i")" netns "$NS_LAN"
    offloads_off "$ns" "$(rs_if "$i")"
    offloads_off "$NS_LAN" "$(rs_br "$i")"
    nsx "$NS_LAN" ip link set "$(rs_br "$i")" master "$BRIDGE" up
    nsx "$ns" ip addr add "$(rs_ip "$i")/24" dev "$(rs_if "$i")"
    nsx "$ns" ip link set "$(rs_if "$i")" up
    nsx "$ns" ip route add default via 10.0.1.1
  done

  # port 1 <-> the bridge
  ip link add "$PORT1" type veth peer name "$LAN_P1" netns "$NS_LAN"
  offloads_off "$NS_LAN" "$LAN_P1"
  nsx "$NS_LAN" ip link set "$LAN_P1" master "$BRIDGE" up

  setup_port "$PORT0"
  setup_port "$PORT1"

  for i in $(seq "$RS_COUNT"); do start_nginx "$i"; done
  for i in $(seq "$RS_COUNT"); do wait_http "$(rs_ns "$i")" "rs$i"; done

  write_ports_env
}

# Exit status 0 when every piece is there and serving, 1 when nothing is, 2 otherwise.
check() {
  local verbose=$1 have=0 miss=0 i ns pid
  item() {
    if "${@:2}"; then have=$((have + 1)); [ "$verbose" = 1 ] && echo "  ok    $1"
    else miss=$((miss + 1)); [ "$verbose" = 1 ] && echo "  MISS  $1"; fi
    return 0
  }
  nginx_alive() { pid=$(cat "$STATE/$1/nginx.pid" 2>/dev/null) && alive "$pid"; }
  up_in() { nsx "$1" ip link show dev "$2" up 2>/dev/null | grep -q "state UP"; }
  item "netns $NS_CLIENT" ns_exists "$NS_CLIENT"
  item "netns $NS_LAN" ns_exists "$NS_LAN"
  for i in $(seq "$RS_COUNT"); do item "netns $(rs_ns "$i")" ns_exists "$(rs_ns "$i")"; done
  item "port 0 $PORT0" link_exists "$PORT0"
  item "port 1 $PORT1" link_exists "$PORT1"
  ns_exists "$NS_CLIENT" && item "client $CLIENT_IF up" up_in "$NS_CLIENT" "$CLIENT_IF"
  ns_exists "$NS_LAN" && item "bridge $BRIDGE up" up_in "$NS_LAN" "$BRIDGE"
  for i in $(seq "$RS_COUNT"); do item "nginx rs$i" nginx_alive "rs$i"; done
  item "ports.env" test -s "$STATE/ports.env"
  if ns_exists "$NS_KGW"; then
    [ "$verbose" = 1 ] && echo "  note  kernel gateway ($NS_KGW) holds the ports"
  fi
  if [ "$miss" -eq 0 ]; then return 0; elif [ "$have" -eq 0 ]; then return 1; else return 2; fi
}

teardown() {
  local ns pid f pids=() left
  # Our nginx masters (even if their netns is gone), then anything else left
  # in our netns: SIGTERM, up to 2 s of grace, then SIGKILL.
  for f in "$STATE"/rs*/nginx.pid; do
    [ -s "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] && pids+=("$pid")
  done
  for ns in $(all_ns); do
    ns_exists "$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do pids+=("$pid"); done
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 40); do
    left=0
    for pid in "${pids[@]}"; do alive "$pid" && { left=1; break; }; done
    [ "$left" = 0 ] && break
    sleep 0.05
  done
  for pid in "${pids[@]}"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null || true; done
  for ns in $(all_ns); do
    ns_exists "$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  # Root-side ports go synchronously (netns deletion frees its devices later,
  # in the background, so an immediate "up" could otherwise collide).
  for dev in "$PORT0" "$PORT1"; do
    link_exists "$dev" && ip link del dev "$dev" 2>/dev/null || true
  done
  for ns in $(all_ns); do
    ns_exists "$ns" && ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$STATE"
}

kgw() {
  local mode=$1 dev
  case $mode in
    on)
      ns_exists "$NS_KGW" && { say "kernel gateway already on"; return 0; }
      link_exists "$PORT0" && link_exists "$PORT1" || die "lab '$P' is not up"
      new_netns "$NS_KGW"
      for dev in "$PORT0" "$PORT1"; do
        ip link set dev "$dev" netns "$NS_KGW"
        nsx "$NS_KGW" ip link set dev "$dev" arp on promisc off up
      done
      nsx "$NS_KGW" ip addr add 10.0.0.1/24 dev "$PORT0"
      nsx "$NS_KGW" ip addr add 10.0.1.1/24 dev "$PORT1"
      nsx "$NS_KGW" sysctl -qw net.ipv4.ip_forward=1 >/dev/null
      say "kernel gateway on: $PORT0 10.0.0.1/24, $PORT1 10.0.1.1/24 in netns $NS_KGW"
      ;;
    off)
      ns_exists "$NS_KGW" || return 0
      for dev in "$PORT0" "$PORT1"; do
        nsx "$NS_KGW" ip link set dev "$dev" netns "/proc/$$/ns/net" 2>/dev/null \
          || nsx "$NS_KGW" ip link set dev "$dev" netns $$
        setup_port "$dev"
      done
      ip netns del "$NS_KGW"
      say "kernel gateway off: $PORT0 and $PORT1 back in the root netns"
      ;;
    *) usage ;;
  esac
}

case $CMD in
  up)
    lock
    if check 0; then
      say "already up ($STATE/ports.env)"
      exit 0
    fi
    teardown
    # A subshell as a plain command, so that set -e holds inside build().
    set +e
    (set -e; build)
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
      teardown
      die "could not build the lab"
    fi
    say "up: client 10.0.0.2 in $NS_CLIENT, rs 10.0.1.11-13, ports $PORT0 $PORT1; $STATE/ports.env"
    ;;
  down)
    lock
    teardown
    say "down"
    ;;
  status)
    rc=0; check 1 || rc=$?
    case $rc in 0) say "up";; 1) say "absent";; *) say "partial (run: lab/lab.sh down $P)";; esac
    exit "$rc"
    ;;
  kgw)
    lock
    kgw "${3:-}"
    ;;
  *) usage ;;
esac
