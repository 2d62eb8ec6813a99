//! What a worker does with one frame: the sans-IO packet pipeline.
//!
//! [`Worker::process`] takes the frame's bytes (rewritten in place), the port it came in on,
//! the current [`Generation`] and the time, and returns a [`Verdict`]. Packets the worker
//! must originate (ARP requests, RSTs for flows of force-removed bindings) go to its
//! [`Outbox`]. No DPDK, no clock, no allocation after construction.
//!
//! One file a path, each an `impl Worker` block around the frame context [`Frame`]:
//!
//! | file | what |
//! |---|---|
//! | `worker.rs` | construction, the entry points (`process`, `prepare_burst`, `process_prepared`) and the dispatch by ethertype and destination |
//! | `arp.rs` | **ARP**: requests for a port address or a VIP are answered in place; senders on a port's subnet are learned; replies to us also go to the kernel (tap) so its sockets resolve too |
//! | `icmp.rs` | **ICMP echo** to a VIP or a port address is answered in place |
//! | `forward.rs` | **To a VIP** (client → server): TCP/UDP matched against the flow table; a new flow passes admission control (the service's drop fraction, a fresh random draw per SYN so a retry has a new chance), picks a binding through Maglev and is remembered in both directions; IPv4 fragments to a VIP are dropped and counted (no reassembly) |
//! | `reverse.rs` | **From a real server** (server → client): matched by the flow's reverse key, including replies to source-NATed flows arriving at a port address |
//! | `translate.rs` | the common tail of both directions: destination/source NAT, TTL, MACs, per-binding counters |
//! | `port_addr.rs` | **To a port address** and multicast/broadcast: the exception path to the kernel through the port's tap (beacons included) |
//! | `flow.rs` | the flow record ([`FlowState`]) and the bookkeeping when flows end |
//! | `tcp_state.rs` | the TCP flow-state machine ([`TcpState`], [`next_tcp_state`]) and its timeouts |
//! | `verdict.rs` | what comes out: [`Verdict`], [`Emit`], [`Outbox`] |
//! | `maintain.rs` | between bursts: adopting a generation, purging force-removed flows, the expiry sweep |
//! | `dump.rs`, `neigh.rs`, `snat.rs` | the Sessions listing, the neighbour cache, source-NAT ports |
//!
//! A new protocol path (IPv6, L7) is a new file with its `impl Worker` block, called from
//! the dispatch in `worker.rs`.
//!
//! With several workers each owns the flows of the clients that hash to it (the SNAT port
//! encodes its owner); a frame that lands on another worker is handed off ([`Verdict::Handoff`]).

mod arp;
pub mod dump;
mod flow;
mod forward;
mod icmp;
mod maintain;
pub mod neigh;
mod port_addr;
mod reverse;
pub mod snat;
mod tcp_state;
mod translate;
mod verdict;
mod worker;

use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use crate::config::TimeoutsNs;
use crate::counters::WorkerCounters;
use crate::generation::Generation;
use crate::lb::flows::{FlowId, FlowTable, KeyHash};
use crate::wire::{MacAddr, Parsed, WireError};
use neigh::NeighborCache;
use snat::SnatPorts;

pub use flow::FlowState;
pub use maintain::{SWEEP_MAX, SWEEP_PERIOD_NS};
pub use tcp_state::{next_tcp_state, TcpState};
pub use verdict::{Emit, Outbox, Verdict};

/// One frame on its way through the pipeline: what every path needs besides the worker.
struct Frame<'a> {
    /// The forwarding state in force.
    gen: &'a Generation,
    /// Now (ns).
    now: u64,
    /// Port the frame came in on.
    in_port: u16,
    /// The frame's bytes, rewritten in place.
    bytes: &'a mut [u8],
    /// Its parse.
    parsed: &'a Parsed,
}

/// Preallocated sizes of a worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// This worker's index.
    pub index: u16,
    /// Number of workers.
    pub workers: u16,
    /// Flow-table capacity.
    pub flow_capacity: usize,
    /// Timeouts.
    pub timeouts: TimeoutsNs,
    /// Source-NAT port range.
    pub snat_ports: (u16, u16),
    /// Seed of the admission-control random draws and of the flow index's hash.
    pub seed: u64,
}

/// One worker's state: flows, neighbours, counters.
pub struct Worker {
    cfg: WorkerConfig,
    flows: FlowTable<FlowState>,
    neigh: NeighborCache,
    snat: SnatPorts,
    counters: Arc<WorkerCounters>,
    learned: Arc<ArrayQueue<(u32, MacAddr)>>,
    /// Frames to originate; the I/O layer drains it after every burst.
    pub outbox: Outbox,
    rng: u64,
    /// Signature of the force-removed slots last walked for.
    forced_sig: u64,
    /// Where the walk deleting force-removed flows goes on, while one is under way.
    purge_at: Option<usize>,
    /// Flows found dead by the current purge step (allocated once).
    purge_dead: Vec<FlowId>,
    /// Parses of the burst being processed ([`Worker::prepare_burst`]).
    burst_parsed: [Option<Result<Parsed, WireError>>; MAX_BURST],
    /// Index hashes of that burst's flow keys, for the look-ahead ...
    burst_hashes: [KeyHash; MAX_BURST],
    /// ... how many, and which one frame `i` has (`NO_KEY`: none).
    burst_keys: usize,
    burst_key_of: [u8; MAX_BURST],
}

/// Most frames [`Worker::prepare_burst`] looks ahead over.
pub const MAX_BURST: usize = 32;

#[cfg(test)]
mod tests;
