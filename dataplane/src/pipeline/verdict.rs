//! What comes out of the pipeline: the verdict on a received frame, and the frames a worker
//! originates itself.

use std::net::Ipv4Addr;

use crate::counters::DropReason;
use crate::wire::MacAddr;

/// What to do with a frame after [`Worker::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame, trimmed to `len` bytes, out of `port`.
    Forward {
        /// Port index.
        port: u16,
        /// Frame length after rewriting (≤ the received length).
        len: usize,
    },
    /// Pass the unchanged frame to the kernel through the tap of `port`.
    ToHost {
        /// Port index.
        port: u16,
    },
    /// The frame belongs to another worker's flows.
    Handoff {
        /// Worker index.
        worker: u16,
    },
    /// Drop it (already counted).
    Drop(DropReason),
}

/// A frame the worker wants to send that it has no received frame for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// ARP request for `target` from our address on `port`.
    ArpRequest {
        /// Port index.
        port: u16,
        /// Address to resolve.
        target: Ipv4Addr,
    },
    /// A TCP RST to a client whose flow was force-removed.
    Rst {
        /// Port index.
        port: u16,
        /// Our MAC on that port.
        src_mac: MacAddr,
        /// The client's (or its router's) MAC.
        dst_mac: MacAddr,
        /// Source address and port (the VIP side).
        src: (Ipv4Addr, u16),
        /// Destination (the client).
        dst: (Ipv4Addr, u16),
        /// Sequence number the client expects.
        seq: u32,
    },
}

/// Frames to originate, bounded.
#[derive(Debug)]
pub struct Outbox {
    items: Vec<Emit>,
}

impl Outbox {
    /// Room for `capacity` frames between two drains.
    pub fn new(capacity: usize) -> Outbox {
        Outbox { items: Vec::with_capacity(capacity) }
    }

    /// Queues a frame; false (and nothing queued) when full.
    pub fn push(&mut self, e: Emit) -> bool {
        if self.items.len() < self.items.capacity() {
            self.items.push(e);
            true
        } else {
            false
        }
    }

    /// Takes every queued frame.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Emit> {
        self.items.drain(..)
    }

    /// Most frames it holds between two drains.
    pub fn capacity(&self) -> usize {
        self.items.capacity()
    }

    /// Queued frames.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
