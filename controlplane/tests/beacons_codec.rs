//! Property tests of the beacon codec: arbitrary bytes never panic the decoder, every message
//! round-trips, and any change to a signed datagram is refused; the fuzz entry points of the
//! control plane (beacons, a ServerIron device's output) reach what they should.

use std::net::Ipv4Addr;

use acm::{BindingKey, BindingParams, Proto, RealServer, ServiceKey, MAX_WEIGHT};
use controlplane::beacon::wire::{
    decode, encode, Advert, Body, DecodeError, Envelope, Heartbeat, Role, Sender, Target, MAX_DATAGRAM, MAX_ENTRIES,
    TAG_LEN,
};
use proptest::prelude::*;

const KEY: &[u8] = b"profile-key";

fn keys(p: &str) -> Option<&'static [u8]> {
    (p == "local" || p.is_empty() || p.starts_with('p')).then_some(KEY)
}

fn service() -> impl Strategy<Value = ServiceKey> {
    (any::<u32>(), any::<bool>(), any::<u16>()).prop_map(|(vip, udp, vport)| ServiceKey {
        vip: Ipv4Addr::from(vip),
        proto: if udp { Proto::Udp } else { Proto::Tcp },
        vport,
    })
}

fn real() -> impl Strategy<Value = RealServer> {
    (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| RealServer { rip: Ipv4Addr::from(ip), rport: port })
}

fn key() -> impl Strategy<Value = BindingKey> {
    (service(), real()).prop_map(|(service, real)| BindingKey { service, real })
}

fn advert() -> impl Strategy<Value = Advert> {
    (key(), 0..=MAX_WEIGHT, any::<bool>(), any::<bool>()).prop_map(|(key, weight, source_nat, up)| Advert {
        key,
        params: BindingParams { weight, source_nat },
        up,
    })
}

fn target() -> impl Strategy<Value = Target> {
    (real(), proptest::option::of(service()))
        // The wildcard encoding (0.0.0.0, port 0) reads back as "every service".
        .prop_map(|(real, service)| Target {
            real,
            service: service.filter(|s| !(s.vip.is_unspecified() && s.vport == 0)),
        })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (any::<u32>(), proptest::collection::vec(advert(), 0..=MAX_ENTRIES))
            .prop_map(|(interval_ms, bindings)| Body::Beacon { interval_ms, bindings }),
        proptest::collection::vec(key(), 0..=MAX_ENTRIES).prop_map(|bindings| Body::Remove { bindings }),
        proptest::collection::vec(target(), 0..=MAX_ENTRIES).prop_map(|targets| Body::Report { targets }),
        (any::<u64>(), 0..3u8, any::<u32>(), any::<u64>(), any::<u32>()).prop_map(
            |(cm_id, r, interval_ms, generation, bindings)| {
                let role = [Role::Active, Role::Candidate, Role::Standby][r as usize];
                Body::Heartbeat(Heartbeat { cm_id, role, interval_ms, generation, bindings })
            }
        ),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>(), "p[a-z0-9-]{0,63}", body()).prop_map(
        |(addr, instance, seq, timestamp_ms, profile, body)| Envelope {
            sender: Sender { addr: Ipv4Addr::from(addr), instance },
            seq,
            timestamp_ms,
            profile,
            body,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&bytes, keys);
        let _ = controlplane::beacon::wire::claimed_profile(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_panic(
        kind in 0u8..8,
        plen in 0u8..80,
        tail in proptest::collection::vec(any::<u8>(), 0..1400),
    ) {
        let mut b = b"ACMB\x01".to_vec();
        b.push(kind);
        b.extend_from_slice(&[0; 30]);
        b.push(plen);
        b.extend_from_slice(&tail);
        // Unsigned: refused, never parsed past the tag check.
        prop_assert!(decode(&b, keys).is_err());
    }

    #[test]
    fn round_trip(env in envelope()) {
        let bytes = encode(&env, KEY).unwrap();
        prop_assert!(bytes.len() <= MAX_DATAGRAM);
        prop_assert_eq!(decode(&bytes, keys).unwrap(), env);
    }

    #[test]
    fn any_single_change_is_refused(env in envelope(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = encode(&env, KEY).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(decode(&bytes, keys).is_err());
    }

    #[test]
    fn wrong_key_is_refused(env in envelope(), other in proptest::collection::vec(any::<u8>(), 0..40)) {
        prop_assume!(other != KEY);
        let bytes = encode(&env, &other).unwrap();
        prop_assert!(matches!(decode(&bytes, keys), Err(DecodeError::BadTag(_))), "accepted under the wrong key");
    }

    #[test]
    fn truncation_is_refused(env in envelope(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&env, KEY).unwrap();
        let n = cut.index(bytes.len());
        prop_assert!(decode(&bytes[..n], keys).is_err());
    }

    /// The fuzz target's entry point: a datagram signed with its key decodes as it is, and
    /// without its tag the entry point signs it itself, so the body decoder is reached.
    #[test]
    fn the_fuzz_entry_point_reaches_the_body_decoder(env in envelope(), junk in proptest::collection::vec(any::<u8>(), 0..200)) {
        use controlplane::fuzzing::{beacon_datagram, BEACON_KEY};
        let env = Envelope { profile: "fuzz".into(), ..env };
        let bytes = encode(&env, BEACON_KEY).unwrap();
        let [raw, _] = beacon_datagram(&bytes);
        prop_assert_eq!(raw, Ok(env.clone()));
        let [_, tagged] = beacon_datagram(&bytes[..bytes.len() - TAG_LEN]);
        prop_assert_eq!(tagged, Ok(env));
        let _ = beacon_datagram(&junk);
    }
}

#[test]
fn the_fuzz_entry_point_reads_a_serveriron_answer() {
    let text = "Virtual server: www                  Status: enabled  IP: 10.0.0.100\n        http -------> rs1: 10.0.1.11, http (ACT)\n                      rs4: 10.0.1.14, http (GDN)\nSessions: 7 (1 shown)\nProto Client VIP\nUDP 10.0.0.2:53 10.0.0.100:53 10.0.1.11:53 UDP 0 30\n";
    assert_eq!(controlplane::fuzzing::serveriron_output(text.as_bytes()), (2, 1));
    assert_eq!(controlplane::fuzzing::serveriron_output(&[0xff, b'\n', 0, 0x80]), (0, 0));
}
