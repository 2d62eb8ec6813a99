//! Fuzz the state region parser: header + table directory, and dual-copy
//! record slots. Neither may panic on any input; a header that parses must
//! re-encode to bytes that parse to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use restart::region::codec::{decode_slot, Header};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::parse(data) {
        let again = Header::parse(&h.encode()).expect("re-encoded header parses");
        assert_eq!(again, h);
    }
    if let Some((&rs, rest)) = data.split_first() {
        let _ = decode_slot(rest, rs as usize * 4);
    }
});
