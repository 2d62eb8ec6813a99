//! `appliance.toml`: parsed, both processes' parts checked, written back and parsed again —
//! whatever parses must still parse once written back.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let o = appliance_config::fuzzing::appliance_toml(data);
    assert!(!o.parsed || o.reparsed, "a config that parsed did not parse once written back");
});
