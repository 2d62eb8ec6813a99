//! Packet builders: a frame template per run, patched per packet.
//!
//! The template is a whole Ethernet/IPv4/TCP-or-UDP frame built once with
//! [`dataplane::wire::build`]. Per packet only the client endpoint (source address and
//! port), a sequence number, the TCP flags and a 48-bit TSC timestamp change; both
//! checksums are finished from sums precomputed over the fixed part, so a packet costs a
//! copy of the template and a dozen additions whatever its size.
//!
//! Where things are (no VLAN, no IP or TCP options):
//!
//! | field | TCP frame | UDP frame |
//! |---|---|---|
//! | sequence number | TCP sequence number | payload bytes 6..10 |
//! | timestamp (TSC, low 48 bits) | payload bytes 0..6 | payload bytes 0..6 |
//! | opening packet | SYN flag (else ACK) | payload byte 10 = 1 |
//!
//! Sizes are Ethernet frame sizes *including* the 4-byte FCS, as in RFC 2544: a "64-byte"
//! frame is 60 bytes in the buffer (the NIC, here memif, has no FCS).

use std::net::Ipv4Addr;

use dataplane::wire::build::{tcp_frame, udp_frame, Ipv4Frame, TcpSegment};
use dataplane::wire::checksum::{finish, fold, pseudo_header_v4, sum};
use dataplane::wire::{MacAddr, TcpFlags};

/// Ethernet FCS, counted in frame sizes but absent from buffers.
pub const FCS_LEN: usize = 4;
/// Smallest frame size (with FCS).
pub const MIN_FRAME: u16 = 64;
/// Largest frame size (with FCS) at a 1500-byte MTU.
pub const MAX_FRAME: u16 = 1518;
/// Bytes of the timestamp in the payload.
pub const TS_LEN: usize = 6;
/// Mask of the timestamp's bits.
pub const TS_MASK: u64 = (1 << 48) - 1;

const IP_OFF: usize = 14;
const IP_CSUM: usize = IP_OFF + 10;
const IP_SRC: usize = IP_OFF + 12;
const L4_OFF: usize = IP_OFF + 20;
const TCP_SEQ: usize = L4_OFF + 4;
const TCP_FLAGS: usize = L4_OFF + 13;
const TCP_CSUM: usize = L4_OFF + 16;
const TCP_PAYLOAD: usize = L4_OFF + 20;
const UDP_CSUM: usize = L4_OFF + 6;
const UDP_PAYLOAD: usize = L4_OFF + 8;

/// Transport of the generated traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum L4Proto {
    /// TCP segments (SYN to open, ACK for established traffic).
    Tcp,
    /// UDP datagrams (every datagram of a new endpoint opens a flow).
    Udp,
}

/// Why a template cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The frame size is outside 64-1518.
    #[error("frame size {0} is outside {MIN_FRAME}-{MAX_FRAME} bytes")]
    FrameSize(u16),
}

/// What every packet of a run shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateSpec {
    /// TCP or UDP.
    pub proto: L4Proto,
    /// Frame size with FCS.
    pub frame_size: u16,
    /// Our MAC (client side).
    pub src_mac: MacAddr,
    /// The device under test's MAC on the client side.
    pub dst_mac: MacAddr,
    /// The VIP.
    pub dst: Ipv4Addr,
    /// The virtual port.
    pub dst_port: u16,
    /// TTL sent.
    pub ttl: u8,
}

/// A frame template with its precomputed checksum sums.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    proto: L4Proto,
    payload: usize,
    ip_base: u32,
    l4_base: u32,
}

