//! The dataplane's monotonic clock for the control side (timestamps in the switch API).
//! Workers take time from the TSC in the poll loop and pass it into the sans-IO core.

use std::sync::OnceLock;
use std::time::Instant;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the process first asked.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}
