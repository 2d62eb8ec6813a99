//! The switch with threads standing in for workers: acknowledgements, and exact Maglev tables
//! built after the change they follow.

use super::*;
use crate::config::PortAddr;
use crate::generation::PortView;
use acm::{BindingKey, BindingParams};
use std::sync::atomic::AtomicBool;

struct Rig {
    switch: Arc<Switch>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A switch over two fake workers that take up every generation at once.
fn rig() -> Rig {
    let ports = vec![
        PortView { addr: PortAddr::parse("10.0.0.1/24").unwrap(), mac: MacAddr([2, 0, 0, 0, 0, 1]), gateway: None },
        PortView { addr: PortAddr::parse("10.0.1.1/24").unwrap(), mac: MacAddr([2, 0, 0, 0, 0, 2]), gateway: None },
    ];
    let control = Control::new(ports, 256, 8, 65537);
    let stop = Arc::new(AtomicBool::new(false));
    let mut links = Vec::new();
    let mut threads = Vec::new();
    for lcore in 1..3 {
        let (link, end) = worker_link(lcore, 256, 8, 1024);
        links.push(link);
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut current = None;
            while !stop.load(Ordering::Acquire) {
                if let Ok(g) = end.generations.recv_timeout(Duration::from_millis(5)) {
                    end.counters.generation.store(g.number, Ordering::Release);
                    current = Some(g);
                }
            }
            drop(current);
        }));
    }
    let (host, _host_rx) = crossbeam::channel::bounded(1024);
    let switch = Arc::new(Switch::new(control, links, host, Box::new(Vec::new)));
    Rig { switch, stop, threads }
}

fn key(rs: u8) -> BindingKey {
    BindingKey { service: "10.0.0.100:80".parse().unwrap(), real: format!("10.0.1.{rs}:80").parse().unwrap() }
}

fn apply(sw: &Switch, p: Primitive) {
    let (r, t) = sw.primitive(&p, now_ns());
    assert!(matches!(r, Ok(ResponseBody::Done { .. })), "{r:?}");
    assert!(t.acked_ns >= t.published_ns);
}

fn service(sw: &Switch) -> Arc<crate::generation::ServiceEntry> {
    let g = sw.lock().control.current().clone();
    let lookup: crate::generation::ServiceLookup = "10.0.0.100:80".parse::<acm::ServiceKey>().unwrap().into();
    let id = *g.service_index.get(&lookup).unwrap();
    g.services[id as usize].clone().unwrap()
}

#[test]
fn changes_are_acknowledged_before_their_table_is_built() {
    let r = rig();
    for rs in 11..21 {
        apply(&r.switch, Primitive::Add { key: key(rs), params: BindingParams::default() });
    }
    // Acknowledged and in force, through the interim correction: nothing was built.
    let svc = service(&r.switch);
    assert!(svc.interim.is_some() && svc.maglev.is_empty());
    assert_eq!(svc.active, 10);
    assert!(r.switch.stats().maglev.pending);
    assert_eq!(r.switch.stats().maglev.rounds, 0);

    // One round builds the one table the ten changes call for.
    assert!(r.switch.build_round());
    let svc = service(&r.switch);
    assert!(svc.interim.is_none());
    assert_eq!(svc.maglev.table_size(), 65537);
    let m = r.switch.stats().maglev;
    assert_eq!((m.rounds, m.tables_built, m.pending), (1, 1, false));
    assert!(m.converge_us_last > 0 && m.converge_us_last >= m.build_us_last);
    // Nothing left: a further round builds nothing.
    assert!(!r.switch.build_round());

    // A drain is in force at its ack; the drained server's entries are still in the table.
    apply(&r.switch, Primitive::Remove { key: key(15) });
    let svc = service(&r.switch);
    let drained = svc.interim.as_ref().unwrap().gone()[0];
    assert!(svc.maglev.entry_count(drained) > 0);
    for i in 0..10_000u64 {
        assert_ne!(svc.pick(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)), Some(drained));
    }
}

#[test]
fn the_builder_thread_makes_every_table_exact() {
    let r = rig();
    let builder = {
        let (sw, stop) = (r.switch.clone(), r.stop.clone());
        std::thread::spawn(move || sw.run_builder(Duration::from_millis(2), stop))
    };
    for rs in 11..17 {
        apply(&r.switch, Primitive::Add { key: key(rs), params: BindingParams::default() });
    }
    apply(&r.switch, Primitive::Remove { key: key(12) });
    // Bounded wait for a background thread (correctness, not speed).
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.switch.stats().maglev.pending || service(&r.switch).interim.is_some() {
        assert!(Instant::now() < deadline, "tables still not exact: {:?}", r.switch.stats().maglev);
        std::thread::sleep(Duration::from_millis(2));
    }
    let m = r.switch.stats().maglev;
    assert!(m.tables_built >= 1 && m.rounds >= 1);
    let svc = service(&r.switch);
    assert_eq!(svc.active, 5);
    let g = r.switch.lock().control.current().clone();
    let drained = g.bindings.iter().position(|s| s.key == key(12)).unwrap() as u32;
    assert_eq!(svc.maglev.entry_count(drained), 0);
    r.stop.store(true, Ordering::Release);
    builder.join().unwrap();
}
