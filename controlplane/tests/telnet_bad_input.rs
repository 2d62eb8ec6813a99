//! Bad input on the controlplane's telnet server (fake switch, no root): malformed IAC
//! sequences, an over-long line, a wrong password and a client vanishing mid-command are
//! counted in `show telnet`, and a logged-in session beside them carries on.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const FAKE: &str = "[[switch]]\nname = \"fake\"\ndriver = \"fake\"\n";
const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;

/// Reads until `needle` shows up; returns everything read.
fn read_until(s: &mut TcpStream, needle: &str, timeout: Duration) -> String {
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&got).contains(needle) {
                    return String::from_utf8_lossy(&got).into_owned();
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    panic!("no {needle:?} within {timeout:?}; got {:?}", String::from_utf8_lossy(&got));
}

fn login(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    read_until(&mut s, "Login Name:", Duration::from_secs(10));
    s.write_all(b"admin\r\n").unwrap();
    read_until(&mut s, "Password:", Duration::from_secs(10));
    s.write_all(b"acm-lab\r\n").unwrap();
    read_until(&mut s, "ServerIron>", Duration::from_secs(20));
    s
}

/// `NAME = N` from `show telnet` output.
fn counter(out: &str, name: &str) -> u64 {
    let at = out.find(&format!("{name} ")).unwrap_or_else(|| panic!("{name} missing:\n{out}"));
    let rest = out[at + name.len()..].trim_start().strip_prefix('=').unwrap();
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// An empty line: keeps a session from idling out (5 s in this config).
fn poke(s: &mut TcpStream, prompt: &str) {
    s.write_all(b"\r\n").unwrap();
    read_until(s, prompt, Duration::from_secs(10));
}

fn show_telnet(s: &mut TcpStream) -> String {
    s.write_all(b"show telnet\r\n").unwrap();
    read_until(s, "ServerIron>", Duration::from_secs(10))
}

#[test]
fn garbage_is_counted_and_the_other_session_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_config(dir.path(), FAKE, "");
    let _cp = start_controlplane(&f);
    let mut admin = login(f.telnet);
    admin.write_all(b"skip-page-display\r\n").unwrap();
    read_until(&mut admin, "ServerIron>", Duration::from_secs(10));

    let mut bad = TcpStream::connect(("127.0.0.1", f.telnet)).unwrap();
    read_until(&mut bad, "Login Name:", Duration::from_secs(10));
    // Three malformed sequences: no command after IAC, a stray SE, a subnegotiation of an
    // option never agreed (terminal type).
    bad.write_all(&[IAC, b'A', IAC, SE, IAC, SB, 24, 0, b'v', b't', IAC, SE]).unwrap();
    // An over-long line as the login name, then a wrong password.
    let mut long = vec![b'x'; 3000];
    long.extend_from_slice(b"\r\n");
    bad.write_all(&long).unwrap();
    read_until(&mut bad, "Password:", Duration::from_secs(10));
    poke(&mut admin, "ServerIron>");
    bad.write_all(b"wrong\r\n").unwrap();
    read_until(&mut bad, "Incorrect username or password", Duration::from_secs(10));
    poke(&mut admin, "ServerIron>");
    // Half a command, then the client is gone.
    bad.write_all(b"adm").unwrap();
    drop(bad);

    let end = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = show_telnet(&mut admin);
        if counter(&out, "Closed") >= 1 || Instant::now() > end {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(counter(&out, "Bad IAC"), 3, "{out}");
    assert_eq!(counter(&out, "Long lines"), 1, "{out}");
    assert_eq!(counter(&out, "Failed logins"), 1, "{out}");
    assert_eq!((counter(&out, "Opened"), counter(&out, "Closed")), (2, 1), "{out}");
    assert_eq!((counter(&out, "Logins"), counter(&out, "Sessions open")), (1, 1), "{out}");

    // The administrator's session is untouched: same mode, commands answer.
    admin.write_all(b"enable\r\n").unwrap();
    read_until(&mut admin, "Password:", Duration::from_secs(10));
    admin.write_all(b"acm-lab\r\n").unwrap();
    read_until(&mut admin, "ServerIron#", Duration::from_secs(20));
    poke(&mut admin, "ServerIron#");
    admin.write_all(b"show running-config\r\n").unwrap();
    let out = read_until(&mut admin, "end", Duration::from_secs(10));
    assert!(out.contains('!'), "{out}");

    // An idle session is closed after 5 s (this config) and counted.
    let mut idle = login(f.telnet);
    let mut buf = [0u8; 256];
    idle.set_read_timeout(Some(Duration::from_secs(12))).unwrap();
    let mut closed = false;
    let end = Instant::now() + Duration::from_secs(12);
    while Instant::now() < end {
        match idle.read(&mut buf) {
            Ok(0) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "idle session not closed");
    // (The administrator's session idled as well by now: look from a new one.)
    let mut again = login(f.telnet);
    let out = show_telnet(&mut again);
    assert!(counter(&out, "Idle timeouts") >= 1, "{out}");
    assert_eq!(counter(&out, "Logins"), 3, "{out}");
}
