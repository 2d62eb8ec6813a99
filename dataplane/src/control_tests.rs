//! Unit tests of [`super`] (`control.rs`).

use super::*;
use crate::config::PortAddr;

fn ports() -> Vec<PortView> {
    vec![
        PortView { addr: PortAddr::parse("10.0.0.1/24").unwrap(), mac: MacAddr([2, 0, 0, 0, 0, 1]), gateway: None },
        PortView { addr: PortAddr::parse("10.0.1.1/24").unwrap(), mac: MacAddr([2, 0, 0, 0, 0, 2]), gateway: None },
    ]
}

fn key(rs: u8) -> BindingKey {
    BindingKey { service: "10.0.0.100:80".parse().unwrap(), real: format!("10.0.1.{rs}:80").parse().unwrap() }
}

fn ctl() -> Control {
    Control::new(ports(), 8, 4, 251)
}

#[test]
fn add_publishes_service_and_binding() {
    let mut c = ctl();
    assert_eq!(c.apply(&Primitive::Add { key: key(11), params: BindingParams::default() }), Ok(Outcome::Changed));
    let g = c.publish();
    assert_eq!(g.number, 1);
    let svc = g.service(u32::from(Ipv4Addr::new(10, 0, 0, 100)), 80, 6).unwrap();
    assert_eq!(svc.active, 1);
    // In effect at once, before any table is built.
    assert!(svc.interim.is_some() && svc.maglev.is_empty());
    let id = svc.pick(12345).unwrap();
    assert_eq!(g.bindings[id as usize].key, key(11));
    assert_eq!(g.bindings[id as usize].out_port, 1);
    assert!(g.is_vip(u32::from(Ipv4Addr::new(10, 0, 0, 100))));
}

#[test]
fn a_change_copies_one_chunk_and_sizes_maglev_to_the_service() {
    let mut c = Control::new(ports(), 4096, 64, 65537);
    for rs in 11..14 {
        c.apply(&Primitive::Add { key: key(rs), params: BindingParams::default() }).unwrap();
    }
    let g1 = c.settle();
    let svc = g1.service(u32::from(Ipv4Addr::new(10, 0, 0, 100)), 80, 6).unwrap();
    // 3 real servers: a 16067-entry table (≥ 3000 per server), not the 65537 cap.
    assert_eq!(svc.maglev.table_size(), 16067);
    assert!(svc.interim.is_none());
    c.apply(&Primitive::Remove { key: key(12) }).unwrap();
    let g2 = c.publish();
    let id = *c.by_key.get(&key(12)).unwrap() as usize;
    // The changed slot's chunk was copied; every other chunk is shared with g1.
    assert!(!g2.bindings.shares_chunk(&g1.bindings, id));
    let far = (id + crate::generation::SLOT_CHUNK) % 4096;
    assert!(g2.bindings.shares_chunk(&g1.bindings, far));
    assert_eq!(g1.bindings[id].state, SlotState::Active);
    assert_eq!(g2.bindings[id].state, SlotState::Draining);
    // The set of services did not change: the lookup maps are shared.
    assert!(Arc::ptr_eq(&g1.service_index, &g2.service_index));
    assert_eq!(g2.service(u32::from(Ipv4Addr::new(10, 0, 0, 100)), 80, 6).unwrap().active, 2);
}

#[test]
fn a_service_never_has_more_bindings_than_maglev_entries() {
    // Table size 251: at most 250 bindings per service.
    let mut c = Control::new(ports(), 4096, 4, 251);
    let k = |i: u32| BindingKey {
        service: "10.0.0.100:80".parse().unwrap(),
        real: acm::RealServer { rip: Ipv4Addr::new(10, 0, 1, 2), rport: 1000 + i as u16 },
    };
    for i in 0..250 {
        c.apply(&Primitive::Add { key: k(i), params: BindingParams::default() }).unwrap();
    }
    assert!(matches!(
        c.apply(&Primitive::Add { key: k(250), params: BindingParams::default() }),
        Err(AcmError::Capacity(_))
    ));
    let g = c.publish();
    assert_eq!(g.service(u32::from(Ipv4Addr::new(10, 0, 0, 100)), 80, 6).unwrap().active, 250);
}

#[test]
fn duplicate_and_unknown_are_typed_errors() {
    let mut c = ctl();
    let p = BindingParams::default();
    c.apply(&Primitive::Add { key: key(11), params: p }).unwrap();
    assert_eq!(c.apply(&Primitive::Add { key: key(11), params: p }), Err(AcmError::DuplicateBinding(key(11))));
    assert_eq!(c.apply(&Primitive::Remove { key: key(12) }), Err(AcmError::UnknownBinding(key(12))));
    let other: ServiceKey = "10.0.0.101:80".parse().unwrap();
    assert_eq!(
        c.apply(&Primitive::Drop { service: other, fraction: DropFraction::ALL }),
        Err(AcmError::UnknownService(other))
    );
    let far = BindingKey { service: key(11).service, real: "192.168.9.9:80".parse().unwrap() };
    assert_eq!(c.apply(&Primitive::Add { key: far, params: p }), Err(AcmError::Unreachable(far.real)));
}

