//! The controlplane's config file (TOML; unknown fields are errors that name the field).
//!
//! ```toml
//! enable_secret = "$argon2id$v=19$..."      # enable password (acm-hash-password)
//! startup_config = "/var/lib/acm/startup-config"   # `write memory` target, replayed at start
//!
//! [[user]]
//! name = "admin"
//! password_hash = "$argon2id$v=19$..."
//!
//! [telnet]
//! listen = "127.0.0.1:2323"   # management address
//! idle_timeout_s = 900         # 0 = never
//!
//! [api]
//! socket = "/run/acm/controlplane.sock"
//!
//! [cm]
//! sync_interval_ms = 2000
//! sync_grace_ms = 5000        # after start, syncs do not remove unknown bindings yet
//! add_state = "active"        # or "testing": new bindings wait for a health check
//! fail_policy = "force"       # Failed = ForceRemove ("drain" = Remove)
//!
//! [partitions]                # priority class = VIPs; a real server serves one class only
//! gold = ["10.0.0.100"]
//!
//! [[switch]]                  # the local dataplane
//! name = "local"
//! driver = "dataplane"
//! socket = "/run/acm/dataplane.sock"
//!
//! [[switch]]                  # any ServerIron-CLI device over telnet
//! name = "edge"
//! driver = "serveriron-telnet"
//! address = "192.0.2.10:23"
//! username = "admin"
//! password = "secret"
//! enable_password = "secret"
//! vips = ["10.0.0.200"]       # empty or absent: every VIP
//! ```
//!
//! The `[beacon]`, `[health]` and `[election]` tables belong to those modules, which parse them
//! (they are kept here as raw TOML tables).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use acm::BindingState;
use serde::Deserialize;

use crate::cm::cache::{CachePolicy, FailPolicy};
use crate::cm::switch::VipFilter;
use crate::cm::CmOptions;

/// Why the config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not valid TOML for this schema (the message names the field and line).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, where.
        message: String,
    },
    /// A value is wrong.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Which field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A login user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Argon2id PHC hash of the password (`acm-hash-password`).
    pub password_hash: String,
}

/// `[telnet]`.
#[derive(Debug, Clone, Deserialize)]
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
    pub extra: Vec<ExtraListen>,
}

impl Default for TelnetConfig {
    fn default() -> Self {
        TelnetConfig {
            listen: "127.0.0.1:2323".parse().expect("literal"),
            idle_timeout_s: 900,
            max_sessions: 64,
            extra: Vec::new(),
        }
    }
}

/// `[[telnet.extra]]`: one more telnet listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraListen {
    /// Address and port, e.g. a port address and 23. It need not exist yet: the listener is
    /// bound once it can be (a dataplane makes its taps when it starts).
    pub address: SocketAddr,
    /// Accept only through this interface, and answer through it (SO_BINDTODEVICE): the
    /// port's tap. Needed when another interface of the host has the same subnet. When the
    /// interface goes away or is made anew (a restarted dataplane), the listener is bound again.
    pub interface: Option<String>,
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// The Unix socket `acmctl` talks to.
    pub socket: PathBuf,
}

/// Default API socket.
pub const DEFAULT_API_SOCKET: &str = "/run/acm/controlplane.sock";

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { socket: PathBuf::from(DEFAULT_API_SOCKET) }
    }
}

/// `[cm]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CmConfig {
    /// Time between syncs, ms.
    pub sync_interval_ms: u64,
    /// Grace period after start before syncs remove unknown bindings, ms.
    pub sync_grace_ms: u64,
    /// `active` or `testing`.
    pub add_state: String,
    /// What Failed means on the switch.
    pub fail_policy: FailPolicy,
}

impl Default for CmConfig {
    fn default() -> Self {
        CmConfig {
            sync_interval_ms: 2000,
            sync_grace_ms: 5000,
            add_state: "active".into(),
            fail_policy: FailPolicy::Force,
        }
    }
}

/// Kinds of switch driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchProfile {
    /// Profile name.
    pub name: String,
    /// Which driver.
    pub driver: DriverKind,
    /// The VIPs this switch serves (empty: every VIP).
    #[serde(default)]
    pub vips: Vec<Ipv4Addr>,
    /// `dataplane`: the switch API socket.
    pub socket: Option<PathBuf>,
    /// `serveriron-telnet`: host:port.
    pub address: Option<String>,
    /// `serveriron-telnet`: login name.
    pub username: Option<String>,
    /// `serveriron-telnet`: login password.
    pub password: Option<String>,
    /// `serveriron-telnet`: enable password (if the device asks for one).
    pub enable_password: Option<String>,
    /// `serveriron-telnet`: per-command timeout, ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5000
}

