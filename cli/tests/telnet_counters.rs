//! `show telnet`: every connection made with one set of settings counts sessions, logins and
//! bad input into one place; garbage on one connection moves the counters and leaves another
//! session untouched.

use std::time::{Duration, Instant};

use cli::auth::{hash_password_with, Cost};
use cli::telnet::{IAC, OPT_NAWS, SB, SE, WILL};
use cli::{Connection, Credentials, FakeBackend, ServerSettings, SlbConfig, TelnetStats};

fn settings() -> ServerSettings {
    let h = hash_password_with("acm-lab", b"count-test-salt", Cost::TEST).unwrap();
    let creds = Credentials::new([("admin".to_string(), h.clone())], Some(h)).unwrap();
    let mut s = ServerSettings::new(creds);
    s.login_fail_delay = Duration::ZERO;
    s.max_login_attempts = 10;
    s
}

/// Server output without telnet commands and CRs.
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
            b'\r' => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Client {
    conn: Connection,
    cfg: SlbConfig,
    backend: FakeBackend,
    now: Instant,
}

impl Client {
    fn new(settings: &ServerSettings, now: Instant) -> Client {
        let mut conn = Connection::new(settings.clone(), now);
        conn.start(now);
        Client { conn, cfg: SlbConfig::default(), backend: FakeBackend::default(), now }
    }
    fn send(&mut self, bytes: &[u8]) -> String {
        text(&self.conn.on_input(bytes, self.now, &mut self.cfg, &mut self.backend))
    }
    fn line(&mut self, s: &str) -> String {
        self.send(format!("{s}\r\n").as_bytes())
    }
    fn login(&mut self) {
        self.line("admin");
        let t = self.line("acm-lab");
        assert!(t.contains("User login successful."), "{t}");
    }
}

/// Reads `NAME = N` pairs from `show telnet`.
fn counters(screen: &str) -> TelnetStats {
    let get = |name: &str| -> u64 {
        let at = screen.find(&format!("{name} ")).unwrap_or_else(|| panic!("{name} missing in {screen}"));
        let rest = &screen[at + name.len()..];
        let v = rest.trim_start().strip_prefix('=').unwrap().trim_start();
        v.split_whitespace().next().unwrap().parse().unwrap()
    };
    TelnetStats {
        opened: get("Opened"),
        closed: get("Closed"),
        logins: get("Logins"),
        failed_logins: get("Failed logins"),
        login_timeouts: get("Login timeouts"),
        idle_timeouts: get("Idle timeouts"),
        bad_telnet: get("Bad IAC"),
        long_lines: get("Long lines"),
        refused: get("Refused"),
    }
}

#[test]
fn garbage_moves_the_counters_and_the_other_session_carries_on() {
    let s = settings();
    let now = Instant::now();
    let mut admin = Client::new(&s, now);
    admin.login();
    let before = counters(&admin.line("show telnet"));
    assert_eq!((before.opened, before.closed, before.logins, before.bad_telnet), (1, 0, 1, 0));
    assert!(admin.line("show telnet").contains("Sessions open  = 1"));

    let mut bad = Client::new(&s, now);
    // Malformed IAC sequences: no command after IAC, a stray SE, a subnegotiation of an option
    // never agreed, an over-long one, and IAC + garbage inside one.
    bad.send(&[IAC, b'A', IAC, SE]);
    bad.send(&[IAC, SB, 24, 0, b'x', b't', IAC, SE]);
    let mut long_sb = vec![IAC, SB, OPT_NAWS];
    long_sb.extend([7u8; 200]);
    long_sb.extend([IAC, SE]);
    bad.send(&long_sb);
    bad.send(&[IAC, SB, OPT_NAWS, 1, IAC, 7]);
    // A NAWS the client agreed to is fine.
    bad.send(&[IAC, WILL, OPT_NAWS, IAC, SB, OPT_NAWS, 0, 80, 0, 24, IAC, SE]);
    // Two over-long lines, a wrong password, then a good login.
    for _ in 0..2 {
        let mut l = vec![b'x'; 700];
        l.extend(b"\r\n");
        bad.send(&l);
        bad.line("nope");
    }
    bad.line("admin");
    let t = bad.line("wrong");
    assert!(t.contains("Error - Incorrect username or password."), "{t}");
    bad.login();

    let t = admin.line("show telnet");
    let c = counters(&t);
    assert_eq!(c.bad_telnet, 5, "{t}");
    assert_eq!((c.long_lines, c.failed_logins, c.logins, c.opened, c.open()), (2, 3, 2, 2, 2), "{t}");
    // The other session is unaffected: same mode, commands work.
    assert!(admin.line("show server bind").ends_with("ServerIron>"));
    admin.line("enable");
    assert!(admin.line("acm-lab").ends_with("ServerIron#"));

    // Closing: an `exit`, a dropped connection (client went away), timeouts.
    bad.line("exit");
    assert!(bad.conn.is_closed());
    drop(bad);
    let gone = Client::new(&s, now);
    drop(gone);
    let mut idle = Client::new(&s, now);
    idle.login();
    let mut slow = Client::new(&s, now);
    let late = now + Duration::from_secs(16 * 60);
    assert!(text(&idle.conn.on_timer(late)).contains("Session idle timeout."));
    assert!(text(&slow.conn.on_timer(late)).contains("Login timed out."));
    admin.now = now + Duration::from_secs(60);
    let t = admin.line("show telnet");
    let c = counters(&t);
    assert_eq!((c.opened, c.closed, c.open()), (5, 4, 1), "{t}");
    assert_eq!((c.idle_timeouts, c.login_timeouts), (1, 1), "{t}");
    drop((idle, slow));
    assert_eq!(s.counters.snapshot().closed, 4, "a closed connection is not counted again when dropped");
}

#[test]
fn connections_with_other_settings_count_apart() {
    let (a, b) = (settings(), settings());
    let now = Instant::now();
    let mut x = Client::new(&a, now);
    x.send(&[IAC, 1]);
    let _y = Client::new(&b, now);
    assert_eq!((a.counters.snapshot().bad_telnet, a.counters.snapshot().opened), (1, 1));
    assert_eq!((b.counters.snapshot().bad_telnet, b.counters.snapshot().opened), (0, 1));
    // Without a connection (acmctl cli), there is nothing to show.
    let mut session = cli::Session::new(cli::SessionOptions { enable_secret: None, privileged: true });
    let o = session.execute("show telnet", &mut SlbConfig::default(), &mut FakeBackend::default());
    assert!(o.lines[0].contains("not available"), "{:?}", o.lines);
}
