//! The beacon-loss detector: which bindings the client modules claim, and which senders fell
//! silent. Sans-IO: every call takes the time and returns what the CM must do.
//!
//! Each sender (one CM client module instance) beacons its whole binding list every
//! `interval`. The tracker keeps the last list per sender and, per binding, the senders
//! claiming it:
//!
//! * a binding new to a sender's list → [`Action::Add`];
//! * a binding gone from the list, or named in a Remove → [`Action::Remove`] (drain) once no
//!   sender claims it any more;
//! * a sender silent for `misses × interval` (default 3) → its bindings that nobody else
//!   claims → [`Action::Lost`] (the server is presumed dead);
//! * the sender flags a binding down (its local check failed) → [`Action::Down`], and back up
//!   → [`Action::Up`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use crate::time::Time;

use acm::{BindingKey, BindingParams};

use super::wire::{Advert, Sender};

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Missed intervals after which a sender is presumed dead (K).
    pub misses: u32,
    /// Shortest interval a sender may announce (shorter ones are raised to it).
    pub min_interval: Duration,
    /// Longest interval a sender may announce (longer ones are lowered to it).
    pub max_interval: Duration,
    /// Most senders tracked at once; beacons of further senders are refused.
    pub max_senders: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            misses: 3,
            min_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(3600),
            max_senders: 65_536,
        }
    }
}

/// What the CM must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add (or update) the binding.
    Add {
        /// Which binding.
        key: BindingKey,
        /// Its parameters.
        params: BindingParams,
    },
    /// Remove (drain) the binding: its last claimant let it go cleanly.
    Remove {
        /// Which binding.
        key: BindingKey,
    },
    /// Its last claimant's beacons stopped: the server is presumed dead.
    Lost {
        /// Which binding.
        key: BindingKey,
        /// The silent sender.
        sender: Sender,
    },
    /// The server says the binding does not work.
    Down {
        /// Which binding.
        key: BindingKey,
    },
    /// The server says the binding works again.
    Up {
        /// Which binding.
        key: BindingKey,
    },
}

/// Why a beacon was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// The sender table is full.
    #[error("tracking {0} senders already")]
    TooManySenders(usize),
}

#[derive(Debug, Clone)]
struct SenderState {
    bindings: BTreeMap<BindingKey, Advert>,
    deadline: Time,
}

