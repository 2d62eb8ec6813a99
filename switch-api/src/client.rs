//! A blocking switch API client: what the control plane, `dpctl`, `make run` and tests use.

use std::path::Path;
use std::time::Duration;

use acm::{BindingInfo, BindingKey, BindingParams, DropFraction, Primitive, ServiceKey};

use crate::{ApiError, RequestBody, Response, ResponseBody, Sessions, Stats, SwitchApi, Timing};

/// Why a call failed.
pub type CallError = rpc::CallError<ApiError>;

/// An acknowledged change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The generation in force after it.
    pub generation: u64,
    /// False when the request restated the current state.
    pub changed: bool,
    /// The dataplane's timestamps.
    pub timing: Timing,
}

/// One connection to the switch API.
pub struct Client {
    rpc: rpc::Client<SwitchApi>,
}

impl Client {
    /// Connects, with a 10 s timeout on each call.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, CallError> {
        Ok(Client { rpc: rpc::Client::connect(path)? })
    }

    /// Connects, retrying until `wait` has passed (for a dataplane still starting).
    pub fn connect_wait(path: impl AsRef<Path>, wait: Duration) -> Result<Client, CallError> {
        Ok(Client { rpc: rpc::Client::connect_wait(path, wait)? })
    }

    /// Sends one request and returns the raw response.
    pub fn call(&mut self, body: RequestBody) -> Result<Response, CallError> {
        self.rpc.call(body)
    }

    /// Sends one request and returns its answer, or the dataplane's refusal.
    fn answer(&mut self, body: RequestBody) -> Result<ResponseBody, CallError> {
        self.call(body)?.result.map_err(rpc::CallError::Refused)
    }

    /// Runs a primitive that changes state and returns its acknowledgement.
    pub fn primitive(&mut self, primitive: Primitive) -> Result<Ack, CallError> {
        let resp = self.call(RequestBody::Primitive { primitive })?;
        match resp.result.map_err(rpc::CallError::Refused)? {
            ResponseBody::Done { generation } => Ok(Ack { generation, changed: true, timing: resp.timing }),
            ResponseBody::Unchanged { generation } => Ok(Ack { generation, changed: false, timing: resp.timing }),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Add.
    pub fn add(&mut self, key: BindingKey, params: BindingParams) -> Result<Ack, CallError> {
        self.primitive(Primitive::Add { key, params })
    }

    /// Remove (drain).
    pub fn remove(&mut self, key: BindingKey) -> Result<Ack, CallError> {
        self.primitive(Primitive::Remove { key })
    }

    /// Force Remove.
    pub fn force_remove(&mut self, key: BindingKey) -> Result<Ack, CallError> {
        self.primitive(Primitive::ForceRemove { key })
    }

    /// Drop.
    pub fn drop_fraction(&mut self, service: ServiceKey, fraction: DropFraction) -> Result<Ack, CallError> {
        self.primitive(Primitive::Drop { service, fraction })
    }

    /// List.
    pub fn list(&mut self) -> Result<Vec<BindingInfo>, CallError> {
        match self.answer(RequestBody::Primitive { primitive: Primitive::List })? {
            ResponseBody::List { bindings } => Ok(bindings),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Stats.
    pub fn stats(&mut self) -> Result<Stats, CallError> {
        match self.answer(RequestBody::Stats)? {
            ResponseBody::Stats(s) => Ok(*s),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Sessions: up to `limit` live flows (of `service`, or all), and how many matched.
    pub fn sessions(&mut self, service: Option<ServiceKey>, limit: u32) -> Result<Sessions, CallError> {
        match self.answer(RequestBody::Sessions { service, limit })? {
            ResponseBody::Sessions(s) => Ok(*s),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Ping: returns the generation in force once the workers have taken it up.
    pub fn ping(&mut self) -> Result<u64, CallError> {
        match self.answer(RequestBody::Ping)? {
            ResponseBody::Pong { generation } => Ok(generation),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }
}
