//! Micro-benchmarks of the load-balancing core: Maglev builds and lookups, flow-table lookups
//! and churn at 1M flows.
//!
//! `cargo bench -p dataplane --bench lb` (add `-- --warm-up-time 1 --measurement-time 3` for a
//! quick run). Flow benchmarks report time per batch of [`BATCH`] operations; criterion's
//! throughput line gives operations per second.
#![allow(missing_docs, reason = "criterion_group! generates an undocumented pub fn")]

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use dataplane::lb::flows::Placement;
use dataplane::lb::{flow_hash, Backend, FlowId, FlowKey, FlowTable, Maglev, DEFAULT_TABLE_SIZE};

/// Flows in the big-table benchmarks.
const FLOWS: usize = 1 << 20;
/// Operations per measured iteration.
const BATCH: usize = 1024;

/// A small deterministic PRNG (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A random client → VIP key.
    fn key(&mut self) -> FlowKey {
        let x = self.next();
        FlowKey::new(Ipv4Addr::from((x >> 32) as u32), x as u16, Ipv4Addr::new(10, 0, 0, 100), 80, 6)
    }
}

/// The reverse key of `k` via real server 10.0.1.11:8080 (NAT without SNAT).
fn reply(k: &FlowKey) -> FlowKey {
    FlowKey::new(Ipv4Addr::new(10, 0, 1, 11), 8080, k.src, k.sport, k.proto)
}

fn backends(n: u32) -> Vec<Backend> {
    (0..n).map(|i| Backend { id: i, key: 0x0a00_0100_0000_0050 + (u64::from(i) << 16), weight: 1 }).collect()
}

/// The population loop as the Maglev paper's pseudo-code writes it (`(offset + j·skip) mod M`
/// per probe, equal weights): the baseline that `Maglev::build` is compared with on the same
/// machine, in the same run.
fn textbook_maglev(backends: &[Backend], m: usize) -> Vec<u32> {
    let m64 = m as u64;
    let mix = |k: u64| k.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let offset: Vec<u64> = backends.iter().map(|b| mix(b.key) % m64).collect();
    let skip: Vec<u64> = backends.iter().map(|b| mix(b.key ^ 0x5555) % (m64 - 1) + 1).collect();
    let mut next = vec![0u64; backends.len()];
    let mut table = vec![u32::MAX; m];
    let mut filled = 0;
    loop {
        for (i, b) in backends.iter().enumerate() {
            loop {
                let s = ((offset[i] + next[i] * skip[i]) % m64) as usize;
                next[i] += 1;
                if table[s] == u32::MAX {
                    table[s] = b.id;
                    break;
                }
            }
            filled += 1;
            if filled == m {
                return table;
            }
        }
    }
}

fn maglev(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev_build_65537");
    for n in [10u32, 100, 1000] {
        let b = backends(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &b, |bench, b| {
            bench.iter(|| Maglev::build(black_box(b), DEFAULT_TABLE_SIZE).unwrap())
        });
    }
    let b = backends(100);
    g.bench_function("100_textbook_baseline", |bench| {
        bench.iter(|| textbook_maglev(black_box(&b), DEFAULT_TABLE_SIZE))
    });
    // Weighted: every fourth backend has weight 4.
    let mut b = backends(100);
    for x in b.iter_mut().step_by(4) {
        x.weight = 4;
    }
    g.bench_function("100_weighted", |bench| bench.iter(|| Maglev::build(black_box(&b), DEFAULT_TABLE_SIZE).unwrap()));
    g.finish();

    let table = Maglev::build(&backends(100), DEFAULT_TABLE_SIZE).unwrap();
    let mut rng = Rng(7);
    let keys: Vec<FlowKey> = (0..BATCH).map(|_| rng.key()).collect();
    let mut g = c.benchmark_group("maglev_lookup");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("flow_hash+lookup", |bench| {
        bench.iter(|| {
            let mut acc = 0u32;
            for k in &keys {
                acc ^= table.lookup(flow_hash(black_box(k))).unwrap_or(0);
            }
            acc
        })
    });
    g.finish();
}

