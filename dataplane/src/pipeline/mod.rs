//! What a worker does with one frame: the sans-IO packet pipeline.
//!
//! [`Worker::process`] takes the frame's bytes (rewritten in place), the port it came in on,
//! the current [`Generation`] and the time, and returns a [`Verdict`]. Packets the worker
//! must originate (ARP requests, RSTs for flows of force-removed bindings) go to its
//! [`Outbox`]. No DPDK, no clock, no allocation after construction.
//!
//! Per frame:
//! - **ARP**: requests for a port address or a VIP are answered in place; senders on a port's
//!   subnet are learned; replies to us are also passed to the kernel (tap) so its sockets
//!   resolve too.
//! - **To a VIP**: ICMP echo is answered; TCP/UDP is matched against the flow table; a new
//!   flow passes admission control (the service's drop fraction, a fresh random draw per
//!   SYN so a retry has a new chance), picks a binding through Maglev and is remembered in
//!   both directions; then destination NAT (and source NAT if the binding asks for it).
//!   IPv4 fragments to a VIP are dropped and counted (no reassembly).
//! - **To a port address**: ICMP echo is answered; replies to source-NATed flows are
//!   matched; everything else goes to the kernel through the port's tap (exception path).
//! - **From a real server**: matched by the flow's reverse key and rewritten back to
//!   VIP:vport towards the client, out of the port and to the MAC the client came from.
//! - Multicast and broadcast IPv4 go to the kernel (beacons).
//!
//! With several workers each owns the flows of the clients that hash to it (the SNAT port
//! encodes its owner); a frame that lands on another worker is handed off ([`Verdict::Handoff`]).

pub mod dump;
pub mod neigh;
pub mod snat;

use std::net::Ipv4Addr;
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use crate::config::TimeoutsNs;
use crate::counters::{bump, drop_gauge, DropReason, WorkerCounters};
use crate::generation::{Generation, Mac, SlotState, SlotTable};
use crate::lb::flows::{
    client_hash, flow_hash, Direction, FlowId, FlowKey, FlowTable, InsertError, KeyHash, Placement,
};
use crate::nat;
use crate::wire::{self, ethernet::MacAddr, parse, Ipv4Info, TcpFlags, WireError, L3, L4};
use neigh::NeighborCache;
use snat::SnatPorts;

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
        src_mac: Mac,
        /// The client's (or its router's) MAC.
        dst_mac: Mac,
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

/// TCP state of a flow as far as timeouts need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    /// Only the client's SYN seen.
    SynSent,
    /// Traffic both ways (or an unknown flow picked up mid-stream).
    Established,
    /// The client sent a FIN.
    FinClient,
    /// The server sent a FIN.
    FinServer,
    /// Both sent a FIN; the last one is not acknowledged yet.
    FinBoth,
    /// Closed both ways and acknowledged. Kept until its timeout for late segments, but no
    /// longer an active connection: a draining binding does not wait for it.
    Closed,
    /// A RST was seen (over, like `Closed`).
    Reset,
    /// Not TCP.
    Udp,
}

impl TcpState {
    /// The connection is over (closed or reset): it no longer counts as active.
    #[inline]
    pub fn is_over(self) -> bool {
        matches!(self, TcpState::Closed | TcpState::Reset)
    }

    /// Some FIN was seen (closing or closed).
    #[inline]
    pub fn is_closing(self) -> bool {
        matches!(self, TcpState::FinClient | TcpState::FinServer | TcpState::FinBoth | TcpState::Closed)
    }
}

/// What a worker remembers about one flow, beside its two keys.
///
/// 24 bytes, so that a flow record (keys, deadline, this) fits one 64-byte cache line. The
/// addresses are not repeated here: the forward key holds client → VIP, the reverse key
/// real server → client (or → source-NAT address:port).
#[derive(Debug, Clone, Copy)]
pub struct FlowState {
    /// Binding slot (bindings are limited to 65536).
    pub binding: u16,
    /// Low bits of the slot's incarnation when the flow was created (a slot is reused only
    /// after all its flows are gone; this is a second check).
    pub incarnation: u16,
    /// MAC the client's frames come from (client or its router).
    pub client_mac: Mac,
    /// Next hop MAC towards the real server.
    pub server_mac: Mac,
    /// Port the client's frames arrive on (low nibble) and port towards the server (high).
    ports: u8,
    /// TCP state.
    pub tcp: TcpState,
    /// Source-NAT port (0: no source NAT).
    pub snat_port: u16,
    /// Last acknowledgement number the client sent (the server's next sequence number).
    pub client_ack: u32,
}

impl FlowState {
    /// Port index the client's frames arrive on.
    #[inline]
    pub fn client_port(&self) -> u16 {
        u16::from(self.ports & 0x0f)
    }

    /// Port index towards the real server.
    #[inline]
    pub fn server_port(&self) -> u16 {
        u16::from(self.ports >> 4)
    }
}

