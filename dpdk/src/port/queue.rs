//! Queue handles: one owner (lcore) per rx or tx queue.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{PortId, PortShared};
use crate::burst::Burst;

/// The receive side of one port queue. `Send` but not `Clone`: move it to
/// the lcore that polls it; only one handle per queue exists at a time
/// ([`Port::rx_queue`](crate::Port::rx_queue)).
#[derive(Debug)]
pub struct RxQueue {
    pub(super) shared: Arc<PortShared>,
    pub(super) queue: u16,
}

impl RxQueue {
    /// The port.
    pub fn port(&self) -> PortId {
        PortId(self.shared.id)
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `burst.spare()` packets, appended to `burst`; returns
    /// how many arrived (0 if the burst is full or nothing is waiting, or the
    /// port is not started).
    #[inline]
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let (slots, spare) = burst.spare_raw();
        if spare == 0 {
            return 0;
        }
        // SAFETY: slots has `spare` free entries; this handle is the only one
        // for (port, queue) and &mut self keeps it on one thread at a time, as
        // DPDK requires; the port is configured and stays so while the handle
        // lives (it is only stopped/closed when no handle is left).
        let n = unsafe { dpdk_sys::dpdk_shim_eth_rx_burst(self.shared.id, self.queue, slots, spare as u16) };
        // SAFETY: the driver stored n (<= spare) owned mbuf pointers there.
        unsafe { burst.commit(usize::from(n)) };
        usize::from(n)
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.shared.rx_taken[usize::from(self.queue)].store(false, Ordering::Release);
    }
}

/// The transmit side of one port queue. `Send` but not `Clone`, like
/// [`RxQueue`].
#[derive(Debug)]
pub struct TxQueue {
    pub(super) shared: Arc<PortShared>,
    pub(super) queue: u16,
}

impl TxQueue {
    /// The port.
    pub fn port(&self) -> PortId {
        PortId(self.shared.id)
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Hands the mbufs of `burst`, front first, to the device; returns how
    /// many it took. The mbufs it could not take (tx ring full) **stay in
    /// `burst`**, in order, at its front: the caller decides whether to retry
    /// later or drop them ([`Burst::clear`], or use
    /// [`tx_burst_or_drop`](Self::tx_burst_or_drop)).
    #[inline]
    pub fn tx_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let (slots, len) = burst.filled_raw();
        if len == 0 {
            return 0;
        }
        // SAFETY: slots holds len owned mbufs; one handle per (port, queue),
        // used from one thread at a time via &mut self; the port stays
        // configured while the handle lives.
        let n = unsafe { dpdk_sys::dpdk_shim_eth_tx_burst(self.shared.id, self.queue, slots, len as u16) };
        // SAFETY: the driver took ownership of the first n mbufs.
        unsafe { burst.consumed_front(usize::from(n)) };
        usize::from(n)
    }

    /// Like [`tx_burst`](Self::tx_burst), then frees what was not sent.
    /// Returns `(sent, dropped)`.
    #[inline]
    pub fn tx_burst_or_drop<const N: usize>(&mut self, burst: &mut Burst<N>) -> (usize, usize) {
        let sent = self.tx_burst(burst);
        let dropped = burst.len();
        burst.clear();
        (sent, dropped)
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.shared.tx_taken[usize::from(self.queue)].store(false, Ordering::Release);
    }
}
