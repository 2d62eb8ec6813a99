//! What the servers and the other CMs say, as part of the sans-IO core
//! ([`super::core::CmCore`]): beacons of the CM client modules go through the beacon tracker
//! ([`crate::beacon::tracker`]) and become primitives; heartbeats of other CMs go through the
//! election ([`crate::election`]) and make this CM active or standby.
//!
//! What the tracker decides becomes a request nobody waits for (refusals are logged):
//!
//! | tracker | request |
//! |---|---|
//! | Add | Add (filtered when the cache has it) |
//! | Remove (its last claimant let it go) | Remove, when the cache has the binding |
//! | Lost (its last claimant fell silent) | ForceRemove, when the cache has the binding |
//! | Down (the server says so) | Failed, when Active or Testing |
//! | Up | Active, when Failed |

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use acm::{BindingKey, BindingState, Primitive};

use super::core::CmCore;
use super::Origin;
use crate::beacon::tracker::{Action, TrackError, TrackerConfig};
use crate::beacon::wire::{Advert, Heartbeat, Sender, Target};
use crate::election::{Effect, Election, ElectionConfig};
use crate::health::target::matches_target;
use crate::time::Time;

impl CmCore {
    /// Takes part in elections from now on: standby until it wins.
    pub fn enable_election(&mut self, cfg: ElectionConfig, now: Time) {
        self.election = Some(Election::new(cfg, now));
        self.set_active(false, now);
    }

    /// Leaves the election (the services that carry heartbeats stopped); the role stays.
    pub fn disable_election(&mut self) {
        self.election = None;
    }

    /// The election, when there is one.
    pub fn election(&self) -> Option<&Election> {
        self.election.as_ref()
    }

    /// Beacon-loss detection settings (before the first beacon).
    pub fn set_tracker_config(&mut self, cfg: TrackerConfig) {
        self.tracker = crate::beacon::tracker::Tracker::new(cfg);
    }

    /// The beacon tracker.
    pub fn tracker(&self) -> &crate::beacon::tracker::Tracker {
        &self.tracker
    }

    /// Bindings removed because their server fell silent.
    pub fn beacons_lost(&self) -> u64 {
        self.beacons_lost
    }

    /// A beacon: `bindings` is the sender's whole list, repeated every `interval`.
    pub fn handle_beacon(
        &mut self,
        sender: Sender,
        interval: Duration,
        bindings: &[Advert],
        now: Time,
    ) -> Result<(), TrackError> {
        let actions = self.tracker.on_beacon(now, sender, interval, bindings)?;
        let server = IpAddr::V4(sender.addr);
        for a in actions {
            self.apply_action(a, server, now);
        }
        Ok(())
    }

    /// A clean Remove of some of the sender's bindings.
    pub fn handle_beacon_remove(&mut self, sender: Sender, keys: &[BindingKey], now: Time) {
        let server = IpAddr::V4(sender.addr);
        for a in self.tracker.on_remove(now, sender, keys) {
            self.apply_action(a, server, now);
        }
    }

    /// A client module at `from` reports that `target` failed, and no health checker runs:
    /// every live binding it names is failed at once.
    pub fn handle_report(&mut self, target: &Target, from: Ipv4Addr, now: Time) {
        let live = |s: BindingState| matches!(s, BindingState::Active | BindingState::Testing);
        let keys: Vec<BindingKey> =
            self.cache.entries().filter(|(k, e)| live(e.state) && matches_target(target, k)).map(|(k, _)| *k).collect();
        for k in keys {
            tracing::warn!(binding = %k, %from, "failure report: failing the binding");
            self.set_state_unattended(k, BindingState::Failed, now);
        }
    }

    /// Another CM's heartbeat (ignored without an election).
    pub fn handle_heartbeat(&mut self, hb: &Heartbeat, now: Time) {
        let Some(e) = self.election.as_mut() else { return };
        let fx = e.on_heartbeat(now, hb);
        self.effects(fx, now);
    }

    pub(super) fn tick_peers(&mut self, now: Time) {
        for a in self.tracker.on_tick(now) {
            if let Action::Lost { key, sender } = a {
                self.beacons_lost += 1;
                tracing::warn!(binding = %key, server = %sender.addr, "beacons stopped for {} intervals: removing", self.tracker.config().misses);
                self.apply_action(a, IpAddr::V4(sender.addr), now);
            }
        }
        if let Some(e) = self.election.as_mut() {
            let fx = e.on_tick(now);
            self.effects(fx, now);
        }
    }

    fn effects(&mut self, fx: Vec<Effect>, now: Time) {
        for f in fx {
            match f {
                Effect::BecomeActive => self.set_active(true, now),
                Effect::BecomeStandby => self.set_active(false, now),
                Effect::Send(role) => {
                    let Some(e) = &self.election else { continue };
                    let n = u32::try_from(self.cache.len()).unwrap_or(u32::MAX);
                    self.heartbeats.push_back(e.heartbeat(role, self.cache.generation(), n));
                }
            }
        }
    }

    fn apply_action(&mut self, a: Action, server: IpAddr, now: Time) {
        let origin = Origin::Beacon { server };
        match a {
            Action::Add { key, params } => self.request_unattended(origin, &Primitive::Add { key, params }, now),
            Action::Remove { key } => {
                if self.state_of(&key).is_some() {
                    self.request_unattended(origin, &Primitive::Remove { key }, now);
                }
            }
            Action::Lost { key, .. } => {
                if self.state_of(&key).is_some() {
                    self.request_unattended(origin, &Primitive::ForceRemove { key }, now);
                }
            }
            Action::Down { key } => {
                if matches!(self.state_of(&key), Some(BindingState::Active | BindingState::Testing)) {
                    tracing::warn!(binding = %key, "the server says this binding is down");
                    self.set_state_unattended(key, BindingState::Failed, now);
                }
            }
            Action::Up { key } => {
                if self.state_of(&key) == Some(BindingState::Failed) {
                    self.set_state_unattended(key, BindingState::Active, now);
                }
            }
        }
    }
}