/// A flow found by a lookup: its state and keys, copied out of the table.
#[derive(Debug, Clone, Copy)]
struct Hit {
    f: FlowState,
    /// Client → VIP.
    fwd: FlowKey,
    /// Real server → client or source-NAT address.
    rev: FlowKey,
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
    learned: Arc<ArrayQueue<(u32, Mac)>>,
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
    burst_parsed: [Option<Result<wire::Parsed, WireError>>; MAX_BURST],
    /// Index hashes of that burst's flow keys, for the look-ahead ...
    burst_hashes: [KeyHash; MAX_BURST],
    /// ... how many, and which one frame `i` has (`NO_KEY`: none).
    burst_keys: usize,
    burst_key_of: [u8; MAX_BURST],
}

/// Most frames [`Worker::prepare_burst`] looks ahead over.
pub const MAX_BURST: usize = 32;

/// How many frames ahead of the one being processed the look-ahead reads the index bucket
/// and starts the flow record's cache miss.
const RECORD_AHEAD: usize = 4;

/// `burst_key_of` of a frame without a flow key.
const NO_KEY: u8 = u8::MAX;

/// The expiry sweep's pace ([`Worker::sweep_budget`]): every flow record visited about once
/// per this many nanoseconds.
pub const SWEEP_PERIOD_NS: u64 = 500_000_000;

/// Most flow records one [`Worker::maintain`] call is given to visit (~10 µs).
pub const SWEEP_MAX: usize = 2048;

/// Flow records the force-remove purge visits per call (about 50 µs of work).
const PURGE_BUDGET: usize = 16 * 1024;
/// ... in steps of this many, so the RSTs of one step fit the outbox.
const PURGE_CHUNK: usize = 1024;

impl Worker {
    /// A worker with everything allocated.
    pub fn new(cfg: WorkerConfig, counters: Arc<WorkerCounters>, learned: Arc<ArrayQueue<(u32, Mac)>>) -> Worker {
        Self::with_flow_placement(cfg, counters, learned, Placement::Heap)
    }

    /// Like [`Worker::new`] with the flow table where `placement` asks: the dataplane puts it
    /// on 2 MB hugepages (falling back to the heap, logged, when the pool is short).
    pub fn with_flow_placement(
        cfg: WorkerConfig,
        counters: Arc<WorkerCounters>,
        learned: Arc<ArrayQueue<(u32, Mac)>>,
        placement: Placement,
    ) -> Worker {
        Worker {
            flows: FlowTable::with_placement(
                cfg.flow_capacity,
                cfg.seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15,
                placement,
            ),
            neigh: NeighborCache::new(4096),
            snat: SnatPorts::new(cfg.snat_ports.0, cfg.snat_ports.1, cfg.index, cfg.workers),
            counters,
            learned,
            outbox: Outbox::new(4096),
            rng: cfg.seed | 1,
            forced_sig: 0,
            purge_at: None,
            purge_dead: Vec::with_capacity(PURGE_CHUNK),
            burst_parsed: [None; MAX_BURST],
            burst_hashes: [KeyHash::default(); MAX_BURST],
            burst_keys: 0,
            burst_key_of: [NO_KEY; MAX_BURST],
            cfg,
        }
    }

    /// This worker's counters.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Flows in the table.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Where the flow table lives.
    pub fn flow_placement(&self) -> Placement {
        self.flows.placement()
    }

    /// Takes up a new generation (call between bursts): acknowledges it and, when bindings
    /// were force-removed, starts deleting their flows with a RST to each TCP client.
    ///
    /// The deletion is a walk over the flow table spread over calls of [`Worker::maintain`]
    /// (and a first step here), so a Force Remove at 1M flows never stalls forwarding for the
    /// whole walk. Until the walk reaches a flow, a packet of it finds its binding gone and is
    /// handled as such; the slot is not reused before all its flows are gone (the reap waits
    /// for the flow gauges).
    pub fn adopt(&mut self, gen: &Generation) {
        if gen.has_force_removed() {
            let sig = forced_signature(&gen.forced);
            if sig != self.forced_sig {
                self.forced_sig = sig;
                self.purge_at = Some(0);
                self.purge_step(gen, PURGE_BUDGET);
            }
        } else {
            self.forced_sig = 0;
        }
        self.counters.generation.store(gen.number, std::sync::atomic::Ordering::Release);
    }

    /// True while flows of force-removed bindings are still being deleted.
    pub fn purging(&self) -> bool {
        self.purge_at.is_some()
    }

