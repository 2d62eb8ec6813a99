//! `Burst`: a fixed-capacity batch of mbufs, the unit of rx, tx and rings.

use std::fmt;
use std::mem::MaybeUninit;

use dpdk_sys::rte_mbuf;

use crate::mbuf::Mbuf;

/// The default burst capacity (DPDK's customary 32).
pub const DEFAULT_BURST: usize = 32;

/// A fixed-capacity batch of owned [`Mbuf`]s, stored inline (no heap).
///
/// Filled by [`RxQueue::rx_burst`](crate::RxQueue::rx_burst),
/// [`Mempool::alloc_bulk`](crate::Mempool::alloc_bulk) or
/// [`push`](Burst::push); emptied by
/// [`TxQueue::tx_burst`](crate::TxQueue::tx_burst) (which leaves what it
/// could not send), [`drain`](Burst::drain) or [`clear`](Burst::clear).
/// Dropping a burst frees the mbufs in it.
pub struct Burst<const N: usize = DEFAULT_BURST> {
    len: usize,
    slots: [MaybeUninit<Mbuf>; N],
}

impl<const N: usize> Burst<N> {
    /// An empty burst.
    pub const fn new() -> Self {
        Burst { len: 0, slots: [const { MaybeUninit::uninit() }; N] }
    }

    /// The capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of mbufs held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no mbuf.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it is at capacity.
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Free slots left.
    pub fn spare(&self) -> usize {
        N - self.len
    }

    /// Adds an mbuf at the end; gives it back if the burst is full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` (the old last) was initialised and is now outside
        // the live range, so it is read out exactly once.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// The mbufs as a slice.
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots[..len] are initialised; MaybeUninit<Mbuf> has Mbuf's
        // layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// The mbufs as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Iterates over the mbufs.
    pub fn iter(&self) -> std::slice::Iter<'_, Mbuf> {
        self.as_slice().iter()
    }

    /// Iterates mutably over the mbufs.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Mbuf> {
        self.as_mut_slice().iter_mut()
    }

    /// Removes every mbuf, yielding them in order. Those not consumed when the
    /// iterator is dropped are freed.
    pub fn drain(&mut self) -> Drain<'_, N> {
        let end = self.len;
        // If the Drain is leaked the mbufs leak too, but are never freed twice.
        self.len = 0;
        Drain { burst: self, pos: 0, end }
    }

    /// Keeps the mbufs for which `keep` returns true (in order) and frees the
    /// others.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut Mbuf) -> bool) {
        let len = self.len;
        self.len = 0;
        for i in 0..len {
            // SAFETY: slot i < old len is initialised and read exactly once;
            // len is 0 meanwhile so a panic in `keep` cannot double-free.
            let mut m = unsafe { self.slots[i].assume_init_read() };
            if keep(&mut m) {
                self.slots[self.len].write(m);
                self.len += 1;
            }
        }
    }

    /// Frees every mbuf (`rte_pktmbuf_free_bulk`).
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        let n = self.len;
        self.len = 0;
        // SAFETY: slots[..n] hold n owned, initialised mbufs (pointer-sized,
        // transparent), now outside the live range, so freed exactly once.
        unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr().cast::<*mut rte_mbuf>(), n as u32) }
    }

    /// Raw view of the free slots for DPDK to fill: pointer to the first free
    /// slot and how many there are (capped to `u16::MAX`).
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut rte_mbuf, usize) {
        // SAFETY: len <= N, so the pointer stays within (or one past) slots.
        let p = unsafe { self.slots.as_mut_ptr().add(self.len) }.cast::<*mut rte_mbuf>();
        (p, (N - self.len).min(usize::from(u16::MAX)))
    }

    /// Marks `n` more slots, filled through [`spare_raw`](Self::spare_raw),
    /// as holding owned mbufs.
    ///
    /// # Safety
    ///
    /// The `n` slots after the current length must hold valid, non-null,
    /// owned mbuf pointers, and `len + n <= N`.
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= N);
        self.len += n;
    }

    /// Raw view of the held mbufs for DPDK to consume from the front:
    /// pointer and count (capped to `u16::MAX`).
    pub(crate) fn filled_raw(&mut self) -> (*mut *mut rte_mbuf, usize) {
        (self.slots.as_mut_ptr().cast::<*mut rte_mbuf>(), self.len.min(usize::from(u16::MAX)))
    }

    /// Forgets the first `n` mbufs (DPDK took ownership of them) and moves
    /// the rest to the front, keeping their order.
    ///
    /// # Safety
    ///
    /// The first `n` mbufs must have been handed over (they will not be
    /// freed here), and `n <= len`.
    pub(crate) unsafe fn consumed_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let rest = self.len - n;
        if n > 0 && rest > 0 {
            let base = self.slots.as_mut_ptr();
            // SAFETY: both ranges lie within slots (n + rest == len <= N);
            // ptr::copy handles the overlap. Slots n.. are moved, not copied:
            // the live range is reset to ..rest below.
            unsafe { std::ptr::copy(base.add(n), base, rest) };
        }
        self.len = rest;
    }
}

impl<const N: usize> Default for Burst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Drop for Burst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<const N: usize> fmt::Debug for Burst<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Burst").field("capacity", &N).field("mbufs", &self.as_slice()).finish()
    }
}

impl<'a, const N: usize> IntoIterator for &'a Burst<N> {
    type Item = &'a Mbuf;
    type IntoIter = std::slice::Iter<'a, Mbuf>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, const N: usize> IntoIterator for &'a mut Burst<N> {
    type Item = &'a mut Mbuf;
    type IntoIter = std::slice::IterMut<'a, Mbuf>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// Iterator returned by [`Burst::drain`]: yields the mbufs by value.
pub struct Drain<'a, const N: usize> {
    burst: &'a mut Burst<N>,
    pos: usize,
    end: usize,
}

impl<const N: usize> Iterator for Drain<'_, N> {
    type Item = Mbuf;

    fn next(&mut self) -> Option<Mbuf> {
        if self.pos == self.end {
            return None;
        }
        // SAFETY: slots[pos..end] are initialised and owned by the Drain
        // (the burst's len is 0); each is read exactly once.
        let m = unsafe { self.burst.slots[self.pos].assume_init_read() };
        self.pos += 1;
        Some(m)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.pos;
        (n, Some(n))
    }
}

impl<const N: usize> ExactSizeIterator for Drain<'_, N> {}

impl<const N: usize> Drop for Drain<'_, N> {
    fn drop(&mut self) {
        let rest = self.end - self.pos;
        if rest > 0 {
            // SAFETY: slots[pos..end] are the not-yet-yielded owned mbufs;
            // they are freed once here and never read again.
            unsafe {
                let p = self.burst.slots.as_mut_ptr().add(self.pos).cast::<*mut rte_mbuf>();
                dpdk_sys::rte_pktmbuf_free_bulk(p, rest as u32);
            }
        }
    }
}
