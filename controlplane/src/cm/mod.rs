//! The Connection Manager: one code path for every ACM primitive.
//!
//! Requests arrive from three doors — beacons of the CM client module on the servers, the
//! telnet CLI, and the local API used by `acmctl` — plus the health checker and the periodic
//! sync. All of them go through one core, so they are filtered, ordered, pushed and measured
//! alike:
//!
//! 1. the binding cache ([`cache::Cache`], sans-IO) takes the request at once and decides the
//!    switch operations — none for a request that restates the cache (filtered);
//! 2. each operation is queued, in cache order, to every switch whose profile serves the VIP
//!    (one thread per switch, [`switch::SwitchHandle`]);
//! 3. the time from receipt to each switch's acknowledgement goes into the latency histograms
//!    ([`crate::latency`]), per primitive and per switch.
//!
//! A switch that refuses a request (every switch asked, with an ACM error) takes the change back
//! out of the cache and the caller gets the error. A switch that does not answer does not lose
//! the change: the cache keeps it and the next sync pushes it ([`Outcome::unavailable`] names
//! such switches).
//!
//! # Core and edge
//!
//! * [`core::CmCore`] is the whole Connection Manager as a sans-IO state machine: the cache, the
//!   switch jobs, the latency stamps, the sync ([`sync`]), the beacon tracker and the election
//!   (`peers`), the health state machines (`health`). Events go in with the time
//!   ([`time::Time`], never read inside), effects come out of `poll_*` calls; its module docs
//!   are the contract. The simulation ([`crate::sim`]) drives several cores on virtual time.
//! * [`Cm`] is the run-time edge that drives one core: the real clock ([`time::Clock`]), a thread
//!   per switch, tokio channels for callers that wait, a timer task; the beacon service
//!   ([`crate::services::beacon`]) and the health prober ([`crate::services::health`]) feed it what
//!   they receive and probe. CLI presentation types (traffic, sessions) stay at this edge.
//!
//! # For the code that uses [`Cm`]
//!
//! * [`Cm`] is a cheap `Clone` handle; keep one per task.
//! * `cm.primitive(Origin::Api, Primitive::Add { .. }).await` (or [`Cm::primitive_blocking`] from
//!   a thread that may block). Repeating an Add of an active binding is free (filtered, nothing
//!   reaches a switch).
//! * `cm.list()` — the cache, with states Testing / Active / Draining / Failed / Disabled.
//! * `cm.set_state(key, BindingState::Failed).await` — the server is down: the binding leaves the
//!   switch (ForceRemove, or Remove under [`cache::FailPolicy::Drain`]) and stays in the cache as
//!   Failed; an Add does not revive it. `set_state(key, BindingState::Active)` on recovery puts it
//!   back on the switch. With [`cache::CachePolicy::add_state`] = Testing, new bindings wait for
//!   that call.
//! * `cm.set_active(false)` — this CM is a standby (lost the election): the cache keeps taking
//!   requests, nothing is pushed to switches and no sync runs. `set_active(true)` (won) starts a
//!   sync at once, so the switches get the cache. [`Cm::is_active`], and [`Cm::generation`]
//!   (bumped on every cache change).
//! * [`Cm::drive`] runs a closure on the core with the time now and carries out its effects:
//!   the way the edge's drivers hand it beacons, heartbeats and probe verdicts.

pub mod cache;
pub mod core;
pub mod fake;
mod handle;
mod health;
mod peers;
pub mod switch;
pub mod sync;

pub use handle::{CacheHook, Cm};

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use acm::{AcmError, BindingInfo};
use serde::{Deserialize, Serialize};

use cache::CachePolicy;
use switch::{SwitchDriver, VipFilter};

/// Where a request came from (for logs and counters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum Origin {
    /// A beacon of the CM client module on a server.
    Beacon {
        /// The server that sent it.
        server: IpAddr,
    },
    /// A telnet CLI session (or `acmctl cli`).
    Cli {
        /// Session number.
        session: u64,
    },
    /// The local API (`acmctl`, tests).
    Api,
    /// The health checker.
    Health,
    /// The periodic sync.
    Sync,
    /// The startup-config replay.
    Startup,
}