    /// Visits up to `budget` flow records of the purge walk; stops early when the outbox is
    /// nearly full (the RSTs go out with the next drain, the walk goes on next time).
    fn purge_step(&mut self, gen: &Generation, budget: usize) {
        let mut left = budget;
        while let Some(from) = self.purge_at {
            if left == 0 || self.outbox.len() + PURGE_CHUNK > self.outbox.capacity() {
                break;
            }
            let chunk = left.min(PURGE_CHUNK);
            left -= chunk;
            let Self { flows, counters, snat, outbox, purge_dead, .. } = self;
            purge_dead.clear();
            let next = flows.scan(from, chunk, |id, keys, _, f| {
                if slot_alive(&gen.bindings, f) {
                    return;
                }
                purge_dead.push(id);
                if f.tcp == TcpState::Udp || f.tcp.is_over() {
                    return;
                }
                let Some(port) = gen.ports.get(f.client_port() as usize) else { return };
                let fwd = keys[0];
                outbox.push(Emit::Rst {
                    port: f.client_port(),
                    src_mac: port.mac,
                    dst_mac: f.client_mac,
                    src: (fwd.dst, fwd.dport),
                    dst: (fwd.src, fwd.sport),
                    seq: f.client_ack,
                });
            });
            for id in purge_dead.drain(..) {
                if let Some(f) = flows.remove(id) {
                    forget(counters, snat, &gen.bindings, &f);
                }
            }
            counters.flows.store(flows.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.purge_at = next;
            if next.is_none() {
                tracing::debug!("flows of force-removed bindings deleted");
            }
        }
    }

    /// How many flow records [`Worker::maintain`] should visit `elapsed_ns` after the last
    /// sweep: the table (counted as at least 64k flows) once per [`SWEEP_PERIOD_NS`], up to 8
    /// times as often as the table fills from half to full, at most [`SWEEP_MAX`] at a time.
    /// Paced by time rather than per burst, so that a busy worker with long-lived flows does
    /// not sweep its table many times a second (each visit of a large table is a cache miss),
    /// while a table filling with short-lived flows (a SYN flood: a flow reaped half a period
    /// after it expired holds its record that much longer) is reaped faster.
    pub fn sweep_budget(&self, elapsed_ns: u64) -> usize {
        let len = self.flows.len();
        let basis = len.max(1 << 16) as u128;
        // Fill in 1/1024ths; from 512 (half full) to 1024 the pace goes from 1x to 8x.
        let fill = (len as u128 * 1024 / self.flows.capacity().max(1) as u128).min(1024);
        let speedup = 1 + fill.saturating_sub(512) * 7 / 512;
        let due = basis * speedup * u128::from(elapsed_ns) / u128::from(SWEEP_PERIOD_NS);
        usize::try_from(due).unwrap_or(usize::MAX).min(SWEEP_MAX)
    }

    /// Expires idle flows: visits at most `budget` flow records. Call between bursts.
    pub fn maintain(&mut self, gen: &Generation, now: u64, budget: usize) {
        self.purge_step(gen, PURGE_BUDGET);
        let Self { flows, counters, snat, .. } = self;
        flows.sweep(now, budget, |_, f| forget(counters, snat, &gen.bindings, &f));
        counters.flows.store(flows.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    #[inline]
    fn random(&mut self) -> u32 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    #[inline]
    fn drop(&self, r: DropReason) -> Verdict {
        self.counters.count_drop(r);
        Verdict::Drop(r)
    }

    /// Processes one frame received on `in_port`, rewriting it in place.
    pub fn process(&mut self, gen: &Generation, now: u64, in_port: u16, frame: &mut [u8]) -> Verdict {
        let parsed = parse(frame);
        self.process_parsed(gen, now, in_port, frame, parsed)
    }

    /// Looks ahead over a burst before it is processed: parses every frame once (kept for
    /// [`Worker::process_prepared`]) and starts the flow-table reads so that their cache misses
    /// overlap the work instead of stalling one packet at a time: each frame's index bucket
    /// as it is parsed, the flow records of the first [`RECORD_AHEAD`] frames after that, and
    /// each further record from [`Worker::process_prepared`], that many frames ahead.
    pub fn prepare_burst<'a>(&mut self, frames: impl Iterator<Item = &'a [u8]>) {
        let mut n = 0;
        for (i, f) in frames.take(MAX_BURST).enumerate() {
            let r = parse(f);
            self.burst_key_of[i] = NO_KEY;
            if let Ok(p) = &r {
                if let Some(ip) = p.ipv4() {
                    if let Some((sport, dport)) = ip.ports() {
                        let key = FlowKey::new(ip.src, sport, ip.dst, dport, ip.protocol);
                        self.burst_hashes[n] = self.flows.prefetch_bucket(&key);
                        self.burst_key_of[i] = n as u8;
                        n += 1;
                    }
                }
            }
            self.burst_parsed[i] = Some(r);
        }
        self.burst_keys = n;
        for &h in &self.burst_hashes[..n.min(RECORD_AHEAD)] {
            self.flows.prefetch_record(h);
        }
    }

    /// Processes frame `i` of the burst given to [`Worker::prepare_burst`] (the same bytes),
    /// using its parse from there.
    pub fn process_prepared(
        &mut self,
        gen: &Generation,
        now: u64,
        in_port: u16,
        i: usize,
        frame: &mut [u8],
    ) -> Verdict {
        let parsed = match self.burst_parsed.get_mut(i).and_then(Option::take) {
            Some(r) => r,
            None => parse(frame),
        };
        if let Some(&k) = self.burst_key_of.get(i) {
            let ahead = usize::from(k) + RECORD_AHEAD;
            if k != NO_KEY && ahead < self.burst_keys {
                self.flows.prefetch_record(self.burst_hashes[ahead]);
            }
        }
        self.process_parsed(gen, now, in_port, frame, parsed)
    }

    fn process_parsed(
        &mut self,
        gen: &Generation,
        now: u64,
        in_port: u16,
        frame: &mut [u8],
        parsed: Result<wire::Parsed, WireError>,
    ) -> Verdict {
        bump(&self.counters.packets, 1);
        let p = match parsed {
            Ok(p) => p,
            Err(e) => return self.drop(wire_drop(e)),
        };
        match p.l3 {
            L3::Arp(a) => self.arp(gen, now, in_port, frame, &p, a),
            L3::Ipv4(ip) => self.ipv4(gen, now, in_port, frame, &p, ip),
            L3::Other => self.drop(DropReason::UnsupportedEthertype),
        }
    }

    fn arp(
        &mut self,
        gen: &Generation,
        _now: u64,
        in_port: u16,
        frame: &mut [u8],
        p: &wire::Parsed,
        a: wire::ArpInfo,
    ) -> Verdict {
        let Some(port) = gen.ports.get(in_port as usize) else { return self.drop(DropReason::NoRoute) };
        let spa = u32::from(a.spa);
        if !a.spa.is_unspecified() && port.addr.contains(a.spa) && a.sha.is_unicast() && self.neigh.learn(spa, a.sha.0)
        {
            // News for the other workers and the control side; if the queue is full the
            // control side learns it from the next ARP.
            let _ = self.learned.push((spa, a.sha.0));
        }
        let tpa = u32::from(a.tpa);
        let ours = tpa == u32::from(port.addr.ip) || gen.is_vip(tpa);
        match a.op {
            1 if ours && a.spa != a.tpa => match nat::build_arp_reply_in_place(frame, p, MacAddr(port.mac)) {
                Ok(()) => Verdict::Forward { port: in_port, len: frame.len() },
                Err(_) => self.drop(DropReason::MalformedArp),
            },
            2 if tpa == u32::from(port.addr.ip) => {
                bump(&self.counters.ports[in_port as usize].to_host, 1);
                Verdict::ToHost { port: in_port }
            }
            _ => self.drop(DropReason::ArpNotForUs),
        }
    }

    fn ipv4(
        &mut self,
        gen: &Generation,
        now: u64,
        in_port: u16,
        frame: &mut [u8],
        p: &wire::Parsed,
        ip: Ipv4Info,
    ) -> Verdict {
        let dst = u32::from(ip.dst);
        if gen.is_vip(dst) {
            return self.for_vip(gen, now, in_port, frame, p, ip);
        }
        if gen.port_with_addr(dst).is_some() {
            return self.for_port_addr(gen, now, in_port, frame, p, ip);
        }
        if ip.dst.is_multicast() || ip.dst.is_broadcast() || is_subnet_broadcast(gen, in_port, ip.dst) {
            bump(&self.counters.ports[in_port as usize].to_host, 1);
            return Verdict::ToHost { port: in_port };
        }
        self.server_side(gen, now, frame, p, ip)
    }

    fn echo_reply(&mut self, in_port: u16, frame: &mut [u8], p: &wire::Parsed) -> Verdict {
        match nat::icmp_echo_reply_in_place(frame, p) {
            Ok(()) => Verdict::Forward { port: in_port, len: frame.len() },
            Err(_) => self.drop(DropReason::IcmpIgnored),
        }
    }

    fn for_vip(
        &mut self,
        gen: &Generation,
        now: u64,
        in_port: u16,
        frame: &mut [u8],
        p: &wire::Parsed,
        ip: Ipv4Info,
    ) -> Verdict {
        if ip.is_fragment {
            return self.drop(DropReason::Fragment);
        }
        let (sport, dport, tcp) = match ip.l4 {
            L4::Tcp(t) => (t.src_port, t.dst_port, Some(t)),
            L4::Udp(u) => (u.src_port, u.dst_port, None),
            L4::Icmp(i) if i.msg_type == 8 && i.code == 0 => return self.echo_reply(in_port, frame, p),
            L4::Icmp(_) => return self.drop(DropReason::IcmpIgnored),
            L4::Fragment => return self.drop(DropReason::Fragment),
            L4::Other => return self.drop(DropReason::UnsupportedProtocol),
        };
        if self.cfg.workers > 1 {
            let owner = (client_hash(ip.src, sport) % u64::from(self.cfg.workers)) as u16;
            if owner != self.cfg.index {
                return Verdict::Handoff { worker: owner };
            }
        }
        if ip.ttl <= 1 {
            return self.drop(DropReason::TtlExceeded);
        }
        let key = FlowKey::new(ip.src, sport, ip.dst, dport, ip.protocol);
        // One table lookup: refresh state and deadline in place, copy the flow out.
        let timeouts = self.cfg.timeouts;
        let mut found = None;
        let mut dead = None;
        let mut stale = None;
        let mut over = false;
        if let Some(e) = self.flows.lookup_entry(&key, now) {
            if e.direction == Direction::Forward {
                if tcp.is_some_and(|t| is_fresh_syn(t.flags)) && syn_starts_anew(&gen.bindings, e.value) {
                    // The 5-tuple of a closed (or dead) flow, reused by a new connection:
                    // the old record goes, the SYN is admitted and placed like any other.
                    stale = Some(e.id);
                } else if slot_alive(&gen.bindings, e.value) {
                    let before = e.value.tcp;
                    client_touch(e.value, tcp);
                    *e.expires_at = now + timeout_for(&timeouts, e.value.tcp);
                    over = !before.is_over() && e.value.tcp.is_over();
                    found = Some(Hit { f: *e.value, fwd: e.keys[0], rev: e.keys[1] });
                } else {
                    dead = Some(e.id);
                }
            }
        }
        if let Some(id) = dead {
            return self.reset_flow(gen, id, in_port, frame, p);
        }
        if let Some(id) = stale {
            let Self { flows, counters, snat, .. } = self;
            if let Some(f) = flows.remove(id) {
                forget(counters, snat, &gen.bindings, &f);
            }
            bump(&counters.reused_tuples, 1);
        }
        if over {
            if let Some(h) = &found {
                connection_over(&self.counters, &gen.bindings, &h.f);
            }
        }
        let Hit { f, rev, .. } = match found {
            Some(h) => h,
            None => match self.new_flow(gen, now, in_port, frame, &key, tcp) {
                Ok(h) => h,
                Err(v) => return v,
            },
        };
        // Towards the real server. The reverse key is real server → client (or → the
        // source-NAT address:port).
        let snat = (f.snat_port != 0).then_some((rev.dst, rev.dport));
        self.forward_natted(
            gen,
            frame,
            p,
            ip,
            &f,
            Some((rev.src, rev.sport)),
            snat,
            f.server_port(),
            f.server_mac,
            true,
        )
    }

    /// The common tail of both directions: rewrite the destination and/or source, decrement
    /// the TTL, set the MACs for `out`, count the packet for the flow's binding and service.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn forward_natted(
        &mut self,
        gen: &Generation,
        frame: &mut [u8],
        p: &wire::Parsed,
        ip: Ipv4Info,
        f: &FlowState,
        dst: Option<(Ipv4Addr, u16)>,
        src: Option<(Ipv4Addr, u16)>,
        out: u16,
        next_hop_mac: Mac,
        inbound: bool,
    ) -> Verdict {
        let Some(out_view) = gen.ports.get(out as usize) else { return self.drop(DropReason::NoRoute) };
        let r = dst
            .map_or(Ok(()), |(a, port)| nat::rewrite_dst(frame, p, a, port))
            .and_then(|()| src.map_or(Ok(()), |(a, port)| nat::rewrite_src(frame, p, a, port)))
            .and_then(|()| nat::decrement_ttl(frame, p).map(|_| ()))
            .and_then(|()| nat::set_macs(frame, MacAddr(out_view.mac), MacAddr(next_hop_mac)));
        if r.is_err() {
            return self.drop(DropReason::MalformedIpv4);
        }
        let bytes = u64::from(ip.total_len);
        let b = &self.counters.bindings[f.binding as usize];
        let s = &self.counters.services[service_of(&gen.bindings, f)];
        let (bp, bb, sp, sb) = if inbound {
            (&b.packets_in, &b.bytes_in, &s.packets_in, &s.bytes_in)
        } else {
            (&b.packets_out, &b.bytes_out, &s.packets_out, &s.bytes_out)
        };
        bump(bp, 1);
        bump(bb, bytes);
        bump(sp, 1);
        bump(sb, bytes);
        Verdict::Forward { port: out, len: frame.len() }
    }

    /// Creates the flow for the first packet of a connection. `Err` carries the verdict
    /// when it cannot be created.
    fn new_flow(
        &mut self,
        gen: &Generation,
        now: u64,
        in_port: u16,
        frame: &[u8],
        key: &FlowKey,
        tcp_info: Option<wire::TcpInfo>,
    ) -> Result<Hit, Verdict> {
        let tcp = tcp_info.map(|t| t.flags);
        let Some(svc) = gen.service(u32::from(key.dst), key.dport, key.proto) else {
            return Err(self.drop(DropReason::NoService));
        };
        let syn = tcp.is_some_and(|f| f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK));
        if let Some(f) = tcp {
            if f.contains(TcpFlags::RST) {
                return Err(self.drop(DropReason::NoFlow));
            }
        }
        let new_connection = tcp.is_none() || syn;
        if new_connection && svc.drop_threshold > 0 && u64::from(self.random()) < svc.drop_threshold {
            bump(&self.counters.services[svc.id as usize].admission_drops, 1);
            return Err(self.drop(DropReason::Admission));
        }
        let Some(bid) = svc.pick(flow_hash(key)) else {
            bump(&self.counters.services[svc.id as usize].no_backend_drops, 1);
            return Err(self.drop(DropReason::NoBackend));
        };
        let slot = gen.bindings[bid as usize];
        let Some(server_mac) = self.neighbor(gen, now, slot.out_port, slot.next_hop) else {
            return Err(self.drop(DropReason::NeighborUnresolved));
        };
        let (snat_ip, snat_port) = if slot.params.source_nat {
            match self.snat.alloc() {
                Some(port) => (gen.ports[slot.out_port as usize].addr.ip, port),
                None => return Err(self.drop(DropReason::SnatExhausted)),
            }
        } else {
            (Ipv4Addr::UNSPECIFIED, 0)
        };
        let (rip, rport) = (slot.key.real.rip, slot.key.real.rport);
        let rev = if snat_port != 0 {
            FlowKey::new(rip, rport, snat_ip, snat_port, key.proto)
        } else {
            FlowKey::new(rip, rport, key.src, key.sport, key.proto)
        };
        let state = match tcp {
            None => TcpState::Udp,
            Some(_) if syn => TcpState::SynSent,
            Some(_) => TcpState::Established,
        };
        let mut client_mac = [0u8; 6];
        client_mac.copy_from_slice(&frame[6..12]);
        let flow = FlowState {
            binding: bid as u16,
            incarnation: slot.incarnation as u16,
            client_mac,
            server_mac,
            ports: (in_port as u8 & 0x0f) | ((slot.out_port as u8 & 0x0f) << 4),
            tcp: state,
            snat_port,
            client_ack: tcp_info.filter(|t| t.flags.contains(TcpFlags::ACK)).map_or(0, |t| t.ack),
        };
        let expires = now + self.timeout(state);
        let Self { flows, counters, snat, .. } = self;
        match flows.insert(*key, rev, flow, now, expires, |_, f| forget(counters, snat, &gen.bindings, &f)) {
            Ok(_) => {
                let b = &counters.bindings[bid as usize];
                bump(&b.new_flows, 1);
                bump(&b.active_flows, 1);
                let s = &counters.services[svc.id as usize];
                bump(&s.new_flows, 1);
                bump(&s.active_flows, 1);
                bump(&counters.flows, 1);
                Ok(Hit { f: flow, fwd: *key, rev })
            }
            Err(e) => {
                if snat_port != 0 {
                    snat.release(snat_port);
                }
                let r = match e {
                    InsertError::Full { .. } => DropReason::FlowTableFull,
                    InsertError::KeyExists { .. } | InsertError::SameKey => DropReason::NoFlow,
                };
                Err(self.drop(r))
            }
        }
    }

