//! The ICMP path: echo requests to a VIP or a port address are answered in place; other
//! ICMP to a VIP is dropped and counted.

use crate::counters::DropReason;
use crate::nat;
use crate::wire::icmp::msg_type;
use crate::wire::IcmpInfo;

use super::{Frame, Verdict, Worker};

/// An echo request (type 8, code 0).
#[inline]
pub(super) fn is_echo_request(i: &IcmpInfo) -> bool {
    i.msg_type == msg_type::ECHO_REQUEST && i.code == 0
}

impl Worker {
    /// Answers an echo request out of the port it came in on.
    #[inline]
    pub(super) fn echo_reply(&mut self, fr: &mut Frame<'_>) -> Verdict {
        match nat::icmp_echo_reply_in_place(fr.bytes, fr.parsed) {
            Ok(()) => Verdict::Forward { port: fr.in_port, len: fr.bytes.len() },
            Err(_) => self.drop(DropReason::IcmpIgnored),
        }
    }
}
