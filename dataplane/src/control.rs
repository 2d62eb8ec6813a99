//! The control side of the dataplane, sans-IO: applies ACM primitives to the binding and
//! service tables and builds the next [`Generation`]. No threads, no clock, no DPDK: the
//! binary's control thread calls it and publishes what it returns.
//!
//! # Two steps per change
//!
//! A change is published at once with the service's last Maglev table plus an [`Interim`]
//! correction (an `O(N)` diff): from that generation on, a drained server gets no new flow and
//! an added one gets its share. Building the exact table for the new backend set costs
//! `O(M log M)` (0.3–0.7 ms at M = 65537), so it is left off the change's path:
//! [`Control::build_jobs`] hands out what needs building, [`BuildJob::run`] builds it without
//! touching the tables (on another thread, no lock held), and [`Control::install`] takes the
//! result for the next publish. Several changes made meanwhile share one build.
//! [`Control::settle`] does all three in line, for tests and tools.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use acm::{AcmError, BindingInfo, BindingKey, BindingParams, BindingState, DropFraction, Primitive, ServiceKey};

use crate::generation::{
    BindingSlot, FastMap, Generation, PortView, ServiceEntry, ServiceLookup, ServiceTable, SlotState, SlotTable,
};
use crate::lb::maglev::{adaptive_size, Backend, Interim, Maglev};
use crate::wire::MacAddr;

/// Whether a primitive changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new generation must be published.
    Changed,
    /// The request restated the current state.
    Unchanged,
}

struct ServiceState {
    id: u32,
    drop: DropFraction,
    /// Binding slots of this service (active, draining or being reset).
    slots: BTreeSet<u32>,
    /// Cached entry; rebuilt when `dirty`.
    entry: Arc<ServiceEntry>,
    dirty: bool,
    /// The last table built, and the backends it was built for (in slot order).
    maglev: Maglev,
    built: Vec<Backend>,
    /// Maglev table size in use (see [`adaptive_size`]).
    table_size: usize,
}

/// A Maglev table to build for a service (see [`Control::build_jobs`]).
#[derive(Debug, Clone)]
pub struct BuildJob {
    service: ServiceKey,
    sid: u32,
    backends: Vec<Backend>,
    table_size: usize,
}

/// A built table, for [`Control::install`].
#[derive(Debug, Clone)]
pub struct Built {
    service: ServiceKey,
    sid: u32,
    backends: Vec<Backend>,
    maglev: Maglev,
}

impl BuildJob {
    /// Builds the table (pure: no access to the control tables).
    pub fn run(self) -> Built {
        let maglev =
            Maglev::build(&self.backends, self.table_size).expect("sizes are prime and above the backend count");
        Built { service: self.service, sid: self.sid, backends: self.backends, maglev }
    }

    /// Its table size.
    pub fn table_size(&self) -> usize {
        self.table_size
    }

    /// How many backends it places.
    pub fn backends(&self) -> usize {
        self.backends.len()
    }
}

/// The table size a build of `svc` for `backends` would use, when its published table is not
/// exact for them (other backends or weights, or another size due); `None` when it is.
fn build_due(svc: &ServiceState, backends: &[Backend], cap: usize) -> Option<usize> {
    let size = adaptive_size(backends.len(), svc.table_size, cap);
    (backends != svc.built.as_slice() || size != svc.table_size).then_some(size)
}

/// The active bindings among `ids`, as Maglev backends, in slot order.
fn live_backends(slots: &SlotTable, ids: &BTreeSet<u32>) -> Vec<Backend> {
    ids.iter()
        .map(|&id| (id, &slots[id as usize]))
        .filter(|(_, s)| s.state == SlotState::Active)
        .map(|(id, s)| Backend { id, key: backend_key(&s.key), weight: s.params.weight })
        .collect()
}