/// The detector.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    config: TrackerConfig,
    senders: HashMap<Sender, SenderState>,
    claims: BTreeMap<BindingKey, BTreeSet<Sender>>,
    /// Every sender by deadline: ticks and timers cost O(log n), not a walk over all senders.
    deadlines: BTreeSet<(Time, Sender)>,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Tracker {
        Tracker { config, ..Tracker::default() }
    }

    /// The settings.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// A beacon: `bindings` is the sender's whole list.
    pub fn on_beacon(
        &mut self,
        now: Time,
        sender: Sender,
        interval: Duration,
        bindings: &[Advert],
    ) -> Result<Vec<Action>, TrackError> {
        if !self.senders.contains_key(&sender) && self.senders.len() >= self.config.max_senders {
            return Err(TrackError::TooManySenders(self.senders.len()));
        }
        let interval = interval.clamp(self.config.min_interval, self.config.max_interval);
        let deadline = now + interval * self.config.misses;
        // The common case: a periodic beacon restating the list. Only the deadline moves.
        if let Some(s) = self.senders.get_mut(&sender) {
            if s.bindings.len() == bindings.len() && bindings.iter().all(|a| s.bindings.get(&a.key) == Some(a)) {
                self.deadlines.remove(&(s.deadline, sender));
                s.deadline = deadline;
                self.deadlines.insert((deadline, sender));
                return Ok(Vec::new());
            }
        }
        let new: BTreeMap<BindingKey, Advert> = bindings.iter().map(|a| (a.key, *a)).collect();
        let old = self.senders.insert(sender, SenderState { bindings: new.clone(), deadline });
        if let Some(o) = &old {
            self.deadlines.remove(&(o.deadline, sender));
        }
        self.deadlines.insert((deadline, sender));
        let old = old.map(|s| s.bindings).unwrap_or_default();
        let mut actions = Vec::new();
        for (key, a) in &new {
            let before = old.get(key);
            if before.is_none_or(|b| b.params != a.params) {
                actions.push(Action::Add { key: *key, params: a.params });
            }
            match (before.map(|b| b.up), a.up) {
                (Some(true) | None, false) => actions.push(Action::Down { key: *key }),
                (Some(false), true) => actions.push(Action::Up { key: *key }),
                _ => {}
            }
            self.claims.entry(*key).or_default().insert(sender);
        }
        for key in old.keys().filter(|k| !new.contains_key(k)) {
            if self.unclaim(key, sender) {
                actions.push(Action::Remove { key: *key });
            }
        }
        Ok(actions)
    }

    /// A clean Remove of some of the sender's bindings.
    pub fn on_remove(&mut self, now: Time, sender: Sender, keys: &[BindingKey]) -> Vec<Action> {
        let _ = now;
        let mut actions = Vec::new();
        for key in keys {
            if let Some(s) = self.senders.get_mut(&sender) {
                s.bindings.remove(key);
            }
            // A binding nobody claims any more leaves; one another sender claims stays. A Remove
            // for a binding no beacon ever claimed is still honoured (Remove before any beacon).
            let claimed_by_others = self.claims.get(key).is_some_and(|c| c.iter().any(|s| *s != sender));
            self.unclaim(key, sender);
            if !claimed_by_others {
                actions.push(Action::Remove { key: *key });
            }
        }
        if self.senders.get(&sender).is_some_and(|s| s.bindings.is_empty()) {
            if let Some(s) = self.senders.remove(&sender) {
                self.deadlines.remove(&(s.deadline, sender));
            }
        }
        actions
    }

    /// Senders whose deadline passed are dropped; returns the bindings they leave unclaimed.
    pub fn on_tick(&mut self, now: Time) -> Vec<Action> {
        let mut dead = Vec::new();
        while let Some(&(deadline, sender)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            dead.push(sender);
        }
        let mut actions = Vec::new();
        for sender in dead {
            let Some(state) = self.senders.remove(&sender) else { continue };
            for key in state.bindings.keys() {
                if self.unclaim(key, sender) {
                    actions.push(Action::Lost { key: *key, sender });
                }
            }
        }
        actions
    }

    /// The earliest sender deadline, for the caller's timer.
    pub fn next_deadline(&self) -> Option<Time> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// Is the binding claimed by any live sender?
    pub fn is_claimed(&self, key: &BindingKey) -> bool {
        self.claims.contains_key(key)
    }

    /// Senders tracked.
    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    /// Bindings claimed.
    pub fn claimed(&self) -> usize {
        self.claims.len()
    }

    /// Removes the sender's claim; true when nobody claims the binding any more.
    fn unclaim(&mut self, key: &BindingKey, sender: Sender) -> bool {
        let Some(set) = self.claims.get_mut(key) else { return false };
        if !set.remove(&sender) {
            return false;
        }
        if set.is_empty() {
            self.claims.remove(key);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(rs: u8) -> BindingKey {
        BindingKey {
            service: "10.0.0.100:80".parse().unwrap(),
            real: format!("10.0.1.{}:80", 10 + rs).parse().unwrap(),
        }
    }

    fn advert(rs: u8) -> Advert {
        Advert { key: key(rs), params: BindingParams::default(), up: true }
    }

    fn sender(rs: u8, instance: u64) -> Sender {
        Sender { addr: Ipv4Addr::new(10, 0, 1, 10 + rs), instance }
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn beacons_add_once_and_silence_loses_after_k_intervals() {
        let t0 = Time::ZERO;
        let mut t = Tracker::new(TrackerConfig::default());
        let s1 = sender(1, 1);
        let a = t.on_beacon(t0, s1, 10 * SEC, &[advert(1)]).unwrap();
        assert_eq!(a, vec![Action::Add { key: key(1), params: BindingParams::default() }]);
        // Repeated beacons change nothing and push the deadline.
        assert!(t.on_beacon(t0 + 10 * SEC, s1, 10 * SEC, &[advert(1)]).unwrap().is_empty());
        assert_eq!(t.next_deadline(), Some(t0 + 40 * SEC));
        assert!(t.on_tick(t0 + 39 * SEC).is_empty());
        assert_eq!(t.on_tick(t0 + 40 * SEC), vec![Action::Lost { key: key(1), sender: s1 }]);
        assert_eq!((t.senders(), t.claimed()), (0, 0));
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn interval_is_clamped_and_k_configurable() {
        let t0 = Time::ZERO;
        let mut t = Tracker::new(TrackerConfig { misses: 5, ..TrackerConfig::default() });
        t.on_beacon(t0, sender(1, 1), Duration::from_millis(1), &[advert(1)]).unwrap();
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_millis(500)));
    }

    #[test]
    fn list_changes_add_and_remove() {
        let t0 = Time::ZERO;
        let mut t = Tracker::new(TrackerConfig::default());
        let s = sender(1, 1);
        t.on_beacon(t0, s, SEC, &[advert(1), advert(2)]).unwrap();
        let mut heavier = advert(2);
        heavier.params.weight = 5;
        let a = t.on_beacon(t0 + SEC, s, SEC, &[heavier, advert(3)]).unwrap();
        assert_eq!(
            a,
            vec![
                Action::Add { key: key(2), params: heavier.params },
                Action::Add { key: key(3), params: BindingParams::default() },
                Action::Remove { key: key(1) },
            ]
        );
    }

    #[test]
    fn explicit_remove_drains_and_forgets_the_sender() {
        let t0 = Time::ZERO;
        let mut t = Tracker::new(TrackerConfig::default());
        let s = sender(1, 1);
        t.on_beacon(t0, s, SEC, &[advert(1)]).unwrap();
        assert_eq!(t.on_remove(t0, s, &[key(1)]), vec![Action::Remove { key: key(1) }]);
        assert_eq!(t.senders(), 0);
        // No Lost later: the sender said goodbye.
        assert!(t.on_tick(t0 + 100 * SEC).is_empty());
        // A Remove before any beacon is still a Remove.
        assert_eq!(t.on_remove(t0, sender(2, 1), &[key(2)]), vec![Action::Remove { key: key(2) }]);
    }

    #[test]
    fn a_restarted_sender_keeps_the_binding_when_the_old_instance_times_out() {
        let t0 = Time::ZERO;
        let mut t = Tracker::new(TrackerConfig::default());
        t.on_beacon(t0, sender(1, 1), SEC, &[advert(1)]).unwrap();
        // Crash and restart: a new instance claims the same binding.
        let a = t.on_beacon(t0 + SEC, sender(1, 2), SEC, &[advert(1)]).unwrap();
        assert_eq!(a.len(), 1, "Add again (the cache filters it): {a:?}");
        t.on_beacon(t0 + 3 * SEC, sender(1, 2), SEC, &[advert(1)]).unwrap();
        // The old instance's deadline passes: nothing is lost.
        assert!(t.on_tick(t0 + 4 * SEC).is_empty());
        assert!(t.is_claimed(&key(1)));
        // And a Remove by the old one is ignored while the new one claims it.
        assert!(t.on_remove(t0 + 4 * SEC, sender(1, 1), &[key(1)]).is_empty());
        assert!(t.is_claimed(&key(1)));
    }

    #[test]
    fn self_reported_down_and_up() {
        let t0 = Time::ZERO;
        let mut t = Tracker::new(TrackerConfig::default());
        let s = sender(1, 1);
        let mut down = advert(1);
        down.up = false;
        assert_eq!(
            t.on_beacon(t0, s, SEC, &[down]).unwrap(),
            vec![Action::Add { key: key(1), params: down.params }, Action::Down { key: key(1) }]
        );
        assert!(t.on_beacon(t0, s, SEC, &[down]).unwrap().is_empty());
        assert_eq!(t.on_beacon(t0, s, SEC, &[advert(1)]).unwrap(), vec![Action::Up { key: key(1) }]);
        assert_eq!(t.on_beacon(t0, s, SEC, &[down]).unwrap(), vec![Action::Down { key: key(1) }]);
    }

    #[test]
    fn sender_table_is_bounded() {
        let t0 = Time::ZERO;
        let mut t = Tracker::new(TrackerConfig { max_senders: 2, ..TrackerConfig::default() });
        t.on_beacon(t0, sender(1, 1), SEC, &[]).unwrap();
        t.on_beacon(t0, sender(2, 1), SEC, &[]).unwrap();
        assert_eq!(t.on_beacon(t0, sender(3, 1), SEC, &[]), Err(TrackError::TooManySenders(2)));
        assert!(t.on_beacon(t0, sender(1, 1), SEC, &[]).is_ok());
    }

    #[test]
    fn the_deadline_index_follows_every_sender() {
        // Random beacons, removes and ticks over 50 senders: the index always holds exactly
        // one entry per sender, at its deadline, and the earliest is the timer.
        let t0 = Time::ZERO;
        let mut t = Tracker::new(TrackerConfig::default());
        let mut x: u64 = 0x1234_5678;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for step in 0..5000u64 {
            let now = t0 + Duration::from_millis(step * 37);
            let s = sender(rnd(50) as u8, rnd(2));
            match rnd(10) {
                0 => {
                    t.on_remove(now, s, &[key(rnd(3) as u8)]);
                }
                1 => {
                    t.on_tick(now);
                }
                _ => {
                    let n = rnd(3) as u8;
                    let list: Vec<Advert> = (0..=n).map(advert).collect();
                    t.on_beacon(now, s, Duration::from_millis(100 + rnd(2000)), &list).unwrap();
                }
            }
            assert_eq!(t.deadlines.len(), t.senders.len());
            for (sd, st) in &t.senders {
                assert!(t.deadlines.contains(&(st.deadline, *sd)));
            }
            assert_eq!(t.next_deadline(), t.senders.values().map(|s| s.deadline).min());
        }
    }
}
