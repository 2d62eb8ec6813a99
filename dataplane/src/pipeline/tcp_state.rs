//! The TCP flow-state machine: as much of a connection's state as the load balancer needs
//! for timeouts and for telling a new connection from a retransmission, and the idle
//! timeout of each state.

use crate::config::TimeoutsNs;
use crate::wire::{TcpFlags, TcpInfo};

use super::FlowState;

/// TCP state of a flow as far as timeouts need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    /// Only the client's SYN seen.
    SynSent,
    /// Traffic both ways (or an unknown flow picked up mid-stream).
    Established,
    /// The client sent a FIN.
    FinClient,
    /// The server sent a FIN.
    FinServer,
    /// Both sent a FIN; the last one is not acknowledged yet.
    FinBoth,
    /// Closed both ways and acknowledged. Kept until its timeout for late segments, but no
    /// longer an active connection: a draining binding does not wait for it.
    Closed,
    /// A RST was seen (over, like `Closed`).
    Reset,
    /// Not TCP.
    Udp,
}

impl TcpState {
    /// The connection is over (closed or reset): it no longer counts as active.
    #[inline]
    pub fn is_over(self) -> bool {
        matches!(self, TcpState::Closed | TcpState::Reset)
    }

    /// Some FIN was seen (closing or closed).
    #[inline]
    pub fn is_closing(self) -> bool {
        matches!(self, TcpState::FinClient | TcpState::FinServer | TcpState::FinBoth | TcpState::Closed)
    }
}

/// The idle timeout of a flow in state `s`.
#[inline]
pub(super) fn timeout_for(t: &TimeoutsNs, s: TcpState) -> u64 {
    match s {
        TcpState::SynSent => t.tcp_syn,
        TcpState::Established => t.tcp_established,
        TcpState::FinClient | TcpState::FinServer | TcpState::FinBoth | TcpState::Closed => t.tcp_closing,
        TcpState::Reset => t.tcp_reset,
        TcpState::Udp => t.udp,
    }
}

/// Client → server segment: TCP state and the client's last acknowledgement.
#[inline]
pub(super) fn client_touch(f: &mut FlowState, tcp: Option<TcpInfo>) {
    if let Some(t) = tcp {
        f.tcp = next_tcp_state(f.tcp, t.flags, false);
        if t.flags.contains(TcpFlags::ACK) {
            f.client_ack = t.ack;
        }
    }
}

/// A SYN without ACK: the first segment of a connection.
#[inline]
pub(super) fn is_fresh_syn(flags: TcpFlags) -> bool {
    flags.contains(TcpFlags::SYN) && !flags.intersects(TcpFlags::ACK | TcpFlags::RST)
}

/// The next TCP state after a segment with `flags` (from the server when `from_server`).
#[inline]
pub fn next_tcp_state(cur: TcpState, flags: TcpFlags, from_server: bool) -> TcpState {
    use TcpState::*;
    if flags.contains(TcpFlags::RST) {
        return Reset;
    }
    let fin = flags.contains(TcpFlags::FIN);
    match cur {
        Udp => Udp,
        Reset => Reset,
        Closed => Closed,
        // The acknowledgement of the second FIN ends the connection.
        FinBoth if !fin && flags.contains(TcpFlags::ACK) => Closed,
        FinBoth => FinBoth,
        FinClient if fin && from_server => FinBoth,
        FinClient => FinClient,
        FinServer if fin && !from_server => FinBoth,
        FinServer => FinServer,
        SynSent | Established if fin => {
            if from_server {
                FinServer
            } else {
                FinClient
            }
        }
        SynSent if from_server || !flags.contains(TcpFlags::SYN) => Established,
        SynSent => SynSent,
        Established => Established,
    }
}