/// Binding and service tables, and the generation built from them.
pub struct Control {
    /// Largest Maglev table size (the configured one).
    maglev_size: usize,
    ports: Arc<[PortView]>,
    slots: SlotTable,
    free_slots: Vec<u32>,
    /// Live bindings (active or draining).
    by_key: HashMap<BindingKey, u32>,
    /// Slots draining or force-removed: waiting for their flows to end.
    dying: BTreeSet<u32>,
    services: BTreeMap<ServiceKey, ServiceState>,
    free_services: Vec<u32>,
    /// The services as published (shared with generations chunk by chunk).
    service_table: ServiceTable,
    service_index: Arc<FastMap<ServiceLookup, u32>>,
    vips: Arc<FastMap<u32, ()>>,
    /// The set of services changed since the last publish.
    index_dirty: bool,
    /// Services whose published table may not be exact for their backends.
    unbuilt: BTreeSet<ServiceKey>,
    neighbors: HashMap<u32, MacAddr>,
    neighbors_dirty: bool,
    neighbors_arc: Arc<hashbrown::HashMap<u32, MacAddr, ahash::RandomState>>,
    current: Arc<Generation>,
}

impl Control {
    /// Empty tables for these ports.
    pub fn new(ports: Vec<PortView>, max_bindings: usize, max_services: usize, maglev_size: usize) -> Control {
        let current = Arc::new(Generation::empty(ports.clone(), max_bindings, max_services));
        Control {
            maglev_size,
            ports: ports.into(),
            slots: current.bindings.clone(),
            free_slots: (0..max_bindings as u32).rev().collect(),
            by_key: HashMap::new(),
            dying: BTreeSet::new(),
            services: BTreeMap::new(),
            free_services: (0..max_services as u32).rev().collect(),
            service_table: current.services.clone(),
            service_index: current.service_index.clone(),
            vips: current.vips.clone(),
            index_dirty: false,
            unbuilt: BTreeSet::new(),
            neighbors: HashMap::new(),
            neighbors_dirty: false,
            neighbors_arc: current.neighbors.clone(),
            current,
        }
    }

    /// The generation in force.
    pub fn current(&self) -> &Arc<Generation> {
        &self.current
    }

    /// Applies a state-changing primitive. List is not one (see [`Control::list`]).
    pub fn apply(&mut self, p: &Primitive) -> Result<Outcome, AcmError> {
        match p {
            Primitive::Add { key, params } => self.add(*key, *params),
            Primitive::Remove { key } => self.remove(*key),
            Primitive::ForceRemove { key } => self.force_remove(*key),
            Primitive::Drop { service, fraction } => self.set_drop(*service, *fraction),
            Primitive::List => Ok(Outcome::Unchanged),
        }
    }

    fn route(&self, rip: Ipv4Addr) -> Option<(u16, Ipv4Addr)> {
        if let Some(i) = self.ports.iter().position(|p| p.addr.contains(rip)) {
            return Some((i as u16, rip));
        }
        let i = self.ports.iter().position(|p| p.gateway.is_some())?;
        Some((i as u16, self.ports[i].gateway?))
    }

