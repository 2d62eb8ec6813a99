//! In-place NAT rewrites and the few frames the dataplane answers itself.
//!
//! Every rewrite works on a frame that [`crate::wire::parse`] accepted, taking the frame
//! bytes and its [`Parsed`] summary, and writes at the parsed offsets without parsing
//! again. The old field values are read from the frame, not from the summary, so several
//! rewrites can be chained on one [`Parsed`] (e.g. `rewrite_dst`, then `rewrite_src` for
//! source NAT, then `decrement_ttl`). Nothing panics if frame and summary do not match: a
//! frame shorter than the summary says is a [`NatError::FrameTooShort`], reported before
//! that call writes anything.
//!
//! **Checksums.** [`rewrite_dst`], [`rewrite_src`] and [`decrement_ttl`] adjust the IPv4
//! header checksum and the TCP/UDP checksum *incrementally* (RFC 1624), never reading the
//! payload: a correct checksum stays correct, a corrupt one stays corrupt (and the end host
//! drops the segment). A zero UDP checksum ("none") stays zero. The rare frames the
//! appliance answers itself (ARP, ICMP echo reply, TCP RST) are checksummed as noted on
//! each.
//!
//! The per-packet rewrites ([`rewrite_dst`], [`rewrite_src`], [`decrement_ttl`],
//! [`set_macs`]) are `#[inline(always)]`: the pipeline calls them from one large function the
//! compiler would otherwise stop inlining into.
//!
//! **Fragments.** Frames with [`Ipv4Info::is_fragment`] set are expected to be dropped by
//! the dataplane with a counter before NAT: a load balancer cannot map non-first fragments
//! to a flow without reassembly. If rewritten anyway, a first fragment gets its transport
//! checksum adjusted (the incremental update is valid for the whole datagram) and a later
//! fragment only its IP header.

use std::net::{Ipv4Addr, SocketAddrV4};

use std::ops::Range;

use crate::wire::checksum::{self, Incremental};
use crate::wire::ethernet::{self, ethertype, MacAddr};
use crate::wire::field::{get16, get32, get_mac, set16, set32, set_mac};
use crate::wire::icmp::{self, msg_type};
use crate::wire::ipv4::{self, protocol};
use crate::wire::{arp, tcp, udp, Ipv4Info, Parsed, TcpFlags, L3, L4};

/// Why a rewrite or builder could not run. Nothing was written when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum NatError {
    /// The parsed frame is not IPv4.
    #[error("frame is not IPv4")]
    NotIpv4,
    /// The frame is shorter than the parsed offsets say (frame and summary do not match).
    #[error("frame shorter than its parsed headers")]
    FrameTooShort,
    /// The output buffer is too small for the frame to build.
    #[error("buffer too small for the frame")]
    BufferTooSmall,
    /// TTL is 0 or 1: the datagram must not be forwarded.
    #[error("TTL expired")]
    TtlExpired,
    /// Not an ARP request.
    #[error("not an ARP request")]
    NotArpRequest,
    /// Not an ICMP echo request (type 8, code 0) in an unfragmented datagram.
    #[error("not an ICMP echo request")]
    NotEchoRequest,
    /// Not a TCP segment in an unfragmented datagram.
    #[error("not an unfragmented TCP segment")]
    NotTcp,
    /// The segment is itself a RST; a RST is never answered.
    #[error("segment is a RST")]
    IsRst,
}

/// TTL of the IPv4 datagrams the appliance originates (echo replies, RSTs).
pub const DEFAULT_TTL: u8 = 64;

#[inline]
fn ipv4_of(p: &Parsed) -> Result<&Ipv4Info, NatError> {
    match &p.l3 {
        L3::Ipv4(i) => Ok(i),
        _ => Err(NatError::NotIpv4),
    }
}

/// `N` bytes of `frame` at `at`, as an array (so indexing into it needs no more checks).
#[inline(always)]
fn chunk_mut<const N: usize>(frame: &mut [u8], at: usize) -> Result<&mut [u8; N], NatError> {
    frame.get_mut(at..).and_then(|s| s.first_chunk_mut::<N>()).ok_or(NatError::FrameTooShort)
}

/// One side of a flow: its address in the IPv4 header and its port in TCP/UDP.
#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
}