    /// The MAC of `next_hop`, asking for it (rate-limited) when unknown.
    fn neighbor(&mut self, gen: &Generation, now: u64, port: u16, next_hop: Ipv4Addr) -> Option<Mac> {
        let ip = u32::from(next_hop);
        if let Some(m) = self.neigh.get(ip) {
            return Some(m);
        }
        if let Some(m) = gen.neighbors.get(&ip) {
            self.neigh.learn(ip, *m);
            return Some(*m);
        }
        if self.neigh.should_ask(ip, now) {
            self.outbox.push(Emit::ArpRequest { port, target: next_hop });
        }
        None
    }

    fn reset_flow(
        &mut self,
        gen: &Generation,
        id: FlowId,
        in_port: u16,
        frame: &mut [u8],
        p: &wire::Parsed,
    ) -> Verdict {
        let Self { flows, counters, snat, .. } = self;
        if let Some(f) = flows.remove(id) {
            forget(counters, snat, &gen.bindings, &f);
        }
        counters.count_drop(DropReason::ForceRemoved);
        let is_tcp = matches!(p.ipv4().map(|i| i.l4), Some(L4::Tcp(_)));
        if is_tcp {
            // The RST goes back the way the segment came (MACs and addresses swapped).
            if let Ok(len) = nat::tcp_rst_in_place(frame, p) {
                return Verdict::Forward { port: in_port, len };
            }
        }
        Verdict::Drop(DropReason::ForceRemoved)
    }

