//! `Mempool`: a pool of packet buffers.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys::rte_mempool;

use crate::burst::Burst;
use crate::eal::Eal;
use crate::errno::Errno;
use crate::live;
use crate::mbuf::Mbuf;

/// A NUMA socket for memory placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub i32);

impl SocketId {
    /// No NUMA constraint (`SOCKET_ID_ANY`).
    pub const ANY: SocketId = SocketId(dpdk_sys::SOCKET_ID_ANY);

    /// The socket of the calling thread's lcore (`rte_socket_id`); `ANY` on
    /// a non-EAL thread.
    pub fn current() -> SocketId {
        // SAFETY: reads the calling thread's per-lcore socket variable.
        let s = unsafe { dpdk_sys::rte_socket_id() };
        i32::try_from(s).map_or(SocketId::ANY, SocketId)
    }
}

/// Why [`Mempool::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// The name is empty, has a NUL byte, or is too long for DPDK
    /// (at most `RTE_MEMPOOL_NAMESIZE - 1` bytes once prefixed).
    #[error("invalid mempool name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The data room does not fit DPDK's 16-bit buffer length, or the count
    /// is zero.
    #[error("invalid mempool size: {0}")]
    InvalidSize(String),
    /// `rte_pktmbuf_pool_create` failed: `EEXIST` for a name already used in
    /// this process, `ENOMEM` for too few hugepages, `EINVAL` for a cache
    /// size over `RTE_MEMPOOL_CACHE_MAX_SIZE` or over n / 1.5.
    #[error("cannot create mempool {name:?} of {n} mbufs: {errno}")]
    Create {
        /// The name given.
        name: String,
        /// The number of mbufs asked for.
        n: u32,
        /// The error.
        errno: Errno,
    },
}

/// Why [`Mempool::alloc_bulk`] allocated nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The burst has fewer free slots than mbufs asked for.
    #[error("burst has {spare} free slots, {requested} mbufs asked for")]
    NoRoom {
        /// Mbufs asked for.
        requested: usize,
        /// Free slots in the burst.
        spare: usize,
    },
    /// The pool does not have that many free mbufs (all or nothing).
    #[error("mempool exhausted: {requested} mbufs asked for")]
    Exhausted {
        /// Mbufs asked for.
        requested: usize,
    },
}

