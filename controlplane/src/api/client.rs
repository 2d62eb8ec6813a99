//! A blocking client of the local API (`acmctl`, tests, benchmarks).

use std::path::Path;

use acm::{BindingInfo, Primitive};

use super::{ApiError, LocalApi, RequestBody, ResponseBody, Status};
use crate::cm::Outcome;
use crate::latency::LatencyReport;

/// Why a call failed.
pub type CallError = rpc::CallError<ApiError>;

/// One connection.
pub struct Client {
    rpc: rpc::Client<LocalApi>,
}

impl Client {
    /// Connects (60 s timeout on each call: CLI commands may wait for slow switches).
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, CallError> {
        Ok(Client { rpc: rpc::Client::connect(path)? })
    }

    /// One request, one answer.
    pub fn call(&mut self, body: RequestBody) -> Result<ResponseBody, CallError> {
        self.rpc.call(body)?.result.map_err(rpc::CallError::Refused)
    }

    /// Runs a primitive.
    pub fn primitive(&mut self, primitive: Primitive) -> Result<Outcome, CallError> {
        match self.call(RequestBody::Primitive { primitive })? {
            ResponseBody::Outcome(o) => Ok(o),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The binding cache.
    pub fn list(&mut self) -> Result<Vec<BindingInfo>, CallError> {
        match self.call(RequestBody::List)? {
            ResponseBody::List { bindings } => Ok(bindings),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Latency rows.
    pub fn latency(&mut self, reset: bool) -> Result<Vec<LatencyReport>, CallError> {
        match self.call(RequestBody::Latency { reset })? {
            ResponseBody::Latency { rows } => Ok(rows),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }

    /// CLI lines.
    pub fn cli(&mut self, lines: Vec<String>) -> Result<Vec<String>, CallError> {
        match self.call(RequestBody::Cli { lines })? {
            ResponseBody::Cli { output } => Ok(output),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Status.
    pub fn status(&mut self) -> Result<Status, CallError> {
        match self.call(RequestBody::Status)? {
            ResponseBody::Status(s) => Ok(s),
            other => Err(rpc::CallError::Unexpected(format!("{other:?}"))),
        }
    }
}
