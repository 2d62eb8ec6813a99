//! pktgen's command line: the options ([`Args`]), the traffic patterns and progress modes they
//! choose from, and the parser of `--servers` lists.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use pktgen::packet::L4Proto;
use pktgen::validate::Expect;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Pattern {
    /// One SYN per flow, then ACKs round-robin over the flows.
    Established,
    /// New connections only: every packet a SYN from an endpoint not seen recently.
    Syn,
    /// Established traffic with `--new-percent` % SYNs from fresh endpoints.
    Mixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Progress {
    Auto,
    Always,
    Never,
}

#[derive(Parser, Debug)]
#[command(version, about = "DPDK traffic generator for the ACM dataplane", args_override_self = true)]
pub(super) struct Args {
    /// Client-side device (vdev string), e.g. `net_memif0,role=client,socket=/tmp/c.sock`.
    #[arg(long)]
    pub(super) client_dev: String,
    /// Server-side device (vdev string).
    #[arg(long)]
    pub(super) server_dev: String,
    /// EAL core list; the first core runs the generator.
    #[arg(long, default_value = "0")]
    pub(super) lcores: String,
    /// EAL file prefix (default `pktgen-<pid>`). Hugepage files are unlinked once mapped
    /// (`--huge-unlink`), so nothing is left behind.
    #[arg(long)]
    pub(super) file_prefix: Option<String>,
    /// Extra EAL argument (repeatable).
    #[arg(long = "eal-arg", allow_hyphen_values = true)]
    pub(super) eal_args: Vec<String>,
    /// What the device does: `nat` (the dataplane) or `io` (a forwarder that rewrites nothing).
    #[arg(long, value_enum, default_value = "nat")]
    pub(super) expect: Expect,
    /// Transport.
    #[arg(long, value_enum, default_value = "tcp")]
    pub(super) proto: L4Proto,
    /// Frame size in bytes with FCS, 64-1518.
    #[arg(long, default_value_t = 64)]
    pub(super) frame_size: u16,
    /// Long-lived (established) flows.
    #[arg(long, default_value_t = 1000)]
    pub(super) flows: u32,
    /// Source ports per client address.
    #[arg(long, default_value_t = 50_000)]
    pub(super) ports_per_ip: u32,
    /// First client address of the long-lived flows.
    #[arg(long, default_value = "198.18.1.0")]
    pub(super) client_base: Ipv4Addr,
    /// First client address of new connections (SYN pattern).
    #[arg(long, default_value = "198.18.128.0")]
    pub(super) new_base: Ipv4Addr,
    /// Distinct endpoints new connections cycle through.
    #[arg(long, default_value_t = 16 << 20)]
    pub(super) new_endpoints: u32,
    /// Traffic pattern.
    #[arg(long, value_enum, default_value = "established")]
    pub(super) pattern: Pattern,
    /// Mixed pattern: percent of packets that are new connections.
    #[arg(long, default_value_t = 10.0)]
    pub(super) new_percent: f64,
    /// `line` (as fast as possible) or packets per second.
    #[arg(long, default_value = "line")]
    pub(super) rate: String,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    pub(super) duration: f64,
    /// Seconds of traffic before the measurement starts.
    #[arg(long, default_value_t = 1.0)]
    pub(super) warmup: f64,
    /// The VIP.
    #[arg(long, default_value = "198.18.0.100")]
    pub(super) vip: Ipv4Addr,
    /// The virtual port.
    #[arg(long, default_value_t = 80)]
    pub(super) vport: u16,
    /// Real servers: `A.B.C.D[-A.B.C.E]:PORT`, comma-separated.
    #[arg(long, default_value = "198.19.0.11-198.19.0.13:8080")]
    pub(super) servers: String,
    /// Destination MAC of client frames (the device's client-side MAC).
    #[arg(long, default_value = "02:00:00:00:00:fe")]
    pub(super) dut_mac: String,
    /// Answer as the real servers (server → client traffic through the device).
    #[arg(long)]
    pub(super) reply: bool,
    /// Rounds of SYNs to open the long-lived flows.
    #[arg(long, default_value_t = 10)]
    pub(super) setup_rounds: u32,
    /// Seconds to wait for the links to come up.
    #[arg(long, default_value_t = 15.0)]
    pub(super) link_timeout: f64,
    /// The dataplane's switch API socket (counters, churn, disruption).
    #[arg(long)]
    pub(super) api: Option<PathBuf>,
    /// Binding changes per second during the measurement (needs --api).
    #[arg(long, default_value_t = 0.0)]
    pub(super) churn_rate: f64,
    /// Disruption: after opening the flows, remove this real server (index in --servers),
    /// wait --expiry-wait seconds for the flows to expire, open them again and compare.
    #[arg(long)]
    pub(super) disruption_remove: Option<usize>,
    /// Seconds for flows to expire in the disruption measurement.
    #[arg(long, default_value_t = 1.5)]
    pub(super) expiry_wait: f64,
    /// Label in the summary.
    #[arg(long, default_value = "")]
    pub(super) label: String,
    /// Write the summary as JSON here (`-` for stdout).
    #[arg(long)]
    pub(super) json: Option<PathBuf>,
    /// Live progress lines on stderr.
    #[arg(long, value_enum, default_value = "auto")]
    pub(super) progress: Progress,
}

/// `A.B.C.D[-A.B.C.E]:PORT,...`
pub(super) fn parse_servers(s: &str) -> Result<Vec<(Ipv4Addr, u16)>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let (addrs, port) = item.rsplit_once(':').with_context(|| format!("{item:?}: want ADDR[-ADDR]:PORT"))?;
        let port: u16 = port.parse().with_context(|| format!("{item:?}: bad port"))?;
        let (a, b) = addrs.split_once('-').unwrap_or((addrs, addrs));
        let a: Ipv4Addr = a.parse().with_context(|| format!("{item:?}: bad address"))?;
        let b: Ipv4Addr = b.parse().with_context(|| format!("{item:?}: bad address"))?;
        if u32::from(b) < u32::from(a) || u32::from(b) - u32::from(a) > 65535 {
            bail!("{item:?}: bad address range");
        }
        out.extend((u32::from(a)..=u32::from(b)).map(|ip| (Ipv4Addr::from(ip), port)));
    }
    if out.is_empty() {
        bail!("no real servers in {s:?}");
    }
    Ok(out)
}
