//! Framing: a 4-byte big-endian length, then that many bytes of JSON.
//!
//! [`split_frame`] is the sans-IO decoder (bytes in, a frame or "need more" out) for readers
//! that buffer; [`read_frame_bytes`] and [`write_frame`] are its blocking-stream forms.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bytes of the length prefix.
pub const HEADER: usize = 4;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The length prefix exceeds the protocol's limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The length announced (or produced).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a valid document of the expected type.
    #[error("invalid document: {0}")]
    Decode(String),
    /// Socket error (including a close in the middle of a frame).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// The body length a header announces, checked against `max`.
pub fn body_len(header: [u8; HEADER], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// The first frame of `buf`: `Ok(None)` while it is incomplete, else its body and the bytes
/// it takes in `buf` (header included).
pub fn split_frame(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER>() else { return Ok(None) };
    let end = HEADER + body_len(*header, max)?;
    Ok(buf.get(HEADER..end).map(|body| (body, end)))
}

/// One frame of `value`: header and body.
pub fn encode<T: Serialize>(value: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; HEADER];
    serde_json::to_writer(&mut buf, value).map_err(|e| FrameError::Decode(e.to_string()))?;
    let len = buf.len() - HEADER;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    buf[..HEADER].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Writes one frame.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, value: &T, max: usize) -> Result<(), FrameError> {
    w.write_all(&encode(value, max)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame's body. `Closed` when the peer closed cleanly before a frame.
pub fn read_frame_bytes<R: Read>(r: &mut R, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut body = vec![0u8; body_len(header, max)?];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Reads and decodes one frame.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R, max: usize) -> Result<T, FrameError> {
    let body = read_frame_bytes(r, max)?;
    serde_json::from_slice(&body).map_err(|e| FrameError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 10;

    #[test]
    fn roundtrip() {
        let doc = serde_json::json!({"id": 7, "body": ["a", 1]});
        let mut buf = Vec::new();
        write_frame(&mut buf, &doc, MAX).unwrap();
        assert_eq!(read_frame::<_, serde_json::Value>(&mut buf.as_slice(), MAX).unwrap(), doc);
        let (body, used) = split_frame(&buf, MAX).unwrap().unwrap();
        assert_eq!((serde_json::from_slice::<serde_json::Value>(body).unwrap(), used), (doc, buf.len()));
        assert!(split_frame(&buf[..buf.len() - 1], MAX).unwrap().is_none());
        assert!(split_frame(&buf[..3], MAX).unwrap().is_none());
    }

    #[test]
    fn oversized_documents_are_not_written() {
        let big = "x".repeat(MAX);
        assert!(matches!(encode(&big, MAX), Err(FrameError::TooLarge { max: MAX, .. })));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let read = |b: &[u8]| read_frame::<_, serde_json::Value>(&mut &b[..], MAX);
        assert!(matches!(read(b""), Err(FrameError::Closed)));
        assert!(matches!(read(b"\x00\x00"), Err(FrameError::Io(_))));
        assert!(matches!(read(b"\xff\xff\xff\xff"), Err(FrameError::TooLarge { len: 0xffff_ffff, max: MAX })));
        assert!(matches!(read(b"\x00\x00\x00\x03abc"), Err(FrameError::Decode(_))));
        assert!(matches!(read(b"\x00\x00\x00\x09abc"), Err(FrameError::Io(_))));
        assert!(matches!(split_frame(b"\xff\xff\xff\xff", MAX), Err(FrameError::TooLarge { .. })));
    }
}
