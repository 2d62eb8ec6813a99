//! The binding cache: the CM's soft state, as a sans-IO state machine.
//!
//! Every request ([`Cache::plan`]) and every change of health ([`Cache::plan_state`]) updates
//! the cache at once and returns the switch operations that make the switches agree with it —
//! none when the request restates what the cache already holds (so only real changes reach a
//! switch). [`Cache::reconcile`] compares one switch's List with the cache and returns the
//! corrections (the periodic sync). No clock, no I/O: time is passed in.
//!
//! Each entry remembers what the CM last told the switches ([`Pushed`]), so the operations are
//! the difference between that and what the entry's state wants:
//!
//! | state | wanted on the switch |
//! |---|---|
//! | Active | bound and active with the entry's parameters |
//! | Draining, Testing, Disabled | not active (draining, or gone) |
//! | Failed | gone (ForceRemove) under [`FailPolicy::Force`], draining under [`FailPolicy::Drain`] |
//!
//! A Draining entry leaves the cache once a sync finds the switch no longer lists it (its last
//! flow ended). Failed, Testing and Disabled entries stay until removed, so a recovery
//! ([`Cache::plan_state`] to Active) puts them back.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use acm::{
    AcmError, BindingCounters, BindingInfo, BindingKey, BindingParams, BindingState, DropFraction, Primitive,
    ServiceKey,
};

use super::CmError;

/// What the switches were last told about a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Pushed {
    /// Bound and active with these parameters.
    Active(BindingParams),
    /// Removed gracefully (may still be listed while its flows finish).
    Draining,
    /// Not on the switch.
    Absent,
}

/// What a failed binding becomes on the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailPolicy {
    /// ForceRemove: flows to a dead server are reset at once, so clients retry elsewhere.
    #[default]
    Force,
    /// Remove: flows drain (for servers that may still answer).
    Drain,
}

/// Cache behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    /// State of a binding created by Add: Active (pushed at once) or Testing (pushed when the
    /// health checker calls `set_state(Active)`).
    pub add_state: BindingState,
    /// What Failed means on the switch.
    pub fail: FailPolicy,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy { add_state: BindingState::Active, fail: FailPolicy::Force }
    }
}

/// One cached binding.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Weight and source NAT.
    pub params: BindingParams,
    /// Its state in the cache.
    pub state: BindingState,
    /// What the switches were last told.
    pub pushed: Pushed,
    /// Counters from the last sync.
    pub counters: BindingCounters,
}

/// How to take a change back when every switch refused it.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// Nothing changed.
    None,
    /// Restore this binding's previous entry (`None`: it did not exist).
    Binding(BindingKey, Option<Entry>),
    /// Restore this service's previous drop fraction.
    Drop(ServiceKey, Option<DropFraction>),
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The cache changed.
    pub changed: bool,
    /// Switch operations, in order.
    pub ops: Vec<Primitive>,
    /// How to take it back.
    pub undo: Undo,
}

impl Plan {
    fn unchanged() -> Plan {
        Plan { changed: false, ops: Vec::new(), undo: Undo::None }
    }
}

/// The binding cache.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    bindings: BTreeMap<BindingKey, Entry>,
    drops: BTreeMap<ServiceKey, DropFraction>,
    classes: HashMap<Ipv4Addr, String>,
    policy: CachePolicy,
    generation: u64,
}

fn wanted(state: BindingState, params: BindingParams, fail: FailPolicy) -> Pushed {
    match state {
        BindingState::Active => Pushed::Active(params),
        BindingState::Failed if fail == FailPolicy::Force => Pushed::Absent,
        _ => Pushed::Draining,
    }
}

