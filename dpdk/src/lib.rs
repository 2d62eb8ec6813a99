//! Safe layer over DPDK for the appliance's dataplane and pktgen.
//!
//! This crate is the only place in the workspace with `unsafe` DPDK calls.
//! Every `unsafe` block carries a `// SAFETY:` comment; everything exported is
//! safe to use.
//!
//! # Shape
//!
//! * [`Eal`]: the environment abstraction layer, initialised once per process
//!   from command-line style arguments ([`EalArgs`] builds them). Owning an
//!   `Eal` is the proof that DPDK is up; creating pools, rings and ports takes
//!   `&Eal`. It also launches closures on worker lcores ([`Eal::launch`]).
//! * [`Mempool`]: a pool of packet buffers. [`Mbuf`] owns one buffer and frees
//!   it on drop. [`Burst`] is a fixed-capacity batch of mbufs (no heap).
//! * [`Port`]: an ethdev port (PCI NIC or vdev), configured with
//!   [`PortConfig`]. Its queues are handed out once each as [`RxQueue`] /
//!   [`TxQueue`], owned by one lcore at a time.
//! * [`ring`]: single-producer/single-consumer rings moving mbufs between lcores.
//! * [`tsc`] / [`tsc_hz`]: the time-stamp counter.
//!
//! # Ownership rules the types enforce
//!
//! ```compile_fail
//! fn needs_clone<T: Clone>() {}
//! needs_clone::<dpdk::Mbuf>(); // one owner per mbuf
//! ```
//! ```compile_fail
//! fn needs_sync<T: Sync>() {}
//! needs_sync::<dpdk::Mbuf>();
//! ```
//! ```compile_fail
//! fn needs_clone<T: Clone>() {}
//! needs_clone::<dpdk::RxQueue>(); // one lcore per queue
//! ```
//! ```compile_fail
//! fn needs_clone<T: Clone>() {}
//! needs_clone::<dpdk::RingProducer>(); // single producer
//! ```
//! ```compile_fail
//! fn needs_send<T: Send>() {}
//! needs_send::<dpdk::Eal>(); // stays on the main lcore
//! ```
//!
//! # Several DPDK processes on one machine
//!
//! Tests and benchmarks run the dataplane, pktgen and `dpdk-testpmd` side by
//! side. Each DPDK primary process needs its own runtime directory and
//! hugepage files: pass a distinct `--file-prefix=NAME` to each (or
//! `--in-memory`, which keeps no files at all). Otherwise the second process
//! fails in `rte_eal_init` or, worse, maps the first one's memory.
//!
//! # Lifetimes and teardown
//!
//! DPDK objects live in hugepage memory that `rte_eal_cleanup` releases. The
//! crate keeps a count of live pools, rings and ports; dropping the [`Eal`]
//! (or [`Eal::cleanup`]) only calls `rte_eal_cleanup` when none is left, so no
//! safe handle can outlive the memory it points to. A pool that still has
//! mbufs out when it is dropped is leaked on purpose (and logged), for the same
//! reason.
#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod burst;
mod eal;
mod errno;
mod ethdev;
mod lcore;
mod mbuf;
mod mempool;
mod port;
pub mod ring;
pub mod testing;

pub use burst::{Burst, Drain, DEFAULT_BURST};
pub use eal::{CleanupError, Eal, EalArgs, EalError, PortLookupError, PLUGIN_DIR};
pub use errno::Errno;
pub use ethdev::PortId;
pub use lcore::{current_lcore, set_thread_nice, LaunchError, LCORE_PANICKED};
pub use mbuf::{Mbuf, MbufError};
pub use mempool::{AllocError, Mempool, MempoolError, SocketId};
pub use port::{
    Direction, Duplex, LinkStatus, Port, PortConfig, PortConfigError, PortInfo, PortQueryError, PortStateError,
    PortStats, QueueError, RxQueue, TxQueue,
};
pub use ring::{Consumer as RingConsumer, Producer as RingProducer, Ring, RingError};

/// Raw DPDK types that appear in the signatures of the `unsafe` escape hatches
/// ([`Mbuf::from_raw`], [`Mbuf::into_raw`], [`Mempool::as_ptr`]).
pub mod raw {
    pub use dpdk_sys::{rte_mbuf, rte_mempool};
}

/// Reads the CPU time-stamp counter (`rte_rdtsc`). Works before EAL init;
/// convert with [`tsc_hz`].
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: rte_rdtsc only executes `rdtsc`; it touches no memory.
    unsafe { dpdk_sys::dpdk_shim_rdtsc() }
}

/// Time-stamp counter ticks per second as measured by the EAL
/// (`rte_get_tsc_hz`). Returns 0 before [`Eal::init`] has succeeded.
pub fn tsc_hz() -> u64 {
    // SAFETY: rte_get_tsc_hz reads a global the EAL sets at init; before init
    // it is 0. No pointers involved.
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}

/// A spin-wait hint for poll loops (`rte_pause`, the `pause` instruction).
#[inline]
pub fn pause() {
    // SAFETY: rte_pause only executes a CPU pause hint.
    unsafe { dpdk_sys::dpdk_shim_pause() }
}

/// Live DPDK objects (pools, rings, ports): `rte_eal_cleanup` is only called
/// when this is zero.
pub(crate) mod live {
    use std::sync::atomic::{AtomicUsize, Ordering};

    static LIVE: AtomicUsize = AtomicUsize::new(0);

    /// A pool, ring or port was created.
    pub(crate) fn acquire() {
        LIVE.fetch_add(1, Ordering::SeqCst);
    }

    /// A pool, ring or port was released to DPDK.
    pub(crate) fn release() {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }

    /// How many objects are alive.
    pub(crate) fn count() -> usize {
        LIVE.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_move_between_lcores() {
        send::<crate::Mbuf>();
        send::<crate::Burst>();
        send::<crate::RxQueue>();
        send::<crate::TxQueue>();
        send::<crate::RingProducer>();
        send::<crate::RingConsumer>();
        send_sync::<crate::Mempool>();
        send_sync::<crate::Port>();
    }

    #[test]
    fn tsc_advances_without_eal() {
        let a = crate::tsc();
        crate::pause();
        assert!(crate::tsc() >= a);
    }
}
