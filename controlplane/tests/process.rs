//! The controlplane process with an in-memory switch (no root, no lab): acmctl, the local API
//! under garbage, telnet sessions that must not block each other, idle timeout, config errors.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const FAKE: &str = "[[switch]]\nname = \"fake\"\ndriver = \"fake\"\n";

/// Reads from a telnet socket until `needle` shows up (ignoring option negotiation bytes).
fn read_until(s: &mut TcpStream, needle: &str, timeout: Duration) -> Result<String, String> {
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("closed; got {:?}", String::from_utf8_lossy(&got))),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if text.contains(needle) {
                    return Ok(text.into_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("no {needle:?} within {timeout:?}; got {:?}", String::from_utf8_lossy(&got)))
}

fn login(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    read_until(&mut s, "Login Name:", Duration::from_secs(10)).unwrap();
    s.write_all(b"admin\r\n").unwrap();
    read_until(&mut s, "Password:", Duration::from_secs(10)).unwrap();
    s.write_all(b"acm-lab\r\n").unwrap();
    read_until(&mut s, "ServerIron>", Duration::from_secs(20)).unwrap();
    s
}

fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 1024];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn acmctl_api_and_telnet_with_a_fake_switch() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_config(dir.path(), FAKE, "[partitions]\ngold = [\"10.0.0.100\"]\n");
    let mut cp = start_controlplane(&f);
    let s = f.socket.clone();

    // acmctl: every primitive, human and JSON output, clear errors.
    let out = acmctl_ok(&s, &["add", "10.0.0.100:80", "10.0.1.11:80", "--weight", "3"]);
    assert!(out.contains("done") && out.contains("switch fake"), "{out}");
    acmctl_ok(&s, &["add", "10.0.0.100:80", "10.0.1.12:80"]);
    let out = acmctl_ok(&s, &["add", "10.0.0.100:80", "10.0.1.11:80", "--weight", "3"]);
    assert!(out.contains("unchanged"), "{out}");
    let out = acmctl_ok(&s, &["list"]);
    assert!(out.contains("10.0.1.11:80") && out.contains("ACT"), "{out}");
    acmctl_ok(&s, &["remove", "10.0.0.100:80", "10.0.1.12:80"]);
    assert!(acmctl_ok(&s, &["list"]).contains("GDN"));
    acmctl_ok(&s, &["drop", "10.0.0.100:80", "0.25"]);
    let (ok, msg) = acmctl(&s, &["drop", "10.0.0.100:80", "1.5"]);
    assert!(!ok && msg.contains("outside"), "{msg}");
    let (ok, msg) = acmctl(&s, &["remove", "10.0.0.7:80", "10.0.1.11:80"]);
    assert!(!ok && msg.contains("unknown virtual service 10.0.0.7:80/tcp"), "{msg}");
    let (ok, msg) = acmctl(&s, &["force-remove", "10.0.0.100:80", "10.0.1.77:80"]);
    assert!(!ok && msg.contains("unknown binding"), "{msg}");
    // Partitions: 10.0.0.100 is class gold; its servers may not serve another class.
    let (ok, msg) = acmctl(&s, &["add", "10.0.0.50:80", "10.0.1.11:80"]);
    assert!(!ok && msg.contains("partitions"), "{msg}");
    let lat: serde_json::Value = serde_json::from_str(&acmctl_ok(&s, &["latency", "--json"])).unwrap();
    assert!(lat.as_array().unwrap().iter().any(|r| r["primitive"] == "add" && r["switch"] == "fake"), "{lat}");
    let out = acmctl_ok(&s, &["latency"]);
    assert!(out.contains("p99 us") && out.contains("ServerIron XL"), "{out}");

    // acmctl cli: configuration and show commands through the same path.
    let out = acmctl_ok(
        &s,
        &[
            "cli",
            "configure terminal",
            "server real rs5 10.0.1.15",
            "port http",
            "exit",
            "server virtual www 10.0.0.100",
            "port http",
            "bind http rs5 http",
            "end",
            "show server bind",
        ],
    );
    assert!(out.contains("rs5: 10.0.1.15, http (ACT)"), "{out}");
    assert!(acmctl_ok(&s, &["list", "--json"]).contains("10.0.1.15"));
    let out = acmctl_ok(&s, &["cli", "show servr bind"]);
    assert!(out.contains("Invalid input"), "{out}");

    // Garbage on the API socket: answered, counted, not fatal.
    let mut g = UnixStream::connect(&s).unwrap();
    g.write_all(&[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']).unwrap();
    let mut len = [0u8; 4];
    g.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    g.read_exact(&mut body).unwrap();
    assert!(String::from_utf8_lossy(&body).contains("Malformed"), "{}", String::from_utf8_lossy(&body));
    let mut g = UnixStream::connect(&s).unwrap();
    g.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    let _ = g.read(&mut [0u8; 64]);
    let mut g = UnixStream::connect(&s).unwrap();
    g.write_all(&[0, 0]).unwrap();
    drop(g);
    let st: serde_json::Value = serde_json::from_str(&acmctl_ok(&s, &["status", "--json"])).unwrap();
    assert!(st["api_malformed"].as_u64().unwrap() >= 2, "{st}");

    // Telnet: garbage, a session stuck at the login prompt and one mid-login do not block a
    // third; many sessions at once.
    let mut junk = TcpStream::connect(("127.0.0.1", f.telnet)).unwrap();
    junk.write_all(&[0xff, 0xfa, 0x1f, 0xff, 0xff, 0x00, 0x03, 0xfb, 0x01, 0xff, 0xf0, 0x80, 0xfe]).unwrap();
    junk.write_all(&(0..=255u8).cycle().take(20_000).collect::<Vec<u8>>()).unwrap();
    let _idle_at_login = TcpStream::connect(("127.0.0.1", f.telnet)).unwrap();
    let t = Instant::now();
    let mut sess = login(f.telnet);
    assert!(t.elapsed() < Duration::from_secs(15));
    sess.write_all(b"show server bind\r\n").unwrap();
    let out = read_until(&mut sess, "ServerIron>", Duration::from_secs(10)).unwrap();
    assert!(out.contains("rs5"), "{out}");
    let many: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(("127.0.0.1", f.telnet)).unwrap()).collect();
    sess.write_all(b"show version\r\n").unwrap();
    let out = read_until(&mut sess, "ServerIron>", Duration::from_secs(10)).unwrap();
    assert!(out.contains("switch fake"), "{out}");
    drop(many);
    drop(junk);

    // Idle timeout (5 s in this config): a logged-in session left alone is closed.
    assert!(closed_within(&mut sess, Duration::from_secs(12)), "idle session not closed");

    // write memory + restart: the configuration comes back.
    let out = acmctl_ok(&s, &["cli", "write memory"]);
    assert!(!out.contains("Error"), "{out}");
    cp.stop();
    drop(cp);
    let _cp = start_controlplane(&f);
    let out = acmctl_ok(&s, &["cli", "show server bind"]);
    assert!(out.contains("rs5: 10.0.1.15, http (ACT)"), "{out}");
}