/// Operations that move a binding from `from` to `to` on a switch.
fn transition(key: BindingKey, from: Pushed, to: Pushed) -> (Option<Primitive>, Pushed) {
    match (from, to) {
        (a, b) if a == b => (None, a),
        (_, Pushed::Active(params)) => (Some(Primitive::Add { key, params }), to),
        (Pushed::Active(_), Pushed::Draining) => (Some(Primitive::Remove { key }), Pushed::Draining),
        (Pushed::Absent, Pushed::Draining) => (None, Pushed::Absent),
        (_, Pushed::Absent) => (Some(Primitive::ForceRemove { key }), Pushed::Absent),
        (from, _) => (None, from),
    }
}

impl Cache {
    /// An empty cache.
    pub fn new(policy: CachePolicy) -> Cache {
        Cache { policy, ..Cache::default() }
    }

    /// Partitions: VIP → priority class. A real server may serve VIPs of one class only.
    pub fn set_classes(&mut self, classes: HashMap<Ipv4Addr, String>) {
        self.classes = classes;
    }

    /// Bumped on every change (for CM heartbeats and tests).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// One entry.
    pub fn get(&self, key: &BindingKey) -> Option<&Entry> {
        self.bindings.get(key)
    }

    /// The drop fraction of a service (0 when never set).
    pub fn drop_fraction(&self, s: &ServiceKey) -> DropFraction {
        self.drops.get(s).copied().unwrap_or_default()
    }

    /// The cache as List rows.
    pub fn list(&self) -> Vec<BindingInfo> {
        self.bindings
            .iter()
            .map(|(k, e)| BindingInfo { key: *k, params: e.params, state: e.state, counters: e.counters })
            .collect()
    }

