//! The controlplane with a real dataplane in a private lab: real processes, real TCP clients
//! (curl in netns `client`), real HTTP servers (nginx in `rs1..rs3`), Debian's `telnet` driven
//! by `expect`.
//!
//! One test walks the scenarios in order on one lab (a lab and an EAL take seconds to start);
//! each step says what it checks. Needs root, hugepages and network namespaces, and the
//! `dataplane` binary built in the same target directory (`make test` builds the workspace):
//! without them it is skipped on a laptop and FAILS under CI=true.

mod common;

use std::path::Path;
use std::time::Duration;

use acm::{BindingInfo, BindingState};
use common::*;
use labtest::{Lab, Role};

fn start_dataplane(lab: &Lab, bin: &Path, sock: &Path) -> Proc {
    let (child, log) = labtest::spawn_dataplane(lab, bin, sock, None);
    let dp = Proc { child, log, name: "dataplane" };
    if let Err(e) = controlplane::drivers::dataplane::wait_ready(sock, Duration::from_secs(60)) {
        panic!("dataplane did not come up: {e}\n{}", dp.log_tail());
    }
    dp
}

fn list_json(socket: &Path) -> Vec<BindingInfo> {
    serde_json::from_str(&acmctl_ok(socket, &["list", "--json"])).expect("acmctl list --json")
}

fn state_of(list: &[BindingInfo], rip: &str) -> Option<BindingState> {
    list.iter().find(|b| b.key.real.rip.to_string() == rip).map(|b| b.state)
}

fn dp_list(sock: &Path) -> Vec<BindingInfo> {
    switch_api::client::Client::connect(sock).and_then(|mut c| c.list()).unwrap_or_default()
}

fn body_of(lab: &Lab) -> Result<String, String> {
    lab.curl("http://10.0.0.100/", Duration::from_secs(2)).map(|b| b.trim().to_string()).map_err(|e| e.to_string())
}

/// The telnet session of the issue, through Debian's telnet client driven by expect.
fn telnet_script(port: u16) -> String {
    format!(
        r#"
set timeout 20
log_user 1
spawn telnet 127.0.0.1 {port}
expect "Login Name:"
send "admin\r"
expect "Password:"
send "acm-lab\r"
expect "ServerIron>"
send "enable\r"
expect "Password:"
send "acm-lab\r"
expect "ServerIron#"
send "configure terminal\r"
expect "(config)#"
send "server real rs4 10.0.1.14\r"
expect "(config-rs-rs4)#"
send "port http\r"
expect "(config-rs-rs4)#"
send "exit\r"
expect "(config)#"
send "server real rs1 10.0.1.11\r"
expect "(config-rs-rs1)#"
send "port http\r"
expect "(config-rs-rs1)#"
send "exit\r"
expect "(config)#"
send "server virtual www 10.0.0.100\r"
expect "(config-vs-www)#"
send "port http\r"
expect "(config-vs-www)#"
send "bind http rs4 http\r"
expect "(config-vs-www)#"
send "end\r"
expect "ServerIron#"
send "show server bind\r"
expect "ServerIron#"
send "sh ser bi\r"
expect "ServerIron#"
send "configure terminal\r"
expect "(config)#"
send "server virtual www 10.0.0.100\r"
expect "(config-vs-www)#"
send "bind http rs1 http\r"
expect "(config-vs-www)#"
send "no bind http rs4 http\r"
expect "(config-vs-www)#"
send "end\r"
expect "ServerIron#"
send "write memory\r"
expect "ServerIron#"
send "exit\r"
expect eof
"#
    )
}

/// The block of `show server bind` output that follows the command's echo.
fn bind_block(out: &str, cmd: &str) -> String {
    let start = out.find(&format!("{cmd}\r\n")).map(|i| i + cmd.len() + 2).unwrap_or(0);
    let rest = &out[start..];
    let end = rest.find("ServerIron#").unwrap_or(rest.len());
    rest[..end].replace('\r', "")
}

