//! The exception path: frames between a port and its kernel tap.
//!
//! The tap is a kernel interface with the port's IPv4 address but its own MAC. Frames to the
//! kernel get the tap's MAC as destination when they were sent to the port's MAC; frames from
//! the kernel leave with the port's MAC as source — and as ARP sender hardware address — so
//! the wire only ever sees the port's MAC. This keeps the tap independent of the port type
//! (no MAC programming of the tap needed).

use crate::wire::arp;
use crate::wire::ethernet::{self, ethertype, field, MacAddr};
use crate::wire::field::set_mac;

/// Rewrites a frame going to the kernel: destination `port_mac` → `tap_mac`.
pub fn to_host(frame: &mut [u8], port_mac: &MacAddr, tap_mac: &MacAddr) {
    if let Some(dst) = frame.get_mut(field::DST) {
        if *dst == port_mac.0 {
            dst.copy_from_slice(&tap_mac.0);
        }
    }
}

/// Rewrites a frame the kernel sent: source → `port_mac`, and for ARP the sender hardware
/// address too. Returns false for a frame too short to be Ethernet (drop it).
pub fn from_host(frame: &mut [u8], port_mac: &MacAddr, tap_mac: &MacAddr) -> bool {
    let Some(eth) = frame.first_chunk_mut::<{ ethernet::HEADER_LEN }>() else {
        return false;
    };
    set_mac(eth, field::SRC, *port_mac);
    // A tag cut short is no ARP.
    let Ok(eth) = ethernet::Frame::new_checked(&*frame) else { return true };
    if eth.ethertype() != ethertype::ARP {
        return true;
    }
    let l3 = eth.header_len();
    if let Some(sha) = frame.get_mut(l3..).and_then(|a| a.get_mut(arp::field::SHA)) {
        if *sha == tap_mac.0 {
            sha.copy_from_slice(&port_mac.0);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::build_arp_request;

    const PORT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const TAP: MacAddr = MacAddr([0, 0x64, 0x74, 0x61, 0x70, 0]);

    #[test]
    fn arp_from_kernel_shows_the_port_mac() {
        let mut buf = [0u8; 64];
        let n = build_arp_request(&mut buf, TAP, [10, 0, 1, 1].into(), [10, 0, 1, 11].into(), None).unwrap();
        assert!(from_host(&mut buf[..n], &PORT, &TAP));
        assert_eq!(&buf[6..12], &PORT.0);
        assert_eq!(&buf[22..28], &PORT.0);
        assert!(!from_host(&mut [0u8; 10], &PORT, &TAP));
    }

    #[test]
    fn to_kernel_gets_tap_mac_unless_broadcast() {
        let mut f = [0u8; 60];
        f[0..6].copy_from_slice(&PORT.0);
        to_host(&mut f, &PORT, &TAP);
        assert_eq!(&f[0..6], &TAP.0);
        let mut b = [0xffu8; 60];
        to_host(&mut b, &PORT, &TAP);
        assert_eq!(&b[0..6], &[0xff; 6]);
    }
}
