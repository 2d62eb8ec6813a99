#!/usr/bin/env bash
# Restarts the experiment server at address $1 with software version $2 (rolling upgrade):
# SIGTERM (it answers what it holds, then exits), then the new version, back once it listens.
# Environment from experiments/run.py: EXP_PREFIX (lab prefix), EXP_STATE (state dir),
# EXP_SERVER_ARGS (workers and service time).
set -euo pipefail
addr=$1 version=$2
i=${addr##*.}; i=$((i - 10))               # 10.0.1.11 -> rs1
ns="${EXP_PREFIX}-rs$i" name="rs$i"
pidf="$EXP_STATE/exp-$name.pid"
if [ -s "$pidf" ]; then
  pid=$(cat "$pidf")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
fi
# shellcheck disable=SC2086
ip netns exec "$ns" python3 "$(dirname "$0")/server.py" --name "$name" --version "$version" \
  --pid-file "$pidf" $EXP_SERVER_ARGS > "$EXP_STATE/exp-$name.log" 2>&1 &
for _ in $(seq 100); do
  ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$addr/8080" 2>/dev/null && exit 0
  sleep 0.05
done
echo "restart-server: $name did not come back" >&2
exit 1