    #[allow(clippy::too_many_arguments)]
    fn for_port_addr(
        &mut self,
        gen: &Generation,
        now: u64,
        in_port: u16,
        frame: &mut [u8],
        p: &wire::Parsed,
        ip: Ipv4Info,
    ) -> Verdict {
        match ip.l4 {
            L4::Icmp(i) if i.msg_type == 8 && i.code == 0 && !ip.is_fragment => {
                return self.echo_reply(in_port, frame, p)
            }
            L4::Tcp(t) if self.snat.in_range(t.dst_port) => {
                if let Some(v) = self.snat_reply(gen, now, frame, p, ip, t.src_port, t.dst_port, Some(t.flags)) {
                    return v;
                }
            }
            L4::Udp(u) if self.snat.in_range(u.dst_port) => {
                if let Some(v) = self.snat_reply(gen, now, frame, p, ip, u.src_port, u.dst_port, None) {
                    return v;
                }
            }
            _ => {}
        }
        bump(&self.counters.ports[in_port as usize].to_host, 1);
        Verdict::ToHost { port: in_port }
    }

    /// A reply to a source-NATed flow, or `None` when it is the kernel's.
    #[allow(clippy::too_many_arguments)]
    fn snat_reply(
        &mut self,
        gen: &Generation,
        now: u64,
        frame: &mut [u8],
        p: &wire::Parsed,
        ip: Ipv4Info,
        sport: u16,
        dport: u16,
        tcp: Option<TcpFlags>,
    ) -> Option<Verdict> {
        if self.cfg.workers > 1 {
            let owner = dport % self.cfg.workers;
            if owner != self.cfg.index {
                return Some(Verdict::Handoff { worker: owner });
            }
        }
        let key = FlowKey::new(ip.src, sport, ip.dst, dport, ip.protocol);
        if !matches!(self.flows.find_id(&key, now), Some((_, Direction::Reverse))) {
            return None;
        }
        Some(self.reverse(gen, now, &key, frame, p, ip, tcp))
    }

