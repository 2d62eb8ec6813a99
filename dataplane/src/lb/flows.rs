//! The per-worker flow table: fixed capacity, two keys per flow, expiry, no allocation, no locks.
//!
//! # Layout
//!
//! * **Records** — a slab of up to `capacity` records (both keys, expiry deadline, a
//!   generation and the user payload `T`), cache-line aligned, reserved up front and reused via a
//!   free list (a `Vec<u32>` stack, also reserved up front). A [`FlowId`] is a record index plus
//!   the record's generation, so a stale id never reaches a newer flow in the same slot.
//! * **Index** — a power-of-two array of 64-byte buckets with 8 slots each: a 16-bit tag (low bits
//!   of the key's hash, never 0; 0 = empty slot) and a 32-bit reference `record << 1 | direction`.
//!   A key lives in the bucket chosen by its hash's upper bits or, if that is full, in one of the
//!   following buckets (bucketized linear probing). The index is sized for at most 50% load with
//!   both keys of `capacity` flows, so chains past the home bucket are rare and short.
//!
//! A lookup reads one bucket (one cache line), compares 8 tags, and compares the full key only in
//! the record a tag points to — the record it must read anyway to return the payload. So a hit
//! costs two cache lines, one after the other; [`FlowTable::prefetch`] and
//! [`FlowTable::lookup_burst`] overlap those misses across a burst of packets.
//!
//! # Deletion
//!
//! Each bucket carries an *overflow count*: how many keys whose probe sequence passed this bucket
//! live further on. A lookup stops at the first bucket whose count is zero. Insertion increments
//! the counts of the full buckets it passes; removal decrements them again, so the index never
//! accumulates tombstones and never needs a rebuild, however long the churn (the scheme Folly's
//! F14 uses). Counts saturate at `u16::MAX` and then stay there ("maybe more"): lookups stay
//! correct, only longer. Compared with backward-shift deletion this never moves entries (so a
//! reference held during a burst stays valid), and compared with cuckoo hashing an insert touches
//! one or two cache lines and cannot fail while the table has room.
//!
//! # Hashing
//!
//! The 13 bytes of a [`FlowKey`] are packed into two words and mixed with folded 64×64→128-bit
//! multiplies (three multiplies, two of them independent). The index hash is keyed by a
//! per-table seed ([`FlowTable::with_capacity_and_seed`]): give every worker a random seed so
//! that clients cannot aim keys at one bucket. [`flow_hash`] and [`client_hash`] use fixed seeds
//! instead, because their values must agree across workers and restarts.
//!
//! # Expiry
//!
//! A flow is alive while `now < expires_at`. Expired flows are invisible to lookups at once but
//! stay in the table until reaped, and every reaped flow is reported through a callback
//! (`on_expired(id, value)`) so the owner can release what the flow held: by
//! [`FlowTable::sweep`] (incremental, from a wrapping cursor, at most `budget` records per call),
//! and by [`FlowTable::insert`] when a new key clashes with an expired flow or when the table is
//! full and a short scan finds an expired flow to reuse.

use hugemem::FixedVec;
pub use hugemem::Placement;
use thiserror::Error;

use super::key::Seeds;
pub use super::key::{client_hash, flow_hash, FlowKey, FLOW_HASH_SEED};
use index::Bucket;

#[path = "flows_index.rs"]
mod index;
#[path = "flows_sweep.rs"]
mod sweep;

/// The largest capacity [`FlowTable::with_capacity`] grants (larger requests are clamped).
pub const MAX_CAPACITY: usize = 1 << 28;

/// How many records an insert into a full table scans for an expired flow to reuse.
const RECLAIM_SCAN: usize = 16;

/// The index seed of [`FlowTable::with_capacity`].
const DEFAULT_INDEX_SEED: u64 = 0x5eed_f10e_1dc5_0001;

/// The most keys one [`FlowTable::lookup_burst`] step processes together.
const BURST: usize = 32;

/// Which of a flow's two keys matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The forward key: client → VIP, as first received.
    Forward,
    /// The reverse key: the real server's reply, as it will be received.
    Reverse,
}

impl Direction {
    #[inline]
    fn from_bit(bit: u32) -> Self {
        if bit & 1 == 0 {
            Direction::Forward
        } else {
            Direction::Reverse
        }
    }
}

