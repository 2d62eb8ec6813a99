//! Time as the sans-IO state machines see it: a [`Time`] is a point on a monotonic clock in
//! nanoseconds from an arbitrary origin, passed in by the caller and never read inside.
//!
//! The run-time edge reads the real clock through a [`Clock`] (its origin is the moment it was
//! made); the simulation harness ([`crate::sim`]) counts virtual time from [`Time::ZERO`]. The
//! connection manager core ([`crate::cm::core`]), the election ([`crate::election`]), the beacon
//! tracker ([`crate::beacon::tracker`]) and the health state machine ([`crate::health::fsm`])
//! take `now: Time` on every call, so the same code runs on either.

use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in time, nanoseconds since the caller's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(u64);

impl Time {
    /// The origin.
    pub const ZERO: Time = Time(0);

    /// The time `ns` nanoseconds after the origin.
    pub const fn from_nanos(ns: u64) -> Time {
        Time(ns)
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// How long after `earlier` this is (zero when `earlier` is later).
    pub fn saturating_duration_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Same as [`Time::saturating_duration_since`] (the name `std::time::Instant` uses).
    pub fn duration_since(self, earlier: Time) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(nanos(d)))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(nanos(d)))
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, earlier: Time) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// The real clock, for the run-time edge: [`Time`] counts from the moment the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Clock {
        Clock { origin: std::time::Instant::now() }
    }

    /// The time now.
    pub fn now(&self) -> Time {
        self.at(std::time::Instant::now())
    }

    /// The [`Time`] of a real instant (the origin for instants before it).
    pub fn at(&self, i: std::time::Instant) -> Time {
        Time(nanos(i.saturating_duration_since(self.origin)))
    }

    /// The real instant of a [`Time`], for timers.
    pub fn instant(&self, t: Time) -> std::time::Instant {
        self.origin + Duration::from_nanos(t.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_the_clock_round_trips() {
        let t = Time::ZERO + Duration::from_millis(5);
        assert_eq!(t.as_nanos(), 5_000_000);
        assert_eq!(t - Duration::from_secs(1), Time::ZERO);
        assert_eq!(Time::ZERO.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(t - Time::ZERO, Duration::from_millis(5));
        let c = Clock::new();
        let i = std::time::Instant::now() + Duration::from_millis(10);
        assert_eq!(c.instant(c.at(i)), i);
    }
}
