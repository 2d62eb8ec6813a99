//! A blocking client of the local API (`acmctl`, tests, benchmarks).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use acm::{BindingInfo, Primitive};

use super::{ApiError, Request, RequestBody, Response, ResponseBody, Status, API_VERSION, MAX_FRAME};
use crate::cm::Outcome;
use crate::latency::LatencyReport;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not connect.
    #[error("cannot connect to the controlplane at {path}: {source}")]
    Connect {
        /// Socket path.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The connection failed mid-call.
    #[error("controlplane API transport: {0}")]
    Io(#[from] io::Error),
    /// The answer was not valid.
    #[error("bad answer from the controlplane: {0}")]
    Bad(String),
    /// The controlplane refused.
    #[error("{0}")]
    Refused(ApiError),
}

/// One connection.
pub struct Client {
    stream: UnixStream,
    next_id: u64,
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, doc: &impl serde::Serialize) -> io::Result<()> {
    let body = serde_json::to_vec(doc).map_err(io::Error::other)?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)
}

/// Reads one frame's bytes.
pub fn read_frame(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

impl Client {
    /// Connects (60 s timeout on each call: CLI commands may wait for slow switches).
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .map_err(|source| ClientError::Connect { path: path.display().to_string(), source })?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_write_timeout(Some(Duration::from_secs(60)))?;
        Ok(Client { stream, next_id: 1 })
    }

    /// Connects, retrying until `wait` has passed (a controlplane still starting).
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

    /// One request, one answer.
    pub fn call(&mut self, body: RequestBody) -> Result<ResponseBody, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(&mut self.stream, &Request { id, version: API_VERSION, body })?;
        let bytes = read_frame(&mut self.stream)?;
        let resp: Response = serde_json::from_slice(&bytes).map_err(|e| ClientError::Bad(e.to_string()))?;
        if resp.id != id {
            return Err(ClientError::Bad(format!("response id {} for request {id}", resp.id)));
        }
        resp.result.map_err(ClientError::Refused)
    }

    /// Runs a primitive.
    pub fn primitive(&mut self, primitive: Primitive) -> Result<Outcome, ClientError> {
        match self.call(RequestBody::Primitive { primitive })? {
            ResponseBody::Outcome(o) => Ok(o),
            other => Err(ClientError::Bad(format!("{other:?}"))),
        }
    }

    /// The binding cache.
    pub fn list(&mut self) -> Result<Vec<BindingInfo>, ClientError> {
        match self.call(RequestBody::List)? {
            ResponseBody::List { bindings } => Ok(bindings),
            other => Err(ClientError::Bad(format!("{other:?}"))),
        }
    }

    /// Latency rows.
    pub fn latency(&mut self, reset: bool) -> Result<Vec<LatencyReport>, ClientError> {
        match self.call(RequestBody::Latency { reset })? {
            ResponseBody::Latency { rows } => Ok(rows),
            other => Err(ClientError::Bad(format!("{other:?}"))),
        }
    }

    /// CLI lines.
    pub fn cli(&mut self, lines: Vec<String>) -> Result<Vec<String>, ClientError> {
        match self.call(RequestBody::Cli { lines })? {
            ResponseBody::Cli { output } => Ok(output),
            other => Err(ClientError::Bad(format!("{other:?}"))),
        }
    }

    /// Status.
    pub fn status(&mut self) -> Result<Status, ClientError> {
        match self.call(RequestBody::Status)? {
            ResponseBody::Status(s) => Ok(s),
            other => Err(ClientError::Bad(format!("{other:?}"))),
        }
    }
}
