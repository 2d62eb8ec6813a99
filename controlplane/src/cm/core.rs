//! The Connection Manager core, sans-IO: every event comes in with the time, everything to do
//! comes out of a `poll_*` call. No clock, no sockets, no threads, no channels — the way
//! quinn-proto's `Connection` is driven by its endpoint.
//!
//! # The contract
//!
//! Events in (each takes `now`, a [`Time`] from the caller's clock; the core never reads one):
//!
//! * [`CmCore::handle_primitive`] and [`CmCore::handle_set_state`] — a request from a door
//!   (beacon, CLI, API, health, startup). The cache takes it at once; the answer is either
//!   immediate ([`Submitted::Done`]: filtered, standby, List) or later, under the returned
//!   [`RequestId`], from [`CmCore::poll_completion`] once every switch answered. An immediate
//!   answer's latency is the edge's to measure ([`CmCore::record_cache_latency`]).
//! * [`CmCore::handle_switch_reply`] — a switch answered a [`SwitchJob`] (or never will:
//!   [`SwitchReply::Gone`]). `now` is the time of the acknowledgement; the latency histograms
//!   measure receipt to acknowledgement in the caller's time.
//! * [`CmCore::handle_beacon`], [`CmCore::handle_beacon_remove`], [`CmCore::handle_report`] —
//!   what the CM client modules on the servers say (authenticated and de-duplicated by the
//!   edge); [`CmCore::handle_heartbeat`] — another CM's heartbeat.
//! * [`CmCore::handle_tick`] — time passed. Call it at [`CmCore::poll_timeout`] (earlier or more
//!   often is harmless): it closes elections, sends heartbeats, expires silent beacon senders
//!   and starts the periodic sync.
//! * [`CmCore::set_active`], [`CmCore::enable_election`], [`CmCore::enable_periodic_sync`],
//!   [`CmCore::start_sync`] — the edge's own decisions.
//!
//! Effects out (call after every event until they return `None`):
//!
//! * [`CmCore::poll_switch_job`] — an operation (or a List, for the sync) for one switch. The
//!   jobs come out in cache order, so a FIFO per switch keeps every switch in cache order.
//! * [`CmCore::poll_completion`] — a request or a sync round finished.
//! * [`CmCore::poll_heartbeat`] — a heartbeat to send to the other CMs.
//! * [`CmCore::poll_timeout`] — when to call [`CmCore::handle_tick`] next.
//!
//! Health checks: [`CmCore::enable_health`], then [`CmCore::health_targets`] says what to
//! probe, [`CmCore::handle_probe_results`] and [`CmCore::handle_health_report`] take the verdicts
//! and reports (the probes are IO, at the edge).
//!
//! The core keeps the binding cache ([`super::cache`]), the latency histograms, the counters, the
//! election ([`crate::election`]), the beacon tracker ([`crate::beacon::tracker`]) and the health
//! state machines ([`crate::health::fsm`]); the periodic sync is in [`super::sync`], beacons and
//! heartbeats in `cm::peers`, health checks in `cm::health`.

use std::collections::{HashMap, VecDeque};

use acm::{AcmError, BindingInfo, BindingKey, BindingState, Primitive, ServiceKey};

use super::cache::{Cache, Plan, Undo};
use super::switch::{DriverAck, DriverError, SwitchView, VipFilter};
use super::sync::{SyncId, SyncState};
use super::{CmCounters, CmError, CmOptions, Origin, Outcome, SwitchOutcome};
use crate::beacon::tracker::{Tracker, TrackerConfig};
use crate::beacon::wire::Heartbeat;
use crate::election::Election;
use crate::latency::{LatencyBook, LatencyReport, CACHE};
use crate::time::Time;
use std::time::Duration;

/// A request whose answer comes from [`CmCore::poll_completion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// One job for one switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// What a switch must do.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    /// Carry out Add, Remove, ForceRemove or Drop.
    Apply(Primitive),
    /// List what it holds (for the sync).
    List,
}

/// A job for switch number `switch` (the order of the switches given to [`CmCore::new`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchJob {
    /// Answer with this id.
    pub id: JobId,
    /// Which switch.
    pub switch: usize,
    /// What to do.
    pub kind: JobKind,
}

