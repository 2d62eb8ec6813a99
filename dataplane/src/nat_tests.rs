//! Unit tests of [`super`] (`nat.rs`).

use super::*;
use crate::wire::build::{self, Ipv4Frame, TcpSegment};
use crate::wire::{icmp, parse, tcp, udp};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RS: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);

fn tcp_frame(buf: &mut [u8], vlan: Option<u16>, opts: &[u8], flags: TcpFlags, payload: &[u8]) -> usize {
    let ip = Ipv4Frame { vlan, src: CLIENT, dst: VIP, options: opts, ..Default::default() };
    let seg = TcpSegment { src_port: 40000, dst_port: 80, seq: 1000, ack: 2000, flags, window: 100 };
    build::tcp_frame(buf, &ip, &seg, &[], payload).unwrap()
}

/// Parses and checks every checksum of an IPv4 frame.
fn assert_valid(frame: &[u8]) -> Parsed {
    let p = parse(frame).expect("parses (IP checksum ok)");
    let v4 = *p.ipv4().unwrap();
    let seg = &frame[v4.l4_offset()..usize::from(v4.offset) + usize::from(v4.total_len)];
    match v4.l4 {
        L4::Tcp(_) => assert!(tcp::Packet::new_checked(seg).unwrap().verify_checksum(v4.src, v4.dst)),
        L4::Udp(_) => assert!(udp::Packet::new_checked(seg).unwrap().verify_checksum(v4.src, v4.dst)),
        L4::Icmp(_) => assert!(icmp::Packet::new_checked(seg).unwrap().verify_checksum()),
        _ => {}
    }
    p
}

#[test]
fn rewrite_dst_tcp() {
    let mut f = [0u8; 128];
    let n = tcp_frame(&mut f, Some(7), &[1, 1, 1, 0], TcpFlags::ACK, b"GET / HTTP/1.0");
    let p = parse(&f[..n]).unwrap();
    rewrite_dst(&mut f[..n], &p, RS, 8080).unwrap();
    let q = assert_valid(&f[..n]);
    let v4 = q.ipv4().unwrap();
    assert_eq!((v4.src, v4.dst, v4.ports()), (CLIENT, RS, Some((40000, 8080))));
    rewrite_src(&mut f[..n], &q, VIP, 80).unwrap();
    let r = assert_valid(&f[..n]);
    assert_eq!(r.ipv4().unwrap().ports(), Some((80, 8080)));
}

#[test]
fn rewrite_udp_keeps_zero_checksum_zero() {
    let mut f = [0u8; 128];
    let ip = Ipv4Frame { src: CLIENT, dst: VIP, ..Default::default() };
    for with_ck in [false, true] {
        let n = build::udp_frame(&mut f, &ip, 5353, 53, b"query", with_ck).unwrap();
        let p = parse(&f[..n]).unwrap();
        rewrite_dst(&mut f[..n], &p, RS, 5300).unwrap();
        let q = assert_valid(&f[..n]);
        let u = *q.ipv4().unwrap().udp().unwrap();
        assert_eq!(u.dst_port, 5300);
        assert_eq!(u.checksum == 0, !with_ck);
    }
}

#[test]
fn rewrite_icmp_changes_address_only() {
    let mut f = [0u8; 128];
    let n = build::icmp_echo_frame(&mut f, &Ipv4Frame::default(), true, 1, 2, b"x").unwrap();
    let before = f;
    let p = parse(&f[..n]).unwrap();
    rewrite_dst(&mut f[..n], &p, RS, 9999).unwrap();
    let q = assert_valid(&f[..n]);
    assert_eq!(q.ipv4().unwrap().dst, RS);
    assert_eq!(&f[34..n], &before[34..n]);
}

