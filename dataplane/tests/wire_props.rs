//! Property tests of the packet views, the fast-path parser and the NAT rewrites.

use std::net::{Ipv4Addr, SocketAddrV4};

use dataplane::nat::{self, NatError};
use dataplane::wire::build::{self, Ipv4Frame, TcpSegment};
use dataplane::wire::{arp, checksum, ethernet, icmp, ipv4, parse, tcp, udp, MacAddr, TcpFlags, L4};
use proptest::prelude::*;

/// Exercises every accessor of every view that accepts `b`; none may panic.
fn poke_views(b: &[u8]) {
    if let Ok(f) = ethernet::Frame::new_checked(b) {
        let _ = (f.dst(), f.src(), f.vlan_id(), f.ethertype(), f.header_len(), f.payload().len());
    }
    if let Ok(a) = arp::Packet::new_checked(b) {
        let _ = (a.operation(), a.sha(), a.spa(), a.tha(), a.tpa());
    }
    if let Ok(p) = ipv4::Packet::new_checked(b) {
        let _ = (p.header_len(), p.total_len(), p.ident(), p.is_fragment(), p.frag_offset(), p.ttl(), p.protocol());
        let _ = (p.src(), p.dst(), p.options().len(), p.payload().len(), p.verify_checksum(), p.check_checksum());
    }
    let (s, d) = (Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8));
    if let Ok(t) = tcp::Packet::new_checked(b) {
        let _ = (t.src_port(), t.dst_port(), t.seq(), t.ack(), t.flags(), t.window(), t.urgent());
        let _ = (t.options().len(), t.payload().len(), t.segment_len(), t.verify_checksum(s, d));
    }
    if let Ok(u) = udp::Packet::new_checked(b) {
        let _ = (u.src_port(), u.dst_port(), u.len(), u.checksum(), u.payload().len(), u.verify_checksum(s, d));
    }
    if let Ok(i) = icmp::Packet::new_checked(b) {
        let _ = (i.msg_type(), i.code(), i.ident(), i.seq_no(), i.payload().len(), i.verify_checksum());
    }
}

/// Parses `b` and, if it parses, runs every in-place operation on a copy; none may panic.
fn poke_parse_and_nat(b: &[u8]) {
    for off in 0..b.len().min(64) {
        poke_views(&b[off..]);
    }
    if let Ok(p) = parse(b) {
        let mut f = b.to_vec();
        let ip = Ipv4Addr::new(9, 9, 9, 9);
        let _ = nat::rewrite_dst(&mut f, &p, ip, 1);
        let _ = nat::rewrite_src(&mut f, &p, ip, 2);
        let _ = nat::decrement_ttl(&mut f, &p);
        let _ = nat::set_macs(&mut f, MacAddr::ZERO, MacAddr::BROADCAST);
        let _ = nat::build_arp_reply_in_place(&mut b.to_vec(), &p, MacAddr::ZERO);
        let _ = nat::icmp_echo_reply_in_place(&mut b.to_vec(), &p);
        let _ = nat::tcp_rst_in_place(&mut b.to_vec(), &p);
        // Same summary on a shorter frame: errors, never panics.
        let n = f.len() / 2;
        let _ = nat::rewrite_dst(&mut f[..n], &p, ip, 1);
        let _ = nat::tcp_rst_in_place(&mut f[..n], &p);
        let _ = nat::icmp_echo_reply_in_place(&mut f[..n], &p);
        let _ = nat::build_arp_reply_in_place(&mut f[..n], &p, MacAddr::ZERO);
    }
}

#[derive(Debug, Clone)]
enum Proto {
    Tcp { seq: u32, ack: u32, flags: u8, options: Vec<u8> },
    Udp { checksum: bool },
    Icmp { request: bool, ident: u16, seq: u16 },
}

#[derive(Debug, Clone)]
struct Spec {
    vlan: Option<u16>,
    ip_options: Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    ttl: u8,
    ident: u16,
    proto: Proto,
    payload: Vec<u8>,
}

