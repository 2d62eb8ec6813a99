//! Shared by the controlplane's process tests: start a controlplane, run acmctl.
#![allow(dead_code)]

pub(crate) mod supervised;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process killed (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: &'static str,
}

impl Proc {
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub(crate) fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// PHC hash of the lab password, made once per test binary (Argon2 is slow on purpose).
pub(crate) fn lab_hash() -> String {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| cli::auth::hash_password("acm-lab").unwrap()).clone()
}

/// Files of one controlplane instance.
pub(crate) struct CpFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub startup: PathBuf,
    pub telnet: u16,
}

/// Writes a controlplane config in `dir` with one switch profile (`switch_toml`).
pub(crate) fn write_config(dir: &Path, switch_toml: &str, extra: &str) -> CpFiles {
    let telnet = free_port();
    let socket = dir.join("cp.sock");
    let startup = dir.join("startup-config");
    let config = dir.join("controlplane.toml");
    let h = lab_hash();
    std::fs::write(
        &config,
        format!(
            r#"enable_secret = "{h}"
startup_config = "{startup}"
[[user]]
name = "admin"
password_hash = "{h}"
[telnet]
listen = "127.0.0.1:{telnet}"
idle_timeout_s = 5
[api]
socket = "{socket}"
[cm]
sync_interval_ms = 300
sync_grace_ms = 1000
{extra}
{switch_toml}
"#,
            startup = startup.display(),
            socket = socket.display(),
        ),
    )
    .unwrap();
    CpFiles { dir: dir.to_path_buf(), config, socket, startup, telnet }
}

/// Starts the controlplane and waits for its API.
pub(crate) fn start_controlplane(f: &CpFiles) -> Proc {
    let log = f.dir.join("controlplane.log");
    let child = Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .args(["--config", f.config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap())
        .spawn()
        .expect("start the controlplane");
    let mut p = Proc { child, log, name: "controlplane" };
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if controlplane::api::client::Client::connect(&f.socket).and_then(|mut c| c.status()).is_ok() {
            return p;
        }
        assert!(p.alive(), "controlplane exited:\n{}", p.log_tail());
        assert!(Instant::now() < end, "controlplane API did not come up:\n{}", p.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs acmctl; returns (success, stdout + stderr).
pub(crate) fn acmctl(socket: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_acmctl")).arg("-s").arg(socket).args(args).output().expect("run acmctl");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// acmctl that must succeed.
pub(crate) fn acmctl_ok(socket: &Path, args: &[&str]) -> String {
    let (ok, s) = acmctl(socket, args);
    assert!(ok, "acmctl {args:?} failed: {s}");
    s
}

/// Polls `f` until it is true or `timeout` passes (then panics naming `what`).
pub(crate) fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting until {what}");
}

/// Runs an `expect` script; returns (exit code, output).
pub(crate) fn expect(script: &str) -> (i32, String) {
    let mut child = Command::new("expect")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run expect");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    out.push_str(&err);
    (child.wait().unwrap().code().unwrap_or(-1), out)
}
