//! The controlplane's config: its part of `appliance.toml` (or of a file of its own), typed by
//! the `appliance-config` crate and checked when loaded — types, values, password hashes, and the
//! beacon, health and election settings built — so that a bad file stops the controlplane
//! before anything starts, with the file and the field named.
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
//! `[beacon]`, `[health]` and `[election]` are documented with their services
//! ([`crate::services::beacon`], [`crate::services::health`]).

use std::path::Path;
use std::time::Duration;

use acm::BindingState;
use appliance_config::{AddState, Appliance, ControlplaneConfig, Invalid};

use crate::cm::cache::{CachePolicy, FailPolicy};
use crate::cm::switch::VipFilter;
use crate::cm::CmOptions;
use crate::services::beacon::{BeaconConfig, ElectionSettings};
use crate::services::health::HealthConfig;

pub use appliance_config::{
    ApiConfig, CmConfig, ConfigError, DriverKind, ExtraListen, SwitchProfile, TelnetConfig, User, DEFAULT_API_SOCKET,
};

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file's sections (absent ones: their defaults), a local dataplane's socket filled in
    /// from `[dataplane] api_socket`.
    pub file: ControlplaneConfig,
    /// Beacons, health checks and the election; `None` when the file has none of `[beacon]`,
    /// `[health]`, `[election]` (then none of them runs).
    pub services: Option<ServiceSettings>,
}

/// The settings of the beacon listener, the health checker and the election, built from
/// `[beacon]`, `[health]` (absent: defaults) and `[election]` (absent: no election).
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Beacon receiver.
    pub beacon: BeaconConfig,
    /// Health checker.
    pub health: HealthConfig,
    /// Election.
    pub election: Option<ElectionSettings>,
}

impl ServiceSettings {
    fn build(c: &ControlplaneConfig) -> Result<Option<ServiceSettings>, Invalid> {
        if c.beacon.is_none() && c.health.is_none() && c.election.is_none() {
            return Ok(None);
        }
        let beacon = BeaconConfig::from_section(c.beacon.as_ref())?;
        let health = HealthConfig::from_section(c.health.as_ref())?;
        let election = ElectionSettings::from_section(c.election.as_ref(), &beacon)?;
        Ok(Some(ServiceSettings { beacon, health, election }))
    }
}

/// The VIP filter of a switch profile (no VIPs: every VIP).
pub fn vip_filter(p: &SwitchProfile) -> VipFilter {
    if p.vips.is_empty() {
        VipFilter::All
    } else {
        VipFilter::Only(p.vips.clone())
    }
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::checked(Appliance::load(path)?, path)
    }

    /// Parses and checks text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let path = Path::new(origin);
        Config::checked(Appliance::parse(text, path)?, path)
    }

    fn checked(appliance: Appliance, path: &Path) -> Result<Config, ConfigError> {
        let file = appliance.controlplane_config().map_err(|e| e.in_file(path))?;
        let services = ServiceSettings::build(&file).map_err(|e| e.in_file(path))?;
        let cfg = Config { file, services };
        cfg.credentials().map_err(|e| Invalid::new("user", e.to_string()).in_file(path))?;
        Ok(cfg)
    }

    /// Login users and the enable secret, for the telnet server.
    pub fn credentials(&self) -> Result<cli::Credentials, cli::auth::AuthError> {
        cli::Credentials::new(
            self.file.users.iter().map(|u| (u.name.clone(), u.password_hash.clone())),
            self.file.enable_secret.clone(),
        )
    }

    /// The CM's options.
    pub fn cm_options(&self) -> CmOptions {
        let c = &self.file.cm;
        let classes =
            self.file.partitions.iter().flat_map(|(c, vips)| vips.iter().map(move |v| (*v, c.clone()))).collect();
        CmOptions {
            policy: CachePolicy {
                add_state: match c.add_state {
                    AddState::Active => BindingState::Active,
                    AddState::Testing => BindingState::Testing,
                },
                fail: match c.fail_policy {
                    appliance_config::FailPolicy::Force => FailPolicy::Force,
                    appliance_config::FailPolicy::Drain => FailPolicy::Drain,
                },
            },
            classes,
            sync_interval: Duration::from_millis(c.sync_interval_ms),
            sync_grace: Duration::from_millis(c.sync_grace_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_and_full() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.file.telnet.listen.to_string(), "127.0.0.1:2323");
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
        assert_eq!(c.file.switches.len(), 2);
        assert_eq!(vip_filter(&c.file.switches[1]), VipFilter::Only(vec!["10.0.0.200".parse().unwrap()]));
        assert_eq!(c.cm_options().classes.len(), 1);
        assert_eq!(c.services.unwrap().health.interval, Duration::from_millis(100));
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
        assert_eq!(c.file.switches[0].socket.as_deref(), Some(Path::new("/run/acm/dp.sock")));
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

    /// The values only the services can check (key files, status ranges, service keys, the
    /// election's signing key) are checked at load too, and named.
    #[test]
    fn service_settings_are_checked_at_load() {
        for (text, field) in [
            ("[beacon]\nkey_files = { local = \"/nonexistent/key\" }\n", "f: beacon.key_files.local: "),
            ("[beacon]\nkeys = { local = \"\" }\n", "f: beacon.keys.local: empty key"),
            ("[beacon]\ninterfaces = [\"acmt1\", \"acmt2\"]\n", "f: beacon.interfaces: "),
            ("[health]\ncheck = \"l7\"\nhttp_status = [\"600\"]\n", "f: health.http_status: "),
            ("[[health.service]]\nservice = \"10.0.0.100\"\n", "f: health.service[0].service: "),
            ("[beacon]\nkeys = { local = \"k\" }\n[election]\nid = 1\nprofile = \"edge\"\n", "f: election.profile: "),
        ] {
            let e = Config::parse(text, "f").unwrap_err().to_string();
            assert!(e.starts_with(field), "{text}: want {field}: {e}");
        }
        let c = Config::parse("[beacon]\nkeys = { local = \"k\" }\n[election]\nid = 2\n", "f").unwrap();
        let s = c.services.unwrap();
        assert_eq!(s.election.unwrap().profile, "local");
        assert_eq!(s.health.probe, crate::health::probe::Probe::Tcp);
        assert!(Config::parse("", "f").unwrap().services.is_none());
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
            c.file.telnet.extra,
            [
                ExtraListen { address: "10.0.0.1:23".parse().unwrap(), interface: Some("acmt0".into()) },
                ExtraListen { address: "192.0.2.9:2323".parse().unwrap(), interface: None },
            ]
        );
        let e = Config::parse("[[telnet.extra]]\naddress = \"10.0.0.1:23\"\niface = \"x\"\n", "f").unwrap_err();
        assert!(e.to_string().contains("iface"), "{e}");
    }
}
