//! Talking to the dataplane's switch API during a run: counters before and after, config
//! churn at a fixed rate, and removing a binding for the disruption measurement.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use acm::{BindingKey, BindingParams, Proto, RealServer, ServiceKey};
use anyhow::{Context, Result};
use dataplane::api::client::Client;
use dataplane::api::Stats;
use pktgen::histogram::Histogram;
use pktgen::summary::Churn;

/// The binding of a real server to the run's service.
pub(crate) fn binding(vip: Ipv4Addr, vport: u16, proto: Proto, rs: (Ipv4Addr, u16)) -> BindingKey {
    BindingKey { service: ServiceKey { vip, proto, vport }, real: RealServer { rip: rs.0, rport: rs.1 } }
}

pub(crate) fn connect(sock: &Path) -> Result<Client> {
    Client::connect(sock).with_context(|| format!("switch API at {}", sock.display()))
}

pub(crate) fn stats(sock: &Path) -> Result<Stats> {
    Ok(connect(sock)?.stats()?)
}

/// Waits until every Maglev table of the device is exact (no change waiting for its build);
/// returns the milliseconds waited. Polls the counters; fails after `timeout`.
pub(crate) fn wait_exact_maglev(sock: &Path, timeout: Duration) -> Result<f64> {
    let start = Instant::now();
    let mut client = connect(sock)?;
    loop {
        if !client.stats()?.maglev.pending {
            return Ok(start.elapsed().as_secs_f64() * 1e3);
        }
        if start.elapsed() > timeout {
            anyhow::bail!("the device's Maglev tables are still being built after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The dataplane's counters over a phase: new flows and drops of our service, drops by
/// reason, per-port rx/tx.
pub(crate) fn stats_delta(before: &Stats, after: &Stats, service: &ServiceKey) -> serde_json::Value {
    let svc = |s: &Stats| s.services.iter().find(|x| x.key == *service).cloned();
    let (b, a) = (svc(before), svc(after));
    let d = |f: fn(&dataplane::api::ServiceStats) -> u64| match (&b, &a) {
        (Some(b), Some(a)) => f(a).saturating_sub(f(b)),
        (None, Some(a)) => f(a),
        _ => 0,
    };
    let mut drops = BTreeMap::new();
    for (k, v) in &after.drops {
        let n = v.saturating_sub(before.drops.get(k).copied().unwrap_or(0));
        if n > 0 {
            drops.insert(k.clone(), n);
        }
    }
    let ports: Vec<serde_json::Value> = after
        .ports
        .iter()
        .zip(before.ports.iter())
        .map(|(a, b)| {
            serde_json::json!({
                "name": a.name,
                "rx_packets": a.rx_packets.saturating_sub(b.rx_packets),
                "tx_packets": a.tx_packets.saturating_sub(b.tx_packets),
                "rx_missed": a.rx_missed.saturating_sub(b.rx_missed),
                "tx_errors": a.tx_errors.saturating_sub(b.tx_errors),
            })
        })
        .collect();
    serde_json::json!({
        "new_flows": d(|s| s.new_flows),
        "packets_in": d(|s| s.packets_in),
        "packets_out": d(|s| s.packets_out),
        "active_flows": a.as_ref().map_or(0, |s| s.active_flows),
        "drops": drops,
        "ports": ports,
        "worker_flows": after.workers.iter().map(|w| w.flows).collect::<Vec<_>>(),
        "maglev": maglev_delta(&before.maglev, &after.maglev),
    })
}

/// Exact Maglev builds over a phase: rounds and tables built, the longest build since the
/// dataplane started, and how long changes waited for their exact table (mean over the
/// phase's rounds, longest since start).
fn maglev_delta(b: &dataplane::api::MaglevStats, a: &dataplane::api::MaglevStats) -> serde_json::Value {
    let rounds = a.rounds.saturating_sub(b.rounds);
    let waited = a.converge_us_total.saturating_sub(b.converge_us_total);
    serde_json::json!({
        "rounds": rounds,
        "tables_built": a.tables_built.saturating_sub(b.tables_built),
        "build_us_max": a.build_us_max,
        "build_us_mean": if rounds > 0 { a.build_us_total.saturating_sub(b.build_us_total) as f64 / rounds as f64 } else { 0.0 },
        "exact_after_us_mean": if rounds > 0 { waited as f64 / rounds as f64 } else { 0.0 },
        "exact_after_us_max": a.converge_us_max,
        "pending": a.pending,
    })
}

/// A thread making `rate` binding changes per second until stopped: the real servers in
/// turn are removed (drained) and added back, so their established flows must keep
/// flowing.
pub(crate) struct ChurnThread {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<(Churn, Histogram)>>,
}

impl ChurnThread {
    pub(crate) fn start(sock: PathBuf, keys: Vec<BindingKey>, rate: f64) -> Result<ChurnThread> {
        let mut client = connect(&sock)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new().name("churn".into()).spawn(move || {
            let mut ack = Histogram::new();
            let mut rtt = Histogram::new();
            let (mut changes, mut errors) = (0u64, 0u64);
            let start = Instant::now();
            let period = Duration::from_secs_f64(1.0 / rate);
            let mut k = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                let due = start + period.mul_f64(k as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let key = keys[((k / 2) % keys.len() as u64) as usize];
                let t = Instant::now();
                let r = if k & 1 == 0 { client.remove(key) } else { client.add(key, BindingParams::default()) };
                match r {
                    Ok(a) => {
                        rtt.record(t.elapsed().as_nanos() as u64);
                        ack.record(a.timing.acked_ns.saturating_sub(a.timing.received_ns));
                        changes += 1;
                    }
                    Err(e) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("pktgen: churn change {k} failed: {e}");
                        }
                    }
                }
                k += 1;
            }
            // Leave every binding active.
            if k % 2 == 1 {
                let key = keys[(((k - 1) / 2) % keys.len() as u64) as usize];
                let _ = client.add(key, BindingParams::default());
            }
            let secs = start.elapsed().as_secs_f64();
            Ok((
                Churn {
                    rate_target: rate,
                    rate: changes as f64 / secs,
                    changes,
                    errors,
                    config_latency_us: ack.summary_us(),
                    rtt_us: rtt.summary_us(),
                },
                ack,
            ))
        })?;
        Ok(ChurnThread { stop, handle })
    }

    pub(crate) fn finish(self) -> Result<(Churn, Histogram)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().map_err(|_| anyhow::anyhow!("churn thread panicked"))?
    }
}
