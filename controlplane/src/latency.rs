//! Configuration-latency histograms: how long each primitive took from its receipt by the CM
//! to the switch's acknowledgement, per primitive and per switch.
//!
//! A [`Histogram`] is log-linear (HDR-style): values in nanoseconds fall into one of 32
//! sub-buckets of their power-of-two range, so every percentile is within ~3 % of the true
//! value, the memory is fixed (64 × 32 counters) and recording is a few instructions.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = 64 * SUB;

/// A fixed-size log-linear histogram of durations.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum_ns: u128,
    max_ns: u64,
    min_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS].into_boxed_slice(), count: 0, sum_ns: 0, max_ns: 0, min_ns: u64::MAX }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("count", &self.count).field("max_ns", &self.max_ns).finish()
    }
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = msb - SUB_BITS;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    ((shift as usize + 1) << SUB_BITS) + sub
}

/// The largest value that falls into bucket `i` (percentiles report the bucket's upper edge,
/// so they never understate).
fn upper(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = (i >> SUB_BITS) as u32 - 1;
    let sub = (i & (SUB - 1)) as u64;
    let lo = (SUB as u64 + sub) << shift;
    lo + ((1u64 << shift) - 1)
}

impl Histogram {
    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[index(ns)] += 1;
        self.count += 1;
        self.sum_ns += ns as u128;
        self.max_ns = self.max_ns.max(ns);
        self.min_ns = self.min_ns.min(ns);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0.0–1.0), in nanoseconds (0 when empty). Never more than the
    /// maximum recorded.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Summary with microsecond figures.
    pub fn summary(&self) -> Summary {
        let us = |ns: u64| ns as f64 / 1e3;
        Summary {
            count: self.count,
            p50_us: us(self.quantile_ns(0.50)),
            p90_us: us(self.quantile_ns(0.90)),
            p99_us: us(self.quantile_ns(0.99)),
            max_us: us(self.max_ns),
            min_us: if self.count == 0 { 0.0 } else { us(self.min_ns) },
            mean_us: if self.count == 0 { 0.0 } else { self.sum_ns as f64 / self.count as f64 / 1e3 },
        }
    }
}

/// Percentiles of one histogram, microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest sample.
    pub max_us: f64,
    /// Smallest sample.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
}

/// One row of the latency report: a primitive on a switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    /// Primitive name (`add`, `remove`, `force-remove`, `drop`, `list`).
    pub primitive: String,
    /// Switch profile name; `(cache)` for requests the cache answered or filtered.
    pub switch: String,
    /// The figures.
    #[serde(flatten)]
    pub summary: Summary,
}

/// Every histogram of the CM, keyed by (primitive, switch). Thread-safe.
#[derive(Debug, Default)]
pub struct LatencyBook {
    map: Mutex<BTreeMap<(&'static str, String), Histogram>>,
}

/// The switch name under which requests answered by the cache alone are recorded.
pub const CACHE: &str = "(cache)";

impl LatencyBook {
    /// Records one sample.
    pub fn record(&self, primitive: &'static str, switch: &str, d: Duration) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = m.get_mut(&(primitive, switch.to_string())) {
            h.record(d);
        } else {
            let mut h = Histogram::default();
            h.record(d);
            m.insert((primitive, switch.to_string()), h);
        }
    }

    /// The report, sorted by primitive then switch.
    pub fn report(&self) -> Vec<LatencyReport> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .map(|((p, s), h)| LatencyReport { primitive: p.to_string(), switch: s.clone(), summary: h.summary() })
            .collect()
    }

    /// Forgets every sample.
    pub fn reset(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..2_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
            let i = index(v);
            assert!(i >= last || v < 8, "index not monotonic at {v}");
            last = i;
            assert!(upper(i) >= v, "upper({i}) = {} < {v}", upper(i));
            assert!(upper(i) as f64 <= v as f64 * 1.07 + 1.0, "bucket too wide at {v}");
        }
    }

    #[test]
    fn percentiles() {
        let mut h = Histogram::default();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_us - 50.0).abs() < 2.0, "{s:?}");
        assert!((s.p99_us - 99.0).abs() < 4.0, "{s:?}");
        assert_eq!(s.max_us, 100.0);
        assert!(Histogram::default().summary().p99_us == 0.0);
    }

    #[test]
    fn book_rows() {
        let b = LatencyBook::default();
        b.record("add", "local", Duration::from_micros(20));
        b.record("add", "local", Duration::from_micros(30));
        b.record("remove", "local", Duration::from_micros(10));
        let r = b.report();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].primitive, "add");
        assert_eq!(r[0].summary.count, 2);
    }
}
