//! The exception path: frames between a port and its kernel tap.
//!
//! The tap is a kernel interface with the port's IPv4 address but its own MAC. Frames to the
//! kernel get the tap's MAC as destination when they were sent to the port's MAC; frames from
//! the kernel leave with the port's MAC as source — and as ARP sender hardware address — so
//! the wire only ever sees the port's MAC. This keeps the tap independent of the port type
//! (no MAC programming of the tap needed).

use crate::generation::Mac;

const ETH_HDR: usize = 14;
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const ETHERTYPE_VLAN: [u8; 2] = [0x81, 0x00];

/// Rewrites a frame going to the kernel: destination `port_mac` → `tap_mac`.
pub fn to_host(frame: &mut [u8], port_mac: &Mac, tap_mac: &Mac) {
    if frame.len() >= ETH_HDR && frame[0..6] == port_mac[..] {
        frame[0..6].copy_from_slice(tap_mac);
    }
}

/// Rewrites a frame the kernel sent: source → `port_mac`, and for ARP the sender hardware
/// address too. Returns false for a frame too short to be Ethernet (drop it).
pub fn from_host(frame: &mut [u8], port_mac: &Mac, tap_mac: &Mac) -> bool {
    if frame.len() < ETH_HDR {
        return false;
    }
    frame[6..12].copy_from_slice(port_mac);
    let (et, l3) = if frame[12..14] == ETHERTYPE_VLAN && frame.len() >= ETH_HDR + 4 {
        ([frame[16], frame[17]], ETH_HDR + 4)
    } else {
        ([frame[12], frame[13]], ETH_HDR)
    };
    // ARP sender hardware address at offset 8 of the ARP header.
    if et == ETHERTYPE_ARP && frame.len() >= l3 + 14 && frame[l3 + 8..l3 + 14] == tap_mac[..] {
        frame[l3 + 8..l3 + 14].copy_from_slice(port_mac);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::build_arp_request;
    use crate::wire::MacAddr;

    const PORT: Mac = [2, 0, 0, 0, 0, 1];
    const TAP: Mac = [0, 0x64, 0x74, 0x61, 0x70, 0];

    #[test]
    fn arp_from_kernel_shows_the_port_mac() {
        let mut buf = [0u8; 64];
        let n = build_arp_request(&mut buf, MacAddr(TAP), [10, 0, 1, 1].into(), [10, 0, 1, 11].into(), None).unwrap();
        assert!(from_host(&mut buf[..n], &PORT, &TAP));
        assert_eq!(&buf[6..12], &PORT);
        assert_eq!(&buf[22..28], &PORT);
        assert!(!from_host(&mut [0u8; 10], &PORT, &TAP));
    }

    #[test]
    fn to_kernel_gets_tap_mac_unless_broadcast() {
        let mut f = [0u8; 60];
        f[0..6].copy_from_slice(&PORT);
        to_host(&mut f, &PORT, &TAP);
        assert_eq!(&f[0..6], &TAP);
        let mut b = [0xffu8; 60];
        to_host(&mut b, &PORT, &TAP);
        assert_eq!(&b[0..6], &[0xff; 6]);
    }
}
