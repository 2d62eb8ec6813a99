//! The local API server: a tokio loop over the `rpc` crate's sans-IO pieces (frame splitting,
//! version check, rejections), with connections kept across restarts under restartd.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rpc::frame::{encode, split_frame};
use rpc::serve::{incoming, rejected, Incoming, Reject};
use rpc::ServerCounters;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::{ApiError, LocalApi, RequestBody, Response, ResponseBody, Status, SwitchStatus, MAX_FRAME};
use crate::cm::Origin;
use crate::telnet::CliShared;

/// API server state.
pub struct ApiServer {
    shared: Arc<CliShared>,
    counters: ServerCounters,
}

/// Binds the socket (replacing a stale one) with mode 0600. Call on the runtime.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let l = rpc::server::bind(path, 0o600)?;
    l.set_nonblocking(true)?;
    UnixListener::from_std(l)
}

impl ApiServer {
    /// A server over the CLI's shared state (which holds the CM).
    pub fn new(shared: Arc<CliShared>) -> Arc<ApiServer> {
        Arc::new(ApiServer { shared, counters: ServerCounters::default() })
    }

    /// Under restartd: takes over the previous generation's API connections (`api:ID`) and
    /// answers what they asked and did not get answered. Call before [`ApiServer::serve`], on
    /// the runtime.
    pub fn resume_connections(self: &Arc<Self>) {
        if let Some(z) = crate::zlr::get() {
            for (name, fd) in z.adopt_prefixed("api:") {
                let id = name.strip_prefix("api:").and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                match Kept::resume(z, id, fd) {
                    Ok((kept, s)) => {
                        tracing::info!("api connection {id} resumed");
                        let me = self.clone();
                        tokio::spawn(async move { me.connection(s, Some(kept)).await });
                    }
                    Err(e) => {
                        tracing::warn!("api connection {name}: cannot resume ({e}); closing it");
                        z.release(&name);
                    }
                }
            }
        }
    }

