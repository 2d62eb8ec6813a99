//! pktgen → memif → dataplane → memif → pktgen: every packet rewritten correctly, both
//! directions (correctness, not speed). Needs root and hugepages: skipped without them,
//! except with `CI=true`, where it fails.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acm::{BindingKey, BindingParams, Proto, RealServer, ServiceKey};
use appliance_config::{presets, PortConfig};
use dataplane::api::client::Client;
use pktgen::summary::Summary;

/// The dataplane binary next to pktgen's, built if missing.
fn dataplane_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ACM_DATAPLANE_BIN") {
        return PathBuf::from(p);
    }
    let pktgen = Path::new(env!("CARGO_BIN_EXE_pktgen"));
    let dir = pktgen.parent().expect("bin dir");
    let bin = dir.join("dataplane");
    if !bin.exists() {
        let target = dir.parent().expect("target dir");
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-p", "dataplane", "--bin", "dataplane"]).env("CARGO_TARGET_DIR", target);
        if release {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("running cargo build for the dataplane");
        assert!(st.success(), "building the dataplane binary failed");
    }
    bin
}

struct Dataplane(Child);

impl Drop for Dataplane {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-INT").arg(self.0.id().to_string()).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_pktgen(dir: &Path, tag: &str, extra: &[&str]) -> Summary {
    let json = dir.join(format!("{tag}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_pktgen"))
        .args(["--lcores", "0", "--file-prefix", &format!("smoke-pg-{}", std::process::id())])
        .args(["--client-dev", &format!("net_memif0,role=client,socket={}/l0.sock,id=0", dir.display())])
        .args(["--server-dev", &format!("net_memif1,role=client,socket={}/l1.sock,id=0", dir.display())])
        .args(["--servers", "198.19.0.11-198.19.0.13:8080", "--api"])
        .arg(dir.join("api.sock"))
        .args(["--json"])
        .arg(&json)
        .args(["--progress", "never", "--label", tag])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("running pktgen");
    let log = String::from_utf8_lossy(&out.stderr);
    println!("{log}");
    assert!(out.status.success(), "pktgen {tag} failed ({}):\n{log}", out.status);
    serde_json::from_str(&std::fs::read_to_string(&json).expect("summary written")).expect("summary parses")
}

#[test]
fn pktgen_through_the_dataplane_every_packet_rewritten() {
    if !dpdk::testing::require_root_and_hugepages() {
        return;
    }
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("pktgen-smoke-{id}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let api = dir.join("api.sock");
    let memif =
        |i: u8| format!("net_memif{i},role=server,socket={}/l{i}.sock,id=0,mac=02:00:00:00:0{i}:fe", dir.display());
    let tap = id % 100_000;
    let mut cfg = presets::dataplane(
        &api,
        &format!("smoke-dp-{id}"),
        vec![
            PortConfig::new("client", &memif(0), "198.18.0.1/16", &format!("psc{tap}")),
            PortConfig::new("server", &memif(1), "198.19.0.1/16", &format!("pss{tap}")),
        ],
    );
    if let Some(d) = cfg.dataplane.as_mut() {
        d.flow_capacity = 65536;
        d.mbufs = 8191;
    }
    std::fs::write(dir.join("appliance.toml"), cfg.to_toml()).unwrap();
    let log = std::fs::File::create(dir.join("dataplane.log")).unwrap();
    let child = Command::new(dataplane_bin())
        .arg("--config")
        .arg(dir.join("appliance.toml"))
        .args(["--log", "warn"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting the dataplane");
    let _dp = Dataplane(child);
    let mut client = match Client::connect_wait(&api, Duration::from_secs(20)) {
        Ok(c) => c,
        Err(e) => {
            panic!("dataplane API: {e}\n{}", std::fs::read_to_string(dir.join("dataplane.log")).unwrap_or_default())
        }
    };
    let service = ServiceKey { vip: Ipv4Addr::new(198, 18, 0, 100), proto: Proto::Tcp, vport: 80 };
    for i in 11..=13 {
        let key = BindingKey { service, real: RealServer { rip: Ipv4Addr::new(198, 19, 0, i), rport: 8080 } };
        client.add(key, BindingParams::default()).expect("add binding");
    }

    // TCP both ways: flows opened by SYN, then ACKs, answered by the "real servers".
    let s = run_pktgen(
        &dir,
        "tcp",
        &["--flows", "3000", "--reply", "--rate", "100000", "--duration", "1", "--warmup", "0.2"],
    );
    assert_eq!(s.setup.missing, 0, "every flow opened: {s:?}");
    assert!(s.forward.invalid.is_empty(), "forward rewrites: {:?}", s.forward.invalid);
    let rev = s.reverse.as_ref().expect("reverse direction measured");
    assert!(rev.invalid.is_empty(), "reverse rewrites: {:?}", rev.invalid);
    assert!(s.forward.rx > 50_000 && rev.rx > 50_000, "traffic flowed: fwd {} rev {}", s.forward.rx, rev.rx);
    assert_eq!(s.servers.len(), 3);
    assert!(s.servers.values().all(|&n| n > s.forward.rx / 10), "every real server got its share: {:?}", s.servers);
    // Correctness, not speed: losses would be tx-queue drops on a starved machine.
    assert!(
        s.forward.lost.unsigned_abs() * 100 <= s.forward.tx.max(1),
        "forward lost {} of {}",
        s.forward.lost,
        s.forward.tx
    );

    // UDP service too, and new connections.
    for i in 11..=13 {
        let key = BindingKey {
            service: ServiceKey { proto: Proto::Udp, ..service },
            real: RealServer { rip: Ipv4Addr::new(198, 19, 0, i), rport: 8080 },
        };
        client.add(key, BindingParams::default()).expect("add udp binding");
    }
    let s = run_pktgen(
        &dir,
        "udp",
        &[
            "--proto",
            "udp",
            "--flows",
            "500",
            "--frame-size",
            "512",
            "--reply",
            "--rate",
            "50000",
            "--duration",
            "0.5",
            "--warmup",
            "0.1",
        ],
    );
    assert!(s.forward.invalid.is_empty() && s.reverse.as_ref().unwrap().invalid.is_empty(), "{s:?}");
    assert!(s.forward.rx > 10_000);
    let s = run_pktgen(&dir, "syn", &["--pattern", "syn", "--rate", "50000", "--duration", "0.5", "--warmup", "0.1"]);
    assert!(s.forward.invalid.is_empty(), "{:?}", s.forward.invalid);
    assert!(s.new_conn_per_s > 10_000.0, "new connections {}", s.new_conn_per_s);
    let _ = std::fs::remove_dir_all(&dir);
}