impl SwitchProfile {
    /// The VIP filter.
    pub fn vip_filter(&self) -> VipFilter {
        if self.vips.is_empty() {
            VipFilter::All
        } else {
            VipFilter::Only(self.vips.clone())
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Login users.
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
    /// PHC hash of the enable password.
    pub enable_secret: Option<String>,
    /// Where `write memory` saves and what is replayed at start.
    pub startup_config: Option<PathBuf>,
    /// `[telnet]`.
    #[serde(default)]
    pub telnet: TelnetConfig,
    /// `[api]`.
    #[serde(default)]
    pub api: ApiConfig,
    /// `[cm]`.
    #[serde(default)]
    pub cm: CmConfig,
    /// `[partitions]`: class → VIPs.
    #[serde(default)]
    pub partitions: HashMap<String, Vec<Ipv4Addr>>,
    /// `[[switch]]`.
    #[serde(default, rename = "switch")]
    pub switches: Vec<SwitchProfile>,
    /// `[beacon]` (parsed by the beacon module).
    pub beacon: Option<toml::Table>,
    /// `[health]` (parsed by the health module).
    pub health: Option<toml::Table>,
    /// `[election]` (parsed by the election module).
    pub election: Option<toml::Table>,
    /// The dataplane's part of a shared `appliance.toml`: accepted and left to the dataplane.
    #[serde(flatten)]
    pub dataplane: DataplaneTables,
}

/// The dataplane's top-level keys in `appliance.toml` (`[dataplane]`, `[timeouts]`,
/// `[[port]]`): skipped here, checked by the dataplane. Every other unknown key is an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // [timeouts] and [[port]] are deserialized to be accepted, never read here
pub struct DataplaneTables {
    dataplane: Option<toml::Value>,
    timeouts: Option<toml::Value>,
    port: Option<toml::Value>,
}

impl DataplaneTables {
    /// The switch API socket named in `[dataplane] api_socket`, if the file has one.
    pub fn api_socket(&self) -> Option<PathBuf> {
        self.dataplane.as_ref()?.get("api_socket")?.as_str().map(PathBuf::from)
    }
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and checks text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        // In a shared appliance.toml the local dataplane's socket is its `api_socket`.
        if let Some(sock) = cfg.dataplane.api_socket() {
            for s in cfg.switches.iter_mut().filter(|s| s.driver == DriverKind::Dataplane && s.socket.is_none()) {
                s.socket = Some(sock.clone());
            }
        }
        cfg.check(origin)?;
        Ok(cfg)
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |field: String, message: String| ConfigError::Invalid { path: origin.to_string(), field, message };
        self.credentials().map_err(|e| bad("user".into(), e.to_string()))?;
        self.add_state().map_err(|m| bad("cm.add_state".into(), m))?;
        if self.cm.sync_interval_ms == 0 {
            return Err(bad("cm.sync_interval_ms".into(), "must be at least 1".into()));
        }
        let mut names = Vec::new();
        for (i, s) in self.switches.iter().enumerate() {
            let f = |k: &str| format!("switch[{i}] ({}).{k}", s.name);
            if s.name.is_empty() {
                return Err(bad(f("name"), "must not be empty".into()));
            }
            if names.contains(&&s.name) {
                return Err(bad(f("name"), "duplicate switch name".into()));
            }
            names.push(&s.name);
            match s.driver {
                DriverKind::Dataplane if s.socket.is_none() => {
                    return Err(bad(f("socket"), "the dataplane driver needs the switch API socket".into()))
                }
                DriverKind::ServerironTelnet => {
                    for (k, v) in [("address", &s.address), ("username", &s.username), ("password", &s.password)] {
                        if v.is_none() {
                            return Err(bad(f(k), "the serveriron-telnet driver needs it".into()));
                        }
                    }
                }
                _ => {}
            }
        }
        let mut seen: HashMap<Ipv4Addr, &str> = HashMap::new();
        for (class, vips) in &self.partitions {
            for v in vips {
                if let Some(other) = seen.insert(*v, class) {
                    return Err(bad(format!("partitions.{class}"), format!("VIP {v} is in class {other} too")));
                }
            }
        }
        Ok(())
    }

    /// Login users and the enable secret, for the telnet server.
    pub fn credentials(&self) -> Result<cli::Credentials, cli::auth::AuthError> {
        cli::Credentials::new(
            self.users.iter().map(|u| (u.name.clone(), u.password_hash.clone())),
            self.enable_secret.clone(),
        )
    }

    fn add_state(&self) -> Result<BindingState, String> {
        match self.cm.add_state.as_str() {
            "active" => Ok(BindingState::Active),
            "testing" => Ok(BindingState::Testing),
            other => Err(format!("{other:?}: want \"active\" or \"testing\"")),
        }
    }

    /// The CM's options.
    pub fn cm_options(&self) -> CmOptions {
        let classes = self.partitions.iter().flat_map(|(c, vips)| vips.iter().map(move |v| (*v, c.clone()))).collect();
        CmOptions {
            policy: CachePolicy {
                add_state: self.add_state().unwrap_or(BindingState::Active),
                fail: self.cm.fail_policy,
            },
            classes,
            sync_interval: Duration::from_millis(self.cm.sync_interval_ms),
            sync_grace: Duration::from_millis(self.cm.sync_grace_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_and_full() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.telnet.listen.to_string(), "127.0.0.1:2323");
        let text = r#"
startup_config = "/tmp/x"
[telnet]
listen = "0.0.0.0:23"
[[switch]]
name = "local"
driver = "dataplane"
socket = "/tmp/dp.sock"
[[switch]]
name = "edge"
driver = "serveriron-telnet"
address = "192.0.2.1:23"
username = "a"
password = "b"
vips = ["10.0.0.200"]
[partitions]
gold = ["10.0.0.100"]
[health]
interval_ms = 100
"#;
        let c = Config::parse(text, "t").unwrap();
        assert_eq!(c.switches.len(), 2);
        assert_eq!(c.switches[1].vip_filter(), VipFilter::Only(vec!["10.0.0.200".parse().unwrap()]));
        assert_eq!(c.cm_options().classes.len(), 1);
        assert!(c.health.is_some());
    }

    #[test]
    fn one_appliance_toml_for_both_processes() {
        let text = r#"
[dataplane]
main_lcore = 0
worker_lcores = [1]
api_socket = "/run/acm/dp.sock"
[timeouts]
tcp_syn = 5
[[port]]
name = "client"
device = "net_af_packet0,iface=x"
address = "10.0.0.1/24"
[telnet]
listen = "127.0.0.1:2323"
[[switch]]
name = "local"
driver = "dataplane"
"#;
        let c = Config::parse(text, "appliance.toml").unwrap();
        // The local dataplane's socket comes from [dataplane] api_socket.
        assert_eq!(c.switches[0].socket.as_deref(), Some(Path::new("/run/acm/dp.sock")));
        let e = Config::parse(&format!("{text}\n[dataplan]\nx = 1\n"), "appliance.toml").unwrap_err().to_string();
        assert!(e.contains("dataplan"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse("[telnet]\nlisen = \"x\"\n", "f.toml").unwrap_err().to_string();
        assert!(e.contains("lisen") && e.contains("f.toml"), "{e}");
        let e = Config::parse("[[switch]]\nname = \"a\"\ndriver = \"dataplane\"\n", "f").unwrap_err().to_string();
        assert!(e.contains("socket"), "{e}");
        let e = Config::parse("[[switch]]\nname = \"a\"\ndriver = \"cisco\"\n", "f").unwrap_err().to_string();
        assert!(e.contains("driver") || e.contains("cisco"), "{e}");
        let e = Config::parse("[[user]]\nname = \"a\"\npassword_hash = \"plain\"\n", "f").unwrap_err().to_string();
        assert!(e.contains("user"), "{e}");
        let e = Config::parse("[cm]\nadd_state = \"maybe\"\n", "f").unwrap_err().to_string();
        assert!(e.contains("cm.add_state"), "{e}");
    }

    #[test]
    fn extra_telnet_listeners() {
        let text = r#"
[[telnet.extra]]
address = "10.0.0.1:23"
interface = "acmt0"
[[telnet.extra]]
address = "192.0.2.9:2323"
[[switch]]
name = "local"
driver = "fake"
"#;
        let c = Config::parse(text, "t").unwrap();
        assert_eq!(
            c.telnet.extra,
            [
                ExtraListen { address: "10.0.0.1:23".parse().unwrap(), interface: Some("acmt0".into()) },
                ExtraListen { address: "192.0.2.9:2323".parse().unwrap(), interface: None },
            ]
        );
        let e = Config::parse("[[telnet.extra]]\naddress = \"10.0.0.1:23\"\niface = \"x\"\n", "f").unwrap_err();
        assert!(e.to_string().contains("iface"), "{e}");
    }
}
