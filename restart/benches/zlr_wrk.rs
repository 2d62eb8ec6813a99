//! zlr-httpd with the framework on vs off under wrk on loopback (side by
//! side: both servers loaded at the same time by two wrk processes, so load
//! from elsewhere on the machine hits both alike), throughput under repeated faults, and
//! restart time (fault → serving again) p50/p99.
//!
//! `cargo bench -p restart --bench zlr_wrk` (needs wrk). Env:
//! `ZLR_BENCH_SECS` (10), `ZLR_BENCH_ROUNDS` (3), `ZLR_BENCH_CONNS` (32),
//! `ZLR_BENCH_RESTARTS` (200), `ZLR_BENCH_NICE` (0: both servers, restartd
//! and its service run at this nice level, e.g. -10 as on an appliance whose
//! management processes are prioritised; wrk stays at 0). Writes
//! `$CARGO_TARGET_DIR/zlr-bench.json`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use restart::proto::{Reply, Request, StatusReport};

const RESTARTD: &str = env!("CARGO_BIN_EXE_restartd");
const HTTPD: &str = env!("CARGO_BIN_EXE_zlr-httpd");

fn env_or(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn status(control: &Path) -> Option<StatusReport> {
    let sock = restart::fdpass::connect(control).ok()?;
    restart::fdpass::send(sock.as_fd(), &serde_json::to_vec(&Request::Status).ok()?, &[]).ok()?;
    let mut buf = Vec::new();
    restart::fdpass::recv(sock.as_fd(), &mut buf, false).ok()??;
    match serde_json::from_slice(&buf).ok()? {
        Reply::Status(s) => Some(s),
        _ => None,
    }
}

fn wait_ready(control: &Path, generation: u64) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = status(control) {
            let r = &s.roles[0];
            if r.generation >= generation && r.ready {
                return r.pid.unwrap();
            }
        }
        assert!(Instant::now() < deadline, "generation {generation} never ready");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn kill(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        kill(self.0.id(), rustix::process::Signal::TERM);
        let _ = self.0.wait();
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
struct Wrk {
    rps: f64,
    requests: u64,
    /// Server CPU time (user + system, all its processes) per request, µs.
    cpu_us_per_req: f64,
    lat_avg_ms: f64,
    lat_p50_ms: f64,
    lat_p99_ms: f64,
    errors: u64,
    non2xx: u64,
}

fn ms(v: &str) -> f64 {
    let v = v.trim();
    let (num, mul) = if let Some(x) = v.strip_suffix("us") {
        (x, 1e-3)
    } else if let Some(x) = v.strip_suffix("ms") {
        (x, 1.0)
    } else if let Some(x) = v.strip_suffix('s') {
        (x, 1e3)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * mul
}

fn wrk(port: u16, secs: u64, conns: u64, path: &str) -> Wrk {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), "--latency"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut w = Wrk::default();
    for l in text.lines() {
        let t: Vec<&str> = l.split_whitespace().collect();
        match t.as_slice() {
            ["Requests/sec:", v, ..] => w.rps = v.parse().unwrap_or(0.0),
            [n, "requests", "in", ..] => w.requests = n.parse().unwrap_or(0),
            ["Latency", avg, ..] if ms(avg).is_finite() => w.lat_avg_ms = ms(avg),
            ["50%", v] => w.lat_p50_ms = ms(v),
            ["99%", v] => w.lat_p99_ms = ms(v),
            ["Socket", "errors:", rest @ ..] => {
                w.errors = rest.iter().filter_map(|x| x.trim_end_matches(',').parse::<u64>().ok()).sum();
            }
            ["Non-2xx", "or", "3xx", "responses:", v] => w.non2xx = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    w
}

/// utime + stime of a process in clock ticks (100 Hz).
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// wrk against `port` while accounting the CPU time of `pids()`.
fn wrk_cpu(port: u16, secs: u64, conns: u64, pids: &dyn Fn() -> Vec<u32>) -> Wrk {
    let before: u64 = pids().iter().map(|&p| cpu_ticks(p)).sum();
    let mut w = wrk(port, secs, conns, "/index.html");
    let after: u64 = pids().iter().map(|&p| cpu_ticks(p)).sum();
    if w.requests > 0 {
        w.cpu_us_per_req = after.saturating_sub(before) as f64 * 10_000.0 / w.requests as f64;
    }
    w
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() as f64 - 1.0) * p).round() as usize]
}

fn get(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /index.html HTTP/1.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut b = Vec::new();
    s.read_to_end(&mut b).is_ok() && b.starts_with(b"HTTP/1.1 200")
}

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("zlr_wrk: wrk not installed; skipping");
        return;
    }
    // criterion-style args (e.g. --bench) are ignored.
    let secs = env_or("ZLR_BENCH_SECS", 5);
    let rounds = env_or("ZLR_BENCH_ROUNDS", 6);
    let conns = env_or("ZLR_BENCH_CONNS", 32);
    let restarts = env_or("ZLR_BENCH_RESTARTS", 200) as usize;
    let nice: i32 = std::env::var("ZLR_BENCH_NICE").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let niced = |prog: &str| {
        let mut c = Command::new("nice");
        c.args(["-n", &nice.to_string(), prog]);
        c
    };
    let dir = std::env::temp_dir().join(format!("zlr-bench-{}", std::process::id()));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), vec![b'x'; 1024]).unwrap();
    let (port_off, port_on) = (free_port(), free_port());
    let control: PathBuf = dir.join("restartd.sock");
    let state = format!("zlr-bench-{}", std::process::id());
    let off_proc = Proc(
        niced(HTTPD)
            .args(["--no-framework", "--root"])
            .arg(&www)
            .args(["--listen", &format!("127.0.0.1:{port_off}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let on_proc = Proc(
        niced(RESTARTD)
            .arg("--control")
            .arg(&control)
            .args(["--fault-window", "0", "--"])
            .arg(HTTPD)
            .arg("--root")
            .arg(&www)
            .args(["--listen", &format!("127.0.0.1:{port_on}"), "--state", &state])
            .env("RESTARTD_LOG", "warn")
            .env("ZLR_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&control, 1);
    while !get(port_off) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Warm up both.
    wrk(port_off, 1, conns, "/index.html");
    wrk(port_on, 1, conns, "/index.html");
    let off_pid = off_proc.0.id();
    let restartd_pid = on_proc.0.id();
    let ctl_for_pids = control.clone();
    let on_pids = move || vec![restartd_pid, status(&ctl_for_pids).and_then(|s| s.pid).unwrap_or(0)];
    let off_pids = move || vec![off_pid];
    let (mut off, mut on) = (Vec::new(), Vec::new());
    // Both servers are loaded at the same time by two wrk processes, so
    // whatever else runs on the machine hits both alike.
    for r in 0..rounds {
        let (a, b) = std::thread::scope(|sc| {
            let a = sc.spawn(|| wrk_cpu(port_off, secs, conns, &off_pids));
            let b = sc.spawn(|| wrk_cpu(port_on, secs, conns, &on_pids));
            (a.join().unwrap(), b.join().unwrap())
        });
        eprintln!("round {r} framework off: {a:?}");
        eprintln!("round {r} framework on : {b:?}");
        off.push(a);
        on.push(b);
    }
    // Under faults: SIGSEGV the framework-on server every second, paired
    // with a framework-off run right before each faulted run.
    let mut faulted_runs = Vec::new();
    let mut faulted_pairs = Vec::new();
    let mut kills = 0;
    for r in 0..rounds.div_ceil(2) {
        let ctl = control.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let killer = std::thread::spawn(move || {
            let mut kills = 0;
            loop {
                std::thread::sleep(Duration::from_millis(1000));
                if stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    break kills;
                }
                if let Some(pid) = status(&ctl).and_then(|s| s.pid) {
                    kill(pid, rustix::process::Signal::SEGV);
                    kills += 1;
                }
            }
        });
        let (base, w) = std::thread::scope(|sc| {
            let a = sc.spawn(|| wrk(port_off, secs, conns, "/index.html"));
            let b = sc.spawn(|| wrk(port_on, secs, conns, "/index.html"));
            (a.join().unwrap(), b.join().unwrap())
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let k = killer.join().unwrap();
        kills += k;
        eprintln!("fault round {r}: off {base:?} / on with {k} faults {w:?}");
        faulted_pairs.push((base.clone(), w.clone()));
        faulted_runs.push(w);
    }
    let faulted = Wrk {
        rps: median(faulted_runs.iter().map(|w| w.rps).collect()),
        requests: faulted_runs.iter().map(|w| w.requests).sum(),
        cpu_us_per_req: 0.0,
        lat_avg_ms: median(faulted_runs.iter().map(|w| w.lat_avg_ms).collect()),
        lat_p50_ms: median(faulted_runs.iter().map(|w| w.lat_p50_ms).collect()),
        lat_p99_ms: median(faulted_runs.iter().map(|w| w.lat_p99_ms).collect()),
        errors: faulted_runs.iter().map(|w| w.errors).sum(),
        non2xx: faulted_runs.iter().map(|w| w.non2xx).sum(),
    };
    // Restart time: fault → serving again.
    let mut client_ms = Vec::new();
    let mut restartd_ms = Vec::new();
    for _ in 0..restarts {
        let s = status(&control).unwrap();
        let (gen, pid) = (s.generation, s.pid.unwrap());
        let t0 = Instant::now();
        kill(pid, rustix::process::Signal::SEGV);
        let limit = Instant::now() + Duration::from_secs(10);
        while !get(port_on) {
            assert!(Instant::now() < limit, "not serving 10 s after a fault");
        }
        let dt = t0.elapsed().as_secs_f64() * 1e3;
        wait_ready(&control, gen + 1);
        let s = status(&control).unwrap();
        if s.generation == gen + 1 {
            client_ms.push(dt);
            if let Some(ms) = s.roles[0].last_restart_ms {
                restartd_ms.push(ms);
            }
        }
    }
    let m = |v: &[Wrk], f: fn(&Wrk) -> f64| median(v.iter().map(f).collect());
    let (off_rps, on_rps) = (m(&off, |w| w.rps), m(&on, |w| w.rps));
    let (off_lat, on_lat) = (m(&off, |w| w.lat_avg_ms), m(&on, |w| w.lat_avg_ms));
    let (off_p99, on_p99) = (m(&off, |w| w.lat_p99_ms), m(&on, |w| w.lat_p99_ms));
    // Overheads are medians of per-round paired ratios (the runs of a pair
    // are back to back, so load from elsewhere on the machine cancels best).
    let paired = |f: fn(&Wrk) -> f64, inverse: bool| {
        median(
            off.iter()
                .zip(&on)
                .map(|(a, b)| if inverse { (f(b) - f(a)) / f(a) * 100.0 } else { (f(a) - f(b)) / f(a) * 100.0 })
                .collect(),
        )
    };
    let tput = paired(|w| w.rps, false);
    let cpu = paired(|w| w.cpu_us_per_req, true);
    let (off_cpu, on_cpu) = (m(&off, |w| w.cpu_us_per_req), m(&on, |w| w.cpu_us_per_req));
    let lat = paired(|w| w.lat_avg_ms, true);
    let tput_f = median(faulted_pairs.iter().map(|(a, b)| (a.rps - b.rps) / a.rps * 100.0).collect());
    let lat_f =
        median(faulted_pairs.iter().map(|(a, b)| (b.lat_avg_ms - a.lat_avg_ms) / a.lat_avg_ms * 100.0).collect());
    let report = serde_json::json!({
        "secs": secs, "rounds": rounds, "conns": conns, "nice": nice,
        "loadavg_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "off": off, "on": on, "faulted_runs": faulted_runs, "faults": kills,
        "throughput_overhead_pct": tput,
        "cpu_per_request_overhead_pct": cpu,
        "latency_overhead_pct": lat,
        "throughput_overhead_with_faults_pct": tput_f,
        "latency_overhead_with_faults_pct": lat_f,
        "restart_client_ms": {"p50": pct(&client_ms, 0.5), "p99": pct(&client_ms, 0.99), "max": pct(&client_ms, 1.0), "n": client_ms.len()},
        "restart_restartd_ms": {"p50": pct(&restartd_ms, 0.5), "p99": pct(&restartd_ms, 0.99), "max": pct(&restartd_ms, 1.0), "n": restartd_ms.len()},
    });
    println!("| | framework off | framework on | on, 1 SIGSEGV/s ({kills} faults) |");
    println!("|---|---|---|---|");
    println!("| requests/s (median of {rounds}) | {off_rps:.0} | {on_rps:.0} | {:.0} |", faulted.rps);
    println!("| server CPU µs/request (median) | {off_cpu:.2} | {on_cpu:.2} | |");
    println!("| latency avg ms | {off_lat:.3} | {on_lat:.3} | {:.3} |", faulted.lat_avg_ms);
    println!("| latency p99 ms | {off_p99:.3} | {on_p99:.3} | {:.3} |", faulted.lat_p99_ms);
    println!(
        "| socket errors / non-2xx | {} / {} | {} / {} | {} / {} |",
        off.iter().map(|w| w.errors).sum::<u64>(),
        off.iter().map(|w| w.non2xx).sum::<u64>(),
        on.iter().map(|w| w.errors).sum::<u64>(),
        on.iter().map(|w| w.non2xx).sum::<u64>(),
        faulted.errors,
        faulted.non2xx
    );
    println!();
    println!("throughput overhead {tput:.2}% (with faults {tput_f:.2}%), latency overhead {lat:.2}% (with faults {lat_f:.2}%), server CPU per request overhead {cpu:.2}% — medians of paired rounds");
    println!("restart time, SIGSEGV → first response from the new generation (client view, n={}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        client_ms.len(), pct(&client_ms, 0.5), pct(&client_ms, 0.99), pct(&client_ms, 1.0));
    println!(
        "restart time, exit seen by restartd → new generation ready (n={}): p50 {:.2} ms, p99 {:.2} ms",
        restartd_ms.len(),
        pct(&restartd_ms, 0.5),
        pct(&restartd_ms, 0.99)
    );
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "target".into())
        .join("zlr-bench.json");
    let _ = std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap());
    println!("report: {}", out.display());
    let _ = std::fs::remove_dir_all(&dir);
    restart::region::Region::remove(&state, &restart::region::RegionOptions::default());
}
