//! Frame builders: whole Ethernet/IPv4 frames written into a caller's buffer with full
//! checksums. For the packet generator, the exception path, tests and benchmarks — not
//! the forwarding fast path (see [`crate::nat`] for in-place rewrites).
//!
//! Each builder returns the frame length, or `None` if `buf` is too short. Frames are not
//! padded to the Ethernet minimum; the caller pads if its NIC does not.

use std::net::Ipv4Addr;

use super::ethernet::{self, ethertype, MacAddr};
use super::ipv4::{self, protocol};
use super::tcp::{self, TcpFlags};
use super::{icmp, udp};

/// The Ethernet and IPv4 headers of a frame to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Frame<'a> {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// VLAN ID for an 802.1Q tag, or none.
    pub vlan: Option<u16>,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Flags/fragment-offset word (e.g. [`ipv4::FLAG_DF`]).
    pub flags_frag: u16,
    /// IP options, padded by the caller to a multiple of 4 bytes (at most 40).
    pub options: &'a [u8],
}

impl Default for Ipv4Frame<'_> {
    fn default() -> Self {
        Ipv4Frame {
            src_mac: MacAddr([0x02, 0, 0, 0, 0, 0x01]),
            dst_mac: MacAddr([0x02, 0, 0, 0, 0, 0x02]),
            vlan: None,
            src: Ipv4Addr::new(10, 0, 0, 2),
            dst: Ipv4Addr::new(10, 0, 0, 100),
            ttl: 64,
            ident: 0,
            flags_frag: ipv4::FLAG_DF,
            options: &[],
        }
    }
}

impl Ipv4Frame<'_> {
    /// Writes Ethernet + IPv4 headers for `l4_len` bytes of `proto` payload; returns the
    /// L4 offset. The IP checksum is filled.
    fn write(&self, buf: &mut [u8], proto: u8, l4_len: usize) -> Option<usize> {
        if self.options.len() & 3 != 0 || self.options.len() > 40 {
            return None;
        }
        let l2 = ethernet::write_header(buf, self.dst_mac, self.src_mac, self.vlan, ethertype::IPV4)?;
        let hl = ipv4::MIN_HEADER_LEN + self.options.len();
        let total = u16::try_from(hl + l4_len).ok()?;
        let ip_buf = buf.get_mut(l2..l2 + usize::from(total))?;
        let mut ip = ipv4::Packet::new_unchecked(ip_buf);
        ip.set_version_and_header_len(hl);
        ip.set_dscp_ecn(0);
        ip.set_total_len(total);
        ip.set_ident(self.ident);
        ip.set_flags_frag(self.flags_frag);
        ip.set_ttl(self.ttl);
        ip.set_protocol(proto);
        ip.set_src(self.src);
        ip.set_dst(self.dst);
        let b = ip.into_inner();
        b[ipv4::MIN_HEADER_LEN..hl].copy_from_slice(self.options);
        let mut ip = ipv4::Packet::new_unchecked(b);
        ip.fill_checksum();
        Some(l2 + hl)
    }
}

/// The TCP header fields of a segment to build (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpSegment {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window.
    pub window: u16,
}

/// Builds an Ethernet/IPv4/TCP frame (options in `tcp_options`, a multiple of 4 bytes).
pub fn tcp_frame(
    buf: &mut [u8],
    ip: &Ipv4Frame<'_>,
    seg: &TcpSegment,
    tcp_options: &[u8],
    payload: &[u8],
) -> Option<usize> {
    if tcp_options.len() & 3 != 0 || tcp_options.len() > 40 {
        return None;
    }
    let th = tcp::MIN_HEADER_LEN + tcp_options.len();
    let l4 = ip.write(buf, protocol::TCP, th + payload.len())?;
    let end = l4 + th + payload.len();
    let seg_buf = buf.get_mut(l4..end)?;
    seg_buf[tcp::MIN_HEADER_LEN..th].copy_from_slice(tcp_options);
    seg_buf[th..].copy_from_slice(payload);
    let mut t = tcp::Packet::new_unchecked(seg_buf);
    t.set_src_port(seg.src_port);
    t.set_dst_port(seg.dst_port);
    t.set_seq(seg.seq);
    t.set_ack(seg.ack);
    t.set_header_len(th);
    t.set_flags(seg.flags);
    t.set_window(seg.window);
    t.set_urgent(0);
    t.fill_checksum(ip.src, ip.dst);
    Some(end)
}