/// A switch's answer to a job.
#[derive(Debug, Clone, PartialEq)]
pub enum SwitchReply {
    /// The answer to [`JobKind::Apply`].
    Applied(Result<DriverAck, DriverError>),
    /// The answer to [`JobKind::List`].
    Listed(Result<SwitchView, DriverError>),
    /// The switch will never answer (its thread is gone).
    Gone,
}

/// What [`CmCore::handle_primitive`] did with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// Answered at once, without a switch.
    Done(Outcome),
    /// Queued to switches; the answer comes from [`CmCore::poll_completion`].
    Pending(RequestId),
}

/// Something finished.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// A request every switch answered.
    Request(RequestId, Result<Outcome, CmError>),
    /// A sync round ([`CmCore::start_sync`]).
    Sync(SyncId, Vec<super::sync::SyncReport>),
}

/// Who waits for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiter {
    /// The caller of [`CmCore::handle_primitive`]: a [`Completion::Request`].
    Caller(RequestId),
    /// A sync round's correction.
    Sync,
    /// Nobody (beacon actions, health): the result is logged.
    Nobody,
}

/// A switch as the core sees it.
#[derive(Debug, Clone)]
pub(super) struct Switch {
    pub(super) name: String,
    pub(super) vips: VipFilter,
}

/// A request in flight.
#[derive(Debug)]
pub(super) struct Request {
    origin: Origin,
    name: &'static str,
    received: Time,
    changed: bool,
    undo: Undo,
    waiter: Waiter,
    /// Per job, in queue order.
    slots: Vec<Slot>,
    left: usize,
}

/// One switch's part in a request.
#[derive(Debug)]
struct Slot {
    switch: usize,
    op: &'static str,
    answer: Option<Result<DriverAck, DriverError>>,
    /// When the answer came.
    at: Time,
}

/// What a job belongs to.
#[derive(Debug, Clone, Copy)]
pub(super) enum JobOwner {
    Request(u64, usize),
    List { switch: usize, generation: u64 },
}

/// The Connection Manager's state machines, sans-IO. See the module docs for the contract.
#[derive(Debug)]
pub struct CmCore {
    pub(super) cache: Cache,
    pub(super) switches: Vec<Switch>,
    latency: LatencyBook,
    pub(super) active: bool,
    pub(super) counters: CmCounters,
    pub(super) started: Time,
    pub(super) options: CmOptions,
    next_id: u64,
    requests: HashMap<u64, Request>,
    pub(super) jobs: HashMap<u64, JobOwner>,
    outbox: VecDeque<SwitchJob>,
    pub(super) completions: VecDeque<Completion>,
    pub(super) sync: SyncState,
    pub(super) election: Option<Election>,
    pub(super) heartbeats: VecDeque<Heartbeat>,
    pub(super) tracker: Tracker,
    pub(super) beacons_lost: u64,
    pub(super) health: Option<super::health::HealthState>,
}

impl CmCore {
    /// A core managing these switches (name, VIPs), started at `now`; active, with the periodic
    /// sync off until [`CmCore::enable_periodic_sync`].
    pub fn new(options: CmOptions, switches: Vec<(String, VipFilter)>, now: Time) -> CmCore {
        let mut cache = Cache::new(options.policy.clone());
        cache.set_classes(options.classes.clone());
        CmCore {
            cache,
            switches: switches.into_iter().map(|(name, vips)| Switch { name, vips }).collect(),
            latency: LatencyBook::default(),
            active: true,
            counters: CmCounters::default(),
            started: now,
            options,
            next_id: 0,
            requests: HashMap::new(),
            jobs: HashMap::new(),
            outbox: VecDeque::new(),
            completions: VecDeque::new(),
            sync: SyncState::new(now),
            election: None,
            heartbeats: VecDeque::new(),
            tracker: Tracker::new(TrackerConfig::default()),
            beacons_lost: 0,
            health: None,
        }
    }

    pub(super) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Runs one primitive: the cache decides, the switches are told. The one code path of
    /// every door.
    pub fn handle_primitive(&mut self, origin: Origin, p: &Primitive, now: Time) -> Result<Submitted, CmError> {
        let list = matches!(p, Primitive::List);
        let id = self.id();
        self.request(origin, p.name(), now, Waiter::Caller(RequestId(id)), |c| {
            let plan = c.plan(p)?;
            Ok((plan, if list { c.list() } else { Vec::new() }))
        })
    }

