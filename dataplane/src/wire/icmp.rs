//! ICMP messages (RFC 792), with echo request/reply accessors.
//!
//! The view covers the whole ICMP message (the checksum covers it all): pass it the IPv4
//! payload. Every ICMP message has the 8-byte header below; for echo messages bytes 4..8
//! are the identifier and sequence number, for others they are type-specific.

use std::ops;

use super::{checksum, WireError};

/// Field byte ranges and positions.
pub mod field {
    use std::ops::Range;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum over the whole message.
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo identifier.
    pub const IDENT: Range<usize> = 4..6;
    /// Echo sequence number.
    pub const SEQ_NO: Range<usize> = 6..8;
}

/// Header length (type, code, checksum and 4 type-specific bytes).
pub const HEADER_LEN: usize = 8;

/// ICMP message types the appliance knows.
pub mod msg_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
}

/// A checked view of an ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is too short.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking the 8-byte header fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::TruncatedIcmp);
        }
        Ok(p)
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn be16(&self, r: ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Message type (see [`msg_type`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn ident(&self) -> u16 {
        self.be16(field::IDENT)
    }

    /// Echo sequence number (meaningful for echo request/reply).
    #[inline]
    pub fn seq_no(&self) -> u16 {
        self.be16(field::SEQ_NO)
    }

    /// Whether this is an echo request (type 8, code 0).
    #[inline]
    pub fn is_echo_request(&self) -> bool {
        self.msg_type() == msg_type::ECHO_REQUEST && self.code() == 0
    }

    /// Data after the 8-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum over the whole message verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(0, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_be16(&mut self, r: ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the message type (the checksum is not updated).
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the code (the checksum is not updated).
    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v);
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        self.set_be16(field::IDENT, v);
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_seq_no(&mut self, v: u16) {
        self.set_be16(field::SEQ_NO, v);
    }

    /// Recomputes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(self.buffer.as_ref()));
        self.set_checksum(c);
    }

    /// Data after the header, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Linux-style ping: echo request id 0x1a2b seq 1 with 8 bytes of data (checksum
    /// left zero, filled by the test).
    const PING: [u8; 16] = [0x08, 0x00, 0x00, 0x00, 0x1a, 0x2b, 0x00, 0x01, 0, 1, 2, 3, 4, 5, 6, 7];

    #[test]
    fn echo() {
        let mut b = PING;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert!(p.is_echo_request());
        assert_eq!((p.msg_type(), p.code(), p.ident(), p.seq_no()), (8, 0, 0x1a2b, 1));
        assert_eq!(p.payload(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        p.set_msg_type(msg_type::ECHO_REPLY);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.set_ident(2);
        p.set_seq_no(3);
        p.set_code(0);
        p.payload_mut()[0] = 9;
        assert_eq!((p.ident(), p.seq_no(), b[8]), (2, 3, 9));
    }

    #[test]
    fn rejects() {
        assert_eq!(Packet::new_checked(&PING[..7]).unwrap_err(), WireError::TruncatedIcmp);
        assert!(Packet::new_checked(&PING[..8]).unwrap().payload().is_empty());
    }
}
