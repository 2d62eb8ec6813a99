//! A startup-config replayed at boot, rendered by `write memory` and replayed again: the
//! second boot must give the configuration the first one ran.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (_, first, second) = cli::fuzzing::startup_config(data);
    assert_eq!(first, second, "write memory + reboot changed the configuration");
});
