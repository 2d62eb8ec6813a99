//! Switches: the driver trait, and the thread that owns each driver.
//!
//! Every switch the CM manages is a [`SwitchDriver`] (the local dataplane through its switch
//! API, a ServerIron-CLI device over telnet, or a fake in tests) owned by one OS thread that
//! works through a FIFO queue of jobs. The core's jobs ([`super::core::SwitchJob`]) are answered
//! through a callback into the CM's edge ([`ReplyFn`]). The CM enqueues a switch's operations in cache order,
//! so each switch sees them in the order the cache decided them; a slow or dead switch delays
//! only its own queue.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acm::{AcmError, BindingInfo, DropFraction, Primitive, ServiceKey};
use tokio::sync::oneshot;

use super::core::{JobId, JobKind, SwitchReply};

/// Why a switch did not do what it was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriverError {
    /// The switch understood and refused (the request is wrong for it).
    #[error(transparent)]
    Refused(#[from] AcmError),
    /// The switch could not be reached, timed out or answered nonsense. The cache keeps the
    /// change; the next sync pushes it.
    #[error("{0}")]
    Unavailable(String),
}

/// A switch's acknowledgement of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriverAck {
    /// False when the switch already was in the asked state.
    pub changed: bool,
    /// The switch's own receipt-to-ack time, when it reports one (the dataplane does).
    pub switch_ns: Option<u64>,
}

/// What a switch holds, from List.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwitchView {
    /// Its bindings (Active and Draining).
    pub bindings: Vec<BindingInfo>,
    /// Its drop fractions, when it can report them.
    pub drops: Option<HashMap<ServiceKey, DropFraction>>,
}

/// A switch the CM drives. Calls block; each driver lives on its own thread.
pub trait SwitchDriver: Send + 'static {
    /// Carries out Add, Remove, ForceRemove or Drop and returns once the switch acknowledged.
    fn apply(&mut self, op: &Primitive) -> Result<DriverAck, DriverError>;
    /// Every binding the switch holds.
    fn list(&mut self) -> Result<SwitchView, DriverError>;
    /// Global traffic counters, when the switch has them (`show server traffic`).
    fn traffic(&mut self) -> Option<cli::TrafficCounters> {
        None
    }
    /// Up to `limit` live flows, when the switch can list them (`show server sessions`);
    /// `Ok(None)` when it cannot.
    fn sessions(&mut self, _limit: u32) -> Result<Option<cli::SessionTable>, DriverError> {
        Ok(None)
    }
    /// One line describing the driver (for `show version` and logs).
    fn describe(&self) -> String;
}

/// Which VIPs a switch serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VipFilter {
    /// Every VIP.
    #[default]
    All,
    /// Only these.
    Only(Vec<Ipv4Addr>),
}

impl VipFilter {
    /// Does the switch serve this service?
    pub fn covers(&self, s: &ServiceKey) -> bool {
        match self {
            VipFilter::All => true,
            VipFilter::Only(v) => v.contains(&s.vip),
        }
    }
}

/// Called by a switch's thread with its answer to a core job and the time it arrived.
pub type ReplyFn = Arc<dyn Fn(JobId, SwitchReply, Instant) + Send + Sync>;

pub(crate) enum Job {
    /// A job of the core ([`super::core::CmCore::poll_switch_job`]), answered through the
    /// [`ReplyFn`].
    Core(JobId, JobKind),
    Traffic {
        reply: oneshot::Sender<Option<cli::TrafficCounters>>,
    },
    Sessions {
        limit: u32,
        reply: oneshot::Sender<Result<Option<cli::SessionTable>, DriverError>>,
    },
}

/// Health of a switch as the CM saw it last.
#[derive(Debug, Default)]
pub struct SwitchHealth {
    /// The last call succeeded (or was refused: the switch answered).
    pub up: AtomicBool,
    /// Calls that found it unavailable.
    pub failures: AtomicU64,
    /// Operations acknowledged.
    pub acks: AtomicU64,
}

/// The CM's handle on one switch: its name, its VIPs and its job queue.
pub struct SwitchHandle {
    /// Profile name.
    pub name: String,
    /// The VIPs it serves.
    pub vips: VipFilter,
    /// What the driver says it is.
    pub description: String,
    /// Health.
    pub health: Arc<SwitchHealth>,
    pub(crate) tx: mpsc::Sender<Job>,
}

impl SwitchHandle {
    /// Starts the switch's thread.
    pub fn spawn(name: &str, vips: VipFilter, mut driver: Box<dyn SwitchDriver>, on_reply: ReplyFn) -> SwitchHandle {
        let (tx, rx) = mpsc::channel::<Job>();
        let health = Arc::new(SwitchHealth::default());
        let description = driver.describe();
        let h = health.clone();
        let thread_name = format!("switch-{name}");
        let log_name = name.to_string();
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Core(id, JobKind::Apply(op)) => {
                            let result = driver.apply(&op);
                            let acked_at = Instant::now();
                            note(&h, &log_name, &result);
                            on_reply(id, SwitchReply::Applied(result), acked_at);
                        }
                        Job::Core(id, JobKind::List) => {
                            let r = driver.list();
                            let at = Instant::now();
                            note(&h, &log_name, &r);
                            on_reply(id, SwitchReply::Listed(r), at);
                        }
                        Job::Traffic { reply } => {
                            let _ = reply.send(driver.traffic());
                        }
                        Job::Sessions { limit, reply } => {
                            let _ = reply.send(driver.sessions(limit));
                        }
                    }
                }
            })
            .expect("spawn switch thread");
        SwitchHandle { name: name.to_string(), vips, description, health, tx }
    }

    pub(crate) fn send(&self, job: Job) -> bool {
        self.tx.send(job).is_ok()
    }
}

fn note<T>(h: &SwitchHealth, name: &str, r: &Result<T, DriverError>) {
    match r {
        Err(DriverError::Unavailable(why)) => {
            h.failures.fetch_add(1, Ordering::Relaxed);
            if h.up.swap(false, Ordering::Relaxed) {
                tracing::warn!(switch = name, "switch unavailable: {why}");
            }
        }
        _ => {
            h.acks.fetch_add(1, Ordering::Relaxed);
            if !h.up.swap(true, Ordering::Relaxed) {
                tracing::info!(switch = name, "switch answers");
            }
        }
    }
}

/// How long the CM waits for a switch before calling it unavailable.
pub const SWITCH_TIMEOUT: Duration = Duration::from_secs(5);
