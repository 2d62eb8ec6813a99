//! The flow record a worker keeps beside a flow's two keys, and the bookkeeping when a
//! connection ends or its record leaves the table.

use crate::counters::{drop_gauge, WorkerCounters};
use crate::generation::{SlotState, SlotTable};
use crate::lb::flows::{FlowId, FlowKey};
use crate::wire::MacAddr;

use super::snat::SnatPorts;
use super::{TcpState, Worker};

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
    pub client_mac: MacAddr,
    /// Next hop MAC towards the real server.
    pub server_mac: MacAddr,
    /// Port the client's frames arrive on (low nibble) and port towards the server (high).
    pub(super) ports: u8,
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
pub(super) struct Hit {
    pub(super) f: FlowState,
    /// Client → VIP.
    pub(super) fwd: FlowKey,
    /// Real server → client or source-NAT address.
    pub(super) rev: FlowKey,
}

/// Whether a fresh SYN matching the forward key of `f` opens a new connection rather than
/// retransmitting the one `f` records: the recorded connection is closing, closed or reset
/// (a client reusing its port: NAT gateways and `Connection: close` clients do it within
/// seconds), or its binding no longer forwards (drained away, force-removed, reused). A SYN
/// for an established flow whose binding is alive stays with it: the server answers with a
/// challenge ACK and the client's RST ends the old connection (RFC 5961 §4).
#[inline]
pub(super) fn syn_starts_anew(bindings: &SlotTable, f: &FlowState) -> bool {
    f.tcp.is_closing() || f.tcp.is_over() || !slot_alive(bindings, f)
}

/// The service slot of a flow's binding. A slot keeps its service until every flow of it is
/// gone, so this is valid for any flow still in a table.
#[inline]
pub(super) fn service_of(bindings: &SlotTable, f: &FlowState) -> usize {
    bindings.get(f.binding as usize).map_or(0, |s| s.service as usize)
}

/// Whether the flow's binding still forwards (active or draining, same incarnation).
#[inline]
pub(super) fn slot_alive(bindings: &SlotTable, f: &FlowState) -> bool {
    bindings.get(f.binding as usize).is_some_and(|s| {
        s.incarnation as u16 == f.incarnation && matches!(s.state, SlotState::Active | SlotState::Draining)
    })
}

/// A connection just closed or was reset: it stops counting as active for its binding and
/// service (a drain can finish), though its record stays for late segments.
#[inline]
pub(super) fn connection_over(counters: &WorkerCounters, bindings: &SlotTable, f: &FlowState) {
    drop_gauge(&counters.bindings[f.binding as usize].active_flows, 1);
    drop_gauge(&counters.services[service_of(bindings, f)].active_flows, 1);
}

/// Bookkeeping when a flow leaves the table.
#[inline]
pub(super) fn forget(counters: &WorkerCounters, snat: &mut SnatPorts, bindings: &SlotTable, f: &FlowState) {
    if !f.tcp.is_over() {
        connection_over(counters, bindings, f);
    }
    drop_gauge(&counters.flows, 1);
    if f.snat_port != 0 {
        snat.release(f.snat_port);
    }
}

impl Worker {
    /// Deletes one flow from the table with its bookkeeping ([`forget`]).
    pub(super) fn remove_flow(&mut self, bindings: &SlotTable, id: FlowId) {
        if let Some(f) = self.flows.remove(id) {
            forget(&self.counters, &mut self.snat, bindings, &f);
        }
    }
}