#[test]
fn config_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[telnet]\nlisten = \"127.0.0.1:23\"\nidle = 5\n").unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_controlplane")).args(["--config", cfg.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("idle") && err.contains("bad.toml"), "{err}");
    let (ok, msg) = acmctl(&dir.path().join("nobody.sock"), &["list"]);
    assert!(!ok && msg.contains("cannot connect"), "{msg}");
}

/// A field of the wrong type anywhere in the file stops the controlplane at load, naming the
/// file and the field: before it replays the startup-config, binds its API socket or starts a
/// switch driver.
#[test]
fn a_wrong_field_stops_the_controlplane_before_the_startup_config() {
    for (extra, field, what) in [
        ("[health]\ninterval_ms = \"fast\"\n", "health.interval_ms", "invalid type: string \"fast\", expected u64"),
        ("[dataplane]\napi_socket = 42\n", "dataplane.api_socket", "invalid type: integer `42`"),
        ("[election]\nid = 1\n", "election.profile", "no key in [beacon] keys"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let f = write_config(dir.path(), FAKE, extra);
        std::fs::write(&f.startup, "server real rs1 10.0.1.11\n port http\n").unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_controlplane"))
            .args(["--config", f.config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra}: {err}");
        let named = format!("{}: {field}: ", f.config.display());
        assert!(err.contains(&named) && err.contains(what), "{extra}: want {named}{what}: {err}");
        assert!(!err.contains("replayed") && !err.contains("switch fake"), "{extra}: started anyway: {err}");
        assert!(!f.socket.exists(), "{extra}: the API socket was bound");
    }
}

#[test]
fn a_cm_drives_another_appliance_over_telnet() {
    // B: an appliance of ours with a fake switch; A: a CM whose switch is B, over telnet.
    let dir_b = tempfile::tempdir().unwrap();
    let fb = write_config(dir_b.path(), FAKE, "");
    let mut b = start_controlplane(&fb);
    let dir_a = tempfile::tempdir().unwrap();
    let profile = format!(
        "[[switch]]\nname = \"b\"\ndriver = \"serveriron-telnet\"\naddress = \"127.0.0.1:{}\"\nusername = \"admin\"\npassword = \"acm-lab\"\nenable_password = \"acm-lab\"\n",
        fb.telnet
    );
    let fa = write_config(dir_a.path(), &profile, "");
    let _a = start_controlplane(&fa);

    let out = acmctl_ok(&fa.socket, &["add", "10.0.0.100:80", "10.0.1.11:80", "--weight", "2"]);
    assert!(out.contains("switch b: add acknowledged"), "{out}");
    acmctl_ok(&fa.socket, &["add", "10.0.0.100:80", "10.0.1.12:80"]);
    let on_b = acmctl_ok(&fb.socket, &["list"]);
    assert!(on_b.contains("10.0.1.11:80") && on_b.contains("10.0.1.12:80"), "{on_b}");
    let bind = acmctl_ok(&fb.socket, &["cli", "show server bind"]);
    assert!(bind.contains("acm-10-0-1-11: 10.0.1.11, http (ACT)"), "{bind}");
    acmctl_ok(&fa.socket, &["remove", "10.0.0.100:80", "10.0.1.12:80"]);
    assert!(acmctl_ok(&fb.socket, &["cli", "show server bind"]).contains("10.0.1.12, http (GDN)"));

    // B restarts without having saved: A's sync puts the active binding back over telnet.
    b.stop();
    drop(b);
    let _b = start_controlplane(&fb);
    wait_until("A's sync re-adds 10.0.1.11 on the restarted B", Duration::from_secs(20), || {
        acmctl_ok(&fb.socket, &["list"]).contains("10.0.1.11:80")
    });
    let lat: serde_json::Value = serde_json::from_str(&acmctl_ok(&fa.socket, &["latency", "--json"])).unwrap();
    assert!(lat.as_array().unwrap().iter().any(|r| r["switch"] == "b" && r["primitive"] == "add"), "{lat}");
}
