//! restartd: the supervisor of zero-loss restartable services.
//!
//! Starts the service, keeps the descriptors it hands over, watches every
//! generation with a pidfd, and on an abnormal end starts the next generation
//! at once with the same descriptors under the same names. Repeated faults
//! within the window back off exponentially and give up after K tries.

mod control;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use restart::fdpass;
use restart::policy::{Decision, FaultTracker, Policy};
use restart::proto::{self, ExitCause, LayoutInfo, RegInfo, Registration, Reply, Request, RoleStatus, StatusReport};
use tracing::{error, info, warn};

#[derive(Parser, Debug)]
#[command(
    name = "restartd",
    about = "Zero-loss restart supervisor: keeps a service's sockets and restarts it on faults"
)]
struct Args {
    /// Control socket (default /run/restartd/NAME.sock).
    #[arg(long)]
    control: Option<PathBuf>,
    /// Service name (default: the binary's file name).
    #[arg(long)]
    name: Option<String>,
    /// A fault sooner than this after the last restart is a repeat (seconds).
    #[arg(long, default_value_t = 60.0)]
    fault_window: f64,
    /// First back-off delay for repeated faults (milliseconds), doubled per repeat.
    #[arg(long, default_value_t = 100)]
    backoff_base_ms: u64,
    /// Back-off ceiling (milliseconds).
    #[arg(long, default_value_t = 30_000)]
    backoff_max_ms: u64,
    /// Repeated faults tolerated before giving up.
    #[arg(long, default_value_t = 5)]
    max_retries: u32,
    /// Grace period for a planned restart/upgrade before SIGKILL (milliseconds).
    #[arg(long, default_value_t = 5000)]
    quiesce_ms: u64,
    /// Service binary and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

const LISTENER: Token = Token(0);
const ROLE_BASE: usize = 1 << 20;
const CONN_BASE: usize = 1 << 24;

#[derive(Debug, Clone, PartialEq)]
enum RoleState {
    Running,
    Backoff(Instant),
    Exited,
    Failed,
}

#[derive(Debug)]
struct Pending {
    reason: &'static str,
    new_path: Option<String>,
    deadline: Instant,
}

struct Role {
    reg: Registration,
    generation: u64,
    child: Option<Child>,
    pidfd: Option<OwnedFd>,
    conn: Option<usize>,
    kept: BTreeMap<String, OwnedFd>,
    tracker: FaultTracker,
    last_exit: Option<ExitCause>,
    state: RoleState,
    restarts: u64,
    exit_seen: Option<Instant>,
    last_restart_ms: Option<f64>,
    layout: Option<LayoutInfo>,
    pending: Option<Pending>,
    ready: bool,
}

struct Conn {
    fd: OwnedFd,
    role: Option<u32>,
}

struct Daemon {
    name: String,
    control: PathBuf,
    policy: Policy,
    quiesce: Duration,
    poll: Poll,
    roles: BTreeMap<u32, Role>,
    conns: BTreeMap<usize, Conn>,
    next_conn: usize,
    listener: OwnedFd,
}

fn exit_cause(st: std::process::ExitStatus) -> ExitCause {
    match (st.code(), st.signal()) {
        (Some(code), _) => ExitCause::Exited { code },
        (None, Some(sig)) => ExitCause::Signaled { signal: sig, name: proto::signal_name(sig), core: st.core_dumped() },
        _ => ExitCause::Exited { code: -1 },
    }
}

impl Daemon {
    fn send(&self, conn: usize, reply: &Reply, fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
        let Some(c) = self.conns.get(&conn) else { return Ok(()) };
        let bytes = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
        fdpass::send(c.fd.as_fd(), &bytes, fds)
    }

