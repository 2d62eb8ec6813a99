//! Restart time of the control plane under `restartd`: `kill -SEGV` → its API answers again
//! (a status request on a new connection), with 200 bindings in the cache and a telnet session
//! in config mode open, over repeated crashes (restartd's fault back-off off).
//!
//! ```text
//! cargo build --release -p restart          # restartd and restartctl beside the controlplane
//! cargo bench -p controlplane --bench restart
//! ```
//!
//! After the criterion group it checks that the cache and the telnet session came through
//! every crash, and prints p50/p90/max of the crashes it timed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::supervised::{api_up, gone, list_json, login_to_config, restart_bins, segv, start_with, FAKE};
use common::{acmctl_ok, wait_until, write_config};
use criterion::Criterion;

const STARTUP: &str = "server real rs1 10.0.1.11\n port http\nserver real rs2 10.0.1.12\n port http\n\
server virtual www 10.0.0.100\n port http\n bind http rs1 http rs2 http\n";

fn restart(c: &mut Criterion) {
    let Some((restartd, restartctl)) = restart_bins() else {
        panic!("restartd/restartctl are not beside the controlplane: cargo build --release -p restart");
    };
    let dir = tempfile::tempdir().unwrap();
    let f = write_config(dir.path(), FAKE, "");
    std::fs::write(&f.startup, STARTUP).unwrap();
    // --fault-window 0: repeated faults are not backed off (only for measuring).
    let mut sup = start_with(&f, &restartd, &restartctl, &["--fault-window", "0"]);
    for i in 0..200u32 {
        let rip = format!("10.1.{}.{}:80", i / 250, 1 + i % 250);
        acmctl_ok(&f.socket, &["add", "10.0.0.200:80", &rip]);
    }
    let mut telnet = login_to_config(f.telnet);
    let before = list_json(&f.socket);
    let mut all = Vec::new();
    let mut g = c.benchmark_group("controlplane_restart");
    g.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_millis(500));
    g.bench_function("sigsegv_to_api_answers/202_bindings+1_telnet", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let pid = sup.pid();
                let t0 = Instant::now();
                segv(pid);
                while !gone(pid) {
                    std::thread::sleep(Duration::from_micros(200));
                }
                while !api_up(&f.socket) {
                    std::thread::sleep(Duration::from_micros(200));
                }
                let took = t0.elapsed();
                total += took;
                all.push(took.as_secs_f64() * 1e3);
                // Untimed: restartd names the new generation before the next crash.
                wait_until("restartd names the new generation", Duration::from_secs(10), || {
                    sup.try_pid().is_some_and(|p| p != pid)
                });
            }
            total
        })
    });
    g.finish();
    // Everything came through: the cache, and the telnet session at its prompt.
    assert_eq!(list_json(&f.socket), before, "the binding cache changed across the crashes");
    use std::io::Write;
    telnet.write_all(b"exit\r\n").unwrap();
    let mut got = Vec::new();
    common::supervised::read_until(&mut telnet, &mut got, "ServerIron(config)#", Duration::from_secs(10));
    all.sort_by(f64::total_cmp);
    let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
    println!(
        "restart time (kill -SEGV -> API answers), {} crashes, 202 bindings, 1 telnet session: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        all.len(),
        q(0.5),
        q(0.9),
        q(1.0)
    );
    sup.stop();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    restart(&mut c);
    c.final_summary();
}
