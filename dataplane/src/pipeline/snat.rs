//! Source-NAT port allocation for one worker.
//!
//! A worker owns the ports `p` of the configured range with `p % workers == worker`, so the
//! reply to a source-NATed flow can be steered back to the worker that owns the flow from
//! its destination port alone. Allocation is a free stack: O(1), no allocation after start.

/// One worker's pool of source ports.
#[derive(Debug)]
pub struct SnatPorts {
    free: Vec<u16>,
    lo: u16,
    hi: u16,
}

impl SnatPorts {
    /// The ports of `lo..=hi` owned by `worker` of `workers`.
    pub fn new(lo: u16, hi: u16, worker: u16, workers: u16) -> SnatPorts {
        let workers = workers.max(1);
        let free: Vec<u16> = (lo..=hi).rev().filter(|p| p % workers == worker % workers).collect();
        SnatPorts { free, lo, hi }
    }

    /// A free port.
    #[inline]
    pub fn alloc(&mut self) -> Option<u16> {
        self.free.pop()
    }

    /// Returns a port (ignored if outside the range; the stack never grows past its start size).
    #[inline]
    pub fn release(&mut self, port: u16) {
        if (self.lo..=self.hi).contains(&port) && self.free.len() < self.free.capacity() {
            self.free.push(port);
        }
    }

    /// Whether `port` is in the configured range (of any worker).
    #[inline]
    pub fn in_range(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }

    /// Free ports.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioned_by_worker() {
        let mut a = SnatPorts::new(10000, 10009, 0, 2);
        let mut b = SnatPorts::new(10000, 10009, 1, 2);
        assert_eq!(a.available(), 5);
        let pa = a.alloc().unwrap();
        let pb = b.alloc().unwrap();
        assert_eq!(pa % 2, 0);
        assert_eq!(pb % 2, 1);
        a.release(pa);
        assert_eq!(a.available(), 5);
        for _ in 0..5 {
            a.alloc().unwrap();
        }
        assert_eq!(a.alloc(), None);
        assert!(a.in_range(10009) && !a.in_range(9999));
    }
}
