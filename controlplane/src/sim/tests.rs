//! Election, takeover, drain, sync, beacon loss and rolling restart on virtual time, and
//! properties over many seeds. No test here sleeps.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use acm::{BindingKey, BindingParams, BindingState, Primitive, RealServer};

use super::net::Faults;
use super::{SimConfig, World};
use crate::cm::switch::{SwitchDriver, VipFilter};
use crate::cm::Origin;
use crate::rolling::{rolling_restart, RollingOps, RollingPlan};
use crate::time::Time;

const S: Duration = Duration::from_secs(1);

fn key(rs: u8) -> BindingKey {
    BindingKey {
        service: "10.0.0.100:80".parse().unwrap(),
        real: RealServer { rip: Ipv4Addr::new(10, 0, 1, 10 + rs), rport: 80 },
    }
}

fn params(w: u32) -> BindingParams {
    BindingParams { weight: w, source_nat: false }
}

/// A world with one switch, CMs with these election ids, and `servers` servers beaconing one
/// binding each.
fn world(seed: u64, ids: &[u64], servers: u8) -> World {
    let mut w = World::new(SimConfig::default(), seed);
    w.add_switch("local", VipFilter::All);
    for id in ids {
        w.add_cm(Some(*id));
    }
    for rs in 1..=servers {
        w.add_server(Ipv4Addr::new(10, 0, 1, 10 + rs), &[(key(rs), params(u32::from(rs)))]);
    }
    w
}

fn on_switch(w: &World, k: &BindingKey) -> Option<BindingState> {
    w.switch(0).state_of(k)
}

/// Runs until `f` holds (checking every 10 ms of virtual time); returns how long it took.
fn run_until_true(w: &mut World, limit: Duration, what: &str, mut f: impl FnMut(&World) -> bool) -> Duration {
    let t0 = w.now();
    while !f(w) {
        assert!(w.now() - t0 < limit, "not {what} after {limit:?}");
        w.run_for(Duration::from_millis(10));
    }
    w.now() - t0
}

#[test]
fn three_cms_elect_the_lowest_id_and_the_standbys_keep_every_binding() {
    let mut w = world(1, &[3, 1, 2], 3);
    w.run_for(10 * S);
    assert_eq!(w.active_cms(), vec![1], "id 1 (CM number 1) wins");
    for cm in 0..3 {
        for rs in 1..=3 {
            assert_eq!(w.cm(cm).state_of(&key(rs)), Some(BindingState::Active), "CM {cm} has rs{rs}");
        }
    }
    for rs in 1..=3 {
        assert_eq!(on_switch(&w, &key(rs)), Some(BindingState::Active));
    }
    assert_eq!(w.cm(0).election().and_then(|e| e.leader()), Some(1));
    assert_eq!(w.converged(1), Ok(()));
}

#[test]
fn the_next_lowest_takes_over_with_every_binding_and_restores_a_reset_switch() {
    let mut w = world(2, &[3, 1, 2], 3);
    w.run_for(10 * S);
    assert_eq!(w.active_cms(), vec![1]);
    w.kill_cm(1);
    // The switch restarted meanwhile: empty.
    w.switch(0).reset();
    let took = run_until_true(&mut w, 10 * S, "taken over", |w| w.active_cms() == vec![2]);
    // Three missed heartbeats (1 s) after the last one, then a one-interval election window.
    assert!(took >= 3 * S && took <= 5 * S, "takeover after {took:?}");
    assert_eq!(w.cm(0).election().and_then(|e| e.leader()), Some(2));
    // Becoming active syncs at once: the switch gets every binding back.
    let back = run_until_true(&mut w, S, "restored", |w| (1..=3).all(|rs| on_switch(w, &key(rs)).is_some()));
    assert!(back < Duration::from_millis(100), "restored {back:?} after the takeover");
    assert_eq!(w.converged(2), Ok(()));
}

#[test]
fn of_two_active_cms_after_a_partition_the_higher_id_steps_down() {
    let mut w = world(3, &[2, 1], 2);
    // Partitioned from the start: each hears nothing of the other and wins its own election.
    w.faults = Faults { loss: 1.0, ..Faults::PERFECT };
    w.run_for(10 * S);
    assert_eq!(w.active_cms(), vec![0, 1], "both active while partitioned");
    w.faults = Faults::PERFECT;
    run_until_true(&mut w, 3 * S, "one active", |w| w.active_cms().len() == 1);
    assert_eq!(w.active_cms(), vec![1], "id 1 stays, id 2 steps down");
    w.run_for(3 * S);
    assert_eq!(w.converged(1), Ok(()));
}

