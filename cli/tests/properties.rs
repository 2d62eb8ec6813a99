//! Property tests: the decoder, parser and connection driver never panic on any input (these
//! call the fuzz targets' entry points), the telnet encoding round-trips, and the running-config
//! round-trips (render → replay → equal).

use std::net::Ipv4Addr;

use cli::config::{Bind, Predictor, RealPort, RealServerCfg, VirtualPort, VirtualServerCfg};
use cli::fuzzing;
use cli::telnet::{encode_bytes, Event, ENTER};
use cli::{replay, FakeBackend, SlbConfig};
use proptest::prelude::*;

const VOCAB: &[&str] = &[
    "server",
    "real",
    "virtual",
    "port",
    "http",
    "ssl",
    "bind",
    "no",
    "rs1",
    "rs2",
    "www",
    "10.0.1.11",
    "10.0.1.12",
    "10.0.0.100",
    "8080",
    "weight",
    "5",
    "0",
    "70000",
    "exit",
    "end",
    "drop-fraction",
    "0.5",
    "1.5",
    "disable",
    "show",
    "sh",
    "ser",
    "bi",
    "running-config",
    "url",
    "\"HEAD /\"",
    "\"",
    "keepalive",
    "status-code",
    "200",
    "299",
    "predictor",
    "maglev-hash",
    "force-delete",
    "max-conn",
    "source-nat",
    "hostname",
    "configure",
    "terminal",
    "write",
    "memory",
    "enable",
    "?",
    "r",
    "v",
    "p",
    "-",
    "",
];

