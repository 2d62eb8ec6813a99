//! The ARP path: answers requests for a port address or a VIP in place, learns senders on a
//! port's subnet (news for the other workers and the control side), and passes replies to
//! us to the kernel so its sockets resolve too.

use crate::counters::DropReason;
use crate::nat;
use crate::wire::arp::op;
use crate::wire::ArpInfo;

use super::{Frame, Verdict, Worker};

impl Worker {
    /// An ARP packet received on `fr.in_port`.
    #[inline]
    pub(super) fn arp(&mut self, fr: &mut Frame<'_>, a: &ArpInfo) -> Verdict {
        let Some(port) = fr.gen.ports.get(fr.in_port as usize) else { return self.drop(DropReason::NoRoute) };
        let spa = u32::from(a.spa);
        if !a.spa.is_unspecified() && port.addr.contains(a.spa) && a.sha.is_unicast() && self.neigh.learn(spa, a.sha) {
            // News for the other workers and the control side; if the queue is full the
            // control side learns it from the next ARP.
            let _ = self.learned.push((spa, a.sha));
        }
        let tpa = u32::from(a.tpa);
        let ours = tpa == u32::from(port.addr.ip) || fr.gen.is_vip(tpa);
        match a.op {
            op::REQUEST if ours && a.spa != a.tpa => {
                match nat::build_arp_reply_in_place(fr.bytes, fr.parsed, port.mac) {
                    Ok(()) => Verdict::Forward { port: fr.in_port, len: fr.bytes.len() },
                    Err(_) => self.drop(DropReason::MalformedArp),
                }
            }
            op::REPLY if tpa == u32::from(port.addr.ip) => self.pass_to_host(fr),
            _ => self.drop(DropReason::ArpNotForUs),
        }
    }
}