impl Template {
    /// Builds the template.
    pub fn new(spec: &TemplateSpec) -> Result<Template, TemplateError> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&spec.frame_size) {
            return Err(TemplateError::FrameSize(spec.frame_size));
        }
        let len = usize::from(spec.frame_size) - FCS_LEN;
        let ip = Ipv4Frame {
            src_mac: spec.src_mac,
            dst_mac: spec.dst_mac,
            src: Ipv4Addr::UNSPECIFIED,
            dst: spec.dst,
            ttl: spec.ttl,
            ..Default::default()
        };
        let mut bytes = vec![0u8; len];
        let (payload, n) = match spec.proto {
            L4Proto::Tcp => {
                let seg = TcpSegment { dst_port: spec.dst_port, window: 0xffff, ..Default::default() };
                let pl = vec![0u8; len - TCP_PAYLOAD];
                (TCP_PAYLOAD, tcp_frame(&mut bytes, &ip, &seg, &[], &pl))
            }
            L4Proto::Udp => {
                let pl = vec![0u8; len - UDP_PAYLOAD];
                (UDP_PAYLOAD, udp_frame(&mut bytes, &ip, 0, spec.dst_port, &pl, false))
            }
        };
        debug_assert_eq!(n, Some(len));
        // Fixed parts of the sums: everything with the per-packet fields (and the
        // checksums themselves) at zero.
        bytes[IP_CSUM..IP_CSUM + 2].fill(0);
        if spec.proto == L4Proto::Tcp {
            bytes[TCP_CSUM..TCP_CSUM + 2].fill(0);
        }
        let ip_base = sum(&bytes[IP_OFF..L4_OFF]);
        let l4 = &bytes[L4_OFF..];
        let proto_no = match spec.proto {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
        };
        let l4_base =
            u32::from(fold(pseudo_header_v4(Ipv4Addr::UNSPECIFIED, spec.dst, proto_no, l4.len() as u16) + sum(l4)));
        Ok(Template { bytes, proto: spec.proto, payload, ip_base, l4_base })
    }

    /// Frame length in the buffer (without FCS).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true; for clippy.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Transport.
    pub fn proto(&self) -> L4Proto {
        self.proto
    }

    /// Writes one packet into `buf` (exactly [`len`](Template::len) bytes): from
    /// `src:sport`, sequence number `seq`, a SYN (else an ACK) for TCP, timestamp `ts`.
    #[inline]
    pub fn write(&self, buf: &mut [u8], src: u32, sport: u16, seq: u32, syn: bool, ts: u64) {
        buf.copy_from_slice(&self.bytes);
        let s = src.to_be_bytes();
        buf[IP_SRC..IP_SRC + 4].copy_from_slice(&s);
        let src_sum = (src >> 16) + (src & 0xffff);
        let ip = finish(self.ip_base + src_sum);
        buf[IP_CSUM..IP_CSUM + 2].copy_from_slice(&ip.to_be_bytes());
        buf[L4_OFF..L4_OFF + 2].copy_from_slice(&sport.to_be_bytes());
        let ts = ts & TS_MASK;
        let tsb = ts.to_be_bytes();
        buf[self.payload..self.payload + TS_LEN].copy_from_slice(&tsb[2..8]);
        let ts_sum = ((ts >> 32) + ((ts >> 16) & 0xffff) + (ts & 0xffff)) as u32;
        let mut l4 = self.l4_base + src_sum + u32::from(sport) + (seq >> 16) + (seq & 0xffff) + ts_sum;
        match self.proto {
            L4Proto::Tcp => {
                buf[TCP_SEQ..TCP_SEQ + 4].copy_from_slice(&seq.to_be_bytes());
                let flags = if syn { TcpFlags::SYN } else { TcpFlags::ACK };
                buf[TCP_FLAGS] = flags.bits();
                l4 += u32::from(flags.bits());
                buf[TCP_CSUM..TCP_CSUM + 2].copy_from_slice(&finish(l4).to_be_bytes());
            }
            L4Proto::Udp => {
                let at = self.payload + TS_LEN;
                if let Some(b) = buf.get_mut(at..at + 5) {
                    b[..4].copy_from_slice(&seq.to_be_bytes());
                    // The "opening" mark (UDP has no SYN), high byte of a 16-bit word.
                    b[4] = u8::from(syn);
                    l4 += u32::from(syn) << 8;
                }
                let c = match finish(l4) {
                    0 => 0xffff,
                    c => c,
                };
                buf[UDP_CSUM..UDP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
    }
}

/// Reads the 48-bit timestamp at `at` (payload start).
#[inline]
pub fn read_ts(frame: &[u8], at: usize) -> Option<u64> {
    let b = frame.get(at..at + TS_LEN)?;
    Some(u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]))
}

/// Turns a received frame into the answer from its destination, in place: MACs, IPv4
/// addresses and transport ports swapped. Both checksums stay valid (the ones' complement
/// sum does not depend on order). `l2`/`l3`/`l4` are the header offsets from the parser.
#[inline]
pub fn reflect(frame: &mut [u8], l3: usize, l4: usize) -> bool {
    use dataplane::wire::{ethernet, ipv4, tcp};
    // TCP and UDP have their ports at the same offsets.
    let ports_end = tcp::field::DST_PORT.end;
    if frame.len() < l4 + ports_end || l3 < ethernet::field::SRC.end || frame.len() < l3 + ipv4::MIN_HEADER_LEN {
        return false;
    }
    swap(frame, ethernet::field::DST.start, ethernet::field::SRC.start, ethernet::field::SRC.len());
    swap(frame, l3 + ipv4::field::SRC.start, l3 + ipv4::field::DST.start, ipv4::field::SRC.len());
    swap(frame, l4 + tcp::field::SRC_PORT.start, l4 + tcp::field::DST_PORT.start, tcp::field::SRC_PORT.len());
    true
}

