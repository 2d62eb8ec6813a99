//! Configuration latency and throughput of the CM's primitive path.
//!
//! ```text
//! cargo bench -p controlplane --bench primitives
//! ACM_BENCH_DATAPLANE_SOCK=/run/acm-lab/acm/dataplane.sock cargo bench -p controlplane --bench primitives
//! ```
//!
//! Always against an in-memory fake switch (the CM's own cost: cache, switch thread, histograms);
//! also against a real dataplane when `ACM_BENCH_DATAPLANE_SOCK` names a running one's switch
//! API socket (e.g. after `make run`), with the switch API called directly as the baseline.
//! Every run says which switch it used. After the criterion groups it prints a sustained run:
//! primitives per second and p50/p90/p99 of receipt→ack, beside the ServerIron XL of Chen &
//! Brewer (add 26 ms, remove 20 ms, ~40 ops/s).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use acm::{BindingKey, BindingParams, Primitive};
use controlplane::cm::fake::FakeSwitch;
use controlplane::cm::switch::{SwitchDriver, VipFilter};
use controlplane::cm::{Cm, CmOptions, Origin, SwitchSpec};
use controlplane::drivers::dataplane::DataplaneDriver;
use criterion::Criterion;

/// A binding nobody else uses: VIP 10.0.0.100:80 (the lab's), a real server that does not exist.
fn key(i: u32) -> BindingKey {
    BindingKey {
        service: "10.0.0.100:80".parse().unwrap(),
        real: format!("10.0.1.{}:{}", 200 + (i % 50), 8000 + i / 50).parse().unwrap(),
    }
}

fn cm_with(driver: Box<dyn SwitchDriver>) -> Cm {
    let opts = CmOptions { sync_interval: Duration::from_secs(3600), ..CmOptions::default() };
    Cm::new(opts, vec![SwitchSpec { name: "bench".into(), vips: VipFilter::All, driver }])
}

fn dataplane_sock() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("ACM_BENCH_DATAPLANE_SOCK")?);
    match switch_api::client::Client::connect(&p).and_then(|mut c| c.ping()) {
        Ok(_) => Some(p),
        Err(e) => {
            eprintln!("ACM_BENCH_DATAPLANE_SOCK={}: {e}; fake switch only", p.display());
            None
        }
    }
}

fn add(k: BindingKey) -> Primitive {
    Primitive::Add { key: k, params: BindingParams::default() }
}

/// Add+Remove pairs through the CM's async path (as the API and beacons use it).
fn pair(rt: &tokio::runtime::Runtime, cm: &Cm, k: BindingKey) {
    rt.block_on(async {
        cm.primitive(Origin::Api, add(k)).await.unwrap();
        cm.primitive(Origin::Api, Primitive::Remove { key: k }).await.unwrap();
    });
}

fn sustained(label: &str, rt: &tokio::runtime::Runtime, cm: &Cm, pairs: u32, clients: u32) {
    cm.reset_latency();
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..clients {
            let cm = cm.clone();
            tasks.push(tokio::spawn(async move {
                let k = key(1000 + c);
                for _ in 0..pairs / clients {
                    cm.primitive(Origin::Api, add(k)).await.unwrap();
                    cm.primitive(Origin::Api, Primitive::Remove { key: k }).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let ops = f64::from(2 * (pairs / clients) * clients);
    println!("\n== sustained: {label}, {clients} concurrent client(s)");
    println!("{:.0} primitives in {secs:.3} s = {:.0} ops/s   (ServerIron XL: ~40 ops/s)", ops, ops / secs);
    println!(
        "{:<8} {:>8} {:>9} {:>9} {:>9} {:>9}   ServerIron XL",
        "prim", "count", "p50 us", "p90 us", "p99 us", "max us"
    );
    for r in cm.latency().iter().filter(|r| r.switch == "bench") {
        let s = &r.summary;
        let paper = match r.primitive.as_str() {
            "add" => "26 ms",
            "remove" => "20 ms",
            _ => "",
        };
        println!(
            "{:<8} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1}   {paper}",
            r.primitive, s.count, s.p50_us, s.p90_us, s.p99_us, s.max_us
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut c = Criterion::default().configure_from_args().measurement_time(Duration::from_secs(3));
    let dp = dataplane_sock();
    println!(
        "switches: fake (in memory){}",
        dp.as_ref().map(|p| format!(" and the real dataplane at {}", p.display())).unwrap_or_else(|| {
            " only (set ACM_BENCH_DATAPLANE_SOCK to a running dataplane's socket for the real one)".into()
        })
    );

    let fake = cm_with(Box::new(FakeSwitch::new()));
    c.bench_function("cm/fake-switch/add+remove", |b| b.iter(|| pair(&rt, &fake, key(1))));
    // Filtered: a redundant Add never reaches the switch.
    rt.block_on(fake.primitive(Origin::Api, add(key(2)))).unwrap();
    c.bench_function("cm/fake-switch/redundant-add", |b| {
        b.iter(|| rt.block_on(fake.primitive(Origin::Api, add(key(2)))).unwrap())
    });

    let real = dp.as_ref().map(|p| cm_with(Box::new(DataplaneDriver::new(p))));
    if let (Some(p), Some(cm)) = (&dp, &real) {
        let mut direct = switch_api::client::Client::connect(p).unwrap();
        c.bench_function("switch-api-direct/dataplane/add+remove", |b| {
            b.iter(|| {
                direct.add(key(3), BindingParams::default()).unwrap();
                direct.force_remove(key(3)).unwrap();
            })
        });
        c.bench_function("cm/dataplane/add+remove", |b| b.iter(|| pair(&rt, cm, key(4))));
    }
    c.final_summary();

    sustained("fake switch", &rt, &fake, 20_000, 1);
    sustained("fake switch", &rt, &fake, 20_000, 4);
    if let Some(cm) = &real {
        sustained("real dataplane", &rt, cm, 2_000, 1);
        sustained("real dataplane", &rt, cm, 2_000, 4);
        // Leave the dataplane as we found it.
        rt.block_on(async {
            for i in [1u32, 3, 4, 1000, 1001, 1002, 1003] {
                let _ = cm.primitive(Origin::Api, Primitive::ForceRemove { key: key(i) }).await;
            }
        });
        if let Some(p) = &dp {
            let mut d = switch_api::client::Client::connect(p).unwrap();
            for i in [1u32, 3, 4, 1000, 1001, 1002, 1003] {
                let _ = d.force_remove(key(i));
            }
        }
    }
}
