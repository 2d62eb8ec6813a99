//! `appliance.toml`: the one config file of the appliance, as types both processes use.
//!
//! The dataplane takes `[dataplane]`, `[timeouts]` and `[[port]]` ([`DataplaneConfig`]); the
//! control plane the rest ([`ControlplaneConfig`]: users, `[telnet]`, `[api]`, `[cm]`,
//! `[partitions]`, `[[switch]]`, `[beacon]`, `[health]`, `[election]`). Either reads the whole
//! file into [`Appliance`], so a field of the wrong type or an unknown field anywhere stops
//! either process at once with the file, the field's dotted path and the line
//! (`appliance.toml: health.interval_ms: invalid type: string "fast", expected u64 (line 12)`);
//! then each checks the values of its part ([`Invalid`], `appliance.toml: port[1].address:
//! prefix length 33 is outside 1-32`).
//!
//! Files are written by serializing the same types ([`Appliance::to_toml`]): the lab, the tests,
//! the smoke test and the benchmark build theirs with [`presets`] (the shell scripts through the
//! `appliance-config` binary).
//!
//! Pure data and checks: no DPDK, no async runtime.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod controlplane;
pub mod dataplane;
pub mod fuzzing;
pub mod presets;
pub mod services;

pub use controlplane::{
    AddState, ApiConfig, CmConfig, ControlplaneConfig, DriverKind, ExtraListen, FailPolicy, SwitchProfile,
    TelnetConfig, User, DEFAULT_API_SOCKET,
};
pub use dataplane::{
    is_prime, DataplaneConfig, DataplaneSection, IdleMode, PortAddr, PortConfig, Timeouts, TimeoutsNs,
};
pub use services::{BeaconSection, CheckKind, ElectionSection, HealthSection, HealthServiceSection};

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, or a field is unknown or has the wrong type (the message names
    /// the field by its dotted path, and the line).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong, where.
        message: String,
    },
    /// A field has a value that is well-typed but not acceptable.
    #[error("{path}: {field}: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted path of the field, e.g. `port[1].address`.
        field: String,
        /// What is wrong with it.
        why: String,
    },
}

/// A well-typed value that is not acceptable: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct Invalid {
    /// Dotted path of the field, e.g. `port[1].address`.
    pub field: String,
    /// What is wrong with it.
    pub why: String,
}

impl Invalid {
    /// `field` is wrong because `why`.
    pub fn new(field: impl Into<String>, why: impl Into<String>) -> Invalid {
        Invalid { field: field.into(), why: why.into() }
    }

    /// The same, as an error of the file `path`.
    pub fn in_file(self, path: &Path) -> ConfigError {
        ConfigError::Invalid { path: path.to_owned(), field: self.field, why: self.why }
    }
}

/// The whole file, every section typed. Sections that are absent stay `None` (empty) and are
/// not written back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appliance {
    /// PHC hash of the enable password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_secret: Option<String>,
    /// Where `write memory` saves and what is replayed at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_config: Option<PathBuf>,
    /// `[dataplane]`: cores, memory, tables; also where the local dataplane's switch API is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane: Option<DataplaneSection>,
    /// `[timeouts]`: flow timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    /// `[[port]]`: the dataplane's ports, in order.
    #[serde(default, rename = "port", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
    /// `[[user]]`: telnet logins.
    #[serde(default, rename = "user", skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
    /// `[telnet]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telnet: Option<TelnetConfig>,
    /// `[api]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiConfig>,
    /// `[[switch]]`: the switches the Connection Manager drives.
    #[serde(default, rename = "switch", skip_serializing_if = "Vec::is_empty")]
    pub switches: Vec<SwitchProfile>,
    /// `[cm]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cm: Option<CmConfig>,
    /// `[partitions]`: priority class → VIPs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<String, Vec<Ipv4Addr>>,
    /// `[health]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSection>,
    /// `[beacon]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beacon: Option<BeaconSection>,
    /// `[election]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election: Option<ElectionSection>,
}

impl Appliance {
    /// Reads a file and type-checks all of it.
    pub fn load(path: &Path) -> Result<Appliance, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Appliance::parse(&text, path)
    }

    /// Type-checks text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Appliance, ConfigError> {
        serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let mut message = inner.message().trim_end().to_string();
            if !field.is_empty() && field != "." {
                message = format!("{field}: {message}");
            }
            if let Some(span) = inner.span() {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                message = format!("{message} (line {line})");
            }
            ConfigError::Syntax { path: path.to_owned(), message }
        })
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        // Every type here is a TOML table of strings, numbers, arrays and tables: cannot fail.
        toml::to_string(self).expect("appliance.toml types serialize")
    }

    /// The dataplane's part (absent sections: their defaults), checked.
    pub fn dataplane_config(&self) -> Result<DataplaneConfig, Invalid> {
        let cfg = DataplaneConfig {
            dataplane: self.dataplane.clone().unwrap_or_default(),
            timeouts: self.timeouts.unwrap_or_default(),
            ports: self.ports.clone(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The control plane's part (absent sections: their defaults), checked. A `dataplane`
    /// switch without a `socket` is the local dataplane: it gets `[dataplane] api_socket`
    /// when the file has a `[dataplane]` table.
    pub fn controlplane_config(&self) -> Result<ControlplaneConfig, Invalid> {
        let mut switches = self.switches.clone();
        if let Some(d) = &self.dataplane {
            for s in switches.iter_mut().filter(|s| s.driver == DriverKind::Dataplane && s.socket.is_none()) {
                s.socket = Some(d.api_socket.clone());
            }
        }
        let cfg = ControlplaneConfig {
            users: self.users.clone(),
            enable_secret: self.enable_secret.clone(),
            startup_config: self.startup_config.clone(),
            telnet: self.telnet.clone().unwrap_or_default(),
            api: self.api.clone().unwrap_or_default(),
            cm: self.cm.clone().unwrap_or_default(),
            partitions: self.partitions.clone(),
            switches,
            beacon: self.beacon.clone(),
            health: self.health.clone(),
            election: self.election.clone(),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests;
