use std::path::Path;

use super::*;
use crate::presets::{LabAppliance, LabPorts};

const PORTS: &str = r#"
[[port]]
name = "client"
device = "net_af_packet0,iface=acmp0"
address = "10.0.0.1/24"
"#;

/// Writes `text` to a file and loads it as the dataplane and as the control plane would.
fn load_both(text: &str) -> (Result<DataplaneConfig, ConfigError>, Result<ControlplaneConfig, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("appliance.toml");
    std::fs::write(&path, text).unwrap();
    let dp = DataplaneConfig::load(&path);
    let cp = Appliance::load(&path).and_then(|a| a.controlplane_config().map_err(|e| e.in_file(&path)));
    (dp, cp)
}

#[test]
fn every_wrong_field_kind_is_named_with_the_file_by_both_processes() {
    for (text, field, what) in [
        ("[health]\ninterval_ms = \"fast\"\n", "health.interval_ms", "invalid type: string \"fast\", expected u64"),
        ("[dataplane]\napi_socket = 42\n", "dataplane.api_socket", "invalid type: integer `42`"),
        ("[beacon]\nport = 70000\n", "beacon.port", "70000"),
        ("[beacon]\npeers = [\"10.0.0.1\"]\n", "beacon.peers[0]", "socket address"),
        ("[health]\ncheck = \"l9\"\n", "health.check", "unknown variant `l9`"),
        (
            "[[health.service]]\nservice = \"10.0.0.100:80\"\nrise = 2\n",
            "health.service[0].rise",
            "unknown field `rise`",
        ),
        ("[election]\nid = \"one\"\n", "election.id", "invalid type: string \"one\""),
        ("[election]\nmisses = 3\n", "election", "missing field `id`"),
        ("[telnet]\nlisten = \"localhost\"\n", "telnet.listen", "socket address"),
        ("[cm]\nadd_state = \"maybe\"\n", "cm.add_state", "unknown variant `maybe`"),
        ("[[switch]]\nname = \"a\"\ndriver = \"cisco\"\n", "switch[0].driver", "unknown variant `cisco`"),
        ("[timeouts]\ntcp_syn = \"5s\"\n", "timeouts.tcp_syn", "invalid type: string \"5s\""),
        ("[[port]]\nname = \"client\"\ndevice = 7\n", "port[0].device", "invalid type: integer `7`"),
        ("[partitions]\ngold = [\"10.0.0\"]\n", "partitions.gold[0]", "IPv4"),
        ("[telnet]\nlisen = \"x\"\n", "telnet.lisen", "unknown field `lisen`"),
    ] {
        let (dp, cp) = load_both(&format!("{text}{PORTS}"));
        for e in [dp.map(drop).unwrap_err(), cp.map(drop).unwrap_err()] {
            let msg = e.to_string();
            assert!(matches!(e, ConfigError::Syntax { .. }), "{text}: {msg}");
            assert!(msg.contains(&format!("appliance.toml: {field}: ")), "{text}: want {field} named: {msg}");
            assert!(msg.contains(what), "{text}: want {what:?}: {msg}");
            assert!(msg.contains("(line "), "{text}: want the line: {msg}");
        }
    }
}

#[test]
fn an_unknown_section_is_named() {
    let (dp, cp) = load_both(&format!("bogus = 1\n{PORTS}"));
    for e in [dp.map(drop).unwrap_err(), cp.map(drop).unwrap_err()] {
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
    }
    let (dp, _) = load_both(&format!("{PORTS}\n[telnett]\nlisten = 1\n"));
    assert!(dp.unwrap_err().to_string().contains("telnett"));
}

#[test]
fn bad_values_of_the_control_plane_are_named() {
    let cp = |text: &str| Appliance::parse(text, Path::new("f")).unwrap().controlplane_config();
    assert_eq!(cp("[cm]\nsync_interval_ms = 0\n").unwrap_err().field, "cm.sync_interval_ms");
    assert_eq!(cp("[[switch]]\nname = \"a\"\ndriver = \"dataplane\"\n").unwrap_err().field, "switch[0] (a).socket");
    assert_eq!(
        cp("[[switch]]\nname = \"e\"\ndriver = \"serveriron-telnet\"\n").unwrap_err().field,
        "switch[0] (e).address"
    );
    let dup = "[[switch]]\nname = \"a\"\ndriver = \"fake\"\n[[switch]]\nname = \"a\"\ndriver = \"fake\"\n";
    assert_eq!(cp(dup).unwrap_err().field, "switch[1] (a).name");
    let e = cp("[partitions]\ngold = [\"10.0.0.100\"]\nsilver = [\"10.0.0.100\"]\n").unwrap_err();
    assert_eq!((e.field.as_str(), e.why.as_str()), ("partitions.silver", "VIP 10.0.0.100 is in class gold too"));
}

