//! A deterministic simulation of Connection Managers, switches and servers, on virtual time.
//!
//! Several [`CmCore`]s (the sans-IO core the control plane runs) share fake switches
//! ([`FakeSwitch`]) and hear simulated servers beacon and each other heartbeat over a network
//! that loses, delays (so reorders) and duplicates datagrams as the seed says ([`net`]). Nothing
//! sleeps and nothing reads a clock: an event queue orders everything by virtual time, so a
//! takeover that takes ten seconds of heartbeats runs in a millisecond, and a seed that fails
//! fails the same way every time.
//!
//! What it models:
//!
//! * each CM's switch jobs go to the switch in order, each taking `switch_latency`, and the
//!   answer comes back to that CM (a dead CM's jobs still reach the switch; the answers are lost);
//! * a Remove the switch drains finishes `drain_time` later (the last flow ended);
//! * servers beacon their bindings every `beacon_interval` to every live CM; a silent server
//!   stops; heartbeats of the live CMs go to every other live CM;
//! * a killed CM stops: no ticks, no datagrams, no answers.
//!
//! Tests drive it like an operator: [`World::primitive`], [`World::sync`] and the others run
//! the world until the answer is there.

pub mod net;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

use acm::{BindingKey, BindingParams, BindingState, Primitive};

use crate::beacon::tracker::TrackerConfig;
use crate::beacon::wire::{Advert, Heartbeat, Sender};
use crate::cm::core::{CmCore, Completion, JobKind, RequestId, Submitted, SwitchJob, SwitchReply};
use crate::cm::fake::FakeSwitch;
use crate::cm::switch::{SwitchDriver, VipFilter};
use crate::cm::sync::{SyncId, SyncReport};
use crate::cm::{CmError, CmOptions, Origin, Outcome};
use crate::election::ElectionConfig;
use crate::time::Time;
use net::{Faults, Rng};

/// The world's settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Every CM's options.
    pub options: CmOptions,
    /// Heartbeat interval of the election.
    pub election_interval: Duration,
    /// Beacon-loss detection.
    pub tracker: TrackerConfig,
    /// How often servers beacon.
    pub beacon_interval: Duration,
    /// How long a switch takes per job.
    pub switch_latency: Duration,
    /// How long a drain takes on the switch.
    pub drain_time: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            options: CmOptions {
                sync_interval: Duration::from_secs(2),
                sync_grace: Duration::from_secs(5),
                ..CmOptions::default()
            },
            election_interval: Duration::from_secs(1),
            tracker: TrackerConfig::default(),
            beacon_interval: Duration::from_secs(1),
            switch_latency: Duration::from_millis(2),
            drain_time: Duration::from_secs(1),
        }
    }
}

enum Msg {
    Heartbeat(Heartbeat),
    Beacon { sender: Sender, interval: Duration, adverts: Vec<Advert> },
    Remove { sender: Sender, keys: Vec<BindingKey> },
}

enum Event {
    Tick(usize),
    Datagram(usize, Msg),
    Job(usize, SwitchJob),
    DrainDone(usize, BindingKey),
    Beacon(usize),
}

