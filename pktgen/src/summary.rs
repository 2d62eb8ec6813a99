//! What a pktgen run reports: the `--json` document and the terminal table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::histogram::LatencyUs;

/// Counters of one direction through the device under test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectionStats {
    /// Packets sent into the device in this direction during the measurement window.
    pub tx: u64,
    /// Valid packets received from it during the window.
    pub rx: u64,
    /// Invalid packets received during the whole run, by reason.
    pub invalid: BTreeMap<String, u64>,
    /// Sent minus received (valid or not) over the whole traffic phase, after draining.
    pub lost: i64,
    /// Packets that arrived with a lower sequence number than one already received.
    pub reorder: u64,
    /// Sent rate over the window, Mpps.
    pub tx_mpps: f64,
    /// Valid received rate over the window, Mpps: the forwarding rate.
    pub mpps: f64,
    /// Received rate in Gbit/s of Ethernet frames (with FCS, without preamble and gap).
    pub gbps: f64,
    /// Latency over the window (one way for forward, round trip for reverse), µs.
    pub latency_us: LatencyUs,
}

/// Opening the long-lived flows before the measurement (one SYN each, retried).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// Flows whose SYN arrived through the device.
    pub opened: u32,
    /// Flows still not seen after every round.
    pub missing: u32,
    /// Rounds used.
    pub rounds: u32,
    /// Seconds it took.
    pub seconds: f64,
    /// Rate at which SYNs got through in the first round, per second.
    pub syn_per_s: f64,
}

/// Binding changes made during the run (config churn).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Churn {
    /// Changes asked for per second.
    pub rate_target: f64,
    /// Changes acknowledged per second.
    pub rate: f64,
    /// Changes acknowledged.
    pub changes: u64,
    /// Changes refused or failed.
    pub errors: u64,
    /// Dataplane-measured latency (request received to every worker forwarding with it), µs.
    pub config_latency_us: LatencyUs,
    /// Client-measured round trip of a change, µs.
    pub rtt_us: LatencyUs,
}

/// Maglev disruption: one real server removed, the same flows opened again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Disruption {
    /// Real servers before.
    pub servers: usize,
    /// The one removed.
    pub removed: String,
    /// Flows compared (seen in both rounds).
    pub flows: u32,
    /// Flows that were on the removed server (they must move).
    pub on_removed: u32,
    /// Flows whose real server changed.
    pub moved: u32,
    /// moved / flows.
    pub fraction_moved: f64,
    /// The ideal: 1 / servers.
    pub ideal: f64,
}

/// Times the generator itself stopped polling during the measurement window: it shares a
/// core (with the control plane, the device's management thread, compiles), and while it is
/// off the core nothing drains its receive rings, so the device under test finds its
/// transmit ring full. Loss explained by these stalls is the harness's, not the device's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stalls {
    /// Gaps between two polls longer than `threshold_us`.
    pub count: u64,
    /// The threshold, µs.
    pub threshold_us: f64,
    /// Their total, ms.
    pub total_ms: f64,
    /// The longest gap, µs.
    pub max_us: f64,
    /// Packets one receive ring holds.
    pub ring_slots: u64,
    /// Stalls long enough for the traffic sent at the fixed rate to overflow a receive ring
    /// (fixed-rate runs only).
    pub overflowing: u64,
    /// Packets that could not fit during those stalls: Σ (gap × rate − ring slots).
    pub overflow_estimate: u64,
}

/// One pktgen run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Free-form label (`--label`).
    pub label: String,
    /// `nat` (dataplane) or `io` (reference forwarder).
    pub expect: String,
    /// `established`, `syn`, `mixed` or `disruption`.
    pub pattern: String,
    /// `tcp` or `udp`.
    pub proto: String,
    /// Frame size with FCS.
    pub frame_size: u16,
    /// Long-lived flows.
    pub flows: u32,
    /// Target rate: 0 = line (as fast as possible).
    pub rate_pps: f64,
    /// Measurement window, seconds.
    pub window_s: f64,
    /// Flow opening.
    pub setup: Setup,
    /// Client → server.
    pub forward: DirectionStats,
    /// Server → client (when pktgen answers as the real servers).
    pub reverse: Option<DirectionStats>,
    /// New connections (SYNs from fresh endpoints) forwarded per second in the window.
    pub new_conn_per_s: f64,
    /// Packets per real server in the window (`rip:rport` → packets).
    pub servers: BTreeMap<String, u64>,
    /// Config churn, if any.
    pub churn: Option<Churn>,
    /// Disruption measurement, if any.
    pub disruption: Option<Disruption>,
    /// The dataplane's own counters over the traffic phase (via the switch API), if asked.
    pub dataplane: Option<serde_json::Value>,
    /// Forward latency CDF over the window: (µs, fraction ≤).
    pub latency_cdf_us: Vec<(f64, f64)>,
    /// The generator's own stalls during the window.
    #[serde(default)]
    pub generator_stalls: Option<Stalls>,
}

