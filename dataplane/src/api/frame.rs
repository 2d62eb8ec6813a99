//! Framing: a 4-byte big-endian length, then that many bytes of JSON.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest accepted frame (a List of a million bindings fits; garbage lengths do not).
pub const MAX_FRAME: usize = 64 << 20;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The length prefix exceeds [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The bytes are not a valid document of the expected type.
    #[error("invalid document: {0}")]
    Decode(String),
    /// Socket error (including a close in the middle of a frame).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Writes one frame.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, value: &T) -> Result<(), FrameError> {
    let body = serde_json::to_vec(value).map_err(|e| FrameError::Decode(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame's bytes. `Closed` when the peer closed cleanly before a frame.
pub fn read_frame_bytes<R: Read>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Reads and decodes one frame.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let body = read_frame_bytes(r)?;
    serde_json::from_slice(&body).map_err(|e| FrameError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Request, RequestBody, API_VERSION};

    #[test]
    fn roundtrip() {
        let req = Request { id: 7, version: API_VERSION, body: RequestBody::Stats };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        let back: Request = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(read_frame::<_, Request>(&mut &b""[..]), Err(FrameError::Closed)));
        assert!(matches!(read_frame::<_, Request>(&mut &b"\x00\x00"[..]), Err(FrameError::Io(_))));
        assert!(matches!(read_frame::<_, Request>(&mut &b"\xff\xff\xff\xff"[..]), Err(FrameError::TooLarge(_))));
        assert!(matches!(read_frame::<_, Request>(&mut &b"\x00\x00\x00\x03abc"[..]), Err(FrameError::Decode(_))));
        assert!(matches!(read_frame::<_, Request>(&mut &b"\x00\x00\x00\x09abc"[..]), Err(FrameError::Io(_))));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = read_frame::<_, Request>(&mut bytes.as_slice());
        }
    }
}