struct Scheduled {
    at: Time,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct SimCm {
    core: CmCore,
    alive: bool,
    next_tick: Option<Time>,
    /// Per switch: when its queue of this CM's jobs is free.
    busy_until: Vec<Time>,
    answers: HashMap<RequestId, Result<Outcome, CmError>>,
    syncs: HashMap<SyncId, Vec<SyncReport>>,
}

struct SimServer {
    sender: Sender,
    adverts: Vec<Advert>,
    silent: bool,
}

/// The simulated world. See the module docs.
pub struct World {
    now: Time,
    rng: Rng,
    /// How the network treats beacons and heartbeats from now on.
    pub faults: Faults,
    cfg: SimConfig,
    cms: Vec<SimCm>,
    switches: Vec<(String, VipFilter, FakeSwitch)>,
    servers: Vec<SimServer>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
}

/// Most events one run may take (a livelock is a bug, not a hang).
const MAX_EVENTS: u64 = 50_000_000;

impl World {
    /// An empty world at time zero, on a perfect network.
    pub fn new(cfg: SimConfig, seed: u64) -> World {
        World {
            now: Time::ZERO,
            rng: Rng::new(seed),
            faults: Faults::PERFECT,
            cfg,
            cms: Vec::new(),
            switches: Vec::new(),
            servers: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// The time now.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The seeded random numbers (for tests that pick things at random).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Adds a switch (before the CMs); returns its number.
    pub fn add_switch(&mut self, name: &str, vips: VipFilter) -> usize {
        assert!(self.cms.is_empty(), "add switches before CMs");
        self.switches.push((name.to_string(), vips, FakeSwitch::new()));
        self.switches.len() - 1
    }

    /// A switch's state.
    pub fn switch(&self, i: usize) -> &FakeSwitch {
        &self.switches[i].2
    }

    /// Adds a CM managing every switch, with the periodic sync on; with `election` it takes
    /// part in elections under that id (standby until it wins), without it is active at once.
    pub fn add_cm(&mut self, election: Option<u64>) -> usize {
        let names = self.switches.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
        let mut core = CmCore::new(self.cfg.options.clone(), names, self.now);
        core.set_tracker_config(self.cfg.tracker);
        core.enable_periodic_sync(self.now);
        if let Some(id) = election {
            core.enable_election(ElectionConfig::with_interval(id, self.cfg.election_interval), self.now);
        }
        let busy_until = vec![self.now; self.switches.len()];
        self.cms.push(SimCm {
            core,
            alive: true,
            next_tick: None,
            busy_until,
            answers: HashMap::new(),
            syncs: HashMap::new(),
        });
        let i = self.cms.len() - 1;
        self.pump(i);
        i
    }

    /// A CM's core.
    pub fn cm(&self, i: usize) -> &CmCore {
        &self.cms[i].core
    }

    /// Runs `f` on CM `i`'s core at the time now, then carries out what it wants done (for
    /// events the world does not model itself, such as probe verdicts).
    pub fn drive<R>(&mut self, i: usize, f: impl FnOnce(&mut CmCore, Time) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.cms[i].core, now);
        self.pump(i);
        r
    }

    /// Kills a CM: it stops at once.
    pub fn kill_cm(&mut self, i: usize) {
        self.cms[i].alive = false;
    }

    /// The live CMs that are active.
    pub fn active_cms(&self) -> Vec<usize> {
        (0..self.cms.len()).filter(|i| self.cms[*i].alive && self.cms[*i].core.is_active()).collect()
    }

    /// Adds a server at `addr` that beacons these bindings from now on (first beacon at a random
    /// point of its first interval); returns its number.
    pub fn add_server(&mut self, addr: Ipv4Addr, bindings: &[(BindingKey, BindingParams)]) -> usize {
        let sender = Sender { addr, instance: self.rng.next_u64() };
        let adverts = bindings.iter().map(|(key, params)| Advert { key: *key, params: *params, up: true }).collect();
        self.servers.push(SimServer { sender, adverts, silent: false });
        let i = self.servers.len() - 1;
        let phase = self.rng.duration(Duration::ZERO, self.cfg.beacon_interval);
        self.schedule(self.now + phase, Event::Beacon(i));
        i
    }

    /// Silences a server (its process died) or lets it beacon again.
    pub fn set_server_silent(&mut self, i: usize, silent: bool) {
        let was = std::mem::replace(&mut self.servers[i].silent, silent);
        if was && !silent {
            self.schedule(self.now, Event::Beacon(i));
        }
    }

    /// A server lets some of its bindings go cleanly (a Remove datagram to every live CM).
    pub fn server_remove(&mut self, i: usize, keys: &[BindingKey]) {
        self.servers[i].adverts.retain(|a| !keys.contains(&a.key));
        let sender = self.servers[i].sender;
        self.broadcast(None, || Msg::Remove { sender, keys: keys.to_vec() });
    }

    fn schedule(&mut self, at: Time, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at: at.max(self.now), seq: self.seq, event }));
    }

    /// Sends a datagram to every live CM but `from`, through the faults.
    fn broadcast(&mut self, from: Option<usize>, msg: impl Fn() -> Msg) {
        for to in 0..self.cms.len() {
            if Some(to) == from || !self.cms[to].alive {
                continue;
            }
            for d in self.faults.deliveries(&mut self.rng) {
                let m = msg();
                self.schedule(self.now + d, Event::Datagram(to, m));
            }
        }
    }

    /// Carries out what CM `i` wants done.
    fn pump(&mut self, i: usize) {
        if !self.cms[i].alive {
            return;
        }
        while let Some(job) = self.cms[i].core.poll_switch_job() {
            let start = self.cms[i].busy_until[job.switch].max(self.now);
            let at = start + self.cfg.switch_latency;
            self.cms[i].busy_until[job.switch] = at;
            self.schedule(at, Event::Job(i, job));
        }
        while let Some(hb) = self.cms[i].core.poll_heartbeat() {
            self.broadcast(Some(i), || Msg::Heartbeat(hb));
        }
        while let Some(c) = self.cms[i].core.poll_completion() {
            match c {
                Completion::Request(id, r) => {
                    self.cms[i].answers.insert(id, r);
                }
                Completion::Sync(id, reports) => {
                    self.cms[i].syncs.insert(id, reports);
                }
            }
        }
        if let Some(t) = self.cms[i].core.poll_timeout() {
            if self.cms[i].next_tick.is_none_or(|n| t < n) {
                self.cms[i].next_tick = Some(t);
                self.schedule(t, Event::Tick(i));
            }
        }
    }

    /// Runs the world until `end`.
    pub fn run_until(&mut self, end: Time) {
        self.run_while(end, |_| true);
        self.now = self.now.max(end);
    }

    /// Runs the world for `d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs events up to `end` while `go` holds; returns whether it stopped because `go` failed.
    fn run_while(&mut self, end: Time, mut go: impl FnMut(&Self) -> bool) -> bool {
        let mut n = 0u64;
        while go(self) {
            let Some(Reverse(next)) = self.queue.peek() else { return false };
            if next.at > end {
                return false;
            }
            let Some(Reverse(s)) = self.queue.pop() else { return false };
            self.now = s.at;
            self.event(s.at, s.event);
            n += 1;
            assert!(n < MAX_EVENTS, "simulation livelock at {:?}", self.now);
        }
        true
    }

    fn event(&mut self, at: Time, e: Event) {
        match e {
            Event::Tick(i) => {
                if self.cms[i].next_tick == Some(at) {
                    self.cms[i].next_tick = None;
                }
                if self.cms[i].alive {
                    self.cms[i].core.handle_tick(self.now);
                    self.pump(i);
                }
            }
            Event::Datagram(i, m) => {
                if !self.cms[i].alive {
                    return;
                }
                let now = self.now;
                let core = &mut self.cms[i].core;
                match m {
                    Msg::Heartbeat(hb) => core.handle_heartbeat(&hb, now),
                    Msg::Beacon { sender, interval, adverts } => {
                        let _ = core.handle_beacon(sender, interval, &adverts, now);
                    }
                    Msg::Remove { sender, keys } => core.handle_beacon_remove(sender, &keys, now),
                }
                self.pump(i);
            }
            Event::Job(i, job) => {
                let reply = self.apply(&job);
                if self.cms[i].alive {
                    self.cms[i].core.handle_switch_reply(job.id, reply, self.now);
                    self.pump(i);
                }
            }
            Event::DrainDone(s, key) => {
                let mut st = self.switches[s].2.lock();
                if st.bindings.get(&key).is_some_and(|b| b.1 == BindingState::Draining) {
                    st.bindings.remove(&key);
                }
            }
            Event::Beacon(i) => {
                if self.servers[i].silent {
                    return;
                }
                let (sender, adverts) = (self.servers[i].sender, self.servers[i].adverts.clone());
                let interval = self.cfg.beacon_interval;
                self.broadcast(None, || Msg::Beacon { sender, interval, adverts: adverts.clone() });
                self.schedule(self.now + interval, Event::Beacon(i));
            }
        }
    }

    /// The switch carries out a job now.
    fn apply(&mut self, job: &SwitchJob) -> SwitchReply {
        let mut sw = self.switches[job.switch].2.clone();
        match &job.kind {
            JobKind::Apply(op) => {
                let r = sw.apply(op);
                if let (Ok(_), Primitive::Remove { key }) = (&r, op) {
                    if sw.state_of(key) == Some(BindingState::Draining) {
                        self.schedule(self.now + self.cfg.drain_time, Event::DrainDone(job.switch, *key));
                    }
                }
                SwitchReply::Applied(r)
            }
            JobKind::List => SwitchReply::Listed(sw.list()),
        }
    }

    /// Runs a primitive through CM `i` as `origin` and runs the world until it is answered.
    pub fn primitive(&mut self, i: usize, origin: Origin, p: Primitive) -> Result<Outcome, CmError> {
        let now = self.now;
        let r = self.cms[i].core.handle_primitive(origin, &p, now);
        self.pump(i);
        self.wait_answer(i, r)
    }

    /// Sets a binding's state through CM `i` and runs the world until it is answered.
    pub fn set_state(&mut self, i: usize, key: BindingKey, state: BindingState) -> Result<Outcome, CmError> {
        let now = self.now;
        let r = self.cms[i].core.handle_set_state(key, state, now);
        self.pump(i);
        self.wait_answer(i, r)
    }

    fn wait_answer(&mut self, i: usize, r: Result<Submitted, CmError>) -> Result<Outcome, CmError> {
        let id = match r? {
            Submitted::Done(o) => return Ok(o),
            Submitted::Pending(id) => id,
        };
        let end = self.now + Duration::from_secs(60);
        self.run_while(end, |w| !w.cms[i].answers.contains_key(&id));
        self.cms[i].answers.remove(&id).unwrap_or(Err(CmError::ShuttingDown))
    }

    /// Runs a sync round of CM `i` and the world until it ends.
    pub fn sync(&mut self, i: usize) -> Vec<SyncReport> {
        let now = self.now;
        let id = self.cms[i].core.start_sync(now);
        self.pump(i);
        let end = self.now + Duration::from_secs(60);
        self.run_while(end, |w| !w.cms[i].syncs.contains_key(&id));
        self.cms[i].syncs.remove(&id).unwrap_or_default()
    }

    /// Does every switch hold what CM `i`'s cache wants it to? Every binding Active in the cache
    /// is Active on each switch that serves it, with the same parameters, and every binding
    /// Active on a switch is Active in the cache. `Err` says what differs.
    pub fn converged(&self, i: usize) -> Result<(), String> {
        let cache = self.cms[i].core.cache();
        for (name, vips, fake) in &self.switches {
            let st = fake.lock();
            for (k, e) in cache.entries().filter(|(k, _)| vips.covers(&k.service)) {
                let on = st.bindings.get(k);
                if e.state == BindingState::Active && on != Some(&(e.params, BindingState::Active)) {
                    return Err(format!("{name}: {k} is Active in the cache, {on:?} on the switch"));
                }
            }
            for (k, (_, s)) in &st.bindings {
                if *s == BindingState::Active && cache.get(k).map(|e| e.state) != Some(BindingState::Active) {
                    return Err(format!("{name}: {k} is Active on the switch, {:?} in the cache", cache.get(k)));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
