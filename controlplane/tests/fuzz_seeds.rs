//! The seed corpora of the fuzz targets for what the control plane parses (`fuzz/seeds/`),
//! built with the real encoders: beacons, the switch API's frames, a ServerIron device's
//! answers, the startup-config and CLI lines, telnet input and `appliance.toml`. The committed
//! files must match (`ACM_WRITE_FUZZ_SEEDS=1 cargo test -p controlplane --test fuzz_seeds`
//! rewrites them), and each must get past its parser's first checks.

use std::net::Ipv4Addr;

use acm::{BindingKey, BindingParams, DropFraction, Primitive, Proto, RealServer, ServiceKey};
use controlplane::beacon::wire::{encode, Advert, Body, Envelope, Heartbeat, Role, Sender, TAG_LEN};
use controlplane::fuzzing::{beacon_datagram, serveriron_output, BEACON_KEY};
use labtest::fuzz_seed;

fn key(i: u8) -> BindingKey {
    BindingKey {
        service: ServiceKey { vip: Ipv4Addr::new(10, 0, 0, 100), proto: Proto::Tcp, vport: 80 },
        real: RealServer { rip: Ipv4Addr::new(10, 0, 1, 10 + i), rport: 80 },
    }
}

#[test]
fn beacon_seeds() {
    let sender = Sender { addr: Ipv4Addr::new(10, 0, 1, 11), instance: 7 };
    let adverts = (1..=3).map(|i| Advert { key: key(i), params: BindingParams::default(), up: i != 2 }).collect();
    let bodies = [
        ("beacon", Body::Beacon { interval_ms: 1000, bindings: adverts }),
        ("remove", Body::Remove { bindings: vec![key(1), key(3)] }),
        (
            "heartbeat",
            Body::Heartbeat(Heartbeat { cm_id: 1, role: Role::Active, interval_ms: 200, generation: 9, bindings: 3 }),
        ),
    ];
    for (seq, (name, body)) in bodies.into_iter().enumerate() {
        let env =
            Envelope { sender, seq: seq as u64 + 1, timestamp_ms: 1_700_000_000_000, profile: "fuzz".into(), body };
        let signed = encode(&env, BEACON_KEY).unwrap();
        // The target signs what it is given, so a seed is the datagram without its tag.
        let seed = &signed[..signed.len() - TAG_LEN];
        assert_eq!(beacon_datagram(seed)[1], Ok(env));
        fuzz_seed("beacon", name, seed);
    }
}

#[test]
fn switch_api_frame_seeds() {
    use switch_api::RequestBody;
    let bodies = [
        ("add", RequestBody::Primitive { primitive: Primitive::Add { key: key(1), params: BindingParams::default() } }),
        ("remove", RequestBody::Primitive { primitive: Primitive::Remove { key: key(2) } }),
        (
            "drop",
            RequestBody::Primitive {
                primitive: Primitive::Drop { service: key(1).service, fraction: DropFraction::new(0.25).unwrap() },
            },
        ),
        ("list", RequestBody::Primitive { primitive: Primitive::List }),
        ("stats", RequestBody::Stats),
        ("sessions", RequestBody::Sessions { service: Some(key(1).service), limit: 10 }),
    ];
    for (id, (name, body)) in bodies.into_iter().enumerate() {
        let version = body.min_version();
        let req = rpc::Request { id: id as u64, version, body };
        let frame = rpc::frame::encode(&req, switch_api::MAX_FRAME).unwrap();
        let (inner, used) = rpc::frame::split_frame(&frame, switch_api::MAX_FRAME).unwrap().unwrap();
        assert_eq!(used, frame.len());
        assert!(matches!(rpc::serve::incoming::<switch_api::SwitchApi>(inner), rpc::Incoming::Call(_)), "{name}");
        fuzz_seed("rpc_frame", name, &frame);
    }
}

#[test]
fn serveriron_answer_seeds() {
    let bind = "Bind info\n\nVirtual server: www                  Status: enabled  IP: 10.0.0.100\n        http -------> rs1: 10.0.1.11, http (ACT)\n                      rs4: 10.0.1.14, http (GDN)\n                      rs5: 10.0.1.15, 8080 (UNB)\n        ssl  -------> (none)\n";
    let sessions = "Sessions: 7 (2 shown)\nProto Client VIP Real State Idle Expires\nTCP 10.0.0.2:40000 10.0.0.100:80 10.0.1.11:8080 EST 3 297\nUDP 10.0.0.2:53 10.0.0.100:53 10.0.1.11:53 UDP 0 30\n";
    assert_eq!(serveriron_output(bind.as_bytes()).0, 2);
    assert_eq!(serveriron_output(sessions.as_bytes()).1, 2);
    fuzz_seed("serveriron_output", "show-server-bind", bind.as_bytes());
    fuzz_seed("serveriron_output", "show-session", sessions.as_bytes());
}

/// A startup-config with every kind of block the CLI writes.
const STARTUP: &str = "server predictor round-robin\n!\nserver real rs1 10.0.1.11\n port http\n port http url \"HEAD /health\"\n max-conn 100\n!\nserver real rs2 10.0.1.12\n port http\n weight 2\n!\nserver virtual www 10.0.0.100\n port http\n bind http rs1 http rs2 http\n!\nend\n";

#[test]
fn cli_seeds() {
    let (refused, cfg, again) = cli::fuzzing::startup_config(STARTUP.as_bytes());
    assert_eq!(cfg, again);
    assert!(refused <= 1, "the sample startup-config is mostly valid ({refused} lines refused)");
    fuzz_seed("startup_config", "lab", STARTUP.as_bytes());
    let typed = format!("enable\nconfigure terminal\n{STARTUP}show server bind\nshow server real\nshow run\n");
    fuzz_seed("command_parser", "session", typed.as_bytes());
    // Telnet: option negotiation (IAC WILL/DO/SB NAWS … SE), a CR NUL, and a command.
    let mut telnet = vec![255, 251, 24, 255, 253, 1, 255, 250, 31, 0, 80, 0, 24, 255, 240];
    telnet.extend_from_slice(b"show server bind\r\0show ver\r\n");
    fuzz_seed("telnet_decode", "negotiation", &telnet);
    // A connection's input in chunks, each behind its length byte.
    let mut conn = Vec::new();
    for line in ["enable\r\n", "acm-lab\r\n", "show server bind\r\n", "conf t\r\n", "quit\r\n"] {
        conn.push(line.len() as u8);
        conn.extend_from_slice(line.as_bytes());
    }
    fuzz_seed("telnet_connection", "enable-show", &conn);
}

#[test]
fn appliance_toml_seeds() {
    use appliance_config::fuzzing::{appliance_toml, Outcome};
    use appliance_config::presets::{lab, LabAppliance, LabPorts};
    let a = lab(&LabAppliance {
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
    });
    let text = a.to_toml();
    let all = Outcome { parsed: true, dataplane_ok: true, controlplane_ok: true, reparsed: true };
    assert_eq!(appliance_toml(text.as_bytes()), all);
    fuzz_seed("appliance_toml", "lab", text.as_bytes());
}