    fn add(&mut self, key: BindingKey, params: BindingParams) -> Result<Outcome, AcmError> {
        params.validate()?;
        let (out_port, next_hop) = self.route(key.real.rip).ok_or(AcmError::Unreachable(key.real))?;
        if key.service.vip.is_unspecified() || key.service.vip.is_multicast() || key.service.vip.is_broadcast() {
            return Err(AcmError::Parse(format!("{} cannot be a VIP", key.service.vip)));
        }
        if self.ports.iter().any(|p| p.addr.ip == key.service.vip) {
            return Err(AcmError::Parse(format!("{} is a port address, not a VIP", key.service.vip)));
        }
        if let Some(&id) = self.by_key.get(&key) {
            let cur = self.slots[id as usize];
            match cur.state {
                SlotState::Active if cur.params == params => return Err(AcmError::DuplicateBinding(key)),
                SlotState::Active | SlotState::Draining => {
                    let slot = self.slots.get_mut(id as usize);
                    slot.params = params;
                    slot.state = SlotState::Active;
                    self.dying.remove(&id);
                    self.mark_dirty(&key.service);
                    return Ok(Outcome::Changed);
                }
                SlotState::Free | SlotState::ForceRemoved => unreachable!("by_key holds live slots only"),
            }
        }
        // Every binding of a service needs an entry of its Maglev table.
        if self.services.get(&key.service).is_some_and(|s| s.slots.len() + 1 >= self.maglev_size) {
            return Err(AcmError::Capacity(format!(
                "no room for binding {key}: virtual service {} has {} bindings, the Maglev table size is {}",
                key.service,
                self.services[&key.service].slots.len(),
                self.maglev_size
            )));
        }
        // A new service if needed.
        if !self.services.contains_key(&key.service) {
            let sid = self
                .free_services
                .pop()
                .ok_or_else(|| AcmError::Capacity(format!("no room for virtual service {}", key.service)))?;
            let table_size = adaptive_size(0, 0, self.maglev_size);
            let maglev = Maglev::build(&[], table_size).expect("validated table size");
            let entry = Arc::new(ServiceEntry {
                key: key.service,
                id: sid,
                maglev: maglev.clone(),
                interim: None,
                drop_threshold: 0,
                active: 0,
            });
            self.services.insert(
                key.service,
                ServiceState {
                    id: sid,
                    drop: DropFraction::NONE,
                    slots: BTreeSet::new(),
                    entry,
                    dirty: true,
                    maglev,
                    built: Vec::new(),
                    table_size,
                },
            );
            self.index_dirty = true;
        }
        let Some(id) = self.free_slots.pop() else {
            self.gc_service(key.service);
            return Err(AcmError::Capacity(format!("no room for binding {key}")));
        };
        let svc = self.services.get_mut(&key.service).expect("just ensured");
        let old = self.slots[id as usize];
        *self.slots.get_mut(id as usize) = BindingSlot {
            key,
            params,
            state: SlotState::Active,
            incarnation: old.incarnation.wrapping_add(1),
            service: svc.id,
            out_port,
            next_hop,
        };
        svc.slots.insert(id);
        svc.dirty = true;
        self.by_key.insert(key, id);
        Ok(Outcome::Changed)
    }

    fn remove(&mut self, key: BindingKey) -> Result<Outcome, AcmError> {
        let &id = self.by_key.get(&key).ok_or(AcmError::UnknownBinding(key))?;
        if self.slots[id as usize].state == SlotState::Draining {
            return Ok(Outcome::Unchanged);
        }
        self.slots.get_mut(id as usize).state = SlotState::Draining;
        self.dying.insert(id);
        self.mark_dirty(&key.service);
        Ok(Outcome::Changed)
    }

    fn force_remove(&mut self, key: BindingKey) -> Result<Outcome, AcmError> {
        let id = self.by_key.remove(&key).ok_or(AcmError::UnknownBinding(key))?;
        self.slots.get_mut(id as usize).state = SlotState::ForceRemoved;
        self.dying.insert(id);
        self.mark_dirty(&key.service);
        Ok(Outcome::Changed)
    }

    fn set_drop(&mut self, service: ServiceKey, fraction: DropFraction) -> Result<Outcome, AcmError> {
        let svc = self.services.get_mut(&service).ok_or(AcmError::UnknownService(service))?;
        if svc.drop == fraction {
            return Ok(Outcome::Unchanged);
        }
        svc.drop = fraction;
        svc.dirty = true;
        Ok(Outcome::Changed)
    }

    fn mark_dirty(&mut self, service: &ServiceKey) {
        if let Some(s) = self.services.get_mut(service) {
            s.dirty = true;
        }
    }

    /// Drops a service that has no slots left.
    fn gc_service(&mut self, key: ServiceKey) {
        if self.services.get(&key).is_some_and(|s| s.slots.is_empty()) {
            let s = self.services.remove(&key).expect("checked");
            self.unbuilt.remove(&key);
            self.free_services.push(s.id);
            *self.service_table.get_mut(s.id as usize) = None;
            self.index_dirty = true;
        }
    }

