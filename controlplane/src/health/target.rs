//! What the health checker's core and its run-time prober share: which bindings a failure
//! report names, and the checker's state kept across a control plane restart.

use acm::{BindingKey, RealServer};

use super::fsm::Health;
use crate::beacon::wire::Target;

/// What the checker keeps across a control plane restart ([`crate::zlr`]): which bindings it
/// failed (only those it revives) and the endpoints that are not Up, with their hold-down, so
/// a new generation neither flaps a Down server back in on one pass nor leaves a binding it
/// failed Failed forever.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HealthImage {
    /// Bindings this checker took out.
    pub failed_by_us: Vec<BindingKey>,
    /// Endpoints with their health and the milliseconds of hold-down left.
    pub endpoints: Vec<(RealServer, Health, Option<u64>)>,
}

/// Does a report target name this binding? (Port 0: every port of the address; no service:
/// every service.)
pub fn matches_target(t: &Target, key: &BindingKey) -> bool {
    t.real.rip == key.real.rip
        && (t.real.rport == 0 || t.real.rport == key.real.rport)
        && t.service.is_none_or(|s| s == key.service)
}
