//! The flows a run uses: a dense index `0..count` mapped to client endpoints
//! (source address, source port) and back, so the receive side can tell from a packet's
//! client endpoint which flow it belongs to without a table.

use std::net::Ipv4Addr;

/// Why a flow space cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowSpaceError {
    /// No flows asked for.
    #[error("a flow space needs at least one flow")]
    Empty,
    /// The source-port range is empty or leaves port 0 / wraps.
    #[error("source ports {first}+{count} do not fit in 1-65535")]
    BadPorts {
        /// First source port.
        first: u16,
        /// Ports per address.
        count: u32,
    },
    /// More addresses than the IPv4 space after `base`.
    #[error("{addresses} source addresses from {base} run past 255.255.255.255")]
    TooManyAddresses {
        /// First address.
        base: Ipv4Addr,
        /// Addresses needed.
        addresses: u32,
    },
}

/// `count` client endpoints: flow `i` comes from address `base + i / ports` and source port
/// `first_port + i % ports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSpace {
    base: u32,
    first_port: u16,
    ports: u32,
    count: u32,
}

impl FlowSpace {
    /// A space of `count` flows from `base`, `ports` source ports per address starting at
    /// `first_port`.
    pub fn new(base: Ipv4Addr, first_port: u16, ports: u32, count: u32) -> Result<FlowSpace, FlowSpaceError> {
        if count == 0 {
            return Err(FlowSpaceError::Empty);
        }
        if ports == 0 || first_port == 0 || u32::from(first_port) + ports > 65536 {
            return Err(FlowSpaceError::BadPorts { first: first_port, count: ports });
        }
        let addresses = count.div_ceil(ports);
        if u64::from(u32::from(base)) + u64::from(addresses) > u64::from(u32::MAX) {
            return Err(FlowSpaceError::TooManyAddresses { base, addresses });
        }
        Ok(FlowSpace { base: u32::from(base), first_port, ports, count })
    }

    /// How many flows.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Never true (a space has at least one flow); for clippy.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many source addresses the flows use.
    pub fn addresses(&self) -> u32 {
        self.count.div_ceil(self.ports)
    }

    /// The client endpoint of flow `i` (taken modulo the size).
    #[inline]
    pub fn endpoint(&self, i: u32) -> (u32, u16) {
        let i = i % self.count;
        (self.base + i / self.ports, self.first_port + (i % self.ports) as u16)
    }

    /// The flow a client endpoint belongs to, if any.
    #[inline]
    pub fn index(&self, ip: u32, port: u16) -> Option<u32> {
        let a = ip.wrapping_sub(self.base);
        let p = u32::from(port.wrapping_sub(self.first_port));
        if p >= self.ports || u64::from(a) * u64::from(self.ports) >= u64::from(self.count) {
            return None;
        }
        let i = a * self.ports + p;
        (i < self.count).then_some(i)
    }
}

/// A set of flag bits, one per flow (which flows have been seen).
#[derive(Debug, Clone)]
pub struct FlowBits {
    words: Vec<u64>,
    set: u32,
    n: u32,
}

impl FlowBits {
    /// All clear, for `n` flows.
    pub fn new(n: u32) -> FlowBits {
        FlowBits { words: vec![0; (n as usize).div_ceil(64)], set: 0, n }
    }

    /// Sets bit `i`; true if it was clear.
    #[inline]
    pub fn insert(&mut self, i: u32) -> bool {
        if i >= self.n {
            return false;
        }
        let Some(w) = self.words.get_mut((i / 64) as usize) else { return false };
        let b = 1u64 << (i % 64);
        if *w & b != 0 {
            return false;
        }
        *w |= b;
        self.set += 1;
        true
    }

    /// Whether bit `i` is set.
    #[inline]
    pub fn contains(&self, i: u32) -> bool {
        self.words.get((i / 64) as usize).is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// How many bits are set.
    pub fn count(&self) -> u32 {
        self.set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_round_trip() {
        let s = FlowSpace::new(Ipv4Addr::new(198, 18, 1, 0), 1024, 1000, 2500).unwrap();
        assert_eq!(s.addresses(), 3);
        for i in [0, 1, 999, 1000, 2499] {
            let (ip, port) = s.endpoint(i);
            assert_eq!(s.index(ip, port), Some(i));
        }
        assert_eq!(s.endpoint(0), (u32::from(Ipv4Addr::new(198, 18, 1, 0)), 1024));
        assert_eq!(s.endpoint(1001), (u32::from(Ipv4Addr::new(198, 18, 1, 1)), 1025));
        // Outside: next port, next address past the end, address below base.
        let base = u32::from(Ipv4Addr::new(198, 18, 1, 0));
        assert_eq!(s.index(base, 2024), None);
        assert_eq!(s.index(base + 2, 1524), None);
        assert_eq!(s.index(base + 2, 1523), Some(2499));
        assert_eq!(s.index(base - 1, 1024), None);
        assert_eq!(s.index(base, 1023), None);
    }

    #[test]
    fn bad_spaces_are_refused() {
        let b = Ipv4Addr::new(10, 0, 0, 0);
        assert_eq!(FlowSpace::new(b, 1, 1, 0), Err(FlowSpaceError::Empty));
        assert!(matches!(FlowSpace::new(b, 0, 10, 10), Err(FlowSpaceError::BadPorts { .. })));
        assert!(matches!(FlowSpace::new(b, 60000, 6000, 10), Err(FlowSpaceError::BadPorts { .. })));
        assert!(matches!(
            FlowSpace::new(Ipv4Addr::new(255, 255, 255, 250), 1, 1, 10),
            Err(FlowSpaceError::TooManyAddresses { .. })
        ));
    }

    #[test]
    fn bits_count_once() {
        let mut b = FlowBits::new(130);
        assert!(b.insert(129));
        assert!(!b.insert(129));
        assert!(b.insert(0));
        assert!(!b.insert(130)); // out of range: ignored
        assert!(b.contains(129) && !b.contains(1));
        assert_eq!(b.count(), 2);
    }
}
