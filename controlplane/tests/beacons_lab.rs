//! Beacons, health checks, election and rolling restart with real processes in a private lab:
//! the dataplane (DPDK, af_packet ports, taps in the root netns), controlplanes in the root
//! netns, `acm-agent` sidecars beside nginx in `rs1..rs3`, curl / hey in `client`.
//!
//! One test walks the scenarios in order on one lab (a lab and an EAL take seconds to start);
//! each step says what it checks and prints what it measured. Needs root, hugepages, network
//! namespaces, `hey`, and the `dataplane` binary in the same target directory (`make test`
//! builds the workspace): without them it is skipped on a laptop and FAILS under CI=true.

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acm::{BindingInfo, BindingKey, BindingState};
use common::*;
use labtest::{Lab, Role};

const KEY: &str = "lab-secret";
const GROUP: &str = "239.255.77.77";

fn start_dataplane(lab: &Lab, bin: &Path, sock: &Path) -> Proc {
    let (child, log) = labtest::spawn_dataplane(lab, bin, sock, Some(labtest::short_timeouts()));
    let dp = Proc { child, log, name: "dataplane" };
    if let Err(e) = controlplane::drivers::dataplane::wait_ready(sock, Duration::from_secs(60)) {
        panic!("dataplane did not come up: {e}\n{}", dp.log_tail());
    }
    dp
}

/// The controlplane's extra config: health-gated adds, beacons on the lab's tap, election.
fn acm_tables(lab: &Lab, port: u16, id: u64) -> String {
    format!(
        "add_state = \"testing\"\n\n[beacon]\nport = {port}\ngroups = [\"{GROUP}\"]\ninterfaces = [\"{p}t1\"]\n\
         keys = {{ local = \"{KEY}\" }}\n\n[health]\ncheck = \"l4\"\ninterval_ms = 300\ntimeout_ms = 250\nhold_down_ms = 3000\ninterface = \"{p}t1\"\n\n\
         [election]\nid = {id}\ninterval_ms = 300\n",
        p = lab.prefix()
    )
}

fn dp_list(sock: &Path) -> Vec<BindingInfo> {
    switch_api::client::Client::connect(sock).and_then(|mut c| c.list()).unwrap_or_default()
}

fn cm_list(socket: &Path) -> Vec<BindingInfo> {
    controlplane::api::client::Client::connect(socket).and_then(|mut c| c.list()).unwrap_or_default()
}

fn cm_active(socket: &Path) -> Option<bool> {
    controlplane::api::client::Client::connect(socket).and_then(|mut c| c.status()).ok().map(|s| s.active)
}

fn key(rs: u8) -> BindingKey {
    BindingKey { service: "10.0.0.100:80".parse().unwrap(), real: format!("10.0.1.{}:80", 10 + rs).parse().unwrap() }
}

fn on_switch(dp: &Path, rs: u8) -> bool {
    dp_list(dp).iter().any(|b| b.key == key(rs) && b.state == BindingState::Active)
}

/// Starts acm-agent in rs`i` for VIP:80 -> rs`i`:80 (with a local check when `check`).
fn agent(lab: &Lab, port: u16, i: u8, check: bool) -> Child {
    let ns = lab.netns(Role::Rs(i)).unwrap();
    let log = lab.state_dir().join(format!("agent-rs{i}.log"));
    let mut args = vec![
        "netns".to_string(),
        "exec".into(),
        ns,
        env!("CARGO_BIN_EXE_acm-agent").into(),
        "run".into(),
        "--key".into(),
        KEY.into(),
        "--profile".into(),
        "local".into(),
        "--to".into(),
        format!("{GROUP}:{port}"),
        "--server-ip".into(),
        labtest::rs_addr(i),
        "--bind".into(),
        "10.0.0.100:80=80".into(),
        "--interval".into(),
        "1s".into(),
    ];
    if check {
        args.extend(["--check".into(), "tcp".into(), "--check-interval".into(), "50ms".into()]);
    }
    Command::new("ip")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start acm-agent")
}

/// nginx of rs`i`: (master pid, worker pids).
fn nginx_pids(lab: &Lab, i: u8) -> Vec<String> {
    let dir = lab.state_dir().join(format!("rs{i}"));
    let master = std::fs::read_to_string(dir.join("nginx.pid")).unwrap_or_default().trim().to_string();
    if master.is_empty() {
        return vec![];
    }
    let out = Command::new("ps").args(["-o", "pid=", "--ppid", &master]).output().unwrap();
    let mut pids = vec![master];
    pids.extend(String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from));
    pids
}

fn start_nginx(lab: &Lab, i: u8) {
    let dir = lab.state_dir().join(format!("rs{i}"));
    let d = dir.to_str().unwrap();
    let conf = format!("{d}/nginx.conf");
    let err = format!("{d}/error.log");
    lab.run_in(Role::Rs(i), "nginx", &["-q", "-p", d, "-e", &err, "-c", &conf]).expect("restart nginx");
}

