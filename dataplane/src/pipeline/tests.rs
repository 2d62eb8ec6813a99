//! Pipeline tests: frames from simulated clients and real servers through a real `Control`
//! and `Worker`, checked byte for byte.

use std::net::Ipv4Addr;
use std::sync::Arc;

use acm::{BindingKey, BindingParams, DropFraction, Primitive, ServiceKey};
use crossbeam::queue::ArrayQueue;
use proptest::prelude::*;

use super::*;
use crate::config::PortAddr;
use crate::control::Control;
use crate::counters::{DropReason, WorkerCounters};
use crate::generation::Generation;
use crate::generation::PortView;
use crate::lb::flows::FlowTable;
use crate::nat;
use crate::wire::build::{icmp_echo_frame, tcp_frame, udp_frame, Ipv4Frame, TcpSegment};
use crate::wire::{self, parse, Ipv4Info, MacAddr, TcpFlags, L3, L4};
use crate::wire::{checksum, ipv4, tcp};

const P0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const P1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xc1, 0, 0, 0, 0x02]);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SEC: u64 = 1_000_000_000;

fn rs(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1, 10 + i)
}
fn rs_mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0x5e, 0, 0, 0, i])
}
fn svc() -> ServiceKey {
    ServiceKey { vip: VIP, proto: acm::Proto::Tcp, vport: 80 }
}
fn bkey(i: u8) -> BindingKey {
    BindingKey { service: svc(), real: acm::RealServer { rip: rs(i), rport: 80 } }
}

struct Rig {
    control: Control,
    gen: Arc<Generation>,
    worker: Worker,
    now: u64,
}

impl Rig {
    fn new(servers: &[u8]) -> Rig {
        Self::with(servers, 1024, 0, 1, false)
    }

    fn with(servers: &[u8], capacity: usize, index: u16, workers: u16, snat: bool) -> Rig {
        let ports = vec![
            PortView { addr: PortAddr::parse("10.0.0.1/24").unwrap(), mac: P0_MAC, gateway: None },
            PortView { addr: PortAddr::parse("10.0.1.1/24").unwrap(), mac: P1_MAC, gateway: None },
        ];
        let mut control = Control::new(ports, 64, 8, 251);
        for &i in servers {
            control
                .apply(&Primitive::Add { key: bkey(i), params: BindingParams { weight: 1, source_nat: snat } })
                .unwrap();
            control.learn_neighbor(rs(i), rs_mac(i));
        }
        let gen = control.publish();
        let counters = Arc::new(WorkerCounters::new(64, 8));
        let cfg = WorkerConfig {
            index,
            workers,
            flow_capacity: capacity,
            timeouts: TimeoutsNs::default(),
            snat_ports: (10000, 10999),
            seed: 42,
        };
        let mut worker = Worker::new(cfg, counters, Arc::new(ArrayQueue::new(64)));
        worker.adopt(&gen);
        Rig { control, gen, worker, now: SEC }
    }

    fn apply(&mut self, p: Primitive) {
        self.control.apply(&p).unwrap();
        self.republish();
    }

    fn republish(&mut self) {
        self.gen = self.control.publish();
        self.worker.adopt(&self.gen);
    }

    fn run(&mut self, port: u16, frame: &mut Vec<u8>) -> Verdict {
        let v = self.worker.process(&self.gen, self.now, port, frame);
        if let Verdict::Forward { len, .. } = v {
            frame.truncate(len);
        }
        v
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.worker.counters().drops_of(r)
    }
}

