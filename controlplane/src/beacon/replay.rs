//! Replay and staleness filter for authenticated datagrams (sans-IO: the wall clock is passed in).
//!
//! A datagram is accepted when its timestamp is within `window` of the receiver's clock (not
//! stale, not from the future) and its sequence number is above every sequence number seen
//! from the same [`Sender`]. A sender is remembered for at least `2 × window` after its last
//! datagram, so a replay is caught by its sequence number while it is young and by its
//! timestamp once it is old. A restarted sender draws a new instance number, so it starts a
//! fresh sequence.

use std::collections::HashMap;

use super::wire::Sender;

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Its timestamp is older than the window.
    #[error("stale: sent {age_ms} ms ago")]
    Stale {
        /// How old.
        age_ms: u64,
    },
    /// Its timestamp is further in the future than the window.
    #[error("timestamp {ahead_ms} ms in the future")]
    Future {
        /// How far ahead.
        ahead_ms: u64,
    },
    /// Its sequence number was seen already (or a later one was).
    #[error("replayed: sequence {seq}, last accepted {last}")]
    Replayed {
        /// Its sequence number.
        seq: u64,
        /// The last accepted from this sender.
        last: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    last_seq: u64,
    last_ms: u64,
}

/// The filter.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    window_ms: u64,
    max_senders: usize,
    senders: HashMap<Sender, Seen>,
    evicted: u64,
}

impl ReplayGuard {
    /// A filter accepting timestamps within `window_ms` of the local clock, remembering at most
    /// `max_senders` senders (the least recently heard are forgotten first).
    pub fn new(window_ms: u64, max_senders: usize) -> ReplayGuard {
        ReplayGuard { window_ms, max_senders: max_senders.max(1), senders: HashMap::new(), evicted: 0 }
    }

    /// Checks one authenticated datagram at local wall-clock time `now_ms`; remembers it when
    /// accepted.
    pub fn check(&mut self, now_ms: u64, sender: Sender, seq: u64, timestamp_ms: u64) -> Result<(), ReplayError> {
        if timestamp_ms + self.window_ms < now_ms {
            return Err(ReplayError::Stale { age_ms: now_ms - timestamp_ms });
        }
        if timestamp_ms > now_ms.saturating_add(self.window_ms) {
            return Err(ReplayError::Future { ahead_ms: timestamp_ms - now_ms });
        }
        if let Some(seen) = self.senders.get_mut(&sender) {
            if seq <= seen.last_seq {
                return Err(ReplayError::Replayed { seq, last: seen.last_seq });
            }
            seen.last_seq = seq;
            seen.last_ms = now_ms;
            return Ok(());
        }
        if self.senders.len() >= self.max_senders {
            self.expire(now_ms);
        }
        if self.senders.len() >= self.max_senders {
            if let Some(oldest) = self.senders.iter().min_by_key(|(_, s)| s.last_ms).map(|(k, _)| *k) {
                self.senders.remove(&oldest);
                self.evicted += 1;
            }
        }
        self.senders.insert(sender, Seen { last_seq: seq, last_ms: now_ms });
        Ok(())
    }

    /// Forgets senders silent for more than twice the window (their replays are stale anyway).
    pub fn expire(&mut self, now_ms: u64) {
        let keep = 2 * self.window_ms;
        self.senders.retain(|_, s| now_ms.saturating_sub(s.last_ms) <= keep);
    }

    /// Senders remembered.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// True when no sender is remembered.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Senders forgotten early because the table was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn s(i: u64) -> Sender {
        Sender { addr: Ipv4Addr::new(10, 0, 1, 11), instance: i }
    }

    #[test]
    fn sequence_must_grow_per_sender() {
        let mut g = ReplayGuard::new(30_000, 16);
        let t = 1_000_000;
        assert_eq!(g.check(t, s(1), 1, t), Ok(()));
        assert_eq!(g.check(t, s(1), 2, t), Ok(()));
        assert_eq!(g.check(t, s(1), 2, t), Err(ReplayError::Replayed { seq: 2, last: 2 }));
        assert_eq!(g.check(t, s(1), 1, t), Err(ReplayError::Replayed { seq: 1, last: 2 }));
        // A restarted sender (new instance) starts again at 1.
        assert_eq!(g.check(t, s(2), 1, t), Ok(()));
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn stale_and_future_timestamps() {
        let mut g = ReplayGuard::new(30_000, 16);
        let t = 1_000_000;
        assert_eq!(g.check(t, s(1), 1, t - 30_001), Err(ReplayError::Stale { age_ms: 30_001 }));
        assert_eq!(g.check(t, s(1), 1, t + 30_001), Err(ReplayError::Future { ahead_ms: 30_001 }));
        assert_eq!(g.check(t, s(1), 1, t - 30_000), Ok(()));
        assert_eq!(g.check(t, s(1), 2, t + 30_000), Ok(()));
        // Refused datagrams did not touch the sequence.
        assert_eq!(g.check(5, s(9), 1, 5), Ok(()));
    }

    #[test]
    fn replay_of_a_forgotten_sender_is_stale() {
        let mut g = ReplayGuard::new(1_000, 16);
        assert_eq!(g.check(10_000, s(1), 5, 10_000), Ok(()));
        g.expire(12_001);
        assert!(g.is_empty());
        // The only way to be forgotten is to be older than the window: the replay is stale.
        assert!(matches!(g.check(12_001, s(1), 5, 10_000), Err(ReplayError::Stale { .. })));
    }

    #[test]
    fn table_is_bounded() {
        let mut g = ReplayGuard::new(30_000, 4);
        for i in 0..10 {
            assert_eq!(g.check(1_000 + i, s(i), 1, 1_000), Ok(()));
        }
        assert_eq!(g.len(), 4);
        assert_eq!(g.evicted(), 6);
    }
}