impl Side {
    #[inline(always)]
    fn ip(self) -> Range<usize> {
        match self {
            Side::Src => ipv4::field::SRC,
            Side::Dst => ipv4::field::DST,
        }
    }

    #[inline(always)]
    fn tcp_port(self) -> Range<usize> {
        match self {
            Side::Src => tcp::field::SRC_PORT,
            Side::Dst => tcp::field::DST_PORT,
        }
    }

    #[inline(always)]
    fn udp_port(self) -> Range<usize> {
        match self {
            Side::Src => udp::field::SRC_PORT,
            Side::Dst => udp::field::DST_PORT,
        }
    }
}

/// Rewrites the transport port at `port_at` and adjusts the checksum at `ck_at` of the
/// `N`-byte transport header at `at` for `ip_delta` plus the port change.
#[inline(always)]
fn rewrite_l4<const N: usize>(
    frame: &mut [u8],
    at: usize,
    (port_at, ck_at): (Range<usize>, Range<usize>),
    udp: bool,
    ip_delta: Incremental,
    port: u16,
) -> Result<(), NatError> {
    let t = chunk_mut::<N>(frame, at)?;
    let old_port = get16(t, port_at.clone());
    set16(t, port_at, port);
    let old_ck = get16(t, ck_at.clone());
    if udp && old_ck == 0 {
        return Ok(()); // UDP without checksum stays without
    }
    let mut ck = ip_delta.word(old_port, port).apply(old_ck);
    if udp && ck == 0 {
        ck = 0xffff; // a computed zero is sent as all ones
    }
    set16(t, ck_at, ck);
    Ok(())
}

#[inline(always)]
fn rewrite(frame: &mut [u8], p: &Parsed, ip: Ipv4Addr, port: u16, side: Side) -> Result<(), NatError> {
    let v4 = ipv4_of(p)?;
    let l3 = usize::from(v4.offset);
    // Check the whole extent first so that nothing is written on error.
    let end = match v4.l4 {
        L4::Tcp(t) => usize::from(t.offset) + tcp::MIN_HEADER_LEN,
        L4::Udp(u) => usize::from(u.offset) + udp::HEADER_LEN,
        _ => l3 + ipv4::MIN_HEADER_LEN,
    };
    if frame.len() < end {
        return Err(NatError::FrameTooShort);
    }
    let new_ip = u32::from(ip);
    let h = chunk_mut::<{ ipv4::MIN_HEADER_LEN }>(frame, l3)?;
    let old_ip = get32(h, side.ip());
    set32(h, side.ip(), new_ip);
    let ip_delta = Incremental::new().dword(old_ip, new_ip);
    let hc = ip_delta.apply(get16(h, ipv4::field::CHECKSUM));
    set16(h, ipv4::field::CHECKSUM, hc);
    match v4.l4 {
        L4::Tcp(t) => rewrite_l4::<{ tcp::MIN_HEADER_LEN }>(
            frame,
            usize::from(t.offset),
            (side.tcp_port(), tcp::field::CHECKSUM),
            false,
            ip_delta,
            port,
        ),
        L4::Udp(u) => rewrite_l4::<{ udp::HEADER_LEN }>(
            frame,
            usize::from(u.offset),
            (side.udp_port(), udp::field::CHECKSUM),
            true,
            ip_delta,
            port,
        ),
        _ => Ok(()),
    }
}

/// Rewrites the destination address and, for TCP and UDP, the destination port (client →
/// real server), adjusting the IP and TCP/UDP checksums incrementally. For other
/// protocols (ICMP, ...) only the address changes and `new_port` is ignored.
#[inline(always)]
pub fn rewrite_dst(frame: &mut [u8], parsed: &Parsed, new_ip: Ipv4Addr, new_port: u16) -> Result<(), NatError> {
    rewrite(frame, parsed, new_ip, new_port, Side::Dst)
}

/// Rewrites the source address and, for TCP and UDP, the source port (real server →
/// client, or source NAT), adjusting the IP and TCP/UDP checksums incrementally. For other
/// protocols only the address changes and `new_port` is ignored.
#[inline(always)]
pub fn rewrite_src(frame: &mut [u8], parsed: &Parsed, new_ip: Ipv4Addr, new_port: u16) -> Result<(), NatError> {
    rewrite(frame, parsed, new_ip, new_port, Side::Src)
}