fn vocab_line() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCAB), 0..8).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn telnet_decoder_never_panics(input in prop::collection::vec(any::<u8>(), 0..512)) {
        let (events, _reply) = fuzzing::telnet_decode(&input);
        prop_assert!(events.len() <= input.len());
    }

    #[test]
    fn telnet_decoder_heavy_on_iac(input in prop::collection::vec(prop::sample::select(vec![255u8, 250, 240, 251, 252, 253, 254, 31, 34, 1, 3, 13, 10, 0, b'a']), 0..256)) {
        fuzzing::telnet_decode(&input);
    }

    #[test]
    fn plain_data_passes_through(input in prop::collection::vec(1u8..=254, 0..256)) {
        let input: Vec<u8> = input.into_iter().filter(|b| *b != b'\r' && *b != b'\n').collect();
        let (events, _) = fuzzing::telnet_decode(&input);
        let data: Vec<u8> = events.iter().map(|e| match e { Event::Data(b) => *b, _ => panic!("{e:?}") }).collect();
        prop_assert_eq!(data, input);
    }

    #[test]
    fn encode_then_decode_is_identity(input in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut wire = Vec::new();
        encode_bytes(&input, &mut wire);
        let (events, _) = fuzzing::telnet_decode(&wire);
        let got: Vec<u8> = events.iter().filter_map(|e| match e { Event::Data(b) => Some(*b), _ => None }).collect();
        // What the decoder should see: every CR LF, lone CR and lone LF is one Enter.
        let mut want = Vec::new();
        let mut i = 0;
        while i < input.len() {
            match input[i] {
                b'\r' if input.get(i + 1) == Some(&b'\n') => { want.push(ENTER); i += 1; }
                b'\r' | b'\n' => want.push(ENTER),
                b => want.push(b),
            }
            i += 1;
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn parser_never_panics_on_any_text(input in ".{0,300}") {
        fuzzing::command_lines(input.as_bytes());
    }

    #[test]
    fn parser_never_panics_on_any_bytes(input in prop::collection::vec(any::<u8>(), 0..300)) {
        fuzzing::command_lines(&input);
    }

    #[test]
    fn parser_never_panics_on_command_like_lines(lines in prop::collection::vec(vocab_line(), 0..30)) {
        let cfg = fuzzing::command_lines(lines.join("\n").as_bytes());
        // Whatever was typed, the result renders and replays to itself.
        let text = cfg.render();
        let mut again = SlbConfig::default();
        let errors = replay(&text, &mut again, &mut FakeBackend::default());
        prop_assert!(errors.is_empty(), "{errors:?}\n{text}");
        prop_assert_eq!(again, cfg);
    }

    #[test]
    fn startup_config_never_panics_on_any_bytes(input in prop::collection::vec(any::<u8>(), 0..300)) {
        fuzzing::startup_config(&input);
    }

    #[test]
    fn a_startup_config_survives_write_memory_and_reboot(lines in prop::collection::vec(vocab_line(), 0..30)) {
        // Whatever the saved file held, what the box runs after booting from it is what it
        // writes back, and booting from that gives the same configuration.
        let (_, cfg, again) = fuzzing::startup_config(lines.join("\n").as_bytes());
        prop_assert_eq!(again, cfg);
    }

    #[test]
    fn connection_never_panics(input in prop::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::connection(&input);
    }

    #[test]
    fn connection_never_panics_on_keys(keys in prop::collection::vec(prop::sample::select(vec![
        &b"\x1b[A"[..], b"\x1b[B", b"\x1b[C", b"\x1b[D", b"\x01", b"\x05", b"\x15", b"\x17", b"\x03", b"\x1a",
        b"\x7f", b"\x08", b"?", b"\t", b"\r\n", b"\r\0", b"\n", b" ", b"show ", b"server ", b"conf t\r",
        b"terminal length 3\r", b"show running-config\r", b"q", b"\xff\xff", b"\xff\xfb\x22", b"\xff\xfa\x1f",
        b"\xff\xf0", b"enable\r", b"exit\r",
    ]), 0..80)) {
        let mut input = Vec::new();
        for k in keys {
            input.push(k.len() as u8);
            input.extend_from_slice(k);
        }
        fuzzing::connection(&input);
    }

    #[test]
    fn running_config_round_trip(cfg in config()) {
        let text = cfg.render();
        let mut backend = FakeBackend::default();
        let mut again = SlbConfig::default();
        let errors = replay(&text, &mut again, &mut backend);
        prop_assert!(errors.is_empty(), "{errors:?}\n{text}");
        prop_assert_eq!(&again, &cfg, "\n{}", text);
        prop_assert_eq!(again.render(), text);
        // The replay sent the switch exactly the live bindings.
        let added = backend.applied.iter().filter(|p| matches!(p, acm::Primitive::Add { .. })).count();
        prop_assert_eq!(added, cfg.live_bindings().len());
    }
}

const PORTS: &[u16] = &[80, 443, 8080, 21, 9000];

fn real_port() -> impl Strategy<Value = RealPort> {
    (
        prop::sample::select(PORTS),
        any::<bool>(),
        any::<bool>(),
        prop::option::of("[A-Z]{3,4} /[a-z ]{0,8}"),
        prop::option::of((100u16..300, 300u16..600)),
        any::<bool>(),
    )
        .prop_map(|(port, disabled, keepalive, url, status_codes, l4_check_only)| RealPort {
            port,
            disabled,
            keepalive,
            url,
            status_codes,
            l4_check_only,
        })
}

fn predictor() -> impl Strategy<Value = Predictor> {
    prop::sample::select(vec![
        Predictor::MaglevHash,
        Predictor::RoundRobin,
        Predictor::Weighted,
        Predictor::WeightedRoundRobin,
        Predictor::LeastConn,
    ])
}

fn config() -> impl Strategy<Value = SlbConfig> {
    let reals = prop::collection::vec(
        (0u32..=65_000, 1u32..=2_000_000, any::<bool>(), prop::collection::vec(real_port(), 0..4)),
        0..5,
    );
    let virtuals = prop::collection::vec(
        (
            prop::option::of(predictor()),
            prop::collection::vec(
                (prop::sample::select(PORTS), any::<bool>(), prop_oneof![Just(0.0), 0.0f64..=1.0]),
                0..3,
            ),
            prop::collection::vec(
                (any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<prop::sample::Index>()),
                0..5,
            ),
        ),
        0..4,
    );
    (prop::option::of("[a-z][a-z0-9-]{0,10}"), any::<bool>(), predictor(), reals, virtuals).prop_map(
        |(hostname, force_delete, predictor, reals, virtuals)| {
            let mut cfg = SlbConfig {
                hostname: hostname.unwrap_or_else(|| "ServerIron".into()),
                force_delete,
                predictor,
                ..SlbConfig::default()
            };
            for (i, (weight, max_conn, source_nat, ports)) in reals.into_iter().enumerate() {
                let mut r = RealServerCfg::new(&format!("rs{i}"), Ipv4Addr::new(10, 0, 1, 10 + i as u8));
                r.weight = weight;
                r.max_conn = max_conn;
                r.source_nat = source_nat;
                for p in ports {
                    if r.port(p.port).is_none() {
                        r.ports.push(p);
                    }
                }
                cfg.reals.push(r);
            }
            for (i, (pred, ports, binds)) in virtuals.into_iter().enumerate() {
                let mut v = VirtualServerCfg::new(&format!("vs{i}"), Ipv4Addr::new(10, 0, 0, 100 + i as u8));
                v.predictor = pred;
                for (port, disabled, drop_fraction) in ports {
                    if v.port(port).is_none() {
                        v.ports.push(VirtualPort { port, disabled, drop_fraction });
                    }
                }
                for (vp, rs, rp) in binds {
                    if v.ports.is_empty() || cfg.reals.is_empty() {
                        break;
                    }
                    let vport = v.ports[vp.index(v.ports.len())].port;
                    let r = &cfg.reals[rs.index(cfg.reals.len())];
                    if r.ports.is_empty() {
                        continue;
                    }
                    let b = Bind { vport, real: r.name.clone(), rport: r.ports[rp.index(r.ports.len())].port };
                    if !v.binds.contains(&b) {
                        v.binds.push(b);
                    }
                }
                cfg.virtuals.push(v);
            }
            cfg
        },
    )
}
