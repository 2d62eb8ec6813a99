//! The Active Connection Management (ACM) vocabulary.
//!
//! Every part of the appliance — dataplane, control plane, CLI, tests — speaks in these
//! types: a *virtual service* (VIP, protocol, virtual port), a *real server* (RIP, real port),
//! the *binding* that joins them, its state and counters, and the ACM *primitives* of
//! Chen & Brewer (Add, Remove = drain, Force Remove, List, Drop). Plain data, serde.
#![deny(unsafe_code)]

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl Proto {
    /// The IPv4 protocol number.
    pub const fn ip_proto(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    /// From an IPv4 protocol number; `None` for anything but TCP and UDP.
    pub const fn from_ip_proto(p: u8) -> Option<Proto> {
        match p {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = AcmError;
    fn from_str(s: &str) -> Result<Self, AcmError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(AcmError::Parse(format!("unknown protocol {s:?} (want tcp or udp)"))),
        }
    }
}

/// A virtual service: what clients connect to (VIP, protocol, virtual port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    /// Virtual IP address.
    pub vip: Ipv4Addr,
    /// Transport protocol.
    pub proto: Proto,
    /// Virtual port.
    pub vport: u16,
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.vip, self.vport, self.proto)
    }
}

impl FromStr for ServiceKey {
    type Err = AcmError;
    /// `VIP:PORT` (TCP) or `VIP:PORT/udp`.
    fn from_str(s: &str) -> Result<Self, AcmError> {
        let (addr, proto) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse()?),
            None => (s, Proto::Tcp),
        };
        let RealServer { rip, rport } = addr.parse()?;
        Ok(ServiceKey { vip: rip, proto, vport: rport })
    }
}

/// A real server endpoint (RIP, real port) behind a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RealServer {
    /// Real server IP address.
    pub rip: Ipv4Addr,
    /// Real server port.
    pub rport: u16,
}

impl fmt::Display for RealServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.rip, self.rport)
    }
}

impl FromStr for RealServer {
    type Err = AcmError;
    /// `IP:PORT`.
    fn from_str(s: &str) -> Result<Self, AcmError> {
        let (ip, port) = s.rsplit_once(':').ok_or_else(|| AcmError::Parse(format!("{s:?}: expected IP:PORT")))?;
        let rip = ip.parse().map_err(|_| AcmError::Parse(format!("{ip:?}: not an IPv4 address")))?;
        let rport = port.parse().map_err(|_| AcmError::Parse(format!("{port:?}: not a port number (0-65535)")))?;
        Ok(RealServer { rip, rport })
    }
}

/// A binding: one real server serving one virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BindingKey {
    /// The virtual service.
    pub service: ServiceKey,
    /// The real server.
    pub real: RealServer,
}

impl fmt::Display for BindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.service, self.real)
    }
}

/// Largest accepted binding weight (the ServerIron's range is 0–65000).
pub const MAX_WEIGHT: u32 = 65_000;

/// How a binding is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BindingParams {
    /// Relative share of new flows (0 = receives none, but stays bound).
    pub weight: u32,
    /// Rewrite the client's source to the appliance's port address (one-arm setups).
    pub source_nat: bool,
}

impl Default for BindingParams {
    fn default() -> Self {
        BindingParams { weight: 1, source_nat: false }
    }
}

impl BindingParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), AcmError> {
        if self.weight > MAX_WEIGHT {
            return Err(AcmError::BadWeight(self.weight));
        }
        Ok(())
    }
}

/// Life-cycle state of a binding, in the device's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BindingState {
    /// Added, health not yet confirmed (TST).
    Testing,
    /// Receives new flows (ACT).
    Active,
    /// Removed gracefully: no new flows, existing flows finish (GDN).
    Draining,
    /// Health checks or beacons say it is down (FAL).
    Failed,
    /// Administratively disabled (DIS).
    Disabled,
}

impl BindingState {
    /// The ServerIron's three-letter abbreviation.
    pub const fn abbrev(self) -> &'static str {
        match self {
            BindingState::Testing => "TST",
            BindingState::Active => "ACT",
            BindingState::Draining => "GDN",
            BindingState::Failed => "FAL",
            BindingState::Disabled => "DIS",
        }
    }
}

impl fmt::Display for BindingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindingState::Testing => "testing",
            BindingState::Active => "active",
            BindingState::Draining => "draining",
            BindingState::Failed => "failed",
            BindingState::Disabled => "disabled",
        })
    }
}

/// Traffic counters of one binding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingCounters {
    /// Client → server packets forwarded.
    pub packets_in: u64,
    /// Client → server bytes forwarded (IP length).
    pub bytes_in: u64,
    /// Server → client packets forwarded.
    pub packets_out: u64,
    /// Server → client bytes forwarded.
    pub bytes_out: u64,
    /// Flows currently in the flow tables.
    pub active_flows: u64,
    /// Flows ever created towards this binding.
    pub new_flows: u64,
}

impl BindingCounters {
    /// Adds `other` into `self` (summing per-worker counters).
    pub fn add(&mut self, other: &BindingCounters) {
        self.packets_in += other.packets_in;
        self.bytes_in += other.bytes_in;
        self.packets_out += other.packets_out;
        self.bytes_out += other.bytes_out;
        self.active_flows += other.active_flows;
        self.new_flows += other.new_flows;
    }
}

/// One row of List.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingInfo {
    /// Which binding.
    pub key: BindingKey,
    /// Its parameters.
    pub params: BindingParams,
    /// Its state.
    pub state: BindingState,
    /// Its counters.
    pub counters: BindingCounters,
}