/// Sets the Ethernet source and destination MACs (the VLAN tag, if any, is kept).
#[inline(always)]
pub fn set_macs(frame: &mut [u8], src: MacAddr, dst: MacAddr) -> Result<(), NatError> {
    let e = frame.first_chunk_mut::<{ ethernet::field::SRC.end }>().ok_or(NatError::FrameTooShort)?;
    set_mac(e, ethernet::field::DST, dst);
    set_mac(e, ethernet::field::SRC, src);
    Ok(())
}

/// Decrements the TTL and adjusts the header checksum incrementally; returns the new TTL.
///
/// A TTL of 0 or 1 is [`NatError::TtlExpired`] and the frame is left unchanged (the
/// dataplane drops it, or answers with ICMP time exceeded).
#[inline(always)]
pub fn decrement_ttl(frame: &mut [u8], parsed: &Parsed) -> Result<u8, NatError> {
    let v4 = ipv4_of(parsed)?;
    let h = chunk_mut::<{ ipv4::MIN_HEADER_LEN }>(frame, usize::from(v4.offset))?;
    let ttl = h[ipv4::field::TTL];
    if ttl <= 1 {
        return Err(NatError::TtlExpired);
    }
    set_ttl(h, ttl - 1);
    Ok(ttl - 1)
}

/// Turns a received ARP request into our reply, in place and at the same length:
/// "`tpa` is at `our_mac`", sent to the requester. The caller has checked that the
/// requested address (`parsed.arp().tpa`) is one we answer for.
pub fn build_arp_reply_in_place(frame: &mut [u8], parsed: &Parsed, our_mac: MacAddr) -> Result<(), NatError> {
    match parsed.arp() {
        Some(a) if a.op == arp::op::REQUEST => {}
        _ => return Err(NatError::NotArpRequest),
    }
    let l2 = parsed.l2_len();
    if frame.len() < l2 + arp::PACKET_LEN {
        return Err(NatError::FrameTooShort);
    }
    let a = chunk_mut::<{ arp::PACKET_LEN }>(frame, l2)?;
    let sha = get_mac(a, arp::field::SHA);
    let spa = get32(a, arp::field::SPA);
    let tpa = get32(a, arp::field::TPA);
    set16(a, arp::field::OPER, arp::op::REPLY);
    set_mac(a, arp::field::SHA, our_mac);
    set32(a, arp::field::SPA, tpa);
    set_mac(a, arp::field::THA, sha);
    set32(a, arp::field::TPA, spa);
    set_macs(frame, our_mac, sha)
}

fn build_arp(
    buf: &mut [u8],
    eth_dst: MacAddr,
    src_mac: MacAddr,
    vlan: Option<u16>,
    spa: Ipv4Addr,
    tpa: Ipv4Addr,
) -> Result<usize, NatError> {
    let l2 = if vlan.is_some() { ethernet::VLAN_HEADER_LEN } else { ethernet::HEADER_LEN };
    let len = (l2 + arp::PACKET_LEN).max(ethernet::MIN_FRAME_LEN);
    let out = buf.get_mut(..len).ok_or(NatError::BufferTooSmall)?;
    out.fill(0);
    ethernet::write_header(out, eth_dst, src_mac, vlan, ethertype::ARP).ok_or(NatError::BufferTooSmall)?;
    let a = out.get_mut(l2..l2 + arp::PACKET_LEN).ok_or(NatError::BufferTooSmall)?;
    let mut p = arp::Packet::new_unchecked(a);
    p.init_ethernet_ipv4();
    p.set_operation(arp::op::REQUEST);
    p.set_sha(src_mac);
    p.set_spa(spa);
    p.set_tha(MacAddr::ZERO);
    p.set_tpa(tpa);
    Ok(len)
}

/// Builds a broadcast ARP request "who has `target_ip`? tell `src_ip`" into `buf`, tagged
/// with `vlan` if given, zero-padded to the 60-byte Ethernet minimum; returns its length.
pub fn build_arp_request(
    buf: &mut [u8],
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
    vlan: Option<u16>,
) -> Result<usize, NatError> {
    build_arp(buf, MacAddr::BROADCAST, src_mac, vlan, src_ip, target_ip)
}

