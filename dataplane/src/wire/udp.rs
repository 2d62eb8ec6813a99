//! UDP headers (RFC 768).
//!
//! The view covers a UDP datagram; the buffer may be longer than the UDP length field (the
//! IP payload may carry trailing bytes), and [`Packet::payload`] stops at the length field.

use std::net::Ipv4Addr;
use std::ops;

use super::ipv4::protocol;
use super::{checksum, WireError};

/// Field byte ranges.
pub mod field {
    use std::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length of header and payload.
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum; 0 means "no checksum".
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Header length.
pub const HEADER_LEN: usize = 8;

/// A checked view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is malformed.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking the header fits and `8 <= length <= buffer length`.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// The checks of [`new_checked`](Self::new_checked).
    #[inline]
    pub fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::TruncatedUdp);
        }
        let l = usize::from(self.len());
        if l < HEADER_LEN || l > b.len() {
            return Err(WireError::BadUdpLength);
        }
        Ok(())
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

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        self.be16(field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        self.be16(field::DST_PORT)
    }

    /// The length field (header + payload).
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        self.be16(field::LENGTH)
    }

    /// Checksum field (0 = none).
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// Payload, bounded by the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Whether the checksum verifies for a datagram from `src` to `dst`; a zero checksum
    /// ("none") always verifies.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let l = self.len();
        let d = &self.buffer.as_ref()[..usize::from(l)];
        checksum::verify(checksum::pseudo_header_v4(src, dst, protocol::UDP, l), d)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_be16(&mut self, r: ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the source port (the checksum is not updated).
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        self.set_be16(field::SRC_PORT, v);
    }

    /// Sets the destination port (the checksum is not updated).
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        self.set_be16(field::DST_PORT, v);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        self.set_be16(field::LENGTH, v);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v);
    }

    /// Recomputes the checksum from scratch for a datagram from `src` to `dst` (a computed
    /// zero is sent as `0xFFFF`).
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let l = usize::from(self.len());
        let c = checksum::l4_v4(src, dst, protocol::UDP, &self.buffer.as_ref()[..l], field::CHECKSUM.start);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// The payload (bounded by the length field), mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..l]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    /// A DNS-looking query 10.0.0.2:5353 -> 10.0.0.100:53 with 4 payload bytes and 2
    /// trailing bytes beyond the UDP length.
    const DGRAM: [u8; 14] = [0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00];

    #[test]
    fn fields() {
        let mut b = DGRAM;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST), "zero checksum means none");
        p.fill_checksum(SRC, DST);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 12));
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        p.payload_mut()[0] = 0;
        assert_eq!(b[8], 0);
    }

    #[test]
    fn rejects() {
        assert_eq!(Packet::new_checked(&DGRAM[..7]).unwrap_err(), WireError::TruncatedUdp);
        assert_eq!(Packet::new_checked(&DGRAM[..11]).unwrap_err(), WireError::BadUdpLength);
        let mut b = DGRAM;
        b[5] = 7;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::BadUdpLength);
        b[5] = 8;
        assert!(Packet::new_checked(&b[..]).unwrap().payload().is_empty());
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Find a payload whose checksum computes to zero, then check it is sent as 0xFFFF.
        let mut b = [0u8; 10];
        b[5] = 10;
        for x in 0..=u16::MAX {
            b[8..10].copy_from_slice(&x.to_be_bytes());
            b[6..8].copy_from_slice(&[0, 0]);
            if checksum::l4_v4(SRC, DST, protocol::UDP, &b, 6) == 0 {
                let mut p = Packet::new_checked(&mut b[..]).unwrap();
                p.fill_checksum(SRC, DST);
                assert_eq!(p.checksum(), 0xffff);
                assert!(p.verify_checksum(SRC, DST));
                return;
            }
        }
        panic!("no zero-checksum payload found");
    }
}
