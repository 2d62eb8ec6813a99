//! Typed records: fixed-size, position-independent (integers and inline
//! bytes only, never pointers) encodings of application state.

use thiserror::Error;

/// Why a record could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// The payload ended before the record did.
    #[error("record payload too short")]
    Short,
    /// A field holds a value the type does not allow.
    #[error("record field {field} has invalid value {value}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// Offending value.
        value: u64,
    },
}

/// A fixed-size state record.
pub trait Record: Sized {
    /// Encoded size in bytes (the table's record size).
    const SIZE: usize;
    /// Write the fields.
    fn encode(&self, w: &mut Writer<'_>);
    /// Read the fields back.
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError>;
}

/// Little-endian field writer over a record payload; writes past the end are
/// dropped (the encoded size is fixed by [`Record::SIZE`]).
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    /// Append raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        let end = (self.pos + b.len()).min(self.buf.len());
        let n = end - self.pos;
        self.buf[self.pos..end].copy_from_slice(&b[..n]);
        self.pos += b.len();
    }
    /// Append a u8.
    pub fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    /// Append a u16.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    /// Append a u32.
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    /// Append a u64.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    /// Append a length-prefixed (u16) byte string in a fixed field of `cap`
    /// bytes; longer input is cut.
    pub fn str_field(&mut self, s: &[u8], cap: usize) {
        let n = s.len().min(cap);
        self.u16(n as u16);
        self.bytes(&s[..n]);
        self.skip(cap - n);
    }
    /// Skip `n` bytes (left zero).
    pub fn skip(&mut self, n: usize) {
        self.pos += n;
    }
}

/// Little-endian field reader over a record payload.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Take `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.pos.checked_add(n).ok_or(RecordError::Short)?;
        let s = self.buf.get(self.pos..end).ok_or(RecordError::Short)?;
        self.pos = end;
        Ok(s)
    }
    /// Read a u8.
    pub fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.bytes(1)?[0])
    }
    /// Read a u16.
    pub fn u16(&mut self) -> Result<u16, RecordError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    /// Read a u32.
    pub fn u32(&mut self) -> Result<u32, RecordError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Read a u64.
    pub fn u64(&mut self) -> Result<u64, RecordError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// Read a field written by [`Writer::str_field`].
    pub fn str_field(&mut self, cap: usize) -> Result<&'a [u8], RecordError> {
        let n = self.u16()? as usize;
        if n > cap {
            return Err(RecordError::Invalid { field: "string length", value: n as u64 });
        }
        let s = self.bytes(cap)?;
        Ok(&s[..n])
    }
}