    /// Serves until the task is dropped. Under restartd every connection is kept (`api:ID`)
    /// and its requests are read with hread and deleted only once answered, so a client
    /// mid-request when the control plane crashes gets its answer from the next generation.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) {
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    self.counters.connections.fetch_add(1, Ordering::Relaxed);
                    let kept = crate::zlr::get().and_then(|z| match Kept::open(z, &s) {
                        Ok(k) => Some(k),
                        Err(e) => {
                            tracing::error!("api connection not kept (it will not survive a restart): {e}");
                            None
                        }
                    });
                    let me = self.clone();
                    tokio::spawn(async move { me.connection(s, kept).await });
                }
                Err(e) => {
                    tracing::warn!("api accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Reads what the socket has into `buf`; false at end of stream.
    async fn fill(s: &mut UnixStream, kept: &mut Option<Kept>, buf: &mut Vec<u8>) -> bool {
        let mut tmp = [0u8; 8192];
        let r = match kept.as_mut() {
            None => s.read(&mut tmp).await,
            Some(k) => loop {
                if s.readable().await.is_err() {
                    return false;
                }
                match s.try_io(tokio::io::Interest::READABLE, || k.read(&mut tmp)) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    other => break other,
                }
            },
        };
        match r {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    async fn connection(&self, mut s: UnixStream, mut kept: Option<Kept>) {
        let peer = s.peer_cred().map(|c| format!("pid {:?} uid {}", c.pid(), c.uid())).unwrap_or_else(|_| "?".into());
        let mut buf = Vec::new();
        loop {
            // The next frame: a request, or a rejection (closing when the framing is lost).
            let (next, used, close) = loop {
                match split_frame(&buf, MAX_FRAME) {
                    Ok(Some((body, used))) => break (incoming::<LocalApi>(body), used, false),
                    Ok(None) => {}
                    Err(e) => break (rejected::<LocalApi>(0, Reject::Malformed(e.to_string())), buf.len(), true),
                }
                if !Self::fill(&mut s, &mut kept, &mut buf).await {
                    if !buf.is_empty() {
                        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer, "api: connection closed mid-frame");
                    }
                    return; // closed (dropping `kept` releases the channel first)
                }
            };
            let resp = match next {
                Incoming::Call(r) => {
                    self.counters.requests.fetch_add(1, Ordering::Relaxed);
                    Response { id: r.id, result: self.handle(r.body).await }
                }
                Incoming::Rejected { response, why } => {
                    self.counters.count(&why);
                    tracing::warn!(peer, "api: {why}");
                    response
                }
            };
            let Ok(frame) = encode(&resp, MAX_FRAME) else { return };
            if s.write_all(&frame).await.is_err() || close {
                return;
            }
            // Answered: the request leaves the socket (a crash before this line answers it
            // again in the next generation).
            if let Some(k) = kept.as_mut() {
                if let Err(e) = k.delete(used) {
                    tracing::warn!(peer, "api: hread delete: {e}");
                    return;
                }
            }
            buf.drain(..used);
        }
    }

    /// Answers one request.
    pub async fn handle(&self, body: RequestBody) -> Result<ResponseBody, ApiError> {
        let cm = &self.shared.cm;
        match body {
            RequestBody::Primitive { primitive } => {
                Ok(ResponseBody::Outcome(cm.primitive(Origin::Api, primitive).await?))
            }
            RequestBody::List => Ok(ResponseBody::List { bindings: cm.list() }),
            RequestBody::Latency { reset } => {
                let rows = cm.latency();
                if reset {
                    cm.reset_latency();
                }
                Ok(ResponseBody::Latency { rows })
            }
            RequestBody::Cli { lines } => {
                let sh = self.shared.clone();
                let output = tokio::task::spawn_blocking(move || sh.run_lines(&lines))
                    .await
                    .map_err(|e| ApiError::Malformed(format!("cli task failed: {e}")))?;
                Ok(ResponseBody::Cli { output })
            }
            RequestBody::Status => Ok(ResponseBody::Status(Status {
                active: cm.is_active(),
                generation: cm.generation(),
                bindings: cm.list().len(),
                counters: cm.counters(),
                switches: cm
                    .switches()
                    .into_iter()
                    .map(|(name, driver, up)| SwitchStatus { name, driver, up })
                    .collect(),
                api_malformed: self.counters.malformed.load(Ordering::Relaxed)
                    + self.counters.wrong_version.load(Ordering::Relaxed),
            })),
        }
    }
}

/// A kept API connection (under restartd): held input, released on drop.
struct Kept {
    z: &'static crate::zlr::Zlr,
    id: u64,
    fd: std::os::fd::OwnedFd,
    reader: restart::HoldingReader,
}

impl Kept {
    fn open(z: &'static crate::zlr::Zlr, s: &UnixStream) -> Result<Kept, restart::HreadError> {
        use std::os::fd::AsFd;
        let reader = restart::HoldingReader::open(s.as_fd(), restart::HreadMode::PeekOff, None)?;
        let id = z.next_id();
        z.keep(&format!("api:{id}"), s.as_fd());
        Ok(Kept { z, id, fd: s.as_fd().try_clone_to_owned()?, reader })
    }

    fn resume(
        z: &'static crate::zlr::Zlr,
        id: u64,
        fd: std::os::fd::OwnedFd,
    ) -> Result<(Kept, UnixStream), restart::HreadError> {
        use std::os::fd::AsFd;
        // Everything not deleted is a request not answered yet: read it again.
        let reader = restart::HoldingReader::resume(fd.as_fd(), restart::HreadMode::PeekOff, None, 0)?;
        let std = std::os::unix::net::UnixStream::from(fd.try_clone()?);
        std.set_nonblocking(true)?;
        Ok((Kept { z, id, fd, reader }, UnixStream::from_std(std)?))
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::fd::AsFd;
        self.reader.read(self.fd.as_fd(), buf).map_err(|e| match e {
            restart::HreadError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        })
    }

    fn delete(&mut self, n: usize) -> Result<u64, restart::HreadError> {
        use std::os::fd::AsFd;
        self.reader.delete(self.fd.as_fd(), n as u64)
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        use std::os::fd::AsFd;
        // Unread bytes at close reset the peer: delete what is held, then release before close.
        let held = self.reader.held();
        if held > 0 {
            let _ = self.reader.delete(self.fd.as_fd(), held);
        }
        crate::zlr::discard_input(self.fd.as_fd());
        self.z.release(&format!("api:{}", self.id));
    }
}
