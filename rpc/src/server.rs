//! A blocking server: accepts connections on a Unix socket, a thread per connection, and
//! hands each request to a [`Handler`]. What it does with a frame is [`crate::serve`].

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::frame::{read_frame_bytes, write_frame, FrameError};
use crate::serve::{incoming, rejected, Incoming, Reject};
use crate::{Protocol, Request};

/// Answers requests. Called from connection threads, concurrently.
pub trait Handler<P: Protocol>: Send + Sync + 'static {
    /// Answers one request (its version is already checked).
    fn handle(&self, req: Request<P::Body>) -> P::Response;
}

/// Counters of a server.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests answered by the handler.
    pub requests: AtomicU64,
    /// Frames that were not valid requests, and connections closed mid-frame.
    pub malformed: AtomicU64,
    /// Requests in a version the server does not speak.
    pub wrong_version: AtomicU64,
}

impl ServerCounters {
    /// Counts a rejection.
    pub fn count(&self, why: &Reject) {
        match why {
            Reject::Malformed(_) => self.malformed.fetch_add(1, Ordering::Relaxed),
            Reject::Version { .. } => self.wrong_version.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Binds `path` with permissions `mode`, replacing a stale socket file and creating the
/// directory.
pub fn bind(path: &Path, mode: u32) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// A running server; dropping it stops accepting and removes the socket file.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// The server's counters.
    pub counters: Arc<ServerCounters>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (see [`bind`]) and serves `P` with `handler`.
    pub fn start<P: Protocol>(path: &Path, mode: u32, handler: Arc<dyn Handler<P>>) -> io::Result<Server> {
        let listener = bind(path, mode)?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(ServerCounters::default());
        let (stop2, counters2) = (stop.clone(), counters.clone());
        let accept = std::thread::Builder::new().name("api-accept".into()).spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Acquire) {
                    break;
                }
                match conn {
                    Ok(stream) => {
                        counters2.connections.fetch_add(1, Ordering::Relaxed);
                        let (h, c, s) = (handler.clone(), counters2.clone(), stop2.clone());
                        let _ = std::thread::Builder::new()
                            .name("api-conn".into())
                            .spawn(move || serve_connection::<P>(stream, &*h, &c, &s));
                    }
                    Err(e) => tracing::warn!("{} API accept: {e}", P::PEER),
                }
            }
        })?;
        Ok(Server { path: path.to_owned(), stop, counters, accept: Some(accept) })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve_connection<P: Protocol>(
    mut stream: UnixStream,
    handler: &dyn Handler<P>,
    counters: &ServerCounters,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Acquire) {
        // A bad frame (too large, cut short) leaves no frame boundary to go on from: answer
        // and close. A bad document in a good frame is answered and the connection goes on.
        let (next, close) = match read_frame_bytes(&mut stream, P::MAX_FRAME) {
            Ok(bytes) => (incoming::<P>(&bytes), false),
            Err(FrameError::Closed) => return,
            Err(e) => (rejected::<P>(0, Reject::Malformed(e.to_string())), true),
        };
        let response = match next {
            Incoming::Call(req) => {
                counters.requests.fetch_add(1, Ordering::Relaxed);
                handler.handle(req)
            }
            Incoming::Rejected { response, why } => {
                counters.count(&why);
                tracing::warn!("{} API: {why}", P::PEER);
                response
            }
        };
        if write_frame(&mut stream, &response, P::MAX_FRAME).is_err() || close {
            return;
        }
    }
}
