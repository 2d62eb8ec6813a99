//! The Connection Manager core: one code path for every ACM primitive.
//!
//! Requests arrive from three doors — beacons of the CM client module on the servers, the
//! telnet CLI, and the local API used by `acmctl` — plus the health checker and the periodic
//! sync. All of them call [`Cm::primitive`] (or [`Cm::primitive_blocking`] from a thread that
//! may block), so they are filtered, ordered, pushed and measured alike:
//!
//! 1. the binding cache ([`cache::Cache`], sans-IO) takes the request at once and decides the
//!    switch operations — none for a request that restates the cache (filtered);
//! 2. each operation is queued, in cache order, to every switch whose profile serves the VIP
//!    (one thread per switch, [`switch::SwitchHandle`]);
//! 3. the time from receipt to each switch's acknowledgement goes into the latency histograms
//!    ([`crate::latency`]), per primitive and per switch.
//!
//! A switch that refuses a request (every switch asked, with an ACM error) takes the change back
//! out of the cache and the caller gets the error. A switch that does not answer does not lose
//! the change: the cache keeps it and the next sync pushes it ([`Outcome::unavailable`] names
//! such switches).
//!
//! # For the beacon / health / election code (the contract)
//!
//! * [`Cm`] is a cheap `Clone` handle; keep one per task.
//! * `cm.primitive(Origin::Beacon { server }, Primitive::Add { .. }).await` — what a beacon asks.
//!   Repeating an Add of an active binding is free (filtered, nothing reaches a switch).
//! * `cm.list()` — the cache, with states Testing / Active / Draining / Failed / Disabled.
//! * `cm.set_state(key, BindingState::Failed).await` — a health check or beacon timeout says the
//!   server is down: the binding leaves the switch (ForceRemove, or Remove under
//!   [`cache::FailPolicy::Drain`]) and stays in the cache as Failed; an Add does not revive it.
//!   `set_state(key, BindingState::Active)` on recovery puts it back on the switch. With
//!   [`cache::CachePolicy::add_state`] = Testing, new bindings wait for that call.
//! * `cm.set_active(false)` — this CM is a standby (lost the election): the cache keeps taking
//!   requests, nothing is pushed to switches and no sync runs. `set_active(true)` (won) runs a
//!   sync at once, so the switches get the cache. [`Cm::is_active`], and [`Cm::generation`]
//!   (bumped on every cache change) for heartbeats.

pub mod cache;
pub mod fake;
pub mod switch;
pub mod sync;
pub mod time;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use acm::{AcmError, BindingInfo, BindingKey, BindingState, Primitive, ServiceKey};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};

use crate::latency::{LatencyBook, LatencyReport, CACHE};
use cache::{Cache, CachePolicy, Plan, Undo};
use switch::{DriverAck, DriverError, Job, Reply, SwitchDriver, SwitchHandle, VipFilter};

/// Where a request came from (for logs and counters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum Origin {
    /// A beacon of the CM client module on a server.
    Beacon {
        /// The server that sent it.
        server: IpAddr,
    },
    /// A telnet CLI session (or `acmctl cli`).
    Cli {
        /// Session number.
        session: u64,
    },
    /// The local API (`acmctl`, tests).
    Api,
    /// The health checker.
    Health,
    /// The periodic sync.
    Sync,
    /// The startup-config replay.
    Startup,
}

/// Why the CM refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum CmError {
    /// The request is invalid (unknown binding or VIP, bad weight or fraction), or every
    /// switch refused it.
    #[error(transparent)]
    Acm(#[from] AcmError),
    /// The real server already serves a VIP of another priority class (partitions).
    #[error("real server {real} serves {other_vip} (class {other_class}); VIP {vip} is class {class}: partitions keep classes on disjoint servers")]
    Partition {
        /// The real server.
        real: Ipv4Addr,
        /// The VIP asked for.
        vip: Ipv4Addr,
        /// Its class.
        class: String,
        /// A VIP the server already serves.
        other_vip: Ipv4Addr,
        /// That VIP's class.
        other_class: String,
    },
    /// No switch profile serves this VIP.
    #[error("no switch profile serves VIP {0}")]
    NoSwitch(Ipv4Addr),
    /// The CM is shutting down.
    #[error("connection manager is shutting down")]
    ShuttingDown,
}

