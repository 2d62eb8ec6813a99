//! The switch API server: accepts connections on a Unix socket and hands each decoded
//! request to a [`Handler`]. One thread per connection; the handler serializes changes.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::frame::{read_frame_bytes, write_frame, FrameError};
use super::{ApiError, Request, Response, Timing, API_VERSION, MIN_API_VERSION};
use crate::clock::now_ns;

/// Answers requests. Called from connection threads, concurrently.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request received at `received_ns`.
    fn handle(&self, req: Request, received_ns: u64) -> Response;
}

/// Counters of the server itself.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Frames that were not valid requests (the connection is then closed).
    pub malformed: AtomicU64,
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
    /// Binds `path` (replacing a stale socket file, creating the directory) and serves.
    pub fn start(path: &Path, handler: Arc<dyn Handler>) -> io::Result<Server> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
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
                            .spawn(move || serve_connection(stream, &*h, &c, &s));
                    }
                    Err(e) => tracing::warn!("switch API accept: {e}"),
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

fn serve_connection(mut stream: UnixStream, handler: &dyn Handler, counters: &ServerCounters, stop: &AtomicBool) {
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let bytes = match read_frame_bytes(&mut stream) {
            Ok(b) => b,
            Err(FrameError::Closed) => return,
            Err(e) => {
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("switch API: bad frame, closing connection: {e}");
                let _ = reply_error(&mut stream, 0, ApiError::Malformed(e.to_string()));
                return;
            }
        };
        let received_ns = now_ns();
        let req: Request = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("switch API: malformed request: {e}");
                // The framing is intact, so the connection can go on.
                if reply_error(&mut stream, 0, ApiError::Malformed(e.to_string())).is_err() {
                    return;
                }
                continue;
            }
        };
        // A version this build does not speak, or a body newer than the version claims.
        let known = (MIN_API_VERSION..=API_VERSION).contains(&req.version);
        let resp = if !known || req.body.min_version() > req.version {
            Response {
                id: req.id,
                result: Err(ApiError::Version { got: req.version }),
                timing: Timing { received_ns, published_ns: received_ns, acked_ns: now_ns() },
            }
        } else {
            handler.handle(req, received_ns)
        };
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if write_frame(&mut stream, &resp).is_err() {
            return;
        }
    }
}

fn reply_error(stream: &mut UnixStream, id: u64, err: ApiError) -> Result<(), FrameError> {
    let t = now_ns();
    write_frame(
        stream,
        &Response { id, result: Err(err), timing: Timing { received_ns: t, published_ns: t, acked_ns: t } },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::frame::read_frame;
    use crate::api::{RequestBody, ResponseBody};

    struct Echo;
    impl Handler for Echo {
        fn handle(&self, req: Request, received_ns: u64) -> Response {
            let body = match req.body {
                RequestBody::Sessions { .. } => ResponseBody::Sessions(Box::default()),
                _ => ResponseBody::Pong { generation: 0 },
            };
            Response { id: req.id, result: Ok(body), timing: Timing { received_ns, ..Timing::default() } }
        }
    }

    #[test]
    fn versions_old_requests_answered_new_bodies_need_their_version() {
        let dir = std::env::temp_dir().join(format!("dp-api-test-{}", std::process::id()));
        let path = dir.join("api.sock");
        let server = Server::start(&path, Arc::new(Echo)).unwrap();
        let mut s = UnixStream::connect(&path).unwrap();
        let mut ask = |version: u16, body: RequestBody| -> Result<ResponseBody, ApiError> {
            write_frame(&mut s, &Request { id: 9, version, body }).unwrap();
            read_frame::<_, Response>(&mut s).unwrap().result
        };
        let sessions = || RequestBody::Sessions { service: None, limit: 10 };
        // A version-1 client keeps working; version 2 has Sessions.
        assert_eq!(ask(1, RequestBody::Ping), Ok(ResponseBody::Pong { generation: 0 }));
        assert_eq!(ask(API_VERSION, RequestBody::Ping), Ok(ResponseBody::Pong { generation: 0 }));
        assert_eq!(ask(2, sessions()), Ok(ResponseBody::Sessions(Box::default())));
        // Sessions claimed as version 1 and unknown versions are refused by number.
        assert_eq!(ask(1, sessions()), Err(ApiError::Version { got: 1 }));
        assert_eq!(ask(0, RequestBody::Ping), Err(ApiError::Version { got: 0 }));
        assert_eq!(ask(API_VERSION + 1, RequestBody::Ping), Err(ApiError::Version { got: API_VERSION + 1 }));
        assert_eq!(sessions().min_version(), 2);
        drop(server);
        let _ = std::fs::remove_dir_all(dir);
    }
}
