//! Weighted Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
//! Network Load Balancer", NSDI'16, §3.4).
//!
//! A [`Maglev`] is an immutable lookup table of prime size `M` whose entries are backend ids.
//! [`Maglev::lookup`] maps a flow hash to a backend with one multiply and one array load.
//!
//! # Population
//!
//! Every backend with a non-zero weight owns a permutation of the `M` slots, `offset + j·skip (mod M)`,
//! with `offset ∈ [0, M)` and `skip ∈ [1, M)` taken from two independent mixes of [`Backend::key`]
//! (so the permutation depends only on the backend's identity, never on its position in the list).
//! Backends then take turns claiming the next still-empty slot of their permutation until the table
//! is full. Permutations are walked incrementally (`pos += skip; if pos >= M { pos -= M }`): no
//! per-slot hashing and no division in the loop. Occupancy is tracked in a byte map beside the
//! table, and each step tests four consecutive positions of the permutation at once with
//! branch-free arithmetic, which avoids most branch mispredictions while the table
//! is half full.
//!
//! **Weights** use a credit (deficit round-robin) scheme: each round every backend earns `weight`
//! credits and claims one slot per `quantum` credits, where `quantum = ⌊Σweight / n⌋` (at least 1).
//! With equal weights that is exactly one slot per round, i.e. the original Maglev algorithm, and
//! the entry counts of any two backends differ by at most one. With unequal weights shares follow
//! the weights to within about one round's claims (`weight/quantum + 1` entries).
//!
//! **Tail phase.** Walking permutations costs `≈ M·ln M` probes in total and most of them are spent
//! on the last few hundred empty slots. When fewer than `≈ √M/4` slots are left, the build switches to
//! an exactly equivalent computation: for each remaining empty slot `s` the backend's distance to it
//! along its permutation is `(s − pos)·skip⁻¹ mod M`, and the backend claims the nearest one. The
//! result is bit-for-bit the table the plain walk would produce, at a fraction of the probes.
//!
//! Backends are processed in `(key, id)` order, so the same backend set gives the same table
//! whatever order the caller lists them in.
//!
//! # Table size and disruption
//!
//! Removing one of `N` backends moves its own `1/N` of the entries, plus some others: the
//! greedy fill shifts other backends' claims. That excess shrinks only as `M/N` grows. Mean
//! over 40 random backend sets (`M` = table size, bound `1/N + 1%`):
//!
//! | N | M = 1009 | 4019 | 16067 | 32141 | 64271 |
//! |---|---|---|---|---|---|
//! | 3 | 33.7 % | 33.7 % | 33.4 % | 33.4 % | 33.4 % (bound 34.3 %) |
//! | 10 | 12.5 % | 11.1 % | 10.5 % | 10.4 % | 10.3 % (bound 11 %) |
//! | 30 | 7.2 % | 5.3 % | 4.2 % | 3.9 % | 3.7 % (bound 4.3 %) |
//! | 100 | 4.6 % | 4.0 % | 2.3 % | 1.9 % | 1.6 % (bound 2 %) |
//!
//! The mean hides outliers: one removal of ten moves 11.5 % of the flows for some backend
//! sets at M = 32141 (10.4 % at 65537). Hence [`adaptive_size`] gives each backend
//! [`ENTRIES_PER_BACKEND`] = 3000 entries and rounds anything within 4× of the cap up to it,
//! which puts every service with six or more backends at the configured cap (65537 by
//! default, Maglev's own choice). Such a table takes 0.3–0.7 ms to build, too long for the path of a
//! configuration change; see [`Interim`] for how a change takes effect before its table is built.

use std::sync::Arc;

use thiserror::Error;

/// The table size used when the caller has no reason to choose another: the prime `2^16 + 1`.
/// With it the shares of up to ~650 equally weighted backends are within 1% of even.
pub const DEFAULT_TABLE_SIZE: usize = 65_537;

/// The largest table size [`Maglev::build`] accepts (the table uses 4 bytes per entry).
pub const MAX_TABLE_SIZE: usize = 1 << 26;

/// Table sizes [`adaptive_size`] steps through: the smallest prime at or above 251·2^k.
pub const SIZE_STEPS: [usize; 14] =
    [251, 503, 1009, 2011, 4019, 8039, 16067, 32141, 64271, 128519, 257053, 514049, 1_028_099, 2_056_193];