#[test]
fn controlplane_in_the_lab() {
    if !labtest::require_dpdk_prereqs() {
        return;
    }
    for p in ["expect", "telnet"] {
        if !labtest::have_program(p) && !labtest::skip(&format!("{p} not found (run make setup)")) {
            return;
        }
    }
    let Some(dp_bin) = labtest::dataplane_bin() else {
        labtest::skip("dataplane binary not built next to this test (cargo build --release --workspace)");
        return;
    };
    let lab = Lab::up_unique().expect("lab up");
    let dp_sock = lab.state_dir().join("dp.sock");
    let mut dp = start_dataplane(&lab, &dp_bin, &dp_sock);
    // Telnet also on port 23 of port 0's address, through the exception path (the port's tap).
    let files = write_config(
        lab.state_dir(),
        &format!("[[switch]]\nname = \"local\"\ndriver = \"dataplane\"\nsocket = \"{}\"\n", dp_sock.display()),
        &format!("[[telnet.extra]]\naddress = \"10.0.0.1:23\"\ninterface = \"{}t0\"\n", lab.prefix()),
    );
    let mut cp = start_controlplane(&files);
    let s = files.socket.clone();

    eprintln!("lab step 1");
    // 1. acmctl add: the bindings reach the dataplane; the VIP answers.
    for i in 1..=3 {
        acmctl_ok(&s, &["add", "10.0.0.100:80", &format!("10.0.1.1{i}:80")]);
    }
    let l = list_json(&s);
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(l.iter().all(|b| b.state == BindingState::Active), "{l:?}");
    assert_eq!(dp_list(&dp_sock).len(), 3, "the dataplane holds the three bindings");
    wait_until("the VIP answers", Duration::from_secs(15), || body_of(&lab).is_ok());
    // A redundant add is filtered: nothing reaches the switch.
    let out = acmctl_ok(&s, &["add", "10.0.0.100:80", "10.0.1.11:80", "--json"]);
    let o: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(o["changed"], false, "{out}");
    assert!(o["switches"].as_array().unwrap().is_empty(), "{out}");

    eprintln!("lab step 2");
    // 2. acmctl remove drains rs3: the CM shows it draining (or gone once drained), the VIP
    //    keeps answering from rs1/rs2 only.
    acmctl_ok(&s, &["remove", "10.0.0.100:80", "10.0.1.13:80"]);
    let st = state_of(&list_json(&s), "10.0.1.13");
    assert!(matches!(st, Some(BindingState::Draining) | None), "{st:?}");
    for _ in 0..6 {
        let b = body_of(&lab).expect("VIP answers");
        assert!(b == "rs1" || b == "rs2", "drained rs3 got a new connection: {b}");
    }
    // Bad input is answered, not fatal.
    let (ok, msg) = acmctl(&s, &["remove", "10.0.0.200:80", "10.0.1.11:80"]);
    assert!(!ok && msg.contains("unknown virtual service"), "{msg}");

    eprintln!("lab step 3");
    // 3. Latency: every primitive measured, per switch.
    let lat: serde_json::Value = serde_json::from_str(&acmctl_ok(&s, &["latency", "--json"])).unwrap();
    let add = lat.as_array().unwrap().iter().find(|r| r["primitive"] == "add" && r["switch"] == "local");
    assert!(add.is_some_and(|r| r["count"].as_u64() >= Some(3)), "{lat}");

    eprintln!("lab step 4");
    // 4. The dataplane restarts and forgets everything; the CM's sync gives its bindings back.
    dp.stop();
    drop(dp);
    let mut dp2 = start_dataplane(&lab, &dp_bin, &dp_sock);
    wait_until("the sync re-adds rs1 and rs2 to the restarted dataplane", Duration::from_secs(15), || {
        let l = dp_list(&dp_sock);
        l.iter().filter(|b| b.state == BindingState::Active).count() == 2
    });
    wait_until("the VIP answers after the dataplane restart", Duration::from_secs(15), || body_of(&lab).is_ok());
    assert!(dp_list(&dp_sock).iter().all(|b| b.key.real.rip.to_string() != "10.0.1.13"), "drained rs3 came back");

    eprintln!("lab step 5");
    // 5. The telnet CLI with the real telnet client. Start from a VIP with no bindings so the
    //    CLI's binds decide who answers.
    for i in 1..=2 {
        acmctl_ok(&s, &["force-remove", "10.0.0.100:80", &format!("10.0.1.1{i}:80")]);
    }
    let (code, out) = expect(&telnet_script(files.telnet));
    assert_eq!(code, 0, "telnet session failed:\n{out}");
    let full = bind_block(&out, "show server bind");
    let short = bind_block(&out, "sh ser bi");
    assert!(
        full.contains("Virtual server: www") && full.contains("rs4: 10.0.1.14, http"),
        "show server bind:\n{full}\n---\n{out}"
    );
    assert_eq!(full, short, "sh ser bi differs from show server bind");
    // rs1 bound through the CLI, rs4 drained: the client reaches rs1.
    wait_until("the VIP answers from rs1", Duration::from_secs(10), || body_of(&lab).as_deref() == Ok("rs1"));
    let st = std::fs::read_to_string(&files.startup).expect("write memory wrote the startup-config");
    assert!(st.contains("server real rs4 10.0.1.14") && st.contains("bind http rs1 http"), "{st}");

    eprintln!("lab step 6");
    // 6. Restart the controlplane: the startup-config brings the configuration back.
    cp.stop();
    drop(cp);
    let _cp = start_controlplane(&files);
    let out = acmctl_ok(&s, &["cli", "show server bind"]);
    assert!(out.contains("rs1: 10.0.1.11, http (ACT)"), "{out}");
    let rc = acmctl_ok(&s, &["cli", "show running-config"]);
    assert!(rc.contains("server real rs4 10.0.1.14"), "{rc}");
    assert_eq!(state_of(&list_json(&s), "10.0.1.11"), Some(BindingState::Active));
    assert_eq!(body_of(&lab).as_deref(), Ok("rs1"));

    eprintln!("lab step 7");
    // 7. Telnet from the client's network to the appliance's port address, port 23 (exception
    //    path): a live download shows in `show server sessions`, the session in `show telnet`.
    let mut dl = lab
        .spawn_in(Role::Client, "curl", &["-s", "--limit-rate", "1M", "-o", "/dev/null", "http://10.0.0.100/big.bin"])
        .unwrap();
    let mut flow = None;
    wait_until("the download is in the dataplane's flow table", Duration::from_secs(10), || {
        let mut c = switch_api::client::Client::connect(&dp_sock).unwrap();
        flow = c.sessions(None, 100).unwrap().sessions.into_iter().find(|f| f.state.abbrev() == "EST");
        flow.is_some()
    });
    let flow = flow.unwrap();
    let (code, out) = expect(&port_telnet_script(&lab));
    assert_eq!(code, 0, "telnet to 10.0.0.1:23 from the client's netns failed:\n{out}");
    let row = out
        .lines()
        .find(|l| l.contains(&flow.client.to_string()))
        .unwrap_or_else(|| panic!("show server sessions lacks {}:\n{out}", flow.client));
    assert!(row.starts_with("TCP") && row.contains("10.0.0.100:80") && row.contains("10.0.1.11:80"), "{row}");
    assert!(row.contains(" EST "), "{row}");
    assert!(out.contains("Telnet server") && out.contains("Bad IAC"), "show telnet:\n{out}");
    let _ = dl.kill();
    let _ = dl.wait();
    // A restarted dataplane makes its taps anew: the listener follows.
    dp2.stop();
    drop(dp2);
    let _dp3 = start_dataplane(&lab, &dp_bin, &dp_sock);
    wait_until("telnet on 10.0.0.1:23 answers after the dataplane restart", Duration::from_secs(20), || {
        let (code, out) = expect(&port_telnet_script(&lab));
        code == 0 && out.contains("Telnet server")
    });
    let _ = lab.run_in(Role::Client, "true", &[]);
}

/// Logs in over telnet from netns client to the port address 10.0.0.1, port 23, and shows the
/// flow table and the telnet counters.
fn port_telnet_script(lab: &Lab) -> String {
    format!(
        r#"
set timeout 10
log_user 1
spawn ip netns exec {p}-client telnet 10.0.0.1 23
expect {{
  "Login Name:" {{}}
  timeout {{ exit 2 }}
}}
send "admin\r"
expect "Password:"
send "acm-lab\r"
expect "ServerIron>"
send "skip-page-display\r"
expect "ServerIron>"
send "show server sessions\r"
expect "ServerIron>"
send "show telnet\r"
expect "ServerIron>"
send "exit\r"
expect eof
"#,
        p = lab.prefix()
    )
}