/// One switch's part in a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchOutcome {
    /// Switch profile name.
    pub switch: String,
    /// The operation sent.
    pub op: String,
    /// Acknowledged (`changed` false: the switch already was in that state).
    pub acked: bool,
    /// The switch changed something.
    pub changed: bool,
    /// Receipt by the CM to this switch's acknowledgement, microseconds.
    pub latency_us: f64,
    /// The switch's own receipt-to-ack, microseconds, when it reports it.
    pub switch_us: Option<f64>,
    /// Why not acknowledged.
    pub error: Option<String>,
    /// The switch did not answer (the change waits in the cache for the next sync).
    pub unavailable: bool,
}

/// What a request did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The cache changed (false: the request was redundant and filtered).
    pub changed: bool,
    /// Receipt to the last acknowledgement (or to the cache's answer), microseconds.
    pub latency_us: f64,
    /// Per switch.
    pub switches: Vec<SwitchOutcome>,
    /// This CM is a standby: nothing was pushed.
    pub standby: bool,
    /// For List: the cache.
    pub bindings: Vec<BindingInfo>,
}

impl Outcome {
    /// Switches that did not answer.
    pub fn unavailable(&self) -> Vec<&str> {
        self.switches.iter().filter(|s| s.unavailable).map(|s| s.switch.as_str()).collect()
    }
}

/// How the CM behaves.
#[derive(Debug, Clone)]
pub struct CmOptions {
    /// Cache policy (state of new bindings, meaning of Failed).
    pub policy: CachePolicy,
    /// Partitions: VIP → priority class.
    pub classes: HashMap<Ipv4Addr, String>,
    /// Time between syncs.
    pub sync_interval: Duration,
    /// After start, syncs re-add but do not remove unknown bindings for this long (beacons
    /// re-announce servers after a CM restart).
    pub sync_grace: Duration,
}

impl Default for CmOptions {
    fn default() -> Self {
        CmOptions {
            policy: CachePolicy::default(),
            classes: HashMap::new(),
            sync_interval: Duration::from_secs(2),
            sync_grace: Duration::from_secs(5),
        }
    }
}

/// Counters of the CM.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
pub struct CmCounters {
    /// Requests taken (every door).
    pub requests: u64,
    /// Requests the cache filtered as redundant.
    pub filtered: u64,
    /// Requests refused.
    pub refused: u64,
    /// Operations a switch did not answer.
    pub unavailable: u64,
    /// Sync rounds.
    pub syncs: u64,
    /// Corrections syncs sent.
    pub sync_corrections: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    filtered: AtomicU64,
    refused: AtomicU64,
    unavailable: AtomicU64,
    syncs: AtomicU64,
    sync_corrections: AtomicU64,
}

struct Inner {
    cache: Mutex<Cache>,
    switches: Vec<SwitchHandle>,
    latency: LatencyBook,
    active: AtomicBool,
    counters: Counters,
    started: Instant,
    options: CmOptions,
    sync_now: Notify,
    /// Sync rounds skipped in a row because the cache moved while a List was on its way.
    sync_skips: AtomicU64,
    /// Called with the cache after every change, under its lock ([`Cm::on_change`]).
    on_change: std::sync::OnceLock<CacheHook>,
}

/// What [`Cm::on_change`] installs.
pub type CacheHook = Box<dyn Fn(&Cache) + Send + Sync>;

/// The locked cache; when it is released after a change, the [`Cm::on_change`] hook sees it.
struct CacheGuard<'a> {
    guard: MutexGuard<'a, Cache>,
    generation: u64,
    hook: Option<&'a (dyn Fn(&Cache) + Send + Sync)>,
}

impl std::ops::Deref for CacheGuard<'_> {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        &self.guard
    }
}

impl std::ops::DerefMut for CacheGuard<'_> {
    fn deref_mut(&mut self) -> &mut Cache {
        &mut self.guard
    }
}

impl Drop for CacheGuard<'_> {
    fn drop(&mut self) {
        if let Some(hook) = self.hook {
            if self.guard.generation() != self.generation {
                hook(&self.guard);
            }
        }
    }
}

/// The Connection Manager. Clone freely: clones share one cache.
#[derive(Clone)]
pub struct Cm {
    inner: Arc<Inner>,
}

/// A request whose operations are queued to switches.
struct Pending {
    name: &'static str,
    received: Instant,
    changed: bool,
    undo: Undo,
    waits: Vec<(String, String, oneshot::Receiver<Reply>)>,
}

/// A switch to manage: profile name, VIPs, driver.
pub struct SwitchSpec {
    /// Profile name.
    pub name: String,
    /// VIPs it serves.
    pub vips: VipFilter,
    /// The driver.
    pub driver: Box<dyn SwitchDriver>,
}

