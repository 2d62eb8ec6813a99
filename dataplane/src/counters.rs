//! Counters written by one worker each and read by the switch API at any time.
//!
//! Every counter has exactly one writer (its worker), so an increment is a relaxed load and
//! store — no locked instruction on the fast path — and readers see a recent value.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Adds `n` to a single-writer counter.
#[inline(always)]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Subtracts `n` from a single-writer gauge (saturating at 0).
#[inline(always)]
pub fn drop_gauge(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).saturating_sub(n), Relaxed);
}

/// Reads a counter.
#[inline(always)]
pub fn read(c: &AtomicU64) -> u64 {
    c.load(Relaxed)
}

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $name:ident = $label:literal ),* $(,)?) => {
        /// Why the dataplane dropped a packet. Each reason has its own counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $( $(#[$doc])* $name ),* }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name),*];
            /// Number of reasons.
            pub const COUNT: usize = DropReason::ALL.len();
            /// Stable snake_case label.
            pub const fn label(self) -> &'static str {
                match self { $(DropReason::$name => $label),* }
            }
        }
    };
}

drop_reasons! {
    /// Frame shorter than an Ethernet header, or a truncated VLAN tag.
    MalformedEthernet = "malformed_ethernet",
    /// ARP that is not Ethernet/IPv4 or is truncated.
    MalformedArp = "malformed_arp",
    /// IPv4 header invalid: version, IHL, lengths.
    MalformedIpv4 = "malformed_ipv4",
    /// IPv4 header checksum wrong.
    BadIpChecksum = "bad_ip_checksum",
    /// TCP/UDP/ICMP header truncated or inconsistent.
    MalformedL4 = "malformed_l4",
    /// Ethertype we do not handle (IPv6, LLDP, ...).
    UnsupportedEthertype = "unsupported_ethertype",
    /// IP protocol we do not balance (not TCP/UDP/ICMP) to a VIP.
    UnsupportedProtocol = "unsupported_protocol",
    /// IPv4 fragment to a VIP (fragments are not reassembled; see module docs).
    Fragment = "fragment",
    /// TTL would reach zero.
    TtlExceeded = "ttl_exceeded",
    /// ARP not for one of our addresses or VIPs.
    ArpNotForUs = "arp_not_for_us",
    /// IP packet to a VIP port that has no virtual service.
    NoService = "no_service",
    /// New connection to a service with no active binding.
    NoBackend = "no_backend",
    /// New connection refused by the service's drop fraction (admission control).
    Admission = "admission",
    /// New flow refused because the flow table is full.
    FlowTableFull = "flow_table_full",
    /// Packet that matches no flow and is not for a VIP or for us.
    NoFlow = "no_flow",
    /// TCP segment other than SYN for an unknown flow whose binding is gone (answered with RST).
    StaleFlow = "stale_flow",
    /// Next hop MAC unknown and the hold queue is full.
    NeighborUnresolved = "neighbor_unresolved",
    /// No port reaches the destination.
    NoRoute = "no_route",
    /// Source NAT ports exhausted.
    SnatExhausted = "snat_exhausted",
    /// Flow belonged to a force-removed binding (answered with RST where TCP).
    ForceRemoved = "force_removed",
    /// ICMP other than echo request to a VIP or port address.
    IcmpIgnored = "icmp_ignored",
    /// The tx queue was full.
    TxFull = "tx_full",
    /// No mbuf for a packet we generate (ARP request, RST).
    NoMbuf = "no_mbuf",
    /// Handoff ring to another worker full.
    HandoffFull = "handoff_full",
    /// Exception path to the kernel unavailable or full.
    HostPathFull = "host_path_full",
}

/// Counters of one binding slot, per worker.
#[derive(Debug, Default)]
pub struct BindingCounters {
    /// Client → server packets.
    pub packets_in: AtomicU64,
    /// Client → server bytes.
    pub bytes_in: AtomicU64,
    /// Server → client packets.
    pub packets_out: AtomicU64,
    /// Server → client bytes.
    pub bytes_out: AtomicU64,
    /// Flows in this worker's table (gauge).
    pub active_flows: AtomicU64,
    /// Flows created.
    pub new_flows: AtomicU64,
}

