//! The health state machine of one real server endpoint. Sans-IO: probe results and reports
//! come in with the time, transitions come out.
//!
//! ```text
//!            first pass                      `fall` soft failures, or one hard failure,
//!  Unknown ───────────────► Up ─────────────────────────────────────────────► Down
//!     │                      ▲                                                  │
//!     │ fall / hard          └──── `rise` passes in a row, after any hold-down ─┘
//!     └──────────────────────────────────────────────────────────────────────► Down
//! ```
//!
//! A *hard* failure is an answer that the service is not there (TCP reset, ICMP unreachable):
//! one is enough. A *soft* failure (timeout, wrong status) must repeat `fall` times. A failure
//! report of a client module marks the endpoint Down at once and holds it down for `hold_down`
//! (passing probes do not bring it back before then).

use std::time::Duration;

use crate::time::Time;

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The service answered as expected.
    Pass,
    /// No conclusive answer (timeout, unexpected status): counts towards `fall`.
    Soft(String),
    /// The service is definitely not there (connection refused, unreachable).
    Hard(String),
}

/// Health of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Not probed to a conclusion yet (new bindings wait here, in Testing).
    Unknown,
    /// Healthy.
    Up,
    /// Failed.
    Down,
}

/// Thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Passes in a row that bring a Down endpoint back Up.
    pub rise: u32,
    /// Soft failures in a row that take an endpoint Down.
    pub fall: u32,
    /// After a failure report, stay Down at least this long.
    pub hold_down: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { rise: 2, fall: 2, hold_down: Duration::from_secs(5) }
    }
}

/// One endpoint's state machine.
#[derive(Debug, Clone)]
pub struct Checker {
    t: Thresholds,
    health: Health,
    passes: u32,
    fails: u32,
    held_until: Option<Time>,
    last_reason: Option<String>,
}

impl Checker {
    /// A new endpoint, Unknown.
    pub fn new(t: Thresholds) -> Checker {
        Checker { t, health: Health::Unknown, passes: 0, fails: 0, held_until: None, last_reason: None }
    }

    /// An endpoint taken over from a previous control plane generation: its health, and how
    /// much longer a report holds it down (counts start from zero).
    pub fn restored(t: Thresholds, health: Health, held_until: Option<Time>) -> Checker {
        Checker { t, health, passes: 0, fails: 0, held_until, last_reason: None }
    }

    /// Current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Why it last failed.
    pub fn last_reason(&self) -> Option<&str> {
        self.last_reason.as_deref()
    }

    /// Held down by a report until this time.
    pub fn held_until(&self) -> Option<Time> {
        self.held_until
    }

    /// A probe finished at `now`; returns the new health when it changed.
    pub fn on_result(&mut self, now: Time, v: &Verdict) -> Option<Health> {
        match v {
            Verdict::Pass => {
                self.fails = 0;
                self.passes = self.passes.saturating_add(1);
                let held = self.held_until.is_some_and(|u| now < u);
                let needed = if self.health == Health::Unknown { 1 } else { self.t.rise.max(1) };
                if self.health != Health::Up && !held && self.passes >= needed {
                    self.held_until = None;
                    return self.set(Health::Up);
                }
            }
            Verdict::Soft(why) | Verdict::Hard(why) => {
                self.passes = 0;
                self.fails = self.fails.saturating_add(1);
                self.last_reason = Some(why.clone());
                let hard = matches!(v, Verdict::Hard(_));
                if self.health != Health::Down && (hard || self.fails >= self.t.fall.max(1)) {
                    return self.set(Health::Down);
                }
            }
        }
        None
    }

    /// A client module reports the endpoint failed: Down at once, held down for `hold_down`.
    pub fn on_report(&mut self, now: Time, why: &str) -> Option<Health> {
        self.held_until = Some(now + self.t.hold_down);
        self.passes = 0;
        self.last_reason = Some(why.to_string());
        self.set(Health::Down)
    }

    fn set(&mut self, h: Health) -> Option<Health> {
        if self.health == h {
            return None;
        }
        self.health = h;
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn soft() -> Verdict {
        Verdict::Soft("timeout".into())
    }

    #[test]
    fn first_pass_makes_a_new_endpoint_up() {
        let t0 = Time::ZERO;
        let mut c = Checker::new(Thresholds::default());
        assert_eq!(c.health(), Health::Unknown);
        assert_eq!(c.on_result(t0, &Verdict::Pass), Some(Health::Up));
        assert_eq!(c.on_result(t0, &Verdict::Pass), None);
    }

    #[test]
    fn soft_failures_need_fall_in_a_row() {
        let t0 = Time::ZERO;
        let mut c = Checker::new(Thresholds { fall: 3, ..Thresholds::default() });
        c.on_result(t0, &Verdict::Pass);
        assert_eq!(c.on_result(t0, &soft()), None);
        assert_eq!(c.on_result(t0, &soft()), None);
        assert_eq!(c.on_result(t0, &Verdict::Pass), None, "a pass resets the count");
        assert_eq!(c.on_result(t0, &soft()), None);
        assert_eq!(c.on_result(t0, &soft()), None);
        assert_eq!(c.on_result(t0, &soft()), Some(Health::Down));
        assert_eq!(c.last_reason(), Some("timeout"));
    }

    #[test]
    fn one_hard_failure_is_enough() {
        let t0 = Time::ZERO;
        let mut c = Checker::new(Thresholds::default());
        c.on_result(t0, &Verdict::Pass);
        assert_eq!(c.on_result(t0, &Verdict::Hard("connection refused".into())), Some(Health::Down));
        // Unknown endpoints go down the same way.
        let mut c = Checker::new(Thresholds::default());
        assert_eq!(c.on_result(t0, &Verdict::Hard("refused".into())), Some(Health::Down));
    }

    #[test]
    fn recovery_needs_rise_passes() {
        let t0 = Time::ZERO;
        let mut c = Checker::new(Thresholds { rise: 3, ..Thresholds::default() });
        c.on_result(t0, &Verdict::Hard("refused".into()));
        assert_eq!(c.on_result(t0, &Verdict::Pass), None);
        assert_eq!(c.on_result(t0, &Verdict::Pass), None);
        assert_eq!(c.on_result(t0, &soft()), None, "still down; resets passes");
        assert_eq!(c.on_result(t0, &Verdict::Pass), None);
        assert_eq!(c.on_result(t0, &Verdict::Pass), None);
        assert_eq!(c.on_result(t0, &Verdict::Pass), Some(Health::Up));
    }

    #[test]
    fn a_report_holds_the_endpoint_down() {
        let t0 = Time::ZERO;
        let mut c = Checker::new(Thresholds { rise: 2, fall: 2, hold_down: 1000 * MS });
        c.on_result(t0, &Verdict::Pass);
        assert_eq!(c.on_report(t0, "reported by 10.0.1.12"), Some(Health::Down));
        assert_eq!(c.held_until(), Some(t0 + 1000 * MS));
        for i in 1..10 {
            assert_eq!(c.on_result(t0 + i * 100 * MS, &Verdict::Pass), None, "held down at {i}00 ms");
        }
        assert_eq!(c.on_result(t0 + 1000 * MS, &Verdict::Pass), Some(Health::Up));
        assert_eq!(c.held_until(), None);
        // A report of an endpoint already down re-arms the hold without a transition.
        c.on_report(t0, "x");
        assert_eq!(c.on_report(t0 + 10 * MS, "again"), None);
    }
}
