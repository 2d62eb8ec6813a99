//! The control plane under `restartd`, crashed with SIGSEGV (process level, fake switch):
//! a telnet session in config mode with a half-typed line continues on the same TCP
//! connection, the line is neither lost nor echoed twice, the cache is the same, restartd
//! counts generation 2, API clients mid-request get their answer, a planned restart and an
//! online upgrade hand over the same way; and a corrupted state region means a loud cold start, not a crash loop.
//!
//! Needs the `restartd` and `restartctl` binaries beside the controlplane's (`make test` builds
//! the workspace): without them the test is skipped on a laptop and FAILS under CI=true. The
//! state region lives in the test's temp dir (`RESTART_SHM_DIR`, hugetlbfs off), so nothing is
//! left in /dev/hugepages.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::supervised::{api_up, cmd, list_json, login_to_config, read_until, restart_bins, segv, start, FAKE};
use common::{acmctl_ok, wait_until, write_config};

const STARTUP: &str = "server real rs1 10.0.1.11\n port http\nserver real rs2 10.0.1.12\n port http\n\
server virtual www 10.0.0.100\n port http\n bind http rs1 http rs2 http\n";

#[test]
fn sigsegv_keeps_the_telnet_session_its_half_typed_line_and_the_cache() {
    let Some((restartd, restartctl)) = restart_bins() else { return };
    let dir = tempfile::tempdir().unwrap();
    let f = write_config(dir.path(), FAKE, "");
    std::fs::write(&f.startup, STARTUP).unwrap();
    let mut sup = start(&f, &restartd, &restartctl);
    acmctl_ok(&f.socket, &["add", "10.0.0.100:80", "10.0.1.13:80"]);
    assert_eq!(sup.generation(), 1);

    let mut s = login_to_config(f.telnet);
    // Half a line: echoed, not executed.
    let echo = cmd(&mut s, b"port ht", "port ht");
    assert!(!echo.contains('#'), "{echo:?}");
    let before = list_json(&f.socket);
    assert_eq!(before.as_array().map(|a| a.len()), Some(3), "{before}");

    // An API client mid-request: half a frame sent before the crash, the rest after.
    let req = serde_json::to_vec(&controlplane::api::Request {
        id: 77,
        version: controlplane::api::API_VERSION,
        body: controlplane::api::RequestBody::List,
    })
    .unwrap();
    let mut frame = (req.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    let mut api = UnixStream::connect(&f.socket).unwrap();
    api.write_all(&frame[..frame.len() / 2]).unwrap();
    // And one connected before the crash whose whole request arrives while no generation runs.
    let mut api2 = UnixStream::connect(&f.socket).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let pid = sup.pid();
    let t0 = Instant::now();
    segv(pid);
    api2.write_all(&frame).unwrap();
    wait_until("a new generation", Duration::from_secs(20), || sup.try_pid().is_some_and(|p| p != pid));
    wait_until("the API answers again", Duration::from_secs(20), || api_up(&f.socket));
    eprintln!("SIGSEGV -> API answering again: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    assert_eq!(sup.generation(), 2);
    api.write_all(&frame[frame.len() / 2..]).unwrap();
    for (n, c) in [(1, &mut api), (2, &mut api2)] {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let body = rpc::frame::read_frame_bytes(c, controlplane::api::MAX_FRAME)
            .unwrap_or_else(|e| panic!("API client {n}: {e}"));
        let resp: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(resp["id"], 77, "API client {n}: {resp}");
        assert!(resp.to_string().contains("10.0.1.13"), "API client {n}: {resp}");
    }

    // The rest of the line and Enter: the command runs in the real server's mode; nothing of
    // the half line comes back a second time.
    let out = cmd(&mut s, b"tp\r\n", "ServerIron(config-rs-rs9)#");
    assert!(out.starts_with("tp"), "only the new keystrokes are echoed: {out:?}");
    assert!(!out.contains("port ht") && !out.contains("Invalid"), "{out:?}");
    cmd(&mut s, b"end\r\n", "ServerIron#");
    let cfg = acmctl_ok(&f.socket, &["cli", "show running-config"]);
    assert!(cfg.contains("server real rs9 10.0.1.19") && cfg.contains("server real rs1"), "{cfg}");
    let rs9 = &cfg[cfg.find("server real rs9").unwrap()..];
    assert!(rs9.lines().nth(1).is_some_and(|l| l.contains("port http")), "{cfg}");

    // No binding lost, none invented.
    assert_eq!(list_json(&f.socket), before);
    // Still the same, after a few syncs of the new generation (it had nothing to relearn).
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(list_json(&f.socket), before);

    // Twice more, mid-line each time: the session keeps going.
    for round in 0..2 {
        cmd(&mut s, b"show ver", "show ver");
        let pid = sup.pid();
        segv(pid);
        wait_until("a new generation", Duration::from_secs(20), || sup.try_pid().is_some_and(|p| p != pid));
        let out = cmd(&mut s, b"sion\r\n", "ServerIron#");
        assert!(out.starts_with("sion") && out.contains("controlplane"), "round {round}: {out:?}");
    }
    assert_eq!(sup.generation(), 4);
    assert_eq!(list_json(&f.socket), before);
    // A planned restart (quiesce) hands over the same way.
    cmd(&mut s, b"show ver", "show ver");
    let out = Command::new(&sup.restartctl).args(["--control", sup.ctl.to_str().unwrap(), "restart"]).output().unwrap();
    assert!(out.status.success(), "restartctl restart: {}", String::from_utf8_lossy(&out.stderr));
    let out = cmd(&mut s, b"sion\r\n", "ServerIron#");
    assert!(out.starts_with("sion") && out.contains("controlplane"), "{out:?}");
    assert_eq!(sup.generation(), 5);
    assert_eq!(list_json(&f.socket), before);
    // An online upgrade (here to the same build: restartd checks the declared layout first).
    cmd(&mut s, b"show ver", "show ver");
    let out = Command::new(&sup.restartctl)
        .args(["--control", sup.ctl.to_str().unwrap(), "upgrade", env!("CARGO_BIN_EXE_controlplane")])
        .output()
        .unwrap();
    assert!(out.status.success(), "restartctl upgrade: {}", String::from_utf8_lossy(&out.stderr));
    let out = cmd(&mut s, b"sion\r\n", "ServerIron#");
    assert!(out.starts_with("sion") && out.contains("controlplane"), "{out:?}");
    assert_eq!(sup.generation(), 6);
    assert_eq!(list_json(&f.socket), before);

    // A clean logout closes with FIN (read returns 0), not a reset.
    s.write_all(b"exit\r\nexit\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("logout: {e}"),
        }
    }
    sup.stop();
    assert!(!sup.rd.alive(), "restartd still running after the controlplane stopped:\n{}", sup.rd.log_tail());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("zlr-state-"))
        .collect();
    assert!(left.is_empty(), "state region left after a clean stop: {left:?}");
}

