#![no_main]
// The switch API's requests: the richest bodies the decoder meets.
libfuzzer_sys::fuzz_target!(|data: &[u8]| rpc::fuzzing::frames::<switch_api::SwitchApi>(data));