#[test]
fn a_removed_binding_drains_then_leaves_the_cache_at_the_next_sync() {
    let mut w = world(4, &[], 0);
    let cm = w.add_cm(None);
    let k = key(1);
    let o = w.primitive(cm, Origin::Api, Primitive::Add { key: k, params: params(1) }).unwrap();
    assert!(o.changed && o.switches[0].acked);
    assert_eq!(o.latency_us, 2000.0, "receipt to ack is the switch's latency, in virtual time");
    w.primitive(cm, Origin::Api, Primitive::Remove { key: k }).unwrap();
    assert_eq!(
        (w.cm(cm).state_of(&k), on_switch(&w, &k)),
        (Some(BindingState::Draining), Some(BindingState::Draining))
    );
    // The drain takes 1 s on the switch; the next sync (every 2 s) sees it gone.
    let gone = run_until_true(&mut w, 5 * S, "drained", |w| w.cm(cm).state_of(&k).is_none());
    assert!(gone >= S && gone <= 3 * S, "left the cache {gone:?} after the Remove");
    assert_eq!(on_switch(&w, &k), None);
}

#[test]
fn the_sync_repairs_a_reset_switch_and_drains_strays_only_after_the_grace_period() {
    let mut w = world(5, &[], 0);
    let cm = w.add_cm(None);
    for rs in 1..=2 {
        w.primitive(cm, Origin::Api, Primitive::Add { key: key(rs), params: params(1) }).unwrap();
    }
    w.switch(0).reset();
    let stray = key(9);
    w.switch(0).clone().apply(&Primitive::Add { key: stray, params: params(1) }).unwrap();
    let r = w.sync(cm);
    assert!(r[0].reached && r[0].corrections.len() == 2, "{r:?}");
    assert_eq!(on_switch(&w, &key(1)), Some(BindingState::Active));
    assert_eq!(on_switch(&w, &stray), Some(BindingState::Active), "within the grace period");
    w.run_until(Time::ZERO + 6 * S);
    w.sync(cm);
    assert_eq!(on_switch(&w, &stray), Some(BindingState::Draining), "drained after the grace period");
    assert_eq!(w.converged(cm), Ok(()));
}

#[test]
fn a_silent_server_is_removed_after_three_intervals_and_returns_when_it_beacons() {
    let mut w = world(6, &[], 2);
    let cm = w.add_cm(None);
    w.run_for(3 * S);
    assert_eq!(on_switch(&w, &key(1)), Some(BindingState::Active));
    w.set_server_silent(0, true);
    let gone = run_until_true(&mut w, 10 * S, "removed", |w| on_switch(w, &key(1)).is_none());
    // The last beacon was up to one interval before the silence; the tracker waits three.
    assert!(gone >= 2 * S && gone <= 3 * S + Duration::from_millis(10), "removed {gone:?} after silence");
    assert_eq!(w.cm(cm).state_of(&key(1)), None);
    assert_eq!(w.cm(cm).beacons_lost(), 1);
    assert_eq!(on_switch(&w, &key(2)), Some(BindingState::Active), "the other server stays");
    w.set_server_silent(0, false);
    run_until_true(&mut w, 2 * S, "back", |w| on_switch(w, &key(1)) == Some(BindingState::Active));
    // A clean Remove drains at once.
    w.server_remove(1, &[key(2)]);
    w.run_for(Duration::from_millis(50));
    assert_eq!(on_switch(&w, &key(2)), Some(BindingState::Draining));
}

/// [`RollingOps`] on the simulated world: commands make the server unhealthy for `boot`.
struct SimOps<'a> {
    w: &'a mut World,
    cm: usize,
    boot: Duration,
    down_until: HashMap<RealServer, Time>,
    /// The fewest Active bindings on the switch seen at any poll.
    min_active: usize,
}