    /// Number of cached bindings.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    fn class_of(&self, vip: Ipv4Addr) -> Option<&String> {
        self.classes.get(&vip)
    }

    fn check_partition(&self, key: &BindingKey) -> Result<(), CmError> {
        if self.classes.is_empty() {
            return Ok(());
        }
        let mine = self.class_of(key.service.vip);
        for other in self.bindings.keys() {
            if other.real.rip != key.real.rip || other.service.vip == key.service.vip {
                continue;
            }
            let theirs = self.class_of(other.service.vip);
            if theirs != mine {
                return Err(CmError::Partition {
                    real: key.real.rip,
                    vip: key.service.vip,
                    class: mine.cloned().unwrap_or_else(|| "(none)".into()),
                    other_vip: other.service.vip,
                    other_class: theirs.cloned().unwrap_or_else(|| "(none)".into()),
                });
            }
        }
        Ok(())
    }

    /// Applies a request to the cache and returns the switch operations it needs.
    /// List changes nothing (answer it with [`Cache::list`]).
    pub fn plan(&mut self, p: &Primitive) -> Result<Plan, CmError> {
        let plan = match *p {
            Primitive::Add { key, params } => self.plan_add(key, params)?,
            Primitive::Remove { key } => self.plan_remove(key, false)?,
            Primitive::ForceRemove { key } => self.plan_remove(key, true)?,
            Primitive::Drop { service, fraction } => self.plan_drop(service, fraction)?,
            Primitive::List => Plan::unchanged(),
        };
        if plan.changed {
            self.generation += 1;
        }
        Ok(plan)
    }

    fn plan_add(&mut self, key: BindingKey, params: BindingParams) -> Result<Plan, CmError> {
        params.validate()?;
        let prev = self.bindings.get(&key).cloned();
        if prev.is_none() {
            self.check_partition(&key)?;
        }
        let fail = self.policy.fail;
        let add_state = self.policy.add_state;
        let e = self.bindings.entry(key).or_insert(Entry {
            params,
            state: add_state,
            pushed: Pushed::Absent,
            counters: BindingCounters::default(),
        });
        let changed = match (&prev, e.state) {
            (None, _) => true,
            (Some(_), BindingState::Active) if e.params == params => false,
            (Some(_), BindingState::Active) => {
                e.params = params;
                true
            }
            (Some(_), BindingState::Draining) => {
                e.params = params;
                e.state = BindingState::Active;
                true
            }
            // Failed, Testing, Disabled: health (or the admin) decides when it is active again.
            (Some(old), _) => {
                e.params = params;
                old.params != params
            }
        };
        if !changed {
            return Ok(Plan::unchanged());
        }
        let (op, pushed) = transition(key, e.pushed, wanted(e.state, e.params, fail));
        e.pushed = pushed;
        Ok(Plan { changed, ops: op.into_iter().collect(), undo: Undo::Binding(key, prev) })
    }

    fn plan_remove(&mut self, key: BindingKey, force: bool) -> Result<Plan, CmError> {
        let Some(prev) = self.bindings.get(&key).cloned() else {
            return Err(if self.bindings.keys().any(|k| k.service == key.service) {
                AcmError::UnknownBinding(key).into()
            } else {
                AcmError::UnknownService(key.service).into()
            });
        };
        let undo = Undo::Binding(key, Some(prev.clone()));
        if force {
            self.bindings.remove(&key);
            let (op, _) = transition(key, prev.pushed, Pushed::Absent);
            return Ok(Plan { changed: true, ops: op.into_iter().collect(), undo });
        }
        match prev.state {
            BindingState::Draining => Ok(Plan::unchanged()),
            BindingState::Active => {
                let e = self.bindings.get_mut(&key).expect("present");
                e.state = BindingState::Draining;
                let (op, pushed) = transition(key, e.pushed, Pushed::Draining);
                e.pushed = pushed;
                Ok(Plan { changed: true, ops: op.into_iter().collect(), undo })
            }
            // Not forwarding anyway: forget it; whatever the switch still drains finishes.
            _ => {
                self.bindings.remove(&key);
                let (op, _) = transition(key, prev.pushed, Pushed::Draining);
                Ok(Plan { changed: true, ops: op.into_iter().collect(), undo })
            }
        }
    }

    fn plan_drop(&mut self, service: ServiceKey, fraction: DropFraction) -> Result<Plan, CmError> {
        if !self.bindings.keys().any(|k| k.service == service) {
            return Err(AcmError::UnknownService(service).into());
        }
        let prev = self.drops.get(&service).copied();
        if prev.unwrap_or_default() == fraction {
            return Ok(Plan::unchanged());
        }
        self.drops.insert(service, fraction);
        // A switch knows the service only while some binding of it is pushed.
        let on_switch = self.bindings.iter().any(|(k, e)| k.service == service && e.pushed != Pushed::Absent);
        let ops = if on_switch { vec![Primitive::Drop { service, fraction }] } else { Vec::new() };
        Ok(Plan { changed: true, ops, undo: Undo::Drop(service, prev) })
    }

    /// A change of health or administrative state (from health checks, beacons, the admin).
    pub fn plan_state(&mut self, key: BindingKey, state: BindingState) -> Result<Plan, CmError> {
        let fail = self.policy.fail;
        let Some(e) = self.bindings.get_mut(&key) else {
            return Err(AcmError::UnknownBinding(key).into());
        };
        if e.state == state {
            return Ok(Plan::unchanged());
        }
        let undo = Undo::Binding(key, Some(e.clone()));
        e.state = state;
        let (op, pushed) = transition(key, e.pushed, wanted(state, e.params, fail));
        e.pushed = pushed;
        self.generation += 1;
        Ok(Plan { changed: true, ops: op.into_iter().collect(), undo })
    }

    /// Takes back a plan every switch refused.
    pub fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::None => {}
            Undo::Binding(k, Some(e)) => {
                self.bindings.insert(k, e);
            }
            Undo::Binding(k, None) => {
                self.bindings.remove(&k);
            }
            Undo::Drop(s, Some(f)) => {
                self.drops.insert(s, f);
            }
            Undo::Drop(s, None) => {
                self.drops.remove(&s);
            }
        }
        self.generation += 1;
    }

    /// The periodic sync with one switch: `listed` is its List (restricted to the services
    /// `covers` accepts), `drops` its drop fractions when it can report them. Returns the
    /// corrections, in order: re-adds of bindings it lost, removals of what the cache does not
    /// know (only when `remove_unknown`: after a CM restart the grace period lets beacons
    /// re-announce servers first), then drop fractions. Drains that finished leave the cache.
    pub fn reconcile(
        &mut self,
        listed: &[BindingInfo],
        drops: Option<&HashMap<ServiceKey, DropFraction>>,
        covers: &dyn Fn(&ServiceKey) -> bool,
        remove_unknown: bool,
    ) -> Vec<Primitive> {
        let on_switch: HashMap<BindingKey, &BindingInfo> = listed.iter().map(|b| (b.key, b)).collect();
        let mut ops = Vec::new();
        let mut readded: Vec<ServiceKey> = Vec::new();
        let mut finished = Vec::new();
        let fail = self.policy.fail;
        for (key, e) in self.bindings.iter_mut().filter(|(k, _)| covers(&k.service)) {
            let sw = on_switch.get(key);
            if let Some(b) = sw {
                e.counters = b.counters;
            }
            match wanted(e.state, e.params, fail) {
                Pushed::Active(params) => {
                    let ok = sw.is_some_and(|b| b.state == BindingState::Active && b.params == params);
                    if !ok {
                        ops.push(Primitive::Add { key: *key, params });
                        if sw.is_none() {
                            readded.push(key.service);
                        }
                    }
                    e.pushed = Pushed::Active(params);
                }
                Pushed::Draining => match sw.map(|b| b.state) {
                    None => {
                        if e.state == BindingState::Draining {
                            finished.push(*key);
                        }
                        e.pushed = Pushed::Absent;
                    }
                    Some(BindingState::Active) => {
                        ops.push(Primitive::Remove { key: *key });
                        e.pushed = Pushed::Draining;
                    }
                    Some(_) => e.pushed = Pushed::Draining,
                },
                Pushed::Absent => {
                    if sw.is_some() {
                        ops.push(Primitive::ForceRemove { key: *key });
                    }
                    e.pushed = Pushed::Absent;
                }
            }
        }
        for k in finished {
            self.bindings.remove(&k);
            self.generation += 1;
        }
        if remove_unknown {
            for b in listed {
                if covers(&b.key.service) && b.state == BindingState::Active && !self.bindings.contains_key(&b.key) {
                    ops.push(Primitive::Remove { key: b.key });
                }
            }
        }
        for (service, fraction) in &self.drops {
            if !covers(service) || !self.bindings.keys().any(|k| k.service == *service) {
                continue;
            }
            let stale = match drops {
                Some(d) => d.get(service).copied().unwrap_or_default() != *fraction,
                None => readded.contains(service) && fraction.get() > 0.0,
            };
            if stale {
                ops.push(Primitive::Drop { service: *service, fraction: *fraction });
            }
        }
        ops
    }
}

