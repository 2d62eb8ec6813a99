//! End to end through the real dataplane in a private lab: real TCP clients (curl) in netns
//! `client`, real HTTP servers (nginx) in `rs1..rs3`, DPDK af_packet ports in between.
//!
//! One test walks every scenario in order on one lab and one dataplane (a lab and an EAL
//! take seconds to start); each step says what it checks. Needs root, hugepages and
//! network namespaces: without them it is skipped on a laptop and FAILS under CI=true.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use acm::{BindingKey, BindingParams, DropFraction, ServiceKey};
use dataplane::api::client::Client;
use labtest::{Lab, Role};

struct Dataplane {
    child: Child,
    log: PathBuf,
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
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
}

impl Dataplane {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

fn start_dataplane(lab: &Lab, sock: &Path) -> Dataplane {
    let timeouts = Some(labtest::short_timeouts());
    let (child, log) = labtest::spawn_dataplane(lab, Path::new(env!("CARGO_BIN_EXE_dataplane")), sock, timeouts);
    Dataplane { child, log }
}

fn service() -> ServiceKey {
    "10.0.0.100:80".parse().unwrap()
}

fn binding(i: u8) -> BindingKey {
    BindingKey { service: service(), real: format!("10.0.1.{}:80", 10 + i).parse().unwrap() }
}

/// Runs a shell script in the client netns and returns (exit code, stdout).
fn client_sh(lab: &Lab, script: &str) -> (i32, String) {
    let out = lab.exec_in(Role::Client, "bash", &["-c", script]).unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `n` sequential `Connection: close` requests to the VIP, each from the first of `ports`
/// that can be bound, so that the same source port is reused at once. Unlike curl, which
/// closes first once it has the whole body (the client's port then sits in TIME_WAIT for
/// 60 s and the next bind fails), this client reads to the server's FIN, so the server
/// closes first. 10 ms apart, so that a churn runs beside them. Prints each response's body, or `FAIL <reason>`.
fn reusing_requests(lab: &Lab, ports: &[u16], n: usize) -> String {
    let script = format!(
        r#"
import socket, time
ports, n = {ports:?}, {n}
for _ in range(n):
    time.sleep(0.01)
    err = None
    for port in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(3)
        try:
            s.bind(("10.0.0.2", port))
            s.connect(("10.0.0.100", 80))
            s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            head, _, body = data.partition(b"\r\n\r\n")
            print(body.decode().strip() if head.startswith(b"HTTP/1.1 200") else "FAIL status " + head[:40].decode())
            err = None
            break
        except OSError as e:
            s.close()
            err = e
    if err is not None:
        print("FAIL", port, err)
"#
    );
    let out = lab.exec_in(Role::Client, "python3", &["-c", &script]).unwrap();
    assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `curl --limit-rate RATE http://VIP/big.bin | sha256sum` in the background;
/// prints the exit status of curl and the digest.
fn slow_download(lab: &Lab, rate: &str) -> Child {
    let script = format!(
        "curl -sS --limit-rate {rate} --max-time 60 http://10.0.0.100/big.bin | sha256sum; echo \"curl=${{PIPESTATUS[0]}}\""
    );
    lab.spawn_in(Role::Client, "bash", &["-c", &script]).unwrap()
}

fn finish(mut child: Child) -> (i32, String) {
    let status = child.wait().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let curl = out.lines().find_map(|l| l.strip_prefix("curl=")).and_then(|c| c.parse().ok()).unwrap_or(-1);
    assert!(status.success() || curl != 0, "download script failed: {out}");
    let sum = out.split_whitespace().next().unwrap_or("").to_string();
    (curl, sum)
}

/// The client's local port of its (only) established connection to the VIP, once there is one.
fn client_download_port(lab: &Lab) -> u16 {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let out = lab.run_in(Role::Client, "ss", &["-Htn", "state", "established", "( dport = :80 )"]).unwrap();
        // Columns: Recv-Q Send-Q Local:Port Peer:Port
        if let Some(port) = out
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .filter_map(|local| local.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
            .next()
        {
            return port;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the download never established a connection to the VIP");
}

/// Which real server holds the client's download connection. Matched by the client's port:
/// a server may still hold a stale connection of an earlier, force-removed download (only the
/// client is reset), which must not be taken for this one.
fn server_of_download(lab: &Lab) -> u8 {
    let port = client_download_port(lab);
    let peer = format!("10.0.0.2:{port}");
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        for i in 1..=3u8 {
            let out = lab.run_in(Role::Rs(i), "ss", &["-Htn", "state", "established", "( sport = :80 )"]).unwrap();
            if out.split_whitespace().any(|w| w == peer) {
                return i;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no real server has the download's connection ({peer})");
}

fn body_of(lab: &Lab) -> Result<String, String> {
    lab.curl("http://10.0.0.100/", Duration::from_secs(3)).map(|b| b.trim().to_string()).map_err(|e| e.to_string())
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting until {what}");
}

/// Raw frames for the malformed burst: (name, hex bytes), sent to the port's MAC.
const MALFORMED_SENDER: &str = r#"
import socket, struct, sys, random, time
iface, dst = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', ''))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
src = bytes.fromhex('02aabbccddee')
eth = dst + src
ip_ok = bytes.fromhex('4500002800004000400600000a0000020a000064')
def csum(h):
    t = sum(struct.unpack('!%dH' % (len(h) // 2), h))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return struct.pack('!H', ~t & 0xffff)
ip = ip_ok[:10] + csum(ip_ok) + ip_ok[12:]
frames = [
    eth + b'\x08\x00',                                      # IPv4 ethertype, no header
    eth + b'\x08\x00' + ip[:12],                          # truncated IPv4
    eth + b'\x08\x00' + b'\x43' + ip[1:],                 # IHL 3
    eth + b'\x08\x00' + b'\x4f' + ip[1:],                 # IHL 15 beyond the frame
    eth + b'\x08\x00' + ip[:2] + b'\xff\xff' + ip[4:],    # total length beyond the frame
    eth + b'\x08\x00' + ip[:10] + b'\x00\x00' + ip[12:],  # bad header checksum
    eth + b'\x08\x00' + ip + b'\x00' * 10,                # TCP header truncated
    eth + b'\x08\x06' + b'\x00' * 10,                     # truncated ARP
    eth + b'\x81\x00\x00',                                # truncated VLAN tag
    eth + b'\x08\x00' + b'\x65' + ip[1:] + b'\x00' * 20,  # IP version 6 in an IPv4 frame
]
random.seed(7)
n = 0
for i in range(int(sys.argv[3])):
    f = frames[i % len(frames)] if i % 11 else eth + bytes(random.getrandbits(8) for _ in range(random.randint(0, 80)))
    s.send(f.ljust(14, b'\x00') if i % 11 == 0 else f)
    n += 1
    if n % 32 == 0:
        time.sleep(0.002)  # paced: this checks parsing, not how deep the port's rx ring is
print(n)
"#;

#[test]
fn dataplane_in_the_lab() {
    if !labtest::require_dpdk_prereqs() {
        return;
    }
    let lab = Lab::up_unique().expect("lab up");
    let sock = lab.state_dir().join("dp.sock");
    let dp = start_dataplane(&lab, &sock);
    let mut api = match Client::connect_wait(&sock, Duration::from_secs(60)) {
        Ok(c) => c,
        Err(e) => panic!("dataplane did not come up: {e}\n{}", dp.log_tail()),
    };
    api.ping().expect("ping");
    for i in 1..=3 {
        api.add(binding(i), BindingParams::default()).expect("add");
    }
    wait_until("the VIP answers", Duration::from_secs(15), || body_of(&lab).is_ok());

    // ARP for the VIP and ping of the VIP are answered by the dataplane.
    lab.ping_in(Role::Client, "10.0.0.100", 3).expect("ping of the VIP");
    let neigh = lab.run_in(Role::Client, "ip", &["neigh", "show", "10.0.0.100"]).unwrap();
    let port0_mac = lab.env("PORT0_MAC").unwrap().to_lowercase();
    assert!(neigh.contains(&port0_mac), "ARP for the VIP not answered with the port MAC: {neigh}");
    lab.ping_in(Role::Client, "10.0.0.1", 2).expect("ping of the port address");

    // 300 requests reach all of rs1..rs3, none fails.
    let (code, out) = client_sh(&lab, "for i in $(seq 300); do curl -s -m 3 http://10.0.0.100/ || echo FAIL; done");
    assert_eq!(code, 0);
    assert!(!out.contains("FAIL"), "failed requests: {}", out.matches("FAIL").count());
    for rs in ["rs1", "rs2", "rs3"] {
        assert!(out.lines().any(|l| l == rs), "{rs} never answered");
    }
    assert_eq!(out.lines().count(), 300);

    // Remove = drain: a large download keeps going intact; new connections avoid the server.
    let big_sha = lab.big_sha256().to_string();
    let dl = slow_download(&lab, "2M");
    let s = server_of_download(&lab);
    // The live download is in the flow listing, through the API and through dpctl.
    let port = client_download_port(&lab);
    let client = format!("10.0.0.2:{port}");
    let real = format!("10.0.1.{}:80", 10 + s);
    let sessions = api.sessions(Some(service()), 1000).expect("sessions");
    assert_eq!((sessions.workers, sessions.answered), (1, 1));
    let flow = sessions.sessions.iter().find(|f| f.client.to_string() == client).expect("download in Sessions");
    assert_eq!((flow.vip.to_string(), flow.real.to_string()), ("10.0.0.100:80".into(), real.clone()));
    assert_eq!((flow.proto, flow.state, flow.snat), (acm::Proto::Tcp, dataplane::api::SessionState::Established, None));
    assert!(flow.idle_ms < 5_000 && flow.expires_ms > 0, "{flow:?}");
    let other: ServiceKey = "10.0.0.100:81".parse().unwrap();
    assert_eq!(api.sessions(Some(other), 10).unwrap().total, 0);
    let out = Command::new(env!("CARGO_BIN_EXE_dpctl"))
        .args(["-s", sock.to_str().unwrap(), "sessions", "--limit", "5000"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "dpctl sessions: {}", String::from_utf8_lossy(&out.stderr));
    let row =
        text.lines().find(|l| l.contains(&client)).unwrap_or_else(|| panic!("dpctl sessions lacks {client}:\n{text}"));
    assert!(row.contains(&real) && row.contains("EST") && row.contains("10.0.0.100:80"), "{row}");
    let ack = api.remove(binding(s)).expect("remove");
    assert!(ack.changed);
    let listed = api.list().unwrap();
    let d = listed.iter().find(|b| b.key == binding(s)).expect("draining binding listed");
    assert_eq!(d.state, acm::BindingState::Draining);
    assert!(d.counters.active_flows >= 1);
    for _ in 0..30 {
        let b = body_of(&lab).expect("new connection during drain");
        assert_ne!(b, format!("rs{s}"), "a new connection reached the draining server");
    }
    let (curl, sum) = finish(dl);
    assert_eq!((curl, sum.as_str()), (0, big_sha.as_str()), "download through a draining server");
    wait_until("the drained binding is gone", Duration::from_secs(10), || {
        api.list().unwrap().iter().all(|b| b.key != binding(s))
    });
    api.add(binding(s), BindingParams::default()).expect("re-add");

    // Force Remove resets the client at once.
    let dl = slow_download(&lab, "1M");
    let s = server_of_download(&lab);
    let t = Instant::now();
    api.force_remove(binding(s)).expect("force remove");
    let (curl, _) = finish(dl);
    assert_ne!(curl, 0, "download survived a force remove");
    assert!(t.elapsed() < Duration::from_secs(5), "reset took {:?}", t.elapsed());
    assert!(api.list().unwrap().iter().all(|b| b.key != binding(s)));
    api.add(binding(s), BindingParams::default()).expect("re-add after force remove");

    // Drop 1.0: new connections fail to open, an established one keeps working; Drop 0 restores.
    let dl = slow_download(&lab, "4M");
    server_of_download(&lab);
    api.drop_fraction(service(), DropFraction::ALL).expect("drop 1.0");
    let (code, _) = client_sh(&lab, "curl -s -m 2 http://10.0.0.100/");
    assert_ne!(code, 0, "a new connection opened under drop 1.0");
    let (curl, sum) = finish(dl);
    assert_eq!((curl, sum.as_str()), (0, big_sha.as_str()), "established download under drop 1.0");
    api.drop_fraction(service(), DropFraction::NONE).expect("drop 0");
    body_of(&lab).expect("drop 0 restores");
    let st = api.stats().unwrap();
    assert!(st.drops["admission"] >= 1);

    // Port reuse (issue #17): a `Connection: close` client that reuses its source port right
    // after every server was drained and re-added opens a new connection (it was reset and
    // counted as force_removed while the closed flow's record lived).
    let out = reusing_requests(&lab, &[40001], 1);
    assert!(out.starts_with("rs"), "first request from port 40001: {out}");
    let before = api.stats().unwrap();
    // Their connections are over, so the drained bindings are reaped and the Adds make new
    // ones — all within this lab's 1 s closing timeout, while the closed record lives.
    for i in 1..=3 {
        api.remove(binding(i)).expect("remove");
    }
    let t = Instant::now();
    while !api.list().unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_millis(800), "drained bindings not reaped");
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 1..=3 {
        api.add(binding(i), BindingParams::default()).expect("add");
    }
    let out = reusing_requests(&lab, &[40001], 1);
    assert!(out.starts_with("rs"), "the same client port after drain + re-add: {out}");
    let after = api.stats().unwrap();
    assert_eq!(after.drops["force_removed"], before.drops["force_removed"], "nothing was force-removed");
    let reused = |s: &dataplane::api::Stats| s.workers.iter().map(|w| w.reused_tuples).sum::<u64>();
    assert!(reused(&after) > reused(&before), "the SYN replaced the closed flow's record");

    // The same under churn: 150 sequential `Connection: close` requests from a few client
    // ports (the first that binds, so they are reused at once) while another API
    // client drains and re-adds the servers one at a time. None may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, sock) = (stop.clone(), sock.clone());
        std::thread::spawn(move || {
            let mut api = Client::connect_wait(&sock, Duration::from_secs(5)).expect("second API client");
            let mut changes = 0u32;
            'outer: loop {
                for i in 1..=3 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break 'outer;
                    }
                    api.remove(binding(i)).expect("churn remove");
                    std::thread::sleep(Duration::from_millis(30));
                    api.add(binding(i), BindingParams::default()).expect("churn add");
                    std::thread::sleep(Duration::from_millis(30));
                    changes += 2;
                }
            }
            changes
        })
    };
    let out = reusing_requests(&lab, &[40100, 40101, 40102, 40103], 150);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let changes = churn.join().expect("churn thread");
    assert!(changes >= 12, "the churn made only {changes} changes");
    let failed = out.lines().filter(|l| !l.starts_with("rs")).collect::<Vec<_>>();
    assert!(failed.is_empty(), "requests failed under churn with port reuse: {failed:?}\n{:?}", api.stats());
    assert_eq!(out.lines().filter(|l| l.starts_with("rs")).count(), 150);
    let churned = api.stats().unwrap();
    eprintln!(
        "port reuse under churn: {changes} changes, 150/150 answered, reused tuples {}",
        reused(&churned) - reused(&after)
    );
    assert!(reused(&churned) > reused(&after) + 100, "ports were reused");

    // A closed pipe ends dpctl quietly (`dpctl list | head`), no panic, no backtrace: the
    // reader is gone before dpctl has connected and written.
    let dpctl = env!("CARGO_BIN_EXE_dpctl");
    let out = Command::new("bash")
        .args([
            "-c",
            &format!("{dpctl} -s {} sessions --limit 5000 | true; echo \"${{PIPESTATUS[0]}}\"", sock.display()),
        ])
        .output()
        .unwrap();
    let (status, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "dpctl on a closed pipe: {stderr}");
    assert!(["0", "141"].contains(&status.trim()), "dpctl's status on a closed pipe: {status} {stderr}");

    // A burst of malformed frames is counted and forwarding goes on.
    let before = api.stats().unwrap();
    let malformed = |s: &dataplane::api::Stats| -> u64 {
        ["malformed_ethernet", "malformed_arp", "malformed_ipv4", "bad_ip_checksum", "malformed_l4"]
            .iter()
            .map(|k| s.drops[*k])
            .sum()
    };
    let client_if = lab.env("CLIENT_IFACE").unwrap().to_string();
    let sent = lab
        .run_in(Role::Client, "python3", &["-c", MALFORMED_SENDER, &client_if, &port0_mac, "1100"])
        .expect("send malformed frames");
    assert_eq!(sent.trim(), "1100");
    wait_until("malformed frames are counted", Duration::from_secs(5), || {
        malformed(&api.stats().unwrap()) >= malformed(&before) + 900
    });
    let (code, out) = client_sh(&lab, "for i in $(seq 30); do curl -s -m 3 http://10.0.0.100/ || echo FAIL; done");
    assert_eq!(code, 0);
    assert!(!out.contains("FAIL"), "forwarding stopped after the malformed burst");
    let after = api.stats().unwrap();
    eprintln!("drops after the malformed burst: {:?}", after.drops.iter().filter(|(_, n)| **n > 0).collect::<Vec<_>>());
    drop(dp);
}