/// A key's index hash in one table, from [`FlowTable::prefetch_bucket`] for
/// [`FlowTable::prefetch_record`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyHash(u64);

/// A handle to one flow of a [`FlowTable`]: record index and generation.
///
/// Ids of removed flows are never valid again (until the 32-bit generation of the same record
/// wraps, after 2^31 reuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId {
    index: u32,
    gen: u32,
}

impl FlowId {
    /// The record index, `< capacity`: usable to index per-flow side arrays.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// Why [`FlowTable::insert`] did not insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum InsertError {
    /// Every record holds a live flow and a short scan found none expired: count a drop.
    #[error("flow table full ({capacity} flows)")]
    Full {
        /// The table's capacity.
        capacity: usize,
    },
    /// One of the new flow's keys already belongs to a live flow (`existing`).
    #[error("{direction:?} key already belongs to live flow {existing:?}")]
    KeyExists {
        /// Which of the two new keys clashed.
        direction: Direction,
        /// The flow that owns it.
        existing: FlowId,
    },
    /// The forward and reverse keys are equal, so the direction of a packet would be ambiguous.
    #[error("forward and reverse keys are equal")]
    SameKey,
}

/// A found flow with mutable access to its payload and deadline
/// ([`FlowTable::lookup_entry`]).
#[derive(Debug)]
pub struct FlowEntry<'a, T> {
    /// The flow.
    pub id: FlowId,
    /// Which key matched.
    pub direction: Direction,
    /// The forward and reverse keys.
    pub keys: &'a [FlowKey; 2],
    /// Expiry deadline (ns); the flow is alive while `now < *expires_at`.
    pub expires_at: &'a mut u64,
    /// The payload.
    pub value: &'a mut T,
}

/// One flow. Cache-line aligned so that a lookup touches one line of it (with payloads of up
/// to 24 bytes); keys first, so that key comparison reads the first line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Record<T> {
    /// `[forward, reverse]`.
    keys: [FlowKey; 2],
    /// Odd while the record holds a flow, even while it is free.
    gen: u32,
    expires_at: u64,
    value: T,
}

/// A per-worker flow table; see the [module docs](self) for the design.
///
/// `T` is the per-flow payload (e.g. the binding index and NAT rewrite). It is `Copy` so that
/// records can be reused without drops; keep it small (≤ 24 bytes keeps records at 64 bytes).
pub struct FlowTable<T: Copy> {
    /// Filled with empty buckets at construction.
    buckets: FixedVec<Bucket>,
    bucket_mask: usize,
    /// Records ever used (the free list recycles them); capacity `capacity`.
    records: FixedVec<Record<T>>,
    free: Vec<u32>,
    capacity: usize,
    len: usize,
    cursor: usize,
    seeds: Seeds,
}

impl<T: Copy> std::fmt::Debug for FlowTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowTable")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("buckets", &self.buckets.len())
            .field("placement", &self.placement())
            .finish_non_exhaustive()
    }
}

