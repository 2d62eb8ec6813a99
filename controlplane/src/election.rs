//! CM heartbeat and election: one active Connection Manager, the others standing by.
//! Sans-IO: heartbeats and ticks come in with the time, effects come out.
//!
//! The active CM multicasts a heartbeat every `interval` (default 3 s). A standby that hears
//! none for `misses` intervals (default 3) presumes it dead and stands for election: it sends
//! candidate heartbeats for one interval (the election window) and becomes active unless it
//! hears an active CM, or a candidate with a lower id, first — lowest id wins. Two active CMs
//! (a partition healed) resolve the same way: the one with the higher id steps down. A
//! standby keeps its binding cache (it hears the beacons too), so the winner takes over with
//! every binding and the CM's sync repairs the switches.

use std::time::Duration;

use crate::time::Time;

use crate::beacon::wire::{Heartbeat, Role};

/// Election settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionConfig {
    /// This CM's id, unique among the CMs (lowest wins).
    pub id: u64,
    /// Heartbeat interval of the active CM.
    pub interval: Duration,
    /// Missed heartbeats after which the active CM is presumed dead.
    pub misses: u32,
    /// After start, how long to listen for an active CM before standing for election.
    pub startup_wait: Duration,
}

impl ElectionConfig {
    /// Defaults (3 s, 3 misses, 1.5 intervals of listening at start) for CM `id`.
    pub fn new(id: u64) -> ElectionConfig {
        ElectionConfig::with_interval(id, Duration::from_secs(3))
    }

    /// Defaults with another heartbeat interval.
    pub fn with_interval(id: u64, interval: Duration) -> ElectionConfig {
        ElectionConfig { id, interval, misses: 3, startup_wait: interval + interval / 2 }
    }
}

/// What the caller must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Send a heartbeat in this role now.
    Send(Role),
    /// This CM won: push to the switches (`Cm::set_active(true)`).
    BecomeActive,
    /// This CM lost: stop pushing (`Cm::set_active(false)`).
    BecomeStandby,
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct Election {
    cfg: ElectionConfig,
    role: Role,
    /// Standby: when to stand for election. Candidate: when the window closes.
    deadline: Time,
    /// Candidate and active: when to send the next heartbeat.
    next_send: Time,
    leader: Option<u64>,
}

impl Election {
    /// A CM starting at `now`, standing by.
    pub fn new(cfg: ElectionConfig, now: Time) -> Election {
        Election { cfg, role: Role::Standby, deadline: now + cfg.startup_wait, next_send: now, leader: None }
    }

