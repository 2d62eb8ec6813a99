//! The admin CLI: the ServerIron language ([`cli`]) served over telnet, and the
//! [`cli::Backend`] that puts its commands on the CM's one primitive path.
//!
//! Every connection is its own task; the sans-IO [`cli::Connection`] runs on the blocking pool
//! (password hashing and switch acknowledgements may take a while) so no session waits for
//! another's keystrokes. The running configuration ([`SlbConfig`]) is shared by every session
//! and by `acmctl cli`; it is locked only while a logged-in session executes input.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use acm::Primitive;
use cli::{Backend, BackendError, Connection, LatencyRow, ServerSettings, SessionTable, SlbConfig, TrafficCounters};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::cm::{Cm, CmError, Origin};
use crate::zlr::{self, session::Recorded};

/// How long a CLI command waits for switch acknowledgements before answering (the change stays
/// in the cache either way).
pub const CLI_ACK_WAIT: Duration = Duration::from_secs(3);

/// The most flows `show server sessions` lists (the total is always shown).
pub const CLI_SESSIONS_LIMIT: u32 = 1000;

/// The CLI's view of the appliance: the CM.
pub struct CmBackend {
    cm: Cm,
    origin: Origin,
    startup: Option<PathBuf>,
    rt: Option<tokio::runtime::Handle>,
}

impl CmBackend {
    /// A backend for one session (`origin` says which, in logs). Call from a thread that may
    /// block (the blocking pool, or a plain thread).
    pub fn new(cm: Cm, origin: Origin, startup: Option<PathBuf>) -> CmBackend {
        CmBackend { cm, origin, startup, rt: tokio::runtime::Handle::try_current().ok() }
    }
}

fn backend_error(e: CmError) -> BackendError {
    match e {
        CmError::Acm(a) => BackendError::Acm(a),
        other => BackendError::Unavailable(other.to_string()),
    }
}

impl Backend for CmBackend {
    fn apply(&mut self, p: Primitive) -> Result<(), BackendError> {
        let out = match &self.rt {
            Some(rt) => {
                let cm = self.cm.clone();
                let origin = self.origin.clone();
                rt.block_on(async move { tokio::time::timeout(CLI_ACK_WAIT, cm.primitive(origin, p)).await }).map_err(
                    |_| {
                        BackendError::Unavailable(format!(
                            "no acknowledgement within {} s; the change is in the cache and the next sync pushes it",
                            CLI_ACK_WAIT.as_secs()
                        ))
                    },
                )?
            }
            None => self.cm.primitive_blocking(self.origin.clone(), p),
        }
        .map_err(backend_error)?;
        let down = out.unavailable();
        if !down.is_empty() {
            return Err(BackendError::Unavailable(format!(
                "{} did not answer; the change is in the cache and the next sync pushes it",
                down.join(", ")
            )));
        }
        Ok(())
    }

    fn list(&mut self) -> Vec<acm::BindingInfo> {
        self.cm.list()
    }

    fn traffic(&mut self) -> TrafficCounters {
        self.cm.traffic_blocking()
    }

    fn sessions(&mut self) -> SessionTable {
        self.cm.sessions_blocking(CLI_SESSIONS_LIMIT)
    }

    fn latency(&mut self) -> Vec<LatencyRow> {
        self.cm
            .latency()
            .into_iter()
            .map(|r| LatencyRow {
                primitive: r.primitive,
                switch: r.switch,
                count: r.summary.count,
                p50_us: r.summary.p50_us.ceil() as u64,
                p90_us: r.summary.p90_us.ceil() as u64,
                p99_us: r.summary.p99_us.ceil() as u64,
                max_us: r.summary.max_us.ceil() as u64,
            })
            .collect()
    }

    fn save_startup(&mut self, text: &str) -> Result<(), BackendError> {
        let Some(path) = &self.startup else {
            return Err(BackendError::Save("no startup_config path in the controlplane config".into()));
        };
        save_atomically(path, text).map_err(|e| BackendError::Save(format!("{}: {e}", path.display())))
    }

    fn version(&self) -> String {
        let mut s = format!("ACM appliance controlplane {}", env!("CARGO_PKG_VERSION"));
        for (name, desc, up) in self.cm.switches() {
            s.push_str(&format!("\nswitch {name}: {desc} ({})", if up { "up" } else { "not answering" }));
        }
        s
    }
}

/// Writes a file through a temporary file and a rename, so a crash leaves the old or the new.
pub fn save_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// What [`CliShared::on_config_change`] installs.
pub type ConfigHook = Box<dyn Fn(&SlbConfig) + Send + Sync>;

/// What every session shares.
pub struct CliShared {
    /// The running configuration.
    pub config: Mutex<SlbConfig>,
    /// The CM.
    pub cm: Cm,
    /// The startup-config file.
    pub startup: Option<PathBuf>,
    /// Sessions opened so far (numbers them).
    pub sessions: AtomicU64,
    /// Sessions open now.
    pub open: AtomicU64,
    /// A copy of the configuration as of the last command (for keystrokes and logins).
    snapshot: Mutex<SlbConfig>,
    /// Called with the configuration after every command ([`CliShared::on_config_change`]).
    on_config: std::sync::OnceLock<ConfigHook>,
}

