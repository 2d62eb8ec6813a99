//! The seeds of the `region_parse` fuzz target (`fuzz/seeds/region_parse/`), built with the
//! region codec: a region header with a table directory, and a record slot behind the byte the
//! target reads its record size from. The committed files must match
//! (`ACM_WRITE_FUZZ_SEEDS=1 cargo test -p restart --test fuzz_seeds` rewrites them).

use restart::region::codec::{copy_size, decode_slot, encode_copy, Header, SlotState, TableKind};

#[test]
fn region_parse_seeds() {
    let h =
        Header::for_layout("controlplane", 3, &[(1, TableKind::Records, 64, 16), (2, TableKind::Raw, 4096, 2)], 4096)
            .unwrap();
    let header = h.encode();
    assert_eq!(Header::parse(&header).unwrap(), h);
    labtest::fuzz_seed("region_parse", "header", &header);

    // The target reads a slot of record size 4 × the first byte: 64 bytes, copy 1 committed.
    let record = 64;
    let mut slot = vec![0u8; 2 * copy_size(record)];
    let payload: Vec<u8> = (0..record as u8).collect();
    encode_copy(5, &payload, &mut slot[..copy_size(record)]);
    encode_copy(6, &payload, &mut slot[copy_size(record)..]);
    assert_eq!(decode_slot(&slot, record), Ok(SlotState::Valid { copy: 1, seq: 6 }));
    let mut seed = vec![(record / 4) as u8];
    seed.extend_from_slice(&slot);
    labtest::fuzz_seed("region_parse", "slot", &seed);
}