/// Builds an Ethernet/IPv4/UDP frame; with `checksum == false` the UDP checksum is 0
/// ("none").
pub fn udp_frame(
    buf: &mut [u8],
    ip: &Ipv4Frame<'_>,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
    checksum: bool,
) -> Option<usize> {
    let ul = udp::HEADER_LEN + payload.len();
    let l4 = ip.write(buf, protocol::UDP, ul)?;
    let end = l4 + ul;
    let d = buf.get_mut(l4..end)?;
    d[udp::HEADER_LEN..].copy_from_slice(payload);
    let mut u = udp::Packet::new_unchecked(d);
    u.set_src_port(src_port);
    u.set_dst_port(dst_port);
    u.set_len(ul as u16);
    u.set_checksum(0);
    if checksum {
        u.fill_checksum(ip.src, ip.dst);
    }
    Some(end)
}

/// Builds an Ethernet/IPv4/ICMP echo request (or reply when `request` is false).
pub fn icmp_echo_frame(
    buf: &mut [u8],
    ip: &Ipv4Frame<'_>,
    request: bool,
    ident: u16,
    seq_no: u16,
    payload: &[u8],
) -> Option<usize> {
    let il = icmp::HEADER_LEN + payload.len();
    let l4 = ip.write(buf, protocol::ICMP, il)?;
    let end = l4 + il;
    let m = buf.get_mut(l4..end)?;
    m[icmp::HEADER_LEN..].copy_from_slice(payload);
    let mut p = icmp::Packet::new_unchecked(m);
    p.set_msg_type(if request { icmp::msg_type::ECHO_REQUEST } else { icmp::msg_type::ECHO_REPLY });
    p.set_code(0);
    p.set_ident(ident);
    p.set_seq_no(seq_no);
    p.fill_checksum();
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse, L4};

    #[test]
    fn tcp_roundtrip() {
        let mut buf = [0u8; 128];
        let opts = [1, 1, 1, 0];
        let ip = Ipv4Frame { vlan: Some(5), options: &opts, ..Default::default() };
        let seg = TcpSegment {
            src_port: 1234,
            dst_port: 80,
            seq: 7,
            ack: 9,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 512,
        };
        let n = tcp_frame(&mut buf, &ip, &seg, &[2, 4, 5, 0xb4], b"GET /").unwrap();
        assert_eq!(n, 18 + 24 + 24 + 5);
        let p = parse(&buf[..n]).unwrap();
        let v4 = p.ipv4().unwrap();
        assert_eq!((p.vlan, v4.header_len, v4.src, v4.dst), (Some(5), 24, ip.src, ip.dst));
        let L4::Tcp(t) = v4.l4 else { panic!("not tcp") };
        assert_eq!(
            (t.src_port, t.dst_port, t.seq, t.ack, t.flags, t.header_len, t.payload_len),
            (1234, 80, 7, 9, seg.flags, 24, 5)
        );
        let seg_bytes = &buf[t.offset as usize..n];
        assert!(tcp::Packet::new_checked(seg_bytes).unwrap().verify_checksum(ip.src, ip.dst));
        assert!(tcp_frame(&mut buf[..n - 1], &ip, &seg, &[2, 4, 5, 0xb4], b"GET /").is_none());
        assert!(tcp_frame(&mut buf, &ip, &seg, &[1], b"").is_none());
    }

    #[test]
    fn udp_and_icmp_roundtrip() {
        let mut buf = [0u8; 128];
        let ip = Ipv4Frame::default();
        let n = udp_frame(&mut buf, &ip, 5353, 53, b"q", true).unwrap();
        let p = parse(&buf[..n]).unwrap();
        let u = *p.ipv4().unwrap().udp().unwrap();
        assert_eq!((u.src_port, u.dst_port, u.payload_len), (5353, 53, 1));
        assert!(udp::Packet::new_checked(&buf[34..n]).unwrap().verify_checksum(ip.src, ip.dst));
        let n = icmp_echo_frame(&mut buf, &ip, true, 3, 4, b"ping").unwrap();
        let i = *parse(&buf[..n]).unwrap().ipv4().unwrap().icmp().unwrap();
        assert_eq!((i.msg_type, i.code, i.ident, i.seq_no), (8, 0, 3, 4));
        assert!(icmp::Packet::new_checked(&buf[34..n]).unwrap().verify_checksum());
    }
}
