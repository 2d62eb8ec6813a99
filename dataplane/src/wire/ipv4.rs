//! IPv4 headers (RFC 791).
//!
//! The view covers an IPv4 datagram at the start of its buffer; the buffer may be longer
//! (Ethernet padding), and [`Packet::payload`] stops at the total length. Options are not
//! interpreted, only skipped via the IHL.

use std::net::Ipv4Addr;

use super::{checksum, WireError};

/// Field byte ranges and positions.
pub mod field {
    use std::ops::Range;
    /// Version (high nibble) and IHL in 32-bit words (low nibble).
    pub const VER_IHL: usize = 0;
    /// DSCP and ECN.
    pub const DSCP_ECN: usize = 1;
    /// Total length of the datagram, header included.
    pub const TOTAL_LEN: Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: Range<usize> = 4..6;
    /// Flags (3 bits) and fragment offset in 8-byte units (13 bits).
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC: Range<usize> = 12..16;
    /// Destination address.
    pub const DST: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// "Don't fragment" in the flags/fragment-offset word.
pub const FLAG_DF: u16 = 0x4000;
/// "More fragments" in the flags/fragment-offset word.
pub const FLAG_MF: u16 = 0x2000;
/// Fragment offset mask (8-byte units) in the flags/fragment-offset word.
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// IP protocol numbers the appliance knows.
pub mod protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// A checked view of an IPv4 datagram.
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

    /// Wraps `buffer` after the structural checks: version 4, IHL >= 5 and the header fits,
    /// header length <= total length <= buffer length. The header checksum is *not*
    /// checked here (so a half-built packet can be wrapped); see
    /// [`verify_checksum`](Self::verify_checksum) and [`check_checksum`](Self::check_checksum).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// The structural checks of [`new_checked`](Self::new_checked).
    pub fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::TruncatedIpv4);
        }
        if self.version() != 4 {
            return Err(WireError::BadIpVersion);
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN || hl > b.len() {
            return Err(WireError::BadIhl);
        }
        let tl = usize::from(self.total_len());
        if tl < hl || tl > b.len() {
            return Err(WireError::BadTotalLength);
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn be16(&self, r: std::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    #[inline]
    fn addr(&self, r: std::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[r];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// IP version (4 after [`new_checked`](Self::new_checked)).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// DSCP and ECN byte.
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length of the datagram in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        self.be16(field::TOTAL_LEN)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        self.be16(field::IDENT)
    }

    /// The raw flags/fragment-offset word.
    #[inline]
    pub fn flags_frag(&self) -> u16 {
        self.be16(field::FLAGS_FRAG)
    }

    /// "Don't fragment" flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// "More fragments" flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field is in 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) << 3
    }

    /// Whether this datagram is a fragment (MF set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Payload protocol (see [`protocol`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        self.addr(field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        self.addr(field::DST)
    }

    /// The options bytes (empty when IHL is 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// Whether the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(0, self.header())
    }

    /// `Ok` if the header checksum verifies, else [`WireError::BadIpChecksum`].
    #[inline]
    pub fn check_checksum(&self) -> Result<(), WireError> {
        if self.verify_checksum() {
            Ok(())
        } else {
            Err(WireError::BadIpChecksum)
        }
    }

    /// The payload, from the end of the header to the total length (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_be16(&mut self, r: std::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP and ECN.
    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        self.set_be16(field::TOTAL_LEN, v);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        self.set_be16(field::IDENT, v);
    }

    /// Sets the raw flags/fragment-offset word.
    #[inline]
    pub fn set_flags_frag(&mut self, v: u16) {
        self.set_be16(field::FLAGS_FRAG, v);
    }

    /// Sets the TTL (the checksum is not updated).
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v);
    }

    /// Sets the source address (the checksum is not updated).
    #[inline]
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address (the checksum is not updated).
    #[inline]
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        let c = checksum::ipv4_header(self.header());
        self.set_checksum(c);
    }

    /// The payload (bounded by the total length), mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[h..t]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10.0.0.2 -> 10.0.0.100, TCP, 40 bytes, DF, TTL 64, followed by 6 bytes of Ethernet
    /// padding.
    const TCP_SYN_IP: [u8; 46] = [
        0x45, 0x00, 0x00, 0x28, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x24, 10, 0, 0, 2, 10, 0, 0,
        100, // header (checksum filled in by the test)
        0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, // TCP
        0, 0, 0, 0, 0, 0, // padding
    ];

    fn fixture() -> [u8; 46] {
        let mut b = TCP_SYN_IP;
        let c = checksum::ipv4_header(&b[..20]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        b
    }

    #[test]
    fn fields() {
        let b = fixture();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 40);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::TCP);
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 0, 100));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 20, "padding excluded");
        assert!(p.options().is_empty());
    }

    #[test]
    fn options_and_fragments() {
        // IHL 6 with a 4-byte option (NOP NOP NOP EOL), fragment offset 185*8, MF.
        let mut b = [0u8; 28];
        b[..20].copy_from_slice(&fixture()[..20]);
        b[0] = 0x46;
        b[2..4].copy_from_slice(&28u16.to_be_bytes());
        b[6..8].copy_from_slice(&(FLAG_MF | 185).to_be_bytes());
        b[20..24].copy_from_slice(&[1, 1, 1, 0]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload().len(), 4);
        assert!(p.is_fragment() && p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        // Offset alone (last fragment) is also a fragment.
        p.set_flags_frag(185);
        assert!(p.is_fragment());
        p.set_flags_frag(FLAG_DF);
        assert!(!p.is_fragment());
    }

    #[test]
    fn rejects() {
        let b = fixture();
        assert_eq!(Packet::new_checked(&b[..19]).unwrap_err(), WireError::TruncatedIpv4);
        let mut v6 = b;
        v6[0] = 0x65;
        assert_eq!(Packet::new_checked(&v6[..]).unwrap_err(), WireError::BadIpVersion);
        let mut ihl4 = b;
        ihl4[0] = 0x44;
        assert_eq!(Packet::new_checked(&ihl4[..]).unwrap_err(), WireError::BadIhl);
        let mut ihl15 = b;
        ihl15[0] = 0x4f;
        assert_eq!(Packet::new_checked(&ihl15[..]).unwrap_err(), WireError::BadIhl);
        assert_eq!(Packet::new_checked(&b[..39]).unwrap_err(), WireError::BadTotalLength);
        let mut short = b;
        short[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&short[..]).unwrap_err(), WireError::BadTotalLength);
        let mut bad = b;
        bad[8] = 63;
        let p = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(p.check_checksum(), Err(WireError::BadIpChecksum));
    }

    #[test]
    fn setters() {
        let mut b = fixture();
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_src(Ipv4Addr::new(192, 0, 2, 1));
        p.set_dst(Ipv4Addr::new(198, 51, 100, 7));
        p.set_ttl(1);
        p.set_protocol(protocol::UDP);
        p.set_ident(7);
        p.set_dscp_ecn(0xb8);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.src(), p.dst(), p.ttl(), p.protocol()),
            (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 7), 1, 17)
        );
        assert_eq!((p.ident(), p.dscp_ecn()), (7, 0xb8));
        p.payload_mut()[0] = 0xaa;
        assert_eq!(b[20], 0xaa);
    }
}