/// Table entries per backend that [`adaptive_size`] aims for. `M ≥ 100·N` keeps every
/// backend's share within about 1% of its weight's share (Eisenbud et al., §3.4), but removing
/// one backend then moves up to 1/N + 2.5% of the flows; 3000 per backend keeps that within
/// 1/N + 0.5% (see the table in the module documentation).
pub const ENTRIES_PER_BACKEND: usize = 3000;

/// The table size for `backends` backends: the smallest step of [`SIZE_STEPS`] with at least
/// [`ENTRIES_PER_BACKEND`] entries per backend, at most `cap` (itself a valid size); a step
/// within 4× of the cap is rounded up to the cap.
///
/// A build costs time proportional to the table size, so a service with one real server does
/// not pay for 65537 entries (nor take 256 KiB per table).
/// The size changes rarely: it grows as soon as it is too small, but shrinks only when it is
/// more than eight times larger than needed. So adding or removing one backend of N keeps the
/// table size, and Maglev's minimal disruption holds; a size change remaps new flows once
/// (established flows stay in the flow table).
pub fn adaptive_size(backends: usize, current: usize, cap: usize) -> usize {
    let need = backends.max(1).saturating_mul(ENTRIES_PER_BACKEND);
    let want = SIZE_STEPS.iter().copied().find(|&s| s >= need).unwrap_or(cap).min(cap);
    let want = if want.saturating_mul(4) >= cap { cap } else { want };
    let want = if want <= backends { cap } else { want };
    if current >= want && current <= cap && current <= want.saturating_mul(8) + 64 && current > backends {
        current
    } else {
        want
    }
}

/// A real server as Maglev sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backend {
    /// What [`Maglev::lookup`] returns for this backend: the caller's binding index.
    pub id: u32,
    /// A stable identity hash of the backend (e.g. of `RIP:rport`). It alone decides the
    /// backend's permutation, so it must not change while the backend exists. It need not be
    /// well mixed: it is mixed again here.
    pub key: u64,
    /// Relative weight. Weight 0 backends get no entries (drained or disabled).
    pub weight: u32,
}

/// Why [`Maglev::build`] refused to build a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MaglevError {
    /// The table size is not a prime number (Maglev permutations need a prime size).
    #[error("Maglev table size {0} is not prime")]
    NotPrime(usize),
    /// The table must have more entries than there are backends.
    #[error("Maglev table size {table_size} must be larger than the number of backends ({backends})")]
    TooManyBackends {
        /// The requested table size.
        table_size: usize,
        /// The number of backends passed in.
        backends: usize,
    },
    /// The table size exceeds [`MAX_TABLE_SIZE`].
    #[error("Maglev table size {0} exceeds the maximum of {MAX_TABLE_SIZE}")]
    TooLarge(usize),
}

/// An immutable, populated Maglev lookup table. Cloning shares the entries (no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maglev {
    /// Backend id per slot; empty when no backend has a non-zero weight.
    table: Arc<[u32]>,
    /// The table size requested at build time (`table.len()` unless the table is empty).
    size: usize,
}

/// Returns whether `n` is prime (deterministic trial division by 6k±1; fine for table sizes).
pub fn is_prime(n: usize) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let mut d = 5usize;
    while d <= n / d {
        if n.is_multiple_of(d) || n.is_multiple_of(d + 2) {
            return false;
        }
        d += 6;
    }
    true
}

/// A 64-bit finalizer with good avalanche (xor-shift-multiply, two rounds).
#[inline]
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^= x >> 32;
    x
}

/// Per-backend population state.
struct Walker {
    id: u32,
    key: u64,
    weight: u64,
    skip: u32,
    /// `2·skip`, `3·skip` and `4·skip` mod M, for probing four positions at a time.
    skip2: u32,
    skip3: u32,
    skip4: u32,
    /// Next position of the permutation to try.
    next: u32,
    credit: u64,
}

