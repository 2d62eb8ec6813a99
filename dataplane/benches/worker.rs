//! The worker's per-packet cost on established flows, as the benchmark's traffic gives it:
//! `cargo bench -p dataplane --bench worker`.
//!
//! A real [`Control`] with 3 real servers and a [`Worker`] whose flow table has the
//! dataplane's benchmark capacity (2M flows, on 2 MB hugepages when the pool has ~100 free
//! pages, and for comparison on the heap). `N` flows are opened with one SYN each; then each iteration copies a burst of 32
//! ACKs of the next flows in turn (as pktgen sends them, round-robin) into a burst buffer (as
//! the memif driver copies into mbufs), runs the look-ahead and the pipeline over it, and
//! every 8th burst the expiry sweep with the budget the worker loop gives it (the clock
//! advances 6 µs a burst, ~5.3 Mpps). Time per iteration / 32 is the
//! worker's cost per packet without the driver: at 1M flows the flow table misses the caches.
#![allow(missing_docs, reason = "criterion_group! generates an undocumented pub fn")]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use acm::{BindingKey, BindingParams, Primitive, ServiceKey};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam::queue::ArrayQueue;
use dataplane::config::{PortAddr, TimeoutsNs};
use dataplane::control::Control;
use dataplane::counters::WorkerCounters;
use dataplane::generation::PortView;
use dataplane::lb::flows::Placement;
use dataplane::pipeline::{Verdict, Worker, WorkerConfig, MAX_BURST};
use dataplane::wire::build::{tcp_frame, Ipv4Frame, TcpSegment};
use dataplane::wire::{MacAddr, TcpFlags};

const FRAME: usize = 60;
const CAPACITY: usize = 2 << 20;
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const SEC: u64 = 1_000_000_000;

/// Frame `i` of flow space `0..n`: client 198.18.x.y:port → VIP:80, as pktgen numbers them.
fn frame(i: u32, flags: TcpFlags) -> [u8; FRAME] {
    let mut buf = [0u8; FRAME];
    let ip = Ipv4Frame {
        src_mac: MacAddr([2, 0xc1, 0, 0, 0, 2]),
        dst_mac: MacAddr([2, 0, 0, 0, 0, 0xfe]),
        src: Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 1, 0)) + i / 50_000),
        dst: VIP,
        ..Default::default()
    };
    let seg = TcpSegment { src_port: 1024 + (i % 50_000) as u16, dst_port: 80, seq: 1, ack: 1, flags, window: 502 };
    tcp_frame(&mut buf, &ip, &seg, &[], &[]).expect("fits");
    buf
}

struct Rig {
    worker: Worker,
    gen: Arc<dataplane::generation::Generation>,
    /// Every flow's ACK, in flow order.
    acks: Vec<[u8; FRAME]>,
    next: usize,
    now: u64,
    loops: u64,
    last_sweep: u64,
}

impl Rig {
    fn new(flows: u32, placement: Placement) -> Rig {
        let ports = vec![
            PortView {
                addr: PortAddr::parse("198.18.0.1/16").unwrap(),
                mac: MacAddr([2, 0, 0, 0, 0, 0xfe]),
                gateway: None,
            },
            PortView {
                addr: PortAddr::parse("198.19.0.1/16").unwrap(),
                mac: MacAddr([2, 0, 0, 0, 1, 0xfe]),
                gateway: None,
            },
        ];
        let mut control = Control::new(ports, 4096, 1024, 65537);
        let svc = ServiceKey { vip: VIP, proto: acm::Proto::Tcp, vport: 80 };
        for i in 0..3u8 {
            let rip = Ipv4Addr::new(198, 19, 0, 11 + i);
            let key = BindingKey { service: svc, real: acm::RealServer { rip, rport: 8080 } };
            control.apply(&Primitive::Add { key, params: BindingParams::default() }).unwrap();
            control.learn_neighbor(rip, MacAddr([2, 0x5e, 0, 0, 0, i]));
        }
        let gen = control.settle();
        let cfg = WorkerConfig {
            index: 0,
            workers: 1,
            flow_capacity: CAPACITY,
            timeouts: TimeoutsNs::default(),
            snat_ports: (10000, 32767),
            seed: 42,
        };
        let counters = Arc::new(WorkerCounters::new(4096, 1024));
        let mut worker = Worker::with_flow_placement(cfg, counters, Arc::new(ArrayQueue::new(64)), placement);
        worker.adopt(&gen);
        let now = SEC;
        for i in 0..flows {
            let mut f = frame(i, TcpFlags::SYN);
            let v = worker.process(&gen, now, 0, &mut f);
            assert!(matches!(v, Verdict::Forward { port: 1, .. }), "SYN {i}: {v:?}");
        }
        assert_eq!(worker.flow_count(), flows as usize);
        let acks = (0..flows).map(|i| frame(i, TcpFlags::ACK)).collect();
        Rig { worker, gen, acks, next: 0, now, loops: 0, last_sweep: now }
    }

    /// One burst of 32 through the look-ahead and the pipeline; every 8th, the sweep.
    fn burst(&mut self, buf: &mut [[u8; FRAME]; MAX_BURST]) -> usize {
        for b in buf.iter_mut() {
            *b = self.acks[self.next];
            self.next = if self.next + 1 == self.acks.len() { 0 } else { self.next + 1 };
        }
        self.now += 6_000; // ~5 Mpps
        self.worker.prepare_burst(buf.iter().map(|f| &f[..]));
        let mut out = 0;
        for (i, f) in buf.iter_mut().enumerate() {
            if let Verdict::Forward { len, .. } = self.worker.process_prepared(&self.gen, self.now, 0, i, f) {
                out += len;
            }
        }
        self.loops += 1;
        if self.loops.is_multiple_of(8) {
            let budget = self.worker.sweep_budget(self.now - self.last_sweep);
            if budget > 0 {
                self.last_sweep = self.now;
            }
            self.worker.maintain(&self.gen, self.now, budget);
        }
        out
    }
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("worker_established");
    g.throughput(Throughput::Elements(MAX_BURST as u64));
    for (flows, placement) in [
        (1_000u32, Placement::Hugepages),
        (100_000, Placement::Hugepages),
        (1_000_000, Placement::Hugepages),
        (1_000_000, Placement::Heap),
    ] {
        let mut rig = Rig::new(flows, placement);
        let on = rig.worker.flow_placement();
        eprintln!("worker_established/{flows}: flow table on {on}");
        let name = if on == Placement::Heap {
            format!("{flows}_flows_heap/burst32")
        } else {
            format!("{flows}_flows/burst32")
        };
        let mut buf = [[0u8; FRAME]; MAX_BURST];
        g.bench_function(name, |b| b.iter(|| black_box(rig.burst(&mut buf))));
    }
    g.finish();
}

criterion_group!(benches, established);
criterion_main!(benches);
