//! Client → real server: a datagram to a VIP. Matched against the flow table by its forward
//! key; a new flow passes admission control (the service's drop fraction, a fresh random
//! draw per SYN so a retry has a new chance), picks a binding through Maglev and is
//! remembered in both directions. IPv4 fragments to a VIP are dropped and counted (no
//! reassembly).

use std::net::Ipv4Addr;

use crate::counters::{bump, DropReason};
use crate::lb::flows::{client_hash, flow_hash, Direction, FlowId, FlowKey, InsertError};
use crate::nat;
use crate::wire::ethernet::{self, field as eth};
use crate::wire::field::get_mac;
use crate::wire::{Ipv4Info, MacAddr, TcpFlags, TcpInfo, L4};

use super::flow::{connection_over, forget, slot_alive, syn_starts_anew, FlowState, Hit};
use super::icmp::is_echo_request;
use super::tcp_state::{client_touch, is_fresh_syn, timeout_for};
use super::translate::Way;
use super::{Emit, Frame, TcpState, Verdict, Worker};

impl Worker {
    /// A datagram to a VIP.
    #[inline]
    pub(super) fn for_vip(&mut self, fr: &mut Frame<'_>, ip: Ipv4Info) -> Verdict {
        if ip.is_fragment {
            return self.drop(DropReason::Fragment);
        }
        let (sport, dport, tcp) = match ip.l4 {
            L4::Tcp(t) => (t.src_port, t.dst_port, Some(t)),
            L4::Udp(u) => (u.src_port, u.dst_port, None),
            L4::Icmp(i) if is_echo_request(&i) => return self.echo_reply(fr),
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
        let (gen, now) = (fr.gen, fr.now);
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
            return self.reset_flow(fr, id);
        }
        if let Some(id) = stale {
            self.remove_flow(&gen.bindings, id);
            bump(&self.counters.reused_tuples, 1);
        }
        if over {
            if let Some(h) = &found {
                connection_over(&self.counters, &gen.bindings, &h.f);
            }
        }
        let created;
        let hit = match &found {
            Some(h) => h,
            None => match self.new_flow(fr, &key, tcp) {
                Ok(h) => {
                    created = h;
                    &created
                }
                Err(v) => return v,
            },
        };
        self.translate(fr, ip, hit, Way::ToServer)
    }

    /// Creates the flow for the first packet of a connection. `Err` carries the verdict
    /// when it cannot be created.
    fn new_flow(&mut self, fr: &Frame<'_>, key: &FlowKey, tcp_info: Option<TcpInfo>) -> Result<Hit, Verdict> {
        let (gen, now) = (fr.gen, fr.now);
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
        let Some(server_mac) = self.neighbor(fr, slot.out_port, slot.next_hop) else {
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
        // The parse saw a whole Ethernet header.
        let client_mac =
            fr.bytes.first_chunk::<{ ethernet::HEADER_LEN }>().map_or(MacAddr::ZERO, |e| get_mac(e, eth::SRC));
        let flow = FlowState {
            binding: bid as u16,
            incarnation: slot.incarnation as u16,
            client_mac,
            server_mac,
            ports: (fr.in_port as u8 & 0x0f) | ((slot.out_port as u8 & 0x0f) << 4),
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
    fn neighbor(&mut self, fr: &Frame<'_>, port: u16, next_hop: Ipv4Addr) -> Option<MacAddr> {
        let ip = u32::from(next_hop);
        if let Some(m) = self.neigh.get(ip) {
            return Some(m);
        }
        if let Some(m) = fr.gen.neighbors.get(&ip) {
            self.neigh.learn(ip, *m);
            return Some(*m);
        }
        if self.neigh.should_ask(ip, fr.now) {
            self.outbox.push(Emit::ArpRequest { port, target: next_hop });
        }
        None
    }

    /// A packet of a flow whose binding was force-removed: the flow goes, and a TCP client
    /// gets a RST back the way the segment came (MACs and addresses swapped).
    fn reset_flow(&mut self, fr: &mut Frame<'_>, id: FlowId) -> Verdict {
        self.remove_flow(&fr.gen.bindings, id);
        self.counters.count_drop(DropReason::ForceRemoved);
        if fr.parsed.ipv4().is_some_and(|i| matches!(i.l4, L4::Tcp(_))) {
            if let Ok(len) = nat::tcp_rst_in_place(fr.bytes, fr.parsed) {
                return Verdict::Forward { port: fr.in_port, len };
            }
        }
        Verdict::Drop(DropReason::ForceRemoved)
    }

    /// The admission control's draw (xorshift64*).
    #[inline]
    fn random(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}