    /// A change of health or administrative state (see [`super::Cm::set_state`]).
    pub fn handle_set_state(&mut self, key: BindingKey, state: BindingState, now: Time) -> Result<Submitted, CmError> {
        let id = self.id();
        self.request(Origin::Health, "set-state", now, Waiter::Caller(RequestId(id)), |c| {
            Ok((c.plan_state(key, state)?, Vec::new()))
        })
    }

    /// A request nobody waits for (beacon actions, failure reports): refusals are logged.
    pub(super) fn request_unattended(&mut self, origin: Origin, p: &Primitive, now: Time) {
        let r = self.request(origin.clone(), p.name(), now, Waiter::Nobody, |c| Ok((c.plan(p)?, Vec::new())));
        if let Err(e) = r {
            tracing::warn!(?origin, "{} refused: {e}", p.name());
        }
    }

    /// A state change nobody waits for.
    pub(super) fn set_state_unattended(&mut self, key: BindingKey, state: BindingState, now: Time) {
        let r =
            self.request(Origin::Health, "set-state", now, Waiter::Nobody, |c| Ok((c.plan_state(key, state)?, vec![])));
        if let Err(e) = r {
            tracing::warn!(binding = %key, "cannot set {state}: {e}");
        }
    }

    fn request(
        &mut self,
        origin: Origin,
        name: &'static str,
        now: Time,
        waiter: Waiter,
        plan: impl FnOnce(&mut Cache) -> Result<(Plan, Vec<BindingInfo>), CmError>,
    ) -> Result<Submitted, CmError> {
        self.counters.requests += 1;
        let (plan, bindings) = plan(&mut self.cache).inspect_err(|e| {
            self.counters.refused += 1;
            tracing::info!(?origin, "refused: {e}");
        })?;
        if let Some(Primitive::Add { key, .. }) = plan.ops.first() {
            if !self.switches.iter().any(|s| s.vips.covers(&key.service)) {
                self.cache.undo(plan.undo);
                self.counters.refused += 1;
                return Err(CmError::NoSwitch(key.service.vip));
            }
        }
        if plan.ops.is_empty() || !self.active {
            if !plan.changed {
                self.counters.filtered += 1;
            }
            return Ok(Submitted::Done(Outcome {
                changed: plan.changed,
                latency_us: 0.0,
                switches: Vec::new(),
                standby: !self.active,
                bindings,
            }));
        }
        let id = match waiter {
            Waiter::Caller(RequestId(id)) => id,
            _ => self.id(),
        };
        let req = Request {
            origin,
            name,
            received: now,
            changed: plan.changed,
            undo: plan.undo,
            waiter,
            slots: Vec::new(),
            left: 0,
        };
        self.requests.insert(id, req);
        self.enqueue(id, &plan.ops, None, now);
        Ok(Submitted::Pending(RequestId(id)))
    }

    /// Queues operations of request `id` to every switch serving their VIP (or to `only`).
    pub(super) fn enqueue(&mut self, id: u64, ops: &[Primitive], only: Option<usize>, now: Time) {
        for op in ops {
            let service = op_service(op);
            for i in 0..self.switches.len() {
                let sw = &self.switches[i];
                if only.is_some_and(|o| o != i) || !service.is_none_or(|svc| sw.vips.covers(&svc)) {
                    continue;
                }
                let job = self.id();
                let Some(req) = self.requests.get_mut(&id) else { return };
                req.slots.push(Slot { switch: i, op: op.name(), answer: None, at: now });
                req.left += 1;
                self.jobs.insert(job, JobOwner::Request(id, req.slots.len() - 1));
                self.outbox.push_back(SwitchJob { id: JobId(job), switch: i, kind: JobKind::Apply(op.clone()) });
            }
        }
        if self.requests.get(&id).is_some_and(|r| r.left == 0) {
            self.finish(id);
        }
    }