/// Why the CM refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum CmError {
    /// The request is invalid (unknown binding or VIP, bad weight or fraction), or every
    /// switch refused it.
    #[error(transparent)]
    Acm(#[from] AcmError),
    /// The real server already serves a VIP of another priority class (partitions).
    #[error("real server {real} serves {other_vip} (class {other_class}); VIP {vip} is class {class}: partitions keep classes on disjoint servers")]
    Partition {
        /// The real server.
        real: Ipv4Addr,
        /// The VIP asked for.
        vip: Ipv4Addr,
        /// Its class.
        class: String,
        /// A VIP the server already serves.
        other_vip: Ipv4Addr,
        /// That VIP's class.
        other_class: String,
    },
    /// No switch profile serves this VIP.
    #[error("no switch profile serves VIP {0}")]
    NoSwitch(Ipv4Addr),
    /// The CM is shutting down.
    #[error("connection manager is shutting down")]
    ShuttingDown,
}

/// One switch's part in a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchOutcome {
    /// Switch profile name.
    pub switch: String,
    /// The operation sent.
    pub op: String,
    /// Acknowledged (`changed` false: the switch already was in that state).
    pub acked: bool,
    /// The switch changed something.
    pub changed: bool,
    /// Receipt by the CM to this switch's acknowledgement, microseconds.
    pub latency_us: f64,
    /// The switch's own receipt-to-ack, microseconds, when it reports it.
    pub switch_us: Option<f64>,
    /// Why not acknowledged.
    pub error: Option<String>,
    /// The switch did not answer (the change waits in the cache for the next sync).
    pub unavailable: bool,
}

/// What a request did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The cache changed (false: the request was redundant and filtered).
    pub changed: bool,
    /// Receipt to the last acknowledgement (or to the cache's answer), microseconds.
    pub latency_us: f64,
    /// Per switch.
    pub switches: Vec<SwitchOutcome>,
    /// This CM is a standby: nothing was pushed.
    pub standby: bool,
    /// For List: the cache.
    pub bindings: Vec<BindingInfo>,
}

impl Outcome {
    /// Switches that did not answer.
    pub fn unavailable(&self) -> Vec<&str> {
        self.switches.iter().filter(|s| s.unavailable).map(|s| s.switch.as_str()).collect()
    }
}

/// How the CM behaves.
#[derive(Debug, Clone)]
pub struct CmOptions {
    /// Cache policy (state of new bindings, meaning of Failed).
    pub policy: CachePolicy,
    /// Partitions: VIP → priority class.
    pub classes: HashMap<Ipv4Addr, String>,
    /// Time between syncs.
    pub sync_interval: Duration,
    /// After start, syncs re-add but do not remove unknown bindings for this long (beacons
    /// re-announce servers after a CM restart).
    pub sync_grace: Duration,
}

impl Default for CmOptions {
    fn default() -> Self {
        CmOptions {
            policy: CachePolicy::default(),
            classes: HashMap::new(),
            sync_interval: Duration::from_secs(2),
            sync_grace: Duration::from_secs(5),
        }
    }
}

/// Counters of the CM.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
pub struct CmCounters {
    /// Requests taken (every door).
    pub requests: u64,
    /// Requests the cache filtered as redundant.
    pub filtered: u64,
    /// Requests refused.
    pub refused: u64,
    /// Operations a switch did not answer.
    pub unavailable: u64,
    /// Sync rounds.
    pub syncs: u64,
    /// Corrections syncs sent.
    pub sync_corrections: u64,
}

/// A switch to manage: profile name, VIPs, driver.
pub struct SwitchSpec {
    /// Profile name.
    pub name: String,
    /// VIPs it serves.
    pub vips: VipFilter,
    /// The driver.
    pub driver: Box<dyn SwitchDriver>,
}

impl Default for SwitchOutcome {
    fn default() -> Self {
        SwitchOutcome {
            switch: String::new(),
            op: String::new(),
            acked: false,
            changed: false,
            latency_us: 0.0,
            switch_us: None,
            error: None,
            unavailable: false,
        }
    }
}

#[cfg(test)]
mod tests;
