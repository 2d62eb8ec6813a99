//! A blocking switch API client: what the control plane, `make run` and tests use.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use acm::{BindingInfo, BindingKey, BindingParams, DropFraction, Primitive, ServiceKey};

use super::frame::{read_frame, write_frame, FrameError};
use super::{ApiError, Request, RequestBody, Response, ResponseBody, Sessions, Stats, Timing};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not connect to the socket.
    #[error("cannot connect to the dataplane at {path}")]
    Connect {
        /// The socket path.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The connection failed mid-call.
    #[error("switch API transport")]
    Transport(#[from] FrameError),
    /// The dataplane refused the request.
    #[error("dataplane refused: {0}")]
    Refused(ApiError),
    /// The dataplane answered something that does not fit the request.
    #[error("unexpected answer from the dataplane: {0}")]
    Unexpected(String),
}

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
    stream: UnixStream,
    next_id: u64,
}

impl Client {
    /// Connects, with a 10 s timeout on each call.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .map_err(|source| ClientError::Connect { path: path.display().to_string(), source })?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(FrameError::Io)?;
        stream.set_write_timeout(Some(Duration::from_secs(10))).map_err(FrameError::Io)?;
        Ok(Client { stream, next_id: 1 })
    }

    /// Connects, retrying until `deadline` passes (for a dataplane still starting).
    pub fn connect_wait(path: impl AsRef<Path>, wait: Duration) -> Result<Client, ClientError> {
        let end = std::time::Instant::now() + wait;
        loop {
            match Client::connect(path.as_ref()) {
                Ok(c) => return Ok(c),
                Err(e) if std::time::Instant::now() >= end => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Sends one request and returns the raw response.
    pub fn call(&mut self, body: RequestBody) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        // The lowest version that has this request: an older dataplane still answers it.
        write_frame(&mut self.stream, &Request { id, version: body.min_version(), body })?;
        let resp: Response = read_frame(&mut self.stream)?;
        if resp.id != id {
            return Err(ClientError::Unexpected(format!("response id {} for request {id}", resp.id)));
        }
        Ok(resp)
    }

    /// Runs a primitive that changes state and returns its acknowledgement.
    pub fn primitive(&mut self, primitive: Primitive) -> Result<Ack, ClientError> {
        let resp = self.call(RequestBody::Primitive { primitive })?;
        match resp.result.map_err(ClientError::Refused)? {
            ResponseBody::Done { generation } => Ok(Ack { generation, changed: true, timing: resp.timing }),
            ResponseBody::Unchanged { generation } => Ok(Ack { generation, changed: false, timing: resp.timing }),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Add.
    pub fn add(&mut self, key: BindingKey, params: BindingParams) -> Result<Ack, ClientError> {
        self.primitive(Primitive::Add { key, params })
    }

    /// Remove (drain).
    pub fn remove(&mut self, key: BindingKey) -> Result<Ack, ClientError> {
        self.primitive(Primitive::Remove { key })
    }

    /// Force Remove.
    pub fn force_remove(&mut self, key: BindingKey) -> Result<Ack, ClientError> {
        self.primitive(Primitive::ForceRemove { key })
    }

    /// Drop.
    pub fn drop_fraction(&mut self, service: ServiceKey, fraction: DropFraction) -> Result<Ack, ClientError> {
        self.primitive(Primitive::Drop { service, fraction })
    }

    /// List.
    pub fn list(&mut self) -> Result<Vec<BindingInfo>, ClientError> {
        match self.call(RequestBody::Primitive { primitive: Primitive::List })?.result.map_err(ClientError::Refused)? {
            ResponseBody::List { bindings } => Ok(bindings),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Stats.
    pub fn stats(&mut self) -> Result<Stats, ClientError> {
        match self.call(RequestBody::Stats)?.result.map_err(ClientError::Refused)? {
            ResponseBody::Stats(s) => Ok(*s),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Sessions: up to `limit` live flows (of `service`, or all), and how many matched.
    pub fn sessions(&mut self, service: Option<ServiceKey>, limit: u32) -> Result<Sessions, ClientError> {
        match self.call(RequestBody::Sessions { service, limit })?.result.map_err(ClientError::Refused)? {
            ResponseBody::Sessions(s) => Ok(*s),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Ping: returns the generation in force once the workers have taken it up.
    pub fn ping(&mut self) -> Result<u64, ClientError> {
        match self.call(RequestBody::Ping)?.result.map_err(ClientError::Refused)? {
            ResponseBody::Pong { generation } => Ok(generation),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }
}
