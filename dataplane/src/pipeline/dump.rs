//! A worker's part of the Sessions request: its live flows as rows, a slice at a time.

use std::net::SocketAddrV4;

use super::tcp_state::timeout_for;
use super::{TcpState, Worker};
use crate::api::{SessionInfo, SessionState};
use crate::runtime::sessions::DumpJob;

impl Worker {
    /// Walks at most `budget` flow records of this worker's table from where `job` stands and
    /// adds the live flows among them that the job wants. Returns true when the whole table
    /// has been walked (send the job back). Reads only; never allocates (the rows were
    /// reserved by whoever made the job). Call between bursts.
    pub fn dump_flows(&self, now: u64, job: &mut DumpJob, budget: usize) -> bool {
        let timeouts = self.cfg.timeouts;
        let next = self.flows.scan(job.cursor, budget.max(1), |_, keys, expires_at, f| {
            if now >= expires_at {
                return; // expired, waiting to be swept: invisible to lookups as well
            }
            let [fwd, rev] = *keys;
            let Some(proto) = acm::Proto::from_ip_proto(fwd.proto) else { return };
            let vip = SocketAddrV4::new(fwd.dst, fwd.dport);
            if !job.wants(vip, proto) {
                return;
            }
            // The deadline is the last packet's time plus the state's timeout.
            let last = expires_at.saturating_sub(timeout_for(&timeouts, f.tcp));
            job.offer(|| SessionInfo {
                lcore: 0,
                proto,
                client: SocketAddrV4::new(fwd.src, fwd.sport),
                vip,
                real: SocketAddrV4::new(rev.src, rev.sport),
                snat: (f.snat_port != 0).then(|| SocketAddrV4::new(rev.dst, rev.dport)),
                state: match f.tcp {
                    TcpState::SynSent => SessionState::Syn,
                    TcpState::Established => SessionState::Established,
                    TcpState::FinClient | TcpState::FinServer | TcpState::FinBoth | TcpState::Closed => {
                        SessionState::Closing
                    }
                    TcpState::Reset => SessionState::Reset,
                    TcpState::Udp => SessionState::Udp,
                },
                idle_ms: now.saturating_sub(last) / 1_000_000,
                expires_ms: (expires_at - now) / 1_000_000,
            });
        });
        match next {
            Some(cursor) => {
                job.cursor = cursor;
                false
            }
            None => true,
        }
    }
}

#[cfg(test)]
#[path = "dump_tests.rs"]
mod tests;
