//! What another ServerIron-CLI device prints back to the telnet switch driver.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = controlplane::fuzzing::serveriron_output(data);
});
