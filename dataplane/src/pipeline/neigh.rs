//! A worker's neighbour cache: IPv4 → MAC, learned from ARP, bounded, no allocation after
//! creation. The control side merges what every worker learns into each generation.

use crate::wire::MacAddr;

type Map<K, V> = hashbrown::HashMap<K, V, ahash::RandomState>;

#[derive(Debug, Clone, Copy)]
struct Entry {
    mac: Option<MacAddr>,
    /// When we last sent an ARP request for it (ns), to rate-limit requests.
    asked_at: u64,
}

/// Minimum time between two ARP requests for the same address.
pub const ARP_RETRY_NS: u64 = 200_000_000;

/// The cache.
#[derive(Debug)]
pub struct NeighborCache {
    map: Map<u32, Entry>,
    capacity: usize,
}

impl NeighborCache {
    /// A cache of at most `capacity` addresses, allocated now.
    pub fn new(capacity: usize) -> NeighborCache {
        let mut map = Map::default();
        map.reserve(capacity);
        NeighborCache { map, capacity }
    }

    /// The MAC of `ip`, if known.
    #[inline]
    pub fn get(&self, ip: u32) -> Option<MacAddr> {
        self.map.get(&ip)?.mac
    }

    /// Records `ip` at `mac`; returns true when that is news (new or changed).
    pub fn learn(&mut self, ip: u32, mac: MacAddr) -> bool {
        if let Some(e) = self.map.get_mut(&ip) {
            let news = e.mac != Some(mac);
            e.mac = Some(mac);
            return news;
        }
        if self.map.len() >= self.capacity {
            // Full: forget an unresolved entry if there is one, else keep the old ones.
            let victim = self.map.iter().find(|(_, e)| e.mac.is_none()).map(|(k, _)| *k);
            match victim {
                Some(k) => {
                    self.map.remove(&k);
                }
                None => return false,
            }
        }
        self.map.insert(ip, Entry { mac: Some(mac), asked_at: 0 });
        true
    }

    /// Whether an ARP request for `ip` should go out now (and notes that it does).
    pub fn should_ask(&mut self, ip: u32, now: u64) -> bool {
        if let Some(e) = self.map.get_mut(&ip) {
            if now.saturating_sub(e.asked_at) < ARP_RETRY_NS && e.asked_at != 0 {
                return false;
            }
            e.asked_at = now.max(1);
            return true;
        }
        if self.map.len() >= self.capacity {
            return false;
        }
        self.map.insert(ip, Entry { mac: None, asked_at: now.max(1) });
        true
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn_and_rate_limit() {
        let mut c = NeighborCache::new(2);
        assert!(c.should_ask(1, 1000));
        assert!(!c.should_ask(1, 2000));
        assert!(c.should_ask(1, 1000 + ARP_RETRY_NS));
        assert!(c.learn(1, MacAddr([1; 6])));
        assert!(!c.learn(1, MacAddr([1; 6])));
        assert!(c.learn(1, MacAddr([2; 6])));
        assert_eq!(c.get(1), Some(MacAddr([2; 6])));
        assert!(c.learn(2, MacAddr([3; 6])));
        // Full of resolved entries: a third is refused, nothing grows.
        assert!(!c.learn(3, MacAddr([4; 6])));
        assert!(!c.should_ask(3, 5));
        assert_eq!(c.len(), 2);
    }
}
