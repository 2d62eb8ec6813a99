//! The health checker against real local sockets: a new binding waits in Testing until its
//! first check passes, a server that stops listening is failed, and comes back after `rise`
//! passes.

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use acm::{BindingKey, BindingParams, BindingState, Primitive, RealServer};
use controlplane::cm::cache::{CachePolicy, FailPolicy};
use controlplane::cm::fake::FakeSwitch;
use controlplane::cm::{Cm, CmOptions, Origin, SwitchSpec};
use controlplane::health::fsm::Thresholds;
use controlplane::health::probe::{HttpCheck, Probe};
use controlplane::services::health::{self, HealthConfig};

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

fn testing_cm() -> (Cm, FakeSwitch) {
    let fake = FakeSwitch::new();
    let spec = SwitchSpec { name: "local".into(), vips: Default::default(), driver: Box::new(fake.clone()) };
    let options = CmOptions {
        policy: CachePolicy { add_state: BindingState::Testing, fail: FailPolicy::Force },
        ..CmOptions::default()
    };
    (Cm::new(options, vec![spec]), fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_gates_fails_and_recovers_a_binding() {
    let (cm, fake) = testing_cm();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let key = BindingKey {
        service: "10.0.0.100:80".parse().unwrap(),
        real: RealServer { rip: Ipv4Addr::LOCALHOST, rport: port },
    };
    let cfg = HealthConfig {
        probe: Probe::Tcp,
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(100),
        thresholds: Thresholds { rise: 2, fall: 2, hold_down: Duration::from_secs(1) },
        ..HealthConfig::default()
    };
    let (_h, _task) = health::spawn(cm.clone(), cfg);
    cm.primitive(Origin::Api, Primitive::Add { key, params: BindingParams::default() }).await.unwrap();
    assert_eq!(cm.state_of(&key), Some(BindingState::Testing));
    assert!(!fake.lock().bindings.contains_key(&key), "no traffic before a check passed");
    // The cache turns Active first, then the switch is told: wait for both.
    wait_for("the first check passes", Duration::from_secs(2), || {
        cm.state_of(&key) == Some(BindingState::Active) && fake.lock().bindings.contains_key(&key)
    })
    .await;
    // The server dies (nothing listens: connection refused, a hard failure).
    drop(listener);
    let t0 = Instant::now();
    // Timing is measured, not asserted (a loaded machine stretches it); the bound is the wait.
    wait_for("failed", Duration::from_secs(2), || {
        cm.state_of(&key) == Some(BindingState::Failed) && !fake.lock().bindings.contains_key(&key)
    })
    .await;
    let took = t0.elapsed();
    println!("TCP check (100 ms): refused server failed in {took:?}");
    // It comes back on the same port: Active again after `rise` passes.
    let _again = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let back = wait_for("active again", Duration::from_secs(2), || {
        cm.state_of(&key) == Some(BindingState::Active) && fake.lock().bindings.contains_key(&key)
    })
    .await;
    assert!(back >= Duration::from_millis(100), "rise 2 needs two rounds: {back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_fails_on_a_wrong_status_and_reports_hold_down() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (cm, _fake) = testing_cm();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let status = std::sync::Arc::new(std::sync::Mutex::new("200 OK"));
    let st = status.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let line = *st.lock().unwrap();
            let _ = s.write_all(format!("HTTP/1.1 {line}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
        }
    });
    let key = BindingKey {
        service: "10.0.0.100:80".parse().unwrap(),
        real: RealServer { rip: Ipv4Addr::LOCALHOST, rport: port },
    };
    let cfg = HealthConfig {
        probe: Probe::Http(HttpCheck { path: "/healthz".into(), ..HttpCheck::default() }),
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(200),
        thresholds: Thresholds { rise: 2, fall: 2, hold_down: Duration::from_millis(2000) },
        ..HealthConfig::default()
    };
    let (h, _task) = health::spawn(cm.clone(), cfg);
    cm.primitive(Origin::Api, Primitive::Add { key, params: BindingParams::default() }).await.unwrap();
    wait_for("active", Duration::from_secs(2), || cm.state_of(&key) == Some(BindingState::Active)).await;
    *status.lock().unwrap() = "500 Internal Server Error";
    wait_for("failed on 500", Duration::from_secs(2), || cm.state_of(&key) == Some(BindingState::Failed)).await;
    *status.lock().unwrap() = "200 OK";
    wait_for("active on 200", Duration::from_secs(2), || cm.state_of(&key) == Some(BindingState::Active)).await;
    // A client module's report takes it out at once, and holds it out although checks pass.
    let t0 = Instant::now();
    h.report(controlplane::beacon::wire::Target { real: key.real, service: None }, Ipv4Addr::new(10, 0, 1, 12));
    wait_for("failed by report", Duration::from_secs(1), || cm.state_of(&key) == Some(BindingState::Failed)).await;
    println!("report to Failed: {:?}", t0.elapsed());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let state = cm.state_of(&key);
    if t0.elapsed() < Duration::from_millis(1900) {
        assert_eq!(state, Some(BindingState::Failed), "held down although checks pass");
    }
    wait_for("back after the hold-down", Duration::from_secs(4), || cm.state_of(&key) == Some(BindingState::Active))
        .await;
    assert!(t0.elapsed() >= Duration::from_millis(2000));
}