    /// Queues a List to switch `i` for the sync.
    pub(super) fn enqueue_list(&mut self, i: usize) {
        let job = self.id();
        self.jobs.insert(job, JobOwner::List { switch: i, generation: self.cache.generation() });
        self.outbox.push_back(SwitchJob { id: JobId(job), switch: i, kind: JobKind::List });
    }

    /// A switch answered job `job` at `now`.
    pub fn handle_switch_reply(&mut self, job: JobId, reply: SwitchReply, now: Time) {
        let Some(owner) = self.jobs.remove(&job.0) else {
            tracing::debug!(?job, "reply to an unknown job");
            return;
        };
        match owner {
            JobOwner::Request(id, slot) => {
                let result = match reply {
                    SwitchReply::Applied(r) => r,
                    SwitchReply::Listed(_) => Err(DriverError::Unavailable("answered List to an operation".into())),
                    SwitchReply::Gone => Err(DriverError::Unavailable("switch thread gone".into())),
                };
                let Some(req) = self.requests.get_mut(&id) else { return };
                req.slots[slot].answer = Some(result);
                req.slots[slot].at = now;
                req.left -= 1;
                if req.left == 0 {
                    self.finish(id);
                }
            }
            JobOwner::List { switch, generation } => {
                let view = match reply {
                    SwitchReply::Listed(r) => r.ok(),
                    _ => None,
                };
                self.on_list(switch, generation, view, now);
            }
        }
        self.maybe_end_round(now);
    }

    fn finish(&mut self, id: u64) {
        let Some(req) = self.requests.remove(&id) else { return };
        let result = self.outcome(&req);
        match req.waiter {
            Waiter::Caller(rid) => self.completions.push_back(Completion::Request(rid, result)),
            Waiter::Sync => self.sync_correction_done(),
            Waiter::Nobody => {
                if let Err(e) = result {
                    tracing::warn!(origin = ?req.origin, "{} refused: {e}", req.name);
                }
            }
        }
    }

    fn outcome(&mut self, req: &Request) -> Result<Outcome, CmError> {
        let mut out = Outcome { changed: req.changed, ..Outcome::default() };
        let mut refusal: Option<AcmError> = None;
        let origin = &req.origin;
        for Slot { switch: i, op, answer, at } in &req.slots {
            let switch = self.switches[*i].name.clone();
            let mut so = SwitchOutcome { switch: switch.clone(), op: op.to_string(), ..SwitchOutcome::default() };
            let lat = at.saturating_duration_since(req.received);
            so.latency_us = lat.as_secs_f64() * 1e6;
            out.latency_us = out.latency_us.max(so.latency_us);
            match answer.clone().unwrap_or_else(|| Err(DriverError::Unavailable("no answer".into()))) {
                Ok(DriverAck { changed, switch_ns }) => {
                    self.latency.record(req.name, &switch, lat);
                    so.acked = true;
                    so.changed = changed;
                    so.switch_us = switch_ns.map(|n| n as f64 / 1e3);
                }
                // The switch already lacks what we remove, or has what we add: as good as done
                // (a sync and a request crossed).
                Err(DriverError::Refused(AcmError::UnknownBinding(_))) if *op == "remove" || *op == "force-remove" => {
                    self.latency.record(req.name, &switch, lat);
                    so.acked = true;
                }
                Err(DriverError::Refused(AcmError::DuplicateBinding(_))) if *op == "add" => {
                    self.latency.record(req.name, &switch, lat);
                    so.acked = true;
                }
                Err(DriverError::Refused(e)) => {
                    tracing::warn!(?origin, switch, "switch refused {op}: {e}");
                    so.error = Some(e.to_string());
                    refusal.get_or_insert(e);
                }
                Err(DriverError::Unavailable(why)) => {
                    self.counters.unavailable += 1;
                    tracing::warn!(
                        ?origin,
                        switch,
                        "{op} not acknowledged: {why}; kept in the cache for the next sync"
                    );
                    so.error = Some(why);
                    so.unavailable = true;
                }
            }
            out.switches.push(so);
        }
        let all_refused = !out.switches.is_empty() && out.switches.iter().all(|s| !s.acked && !s.unavailable);
        if let (true, Some(e)) = (all_refused, refusal) {
            self.cache.undo(req.undo.clone());
            self.counters.refused += 1;
            return Err(CmError::Acm(e));
        }
        Ok(out)
    }