/// Builds a gratuitous ARP (a broadcast request with sender and target address both
/// `ip`) announcing `ip` at `src_mac`, padded like [`build_arp_request`]; returns its
/// length.
pub fn build_gratuitous_arp(
    buf: &mut [u8],
    src_mac: MacAddr,
    ip: Ipv4Addr,
    vlan: Option<u16>,
) -> Result<usize, NatError> {
    build_arp(buf, MacAddr::BROADCAST, src_mac, vlan, ip, ip)
}

/// Turns a received ICMP echo request into its reply, in place and at the same length:
/// MACs and addresses swapped, TTL set to [`DEFAULT_TTL`], type 0. Both checksums are
/// updated incrementally (the echo data is not read, so a request with a bad ICMP
/// checksum gets a reply with a bad one; verify first with
/// [`crate::wire::icmp::Packet::verify_checksum`] if that matters).
pub fn icmp_echo_reply_in_place(frame: &mut [u8], parsed: &Parsed) -> Result<(), NatError> {
    let v4 = ipv4_of(parsed)?;
    let icmp = match v4.l4 {
        L4::Icmp(i) if !v4.is_fragment && i.msg_type == msg_type::ECHO_REQUEST && i.code == 0 => i,
        _ => return Err(NatError::NotEchoRequest),
    };
    let (l3, l4) = (usize::from(v4.offset), usize::from(icmp.offset));
    if frame.len() < l4 + icmp::HEADER_LEN || l3 < ethernet::field::SRC.end {
        return Err(NatError::FrameTooShort);
    }
    swap_macs(frame)?;
    let h = chunk_mut::<{ ipv4::MIN_HEADER_LEN }>(frame, l3)?;
    swap_addrs(h);
    set_ttl(h, DEFAULT_TTL);
    let m = chunk_mut::<{ icmp::HEADER_LEN }>(frame, l4)?;
    // Type and code make one 16-bit word of the checksum.
    let word = |m: &[u8; icmp::HEADER_LEN]| u16::from_be_bytes([m[icmp::field::TYPE], m[icmp::field::CODE]]);
    let old = word(m);
    m[icmp::field::TYPE] = msg_type::ECHO_REPLY;
    let ck = checksum::update16(get16(m, icmp::field::CHECKSUM), old, word(m));
    set16(m, icmp::field::CHECKSUM, ck);
    Ok(())
}

/// Sets the TTL of an IPv4 header and adjusts its checksum incrementally.
#[inline(always)]
fn set_ttl(h: &mut [u8; ipv4::MIN_HEADER_LEN], ttl: u8) {
    // TTL and protocol make one 16-bit word of the checksum.
    let word = |h: &[u8; ipv4::MIN_HEADER_LEN]| u16::from_be_bytes([h[ipv4::field::TTL], h[ipv4::field::PROTOCOL]]);
    let old = word(h);
    h[ipv4::field::TTL] = ttl;
    let hc = checksum::update16(get16(h, ipv4::field::CHECKSUM), old, word(h));
    set16(h, ipv4::field::CHECKSUM, hc);
}

#[inline]
fn swap_macs(frame: &mut [u8]) -> Result<(), NatError> {
    let e = frame.first_chunk_mut::<{ ethernet::field::SRC.end }>().ok_or(NatError::FrameTooShort)?;
    let (d, s) = e.split_at_mut(ethernet::field::SRC.start);
    d.swap_with_slice(s);
    Ok(())
}

#[inline]
fn swap_addrs(h: &mut [u8; ipv4::MIN_HEADER_LEN]) {
    let (s, d) = h[ipv4::field::SRC.start..ipv4::field::DST.end].split_at_mut(ipv4::field::SRC.len());
    s.swap_with_slice(d);
}

/// Length of the IPv4 + TCP headers of the RSTs the appliance sends (no options).
const RST_LEN: usize = ipv4::MIN_HEADER_LEN + tcp::MIN_HEADER_LEN;

