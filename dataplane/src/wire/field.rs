//! Header fields read and written at the byte ranges the header modules' `field` constants
//! give ([`super::ethernet::field`], [`super::arp::field`], [`super::ipv4::field`],
//! [`super::tcp::field`], [`super::udp::field`], [`super::icmp::field`]), on a header already
//! taken as a fixed-size array: the fast path's way to the bytes (the parser, the NAT
//! rewrites), where the views' per-access length checks are not wanted. With a constant
//! range and an array the index checks fold away at compile time.

use std::net::Ipv4Addr;
use std::ops::Range;

use super::ethernet::MacAddr;

/// The big-endian `u16` at `r` (two bytes).
#[inline(always)]
pub fn get16<const N: usize>(h: &[u8; N], r: Range<usize>) -> u16 {
    debug_assert_eq!(r.len(), 2);
    u16::from_be_bytes([h[r.start], h[r.start + 1]])
}

/// The big-endian `u32` at `r` (four bytes).
#[inline(always)]
pub fn get32<const N: usize>(h: &[u8; N], r: Range<usize>) -> u32 {
    debug_assert_eq!(r.len(), 4);
    u32::from_be_bytes([h[r.start], h[r.start + 1], h[r.start + 2], h[r.start + 3]])
}

/// Writes `v` big-endian at `r` (two bytes).
#[inline(always)]
pub fn set16<const N: usize>(h: &mut [u8; N], r: Range<usize>, v: u16) {
    debug_assert_eq!(r.len(), 2);
    let [a, b] = v.to_be_bytes();
    h[r.start] = a;
    h[r.start + 1] = b;
}

/// Writes `v` big-endian at `r` (four bytes).
#[inline(always)]
pub fn set32<const N: usize>(h: &mut [u8; N], r: Range<usize>, v: u32) {
    debug_assert_eq!(r.len(), 4);
    let [a, b, c, d] = v.to_be_bytes();
    h[r.start] = a;
    h[r.start + 1] = b;
    h[r.start + 2] = c;
    h[r.start + 3] = d;
}

/// The IPv4 address at `r` (four bytes).
#[inline(always)]
pub fn get_ipv4<const N: usize>(h: &[u8; N], r: Range<usize>) -> Ipv4Addr {
    debug_assert_eq!(r.len(), 4);
    let s = r.start;
    Ipv4Addr::new(h[s], h[s + 1], h[s + 2], h[s + 3])
}

/// The MAC address at `r` (six bytes).
#[inline(always)]
pub fn get_mac<const N: usize>(h: &[u8; N], r: Range<usize>) -> MacAddr {
    debug_assert_eq!(r.len(), 6);
    let s = r.start;
    MacAddr([h[s], h[s + 1], h[s + 2], h[s + 3], h[s + 4], h[s + 5]])
}

/// Writes the MAC address `m` at `r` (six bytes).
#[inline(always)]
pub fn set_mac<const N: usize>(h: &mut [u8; N], r: Range<usize>, m: MacAddr) {
    debug_assert_eq!(r.len(), 6);
    let s = r.start;
    h[s..s + 6].copy_from_slice(&m.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_big_endian() {
        let mut h = [0u8; 12];
        set16(&mut h, 0..2, 0x0102);
        set32(&mut h, 2..6, 0x0a00_0001);
        set_mac(&mut h, 6..12, MacAddr([2, 0, 0, 0, 0, 9]));
        assert_eq!(h, [1, 2, 10, 0, 0, 1, 2, 0, 0, 0, 0, 9]);
        assert_eq!(get16(&h, 0..2), 0x0102);
        assert_eq!(get32(&h, 2..6), 0x0a00_0001);
        assert_eq!(get_ipv4(&h, 2..6), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(get_mac(&h, 6..12), MacAddr([2, 0, 0, 0, 0, 9]));
    }
}