    fn server_side(&mut self, gen: &Generation, now: u64, frame: &mut [u8], p: &wire::Parsed, ip: Ipv4Info) -> Verdict {
        if ip.is_fragment {
            return self.drop(DropReason::Fragment);
        }
        let (sport, dport, tcp) = match ip.l4 {
            L4::Tcp(t) => (t.src_port, t.dst_port, Some(t.flags)),
            L4::Udp(u) => (u.src_port, u.dst_port, None),
            _ => return self.drop(DropReason::NoFlow),
        };
        if self.cfg.workers > 1 {
            let owner = (client_hash(ip.dst, dport) % u64::from(self.cfg.workers)) as u16;
            if owner != self.cfg.index {
                return Verdict::Handoff { worker: owner };
            }
        }
        let key = FlowKey::new(ip.src, sport, ip.dst, dport, ip.protocol);
        self.reverse(gen, now, &key, frame, p, ip, tcp)
    }

    /// Server → client: rewrite the source back to VIP:vport (and the destination back to
    /// the client when source-NATed) and send it out where the client came from.
    #[allow(clippy::too_many_arguments)]
    fn reverse(
        &mut self,
        gen: &Generation,
        now: u64,
        key: &FlowKey,
        frame: &mut [u8],
        p: &wire::Parsed,
        ip: Ipv4Info,
        tcp: Option<TcpFlags>,
    ) -> Verdict {
        if ip.ttl <= 1 {
            return self.drop(DropReason::TtlExceeded);
        }
        let timeouts = self.cfg.timeouts;
        let mut found = None;
        let mut dead = None;
        let mut over = false;
        match self.flows.lookup_entry(key, now) {
            Some(e) if e.direction == Direction::Reverse => {
                if slot_alive(&gen.bindings, e.value) {
                    let before = e.value.tcp;
                    e.value.tcp = match tcp {
                        Some(flags) => next_tcp_state(e.value.tcp, flags, true),
                        None => TcpState::Udp,
                    };
                    *e.expires_at = now + timeout_for(&timeouts, e.value.tcp);
                    over = !before.is_over() && e.value.tcp.is_over();
                    found = Some(Hit { f: *e.value, fwd: e.keys[0], rev: e.keys[1] });
                } else {
                    dead = Some(e.id);
                }
            }
            _ => return self.drop(DropReason::NoFlow),
        }
        if let Some(id) = dead {
            let Self { flows, counters, snat, .. } = self;
            if let Some(f) = flows.remove(id) {
                forget(counters, snat, &gen.bindings, &f);
            }
            return self.drop(DropReason::ForceRemoved);
        }
        if over {
            if let Some(h) = &found {
                connection_over(&self.counters, &gen.bindings, &h.f);
            }
        }
        let Some(Hit { f, fwd, .. }) = found else { return self.drop(DropReason::NoFlow) };
        // Back to the client, where it came from. The forward key is client → VIP.
        let unsnat = (f.snat_port != 0).then_some((fwd.src, fwd.sport));
        self.forward_natted(
            gen,
            frame,
            p,
            ip,
            &f,
            unsnat,
            Some((fwd.dst, fwd.dport)),
            f.client_port(),
            f.client_mac,
            false,
        )
    }

