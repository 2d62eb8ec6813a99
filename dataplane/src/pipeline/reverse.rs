//! Real server → client: matched by the flow's reverse key (real server → client, or → the
//! source-NAT address:port for replies arriving at a port address) and rewritten back to
//! VIP:vport towards the client, out of the port and to the MAC the client came from.

use crate::counters::DropReason;
use crate::lb::flows::{client_hash, Direction, FlowKey};
use crate::wire::{Ipv4Info, TcpFlags, L4};

use super::flow::{connection_over, slot_alive, Hit};
use super::tcp_state::{next_tcp_state, timeout_for};
use super::translate::Way;
use super::{Frame, TcpState, Verdict, Worker};

impl Worker {
    /// A datagram that is neither to a VIP nor to us: from a real server to a client whose
    /// flow has no source NAT.
    #[inline]
    pub(super) fn server_side(&mut self, fr: &mut Frame<'_>, ip: Ipv4Info) -> Verdict {
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
        self.reverse(fr, ip, &key, tcp)
    }

    /// A reply to a source-NATed flow (`ports`: source, destination), or `None` when it is
    /// the kernel's.
    #[inline]
    pub(super) fn snat_reply(
        &mut self,
        fr: &mut Frame<'_>,
        ip: Ipv4Info,
        (sport, dport): (u16, u16),
        tcp: Option<TcpFlags>,
    ) -> Option<Verdict> {
        if self.cfg.workers > 1 {
            let owner = dport % self.cfg.workers;
            if owner != self.cfg.index {
                return Some(Verdict::Handoff { worker: owner });
            }
        }
        let key = FlowKey::new(ip.src, sport, ip.dst, dport, ip.protocol);
        if !matches!(self.flows.find_id(&key, fr.now), Some((_, Direction::Reverse))) {
            return None;
        }
        Some(self.reverse(fr, ip, &key, tcp))
    }

    /// Server → client: rewrite the source back to VIP:vport (and the destination back to
    /// the client when source-NATed) and send it out where the client came from.
    #[inline]
    fn reverse(&mut self, fr: &mut Frame<'_>, ip: Ipv4Info, key: &FlowKey, tcp: Option<TcpFlags>) -> Verdict {
        if ip.ttl <= 1 {
            return self.drop(DropReason::TtlExceeded);
        }
        let (gen, now) = (fr.gen, fr.now);
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
            self.remove_flow(&gen.bindings, id);
            return self.drop(DropReason::ForceRemoved);
        }
        if over {
            if let Some(h) = &found {
                connection_over(&self.counters, &gen.bindings, &h.f);
            }
        }
        let Some(hit) = &found else { return self.drop(DropReason::NoFlow) };
        self.translate(fr, ip, hit, Way::ToClient)
    }
}