impl<T: Copy> FlowTable<T> {
    /// A table for up to `capacity` flows (clamped to [`MAX_CAPACITY`]) with a fixed index seed.
    /// Allocates everything now; see the [module docs](super#memory-per-flow) for the sizes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_seed(capacity, DEFAULT_INDEX_SEED)
    }

    /// Like [`FlowTable::with_capacity`] with the index hash keyed by `seed` (pass a random one
    /// per worker to resist hash flooding; the seed never affects [`flow_hash`]).
    pub fn with_capacity_and_seed(capacity: usize, seed: u64) -> Self {
        Self::with_placement(capacity, seed, Placement::Heap)
    }

    /// Like [`FlowTable::with_capacity_and_seed`], with the records and the index (all but the
    /// free list) on 2 MB hugepages when `want` says so and the kernel's pool has room, else on
    /// the heap; logs which ([`FlowTable::placement`] tells too).
    ///
    /// Random lookups in a table of 100+ MB on 4 KB pages miss the TLB on most packets; on
    /// hugepages the whole table fits in the second-level TLB.
    pub fn with_placement(capacity: usize, seed: u64, want: Placement) -> Self {
        let capacity = capacity.min(MAX_CAPACITY);
        // 2·capacity keys in 8-slot buckets at ≤ 50% load: capacity/2 buckets.
        let nbuckets = capacity.div_ceil(2).max(1).next_power_of_two();
        let arrays = match want {
            Placement::Heap => None,
            Placement::Hugepages => match (FixedVec::on_hugepages(nbuckets), FixedVec::on_hugepages(capacity)) {
                (Ok(b), Ok(r)) => Some((b, r)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(capacity, error = %e, "flow table: no hugepages, falling back to the heap");
                    None
                }
            },
        };
        let (mut buckets, records) =
            arrays.unwrap_or_else(|| (FixedVec::on_heap(nbuckets), FixedVec::on_heap(capacity)));
        buckets.fill(Bucket::EMPTY);
        let (placement, mib) = (records.placement(), (buckets.bytes() + records.bytes()) >> 20);
        if want == Placement::Hugepages {
            tracing::info!(capacity, mib, %placement, "flow table allocated");
        } else {
            tracing::debug!(capacity, mib, %placement, "flow table allocated");
        }
        FlowTable {
            buckets,
            bucket_mask: nbuckets - 1,
            records,
            free: Vec::with_capacity(capacity),
            capacity,
            len: 0,
            cursor: 0,
            seeds: Seeds::new(seed),
        }
    }

    /// The most flows the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Flows in the table, including expired ones not reaped yet.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no flow.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated by the table (records, index and free list; whole hugepages when on
    /// hugepages).
    pub fn memory_bytes(&self) -> usize {
        self.buckets.bytes() + self.records.bytes() + self.free.capacity() * std::mem::size_of::<u32>()
    }

    /// Where the records and the index live.
    pub fn placement(&self) -> Placement {
        self.records.placement()
    }

    #[inline]
    fn id_of(&self, index: usize) -> FlowId {
        FlowId { index: index as u32, gen: self.records[index].gen }
    }

    /// The record index of `id` if it names a flow in the table.
    #[inline]
    fn live(&self, id: FlowId) -> Option<usize> {
        let i = id.index as usize;
        (self.records.get(i)?.gen == id.gen && id.gen & 1 == 1).then_some(i)
    }

    /// Takes record `index` (live) out of the index and onto the free list.
    fn release(&mut self, index: usize) -> (FlowId, T) {
        let rec = self.records[index];
        let r = (index as u32) << 1;
        let (h0, h1) = (self.hash(&rec.keys[0]), self.hash(&rec.keys[1]));
        // Overlap the cache misses of the two buckets.
        std::hint::black_box((self.buckets[self.home(h0)].tags[0], self.buckets[self.home(h1)].tags[0]));
        self.unlink(h0, r);
        self.unlink(h1, r | 1);
        self.records[index].gen = rec.gen.wrapping_add(1);
        self.free.push(index as u32);
        self.len -= 1;
        (FlowId { index: index as u32, gen: rec.gen }, rec.value)
    }

    /// Finds the live flow that `key` belongs to, in either direction.
    ///
    /// An expired flow (`now >= expires_at`) is treated as absent; it stays in the table until
    /// [`FlowTable::sweep`] or [`FlowTable::insert`] reaps and reports it.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, now: u64) -> Option<(FlowId, Direction, &mut T)> {
        self.lookup_entry(key, now).map(|e| (e.id, e.direction, e.value))
    }

    /// Like [`FlowTable::lookup`], also giving the keys and the deadline (e.g. to refresh it).
    #[inline]
    pub fn lookup_entry(&mut self, key: &FlowKey, now: u64) -> Option<FlowEntry<'_, T>> {
        let r = self.find(key, self.hash(key))?;
        let index = (r >> 1) as usize;
        let rec = &mut self.records[index];
        if now >= rec.expires_at {
            return None;
        }
        Some(FlowEntry {
            id: FlowId { index: index as u32, gen: rec.gen },
            direction: Direction::from_bit(r),
            keys: &rec.keys,
            expires_at: &mut rec.expires_at,
            value: &mut rec.value,
        })
    }

    /// Read-only [`FlowTable::lookup`] without the payload.
    #[inline]
    pub fn find_id(&self, key: &FlowKey, now: u64) -> Option<(FlowId, Direction)> {
        let r = self.find(key, self.hash(key))?;
        let index = (r >> 1) as usize;
        let rec = &self.records[index];
        (now < rec.expires_at).then(|| (FlowId { index: index as u32, gen: rec.gen }, Direction::from_bit(r)))
    }

    /// Looks up a burst of keys at once: `out[i]` = [`FlowTable::find_id`]`(keys[i], now)` for
    /// `i < min(keys.len(), out.len())`.
    ///
    /// Faster per key than one-by-one lookups in a large table: it first reads every key's home
    /// bucket, then every candidate record, then resolves, so the cache misses of the whole
    /// burst overlap instead of being paid one after another.
    pub fn lookup_burst(&self, keys: &[FlowKey], now: u64, out: &mut [Option<(FlowId, Direction)>]) {
        let n = keys.len().min(out.len());
        for (keys, out) in keys[..n].chunks(BURST).zip(out[..n].chunks_mut(BURST)) {
            let mut hashes = [0u64; BURST];
            self.warm(keys, &mut hashes);
            // Resolve (now mostly from cache).
            for ((o, k), &h) in out.iter_mut().zip(keys).zip(&hashes) {
                *o = self.find(k, h).and_then(|r| {
                    let index = (r >> 1) as usize;
                    let rec = &self.records[index];
                    (now < rec.expires_at)
                        .then(|| (FlowId { index: index as u32, gen: rec.gen }, Direction::from_bit(r)))
                });
            }
        }
    }

    /// Brings the index buckets and flow records that lookups of `keys` will read into the
    /// cache, overlapping their cache misses; changes nothing.
    ///
    /// Call it once per received burst, before looking the packets up one by one
    /// ([`FlowTable::lookup_entry`]): in a large table each lookup otherwise waits for two
    /// memory accesses in turn (bucket, then record), packet after packet.
    pub fn prefetch(&self, keys: &[FlowKey]) {
        for keys in keys.chunks(BURST) {
            let mut hashes = [0u64; BURST];
            self.warm(keys, &mut hashes);
        }
    }

    /// First stage of a look-ahead spread over a burst: hashes `key`, starts the cache miss of
    /// its home bucket and returns the hash for [`FlowTable::prefetch_record`].
    ///
    /// The pipeline calls it for each frame as it parses the burst, so the bucket misses
    /// overlap the parsing; then, a few frames ahead of the one it processes, the second stage
    /// (by then the bucket has arrived). Changes nothing.
    #[inline]
    pub fn prefetch_bucket(&self, key: &FlowKey) -> KeyHash {
        let h = self.hash(key);
        if let Some(b) = self.buckets.get(self.home(h)) {
            hugemem::prefetch(b);
        }
        KeyHash(h)
    }

    /// Second stage: reads the home bucket of `h` (prefetched by
    /// [`FlowTable::prefetch_bucket`]) and starts the cache miss of the flow record its first
    /// matching tag names. Changes nothing.
    #[inline]
    pub fn prefetch_record(&self, h: KeyHash) {
        let Some(b) = self.buckets.get(self.home(h.0)) else { return };
        let m = b.matches(Self::tag(h.0));
        if m != 0 {
            if let Some(r) = self.records.get((b.refs[m.trailing_zeros() as usize] >> 1) as usize) {
                hugemem::prefetch(r);
            }
        }
    }

    /// Prefetches the home bucket and first candidate record of up to [`BURST`] keys, leaving
    /// their hashes in `hashes`. Prefetch instructions ([`hugemem::prefetch`]) rather than
    /// loads: a load that misses holds up retirement, so a burst's worth of them fills the
    /// CPU's window and the work after them waits; prefetches retire at once and the misses
    /// of the whole burst overlap each other and the work that follows (at 1M flows: 46 → 34
    /// ns per lookup in `cargo bench --bench lb -- prefetch32`).
    fn warm(&self, keys: &[FlowKey], hashes: &mut [u64; BURST]) {
        let keys = &keys[..keys.len().min(BURST)];
        let mut homes = [0usize; BURST];
        // Pass 1: hash every key and start the miss of its home bucket.
        for ((h, b), k) in hashes.iter_mut().zip(&mut homes).zip(keys) {
            *h = self.hash(k);
            *b = self.home(*h);
            hugemem::prefetch(&self.buckets[*b]);
        }
        // Pass 2: as the buckets arrive, start the miss of every key's first candidate record.
        for (&b, &h) in homes.iter().zip(&hashes[..keys.len()]) {
            let b = &self.buckets[b];
            let m = b.matches(Self::tag(h));
            if m != 0 {
                if let Some(r) = self.records.get((b.refs[m.trailing_zeros() as usize] >> 1) as usize) {
                    hugemem::prefetch(r);
                }
            }
        }
    }

    /// Inserts a flow known by `fwd` and `rev`, alive until `expires_at` (ns).
    ///
    /// Expired flows found on the way are reaped and passed to `on_expired` (as by
    /// [`FlowTable::sweep`]): a flow holding `fwd` or `rev` that expired (so the key can be
    /// reused), and, when the table is full, the first expired flow among the next
    /// few (16) records after the sweep cursor. Never allocates and never panics.
    ///
    /// # Errors
    ///
    /// [`InsertError::SameKey`] if `fwd == rev`; [`InsertError::KeyExists`] if a live flow
    /// already owns `fwd` or `rev` (checked in that order; nothing is changed except reaping);
    /// [`InsertError::Full`] if no record is free and none could be reclaimed.
    pub fn insert(
        &mut self,
        fwd: FlowKey,
        rev: FlowKey,
        value: T,
        now: u64,
        expires_at: u64,
        mut on_expired: impl FnMut(FlowId, T),
    ) -> Result<FlowId, InsertError> {
        if fwd == rev {
            return Err(InsertError::SameKey);
        }
        let hf = self.hash(&fwd);
        let hr = self.hash(&rev);
        // Start the cache misses of both home buckets and the record to be used together.
        let next = self.free.last().map_or(0, |&i| i as usize);
        std::hint::black_box((
            self.buckets[self.home(hf)].tags[0],
            self.buckets[self.home(hr)].tags[0],
            self.records.get(next).map(|r| r.gen),
        ));
        for (key, h, direction) in [(&fwd, hf, Direction::Forward), (&rev, hr, Direction::Reverse)] {
            if let Some(r) = self.find(key, h) {
                let index = (r >> 1) as usize;
                if now < self.records[index].expires_at {
                    return Err(InsertError::KeyExists { direction, existing: self.id_of(index) });
                }
                let (id, v) = self.release(index);
                on_expired(id, v);
            }
        }
        let index = match self.free.pop() {
            Some(i) => i,
            // Within the capacity reserved at construction (a free record, gen 0): no allocation.
            None if self.records.push(Record { keys: [fwd, rev], expires_at, gen: 0, value }).is_ok() => {
                (self.records.len() - 1) as u32
            }
            None => {
                if !self.reclaim_one(now, &mut on_expired) {
                    return Err(InsertError::Full { capacity: self.capacity });
                }
                self.free.pop().unwrap_or_default()
            }
        };
        let rec = &mut self.records[index as usize];
        rec.keys = [fwd, rev];
        rec.expires_at = expires_at;
        rec.gen = rec.gen.wrapping_add(1);
        rec.value = value;
        self.link(hf, index << 1);
        self.link(hr, index << 1 | 1);
        self.len += 1;
        Ok(self.id_of(index as usize))
    }

    /// The payload of flow `id` (expired or not), if it is still in the table.
    pub fn get(&self, id: FlowId) -> Option<&T> {
        self.live(id).map(|i| &self.records[i].value)
    }

    /// Mutable [`FlowTable::get`].
    pub fn get_mut(&mut self, id: FlowId) -> Option<&mut T> {
        self.live(id).map(|i| &mut self.records[i].value)
    }

    /// The `[forward, reverse]` keys of flow `id`.
    pub fn keys(&self, id: FlowId) -> Option<[FlowKey; 2]> {
        self.live(id).map(|i| self.records[i].keys)
    }

    /// The deadline of flow `id`.
    pub fn expires_at(&self, id: FlowId) -> Option<u64> {
        self.live(id).map(|i| self.records[i].expires_at)
    }

    /// Sets the deadline of flow `id`; returns false if `id` is not in the table.
    pub fn set_expiry(&mut self, id: FlowId, expires_at: u64) -> bool {
        match self.live(id) {
            Some(i) => {
                self.records[i].expires_at = expires_at;
                true
            }
            None => false,
        }
    }

    /// Removes flow `id` (both keys) and returns its payload; `None` if it is not in the table.
    /// Not reported to any `on_expired` callback.
    pub fn remove(&mut self, id: FlowId) -> Option<T> {
        let i = self.live(id)?;
        Some(self.release(i).1)
    }
}

#[cfg(test)]
#[path = "flows_tests.rs"]
mod tests;