impl RollingOps for SimOps<'_> {
    fn list(&mut self) -> Result<Vec<acm::BindingInfo>, String> {
        let active = self.w.switch(0).lock().bindings.values().filter(|b| b.1 == BindingState::Active).count();
        self.min_active = self.min_active.min(active);
        Ok(self.w.cm(self.cm).cache().list())
    }
    fn primitive(&mut self, p: Primitive) -> Result<(), String> {
        self.w.primitive(self.cm, Origin::Api, p).map(drop).map_err(|e| e.to_string())
    }
    fn run(&mut self, command: &str) -> Result<(), String> {
        let rip: Ipv4Addr = command.rsplit(' ').next().unwrap().parse().map_err(|_| "bad command".to_string())?;
        self.down_until.insert(RealServer { rip, rport: 80 }, self.w.now() + self.boot);
        Ok(())
    }
    fn healthy(&mut self, real: RealServer) -> bool {
        self.down_until.get(&real).is_none_or(|t| self.w.now() >= *t)
    }
    fn sleep(&mut self, d: Duration) {
        self.w.run_for(d)
    }
    fn now(&mut self) -> Time {
        self.w.now()
    }
}

#[test]
fn a_rolling_restart_drains_restarts_and_re_adds_each_server_in_turn() {
    let mut w = world(7, &[], 0);
    let cm = w.add_cm(None);
    for rs in 1..=3 {
        w.primitive(cm, Origin::Api, Primitive::Add { key: key(rs), params: params(u32::from(rs)) }).unwrap();
    }
    let plan = RollingPlan::new("10.0.0.100:80".parse().unwrap(), "reboot {server}");
    let mut ops = SimOps { w: &mut w, cm, boot: 3 * S, down_until: HashMap::new(), min_active: usize::MAX };
    let mut lines = Vec::new();
    let steps = rolling_restart(&mut ops, &plan, |l| lines.push(l.to_string())).unwrap();
    assert_eq!(ops.min_active, 2, "never more than one server out");
    assert_eq!(steps.len(), 3);
    for s in &steps {
        // Drain 1 s on the switch, seen by the next sync (2 s); back after the 3 s boot.
        assert!(!s.forced && s.drain >= S && s.drain <= 3 * S + plan.poll, "{s:?}");
        assert!(s.back >= 3 * S && s.back < 4 * S, "{s:?}");
    }
    for rs in 1..=3 {
        assert_eq!(w.switch(0).lock().bindings.get(&key(rs)), Some(&(params(u32::from(rs)), BindingState::Active)));
    }
    assert_eq!(w.converged(cm), Ok(()));
}

#[test]
fn a_drain_that_never_ends_is_forced_by_the_rolling_restart() {
    let cfg = SimConfig { drain_time: Duration::from_secs(1000), ..SimConfig::default() };
    let mut w = World::new(cfg, 8);
    w.add_switch("local", VipFilter::All);
    let cm = w.add_cm(None);
    for rs in 1..=2 {
        w.primitive(cm, Origin::Api, Primitive::Add { key: key(rs), params: params(1) }).unwrap();
    }
    let mut plan = RollingPlan::new("10.0.0.100:80".parse().unwrap(), "reboot {server}");
    plan.drain_timeout = 5 * S;
    let mut ops = SimOps { w: &mut w, cm, boot: S, down_until: HashMap::new(), min_active: usize::MAX };
    let steps = rolling_restart(&mut ops, &plan, |_| {}).unwrap();
    assert!(steps.iter().all(|s| s.forced && s.drain >= 5 * S && s.drain < 6 * S), "{steps:?}");
    assert_eq!(w.converged(cm), Ok(()));
}

