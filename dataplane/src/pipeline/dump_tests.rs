//! Tests of [`Worker::dump_flows`]: flows made by real frames, listed in slices.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use acm::{BindingKey, BindingParams, Primitive, ServiceKey};
use crossbeam::queue::ArrayQueue;

use super::super::{Verdict, Worker, WorkerConfig};
use crate::api::SessionState;
use crate::config::{PortAddr, TimeoutsNs};
use crate::control::Control;
use crate::counters::WorkerCounters;
use crate::generation::{Generation, PortView};
use crate::runtime::sessions::DumpJob;
use crate::wire::build::{tcp_frame, udp_frame, Ipv4Frame, TcpSegment};
use crate::wire::{MacAddr, TcpFlags};

const P0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const P1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xc1, 0, 0, 0, 0x02]);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const RS: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);
const SEC: u64 = 1_000_000_000;

fn service(port: u16, proto: acm::Proto) -> ServiceKey {
    ServiceKey { vip: VIP, proto, vport: port }
}

/// A worker with rs 10.0.1.11 bound to VIP:80/tcp and VIP:53/udp (source NAT on :53).
fn rig() -> (Worker, Arc<Generation>) {
    let ports = vec![
        PortView { addr: PortAddr::parse("10.0.0.1/24").unwrap(), mac: P0_MAC, gateway: None },
        PortView { addr: PortAddr::parse("10.0.1.1/24").unwrap(), mac: P1_MAC, gateway: None },
    ];
    let mut control = Control::new(ports, 16, 8, 251);
    for (svc, rport, snat) in [(service(80, acm::Proto::Tcp), 80, false), (service(53, acm::Proto::Udp), 53, true)] {
        let key = BindingKey { service: svc, real: acm::RealServer { rip: RS, rport } };
        control.apply(&Primitive::Add { key, params: BindingParams { weight: 1, source_nat: snat } }).unwrap();
    }
    control.learn_neighbor(RS, MacAddr([0x02, 0x5e, 0, 0, 0, 1]));
    let gen = control.publish();
    let cfg = WorkerConfig {
        index: 0,
        workers: 1,
        flow_capacity: 256,
        timeouts: TimeoutsNs::default(),
        snat_ports: (10000, 10999),
        seed: 7,
    };
    let mut w = Worker::new(cfg, Arc::new(WorkerCounters::new(16, 8)), Arc::new(ArrayQueue::new(16)));
    w.adopt(&gen);
    (w, gen)
}

fn client_ip() -> Ipv4Frame<'static> {
    Ipv4Frame { src_mac: CLIENT_MAC, dst_mac: P0_MAC, src: CLIENT, dst: VIP, ..Default::default() }
}

fn syn(w: &mut Worker, gen: &Generation, now: u64, cport: u16, flags: TcpFlags) {
    let mut buf = vec![0u8; 200];
    let seg = TcpSegment { src_port: cport, dst_port: 80, seq: 1, ack: 0, flags, window: 1000 };
    let n = tcp_frame(&mut buf, &client_ip(), &seg, &[], b"").unwrap();
    buf.truncate(n);
    assert!(matches!(w.process(gen, now, 0, &mut buf), Verdict::Forward { port: 1, .. }));
}

fn udp(w: &mut Worker, gen: &Generation, now: u64, cport: u16) {
    let mut buf = vec![0u8; 200];
    let n = udp_frame(&mut buf, &client_ip(), cport, 53, b"q", true).unwrap();
    buf.truncate(n);
    assert!(matches!(w.process(gen, now, 0, &mut buf), Verdict::Forward { port: 1, .. }));
}

fn dump_all(w: &Worker, now: u64, job: &mut DumpJob, budget: usize) -> usize {
    let mut calls = 1;
    while !w.dump_flows(now, job, budget) {
        calls += 1;
        assert!(calls < 10_000, "the walk must end");
    }
    calls
}

#[test]
fn lists_tcp_and_snat_udp_flows_with_state_and_idle_time() {
    let (mut w, gen) = rig();
    syn(&mut w, &gen, SEC, 40000, TcpFlags::SYN);
    syn(&mut w, &gen, SEC, 40001, TcpFlags::SYN);
    syn(&mut w, &gen, 2 * SEC, 40001, TcpFlags::ACK);
    udp(&mut w, &gen, SEC, 5353);
    let now = 4 * SEC;
    let mut job = DumpJob::new(1, None, 10);
    dump_all(&w, now, &mut job, 1000);
    assert_eq!(job.total, 3);
    let mut rows = job.rows.clone();
    rows.sort_by_key(|r| r.client.port());
    let r = &rows[0];
    assert_eq!(
        (r.proto, r.client, r.vip, r.real, r.snat),
        (
            acm::Proto::Udp,
            SocketAddrV4::new(CLIENT, 5353),
            SocketAddrV4::new(VIP, 53),
            SocketAddrV4::new(RS, 53),
            Some(SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 1), r.snat.unwrap().port()))
        )
    );
    assert!((10000..=10999).contains(&r.snat.unwrap().port()));
    assert_eq!((r.state, r.idle_ms), (SessionState::Udp, 3000));
    let t = TimeoutsNs::default();
    assert_eq!(r.expires_ms, (SEC + t.udp - now) / 1_000_000);
    assert_eq!((rows[1].client.port(), rows[1].state, rows[1].idle_ms), (40000, SessionState::Syn, 3000));
    assert_eq!((rows[2].client.port(), rows[2].state, rows[2].idle_ms), (40001, SessionState::Established, 2000));
    assert_eq!((rows[1].real, rows[1].snat), (SocketAddrV4::new(RS, 80), None));
}

#[test]
fn filter_limit_and_slices() {
    let (mut w, gen) = rig();
    for p in 1000..1100u16 {
        syn(&mut w, &gen, SEC, p, TcpFlags::SYN);
    }
    udp(&mut w, &gen, SEC, 9999);
    // Only the TCP service, at most 7 rows, 10 records a call: the totals still count all.
    let mut job = DumpJob::new(1, Some(service(80, acm::Proto::Tcp)), 7);
    let calls = dump_all(&w, 2 * SEC, &mut job, 10);
    assert!(calls >= 10, "{calls} calls for 101 flows in slices of 10");
    assert_eq!((job.total, job.rows.len(), job.rows.capacity()), (100, 7, 7));
    assert!(job.rows.iter().all(|r| r.proto == acm::Proto::Tcp && r.vip.port() == 80));
    let mut job = DumpJob::new(2, Some(service(53, acm::Proto::Udp)), 7);
    dump_all(&w, 2 * SEC, &mut job, 1000);
    assert_eq!((job.total, job.rows.len()), (1, 1));
}

#[test]
fn expired_flows_are_not_listed_and_empty_table_ends_at_once() {
    let (mut w, gen) = rig();
    let mut job = DumpJob::new(1, None, 10);
    assert!(w.dump_flows(SEC, &mut job, 1));
    assert_eq!(job.total, 0);
    syn(&mut w, &gen, SEC, 40000, TcpFlags::SYN);
    let t = TimeoutsNs::default();
    let mut job = DumpJob::new(2, None, 10);
    dump_all(&w, SEC + t.tcp_syn, &mut job, 100);
    assert_eq!(job.total, 0, "past its deadline the flow is gone, swept or not");
}
