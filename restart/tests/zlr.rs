//! The thesis's ZLR thttpd experiments, reproduced with restartd + zlr-httpd.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;

const MB: usize = 1 << 20;

fn www(dir: &std::path::Path) -> Vec<u8> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let big = content(5 * MB, 42);
    std::fs::write(www.join("big.bin"), &big).unwrap();
    std::fs::write(www.join("small.bin"), content(100_000, 7)).unwrap();
    std::fs::write(www.join("index.html"), b"<h1>zlr</h1>\n").unwrap();
    big
}

/// Download a 5 MB file reading slowly; SIGSEGV the server after 3 MB; the
/// download completes on the same connection with identical bytes.
#[test]
fn download_5mb_survives_sigsegv() {
    if !hugetlbfs_or_skip("download_5mb_survives_sigsegv") {
        return;
    }
    let dir = tmpdir("zlr-dl");
    let big = www(&dir);
    // A small fixed send buffer keeps the server mid-response at the crash.
    let d = Daemon::start(&dir, &[], &["--sndbuf", "131072"], &[]);
    let pid1 = d.wait_ready(1);
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    rustix::net::sockopt::set_socket_recv_buffer_size(&s, 65536).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::with_capacity(6 * MB);
    let mut buf = [0u8; 32 * 1024];
    let mut killed_at = None;
    let mut max_gap = Duration::ZERO;
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    let head_len;
    loop {
        let n = s.read(&mut buf).expect("read: the connection must survive the crash");
        assert!(n > 0, "server closed the connection after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        let now = Instant::now();
        if killed_at.is_some() {
            max_gap = max_gap.max(now - last);
        }
        last = now;
        if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if got.len() >= p + 4 + big.len() {
                head_len = p + 4;
                break;
            }
        }
        if killed_at.is_none() && got.len() >= 3 * MB {
            segv(pid1);
            killed_at = Some(got.len());
        }
        // Throttle: ~8 MB/s.
        std::thread::sleep(Duration::from_micros(3000));
        assert!(Instant::now() < deadline, "download too slow");
    }
    let head = String::from_utf8_lossy(&got[..head_len]).to_string();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(got.len(), head_len + big.len(), "no extra bytes");
    assert_eq!(sha256(&got[head_len..]), sha256(&big), "identical bytes");
    let killed_at = killed_at.expect("killed");
    assert!(killed_at >= 3 * MB);
    let pid2 = d.wait_ready(2);
    assert_ne!(pid1, pid2);
    let st = d.status().unwrap();
    assert_eq!(st.generation, 2);
    assert!(matches!(st.roles[0].last_exit, Some(restart::ExitCause::Signaled { signal: libc::SIGSEGV, .. })));
    let log = d.log_text();
    assert!(log.contains("resuming response"), "the crash should land mid-response; log:\n{log}");
    eprintln!(
        "killed after {killed_at} bytes; longest read gap after the crash {max_gap:?}; restart {:?} ms",
        st.roles[0].last_restart_ms
    );
    assert!(max_gap < Duration::from_secs(2), "stall {max_gap:?}");
    // The same connection keeps serving (keep-alive).
    s.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (h, body) = read_response(&mut s);
    assert!(h.starts_with("HTTP/1.1 200"));
    assert_eq!(body, b"<h1>zlr</h1>\n");
}

