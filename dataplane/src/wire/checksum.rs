//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried in a `u32` holding a ones'-complement partial sum that is at most
//! `0xFFFF` after [`sum`] (so a handful of them can be added with `+` and folded once by
//! [`fold`]). The checksum written into a header is the complement of the folded sum,
//! see [`finish`].
//!
//! The fast path never recomputes a TCP/UDP checksum over the payload: address and port
//! rewrites adjust the existing checksum with [`Incremental`] (RFC 1624 eqn. 3,
//! `HC' = ~(~HC + ~m + m')`). The full computations here serve tests, packet builders and
//! the rare RST.

use std::net::Ipv4Addr;

/// Ones'-complement sum of `data` as big-endian 16-bit words (an odd trailing byte is
/// padded with a zero byte on the right), folded to at most `0xFFFF`.
///
/// The result is `0` only if every byte of `data` is zero.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    // Adding 32-bit big-endian words and folding the 64-bit total gives the same
    // ones'-complement sum as adding 16-bit words (RFC 1071, "Parallel Summation").
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    // `rest` has 0..=3 bytes, so this copy never panics.
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    fold64(acc)
}

/// [`sum`] of an option-less 20-byte IPv4 header, fully unrolled for the fast path.
#[inline(always)]
pub fn sum20(h: &[u8; 20]) -> u32 {
    let mut acc = 0u32;
    let mut i = 0;
    while i < 20 {
        acc += u32::from(u16::from_be_bytes([h[i], h[i + 1]]));
        i += 2;
    }
    u32::from(fold(acc))
}

#[inline]
fn fold64(mut acc: u64) -> u32 {
    // Fold 64 -> 32 -> 16 bits with end-around carry.
    acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
    acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
    u32::from(fold(acc as u32))
}

/// Folds a 32-bit partial sum to 16 bits with end-around carry.
///
/// A non-zero input folds to a value in `1..=0xFFFF`.
#[inline]
pub const fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum as u16
}

/// The checksum to write into a header for the partial sum `sum`: `!fold(sum)`.
#[inline]
pub const fn finish(sum: u32) -> u16 {
    !fold(sum)
}

/// Partial sum of an IPv4 pseudo-header (RFC 793 / RFC 768): source, destination, zero,
/// protocol and the transport segment length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    u32::from(u16::from_be_bytes([s[0], s[1]]))
        + u32::from(u16::from_be_bytes([s[2], s[3]]))
        + u32::from(u16::from_be_bytes([d[0], d[1]]))
        + u32::from(u16::from_be_bytes([d[2], d[3]]))
        + u32::from(protocol)
        + u32::from(length)
}

/// The IPv4 header checksum of `header` (the whole header, options included), computed as
/// if its checksum field (bytes 10..12) were zero, whatever it holds.
///
/// A `header` shorter than 12 bytes is summed whole.
#[inline]
pub fn ipv4_header(header: &[u8]) -> u16 {
    match (header.get(..10), header.get(12..)) {
        (Some(a), Some(b)) => finish(sum(a) + sum(b)),
        _ => finish(sum(header)),
    }
}

/// The TCP or UDP checksum over an IPv4 pseudo-header and `segment` (transport header and
/// payload), computed as if the checksum field at `checksum_at` (16 for TCP, 6 for UDP)
/// were zero.
///
/// For UDP the caller maps a result of `0` to `0xFFFF` (a zero UDP checksum means "none");
/// [`super::udp::Packet::fill_checksum`] does that. A segment longer than `u16::MAX` bytes
/// cannot occur inside an IPv4 datagram; its length is truncated in the pseudo-header.
#[inline]
pub fn l4_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8], checksum_at: usize) -> u16 {
    let pseudo = pseudo_header_v4(src, dst, protocol, segment.len() as u16);
    let body = match (segment.get(..checksum_at), segment.get(checksum_at + 2..)) {
        (Some(a), Some(b)) => sum(a) + sum(b),
        _ => sum(segment),
    };
    finish(pseudo + body)
}

/// Whether `data` (checksum field included) sums to `0xFFFF` on top of `pseudo`, i.e. its
/// checksum is valid. Pass `pseudo = 0` for the IPv4 header and ICMP.
#[inline]
pub fn verify(pseudo: u32, data: &[u8]) -> bool {
    fold(pseudo + sum(data)) == 0xFFFF
}

/// RFC 1624 incremental update of checksum `hc` for one 16-bit field changed from `old` to
/// `new`.
#[inline]
pub const fn update16(hc: u16, old: u16, new: u16) -> u16 {
    Incremental::new().word(old, new).apply(hc)
}