    /// The next job for a switch.
    pub fn poll_switch_job(&mut self) -> Option<SwitchJob> {
        self.outbox.pop_front()
    }

    /// The next finished request or sync round.
    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.completions.pop_front()
    }

    /// The next heartbeat to send.
    pub fn poll_heartbeat(&mut self) -> Option<Heartbeat> {
        self.heartbeats.pop_front()
    }

    /// Heartbeats wait to be polled.
    pub fn has_heartbeats(&self) -> bool {
        !self.heartbeats.is_empty()
    }

    /// When [`CmCore::handle_tick`] has something to do next (None: nothing until an event).
    pub fn poll_timeout(&self) -> Option<Time> {
        let election = self.election.as_ref().map(Election::next_wakeup);
        [election, self.tracker.next_deadline(), self.next_sync()].into_iter().flatten().min()
    }

    /// Time passed: elections, heartbeats, silent beacon senders, the periodic sync.
    pub fn handle_tick(&mut self, now: Time) {
        self.tick_peers(now);
        self.tick_sync(now);
    }

    /// Active (pushes to switches, syncs) or standby (keeps the cache only). Becoming active
    /// starts a sync round at once, so the switches get the cache.
    pub fn set_active(&mut self, active: bool, now: Time) {
        let was = std::mem::replace(&mut self.active, active);
        if active && !was {
            tracing::info!("connection manager active: syncing switches");
            self.start_sync(now);
        } else if !active && was {
            tracing::info!("connection manager standby: not pushing to switches");
        }
    }

    /// Is this CM active?
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The cache, to restore or inspect it (changes bypass the switches: for restarts only).
    pub fn cache_mut(&mut self) -> &mut Cache {
        &mut self.cache
    }

    /// One binding's cache entry state.
    pub fn state_of(&self, key: &BindingKey) -> Option<BindingState> {
        self.cache.get(key).map(|e| e.state)
    }

    /// The latency histograms.
    pub fn latency(&self) -> Vec<LatencyReport> {
        self.latency.report()
    }

    /// Records how long the cache took to answer a request alone ([`Submitted::Done`]), under
    /// the switch name [`CACHE`]. The core cannot know (it reads no clock): the edge measures it.
    pub fn record_cache_latency(&mut self, primitive: &'static str, d: Duration) {
        self.latency.record(primitive, CACHE, d);
    }

    /// Forgets the latency samples.
    pub fn reset_latency(&mut self) {
        self.latency.reset()
    }

    /// The counters.
    pub fn counters(&self) -> CmCounters {
        self.counters.clone()
    }

    /// The switches' names, in job order.
    pub fn switch_names(&self) -> impl Iterator<Item = &str> {
        self.switches.iter().map(|s| s.name.as_str())
    }

    /// Does any switch serve this service?
    pub fn covers(&self, s: &ServiceKey) -> bool {
        self.switches.iter().any(|sw| sw.vips.covers(s))
    }

    /// Requests and jobs in flight (for tests: a quiet core has none).
    pub fn in_flight(&self) -> (usize, usize) {
        (self.requests.len(), self.jobs.len())
    }
}

/// The service an operation concerns (None for List).
pub(super) fn op_service(op: &Primitive) -> Option<ServiceKey> {
    match op {
        Primitive::Add { key, .. } | Primitive::Remove { key } | Primitive::ForceRemove { key } => Some(key.service),
        Primitive::Drop { service, .. } => Some(*service),
        Primitive::List => None,
    }
}

impl CmCore {
    /// Queues a sync round's corrections to switch `i` as one request (no caller waits; the
    /// round ends when it is answered).
    pub(super) fn correct(&mut self, i: usize, ops: &[Primitive], now: Time) {
        let id = self.id();
        let req = Request {
            origin: Origin::Sync,
            name: "sync",
            received: now,
            changed: true,
            undo: Undo::None,
            waiter: Waiter::Sync,
            slots: Vec::new(),
            left: 0,
        };
        self.requests.insert(id, req);
        self.sync.corrections_left += 1;
        self.enqueue(id, ops, Some(i), now);
    }
}