/// A `[[telnet.extra]]` listener (port 23 on a port address, in the appliance) is kept by
/// restartd like the main one: clients connecting while the control plane crashes and comes
/// back wait in the backlog and get the banner; none is refused.
#[test]
fn an_extra_telnet_listener_is_kept_across_crashes() {
    let Some((restartd, restartctl)) = restart_bins() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let f = write_config(dir.path(), FAKE, &format!("[[telnet.extra]]\naddress = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&f.startup, STARTUP).unwrap();
    let mut sup = start(&f, &restartd, &restartctl);
    wait_until("the extra listener accepts", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    // A client connecting over and over (bounded: 3,000 attempts or 60 s), through three crashes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut refused) = (0u32, Vec::new());
            let end = Instant::now() + Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && ok < 3000 && Instant::now() < end {
                match TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5)) {
                    Ok(s) => {
                        ok += 1;
                        drop(s);
                    }
                    Err(e) => refused.push(e.to_string()),
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            (ok, refused)
        })
    };
    for _ in 0..3 {
        let pid = sup.pid();
        segv(pid);
        wait_until("restartd names the new generation", Duration::from_secs(10), || {
            sup.try_pid().is_some_and(|p| p != pid)
        });
        wait_until("the API answers again", Duration::from_secs(10), || api_up(&f.socket));
        std::thread::sleep(Duration::from_millis(50));
    }
    // A connection made now is served by the newest generation: it gets the banner.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut got = Vec::new();
    read_until(&mut s, &mut got, "Login Name:", Duration::from_secs(10));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, refused) = client.join().unwrap();
    assert!(ok > 0);
    assert!(
        refused.is_empty(),
        "{} of {} connections failed across restarts: {:?}",
        refused.len(),
        ok as usize + refused.len(),
        &refused[..refused.len().min(3)]
    );
    let log = std::fs::read_to_string(dir.path().join("restartd.log")).unwrap_or_default();
    assert!(log.contains("(kept)"), "the new generations adopted the listener:\n{log}");
    sup.stop();
}

