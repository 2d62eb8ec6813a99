//! The dataplane's part of `appliance.toml`: `[dataplane]` (cores, memory, tables), `[timeouts]`
//! and the `[[port]]`s, and [`DataplaneConfig`], that part taken from a file and checked.
//!
//! SLB configuration (VIPs, real servers, bindings) is not here: it arrives through the switch
//! API as ACM primitives.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Appliance, ConfigError, Invalid};

/// The dataplane's configuration: its part of `appliance.toml`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DataplaneConfig {
    /// Cores, memory, tables (`[dataplane]`; absent: the defaults).
    pub dataplane: DataplaneSection,
    /// Flow timeouts (`[timeouts]`; absent: the defaults).
    pub timeouts: Timeouts,
    /// The ports, in order: `port[0]` faces clients, the others real servers (by convention;
    /// forwarding uses addresses, not roles).
    pub ports: Vec<PortConfig>,
}

/// `[dataplane]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneSection {
    /// The management core: EAL main lcore, tap forwarding, switch API.
    pub main_lcore: u32,
    /// Forwarding cores, one worker each.
    pub worker_lcores: Vec<u32>,
    /// Unix socket of the switch API.
    pub api_socket: PathBuf,
    /// Flow-table capacity per worker.
    pub flow_capacity: usize,
    /// Largest Maglev table size (prime). Each service's table is the smallest step (251·2^k,
    /// rounded up to a prime) with at least 100 entries per real server, up to this size.
    pub maglev_table_size: usize,
    /// Most bindings at once, at most 65536 (counters are preallocated for this many).
    pub max_bindings: usize,
    /// Most virtual services at once.
    pub max_services: usize,
    /// Mbufs in the packet pool.
    pub mbufs: u32,
    /// Rx/tx descriptors per queue.
    pub descriptors: u16,
    /// Source ports used for source NAT, inclusive range.
    pub snat_ports: [u16; 2],
    /// Nice value of the worker lcores' threads (-20..=19). A poll-mode worker needs its core;
    /// where the core is not isolated (`isolcpus`), -19 keeps other threads from taking it for
    /// scheduler slices (lost packets, late config acks). Needs CAP_SYS_NICE (else a warning).
    pub worker_nice: i32,
    /// Nice value of the thread that builds exact Maglev tables after changes (-20..=19). It
    /// shares the management core with the control plane: the default 10 leaves that core to
    /// the control plane, API and health checks, so under a busy core the exact tables lag
    /// (forwarding is correct meanwhile, through the interim correction); 0 makes them follow
    /// within milliseconds at the cost of ~0.7 ms of CPU per table of 65537 entries.
    pub builder_nice: i32,
    /// What a worker lcore does when its queues are empty: `"adaptive"` (poll, pause, then
    /// sleep for growing intervals up to `idle_max_sleep_us`, back to full-speed polling at the
    /// first packet; the main lcore likewise) or `"busy"` (workers poll at 100 % of their
    /// core, the main lcore naps 50 µs when idle).
    pub idle: IdleMode,
    /// With `idle = "adaptive"`: the longest sleep of an idle loop, µs (10..=100000). A packet
    /// arriving after an idle period waits at most about this long (plus the kernel's timer
    /// slack, ~50 µs) before it is polled; a lower value costs an idle core more wake-ups.
    pub idle_max_sleep_us: u32,
    /// Extra EAL arguments (e.g. `--file-prefix=acm`, `--in-memory`).
    pub eal_args: Vec<String>,
}

/// `[dataplane] idle`: how a polling loop spends the time when no packet comes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleMode {
    /// Back off when idle (pause, then sleep up to `idle_max_sleep_us`).
    #[default]
    Adaptive,
    /// Poll at full speed always (a core of its own, lowest latency).
    Busy,
}

impl std::str::FromStr for IdleMode {
    type Err = String;

    /// `adaptive` or `busy`, as in the file.
    fn from_str(s: &str) -> Result<IdleMode, String> {
        match s {
            "adaptive" => Ok(IdleMode::Adaptive),
            "busy" => Ok(IdleMode::Busy),
            other => Err(format!("{other:?} is neither \"adaptive\" nor \"busy\"")),
        }
    }
}

