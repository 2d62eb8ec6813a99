//! Ethernet II frames with at most one 802.1Q VLAN tag.
//!
//! ```text
//!  0      6      12         14        16         18
//!  | dst  | src  | 0x8100   | TCI     | ethertype | payload ...   (tagged)
//!  | dst  | src  | ethertype| payload ...                         (untagged)
//! ```

use std::fmt;
use std::str::FromStr;

use super::WireError;

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00` (the unknown target hardware address in an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The six octets.
    #[inline]
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Whether this is the broadcast address.
    #[inline]
    pub fn is_broadcast(self) -> bool {
        self == Self::BROADCAST
    }

    /// Whether the group bit is set (multicast or broadcast).
    #[inline]
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 1 != 0
    }

    /// Whether this is a unicast address (group bit clear).
    #[inline]
    pub const fn is_unicast(self) -> bool {
        !self.is_multicast()
    }
}

impl From<[u8; 6]> for MacAddr {
    #[inline]
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not six `:`- or `-`-separated hex octets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?} (want six hex octets like 02:00:00:00:00:01)")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, MacParseError> {
        let err = || MacParseError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for o in &mut out {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// Ethertype values the appliance knows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ); not parsed, reported as an "other" ethertype.
    pub const QINQ: u16 = 0x88a8;
    /// IPv6; not parsed, reported as an "other" ethertype.
    pub const IPV6: u16 = 0x86dd;
}

/// Field byte ranges.
pub mod field {
    use std::ops::Range;
    /// Destination MAC.
    pub const DST: Range<usize> = 0..6;
    /// Source MAC.
    pub const SRC: Range<usize> = 6..12;
    /// Ethertype, or 0x8100 when tagged.
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// VLAN tag control information (PCP, DEI, VLAN ID), when tagged.
    pub const VLAN_TCI: Range<usize> = 14..16;
    /// The inner ethertype, when tagged.
    pub const VLAN_ETHERTYPE: Range<usize> = 16..18;
}

/// Length of an untagged header.
pub const HEADER_LEN: usize = 14;
/// Length of a header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;
/// Smallest Ethernet frame without FCS; builders zero-pad up to it.
pub const MIN_FRAME_LEN: usize = 60;
/// The VLAN ID bits of the tag control information.
pub const VLAN_ID_MASK: u16 = 0x0fff;

/// A checked view of an Ethernet II frame with at most one 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is too short.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps `buffer` after checking the header (and the tag, if any) fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks the header fits; after `Ok` no accessor panics.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::TruncatedEthernet);
        }
        if self.outer_ethertype() == ethertype::VLAN && b.len() < VLAN_HEADER_LEN {
            return Err(WireError::TruncatedVlan);
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

    /// Destination MAC.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::DST];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Source MAC.
    #[inline]
    pub fn src(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::SRC];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The ethertype at bytes 12..14 (0x8100 when tagged).
    #[inline]
    pub fn outer_ethertype(&self) -> u16 {
        self.be16(field::ETHERTYPE)
    }

    /// Whether the frame carries an 802.1Q tag.
    #[inline]
    pub fn is_tagged(&self) -> bool {
        self.outer_ethertype() == ethertype::VLAN
    }

    /// The whole tag control information (PCP, DEI, VLAN ID), if tagged.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        self.is_tagged().then(|| self.be16(field::VLAN_TCI))
    }

    /// The 12-bit VLAN ID, if tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci().map(|t| t & VLAN_ID_MASK)
    }

    /// The ethertype of the payload (the inner one when tagged).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        if self.is_tagged() {
            self.be16(field::VLAN_ETHERTYPE)
        } else {
            self.outer_ethertype()
        }
    }

    /// Header length, i.e. the payload offset: 14, or 18 when tagged.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The payload (everything after the header, padding included).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC.
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    /// Sets the source MAC.
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    /// Sets the payload ethertype (the inner one when tagged).
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        let r = if self.is_tagged() { field::VLAN_ETHERTYPE } else { field::ETHERTYPE };
        self.buffer.as_mut()[r].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the VLAN ID of a tagged frame, keeping PCP and DEI; no-op when untagged.
    #[inline]
    pub fn set_vlan_id(&mut self, id: u16) {
        if let Some(tci) = self.vlan_tci() {
            let tci = (tci & !VLAN_ID_MASK) | (id & VLAN_ID_MASK);
            self.buffer.as_mut()[field::VLAN_TCI].copy_from_slice(&tci.to_be_bytes());
        }
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        &mut self.buffer.as_mut()[h..]
    }
}

/// Writes an Ethernet header (tagged with VLAN ID `vlan` and PCP 0 if given) at the start of
/// `buf`; returns its length, or `None` if `buf` is too short.
#[inline]
pub fn write_header(buf: &mut [u8], dst: MacAddr, src: MacAddr, vlan: Option<u16>, ethertype: u16) -> Option<usize> {
    match vlan {
        None => {
            let h = buf.first_chunk_mut::<HEADER_LEN>()?;
            h[field::DST].copy_from_slice(&dst.0);
            h[field::SRC].copy_from_slice(&src.0);
            h[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
            Some(HEADER_LEN)
        }
        Some(id) => {
            let h = buf.first_chunk_mut::<VLAN_HEADER_LEN>()?;
            h[field::DST].copy_from_slice(&dst.0);
            h[field::SRC].copy_from_slice(&src.0);
            h[field::ETHERTYPE].copy_from_slice(&ethertype::VLAN.to_be_bytes());
            h[field::VLAN_TCI].copy_from_slice(&(id & VLAN_ID_MASK).to_be_bytes());
            h[field::VLAN_ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
            Some(VLAN_HEADER_LEN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 16] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // src
        0x08, 0x00, // IPv4
        0x45, 0x00,
    ];

    const TAGGED: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // src
        0x81, 0x00, 0xa0, 0x64, // 802.1Q, PCP 5, VLAN 100
        0x08, 0x06, // ARP
        0x00, 0x01,
    ];

    #[test]
    fn untagged() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst(), "02:00:00:00:00:01".parse().unwrap());
        assert_eq!(f.src().to_string(), "52:54:00:12:34:56");
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn tagged() {
        let f = Frame::new_checked(&TAGGED[..]).unwrap();
        assert!(f.dst().is_broadcast());
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.vlan_tci(), Some(0xa064));
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x00, 0x01]);
    }

    #[test]
    fn truncated() {
        assert_eq!(Frame::new_checked(&UNTAGGED[..13]).unwrap_err(), WireError::TruncatedEthernet);
        assert_eq!(Frame::new_checked(&TAGGED[..17]).unwrap_err(), WireError::TruncatedVlan);
        assert!(Frame::new_checked(&TAGGED[..18]).is_ok());
    }

    #[test]
    fn setters() {
        let mut b = TAGGED;
        let mut f = Frame::new_checked(&mut b[..]).unwrap();
        f.set_dst(MacAddr([1, 2, 3, 4, 5, 6]));
        f.set_src(MacAddr([7, 8, 9, 10, 11, 12]));
        f.set_vlan_id(7);
        f.set_ethertype(ethertype::IPV4);
        assert_eq!(f.dst().octets(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(f.vlan_tci(), Some(0xa007));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.outer_ethertype(), ethertype::VLAN);
    }

    #[test]
    fn write_header_roundtrip() {
        let mut buf = [0u8; 18];
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        assert_eq!(write_header(&mut buf, MacAddr::BROADCAST, mac, Some(42), ethertype::ARP), Some(18));
        let f = Frame::new_checked(&buf[..]).unwrap();
        assert_eq!((f.dst(), f.src(), f.vlan_id(), f.ethertype()), (MacAddr::BROADCAST, mac, Some(42), ethertype::ARP));
        assert_eq!(write_header(&mut buf[..13], mac, mac, None, 0), None);
        assert_eq!(write_header(&mut buf[..17], mac, mac, Some(1), 0), None);
    }

    #[test]
    fn mac_parse() {
        assert_eq!("02-00-00-00-00-0A".parse::<MacAddr>().unwrap(), MacAddr([2, 0, 0, 0, 0, 10]));
        for bad in ["", "02:00:00:00:00", "02:00:00:00:00:00:00", "0g:00:00:00:00:00", "002:0:0:0:0:0"] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        assert!(MacAddr::BROADCAST.is_multicast() && MacAddr([2, 0, 0, 0, 0, 1]).is_unicast());
    }
}
