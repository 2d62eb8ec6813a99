//! What the language needs from the appliance: the [`Backend`] trait the control plane
//! implements, the rows it returns for the show commands, and a recording [`FakeBackend`] for
//! tests and for running the language without a switch.

use std::net::Ipv4Addr;

use acm::{AcmError, BindingInfo, Primitive};

use crate::config::Predictor;

/// Global traffic counters, with the device's `show server traffic` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCounters {
    /// `Client->Server`: packets forwarded client to server.
    pub client_to_server: u64,
    /// `Server->Client`: packets forwarded server to client.
    pub server_to_client: u64,
    /// `Drops`: packets dropped, all reasons.
    pub drops: u64,
    /// `Aged`: flows aged out of the flow table.
    pub aged: u64,
    /// `Fw_drops`: forward-direction drops.
    pub fw_drops: u64,
    /// `Rev_drops`: reverse-direction drops.
    pub rev_drops: u64,
    /// `FIN_or_RST`: flows ended by FIN or RST.
    pub fin_or_rst: u64,
    /// `old-conn`: packets of flows that no longer exist.
    pub old_conn: u64,
    /// `Disable_drop`: new flows dropped because the port or server is disabled.
    pub disable_drop: u64,
    /// `Exceed_drop`: new flows dropped by `max-conn` or the ACM drop fraction.
    pub exceed_drop: u64,
    /// `Stale_drop`: packets for stale flows.
    pub stale_drop: u64,
    /// `Unsuccessful`: connections that never completed.
    pub unsuccessful: u64,
    /// `TCP SYN-DEF RST`: resets sent by SYN defence.
    pub syn_def_rst: u64,
    /// `Server Resets`: resets sent by real servers.
    pub server_resets: u64,
    /// `Out of Memory`: flow table full.
    pub out_of_memory: u64,
}

/// One flow of `show server sessions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Client address.
    pub client: Ipv4Addr,
    /// Client port.
    pub client_port: u16,
    /// Virtual IP.
    pub vip: Ipv4Addr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub real: Ipv4Addr,
    /// Real server port.
    pub rport: u16,
    /// `TCP` / `UDP`.
    pub proto: acm::Proto,
    /// Flow state in a word (`EST`, `SYN`, `FIN`, `RST`, `UDP`).
    pub state: String,
    /// Seconds since the flow's last packet.
    pub idle_s: u64,
    /// Seconds until it expires unless another packet comes.
    pub expires_s: u64,
}

/// The answer to `show server sessions`: some flows and how many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionTable {
    /// The flows shown (the backend may stop at a limit).
    pub rows: Vec<SessionRow>,
    /// Flows in all (at least `rows.len()`).
    pub total: u64,
    /// Why some flows may be missing (a switch that did not answer), if so.
    pub note: Option<String>,
}

/// One histogram of `show acm latency`: how long the switch took to apply a primitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyRow {
    /// Primitive name (`add`, `remove`, ...).
    pub primitive: String,
    /// Which switch (profile name).
    pub switch: String,
    /// Samples.
    pub count: u64,
    /// Median, microseconds.
    pub p50_us: u64,
    /// 90th percentile, microseconds.
    pub p90_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// Maximum, microseconds.
    pub max_us: u64,
}

/// Why the backend refused something.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// The switch refused an ACM primitive.
    #[error(transparent)]
    Acm(#[from] AcmError),
    /// The switch could not be reached or did not answer.
    #[error("switch unavailable: {0}")]
    Unavailable(String),
    /// Saving the startup-config failed.
    #[error("cannot save startup-config: {0}")]
    Save(String),
}