impl Summary {
    /// A human table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "pktgen {} — {} {} {} B, {} flows, expect {}, rate {}",
            self.label,
            self.pattern,
            self.proto,
            self.frame_size,
            self.flows,
            self.expect,
            if self.rate_pps == 0.0 { "line".to_string() } else { format!("{:.0} pps", self.rate_pps) }
        );
        let _ = writeln!(
            s,
            "setup: {} flows opened, {} missing, {} rounds, {:.2} s",
            self.setup.opened, self.setup.missing, self.setup.rounds, self.setup.seconds
        );
        let _ = writeln!(
            s,
            "{:<9} {:>12} {:>12} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "direction", "tx", "rx", "tx Mpps", "rx Mpps", "Gbit/s", "lost", "reorder", "lat p50", "lat p99", "lat max"
        );
        let mut row = |name: &str, d: &DirectionStats| {
            let _ = writeln!(
                s,
                "{:<9} {:>12} {:>12} {:>9.3} {:>9.3} {:>8.2} {:>8} {:>9} {:>8.1}µ {:>8.1}µ {:>8.1}µ",
                name,
                d.tx,
                d.rx,
                d.tx_mpps,
                d.mpps,
                d.gbps,
                d.lost,
                d.reorder,
                d.latency_us.p50,
                d.latency_us.p99,
                d.latency_us.max
            );
        };
        row("forward", &self.forward);
        if let Some(r) = &self.reverse {
            row("reverse", r);
        }
        let invalid: u64 =
            self.forward.invalid.values().sum::<u64>() + self.reverse.as_ref().map_or(0, |r| r.invalid.values().sum());
        let _ = writeln!(s, "invalid: {invalid} {:?}", self.forward.invalid);
        if self.new_conn_per_s > 0.0 {
            let _ = writeln!(s, "new connections: {:.3} M/s", self.new_conn_per_s / 1e6);
        }
        if !self.servers.is_empty() {
            let total: u64 = self.servers.values().sum();
            let (lo, hi) =
                (self.servers.values().min().copied().unwrap_or(0), self.servers.values().max().copied().unwrap_or(0));
            let mean = total as f64 / self.servers.len() as f64;
            let _ = writeln!(
                s,
                "distribution over {} real servers: min {lo} max {hi} (mean {mean:.0})",
                self.servers.len()
            );
        }
        if let Some(c) = &self.churn {
            let _ = writeln!(
                s,
                "churn: {} changes ({:.0}/s, {} errors), config latency p50 {:.1} µs p99 {:.1} µs max {:.1} µs",
                c.changes, c.rate, c.errors, c.config_latency_us.p50, c.config_latency_us.p99, c.config_latency_us.max
            );
        }
        if let Some(g) = &self.generator_stalls {
            let _ = writeln!(
                s,
                "generator stalls: {} over {:.0} µs ({:.1} ms in all, longest {:.0} µs); {} could overflow a {}-slot ring: ~{} packets",
                g.count, g.threshold_us, g.total_ms, g.max_us, g.overflowing, g.ring_slots, g.overflow_estimate
            );
        }
        if let Some(d) = &self.disruption {
            let _ = writeln!(
                s,
                "disruption: removed {} of {}: {} of {} flows moved ({:.2} %, ideal {:.2} %), {} were on it",
                d.removed,
                d.servers,
                d.moved,
                d.flows,
                d.fraction_moved * 100.0,
                d.ideal * 100.0,
                d.on_removed
            );
        }
        s
    }
}