struct PoolInner {
    ptr: NonNull<rte_mempool>,
    name: String,
    size: u32,
    data_room: u16,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe (default
// ring_mp_mc ops, per-lcore caches indexed by the caller's lcore id), and the
// counts/free functions may be called from any thread.
unsafe impl Send for PoolInner {}
// SAFETY: as above; no method needs exclusive access.
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: ptr is the live pool this PoolInner owns.
        let in_use = unsafe { dpdk_sys::rte_mempool_in_use_count(self.ptr.as_ptr()) };
        if in_use > 0 {
            // Mbufs (or a port's rx ring) still point into the pool: freeing it
            // would be a use-after-free later. Leak it; live count stays up so
            // the EAL is not cleaned up under them either.
            tracing::warn!(pool = %self.name, in_use, "mempool dropped with mbufs in use; leaking it");
            return;
        }
        // SAFETY: no mbuf of the pool is out and no handle remains; freed once.
        unsafe { dpdk_sys::rte_mempool_free(self.ptr.as_ptr()) };
        live::release();
    }
}

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`).
///
/// Cheap to clone (the clones share the pool) and usable from any thread;
/// allocation and free are lock-free, with a per-lcore cache on EAL lcores.
/// The pool is freed when the last clone is dropped, unless mbufs from it
/// are still out, in which case it is leaked (and logged).
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.inner.name)
            .field("size", &self.inner.size)
            .field("available", &self.available())
            .finish()
    }
}

impl Mempool {
    /// Default data room per mbuf: 2048 bytes of data plus the
    /// `RTE_PKTMBUF_HEADROOM` (128) (`RTE_MBUF_DEFAULT_BUF_SIZE`).
    pub const DEFAULT_DATA_ROOM: u16 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

    /// Headroom reserved in front of the data of a fresh mbuf.
    pub const HEADROOM: u16 = dpdk_sys::RTE_PKTMBUF_HEADROOM as u16;

    /// Creates a pool of `n_mbufs` mbufs named `name` (unique in the
    /// process), with a per-lcore cache of `cache_size` (0 for none; at most
    /// 512 and n / 1.5), `data_room` bytes of buffer per mbuf including the
    /// headroom (see [`DEFAULT_DATA_ROOM`](Self::DEFAULT_DATA_ROOM)), on
    /// `socket`.
    ///
    /// A count of 2^q - 1 uses memory best.
    pub fn new(
        _eal: &Eal,
        name: &str,
        n_mbufs: u32,
        cache_size: u32,
        data_room: u16,
        socket: SocketId,
    ) -> Result<Mempool, MempoolError> {
        let invalid = |reason| MempoolError::InvalidName { name: name.to_owned(), reason };
        if name.is_empty() {
            return Err(invalid("empty"));
        }
        // The memzone is named "MP_<name>" within RTE_MEMPOOL_NAMESIZE.
        if name.len() >= dpdk_sys::RTE_MEMPOOL_NAMESIZE as usize {
            return Err(invalid("too long"));
        }
        let c_name = CString::new(name).map_err(|_| invalid("contains a NUL byte"))?;
        if n_mbufs == 0 {
            return Err(MempoolError::InvalidSize("zero mbufs".into()));
        }
        if data_room <= Self::HEADROOM {
            return Err(MempoolError::InvalidSize(format!(
                "data room {data_room} leaves no room after the {}-byte headroom",
                Self::HEADROOM
            )));
        }
        // SAFETY: c_name is a valid C string for the call; the EAL is
        // initialised (we hold &Eal); the other arguments are plain values
        // that DPDK validates.
        let ptr =
            unsafe { dpdk_sys::rte_pktmbuf_pool_create(c_name.as_ptr(), n_mbufs, cache_size, 0, data_room, socket.0) };
        let Some(ptr) = NonNull::new(ptr) else {
            return Err(MempoolError::Create { name: name.to_owned(), n: n_mbufs, errno: Errno::last() });
        };
        live::acquire();
        Ok(Mempool { inner: Arc::new(PoolInner { ptr, name: name.to_owned(), size: n_mbufs, data_room }) })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The number of mbufs in the pool.
    pub fn size(&self) -> u32 {
        self.inner.size
    }

    /// The buffer size of each mbuf, headroom included.
    pub fn data_room(&self) -> u16 {
        self.inner.data_room
    }

    /// Allocates one mbuf (empty data, default headroom), or `None` if the
    /// pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is alive (self holds it).
        let p = unsafe { dpdk_sys::dpdk_shim_pktmbuf_alloc(self.inner.ptr.as_ptr()) };
        // SAFETY: a non-null result is a fresh mbuf with refcnt 1 that we own.
        (!p.is_null()).then(|| unsafe { Mbuf::from_raw(p) })
    }

    /// Allocates `n` mbufs at the end of `burst`, all or nothing.
    pub fn alloc_bulk<const N: usize>(&self, burst: &mut Burst<N>, n: usize) -> Result<(), AllocError> {
        let (slots, spare) = burst.spare_raw();
        if n > spare {
            return Err(AllocError::NoRoom { requested: n, spare });
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: slots points to at least n free slots of the burst; the pool
        // is alive.
        let ret = unsafe { dpdk_sys::dpdk_shim_pktmbuf_alloc_bulk(self.inner.ptr.as_ptr(), slots, n as u32) };
        if ret != 0 {
            return Err(AllocError::Exhausted { requested: n });
        }
        // SAFETY: on success the n slots hold fresh owned mbufs; n <= spare.
        unsafe { burst.commit(n) };
        Ok(())
    }

    /// Free mbufs in the pool, per-lcore caches included
    /// (`rte_mempool_avail_count`).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.inner.ptr.as_ptr()) }
    }

    /// Mbufs currently allocated from the pool, including those held by
    /// ports' rx rings (`rte_mempool_in_use_count`).
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.inner.ptr.as_ptr()) }
    }

    /// The raw pool pointer, valid while `self` (or a clone) lives.
    pub fn as_ptr(&self) -> *mut rte_mempool {
        self.inner.ptr.as_ptr()
    }
}