fn words(max_words: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..=max_words).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n * 4))
}

fn arb_proto() -> impl Strategy<Value = Proto> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), any::<u8>(), words(10)).prop_map(|(seq, ack, flags, options)| Proto::Tcp {
            seq,
            ack,
            flags,
            options
        }),
        any::<bool>().prop_map(|checksum| Proto::Udp { checksum }),
        (any::<bool>(), any::<u16>(), any::<u16>()).prop_map(|(request, ident, seq)| Proto::Icmp {
            request,
            ident,
            seq
        }),
    ]
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    arb_spec_with(arb_proto().boxed())
}

fn tcp_proto() -> BoxedStrategy<Proto> {
    (any::<u32>(), any::<u32>(), any::<u8>(), words(10))
        .prop_map(|(seq, ack, flags, options)| Proto::Tcp { seq, ack, flags, options })
        .boxed()
}

fn echo_request_proto() -> BoxedStrategy<Proto> {
    (any::<u16>(), any::<u16>()).prop_map(|(ident, seq)| Proto::Icmp { request: true, ident, seq }).boxed()
}

prop_compose! {
    fn arb_spec_with(proto: BoxedStrategy<Proto>)(
        vlan in proptest::option::of(0u16..4096),
        ip_options in words(10),
        src in any::<u32>(), dst in any::<u32>(),
        sport in any::<u16>(), dport in any::<u16>(),
        ttl in any::<u8>(), ident in any::<u16>(),
        proto in proto,
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) -> Spec {
        Spec { vlan, ip_options, src: src.into(), dst: dst.into(), sport, dport, ttl, ident, proto, payload }
    }
}