#[test]
fn remove_drains_until_flows_end() {
    let mut c = ctl();
    c.apply(&Primitive::Add { key: key(11), params: BindingParams::default() }).unwrap();
    c.apply(&Primitive::Add { key: key(12), params: BindingParams::default() }).unwrap();
    c.publish();
    assert_eq!(c.apply(&Primitive::Remove { key: key(11) }), Ok(Outcome::Changed));
    assert_eq!(c.apply(&Primitive::Remove { key: key(11) }), Ok(Outcome::Unchanged));
    let g = c.publish();
    let svc = g.service(u32::from(Ipv4Addr::new(10, 0, 0, 100)), 80, 6).unwrap();
    assert_eq!(svc.active, 1);
    for h in 0..1000u64 {
        let id = svc.pick(h.wrapping_mul(0x9e3779b97f4a7c15)).unwrap();
        assert_eq!(g.bindings[id as usize].key, key(12));
    }
    let listed = c.list(|_| Default::default());
    assert_eq!(listed.iter().find(|b| b.key == key(11)).unwrap().state, BindingState::Draining);
    // Flows remain: nothing reaped.
    assert_eq!(c.reap(|_| 3), Outcome::Unchanged);
    assert_eq!(c.reap(|_| 0), Outcome::Changed);
    assert!(c.list(|_| Default::default()).iter().all(|b| b.key != key(11)));
    // Re-adding a draining binding reactivates it.
    c.apply(&Primitive::Remove { key: key(12) }).unwrap();
    assert_eq!(c.apply(&Primitive::Add { key: key(12), params: BindingParams::default() }), Ok(Outcome::Changed));
    assert_eq!(c.list(|_| Default::default())[0].state, BindingState::Active);
}

#[test]
fn force_remove_unlists_at_once_and_slot_is_reused_with_new_incarnation() {
    let mut c = ctl();
    c.apply(&Primitive::Add { key: key(11), params: BindingParams::default() }).unwrap();
    let g1 = c.publish();
    let inc1 = g1.bindings.iter().find(|s| s.key == key(11)).unwrap().incarnation;
    c.apply(&Primitive::ForceRemove { key: key(11) }).unwrap();
    let g2 = c.publish();
    assert!(g2.has_force_removed());
    assert!(c.list(|_| Default::default()).is_empty());
    // The service keeps existing until the slot is reaped.
    assert!(g2.service(u32::from(Ipv4Addr::new(10, 0, 0, 100)), 80, 6).is_some());
    c.reap(|_| 0);
    let g3 = c.publish();
    assert!(!g3.has_force_removed());
    assert!(g3.service(u32::from(Ipv4Addr::new(10, 0, 0, 100)), 80, 6).is_none());
    c.apply(&Primitive::Add { key: key(11), params: BindingParams::default() }).unwrap();
    let g4 = c.publish();
    let s = g4.bindings.iter().find(|s| s.key == key(11) && s.state == SlotState::Active).unwrap();
    assert_ne!(s.incarnation, inc1);
}

#[test]
fn capacity_is_a_clean_error() {
    let mut c = Control::new(ports(), 2, 4, 251);
    c.apply(&Primitive::Add { key: key(11), params: BindingParams::default() }).unwrap();
    c.apply(&Primitive::Add { key: key(12), params: BindingParams::default() }).unwrap();
    assert!(matches!(
        c.apply(&Primitive::Add { key: key(13), params: BindingParams::default() }),
        Err(AcmError::Capacity(_))
    ));
    assert_eq!(c.list(|_| Default::default()).len(), 2);
}

#[test]
fn drop_fraction_reaches_generation() {
    let mut c = ctl();
    c.apply(&Primitive::Add { key: key(11), params: BindingParams::default() }).unwrap();
    let svc = key(11).service;
    assert_eq!(c.apply(&Primitive::Drop { service: svc, fraction: DropFraction::ALL }), Ok(Outcome::Changed));
    assert_eq!(c.apply(&Primitive::Drop { service: svc, fraction: DropFraction::ALL }), Ok(Outcome::Unchanged));
    let g = c.publish();
    assert_eq!(g.service(u32::from(svc.vip), 80, 6).unwrap().drop_threshold, 1 << 32);
}

#[test]
fn neighbors_and_unresolved() {
    let mut c = ctl();
    c.apply(&Primitive::Add { key: key(11), params: BindingParams::default() }).unwrap();
    assert_eq!(c.unresolved_next_hops(), vec![(1, Ipv4Addr::new(10, 0, 1, 11))]);
    assert!(c.learn_neighbor(Ipv4Addr::new(10, 0, 1, 11), MacAddr([2, 2, 2, 2, 2, 2])));
    assert!(!c.learn_neighbor(Ipv4Addr::new(10, 0, 1, 11), MacAddr([2, 2, 2, 2, 2, 2])));
    assert!(c.unresolved_next_hops().is_empty());
    let g = c.publish();
    assert_eq!(g.neighbors.get(&u32::from(Ipv4Addr::new(10, 0, 1, 11))), Some(&MacAddr([2, 2, 2, 2, 2, 2])));
}