fn hundred_clients(hread: &str) {
    let dir = tmpdir("zlr-100");
    www(&dir);
    let small = content(100_000, 7);
    let d = Daemon::start(&dir, &[], &["--hread", hread], &[]);
    let pid1 = d.wait_ready(1);
    const N: usize = 100;
    let phase = Arc::new(Barrier::new(N + 1));
    let port = d.port;
    let mut handles = Vec::new();
    for i in 0..N {
        let phase = phase.clone();
        let small = small.clone();
        handles.push(std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let range = |k: usize| {
                let a = (i * 997 + k * 31) % 90_000;
                (a, a + 99 + i)
            };
            let req = |k: usize| {
                let (a, b) = range(k);
                format!("GET /small.bin HTTP/1.1\r\nHost: x\r\nRange: bytes={a}-{b}\r\nX-Client: {i}-{k}\r\n\r\n")
                    .into_bytes()
            };
            let check = |s: &mut TcpStream, k: usize| {
                let (h, body) = read_response(s);
                let (a, b) = range(k);
                assert!(h.starts_with("HTTP/1.1 206"), "client {i} req {k}: {h}");
                assert_eq!(body, &small[a..=b], "client {i} request {k} body");
            };
            // Request 0: a plain keep-alive exchange before the crash.
            s.write_all(&req(0)).unwrap();
            check(&mut s, 0);
            // Request 1: half of the clients send only part of it.
            let r1 = req(1);
            let cut = if i % 2 == 0 { r1.len() / 2 } else { r1.len() };
            s.write_all(&r1[..cut]).unwrap();
            phase.wait(); // everyone mid-request
            phase.wait(); // crash happened
            s.write_all(&r1[cut..]).unwrap();
            check(&mut s, 1);
            // Request 2 after the restart on the same connection.
            s.write_all(&req(2)).unwrap();
            check(&mut s, 2);
            // Exactly once: nothing more arrives.
            s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
            let mut extra = [0u8; 64];
            match s.read(&mut extra) {
                Ok(0) => panic!("client {i}: connection closed"),
                Ok(n) => panic!("client {i}: {n} unexpected extra bytes: {:?}", String::from_utf8_lossy(&extra[..n])),
                Err(e) => {
                    assert!(matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{e}")
                }
            }
        }));
    }
    phase.wait();
    std::thread::sleep(Duration::from_millis(50));
    segv(pid1);
    phase.wait();
    for h in handles {
        h.join().expect("client failed");
    }
    let pid2 = d.wait_ready(2);
    assert_ne!(pid1, pid2);
    let st = d.status().unwrap();
    assert_eq!(st.generation, 2);
    eprintln!("hread {hread}: 100 clients ok; restart {:?} ms", st.roles[0].last_restart_ms);
}

/// 100 concurrent keep-alive clients, half with half-sent requests, during a
/// crash: every request answered exactly once, on the same connections.
#[test]
fn hundred_keepalive_clients_survive_crash() {
    if !hugetlbfs_or_skip("hundred_keepalive_clients_survive_crash") {
        return;
    }
    hundred_clients("auto");
}

/// The same with hread in fallback mode (hold buffers in the state region).
#[test]
fn hundred_keepalive_clients_survive_crash_fallback_hread() {
    if !hugetlbfs_or_skip("hundred_keepalive_clients_survive_crash_fallback_hread") {
        return;
    }
    hundred_clients("fallback");
}

/// `curl --limit-rate` download with `kill -SEGV` of the pid from
/// `restartctl status --json` after 3 MB: curl exits 0 with the right sha256.
#[test]
fn acceptance_curl_download_with_sigsegv() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("curl missing under CI");
        }
        eprintln!("SKIP acceptance_curl_download_with_sigsegv: curl not installed");
        return;
    }
    if !hugetlbfs_or_skip("acceptance_curl_download_with_sigsegv") {
        return;
    }
    let dir = tmpdir("zlr-curl");
    let big = www(&dir);
    let d = Daemon::start(&dir, &[], &[], &[]);
    d.wait_ready(1);
    let out = std::process::Command::new(RESTARTCTL)
        .arg("--control")
        .arg(&d.control)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["generation"], 1);
    let pid = v["pid"].as_u64().unwrap() as u32;
    let file = dir.join("out.bin");
    let mut curl = std::process::Command::new("curl")
        .args(["-sS", "--limit-rate", "1M", "-o"])
        .arg(&file)
        .arg(format!("http://127.0.0.1:{}/big.bin", d.port))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) < 3 * MB as u64 {
        assert!(Instant::now() < deadline, "curl too slow");
        std::thread::sleep(Duration::from_millis(10));
    }
    segv(pid);
    let st = curl.wait().unwrap();
    assert!(st.success(), "curl {st}");
    assert_eq!(sha256(&std::fs::read(&file).unwrap()), sha256(&big));
    d.wait_ready(2);
    let out = std::process::Command::new(RESTARTCTL).arg("--control").arg(&d.control).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("generation 2"), "{text}");
    assert!(text.contains("SIGSEGV"), "{text}");
}