    fn timeout(&self, s: TcpState) -> u64 {
        timeout_for(&self.cfg.timeouts, s)
    }
}

/// The idle timeout of a flow in state `s`.
#[inline]
fn timeout_for(t: &TimeoutsNs, s: TcpState) -> u64 {
    match s {
        TcpState::SynSent => t.tcp_syn,
        TcpState::Established => t.tcp_established,
        TcpState::FinClient | TcpState::FinServer | TcpState::FinBoth | TcpState::Closed => t.tcp_closing,
        TcpState::Reset => t.tcp_reset,
        TcpState::Udp => t.udp,
    }
}

/// Client → server segment: TCP state and the client's last acknowledgement.
#[inline]
fn client_touch(f: &mut FlowState, tcp: Option<wire::TcpInfo>) {
    if let Some(t) = tcp {
        f.tcp = next_tcp_state(f.tcp, t.flags, false);
        if t.flags.contains(TcpFlags::ACK) {
            f.client_ack = t.ack;
        }
    }
}

/// A SYN without ACK: the first segment of a connection.
#[inline]
fn is_fresh_syn(flags: TcpFlags) -> bool {
    flags.contains(TcpFlags::SYN) && !flags.intersects(TcpFlags::ACK | TcpFlags::RST)
}

/// Whether a fresh SYN matching the forward key of `f` opens a new connection rather than
/// retransmitting the one `f` records: the recorded connection is closing, closed or reset
/// (a client reusing its port: NAT gateways and `Connection: close` clients do it within
/// seconds), or its binding no longer forwards (drained away, force-removed, reused). A SYN
/// for an established flow whose binding is alive stays with it: the server answers with a
/// challenge ACK and the client's RST ends the old connection (RFC 5961 §4).
#[inline]
fn syn_starts_anew(bindings: &SlotTable, f: &FlowState) -> bool {
    f.tcp.is_closing() || f.tcp.is_over() || !slot_alive(bindings, f)
}

