//! The SLB configuration the language owns: real servers, virtual servers, binds, hostname and
//! global switches. It renders as `show running-config` text ([`SlbConfig::render`]) and is
//! rebuilt by replaying that text ([`crate::replay()`]).
//!
//! The switch never sees this model directly: [`SlbConfig::live_bindings`] derives the set of
//! bindings the configuration asks for, and the session turns the difference between the sets
//! before and after a command into ACM primitives.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use acm::{BindingKey, BindingParams, Proto, RealServer, ServiceKey};

use crate::grammar::port_name;

/// The default system name.
pub const DEFAULT_HOSTNAME: &str = "ServerIron";
/// The device's default `max-conn`.
pub const DEFAULT_MAX_CONN: u32 = 1_000_000;
/// Default real-server weight (the ACM default binding weight).
pub const DEFAULT_WEIGHT: u32 = 1;
/// The URL a `port http` health check uses unless told otherwise.
pub const DEFAULT_HTTP_URL: &str = "HEAD /";

/// Load-balancing method of a virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Predictor {
    /// Consistent Maglev hash of the flow (what the dataplane implements).
    #[default]
    MaglevHash,
    /// Each real server in turn.
    RoundRobin,
    /// Weighted by the real servers' weights.
    Weighted,
    /// Round robin in proportion to weight.
    WeightedRoundRobin,
    /// Fewest active connections.
    LeastConn,
}

impl Predictor {
    /// The CLI keyword.
    pub fn name(self) -> &'static str {
        match self {
            Predictor::MaglevHash => "maglev-hash",
            Predictor::RoundRobin => "round-robin",
            Predictor::Weighted => "weighted",
            Predictor::WeightedRoundRobin => "weighted-round-robin",
            Predictor::LeastConn => "least-conn",
        }
    }

    /// From the CLI keyword.
    pub fn from_name(s: &str) -> Option<Predictor> {
        [
            Predictor::MaglevHash,
            Predictor::RoundRobin,
            Predictor::Weighted,
            Predictor::WeightedRoundRobin,
            Predictor::LeastConn,
        ]
        .into_iter()
        .find(|p| p.name() == s)
    }
}

/// One port of a real server.
#[derive(Debug, Clone, PartialEq)]
pub struct RealPort {
    /// The port number.
    pub port: u16,
    /// `port N disable`.
    pub disabled: bool,
    /// `port N keepalive`: periodic layer-7 checks.
    pub keepalive: bool,
    /// `port N url "..."`.
    pub url: Option<String>,
    /// `port N status-code A B`.
    pub status_codes: Option<(u16, u16)>,
    /// `port N l4-check-only`.
    pub l4_check_only: bool,
}

impl RealPort {
    /// A newly configured port (`port http` gets the default URL, as on the device).
    pub fn new(port: u16) -> RealPort {
        RealPort {
            port,
            disabled: false,
            keepalive: false,
            url: (port == 80).then(|| DEFAULT_HTTP_URL.to_string()),
            status_codes: None,
            l4_check_only: false,
        }
    }
}

/// A real server.
#[derive(Debug, Clone, PartialEq)]
pub struct RealServerCfg {
    /// Its name.
    pub name: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// `weight N`.
    pub weight: u32,
    /// `max-conn N`.
    pub max_conn: u32,
    /// `source-nat`.
    pub source_nat: bool,
    /// Its ports, in configuration order.
    pub ports: Vec<RealPort>,
}

impl RealServerCfg {
    /// A real server with defaults.
    pub fn new(name: &str, ip: Ipv4Addr) -> RealServerCfg {
        RealServerCfg {
            name: name.into(),
            ip,
            weight: DEFAULT_WEIGHT,
            max_conn: DEFAULT_MAX_CONN,
            source_nat: false,
            ports: Vec::new(),
        }
    }
    /// The port entry for `port`.
    pub fn port(&self, port: u16) -> Option<&RealPort> {
        self.ports.iter().find(|p| p.port == port)
    }
    /// The binding parameters this server's bindings get.
    pub fn params(&self) -> BindingParams {
        BindingParams { weight: self.weight, source_nat: self.source_nat }
    }
}