impl BindingCounters {
    /// Snapshot as the ACM type.
    pub fn snapshot(&self) -> acm::BindingCounters {
        acm::BindingCounters {
            packets_in: read(&self.packets_in),
            bytes_in: read(&self.bytes_in),
            packets_out: read(&self.packets_out),
            bytes_out: read(&self.bytes_out),
            active_flows: read(&self.active_flows),
            new_flows: read(&self.new_flows),
        }
    }
}

/// Counters of one virtual-service slot, per worker.
#[derive(Debug, Default)]
pub struct ServiceCounters {
    /// Client → server packets.
    pub packets_in: AtomicU64,
    /// Client → server bytes.
    pub bytes_in: AtomicU64,
    /// Server → client packets.
    pub packets_out: AtomicU64,
    /// Server → client bytes.
    pub bytes_out: AtomicU64,
    /// Flows created.
    pub new_flows: AtomicU64,
    /// Flows in this worker's table (gauge).
    pub active_flows: AtomicU64,
    /// Refused by the drop fraction.
    pub admission_drops: AtomicU64,
    /// Refused for lack of an active binding.
    pub no_backend_drops: AtomicU64,
}

/// Counters of one port, per worker (the NIC's own counters come from the port).
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Frames passed to the kernel through the tap.
    pub to_host: AtomicU64,
    /// Frames from the kernel sent out (written by the main lcore's counters).
    pub from_host: AtomicU64,
}

/// Most ports a dataplane drives.
pub const MAX_PORTS: usize = 16;

/// Everything one worker counts.
#[derive(Debug)]
pub struct WorkerCounters {
    /// The generation this worker forwards with (Release-stored after each swap).
    pub generation: AtomicU64,
    /// Packets processed.
    pub packets: AtomicU64,
    /// Non-empty bursts.
    pub bursts: AtomicU64,
    /// Flows in the table.
    pub flows: AtomicU64,
    /// SYNs that reused the 5-tuple of a closed or dead flow and were placed as new connections.
    pub reused_tuples: AtomicU64,
    /// Rounds of the polling loop.
    pub loops: AtomicU64,
    /// Sleeps of the polling loop when idle (adaptive polling).
    pub idle_sleeps: AtomicU64,
    /// Time spent in those sleeps, ns.
    pub asleep_ns: AtomicU64,
    /// Drops by [`DropReason`] index.
    pub drops: Box<[AtomicU64]>,
    /// Per binding slot.
    pub bindings: Box<[BindingCounters]>,
    /// Per service slot.
    pub services: Box<[ServiceCounters]>,
    /// Per port.
    pub ports: Box<[PortCounters]>,
}

impl WorkerCounters {
    /// Counters for `max_bindings` binding slots and `max_services` service slots.
    pub fn new(max_bindings: usize, max_services: usize) -> WorkerCounters {
        WorkerCounters {
            generation: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            bursts: AtomicU64::new(0),
            flows: AtomicU64::new(0),
            reused_tuples: AtomicU64::new(0),
            loops: AtomicU64::new(0),
            idle_sleeps: AtomicU64::new(0),
            asleep_ns: AtomicU64::new(0),
            drops: (0..DropReason::COUNT).map(|_| AtomicU64::new(0)).collect(),
            bindings: (0..max_bindings).map(|_| BindingCounters::default()).collect(),
            services: (0..max_services).map(|_| ServiceCounters::default()).collect(),
            ports: (0..MAX_PORTS).map(|_| PortCounters::default()).collect(),
        }
    }

    /// Counts one drop.
    #[inline(always)]
    pub fn count_drop(&self, reason: DropReason) {
        bump(&self.drops[reason as usize], 1);
    }

    /// Drops of one reason.
    pub fn drops_of(&self, reason: DropReason) -> u64 {
        read(&self.drops[reason as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_unique_and_indexed() {
        let mut labels: Vec<_> = DropReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn single_writer_counting() {
        let c = WorkerCounters::new(4, 2);
        c.count_drop(DropReason::Fragment);
        c.count_drop(DropReason::Fragment);
        assert_eq!(c.drops_of(DropReason::Fragment), 2);
        bump(&c.bindings[3].active_flows, 2);
        drop_gauge(&c.bindings[3].active_flows, 5);
        assert_eq!(read(&c.bindings[3].active_flows), 0);
    }
}