fn client_tcp(cport: u16, flags: TcpFlags, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 1600];
    let ip = Ipv4Frame { src_mac: CLIENT_MAC, dst_mac: P0_MAC, src: CLIENT, dst: VIP, ..Default::default() };
    let n = tcp_frame(
        &mut buf,
        &ip,
        &TcpSegment { src_port: cport, dst_port: 80, seq, ack, flags, window: 65535 },
        &[],
        payload,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

fn server_tcp(i: u8, dst: (Ipv4Addr, u16), flags: TcpFlags, seq: u32, ack: u32) -> Vec<u8> {
    let mut buf = vec![0u8; 1600];
    let ip = Ipv4Frame { src_mac: rs_mac(i), dst_mac: P1_MAC, src: rs(i), dst: dst.0, ..Default::default() };
    let n = tcp_frame(
        &mut buf,
        &ip,
        &TcpSegment { src_port: 80, dst_port: dst.1, seq, ack, flags, window: 65535 },
        &[],
        b"hello",
    )
    .unwrap();
    buf.truncate(n);
    buf
}

/// Parses a forwarded frame and checks both checksums fully.
fn check(frame: &[u8]) -> (wire::Parsed, Ipv4Info, wire::TcpInfo) {
    let p = parse(frame).expect("forwarded frame parses (IP checksum verified)");
    let ip = *p.ipv4().unwrap();
    let L4::Tcp(t) = ip.l4 else { panic!("not tcp") };
    let seg = &frame[ip.l4_offset()..ip.offset as usize + ip.total_len as usize];
    assert!(checksum::verify(checksum::pseudo_header_v4(ip.src, ip.dst, 6, seg.len() as u16), seg), "TCP checksum");
    (p, ip, t)
}

fn server_of(ip: &Ipv4Info) -> u8 {
    ip.dst.octets()[3] - 10
}

#[test]
fn new_flow_is_natted_to_a_real_server_and_back() {
    let mut r = Rig::new(&[1, 2, 3]);
    let mut f = client_tcp(40000, TcpFlags::SYN, 100, 0, b"");
    assert_eq!(r.run(0, &mut f), Verdict::Forward { port: 1, len: f.len() });
    let (_, ip, t) = check(&f);
    let s = server_of(&ip);
    assert!((1..=3).contains(&s));
    assert_eq!((ip.src, t.src_port, t.dst_port), (CLIENT, 40000, 80));
    assert_eq!(ip.ttl, 63);
    assert_eq!(&f[0..6], &rs_mac(s).0);
    assert_eq!(&f[6..12], &P1_MAC.0);

    let mut back = server_tcp(s, (CLIENT, 40000), TcpFlags::SYN | TcpFlags::ACK, 5000, 101);
    assert_eq!(r.run(1, &mut back), Verdict::Forward { port: 0, len: back.len() });
    let (_, ip, t) = check(&back);
    assert_eq!((ip.src, t.src_port, ip.dst, t.dst_port), (VIP, 80, CLIENT, 40000));
    assert_eq!(&back[0..6], &CLIENT_MAC.0);
    assert_eq!(&back[6..12], &P0_MAC.0);

    let list = r.control.list(|slot| r.worker.counters().bindings[slot as usize].snapshot());
    let b = list.iter().find(|b| b.key == bkey(s)).unwrap();
    assert_eq!(
        (b.counters.new_flows, b.counters.active_flows, b.counters.packets_in, b.counters.packets_out),
        (1, 1, 1, 1)
    );
}

#[test]
fn flows_spread_over_servers_and_stick() {
    let mut r = Rig::new(&[1, 2, 3]);
    let mut seen = [0u32; 4];
    let mut chosen = Vec::new();
    for cport in 1000..1300u16 {
        let mut f = client_tcp(cport, TcpFlags::SYN, 1, 0, b"");
        assert!(matches!(r.run(0, &mut f), Verdict::Forward { port: 1, .. }));
        let s = server_of(&check(&f).1);
        seen[s as usize] += 1;
        chosen.push(s);
    }
    assert!(seen[1..].iter().all(|&n| n > 60), "{seen:?}");
    // Every later packet of each flow goes to the same server.
    for (i, cport) in (1000..1300u16).enumerate() {
        let mut f = client_tcp(cport, TcpFlags::ACK, 2, 1, b"GET /");
        r.run(0, &mut f);
        assert_eq!(server_of(&check(&f).1), chosen[i]);
    }
}

#[test]
fn remove_drains_existing_flows_keep_going_new_ones_avoid_it() {
    let mut r = Rig::new(&[1, 2, 3]);
    let mut f = client_tcp(5555, TcpFlags::SYN, 1, 0, b"");
    r.run(0, &mut f);
    let s = server_of(&check(&f).1);
    r.apply(Primitive::Remove { key: bkey(s) });
    // Established flow still forwarded both ways.
    let mut f = client_tcp(5555, TcpFlags::ACK, 2, 1, b"more");
    r.run(0, &mut f);
    assert_eq!(server_of(&check(&f).1), s);
    let mut back = server_tcp(s, (CLIENT, 5555), TcpFlags::ACK, 1, 6);
    assert!(matches!(r.run(1, &mut back), Verdict::Forward { port: 0, .. }));
    // New flows avoid it.
    for cport in 20000..20200u16 {
        let mut f = client_tcp(cport, TcpFlags::SYN, 1, 0, b"");
        r.run(0, &mut f);
        assert_ne!(server_of(&check(&f).1), s);
    }
    let draining = |r: &Rig| {
        r.control
            .list(|slot| r.worker.counters().bindings[slot as usize].snapshot())
            .into_iter()
            .find(|b| b.key == bkey(s))
    };
    let d = draining(&r).unwrap();
    assert_eq!((d.state, d.counters.active_flows), (acm::BindingState::Draining, 1));
    // The connection closes (FIN, FIN, last ACK): the drain is over at once, without waiting
    // for the closing timeout; the record stays for late segments.
    let flows = |r: &Rig, slot: u32| crate::counters::read(&r.worker.counters().bindings[slot as usize].active_flows);
    let mut fin = client_tcp(5555, TcpFlags::FIN | TcpFlags::ACK, 6, 6, b"");
    r.run(0, &mut fin);
    let mut fin2 = server_tcp(s, (CLIENT, 5555), TcpFlags::FIN | TcpFlags::ACK, 6, 7);
    assert!(matches!(r.run(1, &mut fin2), Verdict::Forward { port: 0, .. }));
    assert_eq!(draining(&r).unwrap().counters.active_flows, 1, "the last FIN is not acknowledged yet");
    let mut last_ack = client_tcp(5555, TcpFlags::ACK, 7, 7, b"");
    assert!(matches!(r.run(0, &mut last_ack), Verdict::Forward { .. }));
    assert_eq!(draining(&r).unwrap().counters.active_flows, 0);
    assert_eq!(r.worker.flow_count(), 201, "the closed flow's record stays until its timeout");
    let counters = r.worker.counters().clone();
    let gauge = |slot: u32| crate::counters::read(&counters.bindings[slot as usize].active_flows);
    assert_eq!(r.control.reap(gauge), crate::control::Outcome::Changed);
    r.republish();
    assert!(draining(&r).is_none());
    // When the record expires, no gauge goes below zero.
    r.now += 11 * SEC;
    r.worker.maintain(&r.gen.clone(), r.now, 1 << 20);
    for i in 0..64 {
        assert!(flows(&r, i) < 1 << 40, "gauge of slot {i} underflowed");
    }
}

#[test]
fn tcp_close_states() {
    use super::next_tcp_state as n;
    use TcpState::*;
    let (fin, ack, rst, syn) = (TcpFlags::FIN | TcpFlags::ACK, TcpFlags::ACK, TcpFlags::RST, TcpFlags::SYN);
    assert_eq!(n(SynSent, syn, false), SynSent);
    assert_eq!(n(SynSent, syn | ack, true), Established);
    // Client closes first.
    assert_eq!(n(Established, fin, false), FinClient);
    assert_eq!(n(FinClient, ack, true), FinClient);
    assert_eq!(n(FinClient, fin, false), FinClient, "a retransmitted FIN");
    assert_eq!(n(FinClient, fin, true), FinBoth);
    assert_eq!(n(FinBoth, fin, false), FinBoth, "FINs, no final ACK yet");
    assert_eq!(n(FinBoth, ack, false), Closed);
    // Server closes first.
    assert_eq!(n(Established, fin, true), FinServer);
    assert_eq!(n(FinServer, fin, false), FinBoth);
    assert_eq!(n(FinBoth, ack, true), Closed);
    // Closed and reset are final; RST wins everywhere.
    assert_eq!(n(Closed, syn, false), Closed);
    for s in [SynSent, Established, FinClient, FinServer, FinBoth, Closed] {
        assert_eq!(n(s, rst, true), Reset);
    }
    assert_eq!(n(Reset, ack, false), Reset);
    assert!(Closed.is_over() && Reset.is_over() && !FinBoth.is_over());
}

#[test]
fn force_remove_resets_clients_and_deletes_flows() {
    let mut r = Rig::new(&[1]);
    let mut f = client_tcp(7000, TcpFlags::SYN, 10, 0, b"");
    r.run(0, &mut f);
    let mut f = client_tcp(7000, TcpFlags::ACK, 11, 777, b"");
    r.run(0, &mut f);
    assert_eq!(r.worker.flow_count(), 1);
    r.apply(Primitive::ForceRemove { key: bkey(1) });
    assert_eq!(r.worker.flow_count(), 0);
    let emitted: Vec<Emit> = r.worker.outbox.drain().collect();
    assert_eq!(
        emitted,
        vec![Emit::Rst {
            port: 0,
            src_mac: P0_MAC,
            dst_mac: CLIENT_MAC,
            src: (VIP, 80),
            dst: (CLIENT, 7000),
            seq: 777
        }]
    );
    // The server's late packets are dropped; the binding is gone from List at once.
    let mut back = server_tcp(1, (CLIENT, 7000), TcpFlags::ACK, 777, 11);
    assert_eq!(r.run(1, &mut back), Verdict::Drop(DropReason::NoFlow));
    assert!(r.control.list(|_| Default::default()).is_empty());
    assert_eq!(crate::counters::read(&r.worker.counters().bindings[0].active_flows), 0);
}

#[test]
fn force_remove_at_scale_is_spread_over_maintain_calls() {
    // 40,000 flows on rs1 and rs2 in a 64k table: the purge must not walk it all at once, and
    // must end with every rs1 flow reset and deleted and every rs2 flow kept.
    let mut r = Rig::with(&[1, 2], 1 << 16, 0, 1, false);
    let n: u32 = 40_000;
    for i in 0..n {
        let (cport, c) = (1024 + (i % 60000) as u16, i / 60000);
        let mut f = client_tcp(cport, TcpFlags::SYN, c, 0, b"");
        assert!(matches!(r.run(0, &mut f), Verdict::Forward { .. }));
    }
    assert_eq!(r.worker.flow_count(), n as usize);
    let on = |r: &Rig, id: u32| crate::counters::read(&r.worker.counters().bindings[id as usize].active_flows);
    let slot1 = r.control.list(|_| Default::default()).iter().position(|b| b.key == bkey(1)).unwrap() as u32;
    let (rs1_flows, rs2_flows) = (on(&r, slot1), n as u64 - on(&r, slot1));
    assert!(rs1_flows > 10_000 && rs2_flows > 10_000, "{rs1_flows} / {rs2_flows}");
    r.apply(Primitive::ForceRemove { key: bkey(1) });
    // adopt did one bounded step only.
    assert!(r.worker.purging());
    assert!(r.worker.flow_count() > rs2_flows as usize);
    let mut rsts = r.worker.outbox.drain().count() as u64;
    let mut calls = 0;
    while r.worker.purging() {
        let g = r.gen.clone();
        r.worker.maintain(&g, r.now, 0);
        rsts += r.worker.outbox.drain().count() as u64;
        calls += 1;
        assert!(calls < 1000, "the purge does not end");
    }
    assert!(calls > 1, "one call walked the whole table");
    assert_eq!(rsts, rs1_flows, "one RST per reset flow");
    assert_eq!(r.worker.flow_count() as u64, rs2_flows);
    assert_eq!(on(&r, slot1), 0);
}

#[test]
fn drop_fraction_refuses_new_connections_only() {
    let mut r = Rig::with(&[1, 2], 8192, 0, 1, false);
    let mut f = client_tcp(9000, TcpFlags::SYN, 1, 0, b"");
    r.run(0, &mut f);
    r.apply(Primitive::Drop { service: svc(), fraction: DropFraction::ALL });
    let mut syn = client_tcp(9001, TcpFlags::SYN, 1, 0, b"");
    assert_eq!(r.run(0, &mut syn), Verdict::Drop(DropReason::Admission));
    let mut est = client_tcp(9000, TcpFlags::ACK, 2, 1, b"x");
    assert!(matches!(r.run(0, &mut est), Verdict::Forward { .. }));
    // A quarter: about a quarter of SYNs refused.
    r.apply(Primitive::Drop { service: svc(), fraction: DropFraction::new(0.25).unwrap() });
    let mut refused = 0;
    for cport in 30000..34000u16 {
        let mut syn = client_tcp(cport, TcpFlags::SYN, 1, 0, b"");
        if r.run(0, &mut syn) == Verdict::Drop(DropReason::Admission) {
            refused += 1;
        }
    }
    assert!((800..1200).contains(&refused), "{refused}");
    r.apply(Primitive::Drop { service: svc(), fraction: DropFraction::NONE });
    let mut syn = client_tcp(9002, TcpFlags::SYN, 1, 0, b"");
    assert!(matches!(r.run(0, &mut syn), Verdict::Forward { .. }));
}

fn arp(op: u16, sha: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut buf = vec![0u8; 60];
    let n = if op == 1 {
        nat::build_arp_request(&mut buf, sha, spa, tpa, None).unwrap()
    } else {
        // A reply to us: build a request and flip the op and target hardware address.
        let n = nat::build_arp_request(&mut buf, sha, spa, tpa, None).unwrap();
        buf[0..6].copy_from_slice(&P1_MAC.0);
        buf[21] = 2;
        buf[32..38].copy_from_slice(&P1_MAC.0);
        n
    };
    buf.truncate(n);
    buf
}

#[test]
fn arp_answered_for_vips_and_port_addresses_and_learned() {
    let mut r = Rig::new(&[1]);
    for target in [VIP, Ipv4Addr::new(10, 0, 0, 1)] {
        let mut a = arp(1, CLIENT_MAC, CLIENT, target);
        assert!(matches!(r.run(0, &mut a), Verdict::Forward { port: 0, .. }));
        let p = parse(&a).unwrap();
        let L3::Arp(info) = p.l3 else { panic!() };
        assert_eq!((info.op, info.sha, info.spa, info.tpa), (2, P0_MAC, target, CLIENT));
        assert_eq!(&a[0..6], &CLIENT_MAC.0);
    }
    let mut other = arp(1, CLIENT_MAC, CLIENT, Ipv4Addr::new(10, 0, 0, 77));
    assert_eq!(r.run(0, &mut other), Verdict::Drop(DropReason::ArpNotForUs));
    // A reply to us from a new server is learned and passed to the kernel.
    let mut reply = arp(2, rs_mac(9), rs(9), Ipv4Addr::new(10, 0, 1, 1));
    assert_eq!(r.run(1, &mut reply), Verdict::ToHost { port: 1 });
    let learned: Vec<_> = std::iter::from_fn(|| r.worker.learned.pop()).collect();
    assert_eq!(learned, vec![(u32::from(CLIENT), CLIENT_MAC), (u32::from(rs(9)), rs_mac(9))]);
}

#[test]
fn ping_of_vip_and_port_address_is_answered() {
    let mut r = Rig::new(&[1]);
    for dst in [VIP, Ipv4Addr::new(10, 0, 0, 1)] {
        let mut buf = vec![0u8; 200];
        let ip = Ipv4Frame { src_mac: CLIENT_MAC, dst_mac: P0_MAC, src: CLIENT, dst, ..Default::default() };
        let n = icmp_echo_frame(&mut buf, &ip, true, 7, 1, b"ping-payload").unwrap();
        buf.truncate(n);
        assert!(matches!(r.run(0, &mut buf), Verdict::Forward { port: 0, .. }));
        let p = parse(&buf).unwrap();
        let ip = p.ipv4().unwrap();
        let L4::Icmp(i) = ip.l4 else { panic!() };
        assert_eq!((i.msg_type, ip.src, ip.dst, i.ident), (0, dst, CLIENT, 7));
        assert_eq!(checksum::sum(&buf[ip.l4_offset()..]) as u16, 0xffff_u16);
    }
}

#[test]
fn exception_path_for_port_addresses_and_multicast() {
    let mut r = Rig::new(&[1]);
    let mut buf = vec![0u8; 200];
    let ip = Ipv4Frame {
        src_mac: CLIENT_MAC,
        dst_mac: P0_MAC,
        src: CLIENT,
        dst: Ipv4Addr::new(10, 0, 0, 1),
        ..Default::default()
    };
    let n = tcp_frame(
        &mut buf,
        &ip,
        &TcpSegment { src_port: 5000, dst_port: 23, flags: TcpFlags::SYN, ..Default::default() },
        &[],
        b"",
    )
    .unwrap();
    buf.truncate(n);
    assert_eq!(r.run(0, &mut buf), Verdict::ToHost { port: 0 });
    let mut m = vec![0u8; 200];
    let ip = Ipv4Frame { src: rs(1), dst: Ipv4Addr::new(239, 1, 1, 1), ..Default::default() };
    let n = udp_frame(&mut m, &ip, 5000, 7000, b"beacon", true).unwrap();
    m.truncate(n);
    assert_eq!(r.run(1, &mut m), Verdict::ToHost { port: 1 });
    assert_eq!(crate::counters::read(&r.worker.counters().ports[0].to_host), 1);
}

#[test]
fn source_nat_rewrites_both_ways() {
    let mut r = Rig::with(&[1], 1024, 0, 1, true);
    let mut f = client_tcp(41000, TcpFlags::SYN, 1, 0, b"");
    assert!(matches!(r.run(0, &mut f), Verdict::Forward { port: 1, .. }));
    let (_, ip, t) = check(&f);
    assert_eq!(ip.src, Ipv4Addr::new(10, 0, 1, 1));
    assert!((10000..=10999).contains(&t.src_port));
    let mut back = server_tcp(1, (ip.src, t.src_port), TcpFlags::SYN | TcpFlags::ACK, 1, 2);
    assert!(matches!(r.run(1, &mut back), Verdict::Forward { port: 0, .. }));
    let (_, ip, t) = check(&back);
    assert_eq!((ip.src, t.src_port, ip.dst, t.dst_port), (VIP, 80, CLIENT, 41000));
    // A kernel connection on another port of the range is not ours: to the host.
    let mut stray = server_tcp(1, (Ipv4Addr::new(10, 0, 1, 1), 10998), TcpFlags::ACK, 1, 2);
    assert_eq!(r.run(1, &mut stray), Verdict::ToHost { port: 1 });
}

#[test]
fn unusual_traffic_is_dropped_and_counted() {
    let mut r = Rig::new(&[1]);
    // Fragment to the VIP.
    let mut buf = vec![0u8; 200];
    let ip = Ipv4Frame {
        src_mac: CLIENT_MAC,
        dst_mac: P0_MAC,
        src: CLIENT,
        dst: VIP,
        flags_frag: ipv4::FLAG_MF,
        ..Default::default()
    };
    let n = tcp_frame(
        &mut buf,
        &ip,
        &TcpSegment { src_port: 1, dst_port: 80, flags: TcpFlags::SYN, ..Default::default() },
        &[],
        b"",
    )
    .unwrap();
    buf.truncate(n);
    assert_eq!(r.run(0, &mut buf), Verdict::Drop(DropReason::Fragment));
    // A VIP port without a service.
    let mut f = client_tcp(1, TcpFlags::SYN, 1, 0, b"");
    let l4 = parse(&f).unwrap().ipv4().unwrap().l4_offset();
    let mut t = tcp::Packet::new_unchecked(&mut f[l4..]);
    t.set_dst_port(81);
    t.fill_checksum(CLIENT, VIP);
    assert_eq!(r.run(0, &mut f), Verdict::Drop(DropReason::NoService));
    // A server packet of no flow.
    let mut s = server_tcp(1, (CLIENT, 1234), TcpFlags::ACK, 1, 1);
    assert_eq!(r.run(1, &mut s), Verdict::Drop(DropReason::NoFlow));
    // A RST for no flow.
    let mut rst = client_tcp(4242, TcpFlags::RST, 1, 0, b"");
    assert_eq!(r.run(0, &mut rst), Verdict::Drop(DropReason::NoFlow));
    // Garbage.
    let mut g = vec![0xffu8; 10];
    assert_eq!(r.run(0, &mut g), Verdict::Drop(DropReason::MalformedEthernet));
    let mut bad_csum = client_tcp(5, TcpFlags::SYN, 1, 0, b"");
    bad_csum[24] ^= 0xff;
    assert_eq!(r.run(0, &mut bad_csum), Verdict::Drop(DropReason::BadIpChecksum));
    assert_eq!(r.drops(DropReason::NoService), 1);
}

#[test]
fn unresolved_next_hop_asks_arp() {
    let ports = vec![
        PortView { addr: PortAddr::parse("10.0.0.1/24").unwrap(), mac: P0_MAC, gateway: None },
        PortView { addr: PortAddr::parse("10.0.1.1/24").unwrap(), mac: P1_MAC, gateway: None },
    ];
    let mut control = Control::new(ports, 8, 4, 251);
    control.apply(&Primitive::Add { key: bkey(1), params: BindingParams::default() }).unwrap();
    let gen = control.publish();
    let cfg = WorkerConfig {
        index: 0,
        workers: 1,
        flow_capacity: 1024,
        timeouts: TimeoutsNs::default(),
        snat_ports: (10000, 10999),
        seed: 1,
    };
    let mut w = Worker::new(cfg, Arc::new(WorkerCounters::new(8, 4)), Arc::new(ArrayQueue::new(8)));
    w.adopt(&gen);
    let mut f = client_tcp(1, TcpFlags::SYN, 1, 0, b"");
    assert_eq!(w.process(&gen, SEC, 0, &mut f), Verdict::Drop(DropReason::NeighborUnresolved));
    assert_eq!(w.outbox.drain().collect::<Vec<_>>(), vec![Emit::ArpRequest { port: 1, target: rs(1) }]);
    // Rate-limited: a second miss right after does not ask again.
    let mut f = client_tcp(2, TcpFlags::SYN, 1, 0, b"");
    w.process(&gen, SEC + 1000, 0, &mut f);
    assert!(w.outbox.is_empty());
}

#[test]
fn full_flow_table_is_a_counted_drop() {
    let mut r = Rig::with(&[1], 1024, 0, 1, false);
    let mut refused = 0;
    for cport in 0..1100u16 {
        let mut f = client_tcp(cport + 1, TcpFlags::SYN, 1, 0, b"");
        if r.run(0, &mut f) == Verdict::Drop(DropReason::FlowTableFull) {
            refused += 1;
        }
    }
    assert_eq!(refused, 1100 - 1024);
    // After expiry, room again.
    r.now += 6 * SEC;
    let mut f = client_tcp(60000, TcpFlags::SYN, 1, 0, b"");
    assert!(matches!(r.run(0, &mut f), Verdict::Forward { .. }));
}

#[test]
fn workers_agree_on_flow_ownership_both_ways() {
    let mut w0 = Rig::with(&[1], 1024, 0, 2, false);
    let mut w1 = Rig::with(&[1], 1024, 1, 2, false);
    for cport in 100..200u16 {
        let mut f0 = client_tcp(cport, TcpFlags::SYN, 1, 0, b"");
        let mut f1 = f0.clone();
        let (v0, v1) = (w0.run(0, &mut f0), w1.run(0, &mut f1));
        let (owner, f) = match (v0, v1) {
            (Verdict::Forward { .. }, Verdict::Handoff { worker: 0 }) => (0u16, f0),
            (Verdict::Handoff { worker: 1 }, Verdict::Forward { .. }) => (1u16, f1),
            other => panic!("{other:?}"),
        };
        let (_, ip, t) = check(&f);
        let mut back = server_tcp(1, (ip.src, t.src_port), TcpFlags::SYN | TcpFlags::ACK, 1, 2);
        let w = if owner == 0 { &mut w1 } else { &mut w0 };
        assert_eq!(w.run(1, &mut back), Verdict::Handoff { worker: owner });
    }
}

proptest! {
    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), port in 0u16..3) {
        let mut r = Rig::new(&[1, 2]);
        let mut f = bytes;
        let _ = r.run(port, &mut f);
    }

    #[test]
    fn mutated_valid_frames_never_panic(idx in 0usize..74, val in any::<u8>(), cport in 1u16..65535) {
        let mut r = Rig::new(&[1, 2]);
        let mut f = client_tcp(cport, TcpFlags::SYN, 1, 0, b"abcdefghijklmnopqrst");
        let i = idx % f.len();
        f[i] = val;
        let _ = r.run(0, &mut f);
        let mut s = server_tcp(1, (CLIENT, cport), TcpFlags::ACK, 1, 1);
        let i = idx % s.len();
        s[i] = val;
        let _ = r.run(1, &mut s);
    }
}

