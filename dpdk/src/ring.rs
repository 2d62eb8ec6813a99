//! Single-producer/single-consumer rings (`rte_ring`) moving [`Mbuf`]s
//! between lcores.
//!
//! [`channel`] creates a ring and returns its two ends. Each end is `Send`
//! but not `Clone`, so exactly one thread produces and one consumes, which is
//! what the ring's SP/SC mode requires. Ownership of an mbuf moves with it.
//!
//! ```no_run
//! # fn demo(eal: &dpdk::Eal, pool: &dpdk::Mempool) -> Result<(), Box<dyn std::error::Error>> {
//! let (mut tx, mut rx) = dpdk::ring::channel(eal, "to_worker1", 1024, dpdk::SocketId::ANY)?;
//! let mut burst: dpdk::Burst = dpdk::Burst::new();
//! pool.alloc_bulk(&mut burst, 8)?;
//! tx.enqueue_burst(&mut burst); // what did not fit stays in `burst`
//! let mut got: dpdk::Burst = dpdk::Burst::new();
//! rx.dequeue_burst(&mut got);
//! # Ok(()) }
//! ```

use std::ffi::{c_void, CString};
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys::{rte_mbuf, rte_ring};

use crate::burst::Burst;
use crate::eal::Eal;
use crate::errno::Errno;
use crate::live;
use crate::mbuf::Mbuf;
use crate::mempool::SocketId;

/// Why [`channel`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// The name is empty, too long, or has a NUL byte.
    #[error("invalid ring name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The capacity is 0 or too large (at most 2^31 - 1 with exact sizing).
    #[error("invalid ring capacity {0}")]
    InvalidCapacity(u32),
    /// `rte_ring_create` failed (`EEXIST`: name in use; `ENOMEM`).
    #[error("cannot create ring {name:?}: {errno}")]
    Create {
        /// The name given.
        name: String,
        /// The error.
        errno: Errno,
    },
}

#[derive(Debug)]
struct RingInner {
    ptr: NonNull<rte_ring>,
    name: String,
}

// SAFETY: the ring is a lock-free queue designed for use across lcores; the
// SP/SC discipline is enforced by the non-Clone Producer/Consumer ends, and
// RingInner itself only frees the ring when both ends are gone.
unsafe impl Send for RingInner {}
// SAFETY: as above; the shared parts (count) are read-only.
unsafe impl Sync for RingInner {}

impl Drop for RingInner {
    fn drop(&mut self) {
        // Both ends are gone: free what is still queued, then the ring.
        let mut burst: Burst<64> = Burst::new();
        loop {
            let n = dequeue_into(self.ptr, &mut burst);
            burst.clear();
            if n == 0 {
                break;
            }
        }
        // SAFETY: the ring was created by channel() and no end uses it any more.
        unsafe { dpdk_sys::rte_ring_free(self.ptr.as_ptr()) };
        live::release();
    }
}

/// The sending end of a ring (one producer).
#[derive(Debug)]
pub struct Producer {
    inner: Arc<RingInner>,
}

/// The receiving end of a ring (one consumer).
#[derive(Debug)]
pub struct Consumer {
    inner: Arc<RingInner>,
}

/// Rings of mbufs between lcores; [`Ring::new`] is [`channel`] under the
/// name DPDK uses.
#[derive(Debug)]
pub struct Ring {
    _private: (),
}

impl Ring {
    /// Creates an SP/SC ring and returns its two ends (see [`channel`]).
    #[allow(clippy::new_ret_no_self)] // a ring is used through its two ends
    pub fn new(eal: &Eal, name: &str, capacity: u32, socket: SocketId) -> Result<(Producer, Consumer), RingError> {
        channel(eal, name, capacity, socket)
    }
}

