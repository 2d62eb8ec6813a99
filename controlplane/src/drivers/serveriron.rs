//! ServerIron-CLI devices over telnet (in progress).

use acm::Primitive;

use crate::cm::switch::{DriverAck, DriverError, SwitchDriver, SwitchView};
use crate::config::SwitchProfile;

/// Drives a ServerIron-CLI device over telnet.
pub struct ServerIronDriver {
    address: String,
}

impl ServerIronDriver {
    /// From a switch profile.
    pub fn from_profile(p: &SwitchProfile) -> ServerIronDriver {
        ServerIronDriver { address: p.address.clone().unwrap_or_default() }
    }
}

impl SwitchDriver for ServerIronDriver {
    fn apply(&mut self, _op: &Primitive) -> Result<DriverAck, DriverError> {
        Err(DriverError::Unavailable("serveriron-telnet driver not implemented yet".into()))
    }
    fn list(&mut self) -> Result<SwitchView, DriverError> {
        Err(DriverError::Unavailable("serveriron-telnet driver not implemented yet".into()))
    }
    fn describe(&self) -> String {
        format!("ServerIron CLI over telnet at {}", self.address)
    }
}