#[test]
fn flow_record_fits_one_cache_line() {
    assert_eq!(std::mem::size_of::<FlowState>(), 24);
    let t: FlowTable<FlowState> = FlowTable::with_capacity(1 << 16);
    let per_flow = t.memory_bytes() / t.capacity();
    assert!(per_flow <= 112, "{per_flow} bytes per flow");
}

#[test]
fn prepared_burst_matches_one_by_one() {
    let mut a = Rig::new(&[1, 2, 3]);
    let mut b = Rig::new(&[1, 2, 3]);
    let mut frames: Vec<Vec<u8>> = (0..32u16).map(|i| client_tcp(3000 + i, TcpFlags::SYN, 1, 0, b"")).collect();
    frames[5] = vec![0xff; 9]; // malformed in the middle of the burst
    frames[9] = server_tcp(1, (CLIENT, 3001), TcpFlags::ACK, 1, 1);
    let mut copies = frames.clone();
    b.worker.prepare_burst(copies.iter().map(|f| f.as_slice()));
    for (i, (fa, fb)) in frames.iter_mut().zip(copies.iter_mut()).enumerate() {
        let port = if i == 9 { 1 } else { 0 };
        let va = a.worker.process(&a.gen, a.now, port, fa);
        let vb = b.worker.process_prepared(&b.gen, b.now, port, i, fb);
        assert_eq!(va, vb, "frame {i}");
        assert_eq!(fa, fb, "frame {i} bytes");
    }
}

