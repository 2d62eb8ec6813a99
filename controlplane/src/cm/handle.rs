//! The run-time edge of the Connection Manager: [`Cm`], a cheap `Clone` handle that drives the
//! sans-IO core ([`super::core::CmCore`]) with the real clock, one OS thread per switch, tokio
//! channels for the callers that wait, and a timer task.
//!
//! Every call locks the core, hands it the event with [`Clock::now`], and on unlock pumps what
//! the core wants done: switch jobs go to their switch's queue (still under the lock, so each
//! switch gets them in cache order), finished requests and sync rounds go to their waiters, the
//! cache hook ([`Cm::on_change`]) sees a changed cache, the timer task learns that the next
//! timeout may have moved, and the beacon service that heartbeats are ready.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use acm::{BindingInfo, BindingKey, BindingState, Primitive};
use tokio::sync::{oneshot, Notify};

use super::cache::{self, Cache};
use super::core::{CmCore, Completion, RequestId, Submitted, SwitchReply};
use super::switch::{Job, ReplyFn, SwitchHandle};
use super::sync::{SyncId, SyncReport};
use super::{CmCounters, CmError, CmOptions, Origin, Outcome, SwitchSpec};
use crate::beacon::wire::Heartbeat;
use crate::latency::LatencyReport;
use crate::time::{Clock, Time};

/// What [`Cm::on_change`] installs.
pub type CacheHook = Box<dyn Fn(&Cache) + Send + Sync>;

type Answer = oneshot::Sender<Result<Outcome, CmError>>;

struct Shared {
    core: CmCore,
    waiters: HashMap<RequestId, Answer>,
    syncs: HashMap<SyncId, Vec<oneshot::Sender<Vec<SyncReport>>>>,
}

struct Inner {
    shared: Mutex<Shared>,
    clock: Clock,
    switches: Vec<SwitchHandle>,
    /// The next timeout may have moved.
    timer: Arc<Notify>,
    timer_running: AtomicBool,
    /// Heartbeats wait in the core.
    heartbeats: Notify,
    /// Called with the cache after every change, under the lock ([`Cm::on_change`]).
    on_change: OnceLock<CacheHook>,
}

/// The Connection Manager. Clone freely: clones share one core.
#[derive(Clone)]
pub struct Cm {
    inner: Arc<Inner>,
}

/// The locked core; on release it pumps the core's effects (see the module docs).
struct Locked<'a> {
    guard: MutexGuard<'a, Shared>,
    inner: &'a Inner,
    generation: u64,
    timeout: Option<Time>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.guard
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Shared {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let s = &mut *self.guard;
        while let Some(job) = s.core.poll_switch_job() {
            let sent = self.inner.switches.get(job.switch).is_some_and(|sw| sw.send(Job::Core(job.id, job.kind)));
            if !sent {
                s.core.handle_switch_reply(job.id, SwitchReply::Gone, self.inner.clock.now());
            }
        }
        while let Some(c) = s.core.poll_completion() {
            match c {
                Completion::Request(id, r) => {
                    if let Some(tx) = s.waiters.remove(&id) {
                        let _ = tx.send(r);
                    }
                }
                Completion::Sync(id, reports) => {
                    for tx in s.syncs.remove(&id).unwrap_or_default() {
                        let _ = tx.send(reports.clone());
                    }
                }
            }
        }
        if let Some(hook) = self.inner.on_change.get() {
            if s.core.cache().generation() != self.generation {
                hook(s.core.cache());
            }
        }
        if s.core.poll_timeout() != self.timeout {
            self.inner.timer.notify_one();
        }
        if s.core.has_heartbeats() {
            self.inner.heartbeats.notify_one();
        }
    }
}

