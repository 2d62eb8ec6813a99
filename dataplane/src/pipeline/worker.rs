//! The worker's entry points: construction, one frame ([`Worker::process`]) or a burst with
//! look-ahead ([`Worker::prepare_burst`], [`Worker::process_prepared`]), and the dispatch of
//! a parsed frame to its path by ethertype and destination.

use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use crate::counters::{bump, DropReason, WorkerCounters};
use crate::generation::Generation;
use crate::lb::flows::{FlowKey, FlowTable, KeyHash, Placement};
use crate::wire::{parse, Ipv4Info, MacAddr, Parsed, WireError, L3};

use super::maintain::PURGE_CHUNK;
use super::neigh::NeighborCache;
use super::snat::SnatPorts;
use super::tcp_state::timeout_for;
use super::{Frame, Outbox, TcpState, Verdict, Worker, WorkerConfig, MAX_BURST};

/// How many frames ahead of the one being processed the look-ahead reads the index bucket
/// and starts the flow record's cache miss.
const RECORD_AHEAD: usize = 4;

/// `burst_key_of` of a frame without a flow key.
const NO_KEY: u8 = u8::MAX;

impl Worker {
    /// A worker with everything allocated.
    pub fn new(cfg: WorkerConfig, counters: Arc<WorkerCounters>, learned: Arc<ArrayQueue<(u32, MacAddr)>>) -> Worker {
        Self::with_flow_placement(cfg, counters, learned, Placement::Heap)
    }

    /// Like [`Worker::new`] with the flow table where `placement` asks: the dataplane puts it
    /// on 2 MB hugepages (falling back to the heap, logged, when the pool is short).
    pub fn with_flow_placement(
        cfg: WorkerConfig,
        counters: Arc<WorkerCounters>,
        learned: Arc<ArrayQueue<(u32, MacAddr)>>,
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
        bytes: &mut [u8],
        parsed: Result<Parsed, WireError>,
    ) -> Verdict {
        bump(&self.counters.packets, 1);
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => return self.drop(wire_drop(e)),
        };
        let mut fr = Frame { gen, now, in_port, bytes, parsed: &parsed };
        match &parsed.l3 {
            L3::Arp(a) => self.arp(&mut fr, a),
            L3::Ipv4(ip) => self.ipv4(&mut fr, *ip),
            L3::Other => self.drop(DropReason::UnsupportedEthertype),
        }
    }

    /// An IPv4 datagram: to a VIP, to a port address, to the kernel (multicast and
    /// broadcast), or else from a real server.
    #[inline]
    fn ipv4(&mut self, fr: &mut Frame<'_>, ip: Ipv4Info) -> Verdict {
        let dst = u32::from(ip.dst);
        if fr.gen.is_vip(dst) {
            return self.for_vip(fr, ip);
        }
        if fr.gen.port_with_addr(dst).is_some() {
            return self.for_port_addr(fr, ip);
        }
        if let Some(v) = self.multicast_or_broadcast(fr, ip) {
            return v;
        }
        self.server_side(fr, ip)
    }

    /// Counts a drop and says so.
    #[inline]
    pub(super) fn drop(&self, r: DropReason) -> Verdict {
        self.counters.count_drop(r);
        Verdict::Drop(r)
    }

    /// The idle timeout of a flow in state `s`.
    #[inline]
    pub(super) fn timeout(&self, s: TcpState) -> u64 {
        timeout_for(&self.cfg.timeouts, s)
    }
}

/// The drop counted for a frame the parser rejects.
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
