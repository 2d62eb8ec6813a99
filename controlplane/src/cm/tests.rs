//! The CM's one code path with fake switches: pushes, filtering, refusals, unavailable switches,
//! health states, standby, sync.

use std::time::Duration;

use acm::{AcmError, BindingKey, BindingParams, BindingState, DropFraction, Primitive};

use super::fake::FakeSwitch;
use super::switch::VipFilter;
use super::*;

fn key(rip: &str) -> BindingKey {
    BindingKey { service: "10.0.0.100:80".parse().unwrap(), real: rip.parse().unwrap() }
}

fn add(k: BindingKey) -> Primitive {
    Primitive::Add { key: k, params: BindingParams::default() }
}

fn cm_with(switches: Vec<(&str, VipFilter, FakeSwitch)>) -> Cm {
    let opts =
        CmOptions { sync_interval: Duration::from_secs(3600), sync_grace: Duration::ZERO, ..CmOptions::default() };
    Cm::new(
        opts,
        switches.into_iter().map(|(n, v, f)| SwitchSpec { name: n.into(), vips: v, driver: Box::new(f) }).collect(),
    )
}

#[tokio::test]
async fn one_path_pushes_filters_and_measures() {
    let sw = FakeSwitch::new();
    let cm = cm_with(vec![("local", VipFilter::All, sw.clone())]);
    let k = key("10.0.1.11:80");
    let o = cm.primitive(Origin::Api, add(k)).await.unwrap();
    assert!(o.changed && o.switches.len() == 1 && o.switches[0].acked, "{o:?}");
    assert_eq!(sw.state_of(&k), Some(BindingState::Active));
    let o = cm.primitive(Origin::Beacon { server: "10.0.1.11".parse().unwrap() }, add(k)).await.unwrap();
    assert!(!o.changed && o.switches.is_empty(), "redundant add reached the switch: {o:?}");
    assert_eq!(sw.take_log().len(), 1);
    let o = tokio::task::spawn_blocking({
        let cm = cm.clone();
        move || cm.primitive_blocking(Origin::Cli { session: 1 }, Primitive::Remove { key: k })
    })
    .await
    .unwrap()
    .unwrap();
    assert!(o.changed);
    assert_eq!(sw.state_of(&k), Some(BindingState::Draining));
    let lat = cm.latency();
    assert!(lat.iter().any(|r| r.primitive == "add" && r.switch == "local" && r.summary.count == 1), "{lat:?}");
    assert!(lat.iter().any(|r| r.primitive == "add" && r.switch == crate::latency::CACHE), "{lat:?}");
    assert_eq!(cm.counters().filtered, 1);
}

#[tokio::test]
async fn refusal_by_every_switch_is_undone() {
    let sw = FakeSwitch::new();
    let cm = cm_with(vec![("local", VipFilter::All, sw.clone())]);
    let k = key("10.0.1.11:80");
    cm.primitive(Origin::Api, add(k)).await.unwrap();
    // The switch lost the service behind the CM's back; a Drop is refused and not kept.
    sw.reset();
    let f = DropFraction::new(0.5).unwrap();
    let e = cm.primitive(Origin::Api, Primitive::Drop { service: k.service, fraction: f }).await.unwrap_err();
    assert!(matches!(e, CmError::Acm(AcmError::UnknownService(_))), "{e}");
    // Unknown VIP: no switch serves it.
    let cm2 = cm_with(vec![("edge", VipFilter::Only(vec!["10.0.0.200".parse().unwrap()]), FakeSwitch::new())]);
    let e = cm2.primitive(Origin::Api, add(k)).await.unwrap_err();
    assert_eq!(e, CmError::NoSwitch("10.0.0.100".parse().unwrap()));
    assert!(cm2.list().is_empty());
}

#[tokio::test]
async fn an_unavailable_switch_loses_nothing() {
    let sw = FakeSwitch::new();
    let cm = cm_with(vec![("local", VipFilter::All, sw.clone())]);
    sw.lock().down = true;
    let k = key("10.0.1.11:80");
    let o = cm.primitive(Origin::Api, add(k)).await.unwrap();
    assert_eq!(o.unavailable(), vec!["local"]);
    assert_eq!(cm.state_of(&k), Some(BindingState::Active), "kept in the cache");
    sw.lock().down = false;
    cm.sync_once().await;
    assert_eq!(sw.state_of(&k), Some(BindingState::Active), "the sync pushed it");
    assert!(cm.switches()[0].2, "switch is up again");
}

#[tokio::test]
async fn health_states_and_standby() {
    let sw = FakeSwitch::new();
    let cm = cm_with(vec![("local", VipFilter::All, sw.clone())]);
    let k = key("10.0.1.11:80");
    cm.primitive(Origin::Api, add(k)).await.unwrap();
    cm.set_state(k, BindingState::Failed).await.unwrap();
    assert_eq!(sw.state_of(&k), None, "failed: off the switch");
    assert_eq!(cm.state_of(&k), Some(BindingState::Failed), "but in the cache");
    cm.set_state(k, BindingState::Active).await.unwrap();
    assert_eq!(sw.state_of(&k), Some(BindingState::Active));

    // Standby: the cache takes requests, the switch hears nothing.
    cm.set_active(false);
    let k2 = key("10.0.1.12:80");
    let o = cm.primitive(Origin::Api, add(k2)).await.unwrap();
    assert!(o.standby && o.changed);
    assert_eq!(sw.state_of(&k2), None);
    assert!(cm.sync_once().await.is_empty(), "a standby does not sync");
    // Won the election: a sync gives the switch the cache.
    cm.set_active(true);
    cm.sync_once().await;
    assert_eq!(sw.state_of(&k2), Some(BindingState::Active));
}

#[tokio::test]
async fn profiles_route_by_vip_and_sync_repairs_each_switch() {
    let a = FakeSwitch::new();
    let b = FakeSwitch::new();
    let cm = cm_with(vec![
        ("a", VipFilter::Only(vec!["10.0.0.100".parse().unwrap()]), a.clone()),
        ("b", VipFilter::All, b.clone()),
    ]);
    let k = key("10.0.1.11:80");
    let other = BindingKey { service: "10.0.0.200:80".parse().unwrap(), real: "10.0.1.12:80".parse().unwrap() };
    cm.primitive(Origin::Api, add(k)).await.unwrap();
    cm.primitive(Origin::Api, add(other)).await.unwrap();
    assert_eq!(a.lock().bindings.len(), 1);
    assert_eq!(b.lock().bindings.len(), 2);
    b.reset();
    // A stray binding on a: removed (the grace period is zero here).
    let stray = key("10.0.1.99:80");
    use super::switch::SwitchDriver;
    a.clone().apply(&add(stray)).unwrap();
    let r = cm.sync_once().await;
    assert_eq!(r.len(), 2);
    assert_eq!(b.lock().bindings.len(), 2, "b re-added");
    assert_eq!(a.state_of(&stray), Some(BindingState::Draining), "stray drained");
}