fn vip100() -> u32 {
    u32::from(Ipv4Addr::new(10, 0, 0, 100))
}

fn h(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i << 29)
}

#[test]
fn a_change_takes_effect_before_its_table_is_built_and_settles_to_the_exact_table() {
    let mut c = Control::new(ports(), 64, 4, 65537);
    for rs in 11..21 {
        c.apply(&Primitive::Add { key: key(rs), params: BindingParams::default() }).unwrap();
    }
    let g0 = c.settle();
    assert!(!c.needs_build());
    let before = g0.service(vip100(), 80, 6).unwrap();
    assert!(before.interim.is_none());
    assert_eq!(before.maglev.table_size(), 65537);
    let drained = *c.by_key.get(&key(15)).unwrap();

    // Drain: published with the old table and a correction; the drained server gets nothing.
    c.apply(&Primitive::Remove { key: key(15) }).unwrap();
    let g1 = c.publish();
    let interim = g1.service(vip100(), 80, 6).unwrap();
    assert!(Arc::ptr_eq(&interim.maglev.entries_arc(), &before.maglev.entries_arc()), "no table copied");
    assert_eq!(interim.interim.as_ref().unwrap().gone(), &[drained]);
    assert!(c.needs_build());
    for i in 0..20_000 {
        assert_ne!(interim.pick(h(i)), Some(drained));
    }

    // The build, as the dataplane does it: jobs out, built elsewhere, installed.
    let jobs = c.build_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].backends(), jobs[0].table_size()), (9, 65537));
    for j in jobs {
        assert_eq!(c.install(j.run()), Outcome::Changed);
    }
    let g2 = c.publish();
    let exact = g2.service(vip100(), 80, 6).unwrap();
    assert!(exact.interim.is_none());
    assert!(c.build_jobs().is_empty() && !c.needs_build());
    let nine: Vec<Backend> = (11..21)
        .filter(|&rs| rs != 15)
        .map(|rs| Backend { id: *c.by_key.get(&key(rs)).unwrap(), key: backend_key(&key(rs)), weight: 1 })
        .collect();
    assert_eq!(exact.maglev, Maglev::build(&nine, 65537).unwrap());
    // Maglev's minimal disruption between the two exact tables.
    let moved = crate::lb::disruption(&before.maglev, &exact.maglev);
    assert!(moved <= 0.11, "{moved}");
}

#[test]
fn a_build_overtaken_by_a_change_is_installed_and_corrected() {
    let mut c = Control::new(ports(), 64, 4, 65537);
    for rs in 11..14 {
        c.apply(&Primitive::Add { key: key(rs), params: BindingParams::default() }).unwrap();
    }
    c.publish();
    let jobs = c.build_jobs();
    // A change lands while the table is being built.
    c.apply(&Primitive::Add { key: key(14), params: BindingParams::default() }).unwrap();
    for j in jobs {
        c.install(j.run());
    }
    let g = c.publish();
    let svc = g.service(vip100(), 80, 6).unwrap();
    let newcomer = *c.by_key.get(&key(14)).unwrap();
    assert_eq!(svc.interim.as_ref().unwrap().added(), &[newcomer]);
    assert!(svc.maglev.entries().iter().all(|&e| e != newcomer));
    assert!((0..1000).any(|i| svc.pick(h(i)) == Some(newcomer)), "the newcomer gets flows at once");
    assert_eq!(c.build_jobs().len(), 1);
    let g = c.settle();
    let svc = g.service(vip100(), 80, 6).unwrap();
    assert!(svc.interim.is_none());
    assert!(svc.maglev.entry_count(newcomer) > 0);
}

#[test]
fn a_slot_reused_by_another_service_is_not_reached_through_an_old_table() {
    let mut c = Control::new(ports(), 3, 4, 65537);
    c.apply(&Primitive::Add { key: key(11), params: BindingParams::default() }).unwrap();
    c.apply(&Primitive::Add { key: key(12), params: BindingParams::default() }).unwrap();
    c.settle();
    let freed = *c.by_key.get(&key(11)).unwrap();
    c.apply(&Primitive::ForceRemove { key: key(11) }).unwrap();
    c.publish();
    assert_eq!(c.reap(|_| 0), Outcome::Changed);
    // All three slots in use: the freed one goes to a binding of another service.
    let other = BindingKey { service: "10.0.0.101:80".parse().unwrap(), real: "10.0.1.30:80".parse().unwrap() };
    c.apply(&Primitive::Add { key: other, params: BindingParams::default() }).unwrap();
    c.apply(&Primitive::Add {
        key: BindingKey { real: "10.0.1.31:80".parse().unwrap(), ..other },
        params: BindingParams::default(),
    })
    .unwrap();
    assert!(c.by_key.values().any(|&id| id == freed));
    let g = c.publish();
    let svc = g.service(vip100(), 80, 6).unwrap();
    assert!(svc.maglev.entries().contains(&freed), "the old table still names the slot");
    for i in 0..20_000 {
        let id = svc.pick(h(i)).unwrap();
        assert_eq!(g.bindings[id as usize].key, key(12));
    }
}
