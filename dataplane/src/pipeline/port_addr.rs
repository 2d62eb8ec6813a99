//! The exception path: datagrams to a port's own address, and multicast and broadcast
//! (beacons), go to the kernel through the port's tap, except echo requests (answered here)
//! and replies to source-NATed flows (the reverse path).

use std::net::Ipv4Addr;

use crate::counters::bump;
use crate::generation::Generation;
use crate::wire::{Ipv4Info, L4};

use super::icmp::is_echo_request;
use super::{Frame, Verdict, Worker};

impl Worker {
    /// A datagram to the address of one of our ports.
    #[inline]
    pub(super) fn for_port_addr(&mut self, fr: &mut Frame<'_>, ip: Ipv4Info) -> Verdict {
        match ip.l4 {
            L4::Icmp(i) if is_echo_request(&i) && !ip.is_fragment => return self.echo_reply(fr),
            L4::Tcp(t) if self.snat.in_range(t.dst_port) => {
                if let Some(v) = self.snat_reply(fr, ip, (t.src_port, t.dst_port), Some(t.flags)) {
                    return v;
                }
            }
            L4::Udp(u) if self.snat.in_range(u.dst_port) => {
                if let Some(v) = self.snat_reply(fr, ip, (u.src_port, u.dst_port), None) {
                    return v;
                }
            }
            _ => {}
        }
        self.pass_to_host(fr)
    }

    /// Multicast, broadcast and the broadcast address of the arrival port's subnet go to
    /// the kernel; `None` for anything else.
    #[inline]
    pub(super) fn multicast_or_broadcast(&mut self, fr: &mut Frame<'_>, ip: Ipv4Info) -> Option<Verdict> {
        if ip.dst.is_multicast() || ip.dst.is_broadcast() || is_subnet_broadcast(fr.gen, fr.in_port, ip.dst) {
            return Some(self.pass_to_host(fr));
        }
        None
    }

    /// Passes the frame unchanged to the kernel through the tap of its arrival port.
    #[inline]
    pub(super) fn pass_to_host(&self, fr: &Frame<'_>) -> Verdict {
        bump(&self.counters.ports[fr.in_port as usize].to_host, 1);
        Verdict::ToHost { port: fr.in_port }
    }
}

/// Whether `dst` is the broadcast address of the subnet of port `in_port`.
fn is_subnet_broadcast(gen: &Generation, in_port: u16, dst: Ipv4Addr) -> bool {
    gen.ports.get(in_port as usize).is_some_and(|p| {
        let m = p.addr.mask();
        (u32::from(dst) & !m) == !m && p.addr.contains(dst)
    })
}
