//! The local API server (tokio, Unix socket).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::{ApiError, Request, RequestBody, Response, ResponseBody, Status, SwitchStatus, API_VERSION, MAX_FRAME};
use crate::cm::Origin;
use crate::telnet::CliShared;

/// API server state.
pub struct ApiServer {
    shared: Arc<CliShared>,
    malformed: AtomicU64,
}

/// Binds the socket (replacing a stale one) with mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let l = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

impl ApiServer {
    /// A server over the CLI's shared state (which holds the CM).
    pub fn new(shared: Arc<CliShared>) -> Arc<ApiServer> {
        Arc::new(ApiServer { shared, malformed: AtomicU64::new(0) })
    }

    /// Serves until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) {
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    let me = self.clone();
                    tokio::spawn(async move { me.connection(s).await });
                }
                Err(e) => {
                    tracing::warn!("api accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn connection(&self, mut s: UnixStream) {
        let peer = s.peer_cred().map(|c| format!("pid {:?} uid {}", c.pid(), c.uid())).unwrap_or_else(|_| "?".into());
        loop {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).await.is_err() {
                return; // closed
            }
            let len = u32::from_be_bytes(len) as usize;
            let (resp, fatal) = if len > MAX_FRAME {
                (self.bad(&peer, 0, format!("frame of {len} bytes (most {MAX_FRAME})")), true)
            } else {
                let mut body = vec![0u8; len];
                if s.read_exact(&mut body).await.is_err() {
                    self.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer, "api: connection closed mid-frame");
                    return;
                }
                match serde_json::from_slice::<Request>(&body) {
                    Err(e) => (self.bad(&peer, 0, e.to_string()), true),
                    Ok(r) if r.version != API_VERSION => {
                        self.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer, "api: protocol version {}", r.version);
                        (Response { id: r.id, result: Err(ApiError::Version { got: r.version }) }, false)
                    }
                    Ok(r) => (Response { id: r.id, result: self.handle(r.body).await }, false),
                }
            };
            let Ok(bytes) = serde_json::to_vec(&resp) else { return };
            let mut frame = Vec::with_capacity(4 + bytes.len());
            frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            frame.extend_from_slice(&bytes);
            if s.write_all(&frame).await.is_err() || fatal {
                return;
            }
        }
    }

    fn bad(&self, peer: &str, id: u64, why: String) -> Response {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(peer, "api: malformed request: {why}");
        Response { id, result: Err(ApiError::Malformed(why)) }
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
                api_malformed: self.malformed.load(Ordering::Relaxed),
            })),
        }
    }
}
