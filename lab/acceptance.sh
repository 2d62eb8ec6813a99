#!/usr/bin/env bash
# The issues' acceptance checks, run against the appliance `make run` started, with numbers.
#
#   make run && lab/acceptance.sh        (as root; LAB=prefix for another lab)
#
# 1. acmctl list --json: the lab's three bindings are active.
# 2. 1,000 Add/Remove primitives through acmctl, then acmctl latency --json: p50/p99 per primitive.
# 3. kill rs2's HTTP server: how long until rs2 leaves the active set (target < 1 s); then it is
#    started again and comes back.
# 4. A rolling restart of rs1..rs3 under hey load through the VIP: failed requests (target 0).
# Exits non-zero when a check fails. Timings are printed, not asserted, except the zero-failure
# and "leaves the active set at all" checks.
set -euo pipefail

P=${LAB:-acm}
STATE=${ACM_LAB_STATE:-/run/acm-lab/$P}
BIN=${ACM_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
export ACM_CONTROLPLANE_SOCKET=$STATE/controlplane.sock
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -S "$ACM_CONTROLPLANE_SOCKET" ] || fail "no controlplane at $ACM_CONTROLPLANE_SOCKET (make run first)"
for t in python3 hey; do command -v "$t" > /dev/null || fail "$t not found (make setup)"; done
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# state RIP: the binding's state in the CM's cache ("" when absent)
state() {
  "$BIN/acmctl" list --json | python3 -c '
import json, sys
for b in json.load(sys.stdin):
    if b["key"]["real"]["rip"] == sys.argv[1]:
        print(b["state"]); break' "$1"
}

echo "== 1. the lab's bindings"
n=$("$BIN/acmctl" list --json | python3 -c 'import json,sys; print(sum(b["state"] == "active" for b in json.load(sys.stdin)))')
"$BIN/acmctl" list
[ "$n" -ge 3 ] || fail "$n active bindings, want 3"
echo "ok: $n active"

echo "== 2. 1,000 Add/Remove primitives through acmctl"
"$BIN/acmctl" latency --reset > /dev/null
t0=$(date +%s%N)
for i in $(seq 500); do
  "$BIN/acmctl" add 10.0.0.100:80 10.0.1.14:80 > /dev/null
  "$BIN/acmctl" remove 10.0.0.100:80 10.0.1.14:80 > /dev/null
done
echo "1,000 acmctl processes in $(ms "$t0") ms"
"$BIN/acmctl" latency
"$BIN/acmctl" latency --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
rows = d if isinstance(d, list) else d.get("histograms", d.get("rows", []))
for r in rows:
    print("  %-8s %-8s count %5d  p50 %7.1f us  p99 %7.1f us" % (r.get("primitive"), r.get("switch"), r.get("count", 0), r.get("p50_us", 0), r.get("p99_us", 0)))
' || true

echo "== 3. kill rs2's HTTP server"
[ "$(state 10.0.1.12)" = active ] || fail "rs2 is not active before the test"
t0=$(date +%s%N)
ip netns pids "$P-rs2" | xargs -r kill -9
out=""
for _ in $(seq 1000); do
  s=$(state 10.0.1.12)
  if [ "$s" != active ]; then out=$(ms "$t0"); break; fi
  sleep 0.005
done
[ -n "$out" ] || fail "rs2 still active 5 s after its server was killed"
echo "rs2 left the active set after $out ms (state now: $(state 10.0.1.12)); target < 1000 ms"
d=$STATE/rs2
ip netns exec "$P-rs2" nginx -q -p "$d" -e "$d/error.log" -c "$d/nginx.conf"
t0=$(date +%s%N)
for _ in $(seq 2000); do [ "$(state 10.0.1.12)" = active ] && break; sleep 0.01; done
[ "$(state 10.0.1.12)" = active ] || fail "rs2 did not come back after its server restarted"
echo "rs2 active again $(ms "$t0") ms after its server restarted (hold-down, then health checks)"

echo "== 4. rolling restart of rs1..rs3 under load"
script=$STATE/restart-rs.sh
cat > "$script" <<SH
#!/bin/sh
set -eu
i=\$(( \${1##*.} - 10 )); dir=$STATE/rs\$i
pid=\$(cat "\$dir/nginx.pid")
kill -QUIT "\$pid"
n=0
while st=\$(ps -o stat= -p "\$pid" 2>/dev/null) && [ "\${st#Z}" = "\$st" ]; do
  n=\$((n + 1)); [ \$n -lt 200 ] || { echo "nginx \$pid did not stop" >&2; exit 1; }
  sleep 0.05
done
sleep 0.3
ip netns exec $P-rs\$i nginx -q -p "\$dir" -e "\$dir/error.log" -c "\$dir/nginx.conf"
SH
chmod +x "$script"
report=$STATE/hey.txt
ip netns exec "$P-client" hey -z 25s -c 8 -q 40 -disable-keepalive -t 5 http://10.0.0.100/ > "$report" &
HEY=$!
sleep 2
"$BIN/acmctl" rolling-restart --vip 10.0.0.100:80 --each "$script {server}" \
  --drain-timeout 20s --health-timeout 20s --probe-interface "${P}t1"
wait "$HEY"
grep -E "Requests/sec|\[[0-9]+\]|Error" "$report" || true
grep -q "Error distribution" "$report" && fail "failed requests during the rolling restart ($report)"
[ "$(grep -cE '^\s*\[[0-9]+\]' "$report")" = 1 ] || fail "responses other than 200 ($report)"
echo "ok: zero failed requests"
echo "== all acceptance checks passed"