#[test]
fn short_or_mismatched_frames_are_errors_and_untouched() {
    let mut f = [0u8; 128];
    let n = tcp_frame(&mut f, None, &[], TcpFlags::ACK, b"");
    let p = parse(&f[..n]).unwrap();
    let before = f;
    assert_eq!(rewrite_dst(&mut f[..n - 1], &p, RS, 1), Err(NatError::FrameTooShort));
    assert_eq!(tcp_rst_in_place(&mut f[..n - 1], &p), Err(NatError::FrameTooShort));
    assert_eq!(set_macs(&mut f[..11], MacAddr::ZERO, MacAddr::ZERO), Err(NatError::FrameTooShort));
    assert_eq!(f, before);
    let arp = parse(&[0u8; 14]).unwrap();
    assert_eq!(rewrite_src(&mut f, &arp, RS, 1), Err(NatError::NotIpv4));
    assert_eq!(decrement_ttl(&mut f, &arp), Err(NatError::NotIpv4));
    assert_eq!(icmp_echo_reply_in_place(&mut f, &p), Err(NatError::NotEchoRequest));
    assert_eq!(build_arp_reply_in_place(&mut f, &p, MacAddr::ZERO), Err(NatError::NotArpRequest));
}

#[test]
fn macs_and_ttl() {
    let mut f = [0u8; 128];
    let n = tcp_frame(&mut f, None, &[], TcpFlags::ACK, b"");
    let p = parse(&f[..n]).unwrap();
    let (a, b) = (MacAddr([2, 0, 0, 0, 0, 0xa]), MacAddr([2, 0, 0, 0, 0, 0xb]));
    set_macs(&mut f[..n], a, b).unwrap();
    assert_eq!((&f[0..6], &f[6..12]), (&b.0[..], &a.0[..]));
    assert_eq!(decrement_ttl(&mut f[..n], &p), Ok(63));
    assert_eq!(assert_valid(&f[..n]).ipv4().unwrap().ttl, 63);
    f[22] = 1;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::ipv4_header(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let before = f;
    assert_eq!(decrement_ttl(&mut f[..n], &p), Err(NatError::TtlExpired));
    assert_eq!(f, before);
}

#[test]
fn arp_request_reply_and_gratuitous() {
    let (ours, theirs) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
    let gw = Ipv4Addr::new(10, 0, 0, 1);
    let mut f = [0u8; 64];
    for vlan in [None, Some(10)] {
        let n = build_arp_request(&mut f, theirs, CLIENT, gw, vlan).unwrap();
        assert_eq!(n, 60);
        let p = parse(&f[..n]).unwrap();
        let a = *p.arp().unwrap();
        assert_eq!((p.vlan, a.op, a.sha, a.spa, a.tha, a.tpa), (vlan, 1, theirs, CLIENT, MacAddr::ZERO, gw));
        assert!(f[..6] == [0xff; 6]);
        build_arp_reply_in_place(&mut f[..n], &p, ours).unwrap();
        let r = parse(&f[..n]).unwrap();
        let a = *r.arp().unwrap();
        assert_eq!((r.vlan, a.op, a.sha, a.spa, a.tha, a.tpa), (vlan, 2, ours, gw, theirs, CLIENT));
        assert_eq!((&f[..6], &f[6..12]), (&theirs.0[..], &ours.0[..]));
        assert_eq!(build_arp_reply_in_place(&mut f[..n], &r, ours), Err(NatError::NotArpRequest));
    }
    let n = build_gratuitous_arp(&mut f, ours, gw, None).unwrap();
    let a = *parse(&f[..n]).unwrap().arp().unwrap();
    assert_eq!((a.op, a.sha, a.spa, a.tpa), (1, ours, gw, gw));
    assert_eq!(build_arp_request(&mut f[..59], ours, gw, gw, None), Err(NatError::BufferTooSmall));
}

#[test]
fn echo_reply() {
    let mut f = [0u8; 128];
    let ip = Ipv4Frame { src: CLIENT, dst: VIP, ttl: 3, vlan: Some(2), ..Default::default() };
    let n = build::icmp_echo_frame(&mut f, &ip, true, 0x77, 9, b"0123456789").unwrap();
    let p = parse(&f[..n]).unwrap();
    icmp_echo_reply_in_place(&mut f[..n], &p).unwrap();
    let q = assert_valid(&f[..n]);
    let v4 = q.ipv4().unwrap();
    assert_eq!((v4.src, v4.dst, v4.ttl), (VIP, CLIENT, DEFAULT_TTL));
    let i = v4.icmp().unwrap();
    assert_eq!((i.msg_type, i.code, i.ident, i.seq_no), (0, 0, 0x77, 9));
    assert_eq!((&f[..6], &f[6..12]), (&ip.src_mac.0[..], &ip.dst_mac.0[..]));
    assert_eq!(icmp_echo_reply_in_place(&mut f[..n], &q), Err(NatError::NotEchoRequest));
}

#[test]
fn rst_for_syn_and_for_ack() {
    for (vlan, opts) in [(None, &[][..]), (Some(3), &[1, 1, 1, 0][..])] {
        // SYN without ACK: seq 0, ack = seq + 1, RST|ACK.
        let mut f = [0u8; 128];
        let n = tcp_frame(&mut f, vlan, opts, TcpFlags::SYN, b"");
        let p = parse(&f[..n]).unwrap();
        let len = tcp_rst_in_place(&mut f[..n], &p).unwrap();
        let l2 = p.l2_len();
        assert_eq!(len, (l2 + 40).max(60).min(n));
        let q = assert_valid(&f[..len]);
        let v4 = q.ipv4().unwrap();
        assert_eq!((v4.src, v4.dst, v4.header_len, v4.total_len, q.vlan), (VIP, CLIENT, 20, 40, vlan));
        let t = v4.tcp().unwrap();
        assert_eq!(
            (t.src_port, t.dst_port, t.seq, t.ack, t.flags),
            (80, 40000, 0, 1001, TcpFlags::RST | TcpFlags::ACK)
        );
        assert_eq!(t.payload_len, 0);
        // Data with ACK and FIN: seq = their ack, RST only.
        let n = tcp_frame(&mut f, vlan, opts, TcpFlags::ACK | TcpFlags::FIN | TcpFlags::PSH, b"hello");
        let p = parse(&f[..n]).unwrap();
        let len = tcp_rst_in_place(&mut f[..n], &p).unwrap();
        let t = *assert_valid(&f[..len]).ipv4().unwrap().tcp().unwrap();
        assert_eq!((t.seq, t.ack, t.flags), (2000, 0, TcpFlags::RST));
        // No ACK, data + FIN: ack = seq + 5 + 1.
        let n = tcp_frame(&mut f, vlan, opts, TcpFlags::FIN, b"hello");
        let p = parse(&f[..n]).unwrap();
        let len = tcp_rst_in_place(&mut f[..n], &p).unwrap();
        let t = *assert_valid(&f[..len]).ipv4().unwrap().tcp().unwrap();
        assert_eq!((t.seq, t.ack), (0, 1006));
        // Never answer a RST.
        let n = tcp_frame(&mut f, vlan, opts, TcpFlags::RST, b"");
        let p = parse(&f[..n]).unwrap();
        assert_eq!(tcp_rst_in_place(&mut f[..n], &p), Err(NatError::IsRst));
    }
}

#[test]
fn rst_builder() {
    let mut f = [0u8; 64];
    let (a, b) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
    let (src, dst) = (SocketAddrV4::new(VIP, 80), SocketAddrV4::new(CLIENT, 40000));
    for vlan in [None, Some(100)] {
        let n = build_tcp_rst(&mut f, a, b, vlan, src, dst, 5, 6).unwrap();
        assert_eq!(n, 60);
        let p = assert_valid(&f[..n]);
        let v4 = p.ipv4().unwrap();
        let t = v4.tcp().unwrap();
        assert_eq!((p.vlan, v4.src, v4.dst, v4.ttl), (vlan, VIP, CLIENT, DEFAULT_TTL));
        assert_eq!((t.src_port, t.dst_port, t.seq, t.ack, t.flags), (80, 40000, 5, 6, TcpFlags::RST | TcpFlags::ACK));
        assert_eq!((&f[..6], &f[6..12]), (&b.0[..], &a.0[..]));
    }
    assert_eq!(build_tcp_rst(&mut f[..59], a, b, None, src, dst, 0, 0), Err(NatError::BufferTooSmall));
}