#[test]
fn sweep_is_paced_by_time() {
    let r = Rig::new(&[1]);
    // An empty table counts as 64k flows: 131 records a millisecond, capped per call.
    assert_eq!(r.worker.sweep_budget(0), 0);
    assert_eq!(r.worker.sweep_budget(1_000_000), 131);
    assert_eq!(r.worker.sweep_budget(SWEEP_PERIOD_NS), SWEEP_MAX);
    assert_eq!(r.worker.sweep_budget(u64::MAX), SWEEP_MAX);
    // A table more than half full is swept faster: 3/4 full goes 1 + 256·7/512 = 4x.
    let mut r = Rig::with(&[1], 1024, 0, 1, false);
    for p in 0..768u16 {
        let mut f = client_tcp(20000 + p, TcpFlags::SYN, 1, 0, &[]);
        assert!(matches!(r.run(0, &mut f), Verdict::Forward { .. }));
    }
    assert_eq!(r.worker.flow_count(), 768);
    assert_eq!(r.worker.sweep_budget(1_000_000), 524);
}

/// Opens a connection from `cport`, closes it cleanly (FIN, FIN, last ACK) and returns the
/// server it went to.
fn open_and_close(r: &mut Rig, cport: u16) -> u8 {
    let mut f = client_tcp(cport, TcpFlags::SYN, 1, 0, b"");
    assert!(matches!(r.run(0, &mut f), Verdict::Forward { port: 1, .. }));
    let s = server_of(&check(&f).1);
    let mut back = server_tcp(s, (CLIENT, cport), TcpFlags::SYN | TcpFlags::ACK, 500, 2);
    assert!(matches!(r.run(1, &mut back), Verdict::Forward { port: 0, .. }));
    let mut fin = client_tcp(cport, TcpFlags::FIN | TcpFlags::ACK, 2, 501, b"");
    r.run(0, &mut fin);
    let mut fin2 = server_tcp(s, (CLIENT, cport), TcpFlags::FIN | TcpFlags::ACK, 501, 3);
    r.run(1, &mut fin2);
    let mut last = client_tcp(cport, TcpFlags::ACK, 3, 502, b"");
    r.run(0, &mut last);
    s
}