    fn spawn(&mut self, id: u32) -> Result<()> {
        let control = self.control.clone();
        let name = self.name.clone();
        let role = self.roles.get_mut(&id).context("no such role")?;
        role.generation += 1;
        let mut cmd = Command::new(&role.reg.path);
        cmd.args(&role.reg.argv)
            .envs(role.reg.env.iter().map(|(k, v)| (k, v)))
            .env(proto::ENV_SOCK, &control)
            .env(proto::ENV_CHILD_ID, id.to_string())
            .env(proto::ENV_GENERATION, role.generation.to_string())
            .env(proto::ENV_SERVICE, &name)
            .stdin(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                role.state = RoleState::Failed;
                bail!("role {id}: cannot start {}: {e}", role.reg.path);
            }
        };
        let pid = child.id();
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid as i32).context("pid 0")?,
            rustix::process::PidfdFlags::empty(),
        )
        .context("pidfd_open")?;
        self.poll.registry().register(
            &mut SourceFd(&pidfd.as_raw_fd()),
            Token(ROLE_BASE + id as usize),
            Interest::READABLE,
        )?;
        role.child = Some(child);
        role.pidfd = Some(pidfd);
        role.state = RoleState::Running;
        role.ready = false;
        if role.generation > 1 {
            // The rule measures from the last restart, not the first start.
            role.tracker.started(Instant::now());
        }
        info!(role = id, generation = role.generation, pid, kept = role.kept.len(), "started {}", role.reg.path);
        Ok(())
    }

    fn plan(&mut self, id: u32, reason: &'static str, new_path: Option<String>) -> Reply {
        let Some(role) = self.roles.get(&id) else { return Reply::Error { message: format!("no role {id}") } };
        if role.state != RoleState::Running || role.child.is_none() {
            return Reply::Error { message: format!("role {id} is not running") };
        }
        if role.pending.is_some() {
            return Reply::Error { message: format!("a planned {reason} of role {id} is already in progress") };
        }
        if let Some(path) = &new_path {
            match query_layout(path) {
                Err(e) => {
                    return Reply::Error {
                        message: format!("refusing upgrade: {path} did not declare its state layout: {e:#}"),
                    }
                }
                Ok(new) => match &role.layout {
                    Some(cur) if cur != &new => {
                        let m = format!(
                            "refusing upgrade: running generation uses state layout {:?} v{}, {path} uses {:?} v{} (incompatible)",
                            cur.name, cur.version, new.name, new.version
                        );
                        error!("{m}");
                        return Reply::Error { message: m };
                    }
                    _ => {}
                },
            }
        }
        let conn = role.conn;
        let role = self.roles.get_mut(&id).expect("checked");
        role.pending = Some(Pending { reason, new_path: new_path.clone(), deadline: Instant::now() + self.quiesce });
        match conn {
            Some(c) => {
                if let Err(e) = self.send(c, &Reply::Quiesce, &[]) {
                    warn!("quiesce role {id}: {e}; will kill");
                }
            }
            None => warn!("role {id} has no control connection; it will be killed after the grace period"),
        }
        info!(role = id, "planned {reason}{}", new_path.as_ref().map(|p| format!(" to {p}")).unwrap_or_default());
        Reply::Ok { message: format!("planned {reason} of role {id} started") }
    }

    fn status(&self) -> StatusReport {
        let roles: Vec<RoleStatus> = self
            .roles
            .iter()
            .map(|(&id, r)| RoleStatus {
                child_id: id,
                generation: r.generation,
                pid: r.child.as_ref().map(|c| c.id()),
                state: match r.state {
                    RoleState::Running => "running",
                    RoleState::Backoff(_) => "backoff",
                    RoleState::Exited => "exited",
                    RoleState::Failed => "failed",
                }
                .into(),
                path: r.reg.path.clone(),
                kept_fds: r.kept.len(),
                restarts: r.restarts,
                fault_streak: r.tracker.streak(),
                last_exit: r.last_exit.clone(),
                last_restart_ms: r.last_restart_ms,
                layout: r.layout.clone(),
                ready: r.ready,
            })
            .collect();
        let main = roles.iter().find(|r| r.child_id == 0).or(roles.first());
        StatusReport {
            service: self.name.clone(),
            control: self.control.display().to_string(),
            restartd_pid: std::process::id(),
            generation: main.map(|r| r.generation).unwrap_or(0),
            pid: main.and_then(|r| r.pid),
            roles,
        }
    }

    fn on_child(&mut self, id: u32) -> Result<()> {
        let Some(role) = self.roles.get_mut(&id) else { return Ok(()) };
        let Some(child) = role.child.as_mut() else { return Ok(()) };
        let Some(st) = child.try_wait()? else { return Ok(()) };
        let now = Instant::now();
        let pid = child.id();
        role.child = None;
        if let Some(fd) = role.pidfd.take() {
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        // Everything the dead generation sent (keeps, releases) is still
        // queued on its connection: apply it before handing over.
        if let Some(t) = role.conn {
            // Reads to EOF (the writer is dead); a live descendant holding
            // the socket would leave it open, so drop it regardless.
            if self.on_conn(t) {
                self.drop_conn(t);
            }
        }
        let role = self.roles.get_mut(&id).expect("role");
        let mut cause = exit_cause(st);
        let pending = role.pending.take();
        if let Some(p) = &pending {
            cause = ExitCause::Planned { reason: p.reason.into(), from: role.reg.path.clone() };
        }
        role.exit_seen = Some(now);
        let decision = role.tracker.on_exit(&self.policy, &cause, now);
        let gen = role.generation;
        match decision {
            Decision::RestartNow => warn!(role = id, generation = gen, pid, "generation {gen} {cause}: transient fault, restarting now"),
            Decision::Planned => info!(role = id, generation = gen, pid, "generation {gen} ended: {cause}"),
            Decision::Backoff { delay, streak } => error!(
                role = id,
                generation = gen,
                "REPEATED FAULT: generation {gen} {cause} within {:?} of the last restart (repeat {streak}/{}): likely a deterministic bug; backing off {delay:?}",
                self.policy.window,
                self.policy.max_retries
            ),
            Decision::GiveUp { streak } => error!(
                role = id,
                generation = gen,
                "GIVING UP: generation {gen} {cause}; {streak} repeated faults within {:?}: deterministic bug, not restarting",
                self.policy.window
            ),
            Decision::Stop => info!(role = id, generation = gen, "generation {gen} {cause}: clean exit, not restarting"),
        }
        role.last_exit = Some(cause);
        match decision {
            Decision::RestartNow | Decision::Planned => {
                if let Some(p) = pending.and_then(|p| p.new_path) {
                    role.reg.path = p;
                    role.layout = None;
                }
                if decision == Decision::RestartNow {
                    role.restarts += 1;
                }
                self.spawn(id)?;
            }
            Decision::Backoff { delay, .. } => {
                role.restarts += 1;
                role.state = RoleState::Backoff(now + delay);
            }
            Decision::GiveUp { .. } => {
                role.state = RoleState::Failed;
                role.kept.clear();
            }
            Decision::Stop => {
                role.state = RoleState::Exited;
                role.kept.clear();
            }
        }
        Ok(())
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        let due: Vec<u32> = self
            .roles
            .iter()
            .filter(|(_, r)| matches!(r.state, RoleState::Backoff(t) if t <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            if let Err(e) = self.spawn(id) {
                error!("{e:#}");
            }
        }
        for (id, r) in self.roles.iter_mut() {
            if let (Some(p), Some(c)) = (&r.pending, r.child.as_mut()) {
                if p.deadline <= now {
                    warn!(role = id, "planned {} not done within the grace period: killing pid {}", p.reason, c.id());
                    let _ = c.kill();
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.roles
            .values()
            .filter_map(|r| match (&r.state, &r.pending) {
                (RoleState::Backoff(t), _) => Some(*t),
                (_, Some(p)) => Some(p.deadline),
                _ => None,
            })
            .min()
    }

    fn done(&self) -> Option<i32> {
        if self.roles.values().all(|r| matches!(r.state, RoleState::Exited | RoleState::Failed)) {
            Some(if self.roles.values().any(|r| r.state == RoleState::Failed) { 2 } else { 0 })
        } else {
            None
        }
    }
}

fn new_role(reg: Registration) -> Role {
    Role {
        reg,
        generation: 0,
        child: None,
        pidfd: None,
        conn: None,
        kept: BTreeMap::new(),
        tracker: FaultTracker::default(),
        last_exit: None,
        state: RoleState::Exited,
        restarts: 0,
        exit_seen: None,
        last_restart_ms: None,
        layout: None,
        pending: None,
        ready: false,
    }
}

/// Ask a binary for its state layout (`RESTARTD_QUERY=layout`), 5 s limit.
fn query_layout(path: &str) -> Result<LayoutInfo> {
    let mut child = Command::new(path)
        .env(proto::ENV_QUERY, "layout")
        .env_remove(proto::ENV_SOCK)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("run {path}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no answer within 5 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).with_context(|| format!("layout answer {text:?}"))
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RESTARTD_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let path = args.command[0].clone();
    let name = args.name.clone().unwrap_or_else(|| {
        std::path::Path::new(&path)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "service".into())
    });
    let control = args.control.clone().unwrap_or_else(|| PathBuf::from(format!("/run/restartd/{name}.sock")));
    let listener = fdpass::listen(&control).with_context(|| format!("control socket {}", control.display()))?;
    let poll = Poll::new()?;
    poll.registry().register(&mut SourceFd(&listener.as_raw_fd()), LISTENER, Interest::READABLE)?;
    let policy = Policy {
        window: Duration::from_secs_f64(args.fault_window),
        backoff_base: Duration::from_millis(args.backoff_base_ms),
        backoff_max: Duration::from_millis(args.backoff_max_ms),
        max_retries: args.max_retries,
    };
    let mut d = Daemon {
        name,
        control: control.clone(),
        policy,
        quiesce: Duration::from_millis(args.quiesce_ms),
        poll,
        roles: BTreeMap::new(),
        conns: BTreeMap::new(),
        next_conn: 0,
        listener,
    };
    let reg = Registration { path, argv: args.command[1..].to_vec(), env: vec![], child_id: 0 };
    d.roles.insert(0, new_role(reg));
    d.spawn(0)?;
    info!("restartd {} control {}", d.name, control.display());
    let mut events = Events::with_capacity(256);
    let code = loop {
        let timeout = d.next_deadline().map(|t| t.saturating_duration_since(Instant::now()));
        if let Err(e) = d.poll.poll(&mut events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
        // Children first: a dead generation's queued messages are drained in
        // on_child before anything else touches its role.
        for t in tokens.iter().filter(|t| (ROLE_BASE..CONN_BASE).contains(&t.0)) {
            if let Err(e) = d.on_child((t.0 - ROLE_BASE) as u32) {
                error!("{e:#}");
            }
        }
        for t in tokens {
            match t.0 {
                0 => d.on_accept(),
                x if x >= CONN_BASE => {
                    d.on_conn(x);
                }
                _ => {}
            }
        }
        d.on_timer();
        if let Some(code) = d.done() {
            break code;
        }
    };
    let _ = std::fs::remove_file(&control);
    info!("restartd exiting with status {code}");
    std::process::exit(code);
}
