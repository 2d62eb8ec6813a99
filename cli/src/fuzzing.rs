//! Entry points for the fuzz targets in `cli/fuzz/` (cargo-fuzz, libFuzzer). The property tests
//! (`tests/properties.rs`) call the same functions with proptest's inputs, so `cargo test`
//! covers them on stable Rust. None of them may panic, whatever the input.

use std::time::{Duration, Instant};

use crate::auth::{hash_password_with, Cost, Credentials};
use crate::backend::FakeBackend;
use crate::config::SlbConfig;
use crate::server::{Connection, ServerSettings};
use crate::session::{Session, SessionOptions};
use crate::telnet::{Event, TelnetCodec};

/// The telnet decoder over arbitrary bytes, split at a point chosen by the first byte so that
/// sequences cut across reads are exercised. Returns the events and negotiation replies.
pub fn telnet_decode(input: &[u8]) -> (Vec<Event>, Vec<u8>) {
    let mut codec = TelnetCodec::new();
    let mut events = Vec::new();
    let mut reply = Vec::new();
    codec.start(&mut reply);
    let cut = input.first().map_or(0, |&b| b as usize % (input.len() + 1));
    codec.decode(&input[..cut], &mut events, &mut reply);
    codec.decode(&input[cut..], &mut events, &mut reply);
    (events, reply)
}

/// The command parser and executor over arbitrary text: every line is executed in a privileged
/// session (so every mode can be reached) and also asked for `?` help and Tab completion.
/// Returns the final configuration.
pub fn command_lines(input: &[u8]) -> SlbConfig {
    let text = String::from_utf8_lossy(input);
    let mut cfg = SlbConfig::default();
    let mut backend = FakeBackend::default();
    let mut s = Session::new(SessionOptions { enable_secret: None, privileged: true });
    for line in text.split(['\n', '\r']) {
        let _ = s.help(line);
        let _ = s.complete(line);
        let out = s.execute(line, &mut cfg, &mut backend);
        if out.quit {
            s = Session::new(SessionOptions { enable_secret: None, privileged: true });
        }
    }
    cfg
}

fn fuzz_settings() -> ServerSettings {
    // Cheap, fixed hash so fuzzing spends its time in the driver, not in Argon2.
    let h = hash_password_with("acm-lab", b"fuzz-salt", Cost::TEST).unwrap_or_default();
    let creds = Credentials::new([("admin".to_string(), h)], None).unwrap_or_default();
    let mut s = ServerSettings::new(creds);
    s.login_fail_delay = Duration::ZERO;
    s
}

/// A whole telnet connection: logs in as admin, then feeds `input` in chunks (the first byte of
/// each chunk is its length), advancing the clock a second per chunk.
pub fn connection(input: &[u8]) -> Vec<u8> {
    let mut now = Instant::now();
    let mut conn = Connection::new(fuzz_settings(), now);
    let mut cfg = SlbConfig::default();
    let mut backend = FakeBackend::default();
    let mut out = conn.start(now);
    out.extend(conn.on_input(b"admin\r\nacm-lab\r\n", now, &mut cfg, &mut backend));
    let mut rest = input;
    while let Some((&n, tail)) = rest.split_first() {
        let n = (n as usize).min(tail.len());
        let (chunk, tail) = tail.split_at(n);
        rest = tail;
        now += Duration::from_secs(1);
        out.extend(conn.on_input(chunk, now, &mut cfg, &mut backend));
        out.extend(conn.on_timer(now));
        if conn.is_closed() {
            break;
        }
    }
    out
}

/// `input` (lossily as UTF-8) as a startup-config read at boot: replayed, rendered as the
/// running-config, and the rendering replayed again, as `write memory` and the next boot would.
/// Returns the lines the first replay refused and the two configurations.
pub fn startup_config(input: &[u8]) -> (usize, SlbConfig, SlbConfig) {
    let text = String::from_utf8_lossy(input);
    let mut cfg = SlbConfig::default();
    let refused = crate::replay::replay(&text, &mut cfg, &mut FakeBackend::default()).len();
    let mut again = SlbConfig::default();
    let _ = crate::replay::replay(&cfg.render(), &mut again, &mut FakeBackend::default());
    (refused, cfg, again)
}