    /// Frees draining and force-removed slots that no flow references any more
    /// (`active_flows(slot)` sums the workers' gauges). Returns whether anything changed.
    ///
    /// Call it only with counts read after every worker acknowledged the current generation,
    /// so that no worker can still create a flow for a slot seen as empty.
    pub fn reap(&mut self, active_flows: impl Fn(u32) -> u64) -> Outcome {
        let mut changed = Outcome::Unchanged;
        let done: Vec<u32> = self.dying.iter().copied().filter(|&id| active_flows(id) == 0).collect();
        for id in done {
            let s = self.slots[id as usize];
            debug_assert!(matches!(s.state, SlotState::Draining | SlotState::ForceRemoved));
            self.dying.remove(&id);
            if s.state == SlotState::Draining {
                self.by_key.remove(&s.key);
            }
            self.slots.get_mut(id as usize).state = SlotState::Free;
            self.free_slots.push(id);
            if let Some(svc) = self.services.get_mut(&s.key.service) {
                svc.slots.remove(&id);
                svc.dirty = true;
            }
            self.gc_service(s.key.service);
            changed = Outcome::Changed;
        }
        changed
    }

    /// Records a neighbour learned by a worker. Returns whether it is new or changed.
    pub fn learn_neighbor(&mut self, ip: Ipv4Addr, mac: MacAddr) -> bool {
        let k = u32::from(ip);
        if self.neighbors.get(&k) == Some(&mac) {
            return false;
        }
        self.neighbors.insert(k, mac);
        self.neighbors_dirty = true;
        true
    }

