//! `Mbuf`: one owned packet buffer.

use std::fmt;
use std::ptr::NonNull;

use dpdk_sys::rte_mbuf;

/// Why an [`Mbuf`] length operation was refused (the mbuf is unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MbufError {
    /// Not enough room after the data to append.
    #[error("cannot append {requested} bytes: only {available} bytes of tailroom")]
    NoTailroom {
        /// Bytes asked for.
        requested: usize,
        /// Tailroom there is.
        available: usize,
    },
    /// Not enough room before the data to prepend.
    #[error("cannot prepend {requested} bytes: only {available} bytes of headroom")]
    NoHeadroom {
        /// Bytes asked for.
        requested: usize,
        /// Headroom there is.
        available: usize,
    },
    /// The data is shorter than the bytes to remove.
    #[error("cannot remove {requested} bytes from a {len}-byte packet")]
    TooShort {
        /// Bytes asked to remove.
        requested: usize,
        /// Data length there is.
        len: usize,
    },
}

/// One packet buffer (`struct rte_mbuf`), owned: dropping it returns it to
/// its pool (`rte_pktmbuf_free`).
///
/// `Mbuf` is `Send` (it can be handed to another lcore, e.g. through a
/// [`ring`](crate::ring)) but not `Sync` or `Clone`: one owner at a time.
///
/// The data accessors see the first segment; this layer configures ports for
/// single-segment packets, where the first segment is the whole packet.
#[repr(transparent)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an Mbuf is the unique owner of its rte_mbuf; DPDK allows freeing an
// mbuf from any thread (mempool puts are multi-producer safe), and nothing in
// the mbuf is tied to the allocating thread.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid, non-null `rte_mbuf` from a live pool, the
    /// caller must own it (nobody else will free it or access it while this
    /// `Mbuf` lives) and its reference count must be 1.
    pub unsafe fn from_raw(ptr: *mut rte_mbuf) -> Mbuf {
        debug_assert!(!ptr.is_null());
        // SAFETY: the caller guarantees ptr is non-null.
        Mbuf(unsafe { NonNull::new_unchecked(ptr) })
    }

    /// Gives up ownership: the caller must eventually free the mbuf (e.g. by
    /// handing it to DPDK or rebuilding an `Mbuf` with [`Mbuf::from_raw`]).
    pub fn into_raw(self) -> *mut rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// The raw pointer, still owned by `self`.
    pub fn as_ptr(&self) -> *mut rte_mbuf {
        self.0.as_ptr()
    }

    #[inline]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: self owns a valid mbuf for its whole life.
        unsafe { self.0.as_ref() }
    }

    /// The packet bytes (first segment).
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies within the mbuf's
        // data buffer (DPDK invariant), and self owns the mbuf, so nobody
        // writes it while the shared borrow lives.
        unsafe {
            std::slice::from_raw_parts(m.buf_addr.cast::<u8>().add(usize::from(m.data_off)), usize::from(m.data_len))
        }
    }

    /// The packet bytes (first segment), writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw();
        let (addr, off, len) = (m.buf_addr, m.data_off, m.data_len);
        // SAFETY: as in data(); &mut self makes the borrow exclusive and the
        // mbuf has a single reference (from_raw's contract, allocations).
        unsafe { std::slice::from_raw_parts_mut(addr.cast::<u8>().add(usize::from(off)), usize::from(len)) }
    }

    /// Length of the data (first segment's `data_len`).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.raw().data_len)
    }

    /// Whether the data is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of the whole packet over all segments (`pkt_len`).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Number of segments.
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Bytes free before the data.
    pub fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    /// Bytes free after the data (in the last segment).
    pub fn tailroom(&self) -> usize {
        // SAFETY: self owns a valid mbuf; the call only reads it.
        usize::from(unsafe { dpdk_sys::dpdk_shim_pktmbuf_tailroom(self.0.as_ptr()) })
    }

    /// Grows the data by `n` bytes at the end and returns the new bytes (their
    /// content is whatever was in the buffer), or `None` without change if the
    /// tailroom is too small.
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: self owns a valid mbuf exclusively (&mut self).
        let p = unsafe { dpdk_sys::dpdk_shim_pktmbuf_append(self.0.as_ptr(), n16) };
        if p.is_null() {
            return None;
        }
        // SAFETY: on success p points to n bytes inside the buffer that now
        // belong to the data; the borrow is tied to &mut self.
        Some(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Appends a copy of `bytes` at the end of the data.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), MbufError> {
        let available = self.tailroom();
        match self.append(bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(MbufError::NoTailroom { requested: bytes.len(), available }),
        }
    }

    /// Grows the data by `n` bytes at the front (into the headroom) and
    /// returns them, or `None` without change if the headroom is too small.
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: self owns a valid mbuf exclusively (&mut self).
        let p = unsafe { dpdk_sys::dpdk_shim_pktmbuf_prepend(self.0.as_ptr(), n16) };
        if p.is_null() {
            return None;
        }
        // SAFETY: on success p points to the n new bytes at the front of the
        // data; the borrow is tied to &mut self.
        Some(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Removes `n` bytes from the front of the data (e.g. strips a header).
    pub fn adj(&mut self, n: usize) -> Result<(), MbufError> {
        let err = MbufError::TooShort { requested: n, len: self.len() };
        let n16 = u16::try_from(n).map_err(|_| err)?;
        // SAFETY: self owns a valid mbuf exclusively (&mut self).
        let p = unsafe { dpdk_sys::dpdk_shim_pktmbuf_adj(self.0.as_ptr(), n16) };
        if p.is_null() {
            Err(err)
        } else {
            Ok(())
        }
    }

    /// Removes `n` bytes from the end of the data.
    pub fn trim(&mut self, n: usize) -> Result<(), MbufError> {
        let err = MbufError::TooShort { requested: n, len: self.len() };
        let n16 = u16::try_from(n).map_err(|_| err)?;
        // SAFETY: self owns a valid mbuf exclusively (&mut self).
        let ret = unsafe { dpdk_sys::dpdk_shim_pktmbuf_trim(self.0.as_ptr(), n16) };
        if ret == 0 {
            Ok(())
        } else {
            Err(err)
        }
    }

    /// Shortens the data to `len` bytes; no-op if it is not longer.
    pub fn truncate(&mut self, len: usize) {
        let cur = self.len();
        if cur > len {
            // Cannot fail: cur - len <= cur.
            let _ = self.trim(cur - len);
        }
    }

    /// Resets the mbuf to its freshly allocated state: empty data at the
    /// default headroom, no offload flags (`rte_pktmbuf_reset`).
    pub fn reset(&mut self) {
        // SAFETY: self owns a valid mbuf exclusively (&mut self).
        unsafe { dpdk_sys::dpdk_shim_pktmbuf_reset(self.0.as_ptr()) }
    }

    /// The port the packet was received on (`mbuf->port`), as set by the
    /// driver; `u16::MAX` if none did (fresh mbufs, and vdevs such as
    /// `net_ring` that pass mbufs through untouched).
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The RSS hash the NIC computed, if it delivered one
    /// (`RTE_MBUF_F_RX_RSS_HASH`).
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        if m.ol_flags & u64::from(dpdk_sys::RTE_MBUF_F_RX_RSS_HASH) == 0 {
            return None;
        }
        // SAFETY: with RTE_MBUF_F_RX_RSS_HASH set, the hash union holds `rss`
        // (any bit pattern is a valid u32 anyway).
        Some(unsafe { m.__bindgen_anon_2.hash.rss })
    }

    /// The reference count (1 for an mbuf owned by one `Mbuf`).
    pub fn refcnt(&self) -> u16 {
        // SAFETY: self owns a valid mbuf; the call only reads it.
        unsafe { dpdk_sys::dpdk_shim_mbuf_refcnt_read(self.0.as_ptr()) }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf; after this it is never used again.
        unsafe { dpdk_sys::dpdk_shim_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("ptr", &self.0)
            .field("len", &self.len())
            .field("pkt_len", &self.pkt_len())
            .field("port", &self.port())
            .finish()
    }
}

impl AsRef<[u8]> for Mbuf {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl AsMut<[u8]> for Mbuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
}
