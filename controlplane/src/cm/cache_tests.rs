//! Unit tests of the cache state machine against a fake switch (driven by hand: plans are
//! applied to the fake as the switch thread would), with time passed in where it matters.

use super::*;
use crate::cm::fake::FakeSwitch;
use crate::cm::switch::SwitchDriver;

fn key(vip: &str, rip: &str) -> BindingKey {
    BindingKey { service: vip.parse().unwrap(), real: rip.parse().unwrap() }
}

fn add(k: BindingKey) -> Primitive {
    Primitive::Add { key: k, params: BindingParams::default() }
}

/// Applies a plan's operations to the fake switch, as the switch thread would.
fn push(sw: &mut FakeSwitch, ops: &[Primitive]) {
    for op in ops {
        let _ = sw.apply(op);
    }
}

fn sync(cache: &mut Cache, sw: &mut FakeSwitch, remove_unknown: bool) -> Vec<Primitive> {
    let view = sw.list().unwrap();
    let ops = cache.reconcile(&view.bindings, view.drops.as_ref(), &|_| true, remove_unknown);
    push(sw, &ops);
    ops
}

#[test]
fn add_is_pushed_once_and_redundant_adds_are_filtered() {
    let mut c = Cache::default();
    let mut sw = FakeSwitch::new();
    let k = key("10.0.0.100:80", "10.0.1.11:80");
    let p = c.plan(&add(k)).unwrap();
    assert!(p.changed);
    assert_eq!(p.ops, vec![add(k)]);
    push(&mut sw, &p.ops);
    for _ in 0..3 {
        let p = c.plan(&add(k)).unwrap();
        assert!(!p.changed);
        assert!(p.ops.is_empty());
    }
    assert_eq!(sw.take_log().len(), 1);
    assert_eq!(c.get(&k).unwrap().state, BindingState::Active);
    // New weight: re-sent.
    let p = c.plan(&Primitive::Add { key: k, params: BindingParams { weight: 5, source_nat: false } }).unwrap();
    assert_eq!(p.ops.len(), 1);
}

#[test]
fn remove_drains_then_leaves_the_cache_when_the_switch_lets_go() {
    let mut c = Cache::default();
    let mut sw = FakeSwitch::new();
    let k = key("10.0.0.100:80", "10.0.1.11:80");
    push(&mut sw, &c.plan(&add(k)).unwrap().ops);
    let p = c.plan(&Primitive::Remove { key: k }).unwrap();
    assert_eq!(p.ops, vec![Primitive::Remove { key: k }]);
    push(&mut sw, &p.ops);
    assert_eq!(c.get(&k).unwrap().state, BindingState::Draining);
    // Redundant remove filtered.
    assert!(c.plan(&Primitive::Remove { key: k }).unwrap().ops.is_empty());
    // Still draining on the switch: sync changes nothing, entry stays.
    assert!(sync(&mut c, &mut sw, true).is_empty());
    assert!(c.get(&k).is_some());
    // Last flow ended: the switch lets go, so does the cache.
    sw.finish_drains();
    assert!(sync(&mut c, &mut sw, true).is_empty());
    assert!(c.get(&k).is_none());
    // Add of a draining binding re-activates it.
    push(&mut sw, &c.plan(&add(k)).unwrap().ops);
    push(&mut sw, &c.plan(&Primitive::Remove { key: k }).unwrap().ops);
    let p = c.plan(&add(k)).unwrap();
    assert_eq!(p.ops, vec![add(k)]);
    assert_eq!(c.get(&k).unwrap().state, BindingState::Active);
}

#[test]
fn force_remove_forgets_at_once() {
    let mut c = Cache::default();
    let k = key("10.0.0.100:80", "10.0.1.11:80");
    c.plan(&add(k)).unwrap();
    let p = c.plan(&Primitive::ForceRemove { key: k }).unwrap();
    assert_eq!(p.ops, vec![Primitive::ForceRemove { key: k }]);
    assert!(c.get(&k).is_none());
}

#[test]
fn unknown_bindings_and_services_are_refused() {
    let mut c = Cache::default();
    let k = key("10.0.0.100:80", "10.0.1.11:80");
    assert_eq!(c.plan(&Primitive::Remove { key: k }).unwrap_err(), CmError::Acm(AcmError::UnknownService(k.service)));
    c.plan(&add(k)).unwrap();
    let k2 = key("10.0.0.100:80", "10.0.1.12:80");
    assert_eq!(c.plan(&Primitive::ForceRemove { key: k2 }).unwrap_err(), CmError::Acm(AcmError::UnknownBinding(k2)));
    let other: ServiceKey = "10.0.0.200:80".parse().unwrap();
    assert!(matches!(
        c.plan(&Primitive::Drop { service: other, fraction: DropFraction::ALL }),
        Err(CmError::Acm(AcmError::UnknownService(_)))
    ));
    let bad = Primitive::Add { key: k2, params: BindingParams { weight: 70_000, source_nat: false } };
    assert!(matches!(c.plan(&bad), Err(CmError::Acm(AcmError::BadWeight(70_000)))));
    assert!(c.get(&k2).is_none(), "a refused add leaves nothing behind");
}

