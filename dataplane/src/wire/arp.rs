//! ARP for Ethernet/IPv4 (RFC 826), the only kind the appliance speaks.
//!
//! The view covers the 28-byte ARP packet (the Ethernet payload), not the Ethernet header.

use std::net::Ipv4Addr;

use super::ethernet::MacAddr;
use super::WireError;

/// Field byte ranges.
pub mod field {
    use std::ops::Range;
    /// Hardware type (1 = Ethernet).
    pub const HTYPE: Range<usize> = 0..2;
    /// Protocol type (0x0800 = IPv4).
    pub const PTYPE: Range<usize> = 2..4;
    /// Hardware address length (6).
    pub const HLEN: usize = 4;
    /// Protocol address length (4).
    pub const PLEN: usize = 5;
    /// Operation.
    pub const OPER: Range<usize> = 6..8;
    /// Sender hardware address.
    pub const SHA: Range<usize> = 8..14;
    /// Sender protocol address.
    pub const SPA: Range<usize> = 14..18;
    /// Target hardware address.
    pub const THA: Range<usize> = 18..24;
    /// Target protocol address.
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// The fixed first 6 bytes: htype 1, ptype 0x0800, hlen 6, plen 4.
pub const ETHERNET_IPV4_PREFIX: [u8; 6] = [0x00, 0x01, 0x08, 0x00, 6, 4];

/// ARP operation codes.
pub mod op {
    /// Request ("who has TPA? tell SPA").
    pub const REQUEST: u16 = 1;
    /// Reply ("SPA is at SHA").
    pub const REPLY: u16 = 2;
}

/// A checked view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn mac_at(b: &[u8], r: std::ops::Range<usize>) -> MacAddr {
    let b = &b[r];
    MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
}

#[inline]
fn ip_at(b: &[u8], r: std::ops::Range<usize>) -> Ipv4Addr {
    let b = &b[r];
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is too short.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking it holds 28 bytes of Ethernet/IPv4 ARP.
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
        if b.len() < PACKET_LEN {
            return Err(WireError::TruncatedArp);
        }
        if b[..6] != ETHERNET_IPV4_PREFIX {
            return Err(WireError::BadArp);
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Operation ([`op::REQUEST`], [`op::REPLY`], or anything else the sender put there).
    #[inline]
    pub fn operation(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::OPER];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Sender hardware address.
    #[inline]
    pub fn sha(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SHA)
    }

    /// Sender protocol address.
    #[inline]
    pub fn spa(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::SPA)
    }

    /// Target hardware address.
    #[inline]
    pub fn tha(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::THA)
    }

    /// Target protocol address.
    #[inline]
    pub fn tpa(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed Ethernet/IPv4 prefix (htype, ptype, hlen, plen).
    #[inline]
    pub fn init_ethernet_ipv4(&mut self) {
        self.buffer.as_mut()[..6].copy_from_slice(&ETHERNET_IPV4_PREFIX);
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&op.to_be_bytes());
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_sha(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac.0);
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_spa(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_tha(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac.0);
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_tpa(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Who has 10.0.0.1? Tell 10.0.0.2" from 52:54:00:12:34:56.
    pub(crate) const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // eth/ipv4, request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 2, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 1, // target
    ];

    #[test]
    fn request_fields() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.operation(), op::REQUEST);
        assert_eq!(p.sha(), MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        assert_eq!(p.spa(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.tha(), MacAddr::ZERO);
        assert_eq!(p.tpa(), Ipv4Addr::new(10, 0, 0, 1));
    }

    #[test]
    fn rejects() {
        assert_eq!(Packet::new_checked(&REQUEST[..27]).unwrap_err(), WireError::TruncatedArp);
        for i in 0..6 {
            let mut b = REQUEST;
            b[i] ^= 0x10;
            assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::BadArp, "byte {i}");
        }
        // Trailing Ethernet padding is fine.
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&REQUEST);
        assert!(Packet::new_checked(&padded[..]).is_ok());
    }

    #[test]
    fn setters() {
        let mut b = [0u8; 28];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.init_ethernet_ipv4();
        p.set_operation(op::REPLY);
        p.set_sha(MacAddr([2, 0, 0, 0, 0, 1]));
        p.set_spa(Ipv4Addr::new(10, 0, 0, 1));
        p.set_tha(MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        p.set_tpa(Ipv4Addr::new(10, 0, 0, 2));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.operation(), op::REPLY);
        assert_eq!(p.sha(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(p.tpa(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(&b[18..24], &REQUEST[8..14]);
    }
}
