//! Startup-config replay, write memory, and two sessions sharing one configuration.

use acm::Primitive;
use cli::{replay, FakeBackend, Session, SessionOptions, SlbConfig};

const STARTUP: &str = "!
hostname lab
!
server real rs1 10.0.1.11
 weight 2
 port http
 port http url \"HEAD /\"
!
server real rs2 10.0.1.12
 port http
 port http url \"HEAD /\"
!
server virtual www 10.0.0.100
 port http
 port http drop-fraction 0.5
 bind http rs1 http
 bind http rs2 http
!
end
";

fn admin() -> Session {
    Session::new(SessionOptions { enable_secret: None, privileged: true })
}

#[test]
fn startup_replay_applies_bindings_and_round_trips() {
    let mut cfg = SlbConfig::default();
    let mut b = FakeBackend::default();
    assert_eq!(replay(STARTUP, &mut cfg, &mut b), []);
    assert_eq!(cfg.hostname, "lab");
    assert_eq!(cfg.render(), STARTUP);
    let names: Vec<&str> = b.applied.iter().map(Primitive::name).collect();
    // The drop fraction reaches the switch as soon as the service has a binding.
    assert_eq!(names, ["add", "drop", "add"]);
    // write memory saves exactly the running-config.
    let mut s = admin();
    let out = s.execute("write memory", &mut cfg, &mut b);
    assert_eq!(out.lines, [".Write startup-config in progress.", ".Write startup-config done."]);
    assert_eq!(b.startup.as_deref(), Some(STARTUP));
}

#[test]
fn replay_reports_bad_lines_and_goes_on() {
    let text = "server real rs1 10.0.1.11\n port http\n bogus line\nserver virtual www 10.0.0.100\n port http\n bind http rs9 http\n bind http rs1 http\n";
    let mut cfg = SlbConfig::default();
    let mut b = FakeBackend::default();
    let errors = replay(text, &mut cfg, &mut b);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].line, 3);
    assert!(errors[0].message.starts_with("Invalid input -> bogus line"));
    assert_eq!(errors[1].line, 6);
    assert_eq!(b.applied.len(), 1);
}

#[test]
fn backend_refusal_is_reported() {
    let mut cfg = SlbConfig::default();
    let mut b = FakeBackend::default();
    replay("server real rs1 10.0.1.11\n port http\nserver virtual www 10.0.0.100\n port http\n", &mut cfg, &mut b);
    b.fail = Some(cli::BackendError::Unavailable("dataplane down".into()));
    let mut s = admin();
    s.execute("configure terminal", &mut cfg, &mut b);
    s.execute("server virtual www 10.0.0.100", &mut cfg, &mut b);
    let out = s.execute("bind http rs1 http", &mut cfg, &mut b);
    assert_eq!(
        out.lines,
        ["Error - switch refused add 10.0.0.100:80/tcp -> 10.0.1.11:80: switch unavailable: dataplane down"]
    );
}

#[test]
fn a_server_deleted_by_another_session() {
    let mut cfg = SlbConfig::default();
    let mut b = FakeBackend::default();
    let (mut s1, mut s2) = (admin(), admin());
    for s in [&mut s1, &mut s2] {
        s.execute("configure terminal", &mut cfg, &mut b);
    }
    s1.execute("server real rs1 10.0.1.11", &mut cfg, &mut b);
    s2.execute("no server real rs1", &mut cfg, &mut b);
    let out = s1.execute("port http", &mut cfg, &mut b);
    assert_eq!(out.lines, ["Error - real server rs1 no longer exists"]);
    assert_eq!(s1.prompt(&cfg), "ServerIron(config)#");
}