impl Default for DataplaneSection {
    fn default() -> Self {
        DataplaneSection {
            main_lcore: 0,
            worker_lcores: vec![1],
            api_socket: PathBuf::from("/run/acm/dataplane.sock"),
            flow_capacity: 1 << 20,
            maglev_table_size: 65537,
            max_bindings: 4096,
            max_services: 1024,
            mbufs: 16383,
            descriptors: 1024,
            snat_ports: [10000, 32767],
            worker_nice: -19,
            builder_nice: 10,
            idle: IdleMode::Adaptive,
            idle_max_sleep_us: 1000,
            eal_args: Vec::new(),
        }
    }
}

/// `[timeouts]`, in seconds (fractions allowed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// A TCP flow that has seen only a SYN.
    pub tcp_syn: f64,
    /// An established TCP flow with no traffic.
    pub tcp_established: f64,
    /// A TCP flow after FIN.
    pub tcp_closing: f64,
    /// A TCP flow after RST.
    pub tcp_reset: f64,
    /// A UDP flow with no traffic.
    pub udp: f64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { tcp_syn: 5.0, tcp_established: 300.0, tcp_closing: 10.0, tcp_reset: 1.0, udp: 30.0 }
    }
}

/// Timeouts converted to nanoseconds for the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutsNs {
    /// See [`Timeouts::tcp_syn`].
    pub tcp_syn: u64,
    /// See [`Timeouts::tcp_established`].
    pub tcp_established: u64,
    /// See [`Timeouts::tcp_closing`].
    pub tcp_closing: u64,
    /// See [`Timeouts::tcp_reset`].
    pub tcp_reset: u64,
    /// See [`Timeouts::udp`].
    pub udp: u64,
}

impl Timeouts {
    /// In nanoseconds.
    pub fn to_ns(&self) -> TimeoutsNs {
        let ns = |s: f64| (s * 1e9) as u64;
        TimeoutsNs {
            tcp_syn: ns(self.tcp_syn),
            tcp_established: ns(self.tcp_established),
            tcp_closing: ns(self.tcp_closing),
            tcp_reset: ns(self.tcp_reset),
            udp: ns(self.udp),
        }
    }
}

impl Default for TimeoutsNs {
    fn default() -> Self {
        Timeouts::default().to_ns()
    }
}

/// One `[[port]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// A name for logs and counters (`client`, `servers`).
    pub name: String,
    /// DPDK device: a vdev string (`net_af_packet0,iface=acmp0`) or a PCI address.
    pub device: String,
    /// The port's address with prefix, `10.0.0.1/24`.
    pub address: String,
    /// Next hop for destinations outside the port's subnet (at most one port should have one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// Kernel interface name of the exception-path tap (default `<name>-tap`, ≤ 15 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap: Option<String>,
}

/// A port's address, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortAddr {
    /// Address.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl PortAddr {
    /// Parses `A.B.C.D/N`.
    pub fn parse(s: &str) -> Result<PortAddr, String> {
        let (ip, prefix) = s.split_once('/').ok_or_else(|| format!("{s:?} is not A.B.C.D/N"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| format!("{prefix:?} is not a prefix length"))?;
        if !(1..=32).contains(&prefix) {
            return Err(format!("prefix length {prefix} is outside 1-32"));
        }
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return Err(format!("{ip} cannot be an interface address"));
        }
        Ok(PortAddr { ip, prefix })
    }

    /// The subnet mask as a u32.
    pub fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    /// Whether `ip` is on this port's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.ip) & self.mask())
    }
}

/// Whether `n` is prime (trial division; table sizes are small).
pub fn is_prime(n: usize) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

impl DataplaneConfig {
    /// Reads a file (the whole of it is type-checked) and takes the dataplane's part, checked.
    pub fn load(path: &Path) -> Result<DataplaneConfig, ConfigError> {
        Appliance::load(path)?.dataplane_config().map_err(|e| e.in_file(path))
    }

