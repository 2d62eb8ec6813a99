//! Beacons end to end in one process: CM client modules send real UDP datagrams over loopback
//! to the CM's beacon service, which drives a real [`Cm`] over a fake switch.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use acm::{BindingKey, BindingParams, BindingState, RealServer};
use controlplane::beacon::tracker::TrackerConfig;
use controlplane::beacon::wire::{encode, Advert, Body, Envelope, Sender};
use controlplane::client::{now_ms, ClientConfig, CmClient};
use controlplane::cm::fake::FakeSwitch;
use controlplane::cm::{Cm, CmOptions, SwitchSpec};
use controlplane::health::probe::Probe;
use controlplane::services::beacon::{self, BeaconConfig, Services};
use controlplane::services::health::HealthConfig;

const KEY: &[u8] = b"lab-secret";

fn cm_with_fake() -> (Cm, FakeSwitch) {
    let fake = FakeSwitch::new();
    let spec = SwitchSpec { name: "local".into(), vips: Default::default(), driver: Box::new(fake.clone()) };
    (Cm::new(CmOptions::default(), vec![spec]), fake)
}

fn beacon_config() -> BeaconConfig {
    BeaconConfig {
        port: 0,
        groups: vec![],
        keys: BTreeMap::from([("local".to_string(), KEY.to_vec())]),
        tracker: TrackerConfig { misses: 3, ..TrackerConfig::default() },
        ..BeaconConfig::default()
    }
}

fn no_probe() -> HealthConfig {
    HealthConfig { probe: Probe::None, interval: Duration::from_millis(50), ..HealthConfig::default() }
}

fn dest(s: &Services) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, s.local_addr.port())
}

fn client(to: SocketAddrV4, interval: Duration) -> CmClient {
    let mut cfg = ClientConfig::new(KEY.to_vec());
    cfg.profile = "local".into();
    cfg.destinations = vec![to];
    cfg.interval = interval;
    CmClient::start(cfg).unwrap()
}

fn stat(s: &Services, name: &str) -> u64 {
    s.snapshot().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v).unwrap()
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out after {timeout:?} waiting until {what}");
}

fn binding(rs: u8, port: u16) -> BindingKey {
    BindingKey {
        service: "10.0.0.100:80".parse().unwrap(),
        real: RealServer { rip: Ipv4Addr::new(10, 0, 1, 10 + rs), rport: port },
    }
}

/// A hand-made sender (a server whose process we can "kill" by no longer sending).
struct Hand {
    sock: UdpSocket,
    to: SocketAddrV4,
    sender: Sender,
    seq: u64,
}

