//! The local dataplane through its switch API.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use acm::Primitive;
use switch_api::client::{CallError, Client};
use switch_api::ApiError;

use crate::cm::switch::{DriverAck, DriverError, SwitchDriver, SwitchView};

/// Drives a dataplane over its Unix socket; reconnects after a failure (a restarted dataplane).
pub struct DataplaneDriver {
    socket: PathBuf,
    client: Option<Client>,
}

impl DataplaneDriver {
    /// A driver for the dataplane at `socket` (connects lazily).
    pub fn new(socket: impl Into<PathBuf>) -> DataplaneDriver {
        DataplaneDriver { socket: socket.into(), client: None }
    }

    fn client(&mut self) -> Result<&mut Client, DriverError> {
        if self.client.is_none() {
            let c = Client::connect(&self.socket).map_err(|e| DriverError::Unavailable(chain(&e)))?;
            self.client = Some(c);
        }
        Ok(self.client.as_mut().expect("just connected"))
    }

    fn call<T>(&mut self, f: impl Fn(&mut Client) -> Result<T, CallError>) -> Result<T, DriverError> {
        // One retry on a fresh connection: the dataplane may have restarted since the last call.
        for attempt in 0..2 {
            let fresh = self.client.is_none();
            let r = f(self.client()?);
            match r {
                Ok(v) => return Ok(v),
                Err(CallError::Refused(ApiError::Acm(e))) => return Err(DriverError::Refused(e)),
                Err(e @ CallError::Refused(_)) | Err(e @ CallError::Unexpected(_)) => {
                    return Err(DriverError::Unavailable(chain(&e)))
                }
                Err(e) => {
                    self.client = None;
                    if fresh || attempt == 1 {
                        return Err(DriverError::Unavailable(chain(&e)));
                    }
                }
            }
        }
        Err(DriverError::Unavailable("unreachable".into()))
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

impl SwitchDriver for DataplaneDriver {
    fn apply(&mut self, op: &Primitive) -> Result<DriverAck, DriverError> {
        let ack = self.call(|c| c.primitive(op.clone()))?;
        Ok(DriverAck {
            changed: ack.changed,
            switch_ns: Some(ack.timing.acked_ns.saturating_sub(ack.timing.received_ns)),
        })
    }

    fn list(&mut self) -> Result<SwitchView, DriverError> {
        let bindings = self.call(|c| c.list())?;
        let drops = self
            .call(|c| c.stats())
            .ok()
            .map(|s| s.services.iter().map(|x| (x.key, x.drop_fraction)).collect::<HashMap<_, _>>());
        Ok(SwitchView { bindings, drops })
    }

    fn traffic(&mut self) -> Option<cli::TrafficCounters> {
        let s = self.call(|c| c.stats()).ok()?;
        let mut t = cli::TrafficCounters::default();
        for svc in &s.services {
            t.client_to_server += svc.packets_in;
            t.server_to_client += svc.packets_out;
            t.exceed_drop += svc.admission_drops;
        }
        t.drops = s.total_drops();
        Some(t)
    }

    fn sessions(&mut self, limit: u32) -> Result<Option<cli::SessionTable>, DriverError> {
        let s = self.call(|c| c.sessions(None, limit))?;
        let rows = s
            .sessions
            .iter()
            .map(|f| cli::SessionRow {
                client: *f.client.ip(),
                client_port: f.client.port(),
                vip: *f.vip.ip(),
                vport: f.vip.port(),
                real: *f.real.ip(),
                rport: f.real.port(),
                proto: f.proto,
                state: f.state.abbrev().to_string(),
                idle_s: f.idle_ms / 1000,
                expires_s: f.expires_ms.div_ceil(1000),
            })
            .collect();
        let note = (s.answered < s.workers).then(|| {
            format!("{} of {} workers did not answer; their flows are missing", s.workers - s.answered, s.workers)
        });
        Ok(Some(cli::SessionTable { rows, total: s.total, note }))
    }

    fn describe(&self) -> String {
        format!("dataplane switch API at {}", self.socket.display())
    }
}

/// Waits until the dataplane answers Ping (for tools and tests).
pub fn wait_ready(socket: &std::path::Path, wait: Duration) -> Result<(), String> {
    let mut c = Client::connect_wait(socket, wait).map_err(|e| chain(&e))?;
    c.ping().map(|_| ()).map_err(|e| chain(&e))
}