/// Creates an SP/SC ring named `name` (unique in the process) holding up to
/// `capacity` mbufs, and returns its two ends.
pub fn channel(_eal: &Eal, name: &str, capacity: u32, socket: SocketId) -> Result<(Producer, Consumer), RingError> {
    let invalid = |reason| RingError::InvalidName { name: name.to_owned(), reason };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    // The memzone is "RG_<name>" within RTE_MEMZONE_NAMESIZE (32).
    if name.len() >= dpdk_sys::RTE_RING_NAMESIZE as usize {
        return Err(invalid("too long"));
    }
    let c_name = CString::new(name).map_err(|_| invalid("contains a NUL byte"))?;
    if capacity == 0 || capacity > (1 << 31) - 1 {
        return Err(RingError::InvalidCapacity(capacity));
    }
    let flags = dpdk_sys::RING_F_SP_ENQ | dpdk_sys::RING_F_SC_DEQ | dpdk_sys::RING_F_EXACT_SZ;
    // SAFETY: c_name is a valid C string for the call; the EAL is initialised
    // (we hold &Eal); flags and sizes are validated by DPDK.
    let ptr = unsafe { dpdk_sys::rte_ring_create(c_name.as_ptr(), capacity, socket.0, flags) };
    let Some(ptr) = NonNull::new(ptr) else {
        return Err(RingError::Create { name: name.to_owned(), errno: Errno::last() });
    };
    live::acquire();
    let inner = Arc::new(RingInner { ptr, name: name.to_owned() });
    Ok((Producer { inner: Arc::clone(&inner) }, Consumer { inner }))
}

fn dequeue_into<const N: usize>(ring: NonNull<rte_ring>, burst: &mut Burst<N>) -> usize {
    let (slots, spare) = burst.spare_raw();
    if spare == 0 {
        return 0;
    }
    // SAFETY: slots has `spare` free entries; the caller is the only consumer
    // (Consumer is unique, or both ends are gone in RingInner::drop).
    let n = unsafe {
        dpdk_sys::dpdk_shim_ring_dequeue_burst(
            ring.as_ptr(),
            slots.cast::<*mut c_void>(),
            spare as u32,
            std::ptr::null_mut(),
        )
    } as usize;
    // SAFETY: the ring only ever holds owned mbuf pointers enqueued by the
    // Producer; n <= spare of them were written to the slots.
    unsafe { burst.commit(n) };
    n
}

impl Producer {
    /// Moves mbufs from the front of `burst` into the ring; returns how many.
    /// Those that did not fit (ring full) stay in `burst`, in order.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let (slots, len) = burst.filled_raw();
        if len == 0 {
            return 0;
        }
        // SAFETY: slots holds len owned mbufs; this Producer is the ring's only
        // producer and &mut self keeps it on one thread at a time.
        let n = unsafe {
            dpdk_sys::dpdk_shim_ring_enqueue_burst(
                self.inner.ptr.as_ptr(),
                slots.cast::<*mut c_void>(),
                len as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: the ring now owns the first n mbufs.
        unsafe { burst.consumed_front(n) };
        n
    }

    /// Moves one mbuf into the ring, or gives it back if the ring is full.
    pub fn enqueue(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        let p: *mut rte_mbuf = m.into_raw();
        let obj = p.cast::<c_void>();
        // SAFETY: one owned mbuf pointer; single producer as above.
        let n =
            unsafe { dpdk_sys::dpdk_shim_ring_enqueue_burst(self.inner.ptr.as_ptr(), &obj, 1, std::ptr::null_mut()) };
        if n == 1 {
            Ok(())
        } else {
            // SAFETY: the ring did not take it; we still own it.
            Err(unsafe { Mbuf::from_raw(p) })
        }
    }

    /// Free slots in the ring.
    pub fn free_count(&self) -> usize {
        // SAFETY: the ring is alive; reading its indices is race-tolerant.
        unsafe { dpdk_sys::dpdk_shim_ring_free_count(self.inner.ptr.as_ptr()) as usize }
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

impl Consumer {
    /// Moves up to `burst.spare()` mbufs from the ring into `burst`; returns
    /// how many.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        dequeue_into(self.inner.ptr, burst)
    }

    /// Takes one mbuf from the ring.
    pub fn dequeue(&mut self) -> Option<Mbuf> {
        let mut burst: Burst<1> = Burst::new();
        self.dequeue_burst(&mut burst);
        burst.pop()
    }

    /// Mbufs waiting in the ring.
    pub fn len(&self) -> usize {
        // SAFETY: the ring is alive; reading its indices is race-tolerant.
        unsafe { dpdk_sys::dpdk_shim_ring_count(self.inner.ptr.as_ptr()) as usize }
    }

    /// Whether no mbuf is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}