/// RFC 1624 incremental update of checksum `hc` for one 32-bit field (e.g. an IPv4
/// address) changed from `old` to `new`.
#[inline]
pub const fn update32(hc: u16, old: u32, new: u32) -> u16 {
    Incremental::new().dword(old, new).apply(hc)
}

/// An accumulated set of field changes, applied to a checksum in one step (RFC 1624 eqn. 3:
/// `HC' = ~(~HC + ~m + m')`, summed over every changed 16-bit word `m`).
///
/// Adding up to a few thousand changes cannot overflow the accumulator.
///
/// ```
/// use dataplane::wire::checksum::{update16, Incremental};
/// let hc = 0x1234;
/// assert_eq!(Incremental::new().word(0xAAAA, 0x5555).apply(hc), update16(hc, 0xAAAA, 0x5555));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Incremental(u32);

impl Incremental {
    /// No changes yet.
    #[inline]
    pub const fn new() -> Self {
        Incremental(0)
    }

    /// Records a 16-bit word changed from `old` to `new`.
    #[inline]
    #[must_use]
    pub const fn word(self, old: u16, new: u16) -> Self {
        Incremental(self.0 + (!old) as u32 + new as u32)
    }

    /// Records a 32-bit field changed from `old` to `new` (two 16-bit words).
    #[inline]
    #[must_use]
    pub const fn dword(self, old: u32, new: u32) -> Self {
        self.word((old >> 16) as u16, (new >> 16) as u16).word(old as u16, new as u16)
    }

    /// The checksum that replaces `hc` once the recorded changes are made.
    ///
    /// If `hc` was correct for the old data, the result equals a full recomputation over the
    /// new data (the two can only differ in the `0x0000`/`0xFFFF` representation of zero,
    /// which a real IPv4, TCP or UDP header never produces as its sum is non-zero).
    #[inline]
    pub const fn apply(self, hc: u16) -> u16 {
        // Fold the (possibly large) accumulator first so the addition cannot overflow.
        let delta = fold(self.0) as u32;
        !fold((!hc) as u32 + delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 section 3 example: the words 0001 f203 f4f5 f6f7 sum to 0xddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(finish(sum(&data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0xab]), 0x1234 + 0xab00);
        assert_eq!(sum(&[]), 0);
        // Every prefix length of a long buffer agrees with a naive 16-bit word sum.
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        for n in 0..data.len() {
            let mut naive: u32 = 0;
            for c in data[..n].chunks(2) {
                let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
                naive += u32::from(w);
            }
            assert_eq!(fold(sum(&data[..n])), fold(naive), "length {n}");
        }
    }

    /// A real IPv4 header (from a capture: 192.168.0.1 -> 192.168.0.199, UDP) with
    /// checksum 0xb861.
    #[test]
    fn ipv4_header_checksum() {
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(ipv4_header(&hdr), 0xb861);
        assert!(verify(0, &hdr));
        assert_eq!(sum20(&hdr), sum(&hdr));
        let mut bad = hdr;
        bad[11] ^= 1;
        assert!(!verify(0, &bad));
        assert_eq!(ipv4_header(&bad), 0xb861);
    }

    #[test]
    fn incremental_matches_full() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        let hc = u16::from_be_bytes([hdr[10], hdr[11]]);
        let old = u32::from_be_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]);
        let new = u32::from_be_bytes([10, 0, 1, 11]);
        hdr[16..20].copy_from_slice(&new.to_be_bytes());
        assert_eq!(update32(hc, old, new), ipv4_header(&hdr));
        // TTL 0x40 -> 0x3f in the TTL/protocol word.
        let hc2 = ipv4_header(&hdr);
        hdr[8] = 0x3f;
        assert_eq!(update16(hc2, 0x4011, 0x3f11), ipv4_header(&hdr));
    }

    /// RFC 1624 section 4 example: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285 gives 0x0000.
    #[test]
    fn rfc1624_example() {
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn no_change_is_identity() {
        for hc in [0x0000u16, 0x0001, 0x1234, 0xfffe] {
            assert_eq!(update16(hc, 0xbeef, 0xbeef), hc);
            assert_eq!(Incremental::new().apply(hc), hc);
        }
    }

    #[test]
    fn udp_checksum_known() {
        // UDP 10.0.0.2:1234 -> 10.0.0.100:53, payload "hi".
        let mut seg = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, b'h', b'i'];
        let src = Ipv4Addr::new(10, 0, 0, 2);
        let dst = Ipv4Addr::new(10, 0, 0, 100);
        let c = l4_v4(src, dst, 17, &seg, 6);
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        assert!(verify(pseudo_header_v4(src, dst, 17, seg.len() as u16), &seg));
        // Computing again ignores the now-filled field.
        assert_eq!(l4_v4(src, dst, 17, &seg, 6), c);
    }
}
