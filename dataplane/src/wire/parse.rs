//! The single-pass fast-path parser; see [`parse`].

use std::net::Ipv4Addr;

use super::ethernet::{self, ethertype, MacAddr};
use super::field::{get16, get32, get_ipv4, get_mac};
use super::ipv4::{self, protocol, FLAG_MF, FRAG_OFFSET_MASK};
use super::tcp::{self, TcpFlags};
use super::{arp, checksum, icmp, udp, WireError};

/// What [`parse`] found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Ethernet header length (14, or 18 with an 802.1Q tag); the L3 offset.
    pub l2_len: u8,
    /// VLAN ID (12 bits) of the 802.1Q tag, if any.
    pub vlan: Option<u16>,
    /// The payload's ethertype (inside the tag, if tagged).
    pub ethertype: u16,
    /// The network layer.
    pub l3: L3,
}

/// The network layer of a [`Parsed`] frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    /// A valid IPv4 datagram.
    Ipv4(Ipv4Info),
    /// A valid Ethernet/IPv4 ARP packet.
    Arp(ArpInfo),
    /// Another ethertype (IPv6, QinQ, LLDP, ...); payload not inspected.
    Other,
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpInfo {
    /// Operation (1 request, 2 reply, see [`super::arp::op`]).
    pub op: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

/// An IPv4 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Offset of the IPv4 header in the frame (equals [`Parsed::l2_len`]).
    pub offset: u16,
    /// Header length in bytes, options included (20..=60).
    pub header_len: u8,
    /// Total length field (header + payload; the frame may carry padding after it).
    pub total_len: u16,
    /// Time to live (not judged: TTL <= 1 parses fine).
    pub ttl: u8,
    /// Protocol field.
    pub protocol: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// MF set or fragment offset != 0.
    pub is_fragment: bool,
    /// The transport layer.
    pub l4: L4,
}

/// The transport layer of an IPv4 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP (in an unfragmented datagram or a first fragment).
    Tcp(TcpInfo),
    /// UDP (in an unfragmented datagram or a first fragment).
    Udp(UdpInfo),
    /// ICMP (in an unfragmented datagram or a first fragment).
    Icmp(IcmpInfo),
    /// A fragment with offset != 0: no transport header in it.
    Fragment,
    /// Another IP protocol; payload not inspected.
    Other,
}

/// A TCP segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Offset of the TCP header in the frame.
    pub offset: u16,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Flags.
    pub flags: TcpFlags,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Header length in bytes, options included (20..=60).
    pub header_len: u8,
    /// Payload bytes in this datagram (after the TCP header, to the IP total length).
    pub payload_len: u16,
}

impl TcpInfo {
    /// Sequence space the segment occupies: payload length, +1 for SYN, +1 for FIN.
    #[inline]
    pub const fn segment_len(&self) -> u32 {
        self.payload_len as u32 + self.flags.contains(TcpFlags::SYN) as u32 + self.flags.contains(TcpFlags::FIN) as u32
    }
}

/// A UDP datagram header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpInfo {
    /// Offset of the UDP header in the frame.
    pub offset: u16,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload bytes: length field - 8 (in a first fragment: the bytes this fragment has).
    pub payload_len: u16,
    /// Checksum field; 0 means the sender sent none.
    pub checksum: u16,
}

/// An ICMP message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpInfo {
    /// Offset of the ICMP header in the frame.
    pub offset: u16,
    /// Message type (see [`super::icmp::msg_type`]).
    pub msg_type: u8,
    /// Code.
    pub code: u8,
    /// Echo identifier (bytes 4..6; type-specific for non-echo messages).
    pub ident: u16,
    /// Echo sequence number (bytes 6..8; type-specific for non-echo messages).
    pub seq_no: u16,
}

impl Parsed {
    /// The IPv4 part, if this is an IPv4 frame.
    #[inline]
    pub const fn ipv4(&self) -> Option<&Ipv4Info> {
        match &self.l3 {
            L3::Ipv4(i) => Some(i),
            _ => None,
        }
    }

    /// The ARP part, if this is an ARP frame.
    #[inline]
    pub const fn arp(&self) -> Option<&ArpInfo> {
        match &self.l3 {
            L3::Arp(a) => Some(a),
            _ => None,
        }
    }

    /// Ethernet header length as `usize`.
    #[inline]
    pub const fn l2_len(&self) -> usize {
        self.l2_len as usize
    }
}

impl Ipv4Info {
    /// Offset of the transport header in the frame.
    #[inline]
    pub const fn l4_offset(&self) -> usize {
        self.offset as usize + self.header_len as usize
    }

    /// Bytes after the IP header (total length - header length).
    #[inline]
    pub const fn payload_len(&self) -> u16 {
        self.total_len.saturating_sub(self.header_len as u16)
    }

