//! The poll loop: one lcore sends client traffic on the client port, receives what the
//! device forwards on the server port (validating it, answering ARP and, when asked,
//! answering as the real servers), and receives the answers back on the client port.

use dataplane::wire::MacAddr;
use dpdk::{Burst, Mempool, RxQueue, TxQueue};
use pktgen::flows::{FlowBits, FlowSpace};
use pktgen::histogram::Histogram;
use pktgen::packet::{reflect, Template, TS_MASK};
use pktgen::validate::{Invalid, Received, Space, Validator};

pub(crate) const BURST: usize = 32;

/// What the client side sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Nothing (drain).
    Idle,
    /// One SYN to each long-lived flow not yet seen, in order; then nothing.
    OpenFlows,
    /// ACKs round-robin over the long-lived flows.
    Established,
    /// SYNs from fresh endpoints only.
    NewConnections,
    /// ACKs over the long-lived flows with every `n`-th packet a SYN from a fresh endpoint.
    Mixed(u32),
}

/// Counters; copied to take a snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub tx_syn: u64,
    pub tx_est: u64,
    pub tx_new: u64,
    pub tx_bytes: u64,
    pub rx_fwd: u64,
    pub rx_fwd_est: u64,
    pub rx_fwd_syn: u64,
    pub rx_fwd_new: u64,
    pub rx_fwd_bytes: u64,
    pub rx_rev: u64,
    pub rx_rev_bytes: u64,
    pub rev_tx: u64,
    pub rev_tx_fail: u64,
    pub invalid_fwd: [u64; Invalid::ALL.len()],
    pub invalid_rev: [u64; Invalid::ALL.len()],
    pub reorder_fwd: u64,
    pub reorder_rev: u64,
    pub arp_answered: u64,
    pub other: u64,
    /// Gaps between two polls longer than [`STALL_NS`] (the generator was descheduled or
    /// interrupted), their total length and the longest, in TSC ticks.
    pub stalls: u64,
    pub stall_ticks: u64,
    pub max_gap_ticks: u64,
    /// Of those, the ones long enough to overflow a receive ring of `--ring-slots` at the
    /// configured rate (pktgen could not have drained what the device sent meanwhile), and
    /// how many packets did not fit, estimated as `gap × rate − slots`.
    pub overflowing_stalls: u64,
    pub overflow_estimate: u64,
}

/// A gap between polls this long counts as a stall of the generator.
pub(crate) const STALL_NS: u64 = 100_000;

impl Counters {
    pub(crate) fn invalid_fwd_total(&self) -> u64 {
        self.invalid_fwd.iter().sum()
    }
    pub(crate) fn invalid_rev_total(&self) -> u64 {
        self.invalid_rev.iter().sum()
    }
}

pub(crate) struct Io {
    pub client_rx: RxQueue,
    pub client_tx: TxQueue,
    pub server_rx: RxQueue,
    pub server_tx: TxQueue,
    pub pool: Mempool,
    pub server_mac: MacAddr,
}

pub(crate) struct Engine {
    io: Io,
    tmpl: Template,
    pub v: Validator,
    pub reply: bool,
    pub source: Source,
    /// Packets per second (0 = line rate).
    rate: f64,
    pub c: Counters,
    pub lat_fwd: Histogram,
    pub lat_rev: Histogram,
    /// Per real server, packets (forward, valid).
    pub per_server: Vec<u64>,
    /// Long-lived flows seen opened (their SYN came through).
    pub opened: FlowBits,
    /// Real server of each long-lived flow, from its SYN.
    pub flow_server: Vec<u16>,
    ns_mult: u128,
    seq: u32,
    next_est: u32,
    next_new: u32,
    next_open: u32,
    pending: Burst<BURST>,
    server_out: Burst<BURST>,
    last_fwd_seq: u32,
    last_rev_seq: u32,
    /// TSC and packet count at which pacing started.
    pace_start: u64,
    pace_sent: u64,
    hz: u64,
    new_space: Option<FlowSpace>,
    last_poll: u64,
    stall_ticks: u64,
    /// Packets one receive ring holds.
    ring_slots: u64,
}

impl Engine {
    pub(crate) fn new(io: Io, tmpl: Template, v: Validator, reply: bool, rate: f64, ring_slots: u64) -> Engine {
        let hz = dpdk::tsc_hz().max(1);
        let n = v.established.len();
        let servers = v.servers.len().max(1);
        let new_space = v.new;
        Engine {
            io,
            tmpl,
            reply,
            source: Source::Idle,
            rate,
            c: Counters::default(),
            lat_fwd: Histogram::new(),
            lat_rev: Histogram::new(),
            per_server: vec![0; servers],
            opened: FlowBits::new(n),
            flow_server: vec![u16::MAX; n as usize],
            ns_mult: (1_000_000_000u128 << 32) / u128::from(hz),
            seq: 0,
            next_est: 0,
            next_new: 0,
            next_open: 0,
            pending: Burst::new(),
            server_out: Burst::new(),
            last_fwd_seq: 0,
            last_rev_seq: 0,
            pace_start: dpdk::tsc(),
            pace_sent: 0,
            hz,
            new_space,
            v,
            last_poll: dpdk::tsc(),
            stall_ticks: STALL_NS * hz / 1_000_000_000,
            ring_slots,
        }
    }

