//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer) that parse what comes
//! from outside the control plane: beacon datagrams from the network, and the text another
//! ServerIron-CLI device prints back to the telnet driver. The property tests in
//! `tests/fuzzing.rs` run the same functions with proptest's inputs on stable Rust. None of
//! them may panic, whatever the bytes.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::beacon::tracker::{Tracker, TrackerConfig};
use crate::beacon::wire::{decode, Body, DecodeError, Envelope, TAG_LEN};
use crate::drivers::serveriron::{parse_show_bind, parse_show_sessions};
use crate::time::Time;

/// The key of profile `fuzz`, the one the signed half of [`beacon_datagram`] uses.
pub const BEACON_KEY: &[u8] = b"fuzz-key";

/// `data` as a datagram twice: as it is (almost always refused at the tag), and with a valid
/// HMAC tag appended, so that the decoder's body parsing is reached for every input. A
/// datagram that decodes goes on into a beacon tracker, as the beacon service would feed it.
/// Returns both outcomes.
pub fn beacon_datagram(data: &[u8]) -> [Result<Envelope, DecodeError>; 2] {
    let raw = decode(data, |p| (p == "fuzz").then_some(BEACON_KEY));
    let mut signed = data.to_vec();
    let mut mac = Hmac::<Sha256>::new_from_slice(BEACON_KEY).expect("HMAC takes keys of any length");
    mac.update(data);
    signed.extend_from_slice(&mac.finalize().into_bytes());
    debug_assert_eq!(signed.len(), data.len() + TAG_LEN);
    let tagged = decode(&signed, |_| Some(BEACON_KEY));
    for env in raw.iter().chain(tagged.iter()) {
        track(env);
    }
    [raw, tagged]
}

/// Feeds a decoded datagram to a fresh tracker and lets its deadlines pass.
fn track(env: &Envelope) {
    let mut t = Tracker::new(TrackerConfig::default());
    let now = Time::from_nanos(env.timestamp_ms.saturating_mul(1_000_000));
    match &env.body {
        Body::Beacon { interval_ms, bindings } => {
            let every = Duration::from_millis(u64::from(*interval_ms));
            let _ = t.on_beacon(now, env.sender, every, bindings);
            let _ = t.on_beacon(now, env.sender, every, &bindings[..bindings.len() / 2]);
            let _ = t.on_tick(now + Duration::from_secs(3600));
        }
        Body::Remove { bindings } => {
            let _ = t.on_remove(now, env.sender, bindings);
        }
        Body::Report { .. } | Body::Heartbeat(_) => {}
    }
}

/// `data` as the text a ServerIron-CLI device answers `show server bind` and `show session`
/// with: both parsers of the telnet driver over it. Returns how many bindings and sessions they
/// found.
pub fn serveriron_output(data: &[u8]) -> (usize, usize) {
    let text = String::from_utf8_lossy(data);
    let binds = parse_show_bind(&text);
    let sessions = parse_show_sessions(&text);
    (binds.len(), sessions.rows.len())
}