impl Maglev {
    /// Builds the lookup table for `backends` with `table_size` entries.
    ///
    /// `table_size` must be prime, larger than `backends.len()` and at most [`MAX_TABLE_SIZE`];
    /// [`DEFAULT_TABLE_SIZE`] suits up to a few hundred backends (use `M > 100·N` for shares
    /// within 1% of the weights). If no backend has a non-zero weight the table is empty and
    /// every lookup returns `None`. Duplicate ids are allowed (they simply share a name).
    pub fn build(backends: &[Backend], table_size: usize) -> Result<Maglev, MaglevError> {
        if table_size > MAX_TABLE_SIZE {
            return Err(MaglevError::TooLarge(table_size));
        }
        if !is_prime(table_size) {
            return Err(MaglevError::NotPrime(table_size));
        }
        if table_size <= backends.len() {
            return Err(MaglevError::TooManyBackends { table_size, backends: backends.len() });
        }
        let m = table_size as u32;
        let mut walkers: Vec<Walker> = backends
            .iter()
            .filter(|b| b.weight > 0)
            .map(|b| {
                let offset = (mix64(b.key ^ 0x243f_6a88_85a3_08d3) % u64::from(m)) as u32;
                let skip = (mix64(b.key ^ 0x1319_8a2e_0370_7344) % u64::from(m - 1)) as u32 + 1;
                Walker {
                    id: b.id,
                    key: b.key,
                    weight: u64::from(b.weight),
                    skip,
                    skip2: mul_mod(skip, 2, m),
                    skip3: mul_mod(skip, 3, m),
                    skip4: mul_mod(skip, 4, m),
                    next: offset,
                    credit: 0,
                }
            })
            .collect();
        if walkers.is_empty() {
            return Ok(Maglev { table: Arc::from(Vec::new()), size: table_size });
        }
        walkers.sort_unstable_by_key(|w| (w.key, w.id));
        let table = populate(&mut walkers, m);
        Ok(Maglev { table: table.into(), size: table_size })
    }

    /// Returns the backend id for a flow hash, or `None` if the table is empty.
    ///
    /// The slot is `⌊hash · M / 2^64⌋` (Lemire's multiply-shift range reduction) rather than
    /// `hash mod M`: one multiply instead of a division. It uses the *high* bits of `hash`, so
    /// pass a well mixed hash such as [`super::flow_hash`].
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<u32> {
        self.table.get(self.slot(hash)).copied()
    }

    /// The slot [`Maglev::lookup`] reads for `hash` (meaningless when the table is empty).
    #[inline]
    pub fn slot(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.table.len() as u128) >> 64) as usize
    }

    /// The table size requested at build time.
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// True when no backend had a non-zero weight (every lookup returns `None`).
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The populated entries (backend ids by slot); empty when [`Maglev::is_empty`].
    pub fn entries(&self) -> &[u32] {
        &self.table
    }

    /// The shared entries (for checking that clones share them).
    pub fn entries_arc(&self) -> Arc<[u32]> {
        self.table.clone()
    }

    /// How many entries belong to backend `id`.
    pub fn entry_count(&self, id: u32) -> usize {
        self.table.iter().filter(|&&e| e == id).count()
    }
}

/// Fraction of entries whose backend differs between two tables (0.0 = identical, 1.0 = all).
///
/// Tables of different sizes, or one empty and one not, count as fully disrupted (1.0); two
/// empty tables as 0.0.
pub fn disruption(old: &Maglev, new: &Maglev) -> f64 {
    match (old.table.len(), new.table.len()) {
        (0, 0) => 0.0,
        (a, b) if a != b => 1.0,
        (n, _) => {
            let changed = old.table.iter().zip(new.table.iter()).filter(|(a, b)| a != b).count();
            changed as f64 / n as f64
        }
    }
}

/// How a service places new flows between a change of its backends and the build of its exact
/// table: the last exact table, corrected for the backends that joined or left since.
///
/// * A backend that left (drained, removed, weight 0) gets no new flow: a flow whose entry names
///   it goes to a live backend chosen uniformly by a second mix of the hash.
/// * A backend that joined takes `1/n` of the new flows at once (`n` live backends), chosen by
///   the hash's low 32 bits, which the table lookup (its high bits) does not use.
///
/// So a change is in effect for the very next new flow, at the cost of an `O(N)` diff instead
/// of an `O(M log M)` build. Flows placed under an interim stay where they are (the flow table
/// keeps them); once the exact table is published, new flows follow Maglev again. The interim
/// ignores weights: a joining backend gets an equal share until its table is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interim {
    /// Ids in the table that must not get new flows (sorted).
    gone: Box<[u32]>,
    /// Live ids not in the table.
    added: Box<[u32]>,
    /// Every live id (weight > 0): `added` first, then the table's remaining ids.
    live: Box<[u32]>,
}