impl CliShared {
    /// Shared state around a CM.
    pub fn new(cm: Cm, startup: Option<PathBuf>) -> Arc<CliShared> {
        Arc::new(CliShared {
            config: Mutex::new(SlbConfig::default()),
            cm,
            startup,
            sessions: AtomicU64::new(0),
            open: AtomicU64::new(0),
            snapshot: Mutex::new(SlbConfig::default()),
            on_config: std::sync::OnceLock::new(),
        })
    }

    pub(crate) fn snapshot(&self) -> SlbConfig {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_snapshot(&self, cfg: &SlbConfig) {
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = cfg.clone();
        if let Some(hook) = self.on_config.get() {
            hook(cfg);
        }
    }

    /// Calls `hook` with the running configuration after every command (the control plane
    /// keeps it in its state region with it, [`crate::zlr`]). Set once.
    pub fn on_config_change(&self, hook: ConfigHook) {
        if self.on_config.set(hook).is_err() {
            tracing::warn!("running-config hook set twice; keeping the first");
        }
    }

    /// Replaces the running configuration with `text` (a running-config kept by the previous
    /// generation), without any primitive: the binding cache is restored separately.
    pub fn restore_config(&self, text: &str) -> Vec<String> {
        let mut cfg = SlbConfig::default();
        let errors = cli::replay(text, &mut cfg, &mut cli::FakeBackend::default())
            .into_iter()
            .map(|e| format!("kept running-config line {}: {:?}: {}", e.line, e.text, e.message))
            .collect();
        *self.config() = cfg.clone();
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = cfg;
        errors
    }

    /// Locks the running configuration.
    pub fn config(&self) -> MutexGuard<'_, SlbConfig> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replays the startup-config (blocking): its commands take the same primitive path as typed
    /// ones. Returns the lines that failed, as messages.
    pub fn replay_startup(&self) -> Vec<String> {
        let Some(path) = &self.startup else { return Vec::new() };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => return vec![format!("cannot read startup-config {}: {e}", path.display())],
        };
        let mut backend = CmBackend::new(self.cm.clone(), Origin::Startup, self.startup.clone());
        let mut cfg = self.config();
        let errors = cli::replay(&text, &mut cfg, &mut backend)
            .into_iter()
            .map(|e| format!("startup-config line {}: {:?}: {}", e.line, e.text, e.message))
            .collect();
        self.set_snapshot(&cfg);
        errors
    }

    /// Runs CLI lines non-interactively in privileged mode (`acmctl cli`), blocking.
    pub fn run_lines(&self, lines: &[String]) -> Vec<String> {
        let session_no = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let mut backend = CmBackend::new(self.cm.clone(), Origin::Cli { session: session_no }, self.startup.clone());
        let mut session = cli::Session::new(cli::SessionOptions { enable_secret: None, privileged: true });
        let mut cfg = self.config();
        let mut out = Vec::new();
        for line in lines.iter().flat_map(|l| l.lines()) {
            let o = session.execute(line, &mut cfg, &mut backend);
            out.extend(o.lines);
            if o.quit {
                break;
            }
        }
        self.set_snapshot(&cfg);
        out
    }
}

/// Runs client input through a connection on the blocking pool (password hashing and switch
/// acknowledgements may take a while), recording the result when the session is recorded.
/// Returns the connection, the output and the recorded session back.
async fn process(
    shared: &Arc<CliShared>,
    conn: Connection,
    n: u64,
    input: Vec<u8>,
    mut rec: Option<Recorded>,
) -> std::io::Result<(Connection, Vec<u8>, Option<Recorded>)> {
    let sh = shared.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = conn;
        let mut backend = CmBackend::new(sh.cm.clone(), Origin::Cli { session: n }, sh.startup.clone());
        // Only a line (Enter) executes a command; keystrokes, logins (password hashing) and
        // paging run on a snapshot, so they never wait for another session's command (which
        // may be waiting for a slow switch).
        let executes = input.iter().any(|b| *b == b'\r' || *b == b'\n');
        let now = Instant::now();
        let out = if conn.logged_in() && executes {
            let mut cfg = sh.config();
            let out = conn.on_input(&input, now, &mut cfg, &mut backend);
            sh.set_snapshot(&cfg);
            out
        } else {
            let mut scratch = sh.snapshot();
            conn.on_input(&input, now, &mut scratch, &mut backend)
        };
        if let Some(r) = rec.as_mut() {
            r.commit(input.len(), &conn.image(now), &out).map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok((conn, out, rec))
    })
    .await
    .map_err(|e| std::io::Error::other(format!("session task: {e}")))?
}

