//! Why a frame was rejected.

/// A malformed frame, one variant per reason.
///
/// Returned by [`super::parse`] and by the `new_checked` constructors of the packet views.
/// Each variant has a stable snake_case [`reason`](WireError::reason) for drop-counter
/// labels and a dense [`index`](WireError::index) below [`WireError::COUNT`], so the
/// dataplane can keep `[u64; WireError::COUNT]` per worker:
///
/// ```
/// use dataplane::wire::WireError;
/// let mut drops = [0u64; WireError::COUNT];
/// drops[WireError::BadIpChecksum.index()] += 1;
/// for e in WireError::ALL {
///     let _label = (e.reason(), drops[e.index()]);
/// }
/// ```
///
/// Things that are well-formed but not handled by the fast path (other ethertypes, IP
/// protocols other than TCP/UDP/ICMP, IPv4 fragments, TTL <= 1) are not errors: they are
/// reported in [`super::Parsed`] and the dataplane decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[repr(u8)]
pub enum WireError {
    /// Shorter than an Ethernet II header (14 bytes).
    #[error("frame shorter than an Ethernet header")]
    TruncatedEthernet = 0,
    /// Ethertype 0x8100 but shorter than the 18 bytes of a tagged header.
    #[error("frame too short for its 802.1Q tag")]
    TruncatedVlan,
    /// ARP ethertype but fewer than 28 bytes of ARP payload.
    #[error("ARP packet truncated")]
    TruncatedArp,
    /// ARP that is not Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4).
    #[error("ARP packet is not Ethernet/IPv4")]
    BadArp,
    /// IPv4 ethertype but fewer than 20 bytes of IP header.
    #[error("IPv4 header truncated")]
    TruncatedIpv4,
    /// IPv4 ethertype but the version field is not 4.
    #[error("IP version is not 4")]
    BadIpVersion,
    /// IHL below 5, or the header it announces does not fit the frame.
    #[error("bad IPv4 header length")]
    BadIhl,
    /// Total length below the header length, or beyond the end of the frame.
    #[error("bad IPv4 total length")]
    BadTotalLength,
    /// The IPv4 header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    BadIpChecksum,
    /// Protocol TCP but fewer than 20 bytes of TCP header in the datagram.
    #[error("TCP header truncated")]
    TruncatedTcp,
    /// TCP data offset below 5 words, or the header it announces does not fit.
    #[error("bad TCP data offset")]
    BadTcpDataOffset,
    /// Protocol UDP but fewer than 8 bytes of UDP header in the datagram.
    #[error("UDP header truncated")]
    TruncatedUdp,
    /// UDP length field below 8, or beyond the end of the IP payload.
    #[error("bad UDP length")]
    BadUdpLength,
    /// Protocol ICMP but fewer than 8 bytes of ICMP header in the datagram.
    #[error("ICMP header truncated")]
    TruncatedIcmp,
}

impl WireError {
    /// How many variants there are: the length of a per-reason counter array.
    pub const COUNT: usize = 14;

    /// Every variant, in [`index`](WireError::index) order.
    pub const ALL: [WireError; WireError::COUNT] = [
        WireError::TruncatedEthernet,
        WireError::TruncatedVlan,
        WireError::TruncatedArp,
        WireError::BadArp,
        WireError::TruncatedIpv4,
        WireError::BadIpVersion,
        WireError::BadIhl,
        WireError::BadTotalLength,
        WireError::BadIpChecksum,
        WireError::TruncatedTcp,
        WireError::BadTcpDataOffset,
        WireError::TruncatedUdp,
        WireError::BadUdpLength,
        WireError::TruncatedIcmp,
    ];

    /// Dense index in `0..COUNT`, for counter arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A stable snake_case name for metrics labels (e.g. `"bad_ip_checksum"`).
    pub const fn reason(self) -> &'static str {
        match self {
            WireError::TruncatedEthernet => "truncated_ethernet",
            WireError::TruncatedVlan => "truncated_vlan",
            WireError::TruncatedArp => "truncated_arp",
            WireError::BadArp => "bad_arp",
            WireError::TruncatedIpv4 => "truncated_ipv4",
            WireError::BadIpVersion => "bad_ip_version",
            WireError::BadIhl => "bad_ihl",
            WireError::BadTotalLength => "bad_total_length",
            WireError::BadIpChecksum => "bad_ip_checksum",
            WireError::TruncatedTcp => "truncated_tcp",
            WireError::BadTcpDataOffset => "bad_tcp_data_offset",
            WireError::TruncatedUdp => "truncated_udp",
            WireError::BadUdpLength => "bad_udp_length",
            WireError::TruncatedIcmp => "truncated_icmp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_dense_and_reasons_unique() {
        for (i, e) in WireError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            let r = e.reason();
            assert!(r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{r}");
            assert!(!e.to_string().is_empty());
        }
        let mut reasons: Vec<_> = WireError::ALL.iter().map(|e| e.reason()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), WireError::COUNT);
    }
}
