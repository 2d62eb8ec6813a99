//! Adaptive polling: what a poll-mode loop does after a round that found nothing.
//!
//! A worker lcore (and the main lcore) polls its queues in a loop. Polling at full speed when no
//! packet comes burns a core that, on a small machine, other processes need (the lab's clients
//! and servers, a second dataplane). [`IdlePolicy`] is the sans-IO decision: fed, after every
//! round, how much work the round found and the time, it answers [`Action::Poll`] (poll again
//! at once), [`Action::Pause`] (spin with a CPU pause hint for a moment, then poll) or
//! [`Action::Sleep`] (give the core away for a while). After the last work the loop polls at
//! full speed for [`IdleConfig::poll_ns`], then pauses between polls until
//! [`IdleConfig::pause_until_ns`], then sleeps for growing intervals, from
//! [`IdleConfig::min_sleep_ns`] doubling up to [`IdleConfig::max_sleep_ns`]; the first round
//! with work goes back to full-speed polling. So a packet arriving after a long idle period
//! waits at most one maximal sleep (plus the kernel's timer slack) before it is polled, and
//! a loaded worker never sleeps.
//!
//! The sleeping itself, and the clock, are the caller's (the `dataplane` binary); so is waking
//! early when other work (a new generation, a sessions request) arrives.

use appliance_config::dataplane::IdleMode;

/// The policy's parameters, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleConfig {
    /// Poll at full speed this long after the last work (`u64::MAX`: always).
    pub poll_ns: u64,
    /// Then pause between polls until this long after the last work.
    pub pause_until_ns: u64,
    /// The length of one pause.
    pub pause_ns: u64,
    /// The first sleep of an idle period; each following one is twice as long ...
    pub min_sleep_ns: u64,
    /// ... up to this (never longer).
    pub max_sleep_ns: u64,
}

/// Full-speed polling after the last packet, in adaptive mode: a burst's stragglers and the
/// next request of a busy connection arrive within this.
const ADAPTIVE_POLL_NS: u64 = 20_000;
/// Pausing ends, and sleeping starts, this long after the last packet.
const ADAPTIVE_PAUSE_UNTIL_NS: u64 = 100_000;
/// One pause (a few hundred pause instructions).
const PAUSE_NS: u64 = 1_000;
/// The first sleep of an idle period.
const MIN_SLEEP_NS: u64 = 10_000;
/// The main lcore's nap when it found nothing, in busy mode (it shares its core with the
/// control plane, so it never polls at full speed).
const MAIN_LCORE_NAP_NS: u64 = 50_000;

impl IdleConfig {
    /// Never pauses nor sleeps: a loop that owns its core.
    pub const BUSY: IdleConfig =
        IdleConfig { poll_ns: u64::MAX, pause_until_ns: u64::MAX, pause_ns: 0, min_sleep_ns: 0, max_sleep_ns: 0 };

    /// Adaptive: polls, pauses, then sleeps from 10 µs (or `max_sleep_ns` if smaller)
    /// doubling up to `max_sleep_ns`.
    pub fn adaptive(max_sleep_ns: u64) -> IdleConfig {
        IdleConfig {
            poll_ns: ADAPTIVE_POLL_NS,
            pause_until_ns: ADAPTIVE_PAUSE_UNTIL_NS,
            pause_ns: PAUSE_NS,
            min_sleep_ns: MIN_SLEEP_NS.min(max_sleep_ns),
            max_sleep_ns,
        }
    }

    /// Sleeps `ns` after every round that found nothing.
    pub fn nap(ns: u64) -> IdleConfig {
        IdleConfig { poll_ns: 0, pause_until_ns: 0, pause_ns: 0, min_sleep_ns: ns, max_sleep_ns: ns }
    }

    /// A worker lcore's policy for `[dataplane] idle` and `idle_max_sleep_us`.
    pub fn worker(mode: IdleMode, max_sleep_us: u32) -> IdleConfig {
        match mode {
            IdleMode::Busy => IdleConfig::BUSY,
            IdleMode::Adaptive => IdleConfig::adaptive(u64::from(max_sleep_us) * 1000),
        }
    }

    /// The main lcore's: in busy mode a fixed 50 µs nap when idle (its core is the control
    /// plane's too), in adaptive mode the workers' policy.
    pub fn main_lcore(mode: IdleMode, max_sleep_us: u32) -> IdleConfig {
        match mode {
            IdleMode::Busy => IdleConfig::nap(MAIN_LCORE_NAP_NS),
            IdleMode::Adaptive => IdleConfig::adaptive(u64::from(max_sleep_us) * 1000),
        }
    }
}

/// What the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Poll again at once.
    Poll,
    /// Spin with a pause hint for this many nanoseconds, then poll.
    Pause(u64),
    /// Sleep for this many nanoseconds (or until other work wakes the loop), then poll.
    Sleep(u64),
}

/// The idle state of one polling loop.
#[derive(Debug, Clone)]
pub struct IdlePolicy {
    cfg: IdleConfig,
    /// When a round last found work.
    last_work_ns: u64,
    /// The next sleep's length.
    next_sleep_ns: u64,
}

impl IdlePolicy {
    /// A loop starting at `now_ns` (counted as work: it polls at full speed first).
    pub fn new(cfg: IdleConfig, now_ns: u64) -> IdlePolicy {
        IdlePolicy { cfg, last_work_ns: now_ns, next_sleep_ns: cfg.min_sleep_ns }
    }

    /// The parameters.
    pub fn config(&self) -> &IdleConfig {
        &self.cfg
    }

    /// After a round that found `work` packets (or other items) at `now_ns`: what next.
    pub fn after_round(&mut self, work: usize, now_ns: u64) -> Action {
        if work > 0 {
            self.last_work_ns = now_ns;
            self.next_sleep_ns = self.cfg.min_sleep_ns;
            return Action::Poll;
        }
        let idle = now_ns.saturating_sub(self.last_work_ns);
        if idle < self.cfg.poll_ns || self.cfg.poll_ns == u64::MAX {
            Action::Poll
        } else if idle < self.cfg.pause_until_ns {
            Action::Pause(self.cfg.pause_ns)
        } else {
            let d = self.next_sleep_ns.min(self.cfg.max_sleep_ns);
            self.next_sleep_ns = d.saturating_mul(2).clamp(self.cfg.min_sleep_ns, self.cfg.max_sleep_ns);
            Action::Sleep(d)
        }
    }
}

#[cfg(test)]
#[path = "idle_tests.rs"]
mod tests;