/// Serves telnet on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<CliShared>, settings: ServerSettings, max_sessions: usize) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("telnet accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let open = shared.open.load(Ordering::Relaxed) as usize;
        if open >= max_sessions {
            tracing::warn!(%peer, "telnet: refused, {open} sessions open");
            settings.counters.count(cli::TelnetEvent::Refused);
            let mut sock = sock;
            let _ = sock.write_all(b"\r\nToo many sessions; try again later.\r\n").await;
            continue;
        }
        let shared = shared.clone();
        let settings = settings.clone();
        shared.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let n = shared.sessions.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::info!(%peer, session = n, "telnet session opened");
            let _ = sock.set_nodelay(true);
            let now = Instant::now();
            let mut conn = Connection::new(settings, now);
            let hello = conn.start(now);
            // Under restartd: recorded, kept, input held (see crate::zlr::session).
            let rec = match zlr::get() {
                Some(z) => match Recorded::open(z, sock.as_fd(), n, &conn.image(now), &hello) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::error!(%peer, session = n, "telnet session not recorded (it will not survive a restart): {e}");
                        None
                    }
                },
                None => None,
            };
            if let Err(e) = session(sock, n, shared.clone(), conn, hello, rec).await {
                tracing::info!(%peer, session = n, "telnet session: {e}");
            }
            tracing::info!(%peer, session = n, "telnet session closed");
            shared.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Takes over the telnet sessions of the previous generation (kept channels `telnet:ID` and
/// their records) and serves them on; sessions that cannot continue are closed cleanly.
pub fn resume_sessions(z: &'static zlr::Zlr, shared: &Arc<CliShared>, settings: &ServerSettings) {
    let mut records = if z.start() == zlr::Start::Recover { Recorded::records(z) } else { Vec::new() };
    let used: Vec<u32> = records.iter().map(|(slot, _)| *slot).collect();
    Recorded::init_slots(z, &used);
    let mut resumed = 0;
    for (name, fd) in z.adopt_prefixed("telnet:") {
        let Some(id) = name.strip_prefix("telnet:").and_then(|s| s.parse::<u64>().ok()) else {
            zlr::discard_input(fd.as_fd());
            z.release(&name);
            continue;
        };
        let keep = fd.try_clone();
        match Recorded::resume(z, id, fd, settings, &mut records) {
            Ok((rec, conn, owed)) => {
                let sock = keep.map_err(|e| e.to_string()).and_then(|fd| {
                    let std = std::net::TcpStream::from(fd);
                    std.set_nonblocking(true).map_err(|e| e.to_string())?;
                    TcpStream::from_std(std).map_err(|e| e.to_string())
                });
                let sock = match sock {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("telnet session {id}: cannot resume ({e}); closing it");
                        drop(rec);
                        continue;
                    }
                };
                resumed += 1;
                let n = rec.number();
                let shared = shared.clone();
                shared.open.fetch_add(1, Ordering::Relaxed);
                shared.sessions.fetch_max(n, Ordering::Relaxed);
                tokio::spawn(async move {
                    tracing::info!(session = n, "telnet session resumed");
                    if let Err(e) = session(sock, n, shared.clone(), conn, owed, Some(rec)).await {
                        tracing::info!(session = n, "telnet session: {e}");
                    }
                    tracing::info!(session = n, "telnet session closed");
                    shared.open.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(e) => {
                tracing::warn!("telnet session {id}: cannot resume ({e}); closing it");
                if let Ok(k) = keep {
                    zlr::discard_input(k.as_fd());
                }
                z.release(&name);
            }
        }
    }
    for (slot, r) in records {
        tracing::info!("telnet session {} was closed by the previous generation; clearing its record", r.id);
        let _ = z.region().write(zlr::layout::T_SESSION, slot, &zlr::layout::SessionRec::default());
        Recorded::free_slot(slot);
    }
    if z.start() == zlr::Start::Recover {
        tracing::info!("resumed {resumed} telnet session(s)");
    }
}

/// Reads input: held (hread) when the session is recorded, consumed otherwise.
async fn read_input(sock: &TcpStream, rec: &mut Option<Recorded>, buf: &mut [u8]) -> std::io::Result<usize> {
    let Some(r) = rec.as_mut() else {
        loop {
            sock.readable().await?;
            match sock.try_read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    };
    loop {
        sock.readable().await?;
        match sock.try_io(tokio::io::Interest::READABLE, || r.read(buf)) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// One session, from its first output (the hello, or what a crash held back) on.
async fn session(
    mut sock: TcpStream,
    n: u64,
    shared: Arc<CliShared>,
    mut conn: Connection,
    first: Vec<u8>,
    mut rec: Option<Recorded>,
) -> std::io::Result<()> {
    sock.write_all(&first).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let deadline = conn.next_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = read_input(&sock, &mut rec, &mut buf) => {
                let len = r?;
                if len == 0 {
                    return Ok(());
                }
                let (c, out, r) = process(&shared, conn, n, buf[..len].to_vec(), rec).await?;
                conn = c;
                rec = r;
                sock.write_all(&out).await?;
            }
            _ = sleep => {
                let now = Instant::now();
                let out = conn.on_timer(now);
                if let Some(r) = rec.as_mut() {
                    r.commit(0, &conn.image(now), &out).map_err(|e| std::io::Error::other(e.to_string()))?;
                }
                sock.write_all(&out).await?;
            }
        }
        if conn.is_closed() {
            drop(rec.take()); // release before close: the client sees FIN
            let _ = sock.shutdown().await;
            return Ok(());
        }
    }
}
