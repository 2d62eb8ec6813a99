//! Unit tests of [`super`] (`wire.rs`).

use super::*;

const KEY: &[u8] = b"lab-secret";

fn key(k: &str) -> BindingKey {
    let (s, r) = k.split_once("->").unwrap();
    BindingKey { service: s.trim().parse().unwrap(), real: r.trim().parse().unwrap() }
}

fn envelope(body: Body) -> Envelope {
    Envelope {
        sender: Sender { addr: Ipv4Addr::new(10, 0, 1, 11), instance: 0x1122_3344_5566_7788 },
        seq: 7,
        timestamp_ms: 1_700_000_000_123,
        profile: "local".into(),
        body,
    }
}

fn keys(p: &str) -> Option<&'static [u8]> {
    (p == "local").then_some(KEY)
}

#[test]
fn beacon_bytes_are_as_documented() {
    let env = envelope(Body::Beacon {
        interval_ms: 10_000,
        bindings: vec![Advert {
            key: key("10.0.0.100:80 -> 10.0.1.11:8080"),
            params: BindingParams { weight: 3, source_nat: true },
            up: false,
        }],
    });
    let b = encode(&env, KEY).unwrap();
    assert_eq!(&b[..4], b"ACMB");
    assert_eq!(b[4], VERSION);
    assert_eq!(b[5], KIND_BEACON);
    assert_eq!(&b[8..12], &[10, 0, 1, 11]);
    assert_eq!(b[36], 5);
    assert_eq!(&b[37..42], b"local");
    let body = &b[42..b.len() - TAG_LEN];
    assert_eq!(
        body,
        &[
            0, 0, 0x27, 0x10, // interval 10000
            0, 1, // one entry
            10, 0, 0, 100, 6, 0, 80, // service
            10, 0, 1, 11, 0x1f, 0x90, // real
            0, 0, 0, 3, // weight
            3, // source NAT | down
        ]
    );
    assert_eq!(decode(&b, keys).unwrap(), env);
}

#[test]
fn every_kind_round_trips() {
    let bodies = [
        Body::Remove { bindings: vec![key("10.0.0.100:53/udp -> 10.0.1.12:53")] },
        Body::Report {
            targets: vec![
                Target { real: "10.0.1.13:80".parse().unwrap(), service: None },
                Target { real: "10.0.1.12:80".parse().unwrap(), service: Some("10.0.0.100:80".parse().unwrap()) },
            ],
        },
        Body::Heartbeat(Heartbeat { cm_id: 2, role: Role::Candidate, interval_ms: 3000, generation: 9, bindings: 4 }),
        Body::Beacon { interval_ms: 100, bindings: vec![] },
    ];
    for body in bodies {
        let env = envelope(body);
        assert_eq!(decode(&encode(&env, KEY).unwrap(), keys).unwrap(), env);
    }
}

#[test]
fn wrong_key_unknown_profile_and_tampering_are_refused() {
    let env = envelope(Body::Remove { bindings: vec![key("10.0.0.100:80 -> 10.0.1.11:80")] });
    let b = encode(&env, b"other").unwrap();
    assert_eq!(decode(&b, keys), Err(DecodeError::BadTag("local".into())));
    let b = encode(&env, KEY).unwrap();
    assert!(matches!(decode(&b, |_| None), Err(DecodeError::UnknownProfile(p)) if p == "local"));
    for i in 0..b.len() {
        let mut t = b.clone();
        t[i] ^= 0x40;
        assert!(decode(&t, keys).is_err(), "flipped byte {i} accepted");
    }
    assert_eq!(claimed_profile(&b), Some("local"));
}

#[test]
fn signed_but_malformed_bodies_are_refused() {
    // Build a valid datagram, then corrupt the body and re-sign, so the parser (not the
    // tag) must catch it.
    let env = envelope(Body::Beacon {
        interval_ms: 1,
        bindings: vec![Advert {
            key: key("10.0.0.100:80 -> 10.0.1.11:80"),
            params: BindingParams::default(),
            up: true,
        }],
    });
    let resign = |mut b: Vec<u8>, f: &dyn Fn(&mut Vec<u8>)| {
        b.truncate(b.len() - TAG_LEN);
        f(&mut b);
        let mut mac = HmacSha256::new_from_slice(KEY).unwrap();
        mac.update(&b);
        b.extend_from_slice(&mac.finalize().into_bytes());
        b
    };
    let good = encode(&env, KEY).unwrap();
    let entry = 42 + 6;
    type Corrupt<'a> = &'a dyn Fn(&mut Vec<u8>);
    let cases: [(Corrupt, DecodeError); 6] = [
        (&|b| b[entry + 4] = 1, DecodeError::BadProto { index: 0, proto: 1 }),
        (
            &|b| b[entry + 13..entry + 17].copy_from_slice(&70_000u32.to_be_bytes()),
            DecodeError::BadWeight { index: 0, weight: 70_000 },
        ),
        (&|b| b[entry + 17] = 0x80, DecodeError::BadEntryFlags { index: 0, flags: 0x80 }),
        (&|b| b.push(0), DecodeError::Trailing(1)),
        (&|b| b[5] = 9, DecodeError::UnknownKind(9)),
        (&|b| b[6] = 1, DecodeError::BadHeaderFlags(0x100)),
    ];
    for (f, want) in cases {
        assert_eq!(decode(&resign(good.clone(), f), keys), Err(want));
    }
    let short = resign(good.clone(), &|b| b.truncate(b.len() - 3));
    assert!(matches!(decode(&short, keys), Err(DecodeError::Truncated { .. })));
}

#[test]
fn limits() {
    let many = (0..=MAX_ENTRIES as u16)
        .map(|i| Advert {
            key: BindingKey {
                service: "10.0.0.100:80".parse().unwrap(),
                real: RealServer { rip: Ipv4Addr::new(10, 0, 1, 11), rport: i },
            },
            params: BindingParams::default(),
            up: true,
        })
        .collect::<Vec<_>>();
    let env = envelope(Body::Beacon { interval_ms: 1, bindings: many.clone() });
    assert_eq!(encode(&env, KEY), Err(EncodeError::TooManyEntries(MAX_ENTRIES + 1)));
    let env = envelope(Body::Beacon { interval_ms: 1, bindings: many[..MAX_ENTRIES].to_vec() });
    let b = encode(&env, KEY).unwrap();
    assert!(b.len() <= MAX_DATAGRAM && MAX_DATAGRAM <= 1472, "{}", b.len());
    assert_eq!(decode(&b, keys).unwrap(), env);
    assert_eq!(decode(&vec![0u8; MAX_DATAGRAM + 1], keys), Err(DecodeError::TooLarge(MAX_DATAGRAM + 1)));
    let mut env = envelope(Body::Remove { bindings: vec![] });
    env.profile = "x".repeat(65);
    assert_eq!(encode(&env, KEY), Err(EncodeError::ProfileTooLong));
}
