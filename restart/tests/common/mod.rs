#![allow(dead_code)]
use std::path::Path;

/// hugetlbfs is a prerequisite: fail under CI, otherwise skip with a message.
pub(crate) fn hugetlbfs_or_skip(test: &str) -> bool {
    let ok = restart::sys::is_hugetlbfs(Path::new(restart::region::HUGETLBFS_DIR));
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: hugetlbfs not mounted at /dev/hugepages (required under CI)");
        }
        eprintln!("SKIP {test}: hugetlbfs not mounted at /dev/hugepages");
    }
    ok
}

pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use restart::proto::{Reply, Request, StatusReport};

pub(crate) const RESTARTD: &str = env!("CARGO_BIN_EXE_restartd");
pub(crate) const RESTARTCTL: &str = env!("CARGO_BIN_EXE_restartctl");
pub(crate) const HTTPD: &str = env!("CARGO_BIN_EXE_zlr-httpd");

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic pseudo-random content.
pub(crate) fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub(crate) struct Daemon {
    pub child: Child,
    pub control: PathBuf,
    pub log: PathBuf,
    pub port: u16,
    pub dir: PathBuf,
    pub state: String,
}

impl Daemon {
    /// `restartd [extra] -- zlr-httpd --root DIR --listen 127.0.0.1:PORT [httpd_args]`
    pub(crate) fn start(dir: &std::path::Path, extra: &[&str], httpd_args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let control = dir.join("restartd.sock");
        let log = dir.join("restartd.log");
        let state = unique("zlrt");
        let mut cmd = Command::new(RESTARTD);
        cmd.arg("--control").arg(&control).args(extra).arg("--").arg(HTTPD).arg("--root").arg(dir.join("www"));
        cmd.arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--state").arg(&state).args(httpd_args);
        cmd.envs(env.iter().copied()).env("RESTARTD_LOG", "info").env("NO_COLOR", "1");
        cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().unwrap();
        Daemon { child, control, log, port, dir: dir.to_path_buf(), state }
    }

    pub(crate) fn status(&self) -> Option<StatusReport> {
        let sock = restart::fdpass::connect(&self.control).ok()?;
        restart::fdpass::send(sock.as_fd(), &serde_json::to_vec(&Request::Status).unwrap(), &[]).ok()?;
        let mut buf = Vec::new();
        restart::fdpass::recv(sock.as_fd(), &mut buf, false).ok()??;
        match serde_json::from_slice(&buf).ok()? {
            Reply::Status(s) => Some(s),
            _ => None,
        }
    }

    /// Wait until role 0 of `generation` is serving; returns its pid.
    pub(crate) fn wait_ready(&self, generation: u64) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.status() {
                let r = &s.roles[0];
                if r.generation == generation && r.ready && r.state == "running" {
                    return r.pid.unwrap();
                }
            }
            assert!(Instant::now() < deadline, "generation {generation} not ready; log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait for restartd to exit (bounded), returning its status code.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM restartd; the service exits when its control socket closes.
        if let Ok(None) = self.child.try_wait() {
            if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = self.child.wait();
        }
        restart::region::Region::remove(&self.state, &restart::region::RegionOptions::default());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn segv(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::SEGV).unwrap();
}

pub(crate) fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// Read one HTTP response (head + Content-Length body) from a blocking stream.
pub(crate) fn read_response(s: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    use std::io::Read;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read head");
        assert!(n == 1, "connection closed in head after {:?}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("read body");
    (head, body)
}
