//! The simulated network between CMs and servers, and the seeded random numbers that drive it:
//! every datagram is lost, delayed (so reordered) or duplicated by the seed alone.

use std::time::Duration;

/// A small, fast, seeded generator (SplitMix64): the same seed gives the same run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A value in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A duration in `lo..=hi`.
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.between(ns(lo), ns(hi)))
    }
}

/// How the network treats datagrams (beacons and heartbeats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram arrives twice.
    pub duplicate: f64,
    /// Shortest delivery delay.
    pub min_delay: Duration,
    /// Longest delivery delay (datagrams sent closer together than the spread reorder).
    pub max_delay: Duration,
}

impl Faults {
    /// A perfect network: 1 ms, nothing lost, nothing doubled.
    pub const PERFECT: Faults =
        Faults { loss: 0.0, duplicate: 0.0, min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(1) };

    /// A bad network: `loss` of the datagrams lost, 10 % doubled, 1–50 ms (reordering).
    pub fn lossy(loss: f64) -> Faults {
        Faults { loss, duplicate: 0.1, min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(50) }
    }

    /// The delays at which one datagram arrives (none: lost; two: duplicated).
    pub fn deliveries(&self, rng: &mut Rng) -> Vec<Duration> {
        if rng.chance(self.loss) {
            return Vec::new();
        }
        let mut v = vec![rng.duration(self.min_delay, self.max_delay)];
        if rng.chance(self.duplicate) {
            v.push(rng.duration(self.min_delay, self.max_delay));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_decides_everything() {
        let run = |seed| {
            let mut r = Rng::new(seed);
            (0..100).map(|_| Faults::lossy(0.3).deliveries(&mut r).len()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let lost = run(7).iter().filter(|n| **n == 0).count();
        assert!((15..=45).contains(&lost), "{lost} of 100 lost at 30 %");
        assert!(run(7).contains(&2), "some are doubled");
    }
}