fn reused(r: &Rig) -> u64 {
    crate::counters::read(&r.worker.counters().reused_tuples)
}

#[test]
fn syn_reusing_a_closed_flows_tuple_after_churn_is_a_new_connection() {
    // The bug of issue #17: `Connection: close` clients reuse source ports within seconds;
    // after the servers were drained and re-added, a SYN matching the closed flow's record
    // (kept 10 s) was taken for part of that flow and answered with a RST.
    let mut r = Rig::new(&[1, 2, 3]);
    let cport = 40001;
    open_and_close(&mut r, cport);
    for i in [1, 2, 3] {
        r.apply(Primitive::Remove { key: bkey(i) });
        r.apply(Primitive::Add { key: bkey(i), params: BindingParams { weight: 1, source_nat: false } });
    }
    r.now += SEC;
    let mut syn = client_tcp(cport, TcpFlags::SYN, 9000, 0, b"");
    assert!(matches!(r.run(0, &mut syn), Verdict::Forward { port: 1, .. }), "forwarded, not reset");
    let (_, ip, t) = check(&syn);
    assert!(t.flags.contains(TcpFlags::SYN) && !t.flags.contains(TcpFlags::RST));
    let s = server_of(&ip);
    assert_eq!(r.drops(DropReason::ForceRemoved), 0, "nothing was force-removed");
    assert_eq!(reused(&r), 1);
    // The new connection is a flow like any other: the server's answer goes back, data sticks.
    let mut back = server_tcp(s, (CLIENT, cport), TcpFlags::SYN | TcpFlags::ACK, 7000, 9001);
    assert!(matches!(r.run(1, &mut back), Verdict::Forward { port: 0, .. }));
    let mut data = client_tcp(cport, TcpFlags::ACK, 9001, 7001, b"GET /");
    r.run(0, &mut data);
    assert_eq!(server_of(&check(&data).1), s);
    assert_eq!(r.worker.flow_count(), 1, "the closed record was replaced, not kept beside");
}