    /// Switches what is sent (pacing restarts).
    pub(crate) fn set_source(&mut self, s: Source) {
        self.source = s;
        self.next_open = 0;
        self.pace_start = dpdk::tsc();
        self.pace_sent = 0;
    }

    /// Clears the record of opened flows (to open them all again).
    pub(crate) fn reset_opened(&mut self) {
        self.opened = FlowBits::new(self.v.established.len());
        self.flow_server.fill(u16::MAX);
    }

    /// Whether [`Source::OpenFlows`] has gone through every flow.
    pub(crate) fn open_pass_done(&self) -> bool {
        self.next_open >= self.v.established.len() && self.pending.is_empty()
    }

    #[inline]
    fn ticks_to_ns(&self, t: u64) -> u64 {
        ((u128::from(t) * self.ns_mult) >> 32) as u64
    }

    /// One round: send, receive both sides.
    #[inline]
    pub(crate) fn poll(&mut self) {
        let now = dpdk::tsc();
        let gap = now.wrapping_sub(self.last_poll);
        self.last_poll = now;
        if gap > self.stall_ticks {
            self.stall(gap);
        }
        self.send(now);
        self.receive_server(now);
        self.receive_client(now);
    }

    /// Accounts a gap of `gap` ticks between two polls.
    #[cold]
    fn stall(&mut self, gap: u64) {
        let c = &mut self.c;
        c.stalls += 1;
        c.stall_ticks += gap;
        c.max_gap_ticks = c.max_gap_ticks.max(gap);
        if self.rate > 0.0 && self.source != Source::Idle {
            let arrived = (gap as f64 / self.hz as f64 * self.rate) as u64;
            if arrived > self.ring_slots {
                c.overflowing_stalls += 1;
                c.overflow_estimate += arrived - self.ring_slots;
            }
        }
    }

    /// Converts TSC ticks to microseconds.
    pub(crate) fn ticks_to_us(&self, t: u64) -> f64 {
        t as f64 * 1e6 / self.hz as f64
    }

    fn budget(&mut self, now: u64) -> usize {
        if self.rate <= 0.0 {
            return BURST;
        }
        let due = ((now - self.pace_start) as f64 / self.hz as f64 * self.rate) as u64;
        (due.saturating_sub(self.pace_sent) as usize).min(BURST)
    }

    fn send(&mut self, now: u64) {
        if self.pending.is_empty() && self.source != Source::Idle {
            let n = self.budget(now);
            if n == 0 {
                return;
            }
            if self.io.pool.alloc_bulk(&mut self.pending, n).is_err() {
                return;
            }
            self.fill(now);
        }
        if !self.pending.is_empty() {
            self.io.client_tx.tx_burst(&mut self.pending);
        }
    }

    /// Writes the packets of the freshly allocated `pending` burst; frees any it has no
    /// packet for (end of an open pass).
    fn fill(&mut self, now: u64) {
        let len = self.tmpl.len();
        let ts = now & TS_MASK;
        let n_est = self.v.established.len();
        let mut built = 0usize;
        let mut burst = std::mem::take(&mut self.pending);
        for m in burst.iter_mut() {
            let (space, idx, syn) = match self.source {
                Source::Idle => break,
                Source::OpenFlows => {
                    while self.next_open < n_est && self.opened.contains(self.next_open) {
                        self.next_open += 1;
                    }
                    if self.next_open >= n_est {
                        break;
                    }
                    self.next_open += 1;
                    (Space::Established, self.next_open - 1, true)
                }
                Source::Established => {
                    let i = self.next_est;
                    self.next_est = if i + 1 >= n_est { 0 } else { i + 1 };
                    (Space::Established, i, false)
                }
                Source::NewConnections => {
                    self.next_new = self.next_new.wrapping_add(1);
                    (Space::New, self.next_new, true)
                }
                Source::Mixed(k) => {
                    if self.seq.wrapping_rem(k) == 0 {
                        self.next_new = self.next_new.wrapping_add(1);
                        (Space::New, self.next_new, true)
                    } else {
                        let i = self.next_est;
                        self.next_est = if i + 1 >= n_est { 0 } else { i + 1 };
                        (Space::Established, i, false)
                    }
                }
            };
            let (ip, port) = match (space, self.new_space) {
                (Space::New, Some(s)) => s.endpoint(idx),
                _ => self.v.established.endpoint(idx),
            };
            let Some(buf) = m.append(len) else { break };
            self.tmpl.write(buf, ip, port, self.seq, syn, ts);
            self.seq = self.seq.wrapping_add(1);
            match (space, syn) {
                (Space::New, _) => self.c.tx_new += 1,
                (_, true) => self.c.tx_syn += 1,
                (_, false) => self.c.tx_est += 1,
            }
            built += 1;
        }
        // Free what was not written (end of an open pass, or no room).
        while burst.len() > built {
            drop(burst.pop());
        }
        self.c.tx_bytes += (built * (len + 4)) as u64;
        self.pace_sent += built as u64;
        self.pending = burst;
    }