    /// `(source port, destination port)` for TCP and UDP.
    #[inline]
    pub const fn ports(&self) -> Option<(u16, u16)> {
        match &self.l4 {
            L4::Tcp(t) => Some((t.src_port, t.dst_port)),
            L4::Udp(u) => Some((u.src_port, u.dst_port)),
            _ => None,
        }
    }

    /// The TCP part, if any.
    #[inline]
    pub const fn tcp(&self) -> Option<&TcpInfo> {
        match &self.l4 {
            L4::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// The UDP part, if any.
    #[inline]
    pub const fn udp(&self) -> Option<&UdpInfo> {
        match &self.l4 {
            L4::Udp(u) => Some(u),
            _ => None,
        }
    }

    /// The ICMP part, if any.
    #[inline]
    pub const fn icmp(&self) -> Option<&IcmpInfo> {
        match &self.l4 {
            L4::Icmp(i) => Some(i),
            _ => None,
        }
    }
}

/// Parses an Ethernet frame (without FCS) in one pass.
///
/// It reads a frame once, front to back, checking each length before it is used,
/// and returns a small `Copy` summary ([`Parsed`]) holding every field the load balancer
/// decides on plus the offsets that [`crate::nat`] rewrites at. It does not allocate and
/// cannot panic.
///
/// What it checks: Ethernet (and one 802.1Q tag) lengths; ARP format; IPv4 version, IHL,
/// total length (trailing Ethernet padding allowed) and **header checksum**; TCP data
/// offset; UDP length; ICMP header length. It does not verify TCP/UDP/ICMP checksums (the
/// NAT rewrites adjust them incrementally, so a bad one stays bad and the end host drops
/// the segment; the views offer `verify_checksum` where a check is wanted).
///
/// What it reports without judging (the dataplane decides): other ethertypes
/// ([`L3::Other`]), other IP protocols ([`L4::Other`]), TTL, and fragments. **Fragments:**
/// `is_fragment` is set for any fragment (MF set or offset != 0). A first fragment still
/// has its transport header parsed (its payload length is what this fragment carries);
/// later fragments have no transport header ([`L4::Fragment`]). The dataplane drops
/// fragments with a counter: a NAT load balancer cannot map later fragments without
/// reassembly.
#[inline]
pub fn parse(frame: &[u8]) -> Result<Parsed, WireError> {
    let Some(eth) = frame.first_chunk::<{ ethernet::HEADER_LEN }>() else {
        return Err(WireError::TruncatedEthernet);
    };
    let outer = get16(eth, ethernet::field::ETHERTYPE);
    let (l2_len, vlan, ethertype) = if outer == ethertype::VLAN {
        let Some(tagged) = frame.first_chunk::<{ ethernet::VLAN_HEADER_LEN }>() else {
            return Err(WireError::TruncatedVlan);
        };
        let tci = get16(tagged, ethernet::field::VLAN_TCI);
        (ethernet::VLAN_HEADER_LEN, Some(tci & ethernet::VLAN_ID_MASK), get16(tagged, ethernet::field::VLAN_ETHERTYPE))
    } else {
        (ethernet::HEADER_LEN, None, outer)
    };
    // `l2_len` bytes were there.
    let l3 = frame.get(l2_len..).unwrap_or_default();
    let l3 = match ethertype {
        ethertype::IPV4 => L3::Ipv4(parse_ipv4(l3, l2_len as u16)?),
        ethertype::ARP => L3::Arp(parse_arp(l3)?),
        _ => L3::Other,
    };
    Ok(Parsed { l2_len: l2_len as u8, vlan, ethertype, l3 })
}

#[inline]
fn parse_arp(b: &[u8]) -> Result<ArpInfo, WireError> {
    let Some(a) = b.first_chunk::<{ arp::PACKET_LEN }>() else {
        return Err(WireError::TruncatedArp);
    };
    if a[arp::field::HTYPE.start..=arp::field::PLEN] != arp::ETHERNET_IPV4_PREFIX {
        return Err(WireError::BadArp);
    }
    Ok(ArpInfo {
        op: get16(a, arp::field::OPER),
        sha: get_mac(a, arp::field::SHA),
        spa: get_ipv4(a, arp::field::SPA),
        tha: get_mac(a, arp::field::THA),
        tpa: get_ipv4(a, arp::field::TPA),
    })
}

#[inline]
fn parse_ipv4(b: &[u8], offset: u16) -> Result<Ipv4Info, WireError> {
    let Some(h) = b.first_chunk::<{ ipv4::MIN_HEADER_LEN }>() else {
        return Err(WireError::TruncatedIpv4);
    };
    let ver_ihl = h[ipv4::field::VER_IHL];
    if ver_ihl >> 4 != 4 {
        return Err(WireError::BadIpVersion);
    }
    let hl = usize::from(ver_ihl & 0x0f) * 4;
    if hl < ipv4::MIN_HEADER_LEN {
        return Err(WireError::BadIhl);
    }
    let Some(header) = b.get(..hl) else {
        return Err(WireError::BadIhl);
    };
    let total = get16(h, ipv4::field::TOTAL_LEN);
    let tl = usize::from(total);
    let datagram = match b.get(..tl) {
        Some(d) if tl >= hl => d,
        _ => return Err(WireError::BadTotalLength),
    };
    let sum = if hl == ipv4::MIN_HEADER_LEN { checksum::sum20(h) } else { checksum::sum(header) };
    if checksum::fold(sum) != 0xffff {
        return Err(WireError::BadIpChecksum);
    }
    let frag = get16(h, ipv4::field::FLAGS_FRAG);
    let is_fragment = frag & (FLAG_MF | FRAG_OFFSET_MASK) != 0;
    let proto = h[ipv4::field::PROTOCOL];
    let l4_offset = offset + hl as u16;
    // `tl >= hl` was checked, so this slice is in bounds; `get` keeps it panic-free.
    let payload = datagram.get(hl..).unwrap_or_default();
    let l4 = if frag & FRAG_OFFSET_MASK != 0 {
        L4::Fragment
    } else {
        match proto {
            protocol::TCP => L4::Tcp(parse_tcp(payload, l4_offset)?),
            protocol::UDP => L4::Udp(parse_udp(payload, l4_offset, is_fragment)?),
            protocol::ICMP => L4::Icmp(parse_icmp(payload, l4_offset)?),
            _ => L4::Other,
        }
    };
    Ok(Ipv4Info {
        offset,
        header_len: hl as u8,
        total_len: total,
        ttl: h[ipv4::field::TTL],
        protocol: proto,
        src: get_ipv4(h, ipv4::field::SRC),
        dst: get_ipv4(h, ipv4::field::DST),
        is_fragment,
        l4,
    })
}

#[inline]
fn parse_tcp(b: &[u8], offset: u16) -> Result<TcpInfo, WireError> {
    let Some(t) = b.first_chunk::<{ tcp::MIN_HEADER_LEN }>() else {
        return Err(WireError::TruncatedTcp);
    };
    let hl = usize::from(t[tcp::field::DATA_OFFSET] >> 4) * 4;
    if hl < tcp::MIN_HEADER_LEN || hl > b.len() {
        return Err(WireError::BadTcpDataOffset);
    }
    Ok(TcpInfo {
        offset,
        src_port: get16(t, tcp::field::SRC_PORT),
        dst_port: get16(t, tcp::field::DST_PORT),
        flags: TcpFlags(t[tcp::field::FLAGS]),
        seq: get32(t, tcp::field::SEQ),
        ack: get32(t, tcp::field::ACK),
        header_len: hl as u8,
        // b.len() <= 65535 - 20 inside an IPv4 datagram.
        payload_len: (b.len() - hl) as u16,
    })
}

#[inline]
fn parse_udp(b: &[u8], offset: u16, is_fragment: bool) -> Result<UdpInfo, WireError> {
    let Some(u) = b.first_chunk::<{ udp::HEADER_LEN }>() else {
        return Err(WireError::TruncatedUdp);
    };
    let len = get16(u, udp::field::LENGTH);
    let l = usize::from(len);
    if l < udp::HEADER_LEN {
        return Err(WireError::BadUdpLength);
    }
    let payload_len = if is_fragment {
        // A first fragment holds only part of the datagram the length field describes.
        (b.len() - udp::HEADER_LEN) as u16
    } else if l > b.len() {
        return Err(WireError::BadUdpLength);
    } else {
        len - udp::HEADER_LEN as u16
    };
    Ok(UdpInfo {
        offset,
        src_port: get16(u, udp::field::SRC_PORT),
        dst_port: get16(u, udp::field::DST_PORT),
        payload_len,
        checksum: get16(u, udp::field::CHECKSUM),
    })
}

#[inline]
fn parse_icmp(b: &[u8], offset: u16) -> Result<IcmpInfo, WireError> {
    let Some(i) = b.first_chunk::<{ icmp::HEADER_LEN }>() else {
        return Err(WireError::TruncatedIcmp);
    };
    Ok(IcmpInfo {
        offset,
        msg_type: i[icmp::field::TYPE],
        code: i[icmp::field::CODE],
        ident: get16(i, icmp::field::IDENT),
        seq_no: get16(i, icmp::field::SEQ_NO),
    })
}