/// The service slot of a flow's binding. A slot keeps its service until every flow of it is
/// gone, so this is valid for any flow still in a table.
#[inline]
fn service_of(bindings: &SlotTable, f: &FlowState) -> usize {
    bindings.get(f.binding as usize).map_or(0, |s| s.service as usize)
}

/// Whether the flow's binding still forwards (active or draining, same incarnation).
#[inline]
fn slot_alive(bindings: &SlotTable, f: &FlowState) -> bool {
    bindings.get(f.binding as usize).is_some_and(|s| {
        s.incarnation as u16 == f.incarnation && matches!(s.state, SlotState::Active | SlotState::Draining)
    })
}

/// A connection just closed or was reset: it stops counting as active for its binding and
/// service (a drain can finish), though its record stays for late segments.
fn connection_over(counters: &WorkerCounters, bindings: &SlotTable, f: &FlowState) {
    drop_gauge(&counters.bindings[f.binding as usize].active_flows, 1);
    drop_gauge(&counters.services[service_of(bindings, f)].active_flows, 1);
}

/// Bookkeeping when a flow leaves the table.
fn forget(counters: &WorkerCounters, snat: &mut SnatPorts, bindings: &SlotTable, f: &FlowState) {
    if !f.tcp.is_over() {
        connection_over(counters, bindings, f);
    }
    drop_gauge(&counters.flows, 1);
    if f.snat_port != 0 {
        snat.release(f.snat_port);
    }
}

fn forced_signature(forced: &[(u32, u32)]) -> u64 {
    forced.iter().fold(0u64, |acc, &(i, inc)| acc.wrapping_mul(31).wrapping_add((u64::from(i) << 32) | u64::from(inc)))
        | 1
}

fn is_subnet_broadcast(gen: &Generation, in_port: u16, dst: Ipv4Addr) -> bool {
    gen.ports.get(in_port as usize).is_some_and(|p| {
        let m = p.addr.mask();
        (u32::from(dst) & !m) == !m && p.addr.contains(dst)
    })
}

/// The next TCP state after a segment with `flags` (from the server when `from_server`).
pub fn next_tcp_state(cur: TcpState, flags: TcpFlags, from_server: bool) -> TcpState {
    use TcpState::*;
    if flags.contains(TcpFlags::RST) {
        return Reset;
    }
    let fin = flags.contains(TcpFlags::FIN);
    match cur {
        Udp => Udp,
        Reset => Reset,
        Closed => Closed,
        // The acknowledgement of the second FIN ends the connection.
        FinBoth if !fin && flags.contains(TcpFlags::ACK) => Closed,
        FinBoth => FinBoth,
        FinClient if fin && from_server => FinBoth,
        FinClient => FinClient,
        FinServer if fin && !from_server => FinBoth,
        FinServer => FinServer,
        SynSent | Established if fin => {
            if from_server {
                FinServer
            } else {
                FinClient
            }
        }
        SynSent if from_server || !flags.contains(TcpFlags::SYN) => Established,
        SynSent => SynSent,
        Established => Established,
    }
}

fn wire_drop(e: WireError) -> DropReason {
    match e {
        WireError::TruncatedEthernet | WireError::TruncatedVlan => DropReason::MalformedEthernet,
        WireError::TruncatedArp | WireError::BadArp => DropReason::MalformedArp,
        WireError::BadIpChecksum => DropReason::BadIpChecksum,
        WireError::TruncatedIpv4 | WireError::BadIpVersion | WireError::BadIhl | WireError::BadTotalLength => {
            DropReason::MalformedIpv4
        }
        _ => DropReason::MalformedL4,
    }
}

#[cfg(test)]
mod tests;
