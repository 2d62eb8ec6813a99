//! Sans-IO restart policy: what to do when a generation ends. Time is passed
//! in, so the rule is unit-tested without sleeping.
//!
//! The thesis's rule: a fault more than `window` (default 60 s) after the last
//! restart is transient and restarted at once; a fault sooner is treated as a
//! deterministic bug: back off exponentially, log loudly, and give up after
//! `max_retries` tries instead of looping.

use std::time::{Duration, Instant};

use crate::proto::ExitCause;

/// Policy parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A fault within this long of the last restart counts as a repeat.
    pub window: Duration,
    /// First back-off delay; doubled per repeat.
    pub backoff_base: Duration,
    /// Back-off ceiling.
    pub backoff_max: Duration,
    /// Repeats tolerated before giving up.
    pub max_retries: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            window: Duration::from_secs(60),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            max_retries: 5,
        }
    }
}

/// Decision for one ended generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Transient fault: start the next generation now.
    RestartNow,
    /// Repeated fault: start the next generation after this delay.
    Backoff {
        /// Delay.
        delay: Duration,
        /// Repeat count in the streak (1-based).
        streak: u32,
    },
    /// Too many repeats: stop.
    GiveUp {
        /// Repeats seen.
        streak: u32,
    },
    /// Clean exit: do not restart.
    Stop,
    /// Planned restart/upgrade: start the next generation now, no fault.
    Planned,
}

/// Per-role fault tracking.
#[derive(Debug, Clone, Default)]
pub struct FaultTracker {
    last_restart: Option<Instant>,
    streak: u32,
}

impl FaultTracker {
    /// Current repeat count.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Decide what to do with a generation that ended with `cause` at `now`.
    pub fn on_exit(&mut self, policy: &Policy, cause: &ExitCause, now: Instant) -> Decision {
        if let ExitCause::Planned { .. } = cause {
            return Decision::Planned;
        }
        if !cause.is_fault() {
            return Decision::Stop;
        }
        let repeat = self.last_restart.is_some_and(|t| now.saturating_duration_since(t) < policy.window);
        if !repeat {
            self.streak = 0;
            return Decision::RestartNow;
        }
        self.streak += 1;
        if self.streak > policy.max_retries {
            return Decision::GiveUp { streak: self.streak };
        }
        let factor = 1u32.checked_shl(self.streak - 1).unwrap_or(u32::MAX);
        let delay = policy.backoff_base.saturating_mul(factor).min(policy.backoff_max);
        Decision::Backoff { delay, streak: self.streak }
    }

    /// A new generation was started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.last_restart = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg() -> ExitCause {
        ExitCause::Signaled { signal: libc::SIGSEGV, name: "SIGSEGV".into(), core: false }
    }

    #[test]
    fn first_fault_restarts_at_once() {
        let p = Policy::default();
        let mut t = FaultTracker::default();
        let t0 = Instant::now();
        assert_eq!(t.on_exit(&p, &seg(), t0), Decision::RestartNow);
    }

    #[test]
    fn faults_within_window_back_off_then_give_up() {
        let p = Policy { max_retries: 3, ..Policy::default() };
        let mut t = FaultTracker::default();
        let t0 = Instant::now();
        t.started(t0);
        let mut delays = vec![];
        for i in 1..=3 {
            match t.on_exit(&p, &seg(), t0 + Duration::from_secs(i)) {
                Decision::Backoff { delay, streak } => {
                    assert_eq!(streak, i as u32);
                    delays.push(delay);
                }
                d => panic!("{d:?}"),
            }
            t.started(t0 + Duration::from_secs(i));
        }
        assert_eq!(delays, vec![Duration::from_millis(100), Duration::from_millis(200), Duration::from_millis(400)]);
        assert_eq!(t.on_exit(&p, &seg(), t0 + Duration::from_secs(4)), Decision::GiveUp { streak: 4 });
    }

    #[test]
    fn fault_after_window_is_transient() {
        let p = Policy::default();
        let mut t = FaultTracker::default();
        let t0 = Instant::now();
        t.started(t0);
        assert!(matches!(t.on_exit(&p, &seg(), t0 + Duration::from_secs(1)), Decision::Backoff { .. }));
        t.started(t0 + Duration::from_secs(1));
        assert_eq!(t.on_exit(&p, &seg(), t0 + Duration::from_secs(120)), Decision::RestartNow);
        assert_eq!(t.streak(), 0);
    }

    #[test]
    fn clean_exit_stops_nonzero_exit_is_fault() {
        let p = Policy::default();
        let mut t = FaultTracker::default();
        let now = Instant::now();
        assert_eq!(t.on_exit(&p, &ExitCause::Exited { code: 0 }, now), Decision::Stop);
        assert_eq!(t.on_exit(&p, &ExitCause::Exited { code: 3 }, now), Decision::RestartNow);
        assert_eq!(
            t.on_exit(&p, &ExitCause::Planned { reason: "upgrade".into(), from: "x".into() }, now),
            Decision::Planned
        );
    }
}
