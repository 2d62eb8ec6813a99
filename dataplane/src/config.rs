//! `appliance.toml`: the platform configuration of the dataplane — ports, addresses, cores,
//! table sizes and timeouts — as the `appliance-config` crate types it (the control plane reads
//! the same file through the same crate). [`DataplaneConfig::load`] type-checks the whole file
//! and checks the dataplane's part: a bad file stops start-up with an error naming the file, the
//! field and why; unknown fields are errors too (a typo must not silently fall back to a
//! default).

pub use appliance_config::dataplane::{
    DataplaneConfig, DataplaneSection, IdleMode, PortAddr, PortConfig, Timeouts, TimeoutsNs,
};
pub use appliance_config::ConfigError;