    /// This CM's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The id of the active CM, as far as this CM knows (itself when active).
    pub fn leader(&self) -> Option<u64> {
        match self.role {
            Role::Active => Some(self.cfg.id),
            _ => self.leader,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ElectionConfig {
        &self.cfg
    }

    fn dead_after(&self) -> Duration {
        self.cfg.interval * self.cfg.misses.max(1)
    }

    fn stand_by(&mut self, now: Time, leader: Option<u64>) -> Vec<Effect> {
        let was_active = self.role == Role::Active;
        self.role = Role::Standby;
        self.deadline = now + self.dead_after();
        self.leader = leader;
        if was_active {
            vec![Effect::BecomeStandby]
        } else {
            Vec::new()
        }
    }

    /// A heartbeat from another CM.
    pub fn on_heartbeat(&mut self, now: Time, hb: &Heartbeat) -> Vec<Effect> {
        if hb.cm_id == self.cfg.id {
            return Vec::new(); // our own, looped back
        }
        let lower = hb.cm_id < self.cfg.id;
        match (self.role, hb.role) {
            (Role::Active, Role::Active) if lower => self.stand_by(now, Some(hb.cm_id)),
            (Role::Active, Role::Active | Role::Candidate) => {
                // Assert ourselves at once, so the other steps down or yields.
                self.next_send = now + self.cfg.interval;
                vec![Effect::Send(Role::Active)]
            }
            (Role::Candidate | Role::Standby, Role::Active) => self.stand_by(now, Some(hb.cm_id)),
            (Role::Candidate, Role::Candidate) if lower => self.stand_by(now, None),
            (Role::Candidate, Role::Candidate) => {
                self.next_send = now + self.cfg.interval / 4;
                vec![Effect::Send(Role::Candidate)]
            }
            _ => Vec::new(),
        }
    }

    /// Time passed; call at [`Election::next_wakeup`] (earlier is harmless).
    pub fn on_tick(&mut self, now: Time) -> Vec<Effect> {
        match self.role {
            Role::Standby if now >= self.deadline => {
                tracing::info!(cm = self.cfg.id, "no active CM heard: standing for election");
                self.role = Role::Candidate;
                self.deadline = now + self.cfg.interval;
                self.next_send = now + self.cfg.interval / 4;
                vec![Effect::Send(Role::Candidate)]
            }
            Role::Candidate if now >= self.deadline => {
                tracing::info!(cm = self.cfg.id, "won the election");
                self.role = Role::Active;
                self.leader = Some(self.cfg.id);
                self.next_send = now + self.cfg.interval;
                vec![Effect::BecomeActive, Effect::Send(Role::Active)]
            }
            Role::Candidate | Role::Active if now >= self.next_send => {
                let period = if self.role == Role::Active { self.cfg.interval } else { self.cfg.interval / 4 };
                self.next_send = now + period;
                vec![Effect::Send(self.role)]
            }
            _ => Vec::new(),
        }
    }

    /// When [`Election::on_tick`] has something to do next.
    pub fn next_wakeup(&self) -> Time {
        match self.role {
            Role::Standby => self.deadline,
            Role::Candidate => self.deadline.min(self.next_send),
            Role::Active => self.next_send,
        }
    }

    /// The heartbeat to send in `role`, with the cache's generation and size.
    pub fn heartbeat(&self, role: Role, generation: u64, bindings: u32) -> Heartbeat {
        Heartbeat {
            cm_id: self.cfg.id,
            role,
            interval_ms: self.cfg.interval.as_millis().min(u32::MAX as u128) as u32,
            generation,
            bindings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn hb(id: u64, role: Role) -> Heartbeat {
        Heartbeat { cm_id: id, role, interval_ms: 3000, generation: 0, bindings: 0 }
    }

    /// Runs a set of CMs connected by a perfect network until `end`, in 10 ms steps; `alive`
    /// says which are running at a time. Returns the roles at the end.
    fn simulate(els: &mut [Election], t0: Time, end: Duration, alive: impl Fn(usize, Duration) -> bool) -> Vec<Role> {
        let step = Duration::from_millis(10);
        let mut t = Duration::ZERO;
        while t <= end {
            let now = t0 + t;
            let mut sent = Vec::new();
            for (i, e) in els.iter_mut().enumerate() {
                if !alive(i, t) {
                    continue;
                }
                for fx in e.on_tick(now) {
                    if let Effect::Send(r) = fx {
                        sent.push((i, e.heartbeat(r, 0, 0)));
                    }
                }
            }
            while let Some((from, h)) = sent.pop() {
                for (i, e) in els.iter_mut().enumerate() {
                    if i != from && alive(i, t) {
                        for fx in e.on_heartbeat(now, &h) {
                            if let Effect::Send(r) = fx {
                                sent.push((i, e.heartbeat(r, 0, 0)));
                            }
                        }
                    }
                }
            }
            t += step;
        }
        els.iter().map(|e| e.role()).collect()
    }

    #[test]
    fn a_lone_cm_becomes_active_after_the_startup_wait_and_window() {
        let t0 = Time::ZERO;
        let mut e = Election::new(ElectionConfig::new(5), t0);
        assert!(e.on_tick(t0 + 4 * S).is_empty());
        assert_eq!(e.on_tick(t0 + 4500 * S / 1000), vec![Effect::Send(Role::Candidate)]);
        assert_eq!(e.role(), Role::Candidate);
        assert_eq!(e.on_tick(t0 + 7500 * S / 1000), vec![Effect::BecomeActive, Effect::Send(Role::Active)]);
        assert_eq!(e.leader(), Some(5));
        assert!(e.on_tick(t0 + 10 * S).is_empty());
        assert_eq!(e.on_tick(t0 + 10500 * S / 1000), vec![Effect::Send(Role::Active)]);
        assert_eq!(e.next_wakeup(), t0 + 13500 * S / 1000);
    }

    #[test]
    fn standby_presumes_death_after_three_missed_heartbeats() {
        let t0 = Time::ZERO;
        let mut e = Election::new(ElectionConfig::new(2), t0);
        e.on_heartbeat(t0, &hb(1, Role::Active));
        assert_eq!(e.leader(), Some(1));
        e.on_heartbeat(t0 + 3 * S, &hb(1, Role::Active));
        assert!(e.on_tick(t0 + 11 * S).is_empty(), "two missed heartbeats are not death");
        assert_eq!(e.on_tick(t0 + 12 * S), vec![Effect::Send(Role::Candidate)]);
    }

    #[test]
    fn candidates_yield_to_a_lower_id_and_to_an_active_cm() {
        let t0 = Time::ZERO;
        let mut e = Election::new(ElectionConfig::new(3), t0);
        e.on_tick(t0 + 5 * S);
        assert_eq!(e.role(), Role::Candidate);
        // A higher candidate is told off.
        assert_eq!(e.on_heartbeat(t0 + 5 * S, &hb(7, Role::Candidate)), vec![Effect::Send(Role::Candidate)]);
        assert_eq!(e.role(), Role::Candidate);
        // A lower one wins.
        assert!(e.on_heartbeat(t0 + 5 * S, &hb(1, Role::Candidate)).is_empty());
        assert_eq!(e.role(), Role::Standby);
        // Candidate again later; an active CM (even with a higher id) ends the candidacy.
        e.on_tick(t0 + 20 * S);
        assert_eq!(e.role(), Role::Candidate);
        e.on_heartbeat(t0 + 20 * S, &hb(9, Role::Active));
        assert_eq!((e.role(), e.leader()), (Role::Standby, Some(9)));
    }

    #[test]
    fn of_two_active_cms_the_higher_id_steps_down() {
        let t0 = Time::ZERO;
        let mut hi = Election::new(ElectionConfig::new(4), t0);
        hi.on_tick(t0 + 5 * S);
        hi.on_tick(t0 + 8 * S);
        assert_eq!(hi.role(), Role::Active);
        assert_eq!(hi.on_heartbeat(t0 + 9 * S, &hb(9, Role::Active)), vec![Effect::Send(Role::Active)]);
        assert_eq!(hi.on_heartbeat(t0 + 9 * S, &hb(2, Role::Active)), vec![Effect::BecomeStandby]);
        assert_eq!((hi.role(), hi.leader()), (Role::Standby, Some(2)));
        // Own heartbeats looped back are ignored.
        assert!(hi.on_heartbeat(t0 + 9 * S, &hb(4, Role::Active)).is_empty());
    }

    #[test]
    fn three_cms_elect_the_lowest_then_the_next_lowest_when_it_dies() {
        let t0 = Time::ZERO;
        let cfg = |id| ElectionConfig::with_interval(id, Duration::from_millis(300));
        let mut els = [Election::new(cfg(3), t0), Election::new(cfg(1), t0), Election::new(cfg(2), t0)];
        let roles = simulate(&mut els, t0, 3 * S, |_, _| true);
        assert_eq!(roles, vec![Role::Standby, Role::Active, Role::Standby]);
        assert_eq!(els[0].leader(), Some(1));
        // CM 1 dies at 3 s; 2 takes over within misses × interval + window (+ a step).
        let roles = simulate(&mut els, t0 + 3 * S, 3 * S, |i, t| i != 1 || t < Duration::ZERO);
        assert_eq!(roles[0], Role::Standby);
        assert_eq!(roles[2], Role::Active);
        assert_eq!(els[0].leader(), Some(2));
    }

    #[test]
    fn simultaneous_start_converges_to_one_active() {
        let t0 = Time::ZERO;
        let cfg = |id| ElectionConfig::with_interval(id, Duration::from_millis(200));
        let mut els: Vec<Election> = (10..15).rev().map(|id| Election::new(cfg(id), t0)).collect();
        let roles = simulate(&mut els, t0, 2 * S, |_, _| true);
        assert_eq!(roles.iter().filter(|r| **r == Role::Active).count(), 1);
        assert_eq!(roles[4], Role::Active, "id 10 is the lowest");
    }
}