/// After any loss, duplication and reordering of beacons and heartbeats — and a dead CM now and
/// then — exactly one CM is active once the network heals, every live CM's cache has every
/// beaconed binding, and the switch holds what the active CM's cache says.
#[test]
fn property_one_active_cm_and_converged_switches_after_any_loss_pattern() {
    // The storms must bite: some seeds see two active CMs at once, and servers lost.
    let (mut split_brain, mut lost) = (0, 0);
    for seed in 0..300 {
        let mut w = World::new(SimConfig::default(), seed);
        w.add_switch("local", VipFilter::All);
        let n = w.rng().between(2, 4) as usize;
        let mut ids: Vec<u64> = (1..=n as u64).collect();
        // Shuffle the ids over the CMs.
        for i in (1..ids.len()).rev() {
            let j = w.rng().between(0, i as u64) as usize;
            ids.swap(i, j);
        }
        for id in &ids {
            w.add_cm(Some(*id));
        }
        let servers = w.rng().between(1, 4) as u8;
        for rs in 1..=servers {
            w.add_server(Ipv4Addr::new(10, 0, 1, 10 + rs), &[(key(rs), params(u32::from(rs)))]);
        }
        let loss = w.rng().between(0, 90) as f64 / 100.0;
        w.faults = Faults::lossy(loss);
        let storm = Duration::from_millis(w.rng().between(1_000, 30_000));
        let kill_at = w.rng().chance(0.3).then(|| Duration::from_millis(w.rng().between(0, 30_000)));
        let victim = w.rng().between(0, n as u64 - 1) as usize;
        let t0 = w.now();
        while w.now() - t0 < storm {
            if kill_at.is_some_and(|k| w.now() - t0 >= k) {
                w.kill_cm(victim);
            }
            w.run_for(Duration::from_millis(100));
            if w.active_cms().len() > 1 {
                split_brain += 1;
            }
        }
        lost += (0..n).map(|c| w.cm(c).beacons_lost()).sum::<u64>();
        w.faults = Faults::PERFECT;
        // Heal: misses × interval + the election window + a sync interval + slack.
        w.run_for(10 * S);
        let active = w.active_cms();
        assert_eq!(active.len(), 1, "seed {seed} (loss {loss}, storm {storm:?}): active {active:?}");
        for cm in (0..n).filter(|c| kill_at.is_none() || *c != victim) {
            for rs in 1..=servers {
                assert_eq!(w.cm(cm).state_of(&key(rs)), Some(BindingState::Active), "seed {seed}: CM {cm}, rs{rs}");
            }
        }
        assert_eq!(w.converged(active[0]), Ok(()), "seed {seed} (loss {loss}, storm {storm:?})");
    }
    assert!(split_brain > 0 && lost > 0, "split brains {split_brain}, bindings lost {lost}");
}

/// The same seed gives the same run.
#[test]
fn property_runs_are_deterministic() {
    let run = |seed| {
        let mut w = world(seed, &[3, 1, 2], 3);
        w.faults = Faults::lossy(0.5);
        let mut trace = Vec::new();
        for _ in 0..100 {
            w.run_for(Duration::from_millis(100));
            trace.push((w.active_cms(), w.cm(0).cache().generation(), w.cm(0).counters()));
        }
        trace
    };
    for seed in 0..5 {
        assert_eq!(run(seed), run(seed), "seed {seed}");
    }
}

/// Operators change bindings through whichever CM they reach while the network is bad and the
/// switch goes away now and then; once both heal, the switch holds what the active CM's cache
/// says.
#[test]
fn property_the_switch_converges_to_the_active_cache_after_requests_during_faults() {
    let mut refused = 0;
    for seed in 0..200 {
        let mut w = world(seed, &[2, 1], 2);
        w.faults = Faults::lossy(w.rng().between(0, 60) as f64 / 100.0);
        for _ in 0..40 {
            let cm = w.rng().between(0, 1) as usize;
            let k = key(w.rng().between(3, 6) as u8);
            let p = match w.rng().between(0, 3) {
                0 | 1 => Primitive::Add { key: k, params: params(w.rng().between(1, 3) as u32) },
                2 => Primitive::Remove { key: k },
                _ => Primitive::ForceRemove { key: k },
            };
            if w.primitive(cm, Origin::Api, p).is_err() {
                refused += 1;
            }
            let down = w.rng().chance(0.1);
            w.switch(0).lock().down = down;
            let pause = Duration::from_millis(w.rng().between(0, 500));
            w.run_for(pause);
        }
        w.switch(0).lock().down = false;
        w.faults = Faults::PERFECT;
        w.run_for(10 * S);
        let active = w.active_cms();
        assert_eq!(active.len(), 1, "seed {seed}: active {active:?}");
        assert_eq!(w.converged(active[0]), Ok(()), "seed {seed}");
        assert_eq!(w.cm(active[0]).in_flight(), (0, 0), "seed {seed}: a quiet core has nothing in flight");
    }
    assert!(refused > 0, "some requests were refused (unknown bindings)");
}

