//! Entry points shared by the cargo-fuzz target (`fuzz/`, target `rpc_frame`) and the
//! proptest that runs the same code on stable Rust in `cargo test -p rpc`.

use crate::frame::{read_frame_bytes, split_frame};
use crate::serve::incoming;
use crate::Protocol;

/// Feeds `data` to the decoders of `P` as a server would meet it: split into frames (each one
/// decoded and version-checked), as one document, and through the blocking reader. Any outcome
/// but a panic is fine.
pub fn frames<P: Protocol>(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((body, used))) = split_frame(rest, P::MAX_FRAME) {
        let _ = incoming::<P>(body);
        rest = &rest[used..];
    }
    let _ = incoming::<P>(data);
    let mut reader = data;
    while let Ok(body) = read_frame_bytes(&mut reader, P::MAX_FRAME) {
        let _ = incoming::<P>(&body);
    }
}
