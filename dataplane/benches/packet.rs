//! Fast-path micro-benchmarks: `cargo bench -p dataplane --bench packet`.
//!
//! Each iteration handles one 64-byte (60 without FCS) TCP frame, so the reported time is
//! ns/packet and the throughput line is packets/s on one core.
#![allow(missing_docs, reason = "criterion_group! generates an undocumented pub fn")]

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::nat;
use dataplane::wire::build::{self, Ipv4Frame, TcpSegment};
use dataplane::wire::{parse, MacAddr, TcpFlags};

/// A minimum-size TCP ACK (14 + 20 + 20 bytes, padded to 60), optionally VLAN-tagged.
fn tcp64(vlan: Option<u16>) -> Vec<u8> {
    let mut buf = vec![0u8; 60];
    let ip = Ipv4Frame { vlan, ..Default::default() };
    let seg = TcpSegment { src_port: 40000, dst_port: 80, seq: 1, ack: 1, flags: TcpFlags::ACK, window: 502 };
    let n = build::tcp_frame(&mut buf, &ip, &seg, &[], &[]).expect("fits");
    assert!(n <= 60);
    buf
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("packet");
    g.throughput(Throughput::Elements(1));

    let frame = tcp64(None);
    g.bench_function("parse_tcp64", |b| b.iter(|| parse(black_box(&frame))));

    let tagged = tcp64(Some(100));
    g.bench_function("parse_tcp64_vlan", |b| b.iter(|| parse(black_box(&tagged))));

    let mut frame = tcp64(None);
    let real = Ipv4Addr::new(10, 0, 1, 11);
    let (ours, server) = (MacAddr([2, 0, 0, 0, 1, 1]), MacAddr([2, 0, 0, 0, 1, 11]));
    g.bench_function("parse_rewrite_dst_set_macs_tcp64", |b| {
        b.iter(|| {
            let f = black_box(&mut frame[..]);
            let p = parse(f).expect("valid");
            nat::rewrite_dst(f, &p, black_box(real), black_box(8080)).expect("ipv4");
            nat::set_macs(f, ours, server).expect("long enough");
        })
    });

    // The full client -> server forwarding step of the pipeline: DNAT, SNAT, TTL, MACs.
    // The TTL is reset from a pristine frame each time so it never expires.
    let pristine = tcp64(None);
    let mut frame = pristine.clone();
    let snat = Ipv4Addr::new(10, 0, 1, 1);
    g.bench_function("forward_dnat_snat_ttl_macs_tcp64", |b| {
        b.iter(|| {
            frame.copy_from_slice(&pristine);
            let f = black_box(&mut frame[..]);
            let p = parse(f).expect("valid");
            nat::rewrite_dst(f, &p, real, 8080).expect("ipv4");
            nat::rewrite_src(f, &p, snat, 61000).expect("ipv4");
            nat::decrement_ttl(f, &p).expect("ttl");
            nat::set_macs(f, ours, server).expect("long enough");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
