//! Byte-fixture tests of [`super::parse`].

use std::net::Ipv4Addr;

use super::build::{self, Ipv4Frame, TcpSegment};
use super::ethernet::MacAddr;
use super::*;

/// A hand-written 60-byte frame: 52:54:00:12:34:56 -> 02:00:00:00:00:01, IPv4
/// 10.0.0.2:40000 -> 10.0.0.100:80, TCP SYN seq 0x12345678, MSS option, plus 2 bytes of
/// Ethernet padding. The IP checksum is left zero and filled in by `syn_frame`.
const SYN_FRAME: [u8; 60] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00, // eth
    0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 10, 0, 0, 2, 10, 0, 0,
    100, // ip (checksum zero here)
    0x9c, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xfa, 0xf0, 0x00, 0x00, 0x00,
    0x00, 0x02, 0x04, 0x05, 0xb4, // tcp
    0x00, 0x00, // padding
];

fn syn_frame() -> [u8; 60] {
    let mut f = SYN_FRAME;
    let c = checksum::ipv4_header(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn tcp_syn() {
    let f = syn_frame();
    let p = parse(&f).unwrap();
    assert_eq!((p.l2_len, p.vlan, p.ethertype), (14, None, 0x0800));
    let ip = p.ipv4().unwrap();
    assert_eq!(ip.offset, 14);
    assert_eq!(ip.header_len, 20);
    assert_eq!(ip.total_len, 44);
    assert_eq!(ip.ttl, 64);
    assert_eq!(ip.protocol, 6);
    assert_eq!(ip.src, Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(ip.dst, Ipv4Addr::new(10, 0, 0, 100));
    assert!(!ip.is_fragment);
    assert_eq!(ip.ports(), Some((40000, 80)));
    assert_eq!(ip.l4_offset(), 34);
    assert_eq!(ip.payload_len(), 24);
    let t = ip.tcp().unwrap();
    assert_eq!(t.offset, 34);
    assert_eq!(t.flags, TcpFlags::SYN);
    assert_eq!((t.seq, t.ack, t.header_len, t.payload_len), (0x1234_5678, 0, 24, 0));
    assert_eq!(t.segment_len(), 1);
    assert!(ip.udp().is_none() && ip.icmp().is_none() && p.arp().is_none());
}

#[test]
fn tcp_errors() {
    let f = syn_frame();
    assert_eq!(parse(&f[..13]), Err(WireError::TruncatedEthernet));
    assert_eq!(parse(&f[..33]), Err(WireError::TruncatedIpv4));
    assert_eq!(parse(&f[..57]), Err(WireError::BadTotalLength));
    let mut bad = f;
    bad[14] = 0x65;
    assert_eq!(parse(&bad), Err(WireError::BadIpVersion));
    bad[14] = 0x44;
    assert_eq!(parse(&bad), Err(WireError::BadIhl));
    bad[14] = 0x4f; // 60-byte header does not fit in 46 bytes
    assert_eq!(parse(&bad), Err(WireError::BadIhl));
    let mut bad = f;
    bad[22] = 1; // TTL changed without checksum
    assert_eq!(parse(&bad), Err(WireError::BadIpChecksum));
    let mut bad = f;
    bad[46] = 0x40; // data offset 4
    assert_eq!(parse(&bad), Err(WireError::BadTcpDataOffset));
    bad[46] = 0x70; // 28 bytes > 24 available
    assert_eq!(parse(&bad), Err(WireError::BadTcpDataOffset));
    // IP total length too short to hold a TCP header.
    let mut bad = f;
    bad[16..18].copy_from_slice(&39u16.to_be_bytes());
    bad[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::ipv4_header(&bad[14..34]);
    bad[24..26].copy_from_slice(&c.to_be_bytes());
    assert_eq!(parse(&bad), Err(WireError::TruncatedTcp));
}

#[test]
fn ttl_one_is_not_an_error() {
    let mut buf = [0u8; 128];
    let ip = Ipv4Frame { ttl: 1, ..Default::default() };
    let n = build::udp_frame(&mut buf, &ip, 1, 2, b"", true).unwrap();
    assert_eq!(parse(&buf[..n]).unwrap().ipv4().unwrap().ttl, 1);
}

#[test]
fn vlan_and_ip_options() {
    let mut buf = [0u8; 128];
    let opts = [0x94, 0x04, 0x00, 0x00]; // router alert
    let ip = Ipv4Frame { vlan: Some(4095), options: &opts, ..Default::default() };
    let seg = TcpSegment { src_port: 1, dst_port: 2, flags: TcpFlags::ACK, ..Default::default() };
    let n = build::tcp_frame(&mut buf, &ip, &seg, &[], b"xyz").unwrap();
    let p = parse(&buf[..n]).unwrap();
    assert_eq!((p.l2_len, p.vlan), (18, Some(4095)));
    let v4 = p.ipv4().unwrap();
    assert_eq!((v4.offset, v4.header_len, v4.l4_offset()), (18, 24, 42));
    assert_eq!(v4.tcp().unwrap().payload_len, 3);
    assert_eq!(parse(&buf[..17]), Err(WireError::TruncatedVlan));
    // PCP bits are not part of the VLAN ID.
    buf[14] |= 0xe0;
    assert_eq!(parse(&buf[..n]).unwrap().vlan, Some(4095));
}

#[test]
fn udp() {
    let mut buf = [0u8; 128];
    let ip = Ipv4Frame::default();
    let n = build::udp_frame(&mut buf, &ip, 5353, 53, b"hello", false).unwrap();
    let u = *parse(&buf[..n]).unwrap().ipv4().unwrap().udp().unwrap();
    assert_eq!((u.offset, u.src_port, u.dst_port, u.payload_len, u.checksum), (34, 5353, 53, 5, 0));
    // Ethernet padding after the datagram is fine.
    assert_eq!(parse(&buf[..60]).unwrap().ipv4().unwrap().udp().unwrap().payload_len, 5);
    // UDP length beyond the IP payload, and below 8.
    for bad_len in [14u16, 7] {
        let mut b = buf;
        b[38..40].copy_from_slice(&bad_len.to_be_bytes());
        assert_eq!(parse(&b[..n]), Err(WireError::BadUdpLength));
    }
    // UDP length shorter than the IP payload is accepted (payload bounded by it).
    let mut b = buf;
    b[38..40].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(parse(&b[..n]).unwrap().ipv4().unwrap().udp().unwrap().payload_len, 2);
    // IP payload too short for a UDP header.
    let n = build::udp_frame(&mut buf, &ip, 1, 2, b"", false).unwrap();
    let mut b = buf;
    b[16..18].copy_from_slice(&27u16.to_be_bytes());
    b[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::ipv4_header(&b[14..34]);
    b[24..26].copy_from_slice(&c.to_be_bytes());
    assert_eq!(parse(&b[..n]), Err(WireError::TruncatedUdp));
}

#[test]
fn icmp() {
    let mut buf = [0u8; 128];
    let n = build::icmp_echo_frame(&mut buf, &Ipv4Frame::default(), true, 0x1a2b, 7, b"abcdefgh").unwrap();
    let i = *parse(&buf[..n]).unwrap().ipv4().unwrap().icmp().unwrap();
    assert_eq!((i.offset, i.msg_type, i.code, i.ident, i.seq_no), (34, 8, 0, 0x1a2b, 7));
    let n = build::icmp_echo_frame(&mut buf, &Ipv4Frame::default(), true, 0, 0, b"").unwrap();
    let mut b = buf;
    b[16..18].copy_from_slice(&27u16.to_be_bytes());
    b[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::ipv4_header(&b[14..34]);
    b[24..26].copy_from_slice(&c.to_be_bytes());
    assert_eq!(parse(&b[..n]), Err(WireError::TruncatedIcmp));
}

#[test]
fn fragments() {
    let mut buf = [0u8; 128];
    // First fragment (MF, offset 0) of a larger UDP datagram: ports parsed, length not
    // checked against this fragment.
    let ip = Ipv4Frame { flags_frag: ipv4::FLAG_MF, ..Default::default() };
    let n = build::udp_frame(&mut buf, &ip, 7, 9, &[0u8; 16], false).unwrap();
    buf[38..40].copy_from_slice(&3000u16.to_be_bytes());
    let v4 = *parse(&buf[..n]).unwrap().ipv4().unwrap();
    assert!(v4.is_fragment);
    assert_eq!(v4.ports(), Some((7, 9)));
    assert_eq!(v4.udp().unwrap().payload_len, 16);
    // A later fragment (offset != 0): no transport header is parsed.
    let ip = Ipv4Frame { flags_frag: 185, ..Default::default() };
    let n = build::udp_frame(&mut buf, &ip, 7, 9, &[], false).unwrap();
    let v4 = *parse(&buf[..n]).unwrap().ipv4().unwrap();
    assert!(v4.is_fragment);
    assert_eq!(v4.l4, L4::Fragment);
    assert_eq!(v4.ports(), None);
}

#[test]
fn arp() {
    let mut f = [0u8; 60];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..42].copy_from_slice(&[
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 2, 0, 0, 0, 0, 0,
        0, 10, 0, 0, 1,
    ]);
    let p = parse(&f).unwrap();
    let a = *p.arp().unwrap();
    assert_eq!(a.op, 1);
    assert_eq!(a.sha, MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
    assert_eq!((a.spa, a.tpa, a.tha), (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1), MacAddr::ZERO));
    assert!(p.ipv4().is_none());
    assert_eq!(parse(&f[..41]), Err(WireError::TruncatedArp));
    let mut bad = f;
    bad[19] = 16; // hlen
    assert_eq!(parse(&bad), Err(WireError::BadArp));
}

#[test]
fn other_ethertypes_and_protocols() {
    let mut f = syn_frame();
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let p = parse(&f).unwrap();
    assert_eq!((p.ethertype, p.l3), (0x86dd, L3::Other));
    // QinQ / double tags are "other" too.
    let mut f = [0u8; 22];
    f[12..14].copy_from_slice(&[0x81, 0x00]);
    f[16..18].copy_from_slice(&[0x81, 0x00]);
    let p = parse(&f).unwrap();
    assert_eq!((p.vlan, p.ethertype, p.l3), (Some(0), 0x8100, L3::Other));
    // GRE over IPv4.
    let mut f = syn_frame();
    f[23] = 47;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::ipv4_header(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let v4 = *parse(&f).unwrap().ipv4().unwrap();
    assert_eq!((v4.protocol, v4.l4), (47, L4::Other));
}

#[test]
fn parsed_is_small() {
    eprintln!("size_of::<Parsed>() = {}", std::mem::size_of::<Parsed>());
    assert!(std::mem::size_of::<Parsed>() <= 64, "{}", std::mem::size_of::<Parsed>());
}