impl Cm {
    /// A CM managing these switches; active from the start.
    pub fn new(options: CmOptions, switches: Vec<SwitchSpec>) -> Cm {
        let mut cache = Cache::new(options.policy.clone());
        cache.set_classes(options.classes.clone());
        let switches = switches.into_iter().map(|s| SwitchHandle::spawn(&s.name, s.vips, s.driver)).collect();
        Cm {
            inner: Arc::new(Inner {
                cache: Mutex::new(cache),
                switches,
                latency: LatencyBook::default(),
                active: AtomicBool::new(true),
                counters: Counters::default(),
                started: Instant::now(),
                options,
                sync_now: Notify::new(),
                sync_skips: AtomicU64::new(0),
                on_change: std::sync::OnceLock::new(),
            }),
        }
    }

    fn cache(&self) -> CacheGuard<'_> {
        let guard = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        let generation = guard.generation();
        CacheGuard { guard, generation, hook: self.inner.on_change.get().map(|b| &**b) }
    }

    /// Calls `hook` with the cache after every change (under the cache's lock, so the calls see
    /// the changes in order). Set once; the control plane keeps the cache in its state region
    /// with it ([`crate::zlr`]).
    pub fn on_change(&self, hook: CacheHook) {
        if self.inner.on_change.set(hook).is_err() {
            tracing::warn!("cache change hook set twice; keeping the first");
        }
    }

    /// Calls the [`Cm::on_change`] hook with the cache as it is now.
    pub fn touch_cache(&self) {
        let c = self.cache();
        if let Some(hook) = c.hook {
            hook(&c.guard);
        }
    }

    /// The cache's contents as plain data.
    pub fn cache_image(&self) -> cache::CacheImage {
        self.cache().image()
    }

    /// Replaces the cache's contents (a restarted control plane taking over its predecessor's
    /// cache: nothing to relearn).
    pub fn restore_cache(&self, img: cache::CacheImage) {
        self.cache().restore(img);
    }

    /// Runs one primitive: cache, switches, measurement. The one code path of every door.
    pub async fn primitive(&self, origin: Origin, p: Primitive) -> Result<Outcome, CmError> {
        let received = Instant::now();
        match self.begin(&origin, received, |c| plan_primitive(c, &p))? {
            Ok(pending) => self.wait_async(&origin, pending).await,
            Err(done) => Ok(done),
        }
    }

    /// [`Cm::primitive`] for a thread that may block (never call it on an async task).
    pub fn primitive_blocking(&self, origin: Origin, p: Primitive) -> Result<Outcome, CmError> {
        let received = Instant::now();
        match self.begin(&origin, received, |c| plan_primitive(c, &p))? {
            Ok(pending) => self.wait_blocking(&origin, pending),
            Err(done) => Ok(done),
        }
    }

    /// A change of health or administrative state; see the module docs.
    pub async fn set_state(&self, key: BindingKey, state: BindingState) -> Result<Outcome, CmError> {
        let received = Instant::now();
        let origin = Origin::Health;
        match self.begin(&origin, received, |c| Ok((c.plan_state(key, state)?, Vec::new(), "set-state")))? {
            Ok(pending) => self.wait_async(&origin, pending).await,
            Err(done) => Ok(done),
        }
    }

    /// [`Cm::set_state`] for a thread that may block.
    pub fn set_state_blocking(&self, key: BindingKey, state: BindingState) -> Result<Outcome, CmError> {
        let received = Instant::now();
        let origin = Origin::Health;
        match self.begin(&origin, received, |c| Ok((c.plan_state(key, state)?, Vec::new(), "set-state")))? {
            Ok(pending) => self.wait_blocking(&origin, pending),
            Err(done) => Ok(done),
        }
    }

    async fn wait_async(&self, origin: &Origin, p: Pending) -> Result<Outcome, CmError> {
        let mut replies = Vec::with_capacity(p.waits.len());
        for (sw, op, rx) in p.waits {
            replies.push((sw, op, rx.await.ok()));
        }
        self.finish(origin, p.name, p.received, p.changed, p.undo, replies)
    }

    fn wait_blocking(&self, origin: &Origin, p: Pending) -> Result<Outcome, CmError> {
        let replies = p.waits.into_iter().map(|(sw, op, rx)| (sw, op, rx.blocking_recv().ok())).collect();
        self.finish(origin, p.name, p.received, p.changed, p.undo, replies)
    }

    /// Takes a request into the cache and queues its operations. `Ok(Err(outcome))` when it is
    /// answered without a switch.
    fn begin(
        &self,
        origin: &Origin,
        received: Instant,
        plan: impl FnOnce(&mut Cache) -> Result<(Plan, Vec<BindingInfo>, &'static str), CmError>,
    ) -> Result<Result<Pending, Outcome>, CmError> {
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut cache = self.cache();
        let (plan, bindings, name) = plan(&mut cache).inspect_err(|e| {
            self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::info!(?origin, "refused: {e}");
        })?;
        if let Some(Primitive::Add { key, .. }) = plan.ops.first() {
            if !self.inner.switches.iter().any(|s| s.vips.covers(&key.service)) {
                cache.undo(plan.undo);
                self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
                return Err(CmError::NoSwitch(key.service.vip));
            }
        }
        let active = self.is_active();
        if plan.ops.is_empty() || !active {
            drop(cache);
            if !plan.changed {
                self.inner.counters.filtered.fetch_add(1, Ordering::Relaxed);
            }
            let latency = received.elapsed();
            self.inner.latency.record(name, CACHE, latency);
            return Ok(Err(Outcome {
                changed: plan.changed,
                latency_us: latency.as_secs_f64() * 1e6,
                switches: Vec::new(),
                standby: !active,
                bindings,
            }));
        }
        let waits = self.enqueue(&plan.ops, None);
        // Queued while the cache is locked: every switch sees operations in cache order.
        drop(cache);
        Ok(Ok(Pending { name, received, changed: plan.changed, undo: plan.undo, waits }))
    }

    /// Queues operations to every switch serving their VIP (or to `only`).
    fn enqueue(&self, ops: &[Primitive], only: Option<usize>) -> Vec<(String, String, oneshot::Receiver<Reply>)> {
        let mut waits = Vec::new();
        for op in ops {
            let service = op_service(op);
            for (i, sw) in self.inner.switches.iter().enumerate() {
                if only.is_some_and(|o| o != i) || !service.is_none_or(|svc| sw.vips.covers(&svc)) {
                    continue;
                }
                let (tx, rx) = oneshot::channel();
                if sw.send(Job::Apply { op: op.clone(), reply: tx }) {
                    waits.push((sw.name.clone(), op.name().to_string(), rx));
                }
            }
        }
        waits
    }

    fn finish(
        &self,
        origin: &Origin,
        name: &'static str,
        received: Instant,
        changed: bool,
        undo: Undo,
        replies: Vec<(String, String, Option<Reply>)>,
    ) -> Result<Outcome, CmError> {
        let mut out = Outcome { changed, ..Outcome::default() };
        let mut refusal: Option<AcmError> = None;
        for (switch, op, reply) in replies {
            let mut so = SwitchOutcome { switch: switch.clone(), op: op.clone(), ..SwitchOutcome::default() };
            match reply {
                Some(Reply { result, acked_at }) => {
                    let lat = acked_at.saturating_duration_since(received);
                    so.latency_us = lat.as_secs_f64() * 1e6;
                    out.latency_us = out.latency_us.max(so.latency_us);
                    match result {
                        Ok(DriverAck { changed, switch_ns }) => {
                            self.inner.latency.record(name, &switch, lat);
                            so.acked = true;
                            so.changed = changed;
                            so.switch_us = switch_ns.map(|n| n as f64 / 1e3);
                        }
                        // The switch already lacks what we remove, or has what we add: as
                        // good as done (a sync and a request crossed).
                        Err(DriverError::Refused(AcmError::UnknownBinding(_)))
                            if op == "remove" || op == "force-remove" =>
                        {
                            self.inner.latency.record(name, &switch, lat);
                            so.acked = true;
                        }
                        Err(DriverError::Refused(AcmError::DuplicateBinding(_))) if op == "add" => {
                            self.inner.latency.record(name, &switch, lat);
                            so.acked = true;
                        }
                        Err(DriverError::Refused(e)) => {
                            tracing::warn!(?origin, switch, "switch refused {op}: {e}");
                            so.error = Some(e.to_string());
                            refusal.get_or_insert(e);
                        }
                        Err(DriverError::Unavailable(why)) => {
                            self.inner.counters.unavailable.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                ?origin,
                                switch,
                                "{op} not acknowledged: {why}; kept in the cache for the next sync"
                            );
                            so.error = Some(why);
                            so.unavailable = true;
                        }
                    }
                }
                None => {
                    self.inner.counters.unavailable.fetch_add(1, Ordering::Relaxed);
                    so.error = Some("switch thread gone".into());
                    so.unavailable = true;
                }
            }
            out.switches.push(so);
        }
        let all_refused = !out.switches.is_empty() && out.switches.iter().all(|s| !s.acked && !s.unavailable);
        if let (true, Some(e)) = (all_refused, refusal) {
            self.cache().undo(undo);
            self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(CmError::Acm(e));
        }
        Ok(out)
    }

    /// The cache: every binding the CM knows, with its state and the counters of the last sync.
    pub fn list(&self) -> Vec<BindingInfo> {
        self.cache().list()
    }

    /// One binding's cache entry state.
    pub fn state_of(&self, key: &BindingKey) -> Option<BindingState> {
        self.cache().get(key).map(|e| e.state)
    }

    /// Active (pushes to switches, syncs) or standby (keeps the cache only).
    pub fn set_active(&self, active: bool) {
        let was = self.inner.active.swap(active, Ordering::SeqCst);
        if active && !was {
            tracing::info!("connection manager active: syncing switches");
            self.inner.sync_now.notify_one();
        } else if !active && was {
            tracing::info!("connection manager standby: not pushing to switches");
        }
    }

    /// Is this CM active?
    pub fn is_active(&self) -> bool {
        self.inner.active.load(Ordering::SeqCst)
    }

    /// Bumped on every cache change.
    pub fn generation(&self) -> u64 {
        self.cache().generation()
    }

    /// The latency histograms.
    pub fn latency(&self) -> Vec<LatencyReport> {
        self.inner.latency.report()
    }

    /// Forgets the latency samples.
    pub fn reset_latency(&self) {
        self.inner.latency.reset()
    }

    /// The CM's counters.
    pub fn counters(&self) -> CmCounters {
        let c = &self.inner.counters;
        CmCounters {
            requests: c.requests.load(Ordering::Relaxed),
            filtered: c.filtered.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            unavailable: c.unavailable.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            sync_corrections: c.sync_corrections.load(Ordering::Relaxed),
        }
    }

    /// Global traffic counters summed over the switches that report them (blocking).
    pub fn traffic_blocking(&self) -> cli::TrafficCounters {
        let mut t = cli::TrafficCounters::default();
        for sw in &self.inner.switches {
            let (tx, rx) = oneshot::channel();
            if sw.send(Job::Traffic { reply: tx }) {
                if let Ok(Some(x)) = rx.blocking_recv() {
                    t.client_to_server += x.client_to_server;
                    t.server_to_client += x.server_to_client;
                    t.drops += x.drops;
                    t.exceed_drop += x.exceed_drop;
                }
            }
        }
        t
    }

    /// Up to `limit` live flows of every switch that can list them (blocking), for
    /// `show server sessions`. A switch that fails is named in the note.
    pub fn sessions_blocking(&self, limit: u32) -> cli::SessionTable {
        let mut t = cli::SessionTable::default();
        let mut notes = Vec::new();
        for sw in &self.inner.switches {
            let (tx, rx) = oneshot::channel();
            if !sw.send(Job::Sessions { limit, reply: tx }) {
                continue;
            }
            match rx.blocking_recv() {
                Ok(Ok(Some(x))) => {
                    t.rows.extend(x.rows);
                    t.total += x.total;
                    notes.extend(x.note.map(|n| format!("{}: {n}", sw.name)));
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => notes.push(format!("{}: {e}", sw.name)),
                Err(_) => notes.push(format!("{}: no answer", sw.name)),
            }
        }
        t.rows.truncate(limit as usize);
        t.note = (!notes.is_empty()).then(|| notes.join("; "));
        t
    }

    /// The switches: name, description, up.
    pub fn switches(&self) -> Vec<(String, String, bool)> {
        self.inner
            .switches
            .iter()
            .map(|s| (s.name.clone(), s.description.clone(), s.health.up.load(Ordering::Relaxed)))
            .collect()
    }
}

impl Default for SwitchOutcome {
    fn default() -> Self {
        SwitchOutcome {
            switch: String::new(),
            op: String::new(),
            acked: false,
            changed: false,
            latency_us: 0.0,
            switch_us: None,
            error: None,
            unavailable: false,
        }
    }
}

/// The service an operation concerns (None for List).
fn op_service(op: &Primitive) -> Option<ServiceKey> {
    match op {
        Primitive::Add { key, .. } | Primitive::Remove { key } | Primitive::ForceRemove { key } => Some(key.service),
        Primitive::Drop { service, .. } => Some(*service),
        Primitive::List => None,
    }
}

fn plan_primitive(c: &mut Cache, p: &Primitive) -> Result<(Plan, Vec<BindingInfo>, &'static str), CmError> {
    let plan = c.plan(p)?;
    let list = if matches!(p, Primitive::List) { c.list() } else { Vec::new() };
    Ok((plan, list, p.name()))
}

#[cfg(test)]
mod tests;