impl Interim {
    /// The correction from a table built for `built` to the backends `now`. `None` when the
    /// table already places flows on exactly the backends of `now` (same ids and keys with a
    /// non-zero weight; changed weights still need a build, but no correction).
    pub fn between(built: &[Backend], now: &[Backend]) -> Option<Interim> {
        let members = |bs: &[Backend]| {
            let mut v: Vec<(u32, u64)> = bs.iter().filter(|b| b.weight > 0).map(|b| (b.id, b.key)).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (old, new) = (members(built), members(now));
        if old == new {
            return None;
        }
        let in_new = |m: &(u32, u64)| new.binary_search(m).is_ok();
        let in_old = |m: &(u32, u64)| old.binary_search(m).is_ok();
        let mut gone: Vec<u32> = old.iter().filter(|m| !in_new(m)).map(|m| m.0).collect();
        gone.sort_unstable();
        gone.dedup();
        let added: Vec<u32> = new.iter().filter(|m| !in_old(m)).map(|m| m.0).collect();
        let kept = new.iter().filter(|m| in_old(m)).map(|m| m.0);
        let live: Vec<u32> = added.iter().copied().chain(kept).collect();
        Some(Interim { gone: gone.into(), added: added.into(), live: live.into() })
    }

    /// The backend for a new flow with this hash (`None` when no backend is live).
    #[inline]
    pub fn lookup(&self, table: &Maglev, hash: u64) -> Option<u32> {
        let n = self.live.len() as u64;
        if n == 0 {
            return None;
        }
        if !self.added.is_empty() {
            let u = (((hash & 0xffff_ffff) * n) >> 32) as usize;
            if u < self.added.len() {
                return Some(self.added[u]);
            }
        }
        match table.lookup(hash) {
            Some(id) if self.gone.binary_search(&id).is_err() => Some(id),
            _ => Some(self.live[(((mix64(hash) >> 32) * n) >> 32) as usize]),
        }
    }

    /// Ids that left since the table was built.
    pub fn gone(&self) -> &[u32] {
        &self.gone
    }

    /// Ids that joined since the table was built.
    pub fn added(&self) -> &[u32] {
        &self.added
    }
}

/// When this many or fewer slots are empty, [`populate`] switches to the tail phase.
fn tail_threshold(m: u32) -> u32 {
    // Walking costs ≈ M/E probes per claim with E slots empty, the tail phase E multiply-mods
    // per claim: equal near E = √M by count. Late probes are cheap (the branch predictor learns
    // "taken"), and measurements put the optimum near √M/4.
    let mut r = 1u32;
    while r.saturating_mul(r) < m {
        r += 1;
    }
    (r / 4).max(1)
}

/// `(a + b) mod m` for `a, b < m`, without a division.
#[inline(always)]
fn add_mod(a: u32, b: u32, m: u32) -> u32 {
    let x = a + b;
    if x >= m {
        x - m
    } else {
        x
    }
}

/// `a·b mod m` (setup only).
fn mul_mod(a: u32, b: u32, m: u32) -> u32 {
    (u64::from(a) * u64::from(b) % u64::from(m)) as u32
}

/// Claims the next empty slot of `w`'s permutation (at least one is empty) and returns it.
///
/// Probes four consecutive permutation positions per step with branch-free arithmetic: while
/// the table fills up, "is this slot taken?" is a coin flip that a branch predictor cannot learn,
/// and one test per step instead of one per position saves most of those mispredictions.
#[inline(always)]
fn claim(w: &Walker, m: u32, taken: &mut [u8]) -> u32 {
    let bit = |taken: &[u8], p: u32| u32::from(taken[p as usize]);
    let mut p0 = w.next;
    loop {
        let p1 = add_mod(p0, w.skip, m);
        let p2 = add_mod(p0, w.skip2, m);
        let p3 = add_mod(p0, w.skip3, m);
        let busy = bit(taken, p0) | bit(taken, p1) << 1 | bit(taken, p2) << 2 | bit(taken, p3) << 3;
        let free = !busy & 0xf;
        if free != 0 {
            // Select the first free position with conditional moves (an indexed array here
            // would go through memory, on the critical path).
            let k = free.trailing_zeros();
            let odd = k & 1 != 0;
            let low = if odd { p1 } else { p0 };
            let high = if odd { p3 } else { p2 };
            let pos = if k & 2 != 0 { high } else { low };
            taken[pos as usize] = 1;
            return pos;
        }
        p0 = add_mod(p0, w.skip4, m);
    }
}

/// Fills a table of `m` slots (`walkers` non-empty, all with weight > 0).
fn populate(walkers: &mut [Walker], m: u32) -> Vec<u32> {
    let n = walkers.len() as u64;
    let total: u64 = walkers.iter().map(|w| w.weight).sum();
    let quantum = (total / n).max(1);
    let mut table = vec![0u32; m as usize];
    let mut taken = vec![0u8; m as usize];
    let tail = tail_threshold(m).min(m);
    let mut empty = m;
    // Phase 1: walk permutations until only `tail` slots are empty. `resume` remembers the walker
    // whose turn was interrupted there (it may still hold credit for further claims).
    let mut resume = None;
    'rounds: while empty > tail {
        for (i, w) in walkers.iter_mut().enumerate() {
            w.credit += w.weight;
            while w.credit >= quantum {
                w.credit -= quantum;
                let pos = claim(w, m, &mut taken);
                table[pos as usize] = w.id;
                w.next = add_mod(pos, w.skip, m);
                empty -= 1;
                if empty == tail {
                    resume = Some(i);
                    break 'rounds;
                }
            }
        }
    }
    // Phase 2 (tail): continue the very same round-robin, but find each claim's slot by ranking
    // the remaining empty slots along the walker's permutation.
    if empty > 0 {
        populate_tail(walkers, m, quantum, resume, &mut table, &taken);
    }
    table
}