/// One port of a virtual server.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualPort {
    /// The port number.
    pub port: u16,
    /// `port N disable`.
    pub disabled: bool,
    /// `port N drop-fraction F` (0.0 = none).
    pub drop_fraction: f64,
}

/// One `bind VPORT REAL RPORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The virtual port.
    pub vport: u16,
    /// The real server's name.
    pub real: String,
    /// The real port.
    pub rport: u16,
}

/// A virtual server.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServerCfg {
    /// Its name.
    pub name: String,
    /// The VIP.
    pub vip: Ipv4Addr,
    /// `predictor METHOD` (None: the global one).
    pub predictor: Option<Predictor>,
    /// Its ports.
    pub ports: Vec<VirtualPort>,
    /// Its binds, in configuration order.
    pub binds: Vec<Bind>,
}

impl VirtualServerCfg {
    /// An empty virtual server.
    pub fn new(name: &str, vip: Ipv4Addr) -> VirtualServerCfg {
        VirtualServerCfg { name: name.into(), vip, predictor: None, ports: Vec::new(), binds: Vec::new() }
    }
    /// The port entry for `port`.
    pub fn port(&self, port: u16) -> Option<&VirtualPort> {
        self.ports.iter().find(|p| p.port == port)
    }
    /// The virtual service of a port.
    pub fn service(&self, vport: u16) -> ServiceKey {
        ServiceKey { vip: self.vip, proto: Proto::Tcp, vport }
    }
}

/// The whole SLB configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SlbConfig {
    /// `hostname NAME`: shown in the prompt.
    pub hostname: String,
    /// `server force-delete`: removals are ForceRemove instead of a drain.
    pub force_delete: bool,
    /// `server predictor METHOD`: default for virtual servers without their own.
    pub predictor: Predictor,
    /// Real servers in configuration order.
    pub reals: Vec<RealServerCfg>,
    /// Virtual servers in configuration order.
    pub virtuals: Vec<VirtualServerCfg>,
}

impl Default for SlbConfig {
    fn default() -> Self {
        SlbConfig {
            hostname: DEFAULT_HOSTNAME.into(),
            force_delete: false,
            predictor: Predictor::default(),
            reals: Vec::new(),
            virtuals: Vec::new(),
        }
    }
}

impl SlbConfig {
    /// The real server called `name`.
    pub fn real(&self, name: &str) -> Option<&RealServerCfg> {
        self.reals.iter().find(|r| r.name == name)
    }
    /// Mutable [`SlbConfig::real`].
    pub fn real_mut(&mut self, name: &str) -> Option<&mut RealServerCfg> {
        self.reals.iter_mut().find(|r| r.name == name)
    }
    /// The virtual server called `name`.
    pub fn virtual_server(&self, name: &str) -> Option<&VirtualServerCfg> {
        self.virtuals.iter().find(|v| v.name == name)
    }
    /// Mutable [`SlbConfig::virtual_server`].
    pub fn virtual_mut(&mut self, name: &str) -> Option<&mut VirtualServerCfg> {
        self.virtuals.iter_mut().find(|v| v.name == name)
    }
    /// The name of the real server at `ip`, if one is configured.
    pub fn real_name_by_ip(&self, ip: Ipv4Addr) -> Option<&str> {
        self.reals.iter().find(|r| r.ip == ip).map(|r| r.name.as_str())
    }
    /// The predictor in force for a virtual server.
    pub fn predictor_of(&self, vs: &VirtualServerCfg) -> Predictor {
        vs.predictor.unwrap_or(self.predictor)
    }

    /// The binding key of a bind, whether or not it is live.
    pub fn bind_key(&self, vs: &VirtualServerCfg, b: &Bind) -> Option<BindingKey> {
        let r = self.real(&b.real)?;
        Some(BindingKey { service: vs.service(b.vport), real: RealServer { rip: r.ip, rport: b.rport } })
    }