    /// Next hops of live bindings whose MAC is unknown (to be resolved by ARP).
    pub fn unresolved_next_hops(&self) -> Vec<(u16, Ipv4Addr)> {
        let mut v: Vec<_> = self
            .by_key
            .values()
            .map(|&id| &self.slots[id as usize])
            .filter(|s| !self.neighbors.contains_key(&u32::from(s.next_hop)))
            .map(|s| (s.out_port, s.next_hop))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Tables to build: one per service whose published table is not exact for its current
    /// backends (or not of the size they call for). Empty when every table is exact.
    pub fn build_jobs(&mut self) -> Vec<BuildJob> {
        let mut jobs = Vec::new();
        let mut exact = Vec::new();
        for key in &self.unbuilt {
            let Some(svc) = self.services.get(key) else {
                exact.push(*key);
                continue;
            };
            let backends = live_backends(&self.slots, &svc.slots);
            match build_due(svc, &backends, self.maglev_size) {
                Some(table_size) => jobs.push(BuildJob { service: *key, sid: svc.id, backends, table_size }),
                None => exact.push(*key),
            }
        }
        for key in exact {
            self.unbuilt.remove(&key);
        }
        jobs
    }

    /// Takes a built table for the next publish. Returns `Unchanged` when its service is gone.
    /// A table built for backends that have changed since is still taken: it is closer than
    /// the one in use, and the next publish corrects it with an [`Interim`].
    pub fn install(&mut self, built: Built) -> Outcome {
        match self.services.get_mut(&built.service) {
            Some(svc) if svc.id == built.sid => {
                svc.table_size = built.maglev.table_size();
                svc.maglev = built.maglev;
                svc.built = built.backends;
                svc.dirty = true;
                Outcome::Changed
            }
            _ => Outcome::Unchanged,
        }
    }

    /// Whether some published table is not exact yet (a build is due).
    pub fn needs_build(&self) -> bool {
        !self.unbuilt.is_empty()
    }

    /// Publishes, builds every table that is due in line, and publishes the exact tables.
    /// For tests and tools; the dataplane builds on another thread.
    pub fn settle(&mut self) -> Arc<Generation> {
        let mut gen = self.publish();
        loop {
            let jobs = self.build_jobs();
            if jobs.is_empty() {
                return gen;
            }
            for j in jobs {
                self.install(j.run());
            }
            gen = self.publish();
        }
    }

    /// Builds and installs the next generation. A service whose backends changed gets its last
    /// table with an [`Interim`] correction; [`Control::build_jobs`] then lists it.
    pub fn publish(&mut self) -> Arc<Generation> {
        let cur = self.current.clone();
        for (key, svc) in self.services.iter_mut() {
            if !svc.dirty {
                continue;
            }
            let backends = live_backends(&self.slots, &svc.slots);
            let active = backends.iter().filter(|b| b.weight > 0).count() as u32;
            let interim = Interim::between(&svc.built, &backends).map(Box::new);
            if build_due(svc, &backends, self.maglev_size).is_some() {
                self.unbuilt.insert(*key);
            } else {
                self.unbuilt.remove(key);
            }
            svc.entry = Arc::new(ServiceEntry {
                key: svc.entry.key,
                id: svc.id,
                maglev: svc.maglev.clone(),
                interim,
                drop_threshold: svc.drop.threshold_u32(),
                active,
            });
            *self.service_table.get_mut(svc.id as usize) = Some(svc.entry.clone());
            svc.dirty = false;
        }
        if self.index_dirty {
            let mut index = FastMap::default();
            let mut vips = FastMap::default();
            for svc in self.services.values() {
                index.insert(svc.entry.key.into(), svc.id);
                vips.insert(u32::from(svc.entry.key.vip), ());
            }
            self.service_index = Arc::new(index);
            self.vips = Arc::new(vips);
            self.index_dirty = false;
        }
        if self.neighbors_dirty {
            self.neighbors_arc = Arc::new(self.neighbors.iter().map(|(k, v)| (*k, *v)).collect());
            self.neighbors_dirty = false;
        }
        let forced: Vec<(u32, u32)> = self
            .dying
            .iter()
            .map(|&id| (id, &self.slots[id as usize]))
            .filter(|(_, s)| s.state == SlotState::ForceRemoved)
            .map(|(id, s)| (id, s.incarnation))
            .collect();
        let gen = Arc::new(Generation {
            number: cur.number + 1,
            service_index: self.service_index.clone(),
            services: self.service_table.clone(),
            vips: self.vips.clone(),
            bindings: self.slots.clone(),
            neighbors: self.neighbors_arc.clone(),
            ports: self.ports.clone(),
            forced: forced.into(),
        });
        self.current = gen.clone();
        gen
    }

    /// Every live binding with its state; `counters(slot)` supplies summed counters.
    pub fn list(&self, counters: impl Fn(u32) -> acm::BindingCounters) -> Vec<BindingInfo> {
        let mut v: Vec<BindingInfo> = self
            .by_key
            .iter()
            .map(|(key, &id)| {
                let s = &self.slots[id as usize];
                BindingInfo {
                    key: *key,
                    params: s.params,
                    state: match s.state {
                        SlotState::Draining => BindingState::Draining,
                        _ => BindingState::Active,
                    },
                    counters: counters(id),
                }
            })
            .collect();
        v.sort_by_key(|b| b.key);
        v
    }

    /// Services with their slot ids and drop fraction, for Stats.
    pub fn services(&self) -> impl Iterator<Item = (ServiceKey, u32, DropFraction, u32)> + '_ {
        self.services.values().map(|s| (s.entry.key, s.id, s.drop, s.entry.active))
    }

    /// Slot ids of a service (for summing counters).
    pub fn service_slots(&self, key: &ServiceKey) -> Vec<u32> {
        self.services.get(key).map(|s| s.slots.iter().copied().collect()).unwrap_or_default()
    }

    /// Every VIP.
    pub fn vips(&self) -> BTreeSet<Ipv4Addr> {
        self.services.keys().map(|k| k.vip).collect()
    }

    /// Binding slot ids currently waiting for their flows to end.
    pub fn pending_slots(&self) -> Vec<u32> {
        self.dying.iter().copied().collect()
    }
}

/// A stable identity of a real server for Maglev permutations: the same RIP:rport gets the
/// same permutation in every generation, on every appliance, after every restart.
pub fn backend_key(key: &BindingKey) -> u64 {
    let x = (u64::from(u32::from(key.real.rip)) << 16) | u64::from(key.real.rport);
    // splitmix64 finaliser
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
