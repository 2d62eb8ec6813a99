//! The flow table's index: 64-byte buckets of 8 tagged slots, bucketized linear probing with
//! per-bucket overflow counts, and the hash, find, link and unlink operations over them (see
//! the [`flows`](super) module docs, sections *Layout* and *Deletion*).

use super::*;

/// Slots per index bucket.
pub(super) const SLOTS: usize = 8;

/// One index bucket: exactly one cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(super) struct Bucket {
    /// 0 = empty slot.
    pub(super) tags: [u16; SLOTS],
    /// `record << 1 | direction`.
    pub(super) refs: [u32; SLOTS],
    /// Keys that probed past this bucket (saturating; `u16::MAX` = unknown, maybe more).
    pub(super) overflow: u16,
}

impl Bucket {
    pub(super) const EMPTY: Bucket = Bucket { tags: [0; SLOTS], refs: [0; SLOTS], overflow: 0 };

    /// Bit `i` set when slot `i` carries `tag`.
    #[inline]
    pub(super) fn matches(&self, tag: u16) -> u32 {
        let mut m = 0u32;
        for (i, &t) in self.tags.iter().enumerate() {
            m |= u32::from(t == tag) << i;
        }
        m
    }
}

impl<T: Copy> FlowTable<T> {
    #[inline]
    pub(super) fn hash(&self, key: &FlowKey) -> u64 {
        let (a, b) = key.words();
        self.seeds.hash(a, b)
    }

    #[inline]
    pub(super) fn home(&self, h: u64) -> usize {
        (h >> 16) as usize & self.bucket_mask
    }

    #[inline]
    pub(super) fn tag(h: u64) -> u16 {
        (h as u16).max(1)
    }

    /// The index reference of `key`, whether its flow is expired or not.
    #[inline]
    pub(super) fn find(&self, key: &FlowKey, h: u64) -> Option<u32> {
        let tag = Self::tag(h);
        let mut i = self.home(h);
        for _ in 0..self.buckets.len() {
            let b = &self.buckets[i];
            let mut m = b.matches(tag);
            while m != 0 {
                let r = b.refs[m.trailing_zeros() as usize];
                m &= m - 1;
                if self.records[(r >> 1) as usize].keys[(r & 1) as usize] == *key {
                    return Some(r);
                }
            }
            if b.overflow == 0 {
                return None;
            }
            i = (i + 1) & self.bucket_mask;
        }
        None
    }

    /// Adds `r` under hash `h`. Cannot fail while the load is ≤ 50%, which capacity guarantees.
    pub(super) fn link(&mut self, h: u64, r: u32) {
        let tag = Self::tag(h);
        let mut i = self.home(h);
        for _ in 0..self.buckets.len() {
            let b = &mut self.buckets[i];
            if let Some(s) = b.tags.iter().position(|&t| t == 0) {
                b.tags[s] = tag;
                b.refs[s] = r;
                return;
            }
            b.overflow = b.overflow.saturating_add(1);
            i = (i + 1) & self.bucket_mask;
        }
        debug_assert!(false, "flow index full");
    }

    /// Removes `r` (present under hash `h`), undoing the overflow counts its insertion added.
    pub(super) fn unlink(&mut self, h: u64, r: u32) {
        let tag = Self::tag(h);
        let mut i = self.home(h);
        for _ in 0..self.buckets.len() {
            let b = &mut self.buckets[i];
            for s in 0..SLOTS {
                if b.tags[s] == tag && b.refs[s] == r {
                    b.tags[s] = 0;
                    return;
                }
            }
            if b.overflow != u16::MAX {
                b.overflow = b.overflow.saturating_sub(1);
            }
            i = (i + 1) & self.bucket_mask;
        }
        debug_assert!(false, "flow index entry missing");
    }
}
