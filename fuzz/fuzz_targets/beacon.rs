//! Beacon datagrams from the network: as received, and re-signed so the body decoder and the
//! beacon tracker are reached.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = controlplane::fuzzing::beacon_datagram(data);
});
