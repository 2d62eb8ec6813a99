//! The controlplane under `restartd`, for the restart tests and the restart-time benchmark.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{acmctl_ok, wait_until, CpFiles, Proc};

/// A switch driver that needs nothing running.
pub(crate) const FAKE: &str = "[[switch]]\nname = \"fake\"\ndriver = \"fake\"\n";

pub(crate) fn bin(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_BIN_EXE_controlplane")).with_file_name(name);
    p.exists().then_some(p)
}

/// The restart binaries, or a skip (a failure under CI=true).
pub(crate) fn restart_bins() -> Option<(PathBuf, PathBuf)> {
    match (bin("restartd"), bin("restartctl")) {
        (Some(d), Some(c)) => Some((d, c)),
        _ => {
            labtest::skip("restartd/restartctl not built beside the controlplane (cargo build --release -p restart)");
            None
        }
    }
}

/// Reads until `needle` shows up; returns everything read. Fails on EOF or a reset.
pub(crate) fn read_until(s: &mut TcpStream, got: &mut Vec<u8>, needle: &str, timeout: Duration) -> String {
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(got).into_owned();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < end, "no {needle:?} within {timeout:?}; got {text:?}");
        match s.read(&mut buf) {
            Ok(0) => panic!("telnet connection closed; got {text:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("telnet connection error (reset?): {e}; got {text:?}"),
        }
    }
}

/// Sends `line`, reads until `needle`; returns what came back for it.
pub(crate) fn cmd(s: &mut TcpStream, line: &[u8], needle: &str) -> String {
    s.write_all(line).unwrap();
    let mut got = Vec::new();
    read_until(s, &mut got, needle, Duration::from_secs(20))
}

pub(crate) struct Supervised {
    pub rd: Proc,
    pub ctl: PathBuf,
    pub restartctl: PathBuf,
}

impl Supervised {
    pub(crate) fn status(&self) -> serde_json::Value {
        let out = Command::new(&self.restartctl)
            .args(["--control", self.ctl.to_str().unwrap(), "status", "--json"])
            .output()
            .expect("restartctl");
        assert!(out.status.success(), "restartctl status: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    pub(crate) fn find(v: &serde_json::Value, key: &str) -> Option<serde_json::Value> {
        match v {
            serde_json::Value::Object(m) => m.get(key).cloned().or_else(|| m.values().find_map(|x| Self::find(x, key))),
            serde_json::Value::Array(a) => a.iter().find_map(|x| Self::find(x, key)),
            _ => None,
        }
    }

    /// The running generation's pid (`None` between generations).
    pub(crate) fn try_pid(&self) -> Option<u32> {
        Self::find(&self.status(), "pid").and_then(|p| p.as_u64()).map(|p| p as u32)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.try_pid().expect("a running generation")
    }

    pub(crate) fn generation(&self) -> u64 {
        let st = self.status();
        Self::find(&st, "generation").and_then(|p| p.as_u64()).unwrap_or_else(|| panic!("no generation in {st}"))
    }

    /// Clean stop: SIGTERM to the controlplane (exit 0: not restarted), then restartd ends.
    pub(crate) fn stop(&mut self) {
        if let Some(pid) = self.try_pid() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let end = Instant::now() + Duration::from_secs(10);
        while self.rd.alive() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub(crate) fn start(f: &CpFiles, restartd: &Path, restartctl: &Path) -> Supervised {
    start_with(f, restartd, restartctl, &[])
}

pub(crate) fn start_with(f: &CpFiles, restartd: &Path, restartctl: &Path, extra: &[&str]) -> Supervised {
    let ctl = f.dir.join("restartd.sock");
    let log = f.dir.join("restartd.log");
    let child = Command::new(restartd)
        .args(["--control", ctl.to_str().unwrap()])
        .args(extra)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_controlplane"))
        .args(["--config", f.config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .env("RESTART_HUGETLBFS", f.dir.join("no-hugetlbfs"))
        .env("RESTART_SHM_DIR", &f.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start restartd");
    let rd = Proc { child, log, name: "restartd" };
    let s = Supervised { rd, ctl, restartctl: restartctl.to_path_buf() };
    wait_until("the controlplane API answers", Duration::from_secs(30), || api_up(&f.socket));
    s
}

pub(crate) fn api_up(sock: &Path) -> bool {
    controlplane::api::client::Client::connect(sock).and_then(|mut c| c.status()).is_ok()
}

pub(crate) fn list_json(sock: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&acmctl_ok(sock, &["list", "--json"])).unwrap();
    // Counters come from the switch's syncs; the bindings and their states are what must match.
    if let Some(a) = v.as_array_mut() {
        for b in a {
            if let Some(m) = b.as_object_mut() {
                m.remove("counters");
            }
        }
    }
    v
}

pub(crate) fn segv(pid: u32) {
    assert!(Command::new("kill").args(["-SEGV", &pid.to_string()]).status().unwrap().success());
}

pub(crate) fn login_to_config(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut got = Vec::new();
    read_until(&mut s, &mut got, "Login Name:", Duration::from_secs(10));
    cmd(&mut s, b"admin\r\n", "Password:");
    cmd(&mut s, b"acm-lab\r\n", "ServerIron>");
    cmd(&mut s, b"enable\r\n", "Password:");
    cmd(&mut s, b"acm-lab\r\n", "ServerIron#");
    cmd(&mut s, b"configure terminal\r\n", "ServerIron(config)#");
    cmd(&mut s, b"server real rs9 10.0.1.19\r\n", "ServerIron(config-rs-rs9)#");
    s
}

/// Dead or a zombie (restartd reaps it).
pub(crate) fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(st) => st.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}