/// Writes a 40-byte IPv4 (no options, DF, TTL 64) + TCP (no options, window 0) RST with
/// full checksums.
fn write_rst(b: &mut [u8; RST_LEN], src: SocketAddrV4, dst: SocketAddrV4, seq: u32, ack: u32, flags: TcpFlags) {
    b.fill(0);
    let (h, t) = b.split_at_mut(ipv4::MIN_HEADER_LEN);
    let mut ip = ipv4::Packet::new_unchecked(h);
    ip.set_version_and_header_len(ipv4::MIN_HEADER_LEN);
    ip.set_total_len(RST_LEN as u16);
    ip.set_flags_frag(ipv4::FLAG_DF);
    ip.set_ttl(DEFAULT_TTL);
    ip.set_protocol(protocol::TCP);
    ip.set_src(*src.ip());
    ip.set_dst(*dst.ip());
    ip.fill_checksum();
    let mut seg = tcp::Packet::new_unchecked(t);
    seg.set_src_port(src.port());
    seg.set_dst_port(dst.port());
    seg.set_seq(seq);
    seg.set_ack(ack);
    seg.set_header_len(tcp::MIN_HEADER_LEN);
    seg.set_flags(flags);
    seg.fill_checksum(*src.ip(), *dst.ip());
}

/// Turns a received TCP segment into a RST to its sender, in place (RFC 9293 section
/// 3.10.7.1): MACs, addresses and ports swapped; if the segment had ACK, `seq` = its ack
/// and flags RST; else `seq` = 0, `ack` = its seq + segment length (payload, +1 SYN, +1
/// FIN) and flags RST|ACK. IP and TCP options and the payload are dropped, the VLAN tag is
/// kept, checksums are computed in full (RSTs are rare). Returns the new frame length:
/// headers only (l2 + 40 bytes), zero-padded to 60 bytes when the frame buffer allows.
pub fn tcp_rst_in_place(frame: &mut [u8], parsed: &Parsed) -> Result<usize, NatError> {
    let v4 = ipv4_of(parsed)?;
    let t = match v4.l4 {
        L4::Tcp(t) if !v4.is_fragment => t,
        _ => return Err(NatError::NotTcp),
    };
    if t.flags.contains(TcpFlags::RST) {
        return Err(NatError::IsRst);
    }
    let l3 = usize::from(v4.offset);
    if frame.len() < usize::from(t.offset) + tcp::MIN_HEADER_LEN || l3 < ethernet::field::SRC.end {
        return Err(NatError::FrameTooShort);
    }
    let (seq, ack, flags) = if t.flags.contains(TcpFlags::ACK) {
        (t.ack, 0, TcpFlags::RST)
    } else {
        (0, t.seq.wrapping_add(t.segment_len()), TcpFlags::RST | TcpFlags::ACK)
    };
    let to = SocketAddrV4::new(v4.src, t.src_port);
    let from = SocketAddrV4::new(v4.dst, t.dst_port);
    swap_macs(frame)?;
    write_rst(chunk_mut::<RST_LEN>(frame, l3)?, from, to, seq, ack, flags);
    Ok(pad_to_min(frame, l3 + RST_LEN))
}

/// Zero-pads `frame[len..60]` if the buffer is long enough; returns the padded length.
#[inline]
fn pad_to_min(frame: &mut [u8], len: usize) -> usize {
    match frame.get_mut(len..ethernet::MIN_FRAME_LEN) {
        Some(pad) => {
            pad.fill(0);
            ethernet::MIN_FRAME_LEN
        }
        None => len,
    }
}

/// Builds a TCP RST|ACK from `src` to `dst` with the given `seq` and `ack` (e.g. to reset
/// both ends of a flow on Force Remove), tagged with `vlan` if given, zero-padded to 60
/// bytes; returns its length.
#[allow(clippy::too_many_arguments)]
pub fn build_tcp_rst(
    buf: &mut [u8],
    src_mac: MacAddr,
    dst_mac: MacAddr,
    vlan: Option<u16>,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
) -> Result<usize, NatError> {
    let l2 = if vlan.is_some() { ethernet::VLAN_HEADER_LEN } else { ethernet::HEADER_LEN };
    let len = (l2 + RST_LEN).max(ethernet::MIN_FRAME_LEN);
    let out = buf.get_mut(..len).ok_or(NatError::BufferTooSmall)?;
    ethernet::write_header(out, dst_mac, src_mac, vlan, ethertype::IPV4).ok_or(NatError::BufferTooSmall)?;
    write_rst(chunk_mut::<RST_LEN>(out, l2)?, src, dst, seq, ack, TcpFlags::RST | TcpFlags::ACK);
    Ok(pad_to_min(out, l2 + RST_LEN))
}

#[cfg(test)]
#[path = "nat_tests.rs"]
mod tests;
