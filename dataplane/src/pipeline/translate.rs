//! The common tail of both directions of a flow: rewrite the destination and/or source,
//! decrement the TTL, set the MACs for the way out, count the packet for the flow's binding
//! and service.

use std::net::Ipv4Addr;

use crate::counters::{bump, DropReason};
use crate::nat::{self, NatError};
use crate::wire::{Ipv4Info, MacAddr, Parsed};

use super::flow::{service_of, Hit};
use super::{Frame, Verdict, Worker};

/// Which way a packet of a flow goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// Client → real server (to the VIP; counted as "in").
    ToServer,
    /// Real server → client (counted as "out").
    ToClient,
}

impl Worker {
    /// Rewrites the frame of flow `hit` for `way` and forwards it.
    ///
    /// Towards the real server the reverse key (real server → client, or → the source-NAT
    /// address:port) gives the new destination, and the source when source-NATed; back to
    /// the client the forward key (client → VIP) gives the new source VIP:vport, and the
    /// destination when source-NATed.
    ///
    /// Inlined into both directions: as a call, the flow copied out of the table would be
    /// re-read from memory at other widths than it was written (a store-forwarding stall per
    /// packet).
    #[inline(always)]
    pub(super) fn translate(&mut self, fr: &mut Frame<'_>, ip: Ipv4Info, hit: &Hit, way: Way) -> Verdict {
        let Hit { f, fwd, rev } = hit;
        let snat = f.snat_port != 0;
        let (dst, src, out, next_hop_mac) = match way {
            Way::ToServer => {
                (Some((rev.src, rev.sport)), snat.then_some((rev.dst, rev.dport)), f.server_port(), f.server_mac)
            }
            Way::ToClient => {
                (snat.then_some((fwd.src, fwd.sport)), Some((fwd.dst, fwd.dport)), f.client_port(), f.client_mac)
            }
        };
        let Some(out_view) = fr.gen.ports.get(out as usize) else { return self.drop(DropReason::NoRoute) };
        if rewrite(fr.bytes, fr.parsed, dst, src, (out_view.mac, next_hop_mac)).is_err() {
            return self.drop(DropReason::MalformedIpv4);
        }
        let bytes = u64::from(ip.total_len);
        let b = &self.counters.bindings[f.binding as usize];
        let s = &self.counters.services[service_of(&fr.gen.bindings, f)];
        let (bp, bb, sp, sb) = match way {
            Way::ToServer => (&b.packets_in, &b.bytes_in, &s.packets_in, &s.bytes_in),
            Way::ToClient => (&b.packets_out, &b.bytes_out, &s.packets_out, &s.bytes_out),
        };
        bump(bp, 1);
        bump(bb, bytes);
        bump(sp, 1);
        bump(sb, bytes);
        Verdict::Forward { port: out, len: fr.bytes.len() }
    }
}

/// The NAT of [`Worker::translate`]: destination, source, TTL, MACs (`(source, destination)`).
/// Plain calls rather than `Option::map_or` closures, which the compiler outlined from the
/// large inlined pipeline (a call and a spill per rewrite).
#[inline(always)]
fn rewrite(
    frame: &mut [u8],
    p: &Parsed,
    dst: Option<(Ipv4Addr, u16)>,
    src: Option<(Ipv4Addr, u16)>,
    (src_mac, dst_mac): (MacAddr, MacAddr),
) -> Result<(), NatError> {
    if let Some((a, port)) = dst {
        nat::rewrite_dst(frame, p, a, port)?;
    }
    if let Some((a, port)) = src {
        nat::rewrite_src(frame, p, a, port)?;
    }
    nat::decrement_ttl(frame, p)?;
    nat::set_macs(frame, src_mac, dst_mac)
}