#[test]
fn sync_re_adds_what_a_reset_switch_lost_with_drop_fractions() {
    let mut c = Cache::default();
    let mut sw = FakeSwitch::new();
    let a = key("10.0.0.100:80", "10.0.1.11:80");
    let b = key("10.0.0.100:80", "10.0.1.12:80");
    push(&mut sw, &c.plan(&add(a)).unwrap().ops);
    push(&mut sw, &c.plan(&add(b)).unwrap().ops);
    let half = DropFraction::new(0.5).unwrap();
    push(&mut sw, &c.plan(&Primitive::Drop { service: a.service, fraction: half }).unwrap().ops);
    assert!(sync(&mut c, &mut sw, true).is_empty(), "in agreement");
    sw.reset();
    let ops = sync(&mut c, &mut sw, true);
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert_eq!(ops[2], Primitive::Drop { service: a.service, fraction: half });
    assert_eq!(sw.state_of(&a), Some(BindingState::Active));
    assert_eq!(sw.lock().drops.get(&a.service), Some(&half));
    assert!(sync(&mut c, &mut sw, true).is_empty());
}

#[test]
fn sync_removes_what_the_cache_does_not_know_after_the_grace_period() {
    let mut c = Cache::default();
    let mut sw = FakeSwitch::new();
    let stray = key("10.0.0.100:80", "10.0.1.13:80");
    sw.apply(&add(stray)).unwrap();
    // During the grace period (just restarted): left alone, beacons may re-announce it.
    assert!(sync(&mut c, &mut sw, false).is_empty());
    assert_eq!(sync(&mut c, &mut sw, true), vec![Primitive::Remove { key: stray }]);
    assert_eq!(sw.state_of(&stray), Some(BindingState::Draining));
    assert!(sync(&mut c, &mut sw, true).is_empty(), "draining strays finish on their own");
}

#[test]
fn failed_leaves_the_switch_but_stays_cached_and_recovers() {
    let mut c = Cache::default();
    let mut sw = FakeSwitch::new();
    let k = key("10.0.0.100:80", "10.0.1.11:80");
    push(&mut sw, &c.plan(&add(k)).unwrap().ops);
    let p = c.plan_state(k, BindingState::Failed).unwrap();
    assert_eq!(p.ops, vec![Primitive::ForceRemove { key: k }]);
    push(&mut sw, &p.ops);
    assert_eq!(sw.state_of(&k), None);
    // Beacon re-add while failed: sticky, nothing pushed; sync does not re-add either.
    assert!(c.plan(&add(k)).unwrap().ops.is_empty());
    assert!(sync(&mut c, &mut sw, true).is_empty());
    assert_eq!(c.get(&k).unwrap().state, BindingState::Failed);
    let p = c.plan_state(k, BindingState::Active).unwrap();
    assert_eq!(p.ops, vec![add(k)]);
    push(&mut sw, &p.ops);
    assert_eq!(sw.state_of(&k), Some(BindingState::Active));
    assert!(c.plan_state(k, BindingState::Active).unwrap().ops.is_empty());
}

#[test]
fn drain_policy_and_testing_state() {
    let mut c = Cache::new(CachePolicy { add_state: BindingState::Testing, fail: FailPolicy::Drain });
    let k = key("10.0.0.100:80", "10.0.1.11:80");
    let p = c.plan(&add(k)).unwrap();
    assert!(p.changed && p.ops.is_empty(), "testing: not pushed until healthy");
    assert_eq!(c.plan_state(k, BindingState::Active).unwrap().ops, vec![add(k)]);
    assert_eq!(c.plan_state(k, BindingState::Failed).unwrap().ops, vec![Primitive::Remove { key: k }]);
}

#[test]
fn undo_restores_the_previous_entry() {
    let mut c = Cache::default();
    let k = key("10.0.0.100:80", "10.0.1.11:80");
    let p = c.plan(&add(k)).unwrap();
    c.undo(p.undo);
    assert!(c.get(&k).is_none());
    c.plan(&add(k)).unwrap();
    let p = c.plan(&Primitive::Remove { key: k }).unwrap();
    c.undo(p.undo);
    assert_eq!(c.get(&k).unwrap().state, BindingState::Active);
}

#[test]
fn partitions_keep_classes_on_disjoint_servers() {
    let mut c = Cache::default();
    let gold: Ipv4Addr = "10.0.0.100".parse().unwrap();
    let bronze: Ipv4Addr = "10.0.0.200".parse().unwrap();
    c.set_classes([(gold, "gold".to_string()), (bronze, "bronze".to_string())].into());
    c.plan(&add(key("10.0.0.100:80", "10.0.1.11:80"))).unwrap();
    c.plan(&add(key("10.0.0.100:443", "10.0.1.11:443"))).unwrap();
    let err = c.plan(&add(key("10.0.0.200:80", "10.0.1.11:80"))).unwrap_err();
    assert!(matches!(err, CmError::Partition { .. }), "{err}");
    assert!(err.to_string().contains("gold"));
    c.plan(&add(key("10.0.0.200:80", "10.0.1.12:80"))).unwrap();
    // An unclassified VIP may not share a classed VIP's servers either.
    assert!(c.plan(&add(key("10.0.0.50:80", "10.0.1.12:80"))).is_err());
}

#[test]
fn generation_moves_on_changes_only() {
    let mut c = Cache::default();
    let k = key("10.0.0.100:80", "10.0.1.11:80");
    let g0 = c.generation();
    c.plan(&add(k)).unwrap();
    let g1 = c.generation();
    assert!(g1 > g0);
    c.plan(&add(k)).unwrap();
    assert_eq!(c.generation(), g1);
}
