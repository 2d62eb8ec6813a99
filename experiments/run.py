#!/usr/bin/env python3
"""The ACM paper's §4 experiments, reproduced in the lab with real clients, real servers and
this appliance, each drawn as a figure (time on the x-axis) under docs/experiments/.

  experiments/run.py [--only rolling,admission,replace] [--out docs/experiments]

(`make experiments` runs them all.) It builds its own lab (prefix `exp`, so a `make run`
demo can stay up), starts the appliance in it, and for each experiment starts capacity-limited
HTTP servers on port 8080 in the real servers' netns (experiments/server.py), binds them
through the Connection Manager (`acmctl`), drives an open-loop load from the client's netns
(experiments/load.py), performs the experiment's actions at fixed times, and writes
NAME.tsv (the data, one row a second) and NAME.svg (gnuplot). The lab is removed at the end,
whatever happens.

Figures (numbers as in the paper):
Each server answers in 20 ms with 2 workers: 100 requests/s, 300 for the three (the machine
has 2 cores, one of them the dataplane's worker; the load is scaled to that).

  rolling   (Fig. 4)  online upgrade by rolling reboot: three servers restarted one at a time
                      into version 2 under load (`acmctl rolling-restart`); requests by version,
                      failed requests.
  admission (Fig. 7)  admission control: a high- and a low-priority VIP on the same three
                      servers, offered more than they can serve; the low-priority VIP's drop
                      fraction raised to 0.5, then 1.0 (the Drop primitive at the switch).
  replace   (Fig. 3)  preventive replacement: two active servers and a standby; one server,
                      about to fail, removes itself (drain) and the standby is added.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
P = "exp"
STATE = Path(f"/run/acm-lab/{P}")
BIN = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
CLIENT_NS = f"{P}-client"
RS = {i: f"10.0.1.{10 + i}" for i in (1, 2, 3)}
HIGH, LOW = "10.0.0.100", "10.0.0.101"


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, text=True, capture_output=True, **kw)


def acm(*args):
    r = sh(str(BIN / "acmctl"), "-s", str(STATE / "controlplane.sock"), *args, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"acmctl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class Lab:
    def __enter__(self):
        sh(str(ROOT / "lab/lab.sh"), "up", P)
        env = dict(os.environ, ACM_LAB_PREFIX=P, ACM_LAB_STATE=str(STATE),
                   ACM_APPLIANCE_PIDFILE=str(STATE / "appliance.pid"), ACM_BIN_DIR=str(BIN),
                   ACM_TELNET_LISTEN="127.0.0.1:2424")
        r = subprocess.run(["bash", str(ROOT / "lab/run-appliance.sh")], env=env, text=True, capture_output=True)
        if r.returncode != 0:
            self.__exit__(None, None, None)
            sys.exit(f"experiments: the appliance did not start:\n{r.stderr}")
        return self

    def __exit__(self, *exc):
        if os.environ.get("EXP_KEEP") == "1":
            print(f"experiments: EXP_KEEP=1: lab {P} left up", flush=True)
            return
        stop_servers()
        sh(str(ROOT / "lab/stop-appliance.sh"), str(STATE / "appliance.pid"), check=False)
        sh(str(ROOT / "lab/lab.sh"), "down", P, check=False)


SERVER_ARGS = ""


def start_server(i, version="v1"):
    env = dict(os.environ, EXP_PREFIX=P, EXP_STATE=str(STATE), EXP_SERVER_ARGS=SERVER_ARGS)
    sh(str(ROOT / "experiments/restart-server.sh"), RS[i], version, env=env)


def stop_servers():
    for i in RS:
        pidf = STATE / f"exp-rs{i}.pid"
        if pidf.exists():
            sh("kill", "-TERM", pidf.read_text().strip(), check=False)
            pidf.unlink()


def bind(vip, *servers):
    for i in servers:
        acm("add", f"{vip}:8080", f"{RS[i]}:8080")


def unbind_all():
    for b in json.loads(acm("list", "--json")):
        key = b["key"]
        if key["service"]["vport"] == 8080:
            acm("force-remove", f"{key['service']['vip']}:8080", f"{key['real']['rip']}:{key['real']['rport']}")


def run(name, targets, duration, actions):
    """Runs the load for `duration` s and `actions` [(t, label, fn)] beside it; returns the
    per-second rows and the times actions happened."""
    cmd = ["ip", "netns", "exec", CLIENT_NS, sys.executable, str(ROOT / "experiments/load.py"),
           "--duration", str(duration)]
    for t in targets:
        cmd += ["--target", t]
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    start = time.monotonic()
    events = []

    def act():
        for t, label, fn in actions:
            time.sleep(max(0.0, start + t - time.monotonic()))
            events.append((round(time.monotonic() - start, 1), label))
            print(f"  [{name}] t={events[-1][0]:5.1f}s {label}", flush=True)
            fn()

    th = threading.Thread(target=act, daemon=True)
    th.start()
    rows = [json.loads(l) for l in load.stdout]
    load.wait()
    th.join(timeout=120)
    return rows, events


def write(out, name, columns, rows, events, title, ylabel, plots, y2=None):
    """NAME.tsv with `columns` (functions of a second's rows) and NAME.svg by gnuplot."""
    by_t = defaultdict(dict)
    for r in rows:
        by_t[r["t"]][r["target"]] = r
    tsv = out / f"{name}.tsv"
    with open(tsv, "w") as f:
        f.write("# " + "\t".join(["t"] + [c for c, _ in columns]) + "\n")
        for t in sorted(by_t):
            vals = [fn(by_t[t]) for _, fn in columns]
            f.write("\t".join([str(t)] + ["NaN" if v is None else f"{v:.3f}".rstrip("0").rstrip(".") for v in vals]) + "\n")
    arrows = "\n".join(
        f'set arrow from {t},graph 0 to {t},graph 1 nohead dt 2 lc rgb "#888888"\n'
        f'set label "{label}" at {t},graph 0.97 rotate by 90 right font ",9" tc rgb "#555555" offset -0.6,0'
        for t, label in events)
    gp = f"""set terminal svg size 900,420 dynamic font "sans,12" background rgb "white"
set output "{out / (name + '.svg')}"
set title "{title}"
set xlabel "time (s)"
set ylabel "{ylabel}"
set key outside bottom center horizontal
set grid ytics lc rgb "#dddddd"
set yrange [0:*]
{"set y2label '" + y2 + "'" if y2 else ""}
{"set y2tics" if y2 else ""}
{"set y2range [0:*]" if y2 else ""}
{"set ytics nomirror" if y2 else ""}
{arrows}
plot {", ".join(f"'{tsv}' using 1:{i} {spec}" for i, spec in plots)}
"""
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"gnuplot: {r.stderr}")