/// A table of capacity [`FLOWS`] filled with `FLOWS` flows; returns it and the keys (both
/// directions, shuffled).
fn full_table(placement: Placement) -> (FlowTable<[u32; 4]>, Vec<FlowKey>) {
    let mut t = FlowTable::with_placement(FLOWS, 0xfeed, placement);
    let mut rng = Rng(42);
    let mut keys = Vec::with_capacity(2 * FLOWS);
    while t.len() < FLOWS {
        let k = rng.key();
        if t.insert(k, reply(&k), [1, 2, 3, 4], 0, u64::MAX, |_, _| {}).is_ok() {
            keys.push(k);
            keys.push(reply(&k));
        }
    }
    // Fisher-Yates shuffle.
    for i in (1..keys.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    (t, keys)
}

/// The flow-table benchmarks with the table on 2 MB hugepages (as the dataplane allocates it;
/// on the heap if the pool has no ~50 free pages) and on the heap (4 KB pages).
fn flows(c: &mut Criterion) {
    flows_on(c, "flow_table_1M", Placement::Hugepages);
    flows_on(c, "flow_table_1M_heap", Placement::Heap);
}

fn flows_on(c: &mut Criterion, group: &str, placement: Placement) {
    let (mut t, keys) = full_table(placement);
    eprintln!("{group}: table on {}", t.placement());
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut at = 0usize;
    g.bench_function("lookup_hit", |bench| {
        bench.iter(|| {
            let mut acc = 0u32;
            for _ in 0..BATCH {
                at = if at + 1 == keys.len() { 0 } else { at + 1 };
                if let Some((_, _, v)) = t.lookup(&keys[at], 1) {
                    acc = acc.wrapping_add(v[0]);
                }
            }
            acc
        })
    });
    let mut out = vec![None; BATCH];
    g.bench_function("lookup_burst_hit", |bench| {
        bench.iter(|| {
            if at + BATCH > keys.len() {
                at = 0;
            }
            t.lookup_burst(&keys[at..at + BATCH], 1, &mut out);
            at += BATCH;
            out.iter().filter(|o| o.is_some()).count()
        })
    });
    g.bench_function("prefetch32+lookup_hit", |bench| {
        bench.iter(|| {
            if at + BATCH > keys.len() {
                at = 0;
            }
            let mut acc = 0u32;
            for burst in keys[at..at + BATCH].chunks(32) {
                t.prefetch(burst);
                for k in burst {
                    if let Some((_, _, v)) = t.lookup(k, 1) {
                        acc = acc.wrapping_add(v[0]);
                    }
                }
            }
            at += BATCH;
            acc
        })
    });
    let mut rng = Rng(99);
    let misses: Vec<FlowKey> = (0..BATCH * 64).map(|_| rng.key()).collect();
    let mut mat = 0usize;
    g.bench_function("lookup_miss", |bench| {
        bench.iter(|| {
            let mut hits = 0u32;
            for _ in 0..BATCH {
                mat = if mat + 1 == misses.len() { 0 } else { mat + 1 };
                hits += u32::from(t.lookup(&misses[mat], 1).is_some());
            }
            hits
        })
    });
    drop(keys);

    // Churn: a full table where every operation removes the oldest flow and inserts a new one.
    let mut live: Vec<FlowId> = Vec::with_capacity(FLOWS);
    t.retain(|_, _| false);
    let mut rng = Rng(5);
    while live.len() < FLOWS {
        let k = rng.key();
        if let Ok(id) = t.insert(k, reply(&k), [0; 4], 0, u64::MAX, |_, _| {}) {
            live.push(id);
        }
    }
    let mut oldest = 0usize;
    g.bench_function("insert+remove", |bench| {
        bench.iter_batched(
            || (0..BATCH).map(|_| rng.key()).collect::<Vec<_>>(),
            |fresh| {
                for k in &fresh {
                    t.remove(live[oldest]);
                    if let Ok(id) = t.insert(*k, reply(k), [0; 4], 0, u64::MAX, |_, _| {}) {
                        live[oldest] = id;
                    }
                    oldest = if oldest + 1 == FLOWS { 0 } else { oldest + 1 };
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// One config change end to end on the control side: apply + publish (the interim correction
/// of the service's Maglev table, the new generation), as every Add/Remove costs before the
/// workers' ack. The exact table is built after the ack (see `maglev_build`).
fn control(c: &mut Criterion) {
    use dataplane::config::PortAddr;
    use dataplane::control::Control;
    use dataplane::generation::PortView;
    let ports = || {
        vec![
            PortView {
                addr: PortAddr::parse("10.0.0.1/24").unwrap(),
                mac: dataplane::wire::MacAddr([2, 0, 0, 0, 0, 1]),
                gateway: None,
            },
            PortView {
                addr: PortAddr::parse("10.1.0.1/16").unwrap(),
                mac: dataplane::wire::MacAddr([2, 0, 0, 0, 0, 2]),
                gateway: None,
            },
        ]
    };
    let mut g = c.benchmark_group("control");
    for (servers, max_bindings, table) in [(3u32, 4096usize, 4099usize), (3, 65536, 65537), (100, 65536, 65537)] {
        let mut ctl = Control::new(ports(), max_bindings, 1024, table);
        let svc: acm::ServiceKey = "10.0.0.100:80".parse().unwrap();
        let key = |i: u32| acm::BindingKey {
            service: svc,
            real: acm::RealServer { rip: Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8), rport: 80 },
        };
        for i in 0..servers {
            ctl.apply(&acm::Primitive::Add { key: key(i), params: acm::BindingParams::default() }).unwrap();
        }
        ctl.publish();
        let extra = key(servers);
        g.bench_function(
            format!("add+force_remove+reap (3 publishes)/{servers}rs/{max_bindings}slots/M{table}"),
            |b| {
                b.iter(|| {
                    ctl.apply(&acm::Primitive::Add { key: extra, params: acm::BindingParams::default() }).unwrap();
                    black_box(ctl.publish());
                    ctl.apply(&acm::Primitive::ForceRemove { key: extra }).unwrap();
                    black_box(ctl.publish());
                    // Workers acked and hold no flows: the slot is freed (as housekeeping does).
                    ctl.reap(|_| 0);
                    black_box(ctl.publish());
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, maglev, flows, control);
criterion_main!(benches);
