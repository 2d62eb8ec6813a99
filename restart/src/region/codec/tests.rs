use super::*;
use proptest::prelude::*;

fn sample() -> Header {
    Header::for_layout("app", 3, &[(1, TableKind::Records, 40, 10), (2, TableKind::Raw, 4096, 4)], 4096).unwrap()
}

#[test]
fn header_round_trip() {
    let h = sample();
    let b = h.encode();
    assert_eq!(Header::parse(&b).unwrap(), h);
}

#[test]
fn header_refusals() {
    let b = sample().encode();
    assert!(matches!(Header::parse(&b[..100]), Err(ParseError::Truncated { found: 100 })));
    let mut m = b.clone();
    m[0] = b'X';
    assert!(matches!(Header::parse(&m), Err(ParseError::BadMagic { .. })));
    let mut m = b.clone();
    m[8] = 9;
    assert!(matches!(Header::parse(&m), Err(ParseError::Format { found: 9 })));
    let mut m = b.clone();
    m[70] ^= 1;
    assert!(matches!(Header::parse(&m), Err(ParseError::Checksum { .. })));
}

#[test]
fn slot_picks_newest_valid_copy_and_survives_torn_write() {
    let rs = 24;
    let cs = copy_size(rs);
    let mut slot = vec![0u8; 2 * cs];
    assert_eq!(decode_slot(&slot, rs), Ok(SlotState::Empty));
    encode_copy(1, &[1u8; 24], &mut slot[cs..]);
    assert_eq!(decode_slot(&slot, rs), Ok(SlotState::Valid { copy: 1, seq: 1 }));
    // A torn second write into copy 0 (only half written).
    let mut c = vec![0u8; cs];
    encode_copy(2, &[2u8; 24], &mut c);
    slot[..cs / 2].copy_from_slice(&c[..cs / 2]);
    assert_eq!(decode_slot(&slot, rs), Ok(SlotState::Valid { copy: 1, seq: 1 }));
    slot[..cs].copy_from_slice(&c);
    assert_eq!(decode_slot(&slot, rs), Ok(SlotState::Valid { copy: 0, seq: 2 }));
    assert_eq!(copy_payload(&slot, rs, 0), &[2u8; 24]);
    // Both copies garbage: corrupt, not empty.
    slot.iter_mut().for_each(|b| *b = 0x5a);
    assert_eq!(decode_slot(&slot, rs), Err(SlotError::Corrupt));
}

proptest! {
    #[test]
    fn header_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let _ = Header::parse(&bytes);
    }

    #[test]
    fn header_single_byte_corruption_detected(pos in 0usize..1032, flip in 1u8..=255) {
        let h = sample();
        let mut b = h.encode();
        b[pos] ^= flip;
        // Either refused, or (for bytes the checksum does not cover) identical.
        match Header::parse(&b) {
            Err(_) => {}
            Ok(p) => prop_assert_eq!(p, h),
        }
    }

    #[test]
    fn header_layout_round_trip(name in "[a-z]{1,32}", version: u32,
        tables in proptest::collection::vec((1u32..2000, 1u32..100, any::<bool>()), 0..MAX_TABLES)) {
        let specs: Vec<_> = tables.iter().enumerate()
            .map(|(i, &(rs, n, raw))| (i as u32, if raw { TableKind::Raw } else { TableKind::Records }, rs, n)).collect();
        let h = Header::for_layout(&name, version, &specs, 2 << 20).unwrap();
        prop_assert_eq!(h.total_len % (2 << 20), 0);
        prop_assert_eq!(Header::parse(&h.encode()).unwrap(), h);
    }

    #[test]
    fn slot_round_trip_and_torn_prefix(payload in proptest::collection::vec(any::<u8>(), 1..300), seq in 1u64..u64::MAX - 1, cut in 0usize..400) {
        let rs = payload.len();
        let cs = copy_size(rs);
        let mut slot = vec![0u8; 2 * cs];
        let older = (seq % 2) as usize ^ 1;
        encode_copy(seq, &payload, &mut slot[older * cs..(older + 1) * cs]);
        let mut newer = vec![0u8; cs];
        let p2: Vec<u8> = payload.iter().map(|b| b.wrapping_add(1)).collect();
        encode_copy(seq + 1, &p2, &mut newer);
        let n = older ^ 1;
        let cut = cut.min(cs);
        slot[n * cs..n * cs + cut].copy_from_slice(&newer[..cut]);
        let st = decode_slot(&slot, rs).unwrap();
        // A torn write whose untouched rest already equals the new bytes is the new value.
        if slot[n * cs..(n + 1) * cs] == newer[..] {
            prop_assert_eq!(st, SlotState::Valid { copy: n, seq: seq + 1 });
            prop_assert_eq!(copy_payload(&slot, rs, n), &p2[..]);
        } else {
            prop_assert_eq!(st, SlotState::Valid { copy: older, seq });
            prop_assert_eq!(copy_payload(&slot, rs, older), &payload[..]);
        }
    }

    #[test]
    fn slot_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700), rs in 0usize..300) {
        let _ = decode_slot(&bytes, rs);
    }
}