fn build(spec: &Spec) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let ip = Ipv4Frame {
        vlan: spec.vlan,
        src: spec.src,
        dst: spec.dst,
        ttl: spec.ttl,
        ident: spec.ident,
        options: &spec.ip_options,
        ..Default::default()
    };
    let n = match &spec.proto {
        Proto::Tcp { seq, ack, flags, options } => {
            let seg = TcpSegment {
                src_port: spec.sport,
                dst_port: spec.dport,
                seq: *seq,
                ack: *ack,
                flags: TcpFlags(*flags),
                window: 1000,
            };
            build::tcp_frame(&mut buf, &ip, &seg, options, &spec.payload)
        }
        Proto::Udp { checksum } => build::udp_frame(&mut buf, &ip, spec.sport, spec.dport, &spec.payload, *checksum),
        Proto::Icmp { request, ident, seq } => {
            build::icmp_echo_frame(&mut buf, &ip, *request, *ident, *seq, &spec.payload)
        }
    }
    .expect("fits");
    buf.truncate(n);
    buf
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        poke_parse_and_nat(&b);
    }

    #[test]
    fn parse_never_panics_on_mutated_frames(
        spec in arb_spec(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = build(&spec);
        for (i, x) in flips {
            let i = i.index(f.len());
            f[i] = x;
        }
        let n = cut.index(f.len() + 1);
        poke_parse_and_nat(&f);
        poke_parse_and_nat(&f[..n]);
    }

    /// Whatever the builder writes, the parser reads back.
    #[test]
    fn build_then_parse(spec in arb_spec()) {
        let f = build(&spec);
        let p = parse(&f).unwrap();
        prop_assert_eq!(p.vlan, spec.vlan);
        let v4 = *p.ipv4().unwrap();
        prop_assert_eq!((v4.src, v4.dst, v4.ttl, usize::from(v4.header_len)), (spec.src, spec.dst, spec.ttl, 20 + spec.ip_options.len()));
        prop_assert!(!v4.is_fragment);
        match (&spec.proto, v4.l4) {
            (Proto::Tcp { seq, ack, flags, options }, L4::Tcp(t)) => {
                prop_assert_eq!((t.src_port, t.dst_port, t.seq, t.ack, t.flags.bits()), (spec.sport, spec.dport, *seq, *ack, *flags));
                prop_assert_eq!(usize::from(t.header_len), 20 + options.len());
                prop_assert_eq!(usize::from(t.payload_len), spec.payload.len());
            }
            (Proto::Udp { .. }, L4::Udp(u)) => {
                prop_assert_eq!((u.src_port, u.dst_port, usize::from(u.payload_len)), (spec.sport, spec.dport, spec.payload.len()));
            }
            (Proto::Icmp { request, ident, seq }, L4::Icmp(i)) => {
                prop_assert_eq!((i.msg_type, i.ident, i.seq_no), (if *request { 8 } else { 0 }, *ident, *seq));
            }
            (s, l4) => prop_assert!(false, "{:?} parsed as {:?}", s, l4),
        }
    }

    /// Incremental rewrites give byte-for-byte the frame the builder makes with the new
    /// addresses and ports and full checksums.
    #[test]
    fn nat_rewrite_equals_full_recompute(spec in arb_spec(), new_ip in any::<u32>(), new_port in any::<u16>(), dst_side in any::<bool>()) {
        let mut f = build(&spec);
        let p = parse(&f).unwrap();
        let new_ip = Ipv4Addr::from(new_ip);
        let mut want = spec.clone();
        let ported = !matches!(spec.proto, Proto::Icmp { .. });
        if dst_side {
            nat::rewrite_dst(&mut f, &p, new_ip, new_port).unwrap();
            want.dst = new_ip;
            if ported { want.dport = new_port; }
        } else {
            nat::rewrite_src(&mut f, &p, new_ip, new_port).unwrap();
            want.src = new_ip;
            if ported { want.sport = new_port; }
        }
        prop_assert_eq!(f, build(&want));
    }

    /// Chained rewrites on one summary (DNAT + SNAT + TTL) equal a full recompute too.
    #[test]
    fn chained_rewrites_equal_full_recompute(spec in arb_spec(), a in any::<u32>(), b in any::<u32>(), pa in any::<u16>(), pb in any::<u16>()) {
        let mut f = build(&spec);
        let p = parse(&f).unwrap();
        let mut want = spec.clone();
        nat::rewrite_dst(&mut f, &p, a.into(), pa).unwrap();
        nat::rewrite_src(&mut f, &p, b.into(), pb).unwrap();
        want.dst = a.into();
        want.src = b.into();
        if !matches!(spec.proto, Proto::Icmp { .. }) {
            want.dport = pa;
            want.sport = pb;
        }
        match nat::decrement_ttl(&mut f, &p) {
            Ok(t) => {
                prop_assert!(spec.ttl > 1);
                prop_assert_eq!(t, spec.ttl - 1);
                want.ttl = spec.ttl - 1;
            }
            Err(e) => {
                prop_assert_eq!(e, NatError::TtlExpired);
                prop_assert!(spec.ttl <= 1);
            }
        }
        prop_assert_eq!(f, build(&want));
    }

    /// Any TCP segment that is not a RST turns into a RST with valid checksums, back to
    /// its sender, acknowledging what it sent.
    #[test]
    fn rst_in_place_is_valid(spec in arb_spec_with(tcp_proto()), pad in 0usize..20) {
        let mut f = build(&spec);
        f.resize(f.len() + pad, 0xee);
        let p = parse(&f).unwrap();
        let t = *p.ipv4().unwrap().tcp().unwrap();
        match nat::tcp_rst_in_place(&mut f, &p) {
            Err(e) => {
                prop_assert_eq!(e, NatError::IsRst);
                prop_assert!(t.flags.contains(TcpFlags::RST));
            }
            Ok(n) => {
                let l2 = p.l2_len();
                prop_assert!(n == (l2 + 40).max(60) || (f.len() < 60 && n == l2 + 40));
                let q = parse(&f[..n]).unwrap();
                let v4 = *q.ipv4().unwrap();
                prop_assert_eq!((v4.src, v4.dst, q.vlan, v4.total_len), (spec.dst, spec.src, spec.vlan, 40));
                let r = *v4.tcp().unwrap();
                prop_assert_eq!((r.src_port, r.dst_port, r.payload_len), (spec.dport, spec.sport, 0));
                let seg = &f[v4.l4_offset()..v4.l4_offset() + 20];
                prop_assert!(tcp::Packet::new_checked(seg).unwrap().verify_checksum(v4.src, v4.dst));
                if t.flags.contains(TcpFlags::ACK) {
                    prop_assert_eq!((r.seq, r.flags), (t.ack, TcpFlags::RST));
                } else {
                    prop_assert_eq!((r.seq, r.ack, r.flags), (0, t.seq.wrapping_add(t.segment_len()), TcpFlags::RST | TcpFlags::ACK));
                }
            }
        }
    }

    #[test]
    fn rst_builder_is_valid(vlan in proptest::option::of(0u16..4096), a in any::<u32>(), b in any::<u32>(), pa in any::<u16>(), pb in any::<u16>(), seq in any::<u32>(), ack in any::<u32>()) {
        let mut f = [0u8; 64];
        let (src, dst) = (SocketAddrV4::new(a.into(), pa), SocketAddrV4::new(b.into(), pb));
        let n = nat::build_tcp_rst(&mut f, MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]), vlan, src, dst, seq, ack).unwrap();
        let q = parse(&f[..n]).unwrap();
        let v4 = *q.ipv4().unwrap();
        let r = *v4.tcp().unwrap();
        prop_assert_eq!((q.vlan, v4.src, v4.dst, r.src_port, r.dst_port, r.seq, r.ack), (vlan, *src.ip(), *dst.ip(), pa, pb, seq, ack));
        let seg = &f[v4.l4_offset()..v4.l4_offset() + 20];
        prop_assert!(tcp::Packet::new_checked(seg).unwrap().verify_checksum(v4.src, v4.dst));
    }

    #[test]
    fn echo_reply_is_valid(spec in arb_spec_with(echo_request_proto())) {
        let mut f = build(&spec);
        let p = parse(&f).unwrap();
        nat::icmp_echo_reply_in_place(&mut f, &p).unwrap();
        let mut want = spec.clone();
        want.src = spec.dst;
        want.dst = spec.src;
        want.ttl = nat::DEFAULT_TTL;
        want.proto = match spec.proto { Proto::Icmp { ident, seq, .. } => Proto::Icmp { request: false, ident, seq }, _ => unreachable!() };
        let mut w = build(&want);
        // The builder's MACs are fixed; the reply swaps them.
        let (d, s) = w[..12].split_at_mut(6);
        d.swap_with_slice(s);
        prop_assert_eq!(f, w);
    }

    /// RFC 1624 update of any one 16-bit word equals recomputing the checksum.
    #[test]
    fn incremental_update16(mut data in proptest::collection::vec(any::<u8>(), 2..200), at in any::<prop::sample::Index>(), new in any::<u16>()) {
        if data.len() % 2 == 1 { data.pop(); }
        data[0] |= 0x40; // a non-zero word, as in every real header
        let full = |d: &[u8]| checksum::finish(checksum::sum(d));
        let before = full(&data);
        let i = at.index(data.len() / 2) * 2;
        let old = u16::from_be_bytes([data[i], data[i + 1]]);
        data[i..i + 2].copy_from_slice(&new.to_be_bytes());
        if checksum::sum(&data) != 0 {
            prop_assert_eq!(checksum::update16(before, old, new), full(&data));
        }
    }
}

#[test]
fn arp_builders_parse_back() {
    let mut f = [0u8; 64];
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    for vlan in [None, Some(1), Some(4095)] {
        let n = nat::build_gratuitous_arp(&mut f, mac, Ipv4Addr::new(10, 0, 1, 1), vlan).unwrap();
        let p = parse(&f[..n]).unwrap();
        assert_eq!(p.vlan, vlan);
        assert_eq!(p.arp().unwrap().sha, mac);
    }
}
