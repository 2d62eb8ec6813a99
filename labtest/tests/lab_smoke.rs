//! The lab itself, without the dataplane: it comes up under a private prefix,
//! every real server serves, every veth end has its offloads off, traffic
//! crosses it (kernel stand-in, then DPDK testpmd), and `down` leaves nothing.

use std::process::Command;
use std::time::Duration;

use labtest::{rs_addr, Lab, Role, RS_COUNT};

const T: Duration = Duration::from_secs(5);

fn sysfs_flags(dev: &str) -> u32 {
    let text = std::fs::read_to_string(format!("/sys/class/net/{dev}/flags")).unwrap_or_default();
    u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap_or(0)
}

fn assert_gone(prefix: &str) {
    let left = labtest::remnants(prefix);
    assert!(left.is_empty(), "lab {prefix} left behind: {left:#?}");
}

#[test]
fn lab_comes_up_serves_and_goes_away() {
    if !labtest::require_lab_prereqs() {
        return;
    }
    let lab = Lab::up_unique().expect("lab up");
    let prefix = lab.prefix().to_owned();
    assert!(lab.is_complete(), "lab.sh status {prefix}");

    // Each real server answers with its own name, on loopback and on its LAN address.
    for i in 1..=RS_COUNT {
        let want = format!("rs{i}\n");
        assert_eq!(lab.curl_in(Role::Rs(i), "http://127.0.0.1/", T).unwrap(), want);
        let url = format!("http://{}/", rs_addr(i));
        assert_eq!(lab.curl_in(Role::Rs(i), &url, T).unwrap(), want);
    }
    // The bridge joins them: rs1 reaches rs2 and rs3, and sees who asked.
    for i in 2..=RS_COUNT {
        let url = format!("http://{}/whoami", rs_addr(i));
        let body = lab.curl_in(Role::Rs(1), &url, T).unwrap();
        assert!(body.starts_with(&format!("rs{i} {}:", rs_addr(1))), "{body:?}");
    }
    let (size, sum) = lab.download_sha256(Role::Rs(2), &format!("http://{}/big.bin", rs_addr(3)), T * 4).unwrap();
    assert_eq!((size, sum.as_str()), (lab.big_size(), lab.big_sha256()));
    assert_eq!(size, 20 << 20);

    // af_packet needs real frames: no checksum offload, no GSO/GRO, on both ends of every veth.
    let ends = lab.veth_ends();
    assert_eq!(ends.len(), 10);
    for (role, iface) in ends {
        let o = lab.offloads(role, &iface).unwrap_or_else(|e| panic!("{iface} in {role}: {e}"));
        assert!(o.all_off(), "{iface} in {role}: {o:?}");
    }

    // The ports: in the root netns, up, promiscuous, no addresses; ports.env names them.
    for port in 0..=1u8 {
        let dev = lab.port_iface(port);
        let flags = sysfs_flags(&dev);
        assert!(flags & 0x1 != 0 && flags & 0x100 != 0, "{dev} flags {flags:#x}: want UP|PROMISC");
        let addrs = lab.run_in(Role::Root, "ip", &["-o", "addr", "show", "dev", &dev]).unwrap();
        assert_eq!(addrs.trim(), "", "{dev} must have no addresses");
        assert!(lab.port_vdev(port).starts_with(&format!("net_af_packet{port},iface={dev},")));
    }
    assert_eq!(lab.port0_iface(), format!("{prefix}p0"));
    assert_eq!(lab.port1_iface(), format!("{prefix}p1"));
    assert_eq!(lab.env("VIP"), Some(labtest::VIP));

    // Gateway configuration the dataplane will take over.
    let routes = lab.run_in(Role::Client, "ip", &["route"]).unwrap();
    assert!(routes.contains("default via 10.0.0.1"), "{routes}");
    let routes = lab.run_in(Role::Rs(3), "ip", &["route"]).unwrap();
    assert!(routes.contains("default via 10.0.1.1"), "{routes}");

    lab.down().expect("lab down");
    assert_gone(&prefix);
}

#[test]
fn kernel_gateway_carries_client_traffic_to_every_real_server() {
    if !labtest::require_lab_prereqs() {
        return;
    }
    let lab = Lab::up_unique().expect("lab up");
    let prefix = lab.prefix().to_owned();
    // Without anything in the gateway's place the client reaches nothing.
    assert!(lab.curl(&format!("http://{}/", rs_addr(1)), Duration::from_millis(500)).is_err());

    lab.kernel_gateway(true).unwrap();
    lab.ping(labtest::PORT0_ADDR).unwrap();
    for i in 1..=RS_COUNT {
        let body = lab.curl(&format!("http://{}/whoami", rs_addr(i)), T).unwrap();
        assert!(body.starts_with(&format!("rs{i} {}:", labtest::CLIENT_ADDR)), "{body:?}");
    }
    let (size, sum) = lab.download_sha256(Role::Client, &format!("http://{}/big.bin", rs_addr(2)), T * 4).unwrap();
    assert_eq!((size, sum.as_str()), (lab.big_size(), lab.big_sha256()));

    lab.kernel_gateway(false).unwrap();
    assert!(lab.is_complete(), "ports back in the root netns");
    assert!(std::path::Path::new("/sys/class/net").join(lab.port0_iface()).exists());
    lab.down().expect("lab down");
    assert_gone(&prefix);
}

#[test]
fn up_and_down_are_idempotent_and_down_cleans_half_built_labs() {
    if !labtest::require_lab_prereqs() {
        return;
    }
    let prefix = labtest::unique_prefix();
    let lab = Lab::up(&prefix).expect("lab up");
    let again = Lab::up(&prefix).expect("second up is a no-op");
    std::mem::forget(again); // one owner is enough

    // Break it: one real server's netns and port 1 vanish under it.
    let ns = lab.netns(Role::Rs(2)).unwrap();
    assert!(Command::new("ip").args(["netns", "del", &ns]).status().unwrap().success());
    let p1 = lab.port_iface(1);
    assert!(Command::new("ip").args(["link", "del", &p1]).status().unwrap().success());
    assert!(!lab.is_complete());

    let script = labtest::lab_script();
    for _ in 0..2 {
        let out = Command::new("bash").arg(&script).args(["down", &prefix]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_gone(&prefix);
    lab.down().expect("down a third time");
    assert_gone(&prefix);
}

#[test]
fn dpdk_testpmd_forwards_through_the_lab() {
    if !labtest::require_dpdk_prereqs() {
        return;
    }
    let lab = Lab::up_unique().expect("lab up");
    let prefix = lab.prefix().to_owned();
    let script = labtest::repo_root().join("lab").join("check-dpdk.sh");
    let out = Command::new("bash").arg(&script).arg(&prefix).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check-dpdk.sh failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{}", stdout.trim());
    lab.down().expect("lab down");
    assert_gone(&prefix);
}
