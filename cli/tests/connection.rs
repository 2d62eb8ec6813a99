//! The connection driver end to end over telnet bytes (no sockets): login, echo, editing keys,
//! `?`, Tab, the pager, timers and garbage.

use std::time::{Duration, Instant};

use cli::auth::{hash_password_with, Cost};
use cli::telnet::{DO, DONT, IAC, OPT_ECHO, OPT_LINEMODE, OPT_NAWS, OPT_SGA, SB, SE, WILL, WONT};
use cli::{Connection, Credentials, FakeBackend, ServerSettings, SlbConfig};

struct Rig {
    conn: Connection,
    cfg: SlbConfig,
    backend: FakeBackend,
    now: Instant,
    screen: String,
}

fn settings() -> ServerSettings {
    let h = hash_password_with("acm-lab", b"conn-test-salt", Cost::TEST).unwrap();
    let creds = Credentials::new([("admin".to_string(), h.clone())], Some(h)).unwrap();
    ServerSettings::new(creds)
}

/// Strips telnet negotiation (IAC sequences) and CR NUL / CR from server output.
fn text(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            IAC if bytes.get(i + 1) == Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            IAC => i += 3,
            b'\r' if bytes.get(i + 1) == Some(&0) => i += 2,
            b'\r' => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Rig {
    fn new() -> Rig {
        let now = Instant::now();
        let mut conn = Connection::new(settings(), now);
        let out = conn.start(now);
        assert!(out.starts_with(&[IAC, WILL, OPT_ECHO, IAC, WILL, OPT_SGA, IAC, DO, OPT_NAWS]));
        Rig { conn, cfg: SlbConfig::default(), backend: FakeBackend::default(), now, screen: text(&out) }
    }
    fn send(&mut self, bytes: &[u8]) -> String {
        let out = self.conn.on_input(bytes, self.now, &mut self.cfg, &mut self.backend);
        let t = text(&out);
        self.screen.push_str(&t);
        t
    }
    fn line(&mut self, s: &str) -> String {
        self.send(format!("{s}\r\n").as_bytes())
    }
    fn login(&mut self) {
        self.line("admin");
        let t = self.line("acm-lab");
        assert!(t.contains("User login successful."), "{t}");
        assert!(t.ends_with("ServerIron>"), "{t:?}");
    }
}

#[test]
fn acceptance_over_telnet() {
    let mut r = Rig::new();
    assert!(r.screen.contains("User Access Verification"));
    assert!(r.screen.ends_with("Please Enter Login Name: "));
    // Client agrees to our options and refuses nothing; sends its window size.
    let out = r.conn.on_input(
        &[IAC, DO, OPT_ECHO, IAC, DO, OPT_SGA, IAC, WILL, OPT_NAWS, IAC, SB, OPT_NAWS, 0, 80, 0, 40, IAC, SE],
        r.now,
        &mut r.cfg,
        &mut r.backend,
    );
    assert!(out.is_empty(), "no negotiation replies: {out:?}");
    let t = r.line("admin");
    assert_eq!(t, "admin\nPlease Enter Password: ");
    let t = r.line("acm-lab");
    assert!(!t.contains("acm-lab"), "password not echoed");
    assert!(t.ends_with("ServerIron>"));
    r.line("enable");
    let t = r.line("acm-lab");
    assert!(!t.contains("acm-lab"));
    assert!(t.ends_with("ServerIron#"), "{t:?}");
    for l in [
        "configure terminal",
        "server real rs4 10.0.1.14",
        "port http",
        "exit",
        "server virtual www 10.0.0.100",
        "bind http rs4 http",
    ] {
        r.line(l);
    }
    // bind needs the virtual port first.
    assert!(r.screen.contains("Error - port http is not configured on virtual server www"));
    r.line("port http");
    r.line("bind http rs4 http");
    let t = r.line("end");
    assert!(t.ends_with("ServerIron#"));
    let full = r.line("show server bind");
    let short = r.line("sh ser bi");
    assert!(full.contains("rs4: 10.0.1.14, http (ACT)"), "{full}");
    assert_eq!(full.replace("show server bind", ""), short.replace("sh ser bi", ""));
    let t = r.line("exit");
    assert!(r.conn.is_closed(), "{t}");
}

#[test]
fn negotiation_refusals_and_no_loops() {
    let mut r = Rig::new();
    let out = r.conn.on_input(&[IAC, WILL, OPT_LINEMODE], r.now, &mut r.cfg, &mut r.backend);
    assert_eq!(out, [IAC, DONT, OPT_LINEMODE], "LINEMODE refused");
    // The client's acknowledgement changes nothing and is not answered.
    let out = r.conn.on_input(&[IAC, WONT, OPT_LINEMODE, IAC, DONT, OPT_ECHO], r.now, &mut r.cfg, &mut r.backend);
    assert!(out.is_empty(), "{out:?}");
    // 0xFF in output is doubled: a user name containing 0xFF is echoed? no: only printable is
    // echoed, so make the server print it through an error message instead.
    let out = r.conn.on_input(&[0xff, 0xff, b'\r', b'\0'], r.now, &mut r.cfg, &mut r.backend);
    assert!(text(&out).contains("Please Enter Password: "));
}

#[test]
fn failed_logins_delay_and_limit() {
    let mut r = Rig::new();
    r.line("admin");
    let t = r.line("nope");
    assert!(t.contains("Error - Incorrect username or password."));
    let deadline = r.conn.next_deadline().unwrap();
    assert_eq!(deadline, r.now + Duration::from_secs(2));
    // Input during the delay is discarded.
    assert_eq!(r.line("admin"), "");
    r.now += Duration::from_secs(2);
    let t = text(&r.conn.on_timer(r.now));
    assert_eq!(t, "Please Enter Login Name: ");
    r.line("root");
    r.line("acm-lab");
    r.now += Duration::from_secs(3);
    r.conn.on_timer(r.now);
    r.line("admin");
    let t = r.line("wrong");
    assert!(t.contains("Too many failed login attempts."));
    assert!(r.conn.is_closed());
    assert_eq!(r.conn.next_deadline(), None);
}

#[test]
fn login_and_idle_timeouts() {
    let mut r = Rig::new();
    r.now += Duration::from_secs(61);
    let t = text(&r.conn.on_timer(r.now));
    assert!(t.contains("Login timed out."));
    assert!(r.conn.is_closed());

    let mut r = Rig::new();
    r.login();
    assert_eq!(r.conn.next_deadline(), Some(r.now + Duration::from_secs(900)));
    r.now += Duration::from_secs(899);
    assert_eq!(r.conn.on_timer(r.now), b"");
    r.line("");
    r.now += Duration::from_secs(900);
    let t = text(&r.conn.on_timer(r.now));
    assert!(t.contains("idle timeout"));
    assert!(r.conn.is_closed());
}

#[test]
fn help_and_tab_completion() {
    let mut r = Rig::new();
    r.login();
    let t = r.send(b"en?");
    assert!(t.contains("enable"), "{t}");
    assert!(t.ends_with("ServerIron>en"), "line reprinted: {t:?}");
    let t = r.send(b"\t");
    assert_eq!(t, "able ");
    let t = r.send(b"\r");
    assert!(t.ends_with("Password:"));
    r.line("acm-lab");
    // Ambiguous prefix beeps.
    let t = r.send(b"s\t");
    assert_eq!(t, "s\u{7}", "show / skip-page-display: beep");
    let t = r.send(b"h\t");
    assert_eq!(t, "how ");
    let t = r.send(b"s\t");
    assert_eq!(t, "s\u{7}", "server / statistics: beep");
    r.send(b"\x15");
    // Ctrl-C abandons the line.
    let t = r.send(b"show ver\x03");
    assert!(t.ends_with("^C\nServerIron#"), "{t:?}");
    // Ctrl-Z in config mode is `end`.
    r.line("conf t");
    let t = r.send(b"\x1a");
    assert!(t.ends_with("ServerIron#"), "{t:?}");
    // History: up arrow recalls the last line.
    let t = r.send(b"\x1b[A");
    assert_eq!(t, "end", "Ctrl-Z ran `end`");
    let t = r.send(b"\x1b[A");
    assert_eq!(t, "\u{8}\u{8}\u{8}conf t", "{t:?}");
}

#[test]
fn pager() {
    let mut r = Rig::new();
    r.login();
    r.line("enable");
    r.line("acm-lab");
    r.line("terminal length 5");
    r.line("conf t");
    for i in 0..6 {
        r.line(&format!("server real r{i} 10.0.1.{i}"));
        r.line("port http");
    }
    r.line("end");
    let t = r.line("show running-config");
    assert!(t.ends_with(cli::server::MORE), "{t}");
    assert_eq!(t.lines().count(), 1 + 4 + 1);
    let t = r.send(b"\r");
    assert_eq!(t.trim_start_matches([' ', '\r']).lines().count(), 2, "{t:?}");
    let t = r.send(b" ");
    assert!(t.ends_with(cli::server::MORE));
    let t = r.send(b"q");
    assert!(t.ends_with("ServerIron#"), "{t:?}");
    r.line("skip-page-display");
    let t = r.line("show running-config");
    assert!(t.contains("end\nServerIron#"), "{t}");
}

#[test]
fn client_disconnect_mid_command_is_harmless() {
    let mut r = Rig::new();
    r.login();
    r.send(b"show ser");
    r.send(&[IAC, SB, OPT_NAWS, 0]);
    // The control plane simply drops the connection; nothing is half-applied.
    drop(r.conn);
    assert!(r.backend.applied.is_empty());
}

#[test]
fn client_refusing_echo_gets_no_echo() {
    let mut r = Rig::new();
    r.conn.on_input(&[cli::telnet::IAC, DONT, OPT_ECHO], r.now, &mut r.cfg, &mut r.backend);
    let t = r.line("admin");
    assert_eq!(t, "Please Enter Password: ");
    let t = r.line("acm-lab");
    assert!(t.ends_with("ServerIron>"));
    let t = r.line("show version");
    assert!(t.starts_with("  ServerIron-compatible CLI"), "{t:?}");
}

#[test]
fn naws_sets_page_length_and_line_mode_clients_work() {
    let mut r = Rig::new();
    r.conn.on_input(&[IAC, WILL, OPT_NAWS, IAC, SB, OPT_NAWS, 0, 80, 0, 4, IAC, SE], r.now, &mut r.cfg, &mut r.backend);
    // A client that sends whole lines with bare LF.
    r.send(b"admin\nacm-lab\nenable\nacm-lab\nconf t\nserver real a 10.0.1.1\nport http\nend\n");
    let t = r.send(b"show running-config\n");
    assert!(t.ends_with(cli::server::MORE), "3 lines per page: {t:?}");
    assert_eq!(t.lines().count(), 1 + 3 + 1);
}
