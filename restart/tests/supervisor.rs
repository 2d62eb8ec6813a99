//! restartd: fault detection, crash-loop back-off, clean exits, planned
//! upgrades and layout-version refusal.
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn www(dir: &std::path::Path) {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), b"<h1>zlr</h1>\n").unwrap();
}

#[test]
fn clean_exit_is_not_restarted() {
    let dir = tmpdir("rd-true");
    let out = Command::new(RESTARTD)
        .arg("--control")
        .arg(dir.join("c.sock"))
        .args(["--", "/bin/true"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("started /bin/true").count(), 1, "{log}");
    assert!(log.contains("clean exit, not restarting"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nonzero_exit_loop_backs_off_and_gives_up() {
    let dir = tmpdir("rd-false");
    let t0 = Instant::now();
    let out = Command::new(RESTARTD)
        .arg("--control")
        .arg(dir.join("c.sock"))
        .args(["--backoff-base-ms", "50", "--max-retries", "3", "--", "/bin/false"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let took = t0.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    // First fault restarts at once; then 3 back-offs (50+100+200 ms); then give up.
    assert_eq!(log.matches("started /bin/false").count(), 5, "{log}");
    assert_eq!(log.matches("REPEATED FAULT").count(), 3, "{log}");
    assert!(log.contains("GIVING UP"), "{log}");
    assert!(took >= Duration::from_millis(350), "back-off not applied: {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn crash_loop_at_start_backs_off_and_stops() {
    let dir = tmpdir("rd-segv");
    www(&dir);
    let mut d =
        Daemon::start(&dir, &["--backoff-base-ms", "20", "--max-retries", "3"], &[], &[("ZLR_CRASH_AT_START", "1")]);
    let code = d.wait_exit(Duration::from_secs(20)).expect("restartd must stop instead of looping");
    let log = d.log_text();
    assert_eq!(code, 2, "{log}");
    assert_eq!(log.lines().filter(|l| l.contains("restartd:") && l.contains("killed by SIGSEGV")).count(), 5, "{log}");
    assert!(log.contains("GIVING UP"), "{log}");
}

#[test]
fn crash_during_recovery_is_not_looped() {
    if !hugetlbfs_or_skip("crash_during_recovery_is_not_looped") {
        return;
    }
    let dir = tmpdir("rd-recov");
    www(&dir);
    let mut d =
        Daemon::start(&dir, &["--backoff-base-ms", "20", "--max-retries", "2"], &[], &[("ZLR_CRASH_IN_RECOVERY", "1")]);
    let pid = d.wait_ready(1);
    // Keep a connection so the recovery path has work to do.
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(b"GET /index.html HTTP/1.1\r\n\r\n").unwrap();
    read_response(&mut s);
    segv(pid);
    let code = d.wait_exit(Duration::from_secs(20)).expect("restartd must stop instead of looping");
    let log = d.log_text();
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("crashing during recovery"), "{log}");
    assert!(log.contains("GIVING UP"), "{log}");
    // restartd released everything: the client sees a clean close, not a hang.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 16];
    assert!(matches!(std::io::Read::read(&mut s, &mut b), Ok(0) | Err(_)));
}

#[test]
fn planned_upgrade_hands_over_channels_and_state() {
    if !hugetlbfs_or_skip("planned_upgrade_hands_over_channels_and_state") {
        return;
    }
    let dir = tmpdir("rd-upgrade");
    www(&dir);
    let v2 = dir.join("zlr-httpd-v2");
    std::fs::copy(HTTPD, &v2).unwrap();
    let d = Daemon::start(&dir, &[], &[], &[]);
    let pid1 = d.wait_ready(1);
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /index.html HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).1, b"<h1>zlr</h1>\n");
    // A request half sent across the upgrade.
    s.write_all(b"GET /index.html HT").unwrap();
    let out = Command::new(RESTARTCTL).arg("--control").arg(&d.control).arg("upgrade").arg(&v2).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let pid2 = d.wait_ready(2);
    assert_ne!(pid1, pid2);
    let st = d.status().unwrap();
    assert!(st.roles[0].path.ends_with("zlr-httpd-v2"), "{:?}", st.roles[0].path);
    assert!(matches!(&st.roles[0].last_exit, Some(restart::ExitCause::Planned { reason, .. }) if reason == "upgrade"));
    assert_eq!(st.roles[0].restarts, 0, "a planned upgrade is not a fault");
    s.write_all(b"TP/1.1\r\n\r\n").unwrap();
    let (h, body) = read_response(&mut s);
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert_eq!(body, b"<h1>zlr</h1>\n");
}

#[test]
fn upgrade_to_incompatible_layout_is_refused() {
    if !hugetlbfs_or_skip("upgrade_to_incompatible_layout_is_refused") {
        return;
    }
    let dir = tmpdir("rd-refuse");
    www(&dir);
    let v2 = dir.join("zlr-httpd-layout2");
    std::fs::write(&v2, format!("#!/bin/sh\nZLR_LAYOUT_VERSION=2 exec {HTTPD} \"$@\"\n")).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&v2).unwrap().permissions(), 0o755);
    std::fs::set_permissions(&v2, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let d = Daemon::start(&dir, &[], &[], &[]);
    let pid1 = d.wait_ready(1);
    let out = Command::new(RESTARTCTL).arg("--control").arg(&d.control).arg("upgrade").arg(&v2).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("incompatible") && err.contains("v1") && err.contains("v2"), "{err}");
    std::thread::sleep(Duration::from_millis(200));
    let st = d.status().unwrap();
    assert_eq!((st.generation, st.pid), (1, Some(pid1)), "the running generation is untouched");
    // A binary that does not declare a layout is refused too.
    let out =
        Command::new(RESTARTCTL).arg("--control").arg(&d.control).args(["upgrade", "/bin/true"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not declare its state layout"));
}

#[test]
fn peer_reset_while_down_is_closed_cleanly() {
    if !hugetlbfs_or_skip("peer_reset_while_down_is_closed_cleanly") {
        return;
    }
    let dir = tmpdir("rd-reset");
    www(&dir);
    let d = Daemon::start(&dir, &[], &[], &[]);
    let pid = d.wait_ready(1);
    let mut a = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    a.write_all(b"GET /index.html HTTP/1.1\r\n\r\n").unwrap();
    read_response(&mut a);
    a.write_all(b"GET /inde").unwrap();
    let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(p, rustix::process::Signal::STOP).unwrap();
    // The client aborts (RST) while the service is stopped: the kept socket
    // is dead by the time the next generation gets it.
    rustix::net::sockopt::set_socket_linger(&a, Some(Duration::ZERO)).unwrap();
    drop(a);
    std::thread::sleep(Duration::from_millis(50));
    rustix::process::kill_process(p, rustix::process::Signal::KILL).unwrap();
    d.wait_ready(2);
    let mut b = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    b.write_all(b"GET /index.html HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut b).1, b"<h1>zlr</h1>\n");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(d.status().unwrap().roles[0].kept_fds, 2, "listener + the live connection; the reset one released");
}

/// Held (peeked, undeleted) request bytes must not turn a close into a reset.
#[test]
fn connection_close_ends_with_fin_not_reset() {
    if !hugetlbfs_or_skip("connection_close_ends_with_fin_not_reset") {
        return;
    }
    let dir = tmpdir("rd-fin");
    www(&dir);
    let d = Daemon::start(&dir, &[], &[], &[]);
    d.wait_ready(1);
    for req in [
        &b"GET /index.html HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
        b"GET /index.html HTTP/1.0\r\n\r\n",
        b"GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req).unwrap();
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut all).expect("clean close (FIN), not a reset");
        assert!(
            all.starts_with(b"HTTP/1.1 200") || all.starts_with(b"HTTP/1.1 404"),
            "{}",
            String::from_utf8_lossy(&all)
        );
    }
}

/// A multi-process service: the main process registers a helper role; each
/// role has its own generations and fault handling.
#[test]
fn registered_role_is_supervised_separately() {
    if !hugetlbfs_or_skip("registered_role_is_supervised_separately") {
        return;
    }
    let dir = tmpdir("rd-roles");
    www(&dir);
    let d = Daemon::start(&dir, &[], &["--helper", "/bin/sleep", "1000"], &[]);
    let main_pid = d.wait_ready(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let helper_pid = loop {
        if let Some(r) = d.status().and_then(|s| s.roles.into_iter().find(|r| r.child_id == 1)) {
            if r.state == "running" {
                assert_eq!(r.generation, 1);
                assert_eq!(r.path, "/bin/sleep");
                break r.pid.unwrap();
            }
        }
        assert!(Instant::now() < deadline, "helper role never started: {}", d.log_text());
        std::thread::sleep(Duration::from_millis(10));
    };
    segv(helper_pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = d.status().unwrap();
        let h = s.roles.iter().find(|r| r.child_id == 1).unwrap();
        if h.generation == 2 && h.state == "running" {
            assert_ne!(h.pid, Some(helper_pid));
            assert_eq!((s.roles[0].generation, s.roles[0].pid), (1, Some(main_pid)), "main role untouched");
            break;
        }
        assert!(Instant::now() < deadline, "helper not restarted: {}", d.log_text());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `restartctl restart`: a planned restart with the same binary keeps the
/// connections and is not counted as a fault.
#[test]
fn planned_restart_same_binary() {
    if !hugetlbfs_or_skip("planned_restart_same_binary") {
        return;
    }
    let dir = tmpdir("rd-restart");
    www(&dir);
    let d = Daemon::start(&dir, &[], &[], &[]);
    let pid1 = d.wait_ready(1);
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /index.html HTTP/1.1\r\n\r\n").unwrap();
    read_response(&mut s);
    let out = Command::new(RESTARTCTL).arg("--control").arg(&d.control).arg("restart").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pid2 = d.wait_ready(2);
    assert_ne!(pid1, pid2);
    let st = d.status().unwrap();
    assert!(matches!(&st.roles[0].last_exit, Some(restart::ExitCause::Planned { reason, .. }) if reason == "restart"));
    assert_eq!((st.roles[0].restarts, st.roles[0].fault_streak), (0, 0));
    s.write_all(b"GET /index.html HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).1, b"<h1>zlr</h1>\n");
}