#[test]
fn a_corrupted_state_region_is_a_loud_cold_start() {
    let Some((restartd, restartctl)) = restart_bins() else { return };
    let dir = tempfile::tempdir().unwrap();
    let f = write_config(dir.path(), FAKE, "");
    std::fs::write(&f.startup, STARTUP).unwrap();
    let mut sup = start(&f, &restartd, &restartctl);
    let mut s = login_to_config(f.telnet);
    let region = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("zlr-state-"))
        .expect("state region in the temp dir");
    // Garbage over the header.
    let mut bytes = std::fs::read(&region).unwrap();
    bytes[..64].fill(0x5a);
    std::fs::write(&region, &bytes).unwrap();

    let pid = sup.pid();
    segv(pid);
    wait_until("a new generation", Duration::from_secs(20), || sup.try_pid().is_some_and(|p| p != pid));
    wait_until("the API answers again", Duration::from_secs(20), || api_up(&f.socket));
    assert_eq!(sup.generation(), 2);
    // Cold start: the startup-config's bindings, from the replay.
    let list = list_json(&f.socket);
    assert_eq!(list.as_array().map(|a| a.len()), Some(2), "{list}");
    let log = std::fs::read_to_string(&sup.rd.log).unwrap();
    assert!(log.contains("STATE REGION UNUSABLE"), "{log}");
    // The old session could not continue: closed cleanly (FIN), not reset.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("expected a clean close, got {e}"),
        }
    }
    // And it stays up (no crash loop): still generation 2 a moment later.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sup.generation(), 2);

    // A region of another layout version (as an incompatible upgrade would leave): refused,
    // not misread; cold start again.
    let name = region.file_name().unwrap().to_string_lossy().trim_start_matches("zlr-state-").to_string();
    let opts =
        restart::region::RegionOptions { hugetlbfs: dir.path().join("no-hugetlbfs"), shm: dir.path().to_path_buf() };
    let mut other = controlplane::zlr::layout::layout(64);
    other.version += 1;
    drop(restart::region::Region::create(&name, &other, &opts).unwrap());
    let pid = sup.pid();
    segv(pid);
    wait_until("a new generation", Duration::from_secs(20), || sup.try_pid().is_some_and(|p| p != pid));
    wait_until("the API answers again", Duration::from_secs(20), || api_up(&f.socket));
    assert_eq!(sup.generation(), 3);
    let log = std::fs::read_to_string(&sup.rd.log).unwrap();
    assert!(log.contains("incompatible layout"), "{log}");
    assert_eq!(log.matches("STATE REGION UNUSABLE").count(), 2, "{log}");
    assert_eq!(list_json(&f.socket).as_array().map(|a| a.len()), Some(2));
    // The cold start wrote a fresh region of this version.
    assert!(restart::region::Region::open(&name, &controlplane::zlr::layout::layout(64), &opts).is_ok());
    sup.stop();
}
