//! A worker between bursts: taking up a new generation, deleting the flows of force-removed
//! bindings (a walk spread over calls, with a RST to each TCP client), and the expiry sweep.

use std::sync::atomic::Ordering;

use crate::generation::Generation;

use super::flow::{forget, slot_alive};
use super::{Emit, TcpState, Worker};

/// The expiry sweep's pace ([`Worker::sweep_budget`]): every flow record visited about once
/// per this many nanoseconds.
pub const SWEEP_PERIOD_NS: u64 = 500_000_000;

/// Most flow records one [`Worker::maintain`] call is given to visit (~10 µs).
pub const SWEEP_MAX: usize = 2048;

/// Flow records the force-remove purge visits per call (about 50 µs of work).
const PURGE_BUDGET: usize = 16 * 1024;
/// ... in steps of this many, so the RSTs of one step fit the outbox.
pub(super) const PURGE_CHUNK: usize = 1024;

impl Worker {
    /// Takes up a new generation (call between bursts): acknowledges it and, when bindings
    /// were force-removed, starts deleting their flows with a RST to each TCP client.
    ///
    /// The deletion is a walk over the flow table spread over calls of [`Worker::maintain`]
    /// (and a first step here), so a Force Remove at 1M flows never stalls forwarding for the
    /// whole walk. Until the walk reaches a flow, a packet of it finds its binding gone and is
    /// handled as such; the slot is not reused before all its flows are gone (the reap waits
    /// for the flow gauges).
    pub fn adopt(&mut self, gen: &Generation) {
        if gen.has_force_removed() {
            let sig = forced_signature(&gen.forced);
            if sig != self.forced_sig {
                self.forced_sig = sig;
                self.purge_at = Some(0);
                self.purge_step(gen, PURGE_BUDGET);
            }
        } else {
            self.forced_sig = 0;
        }
        self.counters.generation.store(gen.number, Ordering::Release);
    }

    /// True while flows of force-removed bindings are still being deleted.
    pub fn purging(&self) -> bool {
        self.purge_at.is_some()
    }

    /// Visits up to `budget` flow records of the purge walk; stops early when the outbox is
    /// nearly full (the RSTs go out with the next drain, the walk goes on next time).
    fn purge_step(&mut self, gen: &Generation, budget: usize) {
        let mut left = budget;
        while let Some(from) = self.purge_at {
            if left == 0 || self.outbox.len() + PURGE_CHUNK > self.outbox.capacity() {
                break;
            }
            let chunk = left.min(PURGE_CHUNK);
            left -= chunk;
            let Self { flows, counters, snat, outbox, purge_dead, .. } = self;
            purge_dead.clear();
            let next = flows.scan(from, chunk, |id, keys, _, f| {
                if slot_alive(&gen.bindings, f) {
                    return;
                }
                purge_dead.push(id);
                if f.tcp == TcpState::Udp || f.tcp.is_over() {
                    return;
                }
                let Some(port) = gen.ports.get(f.client_port() as usize) else { return };
                let fwd = keys[0];
                outbox.push(Emit::Rst {
                    port: f.client_port(),
                    src_mac: port.mac,
                    dst_mac: f.client_mac,
                    src: (fwd.dst, fwd.dport),
                    dst: (fwd.src, fwd.sport),
                    seq: f.client_ack,
                });
            });
            for id in purge_dead.drain(..) {
                if let Some(f) = flows.remove(id) {
                    forget(counters, snat, &gen.bindings, &f);
                }
            }
            counters.flows.store(flows.len() as u64, Ordering::Relaxed);
            self.purge_at = next;
            if next.is_none() {
                tracing::debug!("flows of force-removed bindings deleted");
            }
        }
    }

    /// How many flow records [`Worker::maintain`] should visit `elapsed_ns` after the last
    /// sweep: the table (counted as at least 64k flows) once per [`SWEEP_PERIOD_NS`], up to 8
    /// times as often as the table fills from half to full, at most [`SWEEP_MAX`] at a time.
    /// Paced by time rather than per burst, so that a busy worker with long-lived flows does
    /// not sweep its table many times a second (each visit of a large table is a cache miss),
    /// while a table filling with short-lived flows (a SYN flood: a flow reaped half a period
    /// after it expired holds its record that much longer) is reaped faster.
    pub fn sweep_budget(&self, elapsed_ns: u64) -> usize {
        let len = self.flows.len();
        let basis = len.max(1 << 16) as u128;
        // Fill in 1/1024ths; from 512 (half full) to 1024 the pace goes from 1x to 8x.
        let fill = (len as u128 * 1024 / self.flows.capacity().max(1) as u128).min(1024);
        let speedup = 1 + fill.saturating_sub(512) * 7 / 512;
        let due = basis * speedup * u128::from(elapsed_ns) / u128::from(SWEEP_PERIOD_NS);
        usize::try_from(due).unwrap_or(usize::MAX).min(SWEEP_MAX)
    }

    /// Expires idle flows: visits at most `budget` flow records. Call between bursts.
    pub fn maintain(&mut self, gen: &Generation, now: u64, budget: usize) {
        self.purge_step(gen, PURGE_BUDGET);
        let Self { flows, counters, snat, .. } = self;
        flows.sweep(now, budget, |_, f| forget(counters, snat, &gen.bindings, &f));
        counters.flows.store(flows.len() as u64, Ordering::Relaxed);
    }
}

/// A signature of the force-removed (slot, incarnation) pairs, to notice a new set.
fn forced_signature(forced: &[(u32, u32)]) -> u64 {
    forced.iter().fold(0u64, |acc, &(i, inc)| acc.wrapping_mul(31).wrapping_add((u64::from(i) << 32) | u64::from(inc)))
        | 1
}