    /// The same from text; `path` is only used in messages.
    pub fn from_str(text: &str, path: &Path) -> Result<DataplaneConfig, ConfigError> {
        Appliance::parse(text, path)?.dataplane_config().map_err(|e| e.in_file(path))
    }

    /// The parsed address of every port, in order (valid after `validate`).
    pub fn port_addrs(&self) -> Vec<PortAddr> {
        self.ports.iter().map(|p| PortAddr::parse(&p.address).expect("validated")).collect()
    }

    /// The tap interface name of port `i`.
    pub fn tap_name(&self, i: usize) -> String {
        self.ports[i].tap.clone().unwrap_or_else(|| format!("{}-tap", self.ports[i].name))
    }

    /// Checks the values (well-typed, but acceptable?).
    pub fn validate(&self) -> Result<(), Invalid> {
        let err = |f: &str, w: String| Err(Invalid::new(f, w));
        let d = &self.dataplane;
        if d.worker_lcores.is_empty() {
            return err("dataplane.worker_lcores", "at least one worker core is needed".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for &c in &d.worker_lcores {
            if c == d.main_lcore {
                return err("dataplane.worker_lcores", format!("core {c} is the main lcore"));
            }
            if !seen.insert(c) {
                return err("dataplane.worker_lcores", format!("core {c} is listed twice"));
            }
        }
        if d.worker_lcores.len() > 64 {
            return err("dataplane.worker_lcores", "at most 64 workers".into());
        }
        if !(1024..=(1 << 26)).contains(&d.flow_capacity) {
            return err("dataplane.flow_capacity", format!("{} is outside 1024-67108864", d.flow_capacity));
        }
        if !is_prime(d.maglev_table_size) || d.maglev_table_size < 251 || d.maglev_table_size > 4_000_037 {
            return err(
                "dataplane.maglev_table_size",
                format!("{} must be a prime between 251 and 4000037 (e.g. 65537)", d.maglev_table_size),
            );
        }
        if !(1..=1 << 16).contains(&d.max_bindings) {
            return err("dataplane.max_bindings", format!("{} is outside 1-65536", d.max_bindings));
        }
        if !(1..=1 << 16).contains(&d.max_services) {
            return err("dataplane.max_services", format!("{} is outside 1-65536", d.max_services));
        }
        if d.mbufs < 1024 {
            return err("dataplane.mbufs", format!("{} is too few (at least 1024)", d.mbufs));
        }
        if !d.descriptors.is_power_of_two() || d.descriptors < 64 {
            return err("dataplane.descriptors", format!("{} must be a power of two >= 64", d.descriptors));
        }
        if !(-20..=19).contains(&d.worker_nice) {
            return err("dataplane.worker_nice", format!("{} is outside -20..19", d.worker_nice));
        }
        if !(-20..=19).contains(&d.builder_nice) {
            return err("dataplane.builder_nice", format!("{} is outside -20..19", d.builder_nice));
        }
        if !(10..=100_000).contains(&d.idle_max_sleep_us) {
            return err("dataplane.idle_max_sleep_us", format!("{} is outside 10-100000", d.idle_max_sleep_us));
        }
        let [lo, hi] = d.snat_ports;
        if lo < 1024 || hi < lo {
            return err("dataplane.snat_ports", format!("[{lo}, {hi}] must be an ascending range above 1023"));
        }
        if d.api_socket.as_os_str().is_empty() {
            return err("dataplane.api_socket", "must not be empty".into());
        }
        let t = &self.timeouts;
        for (name, v) in [
            ("timeouts.tcp_syn", t.tcp_syn),
            ("timeouts.tcp_established", t.tcp_established),
            ("timeouts.tcp_closing", t.tcp_closing),
            ("timeouts.tcp_reset", t.tcp_reset),
            ("timeouts.udp", t.udp),
        ] {
            if !(v > 0.0 && v <= 86400.0) {
                return err(name, format!("{v} must be a number of seconds in (0, 86400]"));
            }
        }
        if self.ports.is_empty() {
            return err("port", "at least one [[port]] is needed".into());
        }
        if self.ports.len() > 16 {
            return err("port", "at most 16 ports".into());
        }
        let mut names = std::collections::BTreeSet::new();
        let mut addrs: Vec<PortAddr> = Vec::new();
        for (i, p) in self.ports.iter().enumerate() {
            let f = |x: &str| format!("port[{i}].{x}");
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return err(&f("name"), format!("{:?} must be non-empty [A-Za-z0-9_-]", p.name));
            }
            if !names.insert(p.name.clone()) {
                return err(&f("name"), format!("{:?} is used twice", p.name));
            }
            if p.device.trim().is_empty() {
                return err(&f("device"), "must name a vdev or PCI address".into());
            }
            let a = PortAddr::parse(&p.address).map_err(|w| Invalid::new(f("address"), w))?;
            if let Some(other) = addrs.iter().position(|o| o.contains(a.ip) || a.contains(o.ip)) {
                return err(&f("address"), format!("{} overlaps port[{other}]'s subnet", p.address));
            }
            if let Some(gw) = p.gateway {
                if !a.contains(gw) {
                    return err(&f("gateway"), format!("{gw} is not on {}", p.address));
                }
            }
            let tap = self.tap_name(i);
            if tap.len() > 15 || tap.is_empty() {
                return err(&f("tap"), format!("interface name {tap:?} must be 1-15 characters"));
            }
            addrs.push(a);
        }
        if self.ports.iter().filter(|p| p.gateway.is_some()).count() > 1 {
            return err("port", "at most one port may have a gateway".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[dataplane]
main_lcore = 0
worker_lcores = [1]
flow_capacity = 65536

[[port]]
name = "client"
device = "net_af_packet0,iface=acmp0"
address = "10.0.0.1/24"

[[port]]
name = "servers"
device = "net_af_packet1,iface=acmp1"
address = "10.0.1.1/24"
"#;

    fn load(s: &str) -> Result<DataplaneConfig, ConfigError> {
        DataplaneConfig::from_str(s, Path::new("appliance.toml"))
    }

    #[test]
    fn good_file() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.port_addrs()[1], PortAddr { ip: Ipv4Addr::new(10, 0, 1, 1), prefix: 24 });
        assert_eq!(c.tap_name(0), "client-tap");
        assert_eq!(c.dataplane.maglev_table_size, 65537);
        assert_eq!(c.timeouts.to_ns().tcp_syn, 5_000_000_000);
    }

    fn invalid_field(s: &str) -> String {
        match load(s) {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn bad_values_name_the_field() {
        assert_eq!(invalid_field(&GOOD.replace("10.0.1.1/24", "10.0.1.1/33")), "port[1].address");
        assert_eq!(invalid_field(&GOOD.replace("10.0.1.1/24", "10.0.0.7/24")), "port[1].address");
        assert_eq!(
            invalid_field(&GOOD.replace("worker_lcores = [1]", "worker_lcores = [0]")),
            "dataplane.worker_lcores"
        );
        assert_eq!(
            invalid_field(&GOOD.replace("worker_lcores = [1]", "worker_lcores = []")),
            "dataplane.worker_lcores"
        );
        assert_eq!(
            invalid_field(&GOOD.replace("flow_capacity = 65536", "flow_capacity = 10")),
            "dataplane.flow_capacity"
        );
        assert_eq!(
            invalid_field(&GOOD.replace("flow_capacity = 65536", "maglev_table_size = 65536")),
            "dataplane.maglev_table_size"
        );
        assert_eq!(invalid_field(&GOOD.replace("name = \"servers\"", "name = \"client\"")), "port[1].name");
        let gw = GOOD.replace("address = \"10.0.1.1/24\"", "address = \"10.0.1.1/24\"\ngateway = \"10.9.9.9\"");
        assert_eq!(invalid_field(&gw), "port[1].gateway");
        let tap = GOOD.replace("name = \"servers\"", "name = \"servers\"\ntap = \"a-very-long-interface-name\"");
        assert_eq!(invalid_field(&tap), "port[1].tap");
        let nice =
            |k: &str, v: i32| GOOD.replace("flow_capacity = 65536", &format!("flow_capacity = 65536\n{k} = {v}"));
        assert_eq!(invalid_field(&nice("builder_nice", 20)), "dataplane.builder_nice");
        assert_eq!(invalid_field(&nice("worker_nice", -21)), "dataplane.worker_nice");
        assert_eq!(invalid_field(&nice("idle_max_sleep_us", 5)), "dataplane.idle_max_sleep_us");
        assert_eq!(invalid_field(&nice("idle_max_sleep_us", 100_001)), "dataplane.idle_max_sleep_us");
    }

    #[test]
    fn idle_mode() {
        let c = load(GOOD).unwrap();
        assert_eq!((c.dataplane.idle, c.dataplane.idle_max_sleep_us), (IdleMode::Adaptive, 1000));
        let with = |extra: &str| GOOD.replace("flow_capacity = 65536", &format!("flow_capacity = 65536\n{extra}"));
        let c = load(&with("idle = \"busy\"\nidle_max_sleep_us = 200")).unwrap();
        assert_eq!((c.dataplane.idle, c.dataplane.idle_max_sleep_us), (IdleMode::Busy, 200));
        assert_eq!("busy".parse::<IdleMode>(), Ok(IdleMode::Busy));
        assert_eq!("adaptive".parse::<IdleMode>(), Ok(IdleMode::Adaptive));
        assert!("lazy".parse::<IdleMode>().is_err());
        match load(&with("idle = \"lazy\"")) {
            Err(ConfigError::Syntax { message, .. }) => assert!(message.contains("lazy"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_and_unknown_fields() {
        match load(&GOOD.replace("flow_capacity", "flow_capacty")) {
            Err(ConfigError::Syntax { message, .. }) => assert!(message.contains("flow_capacty"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(load("[[port]\nname="), Err(ConfigError::Syntax { .. })));
        assert!(matches!(load(""), Err(ConfigError::Invalid { field, .. }) if field == "port"));
        assert!(matches!(
            load(&GOOD.replace("main_lcore = 0", "main_lcore = \"zero\"")),
            Err(ConfigError::Syntax { .. })
        ));
    }

    #[test]
    fn one_file_for_both_processes() {
        // The control plane's tables are accepted (and left to it) ...
        let shared = format!(
            "enable_secret = \"$argon2id$x\"\nstartup_config = \"/tmp/s\"\n{GOOD}\n[[user]]\nname = \"admin\"\n\
             password_hash = \"h\"\n\n[telnet]\nlisten = \"127.0.0.1:2323\"\n\n[api]\nsocket = \"/tmp/a\"\n\n\
             [cm]\nadd_state = \"testing\"\n\n[partitions]\ngold = [\"10.0.0.100\"]\n\n[[switch]]\nname = \"local\"\ndriver = \"fake\"\n\n\
             [beacon]\nport = 1\n\n[health]\ncheck = \"l7\"\n\n[election]\nid = 1\n"
        );
        let c = load(&shared).unwrap();
        assert_eq!(c.ports.len(), 2);
        // ... and a top-level key of nobody's is still an error that names it, and so is a
        // field of the control plane's of the wrong type.
        match load(&format!("bogus = 1\n{GOOD}")) {
            Err(ConfigError::Syntax { message, .. }) => assert!(message.contains("bogus"), "{message}"),
            other => panic!("{other:?}"),
        }
        match load(&format!("{GOOD}\n[telnett]\nlisten = 1\n")) {
            Err(ConfigError::Syntax { message, .. }) => assert!(message.contains("telnett"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_file() {
        assert!(matches!(
            DataplaneConfig::load(Path::new("/nonexistent/appliance.toml")),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn primes() {
        assert!(is_prime(65537));
        assert!(!is_prime(65536));
        assert!(is_prime(251));
        assert!(!is_prime(1));
    }
}