/// A shell script that restarts the nginx of the real server at $1 gracefully.
fn restart_script(lab: &Lab) -> PathBuf {
    let path = lab.state_dir().join("restart-rs.sh");
    let text = format!(
        r#"#!/bin/sh
set -eu
i=$(( ${{1##*.}} - 10 )); dir={state}/rs$i
pid=$(cat "$dir/nginx.pid")
kill -QUIT "$pid"
n=0
while st=$(ps -o stat= -p "$pid" 2>/dev/null) && [ "${{st#Z}}" = "$st" ]; do
  n=$((n + 1)); [ $n -lt 200 ] || {{ echo "nginx $pid did not stop" >&2; exit 1; }}
  sleep 0.05
done
sleep 0.3
ip netns exec {p}-rs$i nginx -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
"#,
        state = lab.state_dir().display(),
        p = lab.prefix()
    );
    std::fs::write(&path, text).unwrap();
    Command::new("chmod").args(["+x", path.to_str().unwrap()]).status().unwrap();
    path
}

fn time_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn bodies(lab: &Lab, n: usize) -> Vec<String> {
    let script = format!("for i in $(seq {n}); do curl -s -m 3 http://10.0.0.100/ || echo FAIL; done");
    let out = lab.run_in(Role::Client, "bash", &["-c", &script]).unwrap();
    out.lines().map(String::from).collect()
}

fn kill_children(children: &mut Vec<Child>) {
    for c in children.iter_mut() {
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
    children.clear();
}

#[test]
fn beacons_health_election_and_rolling_restart_in_the_lab() {
    if !labtest::require_dpdk_prereqs() {
        return;
    }
    let Some(dp_bin) = labtest::dataplane_bin() else {
        labtest::skip("the dataplane binary is not built (make build)");
        return;
    };
    if !labtest::have_program("hey") {
        labtest::skip("hey not found (run make setup)");
        return;
    }
    let lab = Lab::up_unique().expect("lab up");
    let dp_sock = lab.state_dir().join("dp.sock");
    let _dp = start_dataplane(&lab, &dp_bin, &dp_sock);
    let port = UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let switch = format!("[[switch]]\nname = \"local\"\ndriver = \"dataplane\"\nsocket = \"{}\"\n", dp_sock.display());
    let dir1 = lab.state_dir().join("cm1");
    std::fs::create_dir_all(&dir1).unwrap();
    let f1 = write_config(&dir1, &switch, &acm_tables(&lab, port, 1));
    let mut cm1 = start_controlplane(&f1);
    wait_until("CM 1 wins the election alone", Duration::from_secs(10), || cm_active(&f1.socket) == Some(true));
    // Multicast from the real servers goes out of their veth.
    for i in 1..=3 {
        let _ =
            lab.run_in(Role::Rs(i), "ip", &["route", "add", "224.0.0.0/4", "dev", &format!("{}r{i}", lab.prefix())]);
    }

    // 1. Services beaconing through acm-agent appear in List (health-checked: Testing, then
    //    Active) and receive traffic. rs1 has no local check; rs2 and rs3 check every 50 ms.
    let mut agents = vec![agent(&lab, port, 1, false), agent(&lab, port, 2, true), agent(&lab, port, 3, true)];
    let t = time_until(Duration::from_secs(15), || (1..=3).all(|i| on_switch(&dp_sock, i))).unwrap_or_else(|| {
        panic!("agents' bindings not on the switch: CM {:?}\n{}", cm_list(&f1.socket), cm1.log_tail())
    });
    println!("1. three agents registered, health-checked and forwarding after {t:?}");
    assert!(cm_list(&f1.socket).iter().all(|b| b.state == BindingState::Active));
    let got = bodies(&lab, 60);
    assert!(!got.iter().any(|l| l == "FAIL"), "failed requests: {got:?}");
    for rs in ["rs1", "rs2", "rs3"] {
        assert!(got.iter().any(|l| l == rs), "{rs} never answered: {got:?}");
    }

    // 2. kill -9 of a server's HTTP process. rs1 (no local check): the CM's TCP check (300 ms)
    //    finds it, target 1 s. rs2: its agent's check flags it down, target 200 ms.
    let mut times = Vec::new();
    for (i, target) in [(1u8, Duration::from_secs(1)), (2, Duration::from_millis(200))] {
        let pids = nginx_pids(&lab, i);
        assert!(pids.len() >= 2, "nginx of rs{i}: {pids:?}");
        Command::new("kill").arg("-9").args(&pids).status().unwrap();
        let took =
            time_until(Duration::from_secs(5), || !on_switch(&dp_sock, i)).expect("killed server still forwarded to");
        let how = if i == 1 { "CM health check" } else { "agent's local check (client module)" };
        println!("2. kill -9 of nginx on rs{i}: out of the forwarding table in {took:?} ({how}; target {target:?})");
        times.push((i, took, target));
        let st = cm_list(&f1.socket).iter().find(|b| b.key == key(i)).map(|b| b.state);
        assert_eq!(st, Some(BindingState::Failed), "listed as failed");
        let got = bodies(&lab, 10);
        assert!(!got.iter().any(|l| l == "FAIL" || l == &format!("rs{i}")), "{got:?}");
        start_nginx(&lab, i);
        let back = time_until(Duration::from_secs(10), || on_switch(&dp_sock, i)).expect("restarted server not back");
        println!("   rs{i} back in the forwarding table {back:?} after nginx restarted");
    }
    // A client module reports a peer failed (application-assisted detection).
    let t_report = Instant::now();
    let st = lab
        .run_in(
            Role::Rs(1),
            env!("CARGO_BIN_EXE_acm-agent"),
            &[
                "report",
                "--key",
                KEY,
                "--profile",
                "local",
                "--to",
                &format!("{GROUP}:{port}"),
                "--server-ip",
                "10.0.1.11",
                "--real",
                "10.0.1.13:80",
            ],
        )
        .expect("acm-agent report");
    let _ = st;
    time_until(Duration::from_secs(5), || !on_switch(&dp_sock, 3)).expect("reported server still forwarded to");
    let took = t_report.elapsed();
    println!("2. report of rs3 by rs1's client module: out of the forwarding table in {took:?} (target 200 ms, incl. starting acm-agent)");
    times.push((3, took, Duration::from_millis(200)));
    let back = time_until(Duration::from_secs(10), || on_switch(&dp_sock, 3))
        .expect("reported server not back after the hold-down");
    println!("   rs3 back {back:?} after the report (hold-down 3 s, then health checks)");
    for (i, took, target) in &times {
        assert!(took <= target, "rs{i}: {took:?} > {target:?}");
    }

    // 3. Two CMs: CM 1 active, CM 2 standby with the same cache; kill -9 CM 1 and CM 2 takes
    //    over with every binding.
    let dir2 = lab.state_dir().join("cm2");
    std::fs::create_dir_all(&dir2).unwrap();
    let f2 = write_config(&dir2, &switch, &acm_tables(&lab, port, 2));
    let mut cm2 = start_controlplane(&f2);
    wait_until("CM 2 learns every binding from beacons", Duration::from_secs(10), || {
        let l = cm_list(&f2.socket);
        (1..=3).all(|i| l.iter().any(|b| b.key == key(i) && b.state == BindingState::Active))
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!((cm_active(&f1.socket), cm_active(&f2.socket)), (Some(true), Some(false)), "one active CM");
    Command::new("kill").args(["-9", &cm1.child.id().to_string()]).status().unwrap();
    let _ = cm1.child.wait();
    let took =
        time_until(Duration::from_secs(10), || cm_active(&f2.socket) == Some(true)).expect("CM 2 did not take over");
    println!("3. CM 1 killed: CM 2 active after {took:?} (heartbeat 300 ms, 3 misses)");
    let l = cm_list(&f2.socket);
    assert!((1..=3).all(|i| l.iter().any(|b| b.key == key(i))), "a binding was lost: {l:?}");
    wait_until("every binding active on the switch under CM 2", Duration::from_secs(5), || {
        let l = cm_list(&f2.socket);
        (1..=3).all(|i| on_switch(&dp_sock, i) && l.iter().any(|b| b.key == key(i) && b.state == BindingState::Active))
    });
    let got = bodies(&lab, 30);
    assert!(!got.iter().any(|l| l == "FAIL"), "{got:?}");

    // 4. Rolling restart of all three servers under steady HTTP load: zero failed requests.
    let script = restart_script(&lab);
    let load = lab
        .spawn_in(
            Role::Client,
            "hey",
            &["-z", "25s", "-c", "8", "-q", "40", "-disable-keepalive", "-t", "5", "http://10.0.0.100/"],
        )
        .expect("start hey");
    std::thread::sleep(Duration::from_secs(2));
    let each = format!("{} {{server}}", script.display());
    let t0 = Instant::now();
    let out = acmctl_ok(
        &f2.socket,
        &[
            "rolling-restart",
            "--vip",
            "10.0.0.100:80",
            "--each",
            &each,
            "--drain-timeout",
            "20s",
            "--health-timeout",
            "20s",
            "--probe-interface",
            &format!("{}t1", lab.prefix()),
        ],
    );
    println!("4. rolling restart took {:?}:\n{out}", t0.elapsed());
    let load = load.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&load.stdout);
    println!(
        "hey:\n{}",
        report
            .lines()
            .filter(|l| l.contains("Requests/sec") || l.contains('[') || l.contains("Error"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let ok: u64 = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("[200]"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(ok > 1000, "too little load went through: {report}");
    assert!(!report.contains("Error distribution"), "failed requests during the rolling restart:\n{report}");
    let codes = report.lines().filter(|l| l.trim_start().starts_with('[')).count();
    assert_eq!(codes, 1, "only 200s: {report}");
    assert!((1..=3).all(|i| on_switch(&dp_sock, i)));
    println!("4. {ok} requests during the rolling restart, none failed");

    kill_children(&mut agents);
    cm2.stop();
}