impl Cm {
    /// A CM managing these switches; active from the start.
    pub fn new(options: CmOptions, switches: Vec<SwitchSpec>) -> Cm {
        let clock = Clock::new();
        let names = switches.iter().map(|s| (s.name.clone(), s.vips.clone())).collect();
        let core = CmCore::new(options, names, clock.now());
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let weak = weak.clone();
            let on_reply: ReplyFn = Arc::new(move |job, reply, at| {
                if let Some(inner) = weak.upgrade() {
                    let cm = Cm { inner };
                    let now = cm.inner.clock.at(at);
                    cm.lock().core.handle_switch_reply(job, reply, now);
                }
            });
            Inner {
                shared: Mutex::new(Shared { core, waiters: HashMap::new(), syncs: HashMap::new() }),
                clock,
                switches: switches
                    .into_iter()
                    .map(|s| SwitchHandle::spawn(&s.name, s.vips, s.driver, on_reply.clone()))
                    .collect(),
                timer: Arc::new(Notify::new()),
                timer_running: AtomicBool::new(false),
                heartbeats: Notify::new(),
                on_change: OnceLock::new(),
            }
        });
        Cm { inner }
    }

    fn lock(&self) -> Locked<'_> {
        let guard = self.inner.shared.lock().unwrap_or_else(|e| e.into_inner());
        let generation = guard.core.cache().generation();
        let timeout = guard.core.poll_timeout();
        Locked { guard, inner: &self.inner, generation, timeout }
    }

    /// The time now, on the clock the core runs on.
    pub fn now(&self) -> Time {
        self.inner.clock.now()
    }

    /// The clock the core runs on.
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// Runs `f` on the core with the time now; its effects are carried out when it returns.
    /// For the edge's own drivers (beacon socket, health prober).
    pub fn drive<R>(&self, f: impl FnOnce(&mut CmCore, Time) -> R) -> R {
        let now = self.now();
        f(&mut self.lock().core, now)
    }

    /// Calls `hook` with the cache after every change (under the core's lock, so the calls see
    /// the changes in order). Set once; the control plane keeps the cache in its state region
    /// with it ([`crate::zlr`]).
    pub fn on_change(&self, hook: CacheHook) {
        if self.inner.on_change.set(hook).is_err() {
            tracing::warn!("cache change hook set twice; keeping the first");
        }
    }

    /// Calls the [`Cm::on_change`] hook with the cache as it is now.
    pub fn touch_cache(&self) {
        let l = self.lock();
        if let Some(hook) = self.inner.on_change.get() {
            hook(l.core.cache());
        }
    }

    /// The cache's contents as plain data.
    pub fn cache_image(&self) -> cache::CacheImage {
        self.lock().core.cache().image()
    }

    /// Replaces the cache's contents (a restarted control plane taking over its predecessor's
    /// cache: nothing to relearn).
    pub fn restore_cache(&self, img: cache::CacheImage) {
        self.lock().core.cache_mut().restore(img);
    }

    fn submit(
        &self,
        name: &'static str,
        f: impl FnOnce(&mut CmCore, Time) -> Result<Submitted, CmError>,
    ) -> Result<Result<Outcome, oneshot::Receiver<Result<Outcome, CmError>>>, CmError> {
        let received = std::time::Instant::now();
        let now = self.inner.clock.at(received);
        let mut l = self.lock();
        match f(&mut l.core, now)? {
            Submitted::Done(mut o) => {
                let took = received.elapsed();
                l.core.record_cache_latency(name, took);
                o.latency_us = took.as_secs_f64() * 1e6;
                Ok(Ok(o))
            }
            Submitted::Pending(id) => {
                let (tx, rx) = oneshot::channel();
                l.waiters.insert(id, tx);
                Ok(Err(rx))
            }
        }
    }

    /// Runs one primitive: cache, switches, measurement. The one code path of every door.
    pub async fn primitive(&self, origin: Origin, p: Primitive) -> Result<Outcome, CmError> {
        match self.submit(p.name(), |c, now| c.handle_primitive(origin, &p, now))? {
            Ok(o) => Ok(o),
            Err(rx) => rx.await.unwrap_or(Err(CmError::ShuttingDown)),
        }
    }

    /// [`Cm::primitive`] for a thread that may block (never call it on an async task).
    pub fn primitive_blocking(&self, origin: Origin, p: Primitive) -> Result<Outcome, CmError> {
        match self.submit(p.name(), |c, now| c.handle_primitive(origin, &p, now))? {
            Ok(o) => Ok(o),
            Err(rx) => rx.blocking_recv().unwrap_or(Err(CmError::ShuttingDown)),
        }
    }

    /// A change of health or administrative state; see the module docs of [`crate::cm`].
    pub async fn set_state(&self, key: BindingKey, state: BindingState) -> Result<Outcome, CmError> {
        match self.submit("set-state", |c, now| c.handle_set_state(key, state, now))? {
            Ok(o) => Ok(o),
            Err(rx) => rx.await.unwrap_or(Err(CmError::ShuttingDown)),
        }
    }

    /// [`Cm::set_state`] for a thread that may block.
    pub fn set_state_blocking(&self, key: BindingKey, state: BindingState) -> Result<Outcome, CmError> {
        match self.submit("set-state", |c, now| c.handle_set_state(key, state, now))? {
            Ok(o) => Ok(o),
            Err(rx) => rx.blocking_recv().unwrap_or(Err(CmError::ShuttingDown)),
        }
    }

    /// One sync round with every switch (after the one running, if any); returns what it did.
    /// A standby does not sync (empty report).
    pub async fn sync_once(&self) -> Vec<SyncReport> {
        let rx = {
            let now = self.now();
            let mut l = self.lock();
            let id = l.core.start_sync(now);
            let (tx, rx) = oneshot::channel();
            l.syncs.entry(id).or_default().push(tx);
            rx
        };
        rx.await.unwrap_or_default()
    }

    /// Runs a sync round every `sync_interval` (and at once after [`Cm::set_active`]`(true)`)
    /// from now on, on the current tokio runtime.
    pub fn spawn_sync(&self) {
        self.drive(|c, now| c.enable_periodic_sync(now));
        self.spawn_timer();
    }

    /// Starts the task that calls [`CmCore::handle_tick`] at [`CmCore::poll_timeout`] (once per
    /// CM; on the current tokio runtime). It ends with the last handle.
    pub fn spawn_timer(&self) {
        if self.inner.timer_running.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let timer = self.inner.timer.clone();
        let clock = self.inner.clock;
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let wake = Cm { inner }.drive(|c, now| {
                    c.handle_tick(now);
                    c.poll_timeout()
                });
                // Without a timeout, look again now and then (and notice the CM is gone).
                let until = wake.unwrap_or_else(|| clock.now() + Duration::from_secs(1));
                tokio::select! {
                    _ = tokio::time::sleep_until(clock.instant(until).into()) => {}
                    _ = timer.notified() => {}
                }
            }
        });
    }

    /// Asks for a sync round now.
    pub fn request_sync(&self) {
        self.drive(|c, now| {
            c.start_sync(now);
        });
    }

    /// The heartbeats the core wants sent (the election's), oldest first.
    pub fn take_heartbeats(&self) -> Vec<Heartbeat> {
        let mut l = self.lock();
        std::iter::from_fn(|| l.core.poll_heartbeat()).collect()
    }

    /// Waits until heartbeats wait in the core ([`Cm::take_heartbeats`]).
    pub async fn heartbeats_ready(&self) {
        self.inner.heartbeats.notified().await
    }

    /// The cache: every binding the CM knows, with its state and the counters of the last sync.
    pub fn list(&self) -> Vec<BindingInfo> {
        self.lock().core.cache().list()
    }

    /// One binding's cache entry state.
    pub fn state_of(&self, key: &BindingKey) -> Option<BindingState> {
        self.lock().core.state_of(key)
    }

    /// Active (pushes to switches, syncs) or standby (keeps the cache only).
    pub fn set_active(&self, active: bool) {
        self.drive(|c, now| c.set_active(active, now));
    }

    /// Is this CM active?
    pub fn is_active(&self) -> bool {
        self.lock().core.is_active()
    }

    /// Bumped on every cache change.
    pub fn generation(&self) -> u64 {
        self.lock().core.cache().generation()
    }

    /// The latency histograms.
    pub fn latency(&self) -> Vec<LatencyReport> {
        self.lock().core.latency()
    }

    /// Forgets the latency samples.
    pub fn reset_latency(&self) {
        self.lock().core.reset_latency()
    }

    /// The CM's counters.
    pub fn counters(&self) -> CmCounters {
        self.lock().core.counters()
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