    /// Whether a bind is live: its real server and both ports exist and none is disabled.
    pub fn bind_live(&self, vs: &VirtualServerCfg, b: &Bind) -> bool {
        let Some(r) = self.real(&b.real) else { return false };
        let rp = r.port(b.rport).is_some_and(|p| !p.disabled);
        let vp = vs.port(b.vport).is_some_and(|p| !p.disabled);
        rp && vp
    }

    /// Every binding the configuration asks the switch for, with its parameters.
    pub fn live_bindings(&self) -> BTreeMap<BindingKey, BindingParams> {
        let mut out = BTreeMap::new();
        for vs in &self.virtuals {
            for b in &vs.binds {
                if self.bind_live(vs, b) {
                    if let (Some(k), Some(r)) = (self.bind_key(vs, b), self.real(&b.real)) {
                        out.insert(k, r.params());
                    }
                }
            }
        }
        out
    }

    /// The drop fraction of every virtual service that has at least one live binding (the switch
    /// only knows services with bindings).
    pub fn live_drops(&self) -> BTreeMap<ServiceKey, f64> {
        let live = self.live_bindings();
        let mut out = BTreeMap::new();
        for vs in &self.virtuals {
            for p in &vs.ports {
                let svc = vs.service(p.port);
                if live.keys().any(|k| k.service == svc) {
                    out.insert(svc, p.drop_fraction);
                }
            }
        }
        out
    }

    /// The running-config as commands: global lines, then one block per real server and per
    /// virtual server, each ending with `!`, and a final `end`.
    pub fn render(&self) -> String {
        let mut s = String::from("!\n");
        let globals = s.len();
        if self.hostname != DEFAULT_HOSTNAME {
            let _ = writeln!(s, "hostname {}", self.hostname);
        }
        if self.force_delete {
            s.push_str("server force-delete\n");
        }
        if self.predictor != Predictor::default() {
            let _ = writeln!(s, "server predictor {}", self.predictor.name());
        }
        if s.len() > globals {
            s.push_str("!\n");
        }
        for r in &self.reals {
            let _ = writeln!(s, "server real {} {}", r.name, r.ip);
            if r.source_nat {
                s.push_str(" source-nat\n");
            }
            if r.weight != DEFAULT_WEIGHT {
                let _ = writeln!(s, " weight {}", r.weight);
            }
            if r.max_conn != DEFAULT_MAX_CONN {
                let _ = writeln!(s, " max-conn {}", r.max_conn);
            }
            for p in &r.ports {
                let n = port_name(p.port);
                let _ = writeln!(s, " port {n}");
                if p.disabled {
                    let _ = writeln!(s, " port {n} disable");
                }
                if p.keepalive {
                    let _ = writeln!(s, " port {n} keepalive");
                }
                if p.l4_check_only {
                    let _ = writeln!(s, " port {n} l4-check-only");
                }
                match (&p.url, p.port) {
                    (Some(u), _) => {
                        let _ = writeln!(s, " port {n} url \"{u}\"");
                    }
                    (None, 80) => {
                        let _ = writeln!(s, " no port {n} url");
                    }
                    _ => {}
                }
                if let Some((a, b)) = p.status_codes {
                    let _ = writeln!(s, " port {n} status-code {a} {b}");
                }
            }
            s.push_str("!\n");
        }
        for v in &self.virtuals {
            let _ = writeln!(s, "server virtual {} {}", v.name, v.vip);
            if let Some(p) = v.predictor {
                let _ = writeln!(s, " predictor {}", p.name());
            }
            for p in &v.ports {
                let n = port_name(p.port);
                let _ = writeln!(s, " port {n}");
                if p.disabled {
                    let _ = writeln!(s, " port {n} disable");
                }
                if p.drop_fraction > 0.0 {
                    let _ = writeln!(s, " port {n} drop-fraction {}", p.drop_fraction);
                }
            }
            for b in &v.binds {
                let _ = writeln!(s, " bind {} {} {}", port_name(b.vport), b.real, port_name(b.rport));
            }
            s.push_str("!\n");
        }
        s.push_str("end\n");
        s
    }
}