#[test]
fn health_checks_gate_fail_hold_down_and_revive_bindings() {
    use crate::beacon::wire::Target;
    use crate::cm::cache::{CachePolicy, FailPolicy};
    use crate::health::fsm::{Health, Thresholds, Verdict};
    let mut cfg = SimConfig::default();
    cfg.options.policy = CachePolicy { add_state: BindingState::Testing, fail: FailPolicy::Force };
    let mut w = World::new(cfg, 9);
    w.add_switch("local", VipFilter::All);
    let cm = w.add_cm(None);
    w.drive(cm, |c, _| c.enable_health(Thresholds { rise: 2, fall: 2, hold_down: 2 * S }));
    let k = key(1);
    w.primitive(cm, Origin::Api, Primitive::Add { key: k, params: params(1) }).unwrap();
    assert_eq!((w.cm(cm).state_of(&k), on_switch(&w, &k)), (Some(BindingState::Testing), None));
    let round = |w: &mut World, v: Verdict| {
        let targets = w.drive(cm, |c, _| c.health_targets());
        assert_eq!(targets, vec![(k.real, k.service)]);
        w.drive(cm, |c, now| c.handle_probe_results(&[(k.real, v)], now));
        w.run_for(Duration::from_millis(100));
    };
    round(&mut w, Verdict::Pass);
    assert_eq!((w.cm(cm).state_of(&k), on_switch(&w, &k)), (Some(BindingState::Active), Some(BindingState::Active)));
    round(&mut w, Verdict::Soft("timeout".into()));
    assert_eq!(on_switch(&w, &k), Some(BindingState::Active), "one soft failure is not enough");
    round(&mut w, Verdict::Soft("timeout".into()));
    assert_eq!((w.cm(cm).state_of(&k), on_switch(&w, &k)), (Some(BindingState::Failed), None));
    round(&mut w, Verdict::Pass);
    assert_eq!(w.cm(cm).state_of(&k), Some(BindingState::Failed), "rise is 2");
    round(&mut w, Verdict::Pass);
    assert_eq!((w.cm(cm).state_of(&k), on_switch(&w, &k)), (Some(BindingState::Active), Some(BindingState::Active)));
    // A report takes it out at once and holds it out although probes pass.
    let report = Target { real: k.real, service: None };
    w.drive(cm, |c, now| c.handle_health_report(&report, Ipv4Addr::new(10, 0, 1, 12), now));
    w.run_for(Duration::from_millis(10));
    assert_eq!((w.cm(cm).health_of(&k.real), on_switch(&w, &k)), (Some(Health::Down), None));
    let t0 = w.now();
    while w.cm(cm).state_of(&k) != Some(BindingState::Active) {
        round(&mut w, Verdict::Pass);
        assert!(w.now() - t0 < 3 * S, "not back after the hold-down");
    }
    assert!(w.now() - t0 >= 2 * S, "back {:?} after the report, within the hold-down", w.now() - t0);
    // The image carries the checks across a restart.
    let img = w.drive(cm, |c, now| c.health_image(now));
    assert!(img.failed_by_us.is_empty() && img.endpoints.iter().all(|e| e.1 == Health::Up), "{img:?}");
}

#[test]
fn a_drain_started_before_a_takeover_finishes_under_the_new_active_cm() {
    let cfg = SimConfig { drain_time: 8 * S, ..SimConfig::default() };
    let mut w = World::new(cfg, 10);
    w.add_switch("local", VipFilter::All);
    w.add_cm(Some(1));
    w.add_cm(Some(2));
    w.add_server(Ipv4Addr::new(10, 0, 1, 11), &[(key(1), params(1))]);
    w.add_server(Ipv4Addr::new(10, 0, 1, 12), &[(key(2), params(1))]);
    w.run_for(10 * S);
    assert_eq!(w.active_cms(), vec![0]);
    // rs1's module lets its binding go: both CMs hear it, the active one drains it.
    w.server_remove(0, &[key(1)]);
    w.run_for(Duration::from_millis(50));
    assert_eq!(on_switch(&w, &key(1)), Some(BindingState::Draining));
    assert_eq!(w.cm(1).state_of(&key(1)), Some(BindingState::Draining), "the standby knows");
    w.kill_cm(0);
    run_until_true(&mut w, 10 * S, "taken over", |w| w.active_cms() == vec![1]);
    // The new active CM neither revives nor forgets the drain: it ends when the switch lets go.
    assert_eq!(on_switch(&w, &key(1)), Some(BindingState::Draining));
    run_until_true(&mut w, 10 * S, "drained", |w| w.cm(1).state_of(&key(1)).is_none());
    assert_eq!(on_switch(&w, &key(1)), None);
    assert_eq!(on_switch(&w, &key(2)), Some(BindingState::Active));
    assert_eq!(w.converged(1), Ok(()));
}
