//! The entry point of the `appliance_toml` fuzz target (`fuzz/`, cargo-fuzz) and of the
//! property test that runs it on stable Rust: arbitrary bytes as `appliance.toml`, through
//! everything a process does with its file at start. Must never panic.

use std::path::Path;

use crate::Appliance;

/// What became of one input: each stage that was reached and passed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The text type-checked as an [`Appliance`].
    pub parsed: bool,
    /// The dataplane's part passed its checks.
    pub dataplane_ok: bool,
    /// The control plane's part passed its checks.
    pub controlplane_ok: bool,
    /// What [`Appliance::to_toml`] wrote back type-checked again.
    pub reparsed: bool,
}

/// `data` (lossily as UTF-8) as an `appliance.toml`: parsed, both parts checked, written back
/// and parsed again.
pub fn appliance_toml(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("appliance.toml");
    let Ok(a) = Appliance::parse(&text, path) else {
        return Outcome::default();
    };
    Outcome {
        parsed: true,
        dataplane_ok: a.dataplane_config().is_ok(),
        controlplane_ok: a.controlplane_config().is_ok(),
        reparsed: Appliance::parse(&a.to_toml(), path).is_ok(),
    }
}
