//! Forwarding generations: the immutable state workers forward with.
//!
//! The control side builds a new [`Generation`] for every change and hands an `Arc` of it to
//! each worker; a worker picks it up between bursts, stores the generation number in its
//! counters (the acknowledgement), and never locks. Maglev tables of services that did not
//! change are shared between generations.

use std::net::Ipv4Addr;
use std::sync::Arc;

use acm::{BindingKey, BindingParams, ServiceKey};

use crate::config::PortAddr;
use crate::lb::maglev::{Interim, Maglev};
use crate::wire::MacAddr;

/// Fast-path key of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceLookup {
    /// VIP as a host-order u32.
    pub vip: u32,
    /// Virtual port.
    pub vport: u16,
    /// IP protocol number.
    pub proto: u8,
}

impl From<ServiceKey> for ServiceLookup {
    fn from(k: ServiceKey) -> Self {
        ServiceLookup { vip: u32::from(k.vip), vport: k.vport, proto: k.proto.ip_proto() }
    }
}

/// One virtual service as workers see it.
#[derive(Debug)]
pub struct ServiceEntry {
    /// Its key.
    pub key: ServiceKey,
    /// Its slot (index of its counters).
    pub id: u32,
    /// The last Maglev table built for its bindings; values are binding slot ids.
    pub maglev: Maglev,
    /// The correction of `maglev` for bindings that joined or left since it was built; `None`
    /// when `maglev` is exact. See [`Interim`].
    pub interim: Option<Box<Interim>>,
    /// New flows whose random draw is below this are dropped (see `DropFraction::threshold_u32`).
    pub drop_threshold: u64,
    /// Active bindings in the table.
    pub active: u32,
}

impl ServiceEntry {
    /// The binding slot for a new flow with this hash ([`crate::lb::flow_hash`]), or `None`
    /// when the service has no live binding.
    #[inline]
    pub fn pick(&self, hash: u64) -> Option<u32> {
        match &self.interim {
            None => self.maglev.lookup(hash),
            Some(i) => i.lookup(&self.maglev, hash),
        }
    }
}

/// What a binding slot is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Unused.
    Free,
    /// In its service's Maglev table.
    Active,
    /// Out of the table; existing flows are forwarded until they end.
    Draining,
    /// Unbound; existing flows are reset and deleted.
    ForceRemoved,
}

/// One binding slot as workers see it.
#[derive(Debug, Clone, Copy)]
pub struct BindingSlot {
    /// The binding.
    pub key: BindingKey,
    /// Weight and source NAT.
    pub params: BindingParams,
    /// State.
    pub state: SlotState,
    /// Changes each time the slot is reused; flows remember it.
    pub incarnation: u32,
    /// Service slot id.
    pub service: u32,
    /// Port towards the real server.
    pub out_port: u16,
    /// Next hop towards the real server (the server itself or the port's gateway).
    pub next_hop: Ipv4Addr,
}

impl BindingSlot {
    /// An unused slot.
    pub const FREE: BindingSlot = BindingSlot {
        key: BindingKey {
            service: ServiceKey { vip: Ipv4Addr::UNSPECIFIED, proto: acm::Proto::Tcp, vport: 0 },
            real: acm::RealServer { rip: Ipv4Addr::UNSPECIFIED, rport: 0 },
        },
        params: BindingParams { weight: 0, source_nat: false },
        state: SlotState::Free,
        incarnation: 0,
        service: 0,
        out_port: 0,
        next_hop: Ipv4Addr::UNSPECIFIED,
    };
}

/// One port as workers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortView {
    /// Address and prefix.
    pub addr: PortAddr,
    /// MAC address.
    pub mac: MacAddr,
    /// Gateway for destinations off its subnet.
    pub gateway: Option<Ipv4Addr>,
}

/// A fast-path hash map.
pub type FastMap<K, V> = hashbrown::HashMap<K, V, ahash::RandomState>;

/// A fixed-length table in chunks of `N` shared between generations (copy on write).
///
/// Publishing a generation copies the chunk pointers, not the table; changing an entry copies
/// only its chunk, and only when a published generation still shares it. So a configuration
/// change costs the same with 64 binding slots as with 65536.
#[derive(Clone, Debug)]
pub struct ChunkedTable<T, const N: usize> {
    chunks: Vec<Arc<[T; N]>>,
    len: usize,
}

