//! Load balancing: Maglev consistent hashing and the per-worker flow table.
//!
//! Both parts are sans-IO and clock-free: time is passed in as `u64` nanoseconds (`now`,
//! `expires_at`), nothing here allocates on the packet path, and nothing locks.
//!
//! * [`maglev`] — weighted Maglev lookup tables ([`Maglev::build`], [`Maglev::lookup`]). A table is
//!   immutable; a change of a service's backend set takes effect at once through an [`Interim`]
//!   correction of the last table, and the exact table for the new set is built off the change's
//!   path and published after it. [`flow_hash`] is the hash to look it up with.
//! * [`flows`] — [`FlowTable`], one per worker: a fixed-capacity slab of flow records indexed by
//!   both the forward key (client → VIP, as received) and the reverse key (as the real server's
//!   reply will be received), with expiry deadlines, incremental sweeping and no allocation after
//!   construction.
//!
//! # Typical packet path
//!
//! ```
//! use dataplane::lb::{flow_hash, Backend, Direction, FlowKey, FlowTable, Maglev};
//! use std::net::Ipv4Addr;
//!
//! let backends = [
//!     Backend { id: 0, key: 11, weight: 1 },
//!     Backend { id: 1, key: 12, weight: 1 },
//! ];
//! let maglev = Maglev::build(&backends, dataplane::lb::DEFAULT_TABLE_SIZE).unwrap();
//! let mut flows: FlowTable<u32> = FlowTable::with_capacity(1024);
//! let now = 1_000_000_000u64;
//! let timeout = 60_000_000_000u64;
//!
//! let fwd = FlowKey::new(Ipv4Addr::new(10, 0, 0, 2), 40000, Ipv4Addr::new(10, 0, 0, 100), 80, 6);
//! let binding = match flows.lookup(&fwd, now) {
//!     Some((_id, _dir, binding)) => *binding,
//!     None => {
//!         let binding = maglev.lookup(flow_hash(&fwd)).expect("no backend");
//!         // The reply from the real server (here 10.0.1.11:80) back to the client:
//!         let rev = FlowKey::new(Ipv4Addr::new(10, 0, 1, 11), 80, Ipv4Addr::new(10, 0, 0, 2), 40000, 6);
//!         flows
//!             .insert(fwd, rev, binding, now, now + timeout, |_expired, _b| { /* count down */ })
//!             .expect("table full or key clash: count a drop");
//!         binding
//!     }
//! };
//! let rev = FlowKey::new(Ipv4Addr::new(10, 0, 1, 11), 80, Ipv4Addr::new(10, 0, 0, 2), 40000, 6);
//! let (_, dir, b) = flows.lookup(&rev, now).unwrap();
//! assert_eq!((dir, *b), (Direction::Reverse, binding));
//! ```
//!
//! In a table much larger than the CPU caches a lookup waits for two memory accesses in turn
//! (index bucket, then flow record). Call [`FlowTable::prefetch`] with the keys of a whole
//! received burst first: the misses of the burst then overlap, and the lookups that follow hit
//! the cache (≈ 3× faster per packet at 1M flows), or use [`FlowTable::lookup_burst`]. The
//! worker spreads it over the burst instead: [`FlowTable::prefetch_bucket`] for each frame as
//! it is parsed, [`FlowTable::prefetch_record`] a few frames ahead of the one processed.
//!
//! # Memory per flow
//!
//! A [`FlowTable`] of capacity `C` allocates, once:
//! * `C` records of `size_of::<T>() + 40` bytes rounded up to 64 (two 14-byte keys, an 8-byte
//!   deadline, a 4-byte generation, the payload; cache-line aligned) — **64 bytes** for payloads
//!   up to 24 bytes;
//! * the index: `max(1, C/2)` rounded up to a power of two buckets of 64 bytes (8 slots each,
//!   ≤ 50% load with both keys of every flow) — **32 bytes** per flow when `C` is a power of two,
//!   up to 64 otherwise;
//! * a free list of 4 bytes per flow.
//!
//! So ~100 bytes per flow: 1M flows ≈ 100 MiB per worker (`FlowTable::memory_bytes` tells).
//! The dataplane asks for the records and the index on 2 MB hugepages
//! ([`FlowTable::with_placement`], heap fallback, logged): a table this size on 4 KB pages
//! misses the TLB on nearly every lookup.

pub mod flows;
pub mod key;
pub mod maglev;

pub use flows::{
    client_hash, flow_hash, Direction, FlowEntry, FlowId, FlowKey, FlowTable, InsertError, KeyHash, FLOW_HASH_SEED,
    MAX_CAPACITY,
};
pub use maglev::{disruption, is_prime, Backend, Interim, Maglev, MaglevError, DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE};
