//! Two CMs in one process, heartbeating over loopback UDP, driving one (fake) switch: one is
//! active, the other stands by with the same cache; stop the active one and the other takes
//! over with every binding.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use acm::{BindingKey, BindingState, RealServer};
use controlplane::client::{ClientConfig, CmClient};
use controlplane::cm::fake::FakeSwitch;
use controlplane::cm::{Cm, CmOptions, SwitchSpec};
use controlplane::election::ElectionConfig;
use controlplane::health::probe::Probe;
use controlplane::services::beacon::{self, BeaconConfig, ElectionSettings};
use controlplane::services::health::HealthConfig;

const KEY: &[u8] = b"lab-secret";

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_with_every_binding() {
    let fake = FakeSwitch::new();
    let ports = [free_port(), free_port()];
    let interval = Duration::from_millis(100);
    let mut cms = Vec::new();
    let mut services = Vec::new();
    for (i, id) in [(0usize, 2u64), (1, 1)] {
        let spec = SwitchSpec { name: "local".into(), vips: Default::default(), driver: Box::new(fake.clone()) };
        let cm = Cm::new(CmOptions { sync_interval: Duration::from_millis(200), ..CmOptions::default() }, vec![spec]);
        cm.spawn_sync();
        let cfg = BeaconConfig {
            port: ports[i],
            groups: vec![],
            keys: BTreeMap::from([("local".to_string(), KEY.to_vec())]),
            peers: vec![SocketAddrV4::new(Ipv4Addr::LOCALHOST, ports[1 - i])],
            ..BeaconConfig::default()
        };
        let election =
            ElectionSettings { config: ElectionConfig::with_interval(id, interval), profile: "local".into() };
        let health =
            HealthConfig { probe: Probe::None, interval: Duration::from_millis(50), ..HealthConfig::default() };
        services.push(Some(beacon::spawn(&cm, cfg, Some(health), Some(election)).unwrap()));
        cms.push(cm);
    }
    // Three servers beacon to both CMs (unicast to each; multicast reaches both alike).
    let mut clients = Vec::new();
    let mut keys = Vec::new();
    for rs in 0..3u16 {
        let mut cfg = ClientConfig::new(KEY.to_vec());
        cfg.profile = "local".into();
        cfg.destinations = ports.iter().map(|p| SocketAddrV4::new(Ipv4Addr::LOCALHOST, *p)).collect();
        cfg.interval = Duration::from_millis(200);
        let c = CmClient::start(cfg).unwrap();
        let key = BindingKey {
            service: "10.0.0.100:80".parse().unwrap(),
            real: RealServer { rip: Ipv4Addr::LOCALHOST, rport: 8000 + rs },
        };
        c.add(key, Default::default()).unwrap();
        keys.push(key);
        clients.push(c);
    }
    // CM 1 (the lower id) wins; CM 2 stands by with the same cache.
    wait_for("one CM is active", Duration::from_secs(3), || cms[1].is_active() && !cms[0].is_active()).await;
    wait_for("the switch has every binding", Duration::from_secs(3), || {
        keys.iter().all(|k| fake.lock().bindings.get(k).is_some_and(|(_, s)| *s == BindingState::Active))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cms[1].is_active() && !cms[0].is_active(), "exactly one active CM");
    for k in &keys {
        assert_eq!(cms[0].state_of(k), Some(BindingState::Active), "the standby's cache has {k}");
    }
    // Kill the active CM (its tasks stop; the process would be gone).
    services[1].take();
    cms[1].set_active(false);
    let t0 = Instant::now();
    let took = wait_for("the standby takes over", Duration::from_secs(3), || cms[0].is_active()).await;
    println!("takeover after {took:?} (heartbeat 100 ms, 3 misses, 100 ms window)");
    assert!(took >= Duration::from_millis(250), "took over too early: {took:?}");
    // The switch lost its bindings meanwhile (say it restarted): the new CM puts them back.
    fake.reset();
    wait_for("the new active CM restores every binding", Duration::from_secs(3), || {
        keys.iter().all(|k| fake.lock().bindings.get(k).is_some_and(|(_, s)| *s == BindingState::Active))
    })
    .await;
    println!("bindings restored {:?} after the kill", t0.elapsed());
    assert_eq!(cms[0].list().len(), 3);
}