/// The fraction of NEW connections dropped at entry to a virtual service (admission control).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct DropFraction(f64);

impl DropFraction {
    /// Nothing dropped.
    pub const NONE: DropFraction = DropFraction(0.0);
    /// Every new connection dropped.
    pub const ALL: DropFraction = DropFraction(1.0);

    /// A fraction in 0.0..=1.0; anything else (NaN included) is an error.
    pub fn new(f: f64) -> Result<DropFraction, AcmError> {
        if (0.0..=1.0).contains(&f) {
            Ok(DropFraction(f))
        } else {
            Err(AcmError::BadFraction(f))
        }
    }

    /// The fraction as a float.
    pub const fn get(self) -> f64 {
        self.0
    }

    /// Threshold for a 32-bit hash: a new flow is dropped when `hash < threshold`
    /// (as u64, so 1.0 covers every u32).
    pub fn threshold_u32(self) -> u64 {
        (self.0 * (u32::MAX as f64 + 1.0)) as u64
    }
}

impl TryFrom<f64> for DropFraction {
    type Error = AcmError;
    fn try_from(f: f64) -> Result<Self, AcmError> {
        DropFraction::new(f)
    }
}

impl From<DropFraction> for f64 {
    fn from(d: DropFraction) -> f64 {
        d.0
    }
}

impl fmt::Display for DropFraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The ACM primitives a switch services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Primitive {
    /// Bind a real server to a virtual service; it enters the hash table.
    Add {
        /// Which binding.
        key: BindingKey,
        /// Weight and source NAT.
        params: BindingParams,
    },
    /// Drain: no new flows, existing flows are forwarded until they end.
    Remove {
        /// Which binding.
        key: BindingKey,
    },
    /// Unbind now: existing flows are deleted and TCP clients get a RST.
    ForceRemove {
        /// Which binding.
        key: BindingKey,
    },
    /// Every binding with state and counters.
    List,
    /// Drop a fraction of new connections to a virtual service.
    Drop {
        /// Which virtual service.
        service: ServiceKey,
        /// The fraction, 0.0–1.0.
        fraction: DropFraction,
    },
}

impl Primitive {
    /// The primitive's name, for latency histograms and logs.
    pub const fn name(&self) -> &'static str {
        match self {
            Primitive::Add { .. } => "add",
            Primitive::Remove { .. } => "remove",
            Primitive::ForceRemove { .. } => "force-remove",
            Primitive::List => "list",
            Primitive::Drop { .. } => "drop",
        }
    }
}

/// Why an ACM request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum AcmError {
    /// The virtual service does not exist (no binding was ever added to it).
    #[error("unknown virtual service {0}")]
    UnknownService(ServiceKey),
    /// The binding does not exist.
    #[error("unknown binding {0}")]
    UnknownBinding(BindingKey),
    /// The binding exists already with the same parameters.
    #[error("binding {0} already exists")]
    DuplicateBinding(BindingKey),
    /// The drop fraction is outside 0.0–1.0.
    #[error("drop fraction {0} is outside 0.0-1.0")]
    BadFraction(f64),
    /// The weight is outside 0–65000.
    #[error("weight {0} is outside 0-{MAX_WEIGHT}")]
    BadWeight(u32),
    /// No port of the switch reaches the real server (not on a port subnet, no gateway).
    #[error("real server {0} is not reachable from any port")]
    Unreachable(RealServer),
    /// A table is full.
    #[error("capacity exceeded: {0}")]
    Capacity(String),
    /// Text could not be parsed.
    #[error("parse error: {0}")]
    Parse(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_bounds() {
        assert!(DropFraction::new(-0.1).is_err());
        assert!(DropFraction::new(1.1).is_err());
        assert!(DropFraction::new(f64::NAN).is_err());
        assert_eq!(DropFraction::ALL.threshold_u32(), 1u64 << 32);
        assert_eq!(DropFraction::NONE.threshold_u32(), 0);
        assert_eq!(DropFraction::new(0.5).unwrap().threshold_u32(), 1u64 << 31);
    }

    #[test]
    fn fraction_serde_refuses_out_of_range() {
        assert!(serde_json::from_str::<DropFraction>("1.5").is_err());
        assert_eq!(serde_json::from_str::<DropFraction>("0.25").unwrap().get(), 0.25);
    }

    #[test]
    fn parse_keys() {
        let s: ServiceKey = "10.0.0.100:80".parse().unwrap();
        assert_eq!(s, ServiceKey { vip: Ipv4Addr::new(10, 0, 0, 100), proto: Proto::Tcp, vport: 80 });
        let u: ServiceKey = "10.0.0.100:53/udp".parse().unwrap();
        assert_eq!(u.proto, Proto::Udp);
        assert!("10.0.0.100".parse::<ServiceKey>().is_err());
        assert!("10.0.0.300:80".parse::<ServiceKey>().is_err());
        assert!("10.0.0.1:99999".parse::<RealServer>().is_err());
        assert_eq!(s.to_string(), "10.0.0.100:80/tcp");
    }

    #[test]
    fn primitive_json_roundtrip() {
        let p = Primitive::Add {
            key: BindingKey { service: "10.0.0.100:80".parse().unwrap(), real: "10.0.1.11:80".parse().unwrap() },
            params: BindingParams { weight: 3, source_nat: true },
        };
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Primitive>(&j).unwrap(), p);
        assert_eq!(p.name(), "add");
    }

    #[test]
    fn weight_validation() {
        assert!(BindingParams { weight: 65_001, source_nat: false }.validate().is_err());
        assert!(BindingParams { weight: 0, source_nat: false }.validate().is_ok());
    }
}