def by_label(sec, target, pred):
    r = sec.get(target)
    return sum(n for lab, n in r["by"].items() if pred(lab)) if r else 0


def rolling(out):
    """Fig. 4: rolling upgrade under load: no request fails."""
    for i in RS:
        start_server(i, "v1")
    bind(HIGH, 1, 2, 3)
    restart = str(ROOT / "experiments/restart-server.sh") + " {server} v2"

    def roll():
        env_cmd = (f"EXP_PREFIX={P} EXP_STATE={STATE} EXP_SERVER_ARGS='{SERVER_ARGS}' {restart}")
        acm("rolling-restart", "--vip", f"{HIGH}:8080", "--each", env_cmd, "--probe-interface", f"{P}t1",
            "--drain-timeout", "20s")

    rows, events = run("rolling", [f"www={HIGH}:8080=0:150"], 70, [(10, "rolling restart starts", roll)])
    fails = sum(r["fail"] for r in rows)
    write(out, "rolling",
          [("v1", lambda s: by_label(s, "www", lambda l: l.endswith("v1"))),
           ("v2", lambda s: by_label(s, "www", lambda l: l.endswith("v2"))),
           ("failed", lambda s: s["www"]["fail"] if "www" in s else 0)] +
          [(f"rs{i}", lambda s, i=i: by_label(s, "www", lambda l: l.startswith(f"rs{i} "))) for i in RS],
          rows, events, f"Rolling upgrade of 3 servers under 150 req/s: {fails} failed requests",
          "requests/s",
          [(2, "w l lw 2 t 'answered by version 1'"), (3, "w l lw 2 t 'answered by version 2'"),
           (4, "w l lw 2 lc rgb 'red' t 'failed'")] +
          [(5 + k, f"w l dt 3 t 'rs{i}'") for k, i in enumerate(RS)])
    return {"failed": fails, "requests": sum(r["ok"] + r["fail"] for r in rows)}