#[test]
fn syn_reusing_a_closed_flows_tuple_never_reaches_a_draining_server() {
    let mut r = Rig::new(&[1, 2, 3]);
    // Find client ports whose closed flows went to each server; drain the one of the first.
    let s = open_and_close(&mut r, 41000);
    let mut ports = vec![41000];
    for cport in 41001..41100u16 {
        if open_and_close(&mut r, cport) == s {
            ports.push(cport);
        }
    }
    assert!(ports.len() > 5, "{ports:?}");
    r.apply(Primitive::Remove { key: bkey(s) });
    for &cport in &ports {
        let mut syn = client_tcp(cport, TcpFlags::SYN, 77, 0, b"");
        assert!(matches!(r.run(0, &mut syn), Verdict::Forward { port: 1, .. }));
        assert_ne!(server_of(&check(&syn).1), s, "port {cport} reached the draining server");
    }
    assert_eq!(reused(&r), ports.len() as u64);
}

#[test]
fn syn_reusing_a_reset_or_force_removed_flows_tuple_is_a_new_connection() {
    let mut r = Rig::new(&[1, 2]);
    let mut f = client_tcp(42000, TcpFlags::SYN, 1, 0, b"");
    r.run(0, &mut f);
    let s = server_of(&check(&f).1);
    let mut rst = server_tcp(s, (CLIENT, 42000), TcpFlags::RST | TcpFlags::ACK, 0, 2);
    assert!(matches!(r.run(1, &mut rst), Verdict::Forward { .. }));
    let mut syn = client_tcp(42000, TcpFlags::SYN, 50, 0, b"");
    assert!(matches!(r.run(0, &mut syn), Verdict::Forward { port: 1, .. }));
    assert_eq!(reused(&r), 1);

    // An established flow whose binding was force-removed: its data segments are reset, a SYN
    // on the same tuple (before the purge walk reached it, or after) opens a new connection.
    let mut r = Rig::new(&[1, 2]);
    let mut f = client_tcp(42001, TcpFlags::SYN, 1, 0, b"");
    r.run(0, &mut f);
    let s = server_of(&check(&f).1);
    r.control.apply(&Primitive::ForceRemove { key: bkey(s) }).unwrap();
    // Publish without letting the worker purge, so the record is still there.
    r.gen = r.control.publish();
    let mut syn = client_tcp(42001, TcpFlags::SYN, 60, 0, b"");
    assert!(matches!(r.run(0, &mut syn), Verdict::Forward { port: 1, .. }));
    assert_ne!(server_of(&check(&syn).1), s);
    assert_eq!(r.drops(DropReason::ForceRemoved), 0);
    assert_eq!(reused(&r), 1);
}