    fn receive_server(&mut self, now: u64) {
        let mut burst: Burst<BURST> = Burst::new();
        if self.io.server_rx.rx_burst(&mut burst) == 0 {
            return;
        }
        let now48 = now & TS_MASK;
        let mut keep = [false; BURST];
        for (k, m) in burst.iter_mut().enumerate() {
            match self.v.forward(m.data()) {
                Received::Valid(rx) => {
                    let c = &mut self.c;
                    c.rx_fwd += 1;
                    c.rx_fwd_bytes += m.len() as u64 + 4;
                    match (rx.space, rx.syn) {
                        (Space::New, _) => c.rx_fwd_new += 1,
                        (Space::Established, true) => {
                            c.rx_fwd_syn += 1;
                            if self.opened.insert(rx.flow) {
                                if let Some(s) = self.flow_server.get_mut(rx.flow as usize) {
                                    *s = rx.server;
                                }
                            }
                        }
                        (Space::Established, false) => c.rx_fwd_est += 1,
                    }
                    if (rx.seq.wrapping_sub(self.last_fwd_seq) as i32) < 0 {
                        c.reorder_fwd += 1;
                    } else {
                        self.last_fwd_seq = rx.seq;
                    }
                    if let Some(p) = self.per_server.get_mut(usize::from(rx.server)) {
                        *p += 1;
                    }
                    let lat = self.ticks_to_ns(now48.wrapping_sub(rx.ts) & TS_MASK);
                    self.lat_fwd.record(lat);
                    if self.reply && reflect(m.data_mut(), usize::from(rx.l3), usize::from(rx.l4)) {
                        keep[k] = true;
                    }
                }
                Received::Invalid(why) => {
                    if self.c.invalid_fwd[why.index()] == 0 && std::env::var_os("PKTGEN_DUMP").is_some() {
                        eprintln!("pktgen: first {why:?} frame: {:02x?}", m.data());
                    }
                    self.c.invalid_fwd[why.index()] += 1
                }
                Received::ArpRequest(p) => {
                    let mac = self.io.server_mac;
                    if dataplane::nat::build_arp_reply_in_place(m.data_mut(), &p, mac).is_ok() {
                        self.c.arp_answered += 1;
                        keep[k] = true;
                    }
                }
                Received::Other => self.c.other += 1,
            }
        }
        if !keep.iter().any(|k| *k) {
            burst.clear();
            return;
        }
        for (k, m) in burst.drain().enumerate() {
            if keep[k] {
                if let Err(m) = self.server_out.push(m) {
                    drop(m);
                    self.c.rev_tx_fail += 1;
                }
            }
        }
        let n = self.server_out.len() as u64;
        let sent = self.io.server_tx.tx_burst(&mut self.server_out) as u64;
        self.c.rev_tx += sent;
        if sent < n {
            // No backlog on the answer path: what does not fit now is dropped and counted.
            self.c.rev_tx_fail += n - sent;
            self.server_out.clear();
        }
    }

    fn receive_client(&mut self, now: u64) {
        let mut burst: Burst<BURST> = Burst::new();
        if self.io.client_rx.rx_burst(&mut burst) == 0 {
            return;
        }
        let now48 = now & TS_MASK;
        for m in burst.iter() {
            match self.v.reverse(m.data()) {
                Received::Valid(rx) => {
                    self.c.rx_rev += 1;
                    self.c.rx_rev_bytes += m.len() as u64 + 4;
                    if (rx.seq.wrapping_sub(self.last_rev_seq) as i32) < 0 {
                        self.c.reorder_rev += 1;
                    } else {
                        self.last_rev_seq = rx.seq;
                    }
                    let lat = self.ticks_to_ns(now48.wrapping_sub(rx.ts) & TS_MASK);
                    self.lat_rev.record(lat);
                }
                Received::Invalid(why) => self.c.invalid_rev[why.index()] += 1,
                Received::ArpRequest(_) | Received::Other => self.c.other += 1,
            }
        }
        burst.clear();
    }
}
