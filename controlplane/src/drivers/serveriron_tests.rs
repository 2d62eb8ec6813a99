//! The telnet driver against this appliance's own CLI (cli::Connection with a FakeBackend)
//! served on a real TCP socket: the device COMICS-style drivers talk to.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use acm::{BindingKey, BindingParams, BindingState, DropFraction, Primitive};
use cli::{Connection, Credentials, FakeBackend, ServerSettings, SlbConfig};

use super::*;

struct Device {
    port: u16,
    backend: Arc<Mutex<FakeBackend>>,
}

fn device() -> Device {
    let cost = cli::auth::Cost { memory_kib: 64, iterations: 1 };
    let h = cli::auth::hash_password_with("pw", b"saltsalt", cost).unwrap();
    let creds = Credentials::new([("admin".to_string(), h.clone())], Some(h)).unwrap();
    let settings = ServerSettings::new(creds);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let backend = Arc::new(Mutex::new(FakeBackend::default()));
    let cfg = Arc::new(Mutex::new(SlbConfig::default()));
    let b = backend.clone();
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let (settings, cfg, backend) = (settings.clone(), cfg.clone(), b.clone());
            thread::spawn(move || {
                let mut conn = Connection::new(settings, Instant::now());
                let _ = s.write_all(&conn.start(Instant::now()));
                let mut buf = [0u8; 4096];
                while !conn.is_closed() {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let out = {
                        let mut c = cfg.lock().unwrap();
                        let mut be = backend.lock().unwrap();
                        conn.on_input(&buf[..n], Instant::now(), &mut c, &mut *be)
                    };
                    if s.write_all(&out).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Device { port, backend }
}

fn driver(port: u16) -> ServerIronDriver {
    ServerIronDriver::new(
        format!("127.0.0.1:{port}"),
        "admin".into(),
        "pw".into(),
        Some("pw".into()),
        Duration::from_secs(10),
    )
}

fn key(rip: &str) -> BindingKey {
    BindingKey { service: "10.0.0.100:80".parse().unwrap(), real: rip.parse().unwrap() }
}

#[test]
fn drives_our_own_cli_over_telnet() {
    let dev = device();
    let mut d = driver(dev.port);
    let k = key("10.0.1.11:80");
    d.apply(&Primitive::Add { key: k, params: BindingParams { weight: 3, source_nat: false } }).unwrap();
    let applied = dev.backend.lock().unwrap().take_applied();
    assert!(
        applied.contains(&Primitive::Add { key: k, params: BindingParams { weight: 3, source_nat: false } }),
        "{applied:?}"
    );
    let v = d.list().unwrap();
    assert_eq!(v.bindings.len(), 1, "{v:?}");
    assert_eq!(v.bindings[0].key, k);
    assert_eq!(v.bindings[0].state, BindingState::Active);
    assert_eq!(v.bindings[0].params.weight, 3);

    let k2 = key("10.0.1.12:8080");
    d.apply(&Primitive::Add { key: k2, params: BindingParams::default() }).unwrap();
    d.apply(&Primitive::Remove { key: k }).unwrap();
    assert!(dev.backend.lock().unwrap().take_applied().contains(&Primitive::Remove { key: k }));
    let v = d.list().unwrap();
    let st = |k: &BindingKey| v.bindings.iter().find(|b| b.key == *k).map(|b| b.state);
    assert_eq!(st(&k), Some(BindingState::Draining));
    assert_eq!(st(&k2), Some(BindingState::Active));

    d.apply(&Primitive::ForceRemove { key: k2 }).unwrap();
    assert!(dev.backend.lock().unwrap().take_applied().contains(&Primitive::ForceRemove { key: k2 }));
    let f = DropFraction::new(0.25).unwrap();
    dev.backend.lock().unwrap().finish_drains();
    d.apply(&Primitive::Add { key: k, params: BindingParams { weight: 3, source_nat: false } }).unwrap();
    d.apply(&Primitive::Drop { service: k.service, fraction: f }).unwrap();
    assert!(dev.backend.lock().unwrap().applied.contains(&Primitive::Drop { service: k.service, fraction: f }));

    // UDP is refused, not sent.
    let u = BindingKey { service: "10.0.0.100:53/udp".parse().unwrap(), real: "10.0.1.11:53".parse().unwrap() };
    assert!(matches!(
        d.apply(&Primitive::Add { key: u, params: BindingParams::default() }),
        Err(DriverError::Refused(_))
    ));
    // A device error is a refusal, and the session stays usable.
    dev.backend.lock().unwrap().fail = Some(cli::BackendError::Unavailable("switch on fire".into()));
    let e = d.apply(&Primitive::Add { key: key("10.0.1.13:80"), params: BindingParams::default() });
    dev.backend.lock().unwrap().fail = None;
    assert!(matches!(e, Err(DriverError::Refused(_))), "{e:?}");
    assert!(d.list().is_ok());
}

#[test]
fn reuses_the_device_names_and_survives_reconnects() {
    let dev = device();
    let mut d = driver(dev.port);
    // The device already knows rs1.
    let mut pre = driver(dev.port);
    pre.run(&["configure terminal".into(), "server real rs1 10.0.1.11".into(), "port http".into(), "end".into()])
        .unwrap();
    let k = key("10.0.1.11:80");
    d.apply(&Primitive::Add { key: k, params: BindingParams::default() }).unwrap();
    let cfg = d.run(&["show running-config".into()]).unwrap();
    assert!(cfg.contains("bind http rs1 http"), "{cfg}");
    assert!(!cfg.contains("acm-10-0-1-11"), "{cfg}");
    // The session dies; the next call logs in again.
    d.session = None;
    assert_eq!(d.list().unwrap().bindings.len(), 1);
}

#[test]
fn an_absent_device_is_unavailable() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut d =
        ServerIronDriver::new(format!("127.0.0.1:{port}"), "a".into(), "b".into(), None, Duration::from_millis(500));
    assert!(matches!(d.list(), Err(DriverError::Unavailable(_))));
    let dev = device();
    let mut bad = ServerIronDriver::new(
        format!("127.0.0.1:{}", dev.port),
        "admin".into(),
        "wrong".into(),
        None,
        Duration::from_secs(5),
    );
    let e = bad.list();
    assert!(matches!(e, Err(DriverError::Unavailable(ref m)) if m.contains("login")), "{e:?}");
}

#[test]
fn parses_show_server_bind() {
    let text = "Bind info\n\nVirtual server: www                  Status: enabled  IP: 10.0.0.100\n        http -------> rs1: 10.0.1.11, http (ACT)\n                      rs4: 10.0.1.14, http (GDN)\n                      rs5: 10.0.1.15, 8080 (UNB)\n        ssl  -------> (none)\n";
    let b = parse_show_bind(text);
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(b[1].state, BindingState::Draining);
    assert_eq!(b[0].key.service.vport, 80);
    assert!(parse_show_bind("garbage\n-------> x: y, z (ACT)\n").is_empty());
}

#[test]
fn reads_the_session_table_of_our_own_cli() {
    let dev = device();
    let row = |port: u16, state: &str| cli::SessionRow {
        client: "10.0.0.2".parse().unwrap(),
        client_port: port,
        vip: "10.0.0.100".parse().unwrap(),
        vport: 80,
        real: "10.0.1.11".parse().unwrap(),
        rport: 8080,
        proto: acm::Proto::Tcp,
        state: state.into(),
        idle_s: 3,
        expires_s: 297,
    };
    let rows = vec![row(40000, "EST"), row(40001, "FIN")];
    dev.backend.lock().unwrap().sessions = rows.clone();
    let mut d = driver(dev.port);
    let t = d.sessions(100).unwrap().unwrap();
    assert_eq!((t.rows, t.total), (rows.clone(), 2));
    let t = d.sessions(1).unwrap().unwrap();
    assert_eq!((t.rows.len(), t.total), (1, 2));
    let t = parse_show_sessions(
        "Sessions: 7 (1 shown)\nProto Client VIP\nUDP 10.0.0.2:53 10.0.0.100:53 10.0.1.11:53 UDP 0 30\n",
    );
    assert_eq!((t.rows.len(), t.total, t.rows[0].proto), (1, 7, acm::Proto::Udp));
}
