//! The control plane's part of `appliance.toml`: users and the enable secret, `[telnet]`,
//! `[api]`, `[cm]`, `[partitions]` and the `[[switch]]` profiles, with the checks of their
//! values that need no more than the values (password hashes are checked by the control plane,
//! which has the hashing code).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::services::{BeaconSection, ElectionSection, HealthSection};
use crate::Invalid;

/// The control plane's configuration: its part of `appliance.toml` (absent sections: their
/// defaults), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlplaneConfig {
    /// Login users.
    pub users: Vec<User>,
    /// PHC hash of the enable password.
    pub enable_secret: Option<String>,
    /// Where `write memory` saves and what is replayed at start.
    pub startup_config: Option<PathBuf>,
    /// `[telnet]`.
    pub telnet: TelnetConfig,
    /// `[api]`.
    pub api: ApiConfig,
    /// `[cm]`.
    pub cm: CmConfig,
    /// `[partitions]`: class → VIPs.
    pub partitions: BTreeMap<String, Vec<Ipv4Addr>>,
    /// `[[switch]]`, a local dataplane's socket filled in.
    pub switches: Vec<SwitchProfile>,
    /// `[beacon]`.
    pub beacon: Option<BeaconSection>,
    /// `[health]`.
    pub health: Option<HealthSection>,
    /// `[election]`.
    pub election: Option<ElectionSection>,
}

/// A login user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Argon2id PHC hash of the password (`acm-hash-password`).
    pub password_hash: String,
}

/// `[telnet]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelnetConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Idle timeout of a logged-in session, seconds (0 = never).
    pub idle_timeout_s: u64,
    /// Most concurrent sessions (over every listener).
    pub max_sessions: usize,
    /// More listeners, each optionally bound to an interface: typically port 23 on the
    /// appliance's port addresses, reached through the exception path
    /// (`[[telnet.extra]] address = "10.0.0.1:23"`, `interface = "acmt0"`, the port's tap).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<ExtraListen>,
}

impl Default for TelnetConfig {
    fn default() -> Self {
        TelnetConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 2323)),
            idle_timeout_s: 900,
            max_sessions: 64,
            extra: Vec::new(),
        }
    }
}

/// `[[telnet.extra]]`: one more telnet listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraListen {
    /// Address and port, e.g. a port address and 23. It need not exist yet: the listener is
    /// bound once it can be (a dataplane makes its taps when it starts).
    pub address: SocketAddr,
    /// Accept only through this interface, and answer through it (SO_BINDTODEVICE): the
    /// port's tap. Needed when another interface of the host has the same subnet. When the
    /// interface goes away or is made anew (a restarted dataplane), the listener is bound again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

/// Default API socket.
pub const DEFAULT_API_SOCKET: &str = "/run/acm/controlplane.sock";

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// The Unix socket `acmctl` talks to.
    pub socket: PathBuf,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { socket: PathBuf::from(DEFAULT_API_SOCKET) }
    }
}

/// The state a binding created by an Add starts in (`[cm] add_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddState {
    /// Pushed to the switches at once.
    #[default]
    Active,
    /// Held until a health check passes.
    Testing,
}

/// What a failed binding becomes on the switch (`[cm] fail_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailPolicy {
    /// ForceRemove: flows to a dead server are reset at once, so clients retry elsewhere.
    #[default]
    Force,
    /// Remove: flows drain (for servers that may still answer).
    Drain,
}

/// `[cm]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CmConfig {
    /// Time between syncs, ms.
    pub sync_interval_ms: u64,
    /// Grace period after start before syncs remove unknown bindings, ms.
    pub sync_grace_ms: u64,
    /// The state of a new binding.
    pub add_state: AddState,
    /// What Failed means on the switch.
    pub fail_policy: FailPolicy,
}

impl Default for CmConfig {
    fn default() -> Self {
        CmConfig {
            sync_interval_ms: 2000,
            sync_grace_ms: 5000,
            add_state: AddState::Active,
            fail_policy: FailPolicy::Force,
        }
    }
}

/// Kinds of switch driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    /// The local dataplane's switch API.
    Dataplane,
    /// A ServerIron-CLI device over telnet.
    ServerironTelnet,
    /// In memory (tests, benchmarks, trying the CLI without a dataplane).
    Fake,
}

/// `[[switch]]`: a switch profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchProfile {
    /// Profile name.
    pub name: String,
    /// Which driver.
    pub driver: DriverKind,
    /// The VIPs this switch serves (empty: every VIP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vips: Vec<Ipv4Addr>,
    /// `dataplane`: the switch API socket (absent: `[dataplane] api_socket` of the same file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// `serveriron-telnet`: host:port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `serveriron-telnet`: login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `serveriron-telnet`: login password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `serveriron-telnet`: enable password (if the device asks for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_password: Option<String>,
    /// `serveriron-telnet`: per-command timeout, ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5000
}

impl SwitchProfile {
    /// A profile with only a name and a driver (the driver's own fields unset).
    pub fn new(name: &str, driver: DriverKind) -> SwitchProfile {
        SwitchProfile {
            name: name.to_string(),
            driver,
            vips: Vec::new(),
            socket: None,
            address: None,
            username: None,
            password: None,
            enable_password: None,
            timeout_ms: default_timeout_ms(),
        }
    }
}

impl ControlplaneConfig {
    /// Checks `[cm]`, the switch profiles and the partitions.
    pub fn validate(&self) -> Result<(), Invalid> {
        let (cm, switches, partitions) = (&self.cm, &self.switches, &self.partitions);
        if cm.sync_interval_ms == 0 {
            return Err(Invalid::new("cm.sync_interval_ms", "must be at least 1"));
        }
        let mut names = Vec::new();
        for (i, s) in switches.iter().enumerate() {
            let f = |k: &str| format!("switch[{i}] ({}).{k}", s.name);
            if s.name.is_empty() {
                return Err(Invalid::new(f("name"), "must not be empty"));
            }
            if names.contains(&&s.name) {
                return Err(Invalid::new(f("name"), "duplicate switch name"));
            }
            names.push(&s.name);
            match s.driver {
                DriverKind::Dataplane if s.socket.is_none() => {
                    return Err(Invalid::new(
                        f("socket"),
                        "the dataplane driver needs the switch API socket (or a [dataplane] table in the same file)",
                    ))
                }
                DriverKind::ServerironTelnet => {
                    for (k, v) in [("address", &s.address), ("username", &s.username), ("password", &s.password)] {
                        if v.is_none() {
                            return Err(Invalid::new(f(k), "the serveriron-telnet driver needs it"));
                        }
                    }
                }
                _ => {}
            }
        }
        let mut seen: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
        for (class, vips) in partitions {
            for v in vips {
                if let Some(other) = seen.insert(*v, class) {
                    return Err(Invalid::new(
                        format!("partitions.{class}"),
                        format!("VIP {v} is in class {other} too"),
                    ));
                }
            }
        }
        Ok(())
    }
}
