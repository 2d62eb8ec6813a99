//! `[beacon]`, `[health]` and `[election]`: the control plane's beacon listener, health checker
//! and election, as written in the file. Every key is optional; the control plane fills in its
//! defaults and checks the values that need its own code (keys read from files, HTTP status
//! ranges, service keys) when it loads the file, before anything starts.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[beacon]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeaconSection {
    /// UDP port (default 8790).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Multicast groups to join (default the ACM group; empty: unicast only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Ipv4Addr>>,
    /// Where to join the groups, by address, or one interface by name (default: the kernel's
    /// choice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// Switch profile → key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
    /// Switch profile → file holding its key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key_files: BTreeMap<String, PathBuf>,
    /// Silent intervals before a server is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misses: Option<u32>,
    /// Shortest beacon interval the loss detection assumes, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_interval_ms: Option<u64>,
    /// Timestamps further off than this are stale, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_window_ms: Option<u64>,
    /// Other CMs by unicast (heartbeats), besides the groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<SocketAddrV4>,
}

/// A health check (`check = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// No probing.
    None,
    /// ARP.
    #[serde(alias = "arp")]
    L2,
    /// ICMP echo.
    #[serde(alias = "icmp")]
    L3,
    /// TCP connect.
    #[serde(alias = "tcp")]
    L4,
    /// HTTP GET.
    #[serde(alias = "http")]
    L7,
}

/// `[health]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// Time between rounds, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// Probe timeout, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Passes that bring a failed server back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rise: Option<u32>,
    /// Soft failures (timeouts) that take a server out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fall: Option<u32>,
    /// How long a client module's failure report holds a server down, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_down_ms: Option<u64>,
    /// Probe out of this interface only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Which check (default: `l4`; for a service, the table's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckKind>,
    /// L7: the path to GET (absolute, no spaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// L7: the Host header (default: the real server's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_host: Option<String>,
    /// L7: the statuses that pass, e.g. `["200-399"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<Vec<String>>,
    /// Per virtual service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<HealthServiceSection>,
}

/// `[[health.service]]`: the probe of one virtual service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthServiceSection {
    /// The service, `VIP:PORT[/udp]`.
    pub service: String,
    /// Which check (unset keys: the `[health]` table's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckKind>,
    /// L7: the path to GET (absolute, no spaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// L7: the Host header (default: the real server's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_host: Option<String>,
    /// L7: the statuses that pass, e.g. `["200-399"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<Vec<String>>,
}

/// `[election]` (absent: no election, always active).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectionSection {
    /// This CM's id: unique, lowest wins.
    pub id: u64,
    /// Heartbeat interval, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// Missed heartbeats before a peer is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misses: Option<u32>,
    /// Whose key signs heartbeats (default: the first key of `[beacon]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}
