//! TCP headers (RFC 9293).
//!
//! The view covers a TCP segment (header, options, payload) and nothing after it: pass it
//! the IPv4 payload, which is bounded by the IP total length.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops;

use super::ipv4::protocol;
use super::{checksum, WireError};

/// Field byte ranges and positions.
pub mod field {
    use std::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Sequence number.
    pub const SEQ: Range<usize> = 4..8;
    /// Acknowledgment number.
    pub const ACK: Range<usize> = 8..12;
    /// Data offset in 32-bit words (high nibble).
    pub const DATA_OFFSET: usize = 12;
    /// Flags (CWR ECE URG ACK PSH RST SYN FIN).
    pub const FLAGS: usize = 13;
    /// Window.
    pub const WINDOW: Range<usize> = 14..16;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 16..18;
    /// Urgent pointer.
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// The eight TCP flag bits of byte 13.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// The raw byte.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (i, n) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// A checked view of a TCP segment.
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

    /// Wraps `buffer` after checking the fixed header fits and the data offset is >= 5
    /// words and fits the buffer.
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
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::TruncatedTcp);
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN || hl > b.len() {
            return Err(WireError::BadTcpDataOffset);
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

    #[inline]
    fn be32(&self, r: ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
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

    /// Sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        self.be32(field::SEQ)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack(&self) -> u32 {
        self.be32(field::ACK)
    }

    /// Header length in bytes (data offset * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// Flags.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Window.
    #[inline]
    pub fn window(&self) -> u16 {
        self.be16(field::WINDOW)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        self.be16(field::URGENT)
    }

    /// Options bytes.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// Payload (after the options, to the end of the buffer).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Sequence space the segment occupies: payload length, +1 for SYN, +1 for FIN.
    #[inline]
    pub fn segment_len(&self) -> u32 {
        let f = self.flags();
        self.payload().len() as u32 + u32::from(f.contains(TcpFlags::SYN)) + u32::from(f.contains(TcpFlags::FIN))
    }

    /// Whether the checksum verifies for a segment sent from `src` to `dst`.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        checksum::verify(checksum::pseudo_header_v4(src, dst, protocol::TCP, b.len() as u16), b)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_be16(&mut self, r: ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    fn set_be32(&mut self, r: ops::Range<usize>, v: u32) {
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq(&mut self, v: u32) {
        self.set_be32(field::SEQ, v);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack(&mut self, v: u32) {
        self.set_be32(field::ACK, v);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60); clears the reserved bits.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFFSET] = ((len / 4) as u8) << 4;
    }

    /// Sets the flags.
    #[inline]
    pub fn set_flags(&mut self, f: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }

    /// Sets the window.
    #[inline]
    pub fn set_window(&mut self, v: u16) {
        self.set_be16(field::WINDOW, v);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, v: u16) {
        self.set_be16(field::URGENT, v);
    }

    /// Recomputes the checksum from scratch for a segment sent from `src` to `dst`.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let c = checksum::l4_v4(src, dst, protocol::TCP, self.buffer.as_ref(), field::CHECKSUM.start);
        self.set_checksum(c);
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        &mut self.buffer.as_mut()[h..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    /// A SYN 10.0.0.2:40000 -> 10.0.0.100:80 with an MSS option (1460), window 64240.
    const SYN: [u8; 24] = [
        0x9c, 0x40, 0x00, 0x50, // ports
        0x12, 0x34, 0x56, 0x78, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0x60, 0x02, 0xfa, 0xf0, // doff 6, SYN, window
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
    ];

    #[test]
    fn fields() {
        let mut b = SYN;
        Packet::new_unchecked(&mut b[..]).fill_checksum(SRC, DST);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!((p.seq(), p.ack()), (0x1234_5678, 0));
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert_eq!(format!("{:?}", p.flags() | TcpFlags::ACK), "SYN|ACK");
        assert_eq!(p.window(), 64240);
        assert_eq!(p.options(), &[2, 4, 5, 0xb4]);
        assert!(p.payload().is_empty());
        assert_eq!(p.segment_len(), 1);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(10, 0, 0, 101)));
    }

    #[test]
    fn rejects() {
        assert_eq!(Packet::new_checked(&SYN[..19]).unwrap_err(), WireError::TruncatedTcp);
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::BadTcpDataOffset);
        b[12] = 0x70;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::BadTcpDataOffset);
        b[12] = 0x50;
        assert_eq!(Packet::new_checked(&b[..]).unwrap().payload(), &[2, 4, 5, 0xb4]);
    }

    #[test]
    fn setters() {
        let mut b = [0u8; 23];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(80);
        p.set_dst_port(40000);
        p.set_seq(1);
        p.set_ack(0x1234_5679);
        p.set_header_len(20);
        p.set_flags(TcpFlags::SYN | TcpFlags::ACK);
        p.set_window(1000);
        p.set_urgent(0);
        p.payload_mut().copy_from_slice(b"abc");
        p.fill_checksum(DST, SRC);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(DST, SRC));
        assert!(p.flags().contains(TcpFlags::SYN | TcpFlags::ACK));
        assert!(!p.flags().intersects(TcpFlags::RST | TcpFlags::FIN));
        assert_eq!(p.segment_len(), 4);
        assert_eq!(p.payload(), b"abc");
    }
}