/// Swaps the `n` bytes at `a` with the `n` bytes at `b` (`a + n <= b`, both in bounds).
#[inline]
fn swap(frame: &mut [u8], a: usize, b: usize, n: usize) {
    let (x, y) = frame.split_at_mut(b);
    x[a..a + n].swap_with_slice(&mut y[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::wire::checksum::verify;
    use dataplane::wire::{parse, L4};

    fn spec(proto: L4Proto, frame_size: u16) -> TemplateSpec {
        TemplateSpec {
            proto,
            frame_size,
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            dst: Ipv4Addr::new(198, 18, 0, 100),
            dst_port: 80,
            ttl: 64,
        }
    }

    fn l4_ok(frame: &[u8]) -> bool {
        let p = parse(frame).expect("parses (IP checksum included)");
        let ip = p.ipv4().unwrap();
        let seg = &frame[ip.l4_offset()..usize::from(ip.offset) + usize::from(ip.total_len)];
        verify(pseudo_header_v4(ip.src, ip.dst, ip.protocol, seg.len() as u16), seg)
    }

    #[test]
    fn tcp_packets_have_valid_checksums_and_fields() {
        for size in [64, 65, 128, 1518] {
            let t = Template::new(&spec(L4Proto::Tcp, size)).unwrap();
            let mut buf = vec![0u8; t.len()];
            for (src, sport, seq, syn, ts) in [
                (0xc612_0100, 1024, 0, true, 0),
                (0xc612_01ff, 65535, u32::MAX, false, u64::MAX),
                (0x0a00_0002, 40000, 0x1234_5678, false, 0xdead_beef_cafe),
            ] {
                t.write(&mut buf, src, sport, seq, syn, ts);
                assert_eq!(buf.len() + FCS_LEN, usize::from(size));
                assert!(l4_ok(&buf), "size {size} src {src:x}");
                let p = parse(&buf).unwrap();
                let ip = p.ipv4().unwrap();
                assert_eq!((u32::from(ip.src), ip.dst, ip.ttl), (src, Ipv4Addr::new(198, 18, 0, 100), 64));
                let L4::Tcp(tcp) = ip.l4 else { panic!("not tcp") };
                assert_eq!((tcp.src_port, tcp.dst_port, tcp.seq), (sport, 80, seq));
                assert_eq!(tcp.flags, if syn { TcpFlags::SYN } else { TcpFlags::ACK });
                assert_eq!(read_ts(&buf, TCP_PAYLOAD), Some(ts & TS_MASK));
            }
        }
    }

    #[test]
    fn udp_packets_have_valid_checksums_and_fields() {
        for size in [64, 1000, 1518] {
            let t = Template::new(&spec(L4Proto::Udp, size)).unwrap();
            let mut buf = vec![0u8; t.len()];
            t.write(&mut buf, 0xc612_0105, 5555, 77, true, 0x0102_0304_0506);
            assert!(l4_ok(&buf));
            assert_eq!(buf[UDP_PAYLOAD + 10], 1);
            t.write(&mut buf, 0xc612_0105, 5555, 77, false, 0x0102_0304_0506);
            assert!(l4_ok(&buf));
            assert_eq!(buf[UDP_PAYLOAD + 10], 0);
            let p = parse(&buf).unwrap();
            let u = *p.ipv4().unwrap().udp().unwrap();
            assert_eq!((u.src_port, u.dst_port), (5555, 80));
            assert_ne!(u.checksum, 0);
            assert_eq!(read_ts(&buf, UDP_PAYLOAD), Some(0x0102_0304_0506));
            assert_eq!(&buf[UDP_PAYLOAD + 6..UDP_PAYLOAD + 10], &77u32.to_be_bytes());
        }
    }

    #[test]
    fn frame_sizes_are_checked() {
        assert_eq!(Template::new(&spec(L4Proto::Tcp, 63)).unwrap_err(), TemplateError::FrameSize(63));
        assert_eq!(Template::new(&spec(L4Proto::Udp, 1519)).unwrap_err(), TemplateError::FrameSize(1519));
    }

    #[test]
    fn reflection_swaps_and_keeps_checksums() {
        let t = Template::new(&spec(L4Proto::Tcp, 64)).unwrap();
        let mut buf = vec![0u8; t.len()];
        t.write(&mut buf, 0xc612_0100, 1024, 9, false, 5);
        assert!(reflect(&mut buf, IP_OFF, L4_OFF));
        assert!(l4_ok(&buf));
        let p = parse(&buf).unwrap();
        let ip = p.ipv4().unwrap();
        assert_eq!((ip.src, u32::from(ip.dst)), (Ipv4Addr::new(198, 18, 0, 100), 0xc612_0100));
        assert_eq!(ip.ports(), Some((80, 1024)));
        assert_eq!(&buf[0..6], &[2, 0, 0, 0, 0, 1]);
        assert!(!reflect(&mut buf[..20], IP_OFF, L4_OFF));
    }
}
