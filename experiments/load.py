#!/usr/bin/env python3
"""Open-loop HTTP load for the paper's experiments (experiments/run.py), run in the client's
netns. Each request is a new connection (`Connection: close`), started on schedule whether or
not earlier ones have answered, so an overloaded service shows as climbing latency and
failures, not as a slower client. Writes one JSON line per second and target:

  {"t": 12, "target": "high", "ok": 198, "fail": 0, "lat_ms": 21.4, "by": {"rs1 v1": 99, ...}}

`--target NAME=HOST:PORT=SCHEDULE`: SCHEDULE is `t0:rate0,t1:rate1,...` (requests/s, linear
between the points, constant after the last).
"""
import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict


def rate_at(schedule, t):
    if t <= schedule[0][0]:
        return schedule[0][1]
    for (t0, r0), (t1, r1) in zip(schedule, schedule[1:]):
        if t0 <= t < t1:
            return r0 + (r1 - r0) * (t - t0) / (t1 - t0)
    return schedule[-1][1]


async def one(host, port, timeout, stats, key):
    start = time.monotonic()
    label = None
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        w.write(f"GET /work HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(r.read(), timeout)
        w.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 200"):
            label = body.decode(errors="replace").strip()
    except (OSError, asyncio.TimeoutError):
        pass
    s = stats[key]
    if label is None:
        s["fail"] += 1
    else:
        s["ok"] += 1
        s["lat"] += time.monotonic() - start
        s["by"][label] += 1


def new_bin():
    return {"ok": 0, "fail": 0, "lat": 0.0, "by": defaultdict(int)}


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", action="append", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()
    targets = []
    for spec in a.target:
        name, addr, sched = spec.split("=")
        host, port = addr.rsplit(":", 1)
        points = [tuple(float(x) for x in p.split(":")) for p in sched.split(",")]
        targets.append((name, host, int(port), points))

    stats = defaultdict(new_bin)  # (second, name) -> bin
    start = time.monotonic()
    tasks = set()
    next_at = {name: 0.0 for name, *_ in targets}
    emitted = 0
    while True:
        now = time.monotonic() - start
        if now >= a.duration:
            break
        for name, host, port, points in targets:
            while next_at[name] <= now:
                r = rate_at(points, next_at[name])
                key = (int(next_at[name]), name)
                if r > 0:
                    t = asyncio.ensure_future(one(host, port, a.timeout, stats, key))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
                next_at[name] += 1.0 / r if r > 0 else 0.1
        # Emit every second that can no longer change (its requests have timed out).
        while emitted < int(now - a.timeout - 1):
            emit(stats, emitted, targets)
            emitted += 1
        await asyncio.sleep(0.002)
    if tasks:
        await asyncio.wait(tasks, timeout=a.timeout + 1)
    while emitted < int(a.duration):
        emit(stats, emitted, targets)
        emitted += 1


def emit(stats, sec, targets):
    for name, *_ in targets:
        s = stats.pop((sec, name), new_bin())
        lat = 1000 * s["lat"] / s["ok"] if s["ok"] else None
        line = {"t": sec, "target": name, "ok": s["ok"], "fail": s["fail"], "lat_ms": lat, "by": dict(s["by"])}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
