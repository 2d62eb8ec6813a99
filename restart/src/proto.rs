//! The control protocol spoken over restartd's socket: by hosted services
//! (register, keep/release descriptors, reginfo) and by `restartctl`.

use serde::{Deserialize, Serialize};

/// Env var holding the control socket path.
pub const ENV_SOCK: &str = "RESTARTD_SOCK";
/// Env var holding the child id of the process restartd started.
pub const ENV_CHILD_ID: &str = "RESTARTD_CHILD_ID";
/// Env var holding the generation (also returned by reginfo).
pub const ENV_GENERATION: &str = "RESTARTD_GENERATION";
/// Env var holding the service name.
pub const ENV_SERVICE: &str = "RESTARTD_SERVICE";
/// When set to `layout`, a service prints its [`LayoutInfo`] as JSON on
/// stdout and exits 0 (restartd asks a new binary this before an upgrade).
pub const ENV_QUERY: &str = "RESTARTD_QUERY";

/// How a generation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitCause {
    /// Exited with a status code.
    Exited {
        /// Exit status.
        code: i32,
    },
    /// Killed by a signal.
    Signaled {
        /// Signal number.
        signal: i32,
        /// Signal name, e.g. `SIGSEGV`.
        name: String,
        /// Whether a core was dumped.
        core: bool,
    },
    /// Stopped by restartd for a planned restart or an upgrade.
    Planned {
        /// `restart` or `upgrade`.
        reason: String,
        /// Binary that was running.
        from: String,
    },
}

impl ExitCause {
    /// Abnormal ends are faults that trigger an automatic restart.
    pub fn is_fault(&self) -> bool {
        match self {
            ExitCause::Exited { code } => *code != 0,
            ExitCause::Signaled { .. } => true,
            ExitCause::Planned { .. } => false,
        }
    }
}

impl std::fmt::Display for ExitCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitCause::Exited { code } => write!(f, "exited with status {code}"),
            ExitCause::Signaled { name, core, .. } => {
                write!(f, "killed by {name}{}", if *core { " (core dumped)" } else { "" })
            }
            ExitCause::Planned { reason, from } => write!(f, "planned {reason} (was {from})"),
        }
    }
}

/// Name of a signal number.
pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGFPE => "SIGFPE".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGTRAP => "SIGTRAP".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        n => format!("signal {n}"),
    }
}

/// What restartd starts for one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Binary path.
    pub path: String,
    /// Arguments (without argv[0]).
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Role id (0 for the main process).
    pub child_id: u32,
}

/// A service's state layout, as it declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutInfo {
    /// Layout name.
    pub name: String,
    /// Layout version.
    pub version: u32,
}

/// Registration info returned at start (`getreginfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegInfo {
    /// Service name.
    pub service: String,
    /// Role id.
    pub child_id: u32,
    /// Generation number, 1 for a first start.
    pub generation: u64,
    /// How the previous generation ended (`None` on a first start).
    pub previous_exit: Option<ExitCause>,
    /// What restartd runs for this role.
    pub registration: Registration,
    /// Number of kept descriptors that follow.
    pub kept: usize,
}

impl RegInfo {
    /// First start or restart: choose the normal or the recovery path.
    pub fn is_restart(&self) -> bool {
        self.generation > 1
    }
}

/// Requests to restartd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A service process introduces itself; answered with [`Reply::RegInfo`]
    /// and [`Reply::Fds`] batches.
    Hello {
        /// Role id from `RESTARTD_CHILD_ID`.
        child_id: u32,
    },
    /// Keep the attached descriptor under `name` (replaces an older one).
    Keep {
        /// Channel name.
        name: String,
    },
    /// Stop keeping `name` (the service is closing it).
    Release {
        /// Channel name.
        name: String,
    },
    /// Register (or update) a role; restartd starts it if not running.
    Register(Registration),
    /// Declare the state layout this generation uses.
    Layout(LayoutInfo),
    /// The generation is serving (restart time is measured up to here).
    Ready,
    /// restartctl: status report.
    Status,
    /// restartctl: planned restart of a role with the same binary.
    Restart {
        /// Role id.
        child_id: u32,
    },
    /// restartctl: planned upgrade of a role to a new binary.
    Upgrade {
        /// Role id.
        child_id: u32,
        /// New binary.
        path: String,
    },
}

/// Replies and commands from restartd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to `Hello`.
    RegInfo(RegInfo),
    /// A batch of kept descriptors, in the order of `names`.
    Fds {
        /// Channel names.
        names: Vec<String>,
        /// Last batch.
        last: bool,
    },
    /// Stop at a safe point and exit 0 (planned restart or upgrade).
    Quiesce,
    /// Status report.
    Status(StatusReport),
    /// Request accepted.
    Ok {
        /// What happened.
        message: String,
    },
    /// Request refused.
    Error {
        /// Why.
        message: String,
    },
}

/// One role's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleStatus {
    /// Role id.
    pub child_id: u32,
    /// Current generation.
    pub generation: u64,
    /// Pid of the running generation.
    pub pid: Option<u32>,
    /// `running`, `backoff`, `exited`, `failed`.
    pub state: String,
    /// Binary.
    pub path: String,
    /// Descriptors kept.
    pub kept_fds: usize,
    /// Automatic restarts so far.
    pub restarts: u64,
    /// Faults in the current streak (within the window).
    pub fault_streak: u32,
    /// How the previous generation ended.
    pub last_exit: Option<ExitCause>,
    /// Last restart time, exit seen → new generation ready, in milliseconds.
    pub last_restart_ms: Option<f64>,
    /// Declared layout.
    pub layout: Option<LayoutInfo>,
    /// The current generation reported it is serving.
    pub ready: bool,
}

/// restartd status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Service name.
    pub service: String,
    /// Control socket.
    pub control: String,
    /// restartd's pid.
    pub restartd_pid: u32,
    /// Generation of role 0.
    pub generation: u64,
    /// Pid of role 0.
    pub pid: Option<u32>,
    /// All roles.
    pub roles: Vec<RoleStatus>,
}
