//! A whole logged-in telnet connection on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cli::fuzzing::connection(data);
});