#[test]
fn retransmitted_syn_and_syn_on_a_live_flow_stay_with_their_server() {
    let mut r = Rig::new(&[1, 2, 3]);
    let mut f = client_tcp(43000, TcpFlags::SYN, 1, 0, b"");
    r.run(0, &mut f);
    let s = server_of(&check(&f).1);
    // Drained while the handshake is under way: the retransmitted SYN is the same connection.
    r.apply(Primitive::Remove { key: bkey(s) });
    let mut again = client_tcp(43000, TcpFlags::SYN, 1, 0, b"");
    r.run(0, &mut again);
    assert_eq!(server_of(&check(&again).1), s);
    // Established, binding alive: a SYN stays (the server's challenge ACK sorts it out).
    let mut r = Rig::new(&[1, 2, 3]);
    let mut f = client_tcp(43001, TcpFlags::SYN, 1, 0, b"");
    r.run(0, &mut f);
    let s = server_of(&check(&f).1);
    let mut back = server_tcp(s, (CLIENT, 43001), TcpFlags::SYN | TcpFlags::ACK, 500, 2);
    r.run(1, &mut back);
    let mut syn = client_tcp(43001, TcpFlags::SYN, 99, 0, b"");
    r.run(0, &mut syn);
    assert_eq!(server_of(&check(&syn).1), s);
    assert_eq!(reused(&r), 0);
}