/// The cache's contents as plain data (bindings, drop fractions, generation), for the state
/// region that carries it across a control plane restart ([`crate::zlr`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CacheImage {
    /// Every binding with its entry.
    pub bindings: Vec<(BindingKey, Entry)>,
    /// Drop fractions set.
    pub drops: Vec<(ServiceKey, DropFraction)>,
    /// The generation counter.
    pub generation: u64,
}

impl Cache {
    /// The contents as plain data.
    pub fn image(&self) -> CacheImage {
        CacheImage {
            bindings: self.bindings.iter().map(|(k, e)| (*k, e.clone())).collect(),
            drops: self.drops.iter().map(|(s, f)| (*s, *f)).collect(),
            generation: self.generation,
        }
    }

    /// Every binding with its entry, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&BindingKey, &Entry)> {
        self.bindings.iter()
    }

    /// Every drop fraction set.
    pub fn drop_entries(&self) -> impl Iterator<Item = (&ServiceKey, &DropFraction)> {
        self.drops.iter()
    }

    /// Replaces the contents with an image (policy and classes stay this process's).
    pub fn restore(&mut self, img: CacheImage) {
        self.bindings = img.bindings.into_iter().collect();
        self.drops = img.drops.into_iter().collect();
        self.generation = img.generation;
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