impl<T: Clone, const N: usize> ChunkedTable<T, N> {
    /// `len` copies of `fill` (all chunks share one allocation until written).
    pub fn new(len: usize, fill: T) -> Self {
        let chunk: Arc<[T; N]> = Arc::new(std::array::from_fn(|_| fill.clone()));
        ChunkedTable { chunks: vec![chunk; len.div_ceil(N)], len }
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table has no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entry `i`, if in range.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i < self.len {
            Some(&self.chunks[i / N][i % N])
        } else {
            None
        }
    }

    /// Entry `i` for writing; copies its chunk first if a published generation shares it.
    /// Panics when `i` is out of range.
    pub fn get_mut(&mut self, i: usize) -> &mut T {
        assert!(i < self.len, "index {i} out of range {}", self.len);
        &mut Arc::make_mut(&mut self.chunks[i / N])[i % N]
    }

    /// Whether entry `i` of both tables lives in the same shared chunk (no copy was made).
    pub fn shares_chunk(&self, other: &Self, i: usize) -> bool {
        Arc::ptr_eq(&self.chunks[i / N], &other.chunks[i / N])
    }

    /// Every entry in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter()).take(self.len)
    }
}

impl<T: Clone, const N: usize> std::ops::Index<usize> for ChunkedTable<T, N> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        self.get(i).expect("index out of range")
    }
}

/// Entries per chunk of the binding table (256 × 48 B: one chunk copy is about 12 KB).
pub const SLOT_CHUNK: usize = 256;
/// Binding slots by id.
pub type SlotTable = ChunkedTable<BindingSlot, SLOT_CHUNK>;
/// Services by slot id (None = unused).
pub type ServiceTable = ChunkedTable<Option<Arc<ServiceEntry>>, 32>;

/// The immutable forwarding state of one generation.
#[derive(Debug)]
pub struct Generation {
    /// Monotonic number; workers acknowledge it.
    pub number: u64,
    /// Service lookup by (VIP, port, protocol) → index into `services` (shared between
    /// generations until the set of services changes).
    pub service_index: Arc<FastMap<ServiceLookup, u32>>,
    /// Services by slot id (None = unused slot).
    pub services: ServiceTable,
    /// Every VIP (answered for ARP and ping).
    pub vips: Arc<FastMap<u32, ()>>,
    /// Binding slots by id.
    pub bindings: SlotTable,
    /// Neighbours known to the control side (IP → MAC).
    pub neighbors: Arc<FastMap<u32, MacAddr>>,
    /// Ports.
    pub ports: Arc<[PortView]>,
    /// Force-removed slots with their incarnation, sorted (workers then walk their tables).
    pub forced: Arc<[(u32, u32)]>,
}

impl Generation {
    /// An empty generation 0 for `ports` with `max_bindings` slots.
    pub fn empty(ports: Vec<PortView>, max_bindings: usize, max_services: usize) -> Generation {
        Generation {
            number: 0,
            service_index: Arc::new(FastMap::default()),
            services: ServiceTable::new(max_services, None),
            vips: Arc::new(FastMap::default()),
            bindings: SlotTable::new(max_bindings, BindingSlot::FREE),
            neighbors: Arc::new(FastMap::default()),
            ports: ports.into(),
            forced: Arc::new([]),
        }
    }

    /// The service for a packet's destination, if any.
    #[inline]
    pub fn service(&self, vip: u32, vport: u16, proto: u8) -> Option<&ServiceEntry> {
        let id = *self.service_index.get(&ServiceLookup { vip, vport, proto })?;
        self.services.get(id as usize)?.as_deref()
    }

    /// True when some binding is force-removed and its flows must be reset.
    #[inline]
    pub fn has_force_removed(&self) -> bool {
        !self.forced.is_empty()
    }

    /// Whether `ip` is a VIP.
    #[inline]
    pub fn is_vip(&self, ip: u32) -> bool {
        self.vips.contains_key(&ip)
    }

    /// The port whose address is `ip`.
    #[inline]
    pub fn port_with_addr(&self, ip: u32) -> Option<usize> {
        self.ports.iter().position(|p| u32::from(p.addr.ip) == ip)
    }

    /// The port and next hop towards `dst`: a port whose subnet contains it, else the
    /// port with a gateway.
    pub fn route(&self, dst: Ipv4Addr) -> Option<(u16, Ipv4Addr)> {
        if let Some(i) = self.ports.iter().position(|p| p.addr.contains(dst)) {
            return Some((i as u16, dst));
        }
        let i = self.ports.iter().position(|p| p.gateway.is_some())?;
        Some((i as u16, self.ports[i].gateway?))
    }
}
