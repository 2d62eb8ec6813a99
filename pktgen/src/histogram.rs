//! A fixed-size log-linear latency histogram (nanoseconds): exact below 32 ns, then 16
//! buckets per power of two (at most 1/16 ≈ 6 % relative error), up to ~39 hours.
//! Recording is a few instructions and never allocates.

use serde::{Deserialize, Serialize};

const LINEAR: usize = 32;
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
const MAX_EXP: u32 = 47;
const BUCKETS: usize = LINEAR + (MAX_EXP as usize - 5 + 1) * SUB;

/// The histogram.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("count", &self.count).field("min", &self.min).field("max", &self.max).finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

#[inline]
fn bucket(v: u64) -> usize {
    if v < LINEAR as u64 {
        return v as usize;
    }
    let e = (63 - v.leading_zeros()).min(MAX_EXP);
    let v = v.min((1u64 << (MAX_EXP + 1)) - 1);
    let sub = ((v >> (e - SUB_BITS)) as usize) & (SUB - 1);
    LINEAR + (e as usize - 5) * SUB + sub
}

/// The lowest value of a bucket.
fn low(i: usize) -> u64 {
    if i < LINEAR {
        return i as u64;
    }
    let e = ((i - LINEAR) / SUB + 5) as u32;
    let sub = ((i - LINEAR) % SUB) as u64;
    (1u64 << e) + (sub << (e - SUB_BITS))
}

/// Summary statistics in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyUs {
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Samples.
    pub samples: u64,
}

impl Histogram {
    /// Empty.
    pub fn new() -> Histogram {
        Histogram { counts: Box::new([0; BUCKETS]), count: 0, min: u64::MAX, max: 0, sum: 0 }
    }

    /// Records one value (ns).
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        *self = Histogram::new();
    }

    /// Samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0..=1), ns: the low edge of its bucket, clamped to the
    /// exact min and max.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return low(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Min, median, p99, p99.9, max and mean in µs.
    pub fn summary_us(&self) -> LatencyUs {
        if self.count == 0 {
            return LatencyUs::default();
        }
        let us = |ns: u64| ns as f64 / 1e3;
        LatencyUs {
            min: us(self.min),
            p50: us(self.quantile(0.5)),
            p99: us(self.quantile(0.99)),
            p999: us(self.quantile(0.999)),
            max: us(self.max),
            mean: (self.sum / u128::from(self.count)) as f64 / 1e3,
            samples: self.count,
        }
    }

    /// The cumulative distribution as (µs, fraction ≤) points, one per non-empty bucket.
    pub fn cdf_us(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            seen += c;
            let hi = if i + 1 < BUCKETS { low(i + 1) } else { self.max };
            out.push((hi.min(self.max) as f64 / 1e3, seen as f64 / self.count as f64));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 30, 1 << 40, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= last && b < BUCKETS, "v {v}");
            last = b;
            if v < (1 << 47) {
                assert!(low(b) <= v && v - low(b) <= v / 16, "v {v} low {}", low(b));
            }
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        let s = h.summary_us();
        assert_eq!((s.min, s.max, s.samples), (0.1, 1000.0, 10_000));
        assert!((s.p50 - 500.0).abs() / 500.0 < 0.07, "{s:?}");
        assert!((s.p99 - 990.0).abs() / 990.0 < 0.07, "{s:?}");
        assert!((s.mean - 500.05).abs() < 0.01);
        let cdf = h.cdf_us();
        assert_eq!(cdf.last().unwrap().1, 1.0);
        assert!(cdf.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let mut g = Histogram::new();
        g.merge(&h);
        g.merge(&h);
        assert_eq!(g.count(), 20_000);
        assert_eq!(Histogram::new().summary_us(), LatencyUs::default());
    }
}