def admission(out):
    """Fig. 7: admission control by the low-priority VIP's drop fraction."""
    for i in RS:
        start_server(i, "v1")
    bind(HIGH, 1, 2, 3)
    bind(LOW, 1, 2, 3)
    rows, events = run(
        "admission", [f"high={HIGH}:8080=0:200", f"low={LOW}:8080=0:200"], 60,
        [(20, "drop low 0.5", lambda: acm("drop", f"{LOW}:8080", "0.5")),
         (40, "drop low 1.0", lambda: acm("drop", f"{LOW}:8080", "1.0"))])
    acm("drop", f"{LOW}:8080", "0")
    write(out, "admission",
          [("high", lambda s: s["high"]["ok"] if "high" in s else 0),
           ("low", lambda s: s["low"]["ok"] if "low" in s else 0),
           ("high_lat_ms", lambda s: s.get("high", {}).get("lat_ms")),
           ("low_lat_ms", lambda s: s.get("low", {}).get("lat_ms"))],
          rows, events, "Admission control: 400 req/s offered to servers that serve 300",
          "answered requests/s",
          [(2, "w l lw 2 t 'high priority'"), (3, "w l lw 2 t 'low priority'"),
           (4, "w l dt 2 axes x1y2 t 'high: mean latency (ms)'"),
           (5, "w l dt 2 axes x1y2 t 'low: mean latency (ms)'")], y2="mean latency (ms)")
    return {}


def replace(out):
    """Fig. 3: a server about to fail removes itself; the standby takes its place."""
    for i in RS:
        start_server(i, "v1")
    bind(HIGH, 1, 2)

    def swap():
        acm("remove", f"{HIGH}:8080", f"{RS[2]}:8080")
        acm("add", f"{HIGH}:8080", f"{RS[3]}:8080")

    rows, events = run("replace", [f"www={HIGH}:8080=0:150"], 50, [(20, "rs2 drains, standby rs3 added", swap)])
    fails = sum(r["fail"] for r in rows)
    write(out, "replace",
          [(f"rs{i}", lambda s, i=i: by_label(s, "www", lambda l: l.startswith(f"rs{i} "))) for i in RS] +
          [("failed", lambda s: s["www"]["fail"] if "www" in s else 0)],
          rows, events, f"Preventive replacement of a server under 150 req/s: {fails} failed requests",
          "requests/s",
          [(2, "w l lw 2 t 'rs1'"), (3, "w l lw 2 t 'rs2 (leaves)'"), (4, "w l lw 2 t 'rs3 (standby)'"),
           (5, "w l lw 2 lc rgb 'red' t 'failed'")])
    return {"failed": fails}


EXPERIMENTS = {"rolling": rolling, "admission": admission, "replace": replace}


def main():
    global SERVER_ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(EXPERIMENTS))
    ap.add_argument("--out", default=str(ROOT / "docs/experiments"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--service-ms", type=float, default=20.0)
    a = ap.parse_args()
    SERVER_ARGS = f"--workers {a.workers} --service-ms {a.service_ms}"
    if os.geteuid() != 0:
        sys.exit("experiments: needs root (network namespaces)")
    for tool in ("gnuplot", "ip", "python3"):
        if not shutil.which(tool):
            sys.exit(f"experiments: {tool} not found (make setup installs it)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    with Lab():
        for name in a.only.split(","):
            print(f"== {name}", flush=True)
            results[name] = EXPERIMENTS[name](out)
            unbind_all()
            stop_servers()
            print(f"   {results[name]}", flush=True)
    load = os.getloadavg()
    print(f"experiments: {results} (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")


if __name__ == "__main__":
    main()
