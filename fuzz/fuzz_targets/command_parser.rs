//! The command parser and executor on arbitrary lines.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cli::fuzzing::command_lines(data);
});