/// The appliance as the command language sees it. The control plane implements this; every
/// configuration command ends in [`Backend::apply`] calls, the same primitives the API uses.
pub trait Backend {
    /// Applies one ACM primitive (Add, Remove, ForceRemove, Drop) and returns once the switch
    /// has acknowledged it.
    fn apply(&mut self, primitive: Primitive) -> Result<(), BackendError>;
    /// Every binding the switch holds, with state and counters (the List primitive).
    fn list(&mut self) -> Vec<BindingInfo>;
    /// Global traffic counters.
    fn traffic(&mut self) -> TrafficCounters;
    /// The flow table (the backend may stop at a limit; `total` says how many there are).
    fn sessions(&mut self) -> SessionTable;
    /// Configuration-latency histograms.
    fn latency(&mut self) -> Vec<LatencyRow>;
    /// Stores `text` as the startup-config (`write memory`).
    fn save_startup(&mut self, text: &str) -> Result<(), BackendError>;
    /// Version lines for `show version`.
    fn version(&self) -> String;
    /// Told when a virtual server's predictor changes (the dataplane implements Maglev only;
    /// the default accepts and ignores).
    fn set_predictor(&mut self, _vip: Ipv4Addr, _predictor: Predictor) -> Result<(), BackendError> {
        Ok(())
    }
    /// The telnet server's counters (`show telnet`); a [`crate::Connection`] supplies them
    /// itself, so backends leave the default (`None`: not served over telnet).
    fn telnet(&mut self) -> Option<crate::TelnetStats> {
        None
    }
}

/// A backend that records what it is asked and keeps bindings in memory, for tests and for
/// running the language without a switch.
#[derive(Debug, Clone, Default)]
pub struct FakeBackend {
    /// Every primitive applied, in order.
    pub applied: Vec<Primitive>,
    /// Bindings as a switch would hold them (removed ones stay, draining, until
    /// [`FakeBackend::finish_drains`]).
    pub bindings: Vec<BindingInfo>,
    /// The last startup-config saved.
    pub startup: Option<String>,
    /// Returned by `traffic()`.
    pub traffic: TrafficCounters,
    /// Returned by `sessions()`.
    pub sessions: Vec<SessionRow>,
    /// Returned by `latency()`.
    pub latency: Vec<LatencyRow>,
    /// When set, `apply` fails with this error.
    pub fail: Option<BackendError>,
}

impl FakeBackend {
    /// Takes and returns the primitives applied since the last call.
    pub fn take_applied(&mut self) -> Vec<Primitive> {
        std::mem::take(&mut self.applied)
    }
    /// Ends every drain: draining bindings disappear, as when their last flow ends.
    pub fn finish_drains(&mut self) {
        self.bindings.retain(|b| b.state != acm::BindingState::Draining);
    }
}

impl Backend for FakeBackend {
    fn apply(&mut self, p: Primitive) -> Result<(), BackendError> {
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        self.applied.push(p.clone());
        match p {
            Primitive::Add { key, params } => {
                params.validate()?;
                if let Some(b) = self.bindings.iter_mut().find(|b| b.key == key) {
                    b.params = params;
                    b.state = acm::BindingState::Active;
                } else {
                    self.bindings.push(BindingInfo {
                        key,
                        params,
                        state: acm::BindingState::Active,
                        counters: Default::default(),
                    });
                }
            }
            Primitive::Remove { key } => match self.bindings.iter_mut().find(|b| b.key == key) {
                Some(b) => b.state = acm::BindingState::Draining,
                None => return Err(AcmError::UnknownBinding(key).into()),
            },
            Primitive::ForceRemove { key } => {
                let n = self.bindings.len();
                self.bindings.retain(|b| b.key != key);
                if n == self.bindings.len() {
                    return Err(AcmError::UnknownBinding(key).into());
                }
            }
            Primitive::Drop { service, .. } => {
                if !self.bindings.iter().any(|b| b.key.service == service) {
                    return Err(AcmError::UnknownService(service).into());
                }
            }
            Primitive::List => {}
        }
        Ok(())
    }
    fn list(&mut self) -> Vec<BindingInfo> {
        self.bindings.clone()
    }
    fn traffic(&mut self) -> TrafficCounters {
        self.traffic
    }
    fn sessions(&mut self) -> SessionTable {
        SessionTable { rows: self.sessions.clone(), total: self.sessions.len() as u64, note: None }
    }
    fn latency(&mut self) -> Vec<LatencyRow> {
        self.latency.clone()
    }
    fn save_startup(&mut self, text: &str) -> Result<(), BackendError> {
        self.startup = Some(text.to_string());
        Ok(())
    }
    fn version(&self) -> String {
        "ACM appliance (fake backend)".into()
    }
}