#[test]
fn the_local_dataplane_switch_gets_the_api_socket() {
    let text = format!(
        "[dataplane]\napi_socket = \"/run/x/dp.sock\"\n{PORTS}\n[[switch]]\nname = \"local\"\ndriver = \"dataplane\"\n"
    );
    let cp = Appliance::parse(&text, Path::new("f")).unwrap().controlplane_config().unwrap();
    assert_eq!(cp.switches[0].socket.as_deref(), Some(Path::new("/run/x/dp.sock")));
    // Defaults of absent sections.
    let cp = Appliance::parse("", Path::new("f")).unwrap().controlplane_config().unwrap();
    assert_eq!(cp.telnet, TelnetConfig::default());
    assert_eq!(cp.api.socket, Path::new(DEFAULT_API_SOCKET));
    assert_eq!((cp.cm.add_state, cp.cm.fail_policy), (AddState::Active, FailPolicy::Force));
}

#[test]
fn health_check_names_and_their_aliases() {
    for (word, kind) in [
        ("none", CheckKind::None),
        ("arp", CheckKind::L2),
        ("icmp", CheckKind::L3),
        ("tcp", CheckKind::L4),
        ("http", CheckKind::L7),
        ("l7", CheckKind::L7),
    ] {
        let a = Appliance::parse(&format!("[health]\ncheck = \"{word}\"\n"), Path::new("f")).unwrap();
        assert_eq!(a.health.unwrap().check, Some(kind), "{word}");
    }
}

fn lab() -> LabAppliance {
    LabAppliance {
        ports: LabPorts {
            prefix: "acm".into(),
            port0_iface: "acmp0".into(),
            port0_addr: "10.0.0.1/24".into(),
            port1_iface: "acmp1".into(),
            port1_addr: "10.0.1.1/24".into(),
        },
        state_dir: "/run/acm-lab/acm".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        telnet: "127.0.0.1:2323".parse().unwrap(),
        beacon_key: "k".into(),
        maglev_table_size: 65537,
    }
}

#[test]
fn written_files_read_back_the_same_and_pass_both_checks() {
    let bench = presets::bench(&presets::Bench {
        main_lcore: 2,
        worker_lcores: vec![3, 4],
        api_socket: "/tmp/b/api.sock".into(),
        id: "x1".into(),
        client_device: "net_memif0,role=server,socket=/tmp/b/l0.sock,id=0".into(),
        server_device: "net_memif1,role=server,socket=/tmp/b/l1.sock,id=0".into(),
        idle: IdleMode::Busy,
    });
    assert_eq!(bench.dataplane.as_ref().map(|d| d.idle), Some(IdleMode::Busy));
    for a in [presets::lab(&lab()), bench] {
        let text = a.to_toml();
        let back = Appliance::parse(&text, Path::new("w")).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, a, "{text}");
        back.dataplane_config().unwrap();
        back.controlplane_config().unwrap();
    }
}

#[test]
fn the_lab_appliance() {
    let a = presets::lab(&lab());
    let dp = a.dataplane_config().unwrap();
    assert_eq!(dp.dataplane.api_socket, Path::new("/run/acm-lab/acm/dataplane.sock"));
    assert_eq!(dp.dataplane.eal_args, ["--file-prefix=acm-dataplane", "--huge-unlink"]);
    assert_eq!((dp.tap_name(0), dp.tap_name(1)), ("acmt0".to_string(), "acmt1".to_string()));
    let cp = a.controlplane_config().unwrap();
    assert_eq!(cp.switches[0].socket.as_deref(), Some(Path::new("/run/acm-lab/acm/dataplane.sock")));
    assert_eq!(cp.telnet.extra[1].address, "10.0.1.1:23".parse().unwrap());
    assert_eq!(cp.telnet.extra[1].interface.as_deref(), Some("acmt1"));
    assert_eq!(cp.health.unwrap().interface.as_deref(), Some("acmt1"));
    assert_eq!(cp.startup_config.as_deref(), Some(Path::new("/run/acm-lab/acm/startup-config")));
}

#[test]
fn the_fuzz_entry_point_takes_a_preset_through_every_stage() {
    use crate::fuzzing::{appliance_toml, Outcome};
    let lab = presets::lab(&lab());
    let all = Outcome { parsed: true, dataplane_ok: true, controlplane_ok: true, reparsed: true };
    assert_eq!(appliance_toml(lab.to_toml().as_bytes()), all);
    assert_eq!(appliance_toml(b"[health]\ninterval_ms = \"fast\"\n"), Outcome::default());
    assert_eq!(appliance_toml(&[0xff, 0xfe, b'[', 0]), Outcome::default());
}

#[test]
fn lab_ports_on_either_driver() {
    use crate::presets::LabDriver;
    let p = lab().ports;
    assert_eq!(p.ports()[0].device, "net_af_packet0,iface=acmp0");
    let xdp = p.ports_on(LabDriver::AfXdp);
    assert_eq!(xdp[1].device, "net_af_xdp1,iface=acmp1,start_queue=0,queue_count=1");
    assert_eq!((xdp[1].name.as_str(), xdp[1].tap.as_deref()), ("servers", Some("acmt1")));
    assert_eq!("af_xdp".parse::<LabDriver>(), Ok(LabDriver::AfXdp));
    assert!("xdp".parse::<LabDriver>().is_err());
    let mut a = presets::lab(&lab());
    a.ports = xdp;
    a.dataplane_config().unwrap();
}