impl Hand {
    fn new(to: SocketAddrV4, rs: u8) -> Hand {
        let sender = Sender { addr: Ipv4Addr::new(10, 0, 1, 10 + rs), instance: controlplane::client::random_u64() };
        Hand { sock: UdpSocket::bind("127.0.0.1:0").unwrap(), to, sender, seq: 0 }
    }
    fn envelope(&mut self, body: Body) -> Envelope {
        self.seq += 1;
        Envelope { sender: self.sender, seq: self.seq, timestamp_ms: now_ms(), profile: "local".into(), body }
    }
    fn send_raw(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.to).unwrap();
    }
    fn beacon(&mut self, interval_ms: u32, keys: &[BindingKey]) -> Vec<u8> {
        let bindings = keys.iter().map(|k| Advert { key: *k, params: BindingParams::default(), up: true }).collect();
        let env = self.envelope(Body::Beacon { interval_ms, bindings });
        let bytes = encode(&env, KEY).unwrap();
        self.send_raw(&bytes);
        bytes
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_registers_anonymous_port_and_removes_on_shutdown() {
    let (cm, fake) = cm_with_fake();
    let svc = beacon::spawn(&cm, beacon_config(), Some(no_probe()), None).unwrap();
    let c = client(dest(&svc), Duration::from_millis(100));
    // The two-line change: a listener on an anonymous port, registered.
    let listener = c.listen("10.0.0.100:80".parse().unwrap()).unwrap();
    let key = BindingKey {
        service: "10.0.0.100:80".parse().unwrap(),
        real: RealServer { rip: Ipv4Addr::LOCALHOST, rport: listener.local_addr().unwrap().port() },
    };
    let took = wait_for("the binding is active on the switch", Duration::from_secs(5), || {
        fake.lock().bindings.get(&key).is_some_and(|(_, s)| *s == BindingState::Active)
    })
    .await;
    println!("registration reached the switch in {took:?}");
    assert_eq!(cm.state_of(&key), Some(BindingState::Active));
    // Beacons repeat; the cache filters them (one Add on the switch).
    tokio::time::sleep(Duration::from_millis(350)).await;
    let adds = fake.take_log().iter().filter(|p| matches!(p, acm::Primitive::Add { .. })).count();
    assert_eq!(adds, 1);
    c.shutdown().unwrap();
    wait_for("the binding drains", Duration::from_secs(5), || cm.state_of(&key) != Some(BindingState::Active)).await;
    assert!(fake.lock().bindings.get(&key).is_none_or(|(_, s)| *s == BindingState::Draining));
    assert_eq!(stat(&svc, "unauthenticated") + stat(&svc, "malformed") + stat(&svc, "replayed"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_wrong_keys_replays_and_stale_beacons_are_counted_and_ignored() {
    let (cm, _fake) = cm_with_fake();
    let svc = beacon::spawn(&cm, beacon_config(), Some(no_probe()), None).unwrap();
    let mut h = Hand::new(dest(&svc), 1);
    let good = h.beacon(10_000, &[binding(1, 80)]);
    wait_for("the beacon is taken", Duration::from_secs(5), || cm.state_of(&binding(1, 80)).is_some()).await;
    // Garbage of every size, a wrong key, a replay, a stale and a future timestamp.
    for n in [0usize, 1, 4, 37, 69, 500, 1400, 9000] {
        h.send_raw(&vec![0xa5; n]);
    }
    let mut bad = good.clone();
    bad[20] ^= 1;
    h.send_raw(&bad);
    let wrong = {
        let env = h.envelope(Body::Remove { bindings: vec![binding(1, 80)] });
        encode(&env, b"not-the-key").unwrap()
    };
    h.send_raw(&wrong);
    h.send_raw(&good); // replay
    let mut stale = h.envelope(Body::Remove { bindings: vec![binding(1, 80)] });
    stale.timestamp_ms -= 60_000;
    h.send_raw(&encode(&stale, KEY).unwrap());
    let mut future = h.envelope(Body::Remove { bindings: vec![binding(1, 80)] });
    future.timestamp_ms += 60_000;
    h.send_raw(&encode(&future, KEY).unwrap());
    wait_for("every datagram is counted", Duration::from_secs(5), || stat(&svc, "received") == 14).await;
    assert_eq!(stat(&svc, "malformed"), 8, "{:?}", svc.snapshot());
    assert_eq!(stat(&svc, "unauthenticated"), 2, "tampered + wrong key: {:?}", svc.snapshot());
    assert_eq!(stat(&svc, "replayed"), 1);
    assert_eq!(stat(&svc, "stale"), 2);
    assert_eq!(stat(&svc, "accepted"), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cm.state_of(&binding(1, 80)), Some(BindingState::Active), "no binding lost to bad input");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_removed_after_k_intervals() {
    let (cm, fake) = cm_with_fake();
    let svc = beacon::spawn(&cm, beacon_config(), Some(no_probe()), None).unwrap();
    let mut h = Hand::new(dest(&svc), 2);
    for _ in 0..3 {
        h.beacon(100, &[binding(2, 80)]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cm.state_of(&binding(2, 80)), Some(BindingState::Active));
    let last = Instant::now() - Duration::from_millis(100);
    // "Killed": no more beacons.
    let gone = wait_for("the silent server leaves the switch", Duration::from_secs(3), || {
        !fake.lock().bindings.contains_key(&binding(2, 80))
    })
    .await;
    let since_last = last.elapsed();
    println!("beacon loss (100 ms x 3): removed {since_last:?} after the last beacon");
    assert!(since_last >= Duration::from_millis(290), "removed too early: {since_last:?} ({gone:?})");
    // How late is measured, not asserted (a loaded machine stretches it): the wait bounds it.
    assert_eq!(cm.state_of(&binding(2, 80)), None);
    assert_eq!(stat(&svc, "lost"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_server_is_out_at_once_and_self_reports_go_both_ways() {
    let (cm, fake) = cm_with_fake();
    let svc = beacon::spawn(&cm, beacon_config(), Some(no_probe()), None).unwrap();
    let to = dest(&svc);
    let mut h = Hand::new(to, 3);
    h.beacon(10_000, &[binding(3, 80)]);
    wait_for("active", Duration::from_secs(5), || cm.state_of(&binding(3, 80)) == Some(BindingState::Active)).await;
    // Another server's client module sees rs3 fail and reports it.
    let peer = client(to, Duration::from_secs(10));
    let t0 = Instant::now();
    peer.report_failed(binding(3, 80).real, None).unwrap();
    wait_for("the reported server leaves the switch", Duration::from_secs(2), || {
        !fake.lock().bindings.contains_key(&binding(3, 80))
    })
    .await;
    let took = t0.elapsed();
    println!("client-module report: out of the switch in {took:?}");
    assert_eq!(cm.state_of(&binding(3, 80)), Some(BindingState::Failed));
    // A module flags its own binding down, then up.
    let me = client(to, Duration::from_secs(10));
    let k = BindingKey {
        service: "10.0.0.100:80".parse().unwrap(),
        real: RealServer { rip: Ipv4Addr::LOCALHOST, rport: 8080 },
    };
    me.add(k, BindingParams::default()).unwrap();
    wait_for("active", Duration::from_secs(5), || cm.state_of(&k) == Some(BindingState::Active)).await;
    me.set_up(k, false).unwrap();
    wait_for("failed", Duration::from_secs(1), || cm.state_of(&k) == Some(BindingState::Failed)).await;
    assert!(!fake.lock().bindings.contains_key(&k));
    me.set_up(k, true).unwrap();
    wait_for("active again", Duration::from_secs(1), || cm.state_of(&k) == Some(BindingState::Active)).await;
    assert!(fake.lock().bindings.contains_key(&k));
}
