//! The hosted service's side: connect to restartd, get the reginfo and the
//! kept channels, keep and release descriptors as they are opened and closed.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::fdpass;
use crate::proto::{self, LayoutInfo, RegInfo, Registration, Reply, Request};

/// Errors talking to restartd.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// Could not reach the control socket.
    #[error("connect to restartd at {path}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// A send or receive failed.
    #[error("restartd control socket: {0}")]
    Io(#[from] std::io::Error),
    /// restartd closed the connection.
    #[error("restartd closed the control connection")]
    Closed,
    /// A message did not parse or was not the one expected.
    #[error("restartd protocol: {0}")]
    Protocol(String),
    /// restartd refused the request.
    #[error("restartd refused: {0}")]
    Refused(String),
    /// An env var restartd sets is malformed.
    #[error("env {var}={value:?} is not valid")]
    Env {
        /// Variable.
        var: &'static str,
        /// Value.
        value: String,
    },
}

/// A command restartd sent to the running generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Stop at a safe point and exit 0.
    Quiesce,
}

/// Connection of one service process to restartd.
#[derive(Debug)]
pub struct Service {
    sock: OwnedFd,
    info: RegInfo,
    inherited: BTreeMap<String, OwnedFd>,
}

fn send(sock: BorrowedFd<'_>, req: &Request, fds: &[BorrowedFd<'_>]) -> Result<(), ServiceError> {
    let bytes = serde_json::to_vec(req).map_err(|e| ServiceError::Protocol(e.to_string()))?;
    fdpass::send(sock, &bytes, fds)?;
    Ok(())
}

fn recv(sock: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Result<(Reply, Vec<OwnedFd>), ServiceError> {
    let fds = fdpass::recv(sock, buf, false)?.ok_or(ServiceError::Closed)?;
    let reply = serde_json::from_slice(buf).map_err(|e| ServiceError::Protocol(format!("bad reply: {e}")))?;
    Ok((reply, fds))
}

impl Service {
    /// Connect using the env restartd sets (`RESTARTD_SOCK`,
    /// `RESTARTD_CHILD_ID`). `Ok(None)` when not started by restartd. Also
    /// resets the fault signals to their default action (see
    /// [`crate::sys::default_fault_signals`]).
    pub fn from_env() -> Result<Option<Service>, ServiceError> {
        let Some(path) = std::env::var_os(proto::ENV_SOCK) else { return Ok(None) };
        crate::sys::default_fault_signals();
        let child_id = match std::env::var(proto::ENV_CHILD_ID) {
            Ok(v) => v.parse().map_err(|_| ServiceError::Env { var: proto::ENV_CHILD_ID, value: v })?,
            Err(_) => 0,
        };
        Self::connect(Path::new(&path), child_id).map(Some)
    }

    /// Connect to restartd at `path` as role `child_id`, fetch the reginfo and
    /// receive the kept descriptors.
    pub fn connect(path: &Path, child_id: u32) -> Result<Service, ServiceError> {
        let sock =
            fdpass::connect(path).map_err(|source| ServiceError::Connect { path: path.to_path_buf(), source })?;
        send(sock.as_fd(), &Request::Hello { child_id }, &[])?;
        let mut buf = Vec::new();
        let info = match recv(sock.as_fd(), &mut buf)? {
            (Reply::RegInfo(info), _) => info,
            (Reply::Error { message }, _) => return Err(ServiceError::Refused(message)),
            (other, _) => return Err(ServiceError::Protocol(format!("expected reginfo, got {other:?}"))),
        };
        let mut inherited = BTreeMap::new();
        loop {
            match recv(sock.as_fd(), &mut buf)? {
                (Reply::Fds { names, last }, fds) => {
                    if names.len() != fds.len() {
                        return Err(ServiceError::Protocol(format!("{} names but {} fds", names.len(), fds.len())));
                    }
                    inherited.extend(names.into_iter().zip(fds));
                    if last {
                        break;
                    }
                }
                (other, _) => return Err(ServiceError::Protocol(format!("expected fds, got {other:?}"))),
            }
        }
        Ok(Service { sock, info, inherited })
    }

    /// Registration info: generation, child id, previous exit cause.
    pub fn reginfo(&self) -> &RegInfo {
        &self.info
    }

    /// Names of the channels handed over from the previous generation and not
    /// yet taken.
    pub fn inherited_names(&self) -> Vec<String> {
        self.inherited.keys().cloned().collect()
    }

    /// Take a handed-over channel. restartd still keeps its copy.
    pub fn take(&mut self, name: &str) -> Option<OwnedFd> {
        self.inherited.remove(name)
    }

    /// Take every handed-over channel.
    pub fn take_all(&mut self) -> BTreeMap<String, OwnedFd> {
        std::mem::take(&mut self.inherited)
    }

    /// Have restartd keep `fd` under `name`. Call right after opening it.
    pub fn keep(&self, name: &str, fd: BorrowedFd<'_>) -> Result<(), ServiceError> {
        send(self.sock.as_fd(), &Request::Keep { name: name.to_string() }, &[fd])
    }

    /// Stop keeping `name`. Call just before closing it, so the peer sees a
    /// clean close once the service closes its copy.
    pub fn release(&self, name: &str) -> Result<(), ServiceError> {
        send(self.sock.as_fd(), &Request::Release { name: name.to_string() }, &[])
    }

    /// Register (or update) a role; restartd starts it if not running.
    pub fn register(&self, reg: Registration) -> Result<(), ServiceError> {
        send(self.sock.as_fd(), &Request::Register(reg), &[])
    }

    /// Declare the state layout (restartd refuses upgrades to binaries with
    /// another one).
    pub fn declare_layout(&self, layout: LayoutInfo) -> Result<(), ServiceError> {
        send(self.sock.as_fd(), &Request::Layout(layout), &[])
    }

    /// Tell restartd this generation is serving.
    pub fn ready(&self) -> Result<(), ServiceError> {
        send(self.sock.as_fd(), &Request::Ready, &[])
    }

    /// The control connection, to poll for [`Service::poll_command`].
    pub fn control_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// A pending command, without blocking.
    pub fn poll_command(&self) -> Result<Option<Command>, ServiceError> {
        let mut buf = Vec::new();
        match fdpass::recv(self.sock.as_fd(), &mut buf, true) {
            Ok(Some(_)) => match serde_json::from_slice(&buf) {
                Ok(Reply::Quiesce) => Ok(Some(Command::Quiesce)),
                Ok(other) => Err(ServiceError::Protocol(format!("unexpected command {other:?}"))),
                Err(e) => Err(ServiceError::Protocol(e.to_string())),
            },
            Ok(None) => Err(ServiceError::Closed),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// If restartd asked this binary for its layout (`RESTARTD_QUERY=layout`),
/// print it as JSON and exit. Call first thing in `main`.
pub fn answer_layout_query(layout: &LayoutInfo) {
    if std::env::var(proto::ENV_QUERY).as_deref() == Ok("layout") {
        println!("{}", serde_json::to_string(layout).unwrap_or_default());
        #[allow(clippy::exit, reason = "restartd's layout query: the binary answers and does nothing else")]
        std::process::exit(0);
    }
}