/// Modular inverse of `a` modulo prime `m` (`0 < a < m`), by the extended Euclidean algorithm.
fn mod_inverse(a: u32, m: u32) -> u32 {
    let (mut r0, mut r1) = (i64::from(m), i64::from(a));
    let (mut t0, mut t1) = (0i64, 1i64);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(i64::from(m)) as u32
}

/// `x mod m` without a division (Barrett reduction; `mu = ⌊2^64 / m⌋`, `x < 2^52`, `m < 2^26`):
/// the estimated quotient is low by at most one.
#[inline]
fn mod_small(x: u64, m: u64, mu: u64) -> u64 {
    let q = ((u128::from(x) * u128::from(mu)) >> 64) as u64;
    let r = x - q * m;
    if r >= m {
        r - m
    } else {
        r
    }
}

/// Tail phase of [`populate`]: the same claims as walking the permutations, computed by ranking.
///
/// Walker `w` at position `p` reaches slot `s` after `(s − p)·skip⁻¹ mod M` steps, so the empty
/// slot it would find first by walking is the one of least rank.
fn populate_tail(walkers: &mut [Walker], m: u32, quantum: u64, resume: Option<usize>, table: &mut [u32], taken: &[u8]) {
    let free: Vec<u32> = (0..m).filter(|&s| taken[s as usize] == 0).collect();
    let mut free = free;
    let m64 = u64::from(m);
    let mu = u64::MAX / m64;
    let n = walkers.len();
    // Inverses of the skips (0 = not computed yet), computed on a walker's first claim here.
    let mut inv: Vec<u32> = vec![0; n];
    // The interrupted walker finishes its turn without new credit; then round-robin continues.
    let (mut i, mut credit_first) = match resume {
        Some(i) => (i, false),
        None => (0, true),
    };
    while !free.is_empty() {
        let w = &mut walkers[i];
        if credit_first {
            w.credit += w.weight;
        }
        credit_first = true;
        while w.credit >= quantum && !free.is_empty() {
            w.credit -= quantum;
            if inv[i] == 0 {
                inv[i] = mod_inverse(w.skip, m);
            }
            let step = u64::from(inv[i]);
            let pos = w.next;
            let (mut best, mut best_rank) = (0usize, u64::MAX);
            for (k, &s) in free.iter().enumerate() {
                let d = if s >= pos { s - pos } else { s + m - pos };
                let rank = mod_small(u64::from(d) * step, m64, mu);
                if rank < best_rank {
                    best_rank = rank;
                    best = k;
                }
            }
            let s = free.swap_remove(best);
            table[s as usize] = w.id;
            let mut next = s + w.skip;
            if next >= m {
                next -= m;
            }
            w.next = next;
        }
        i += 1;
        if i == n {
            i = 0;
        }
    }
}

#[cfg(test)]
#[path = "maglev_tests.rs"]
mod tests;
