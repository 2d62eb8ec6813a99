#!/usr/bin/env bash
# Prepare this machine to build, test and run the ACM appliance and its lab.
#
# Idempotent and quiet on success: prints one summary line. Needs root for any
# change; when nothing needs changing it also succeeds as a normal user.
#
# Environment:
#   ACM_HUGEPAGES   number of 2 MB hugepages to reserve at least (default 1024 = 2 GiB)
#   ACM_SETUP_SKIP_APT=1   do not install packages (only report what is missing)
set -euo pipefail

HUGEPAGES="${ACM_HUGEPAGES:-1024}"
HUGE_SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
HUGE_MNT=/dev/hugepages

export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_MODE=a
export APT_LISTCHANGES_FRONTEND=none

die() { echo "setup: error: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
need_root() { is_root || die "$* (needs root: run 'sudo make setup')"; }

# Packages the build, the lab and the tests use. nginx is handled separately:
# any of nginx-light / nginx / nginx-core providing /usr/sbin/nginx will do.
PACKAGES=(
  dpdk dpdk-dev libdpdk-dev
  libclang-dev clang pkg-config
  iproute2 iputils-ping curl telnet expect socat wrk hey
  ethtool tcpdump python3 bridge-utils procps psmisc kmod
  gnuplot-nox
)

pkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

missing=()
for p in "${PACKAGES[@]}"; do
  pkg_installed "$p" || missing+=("$p")
done
if ! [ -x /usr/sbin/nginx ]; then
  missing+=(nginx-light)
fi

# ---------------------------------------------------------------- packages
if [ "${#missing[@]}" -gt 0 ]; then
  [ "${ACM_SETUP_SKIP_APT:-0}" = 1 ] && die "missing packages: ${missing[*]}"
  need_root "missing packages: ${missing[*]}"
  log=$(mktemp /tmp/acm-setup-apt.XXXXXX)
  # Keep package maintainer scripts from starting services (nginx on :80):
  # invoke-rc.d and deb-systemd-invoke honour policy-rc.d exit code 101.
  policy_created=0
  if ! [ -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_created=1
  fi
  cleanup() { [ "$policy_created" = 1 ] && rm -f /usr/sbin/policy-rc.d; rm -f "$log"; }
  trap cleanup EXIT
  apt_install() {
    apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "${missing[@]}" >>"$log" 2>&1
  }
  # Update the package lists only because something is missing; a fresh
  # machine has none (or stale ones that 404).
  if ! apt-get update -q >>"$log" 2>&1; then
    cat "$log" >&2; die "apt-get update failed"
  fi
  if ! apt_install; then
    cat "$log" >&2; die "apt-get install failed: ${missing[*]}"
  fi
  installed_now="installed ${#missing[@]} package(s)"
else
  installed_now="packages ok"
fi

# ----------------------------------------- the system nginx must not run
# The lab runs its own nginx instances inside network namespaces; a system
# nginx listening on :80 in the root namespace only gets in the way.
if [ -x /usr/sbin/nginx ] && is_root; then
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    if systemctl is-enabled --quiet nginx.service 2>/dev/null; then
      systemctl disable --quiet nginx.service >/dev/null 2>&1 || true
    fi
    if systemctl is-active --quiet nginx.service 2>/dev/null; then
      systemctl stop nginx.service >/dev/null 2>&1 || true
    fi
  else
    # No systemd: stop an init.d-started nginx and drop its rc links.
    if command -v update-rc.d >/dev/null 2>&1 && ls /etc/rc?.d/S*nginx >/dev/null 2>&1; then
      update-rc.d nginx disable >/dev/null 2>&1 || true
    fi
  fi
  # Whatever started it: the system instance writes /run/nginx.pid (our lab
  # instances keep their pid files under /run/acm-lab/).
  if [ -s /run/nginx.pid ]; then
    pid=$(cat /run/nginx.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -QUIT "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f /run/nginx.pid
  fi
fi

# --------------------------------------------------------------- hugepages
[ -w "$HUGE_SYSFS" ] || [ -r "$HUGE_SYSFS" ] || die "no 2 MB hugepage support ($HUGE_SYSFS)"
have=$(cat "$HUGE_SYSFS")
if [ "$have" -lt "$HUGEPAGES" ]; then
  need_root "only $have of $HUGEPAGES hugepages reserved"
  echo "$HUGEPAGES" > "$HUGE_SYSFS" || true
  have=$(cat "$HUGE_SYSFS")
  if [ "$have" -lt "$HUGEPAGES" ]; then
    # Fragmented memory: compact and try once more.
    sync
    echo 1 > /proc/sys/vm/compact_memory 2>/dev/null || true
    echo "$HUGEPAGES" > "$HUGE_SYSFS" || true
    have=$(cat "$HUGE_SYSFS")
  fi
  [ "$have" -ge "$HUGEPAGES" ] || die "kernel reserved only $have of $HUGEPAGES 2 MB hugepages"
fi
free_pages=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)

if ! mountpoint -q "$HUGE_MNT" 2>/dev/null || ! grep -q " $HUGE_MNT hugetlbfs " /proc/mounts; then
  need_root "hugetlbfs is not mounted at $HUGE_MNT"
  mkdir -p "$HUGE_MNT"
  mount -t hugetlbfs -o pagesize=2M nodev "$HUGE_MNT" || die "cannot mount hugetlbfs at $HUGE_MNT"
fi

# ---------------------------------------------------------- tun and veth
if ! [ -c /dev/net/tun ]; then
  need_root "/dev/net/tun is missing"
  modprobe -q tun 2>/dev/null || true
  if ! [ -c /dev/net/tun ]; then
    mkdir -p /dev/net
    mknod -m 0666 /dev/net/tun c 10 200 || die "cannot create /dev/net/tun"
  fi
fi
if is_root; then
  # Cheapest proof that veth and netns work here: make a pair and drop it.
  probe="acmsetup$$"; probe="${probe:0:15}"
  if ! ip link add "$probe" type veth peer name "${probe:0:13}p" >/dev/null 2>&1; then
    modprobe -q veth 2>/dev/null || true
    ip link add "$probe" type veth peer name "${probe:0:13}p" >/dev/null 2>&1 \
      || die "cannot create veth pairs (kernel without CONFIG_VETH?)"
  fi
  ip link del "$probe" >/dev/null 2>&1 || true
  modprobe -q bridge 2>/dev/null || true
fi

# ------------------------------------------------------- fuzzing tools
# The fuzz targets (fuzz/, scripts/fuzz.sh) need a nightly toolchain and cargo-fuzz.
# ACM_SETUP_SKIP_FUZZ=1 skips this (a laptop that never fuzzes).
fuzz_tools="fuzz tools skipped"
if [ "${ACM_SETUP_SKIP_FUZZ:-0}" != 1 ] && command -v rustup >/dev/null 2>&1; then
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal >/dev/null 2>&1 \
      || die "cannot install the nightly toolchain (rustup toolchain install nightly)"
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz >/dev/null 2>&1 || die "cannot install cargo-fuzz (cargo install cargo-fuzz)"
  fi
  fuzz_tools="nightly + $(cargo fuzz --version 2>/dev/null)"
fi

if is_root; then checked="veth ok, system nginx stopped"; else checked="veth and system nginx not checked (not root)"; fi
echo "setup: ok: ${installed_now}, hugepages ${have}x2MB (${free_pages} free) on ${HUGE_MNT}, /dev/net/tun ok, ${fuzz_tools}, ${checked}"
