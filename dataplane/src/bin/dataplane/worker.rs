//! A worker lcore: polls its rx queue of every port in bursts, runs each frame through the
//! sans-IO pipeline, and transmits, hands off or drops it. Never locks, never allocates: new
//! generations are picked up between bursts. When its queues stay empty it backs off as
//! [`IdlePolicy`] says (`[dataplane] idle`): pauses, then sleeps — a sleep that a new generation
//! or a sessions request ends at once, so neither config acks nor listings wait for it; frames
//! handed off by other workers or injected by the main lcore wait at most one sleep.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use dataplane::counters::{bump, DropReason};
use dataplane::generation::{Generation, PortView};
use dataplane::host;
use dataplane::idle::{Action, IdleConfig, IdlePolicy};
use dataplane::nat;
use dataplane::pipeline::{Emit, Verdict, Worker};
use dataplane::runtime::switch::WorkerEnd;
use dataplane::wire::MacAddr;
use dpdk::ring::{Consumer, Producer};
use dpdk::{Burst, Eal, Mbuf, Mempool, Port, RxQueue, SocketId, TxQueue};

const BURST: usize = dataplane::pipeline::MAX_BURST;
/// Loops between two expiry sweeps; each visits what [`Worker::sweep_budget`] says (at 1M
/// flows ~2M records a second, however many packets).
const SWEEP_EVERY: u64 = 8;
/// Flow records a Sessions listing reads per loop (a few µs), so it never holds up forwarding.
const DUMP_BUDGET: usize = 256;

/// The rings between workers: for worker `w`, `producers[v]` sends to worker `v` and
/// `consumers` receive from every other worker.
pub(crate) struct HandoffRings {
    producers: Vec<Option<Producer>>,
    consumers: Vec<Consumer>,
}

/// Creates the handoff rings of `n` workers (none for one worker).
pub(crate) fn handoff_rings(eal: &Eal, n: usize) -> Result<Vec<HandoffRings>> {
    let mut out: Vec<HandoffRings> =
        (0..n).map(|_| HandoffRings { producers: (0..n).map(|_| None).collect(), consumers: Vec::new() }).collect();
    for from in 0..n {
        for to in 0..n {
            if from == to {
                continue;
            }
            let (p, c) = dpdk::ring::channel(eal, &format!("ho_{from}_{to}"), 4096, SocketId::current())
                .with_context(|| format!("handoff ring {from}->{to}"))?;
            out[from].producers[to] = Some(p);
            out[to].consumers.push(c);
        }
    }
    Ok(out)
}

/// Rings from the main lcore to worker 0, one per port: frames the main lcore sends
/// (exception path, ARP) are transmitted by worker 0 on its queue of that port.
pub(crate) fn inject_rings(eal: &Eal, ports: usize) -> Result<(Vec<Producer>, Vec<Consumer>)> {
    let mut p = Vec::new();
    let mut c = Vec::new();
    for i in 0..ports {
        let (tx, rx) = dpdk::ring::channel(eal, &format!("inject_{i}"), 1024, SocketId::current())
            .with_context(|| format!("inject ring {i}"))?;
        p.push(tx);
        c.push(rx);
    }
    Ok((p, c))
}

/// What a worker polls and transmits on.
pub(crate) struct WorkerIo {
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
    tap_tx: Vec<TxQueue>,
    tx_bufs: Vec<Burst<BURST>>,
    tap_bufs: Vec<Burst<BURST>>,
    pool: Mempool,
    views: Vec<PortView>,
    tap_macs: Vec<MacAddr>,
    rings: HandoffRings,
    /// Frames from the main lcore to send, per port (worker 0 only).
    inject: Vec<Consumer>,
    /// Reused buffer for the outbox (no allocation in the loop).
    scratch: Vec<Emit>,
    /// DPDK port id → port index (for frames handed off by another worker).
    port_index: Vec<u16>,
    /// Link state of each port, refreshed by the main lcore: a port whose link is down is
    /// not polled (some drivers, memif among them, misbehave when polled without a peer).
    link_up: Arc<[AtomicBool]>,
}

impl WorkerIo {
    /// Takes queue `w` of every port and tap.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ports: &[Port],
        taps: &[Port],
        w: u16,
        pool: &Mempool,
        views: Vec<PortView>,
        tap_macs: Vec<MacAddr>,
        rings: HandoffRings,
        inject: Vec<Consumer>,
        link_up: Arc<[AtomicBool]>,
    ) -> Result<WorkerIo> {
        let mut port_index = vec![u16::MAX; 1024];
        for (i, p) in ports.iter().enumerate() {
            port_index[usize::from(p.id().0)] = i as u16;
        }
        Ok(WorkerIo {
            rx: ports.iter().map(|p| p.rx_queue(w)).collect::<Result<_, _>>()?,
            tx: ports.iter().map(|p| p.tx_queue(w)).collect::<Result<_, _>>()?,
            tap_tx: taps.iter().map(|p| p.tx_queue(w)).collect::<Result<_, _>>()?,
            tx_bufs: ports.iter().map(|_| Burst::new()).collect(),
            tap_bufs: taps.iter().map(|_| Burst::new()).collect(),
            pool: pool.clone(),
            views,
            tap_macs,
            rings,
            inject,
            scratch: Vec::with_capacity(4096),
            port_index,
            link_up,
        })
    }
}

struct Clock {
    hz: u128,
}

impl Clock {
    fn now_ns(&self) -> u64 {
        (u128::from(dpdk::tsc()) * 1_000_000_000 / self.hz) as u64
    }
}

/// The worker's loop; returns 0 when stopped.
pub(crate) fn run(mut core: Worker, mut io: WorkerIo, end: WorkerEnd, stop: Arc<AtomicBool>, idle: IdleConfig) -> i32 {
    let clock = Clock { hz: u128::from(dpdk::tsc_hz().max(1)) };
    let Ok(mut gen) = end.generations.recv() else { return 1 };
    core.adopt(&gen);
    let mut burst: Burst<BURST> = Burst::new();
    let counters = end.counters.clone();
    let mut loops = 0u64;
    let mut last_sweep = clock.now_ns();
    // A Sessions listing in progress (the control side allocated its rows).
    let mut dump: Option<dataplane::runtime::sessions::DumpJob> = None;
    let mut policy = IdlePolicy::new(idle, clock.now_ns());
    // What ends a sleep early: a new generation, a sessions request (built once: no
    // allocation in the loop).
    let mut wake = crossbeam::channel::Select::new();
    wake.recv(&end.generations);
    wake.recv(&end.sessions.requests);
    let mut slept = false;
    while !stop.load(Ordering::Relaxed) {
        loops = loops.wrapping_add(1);
        bump(&counters.loops, 1);
        // New forwarding state, between bursts. `is_empty` first: two plain loads, where
        // `try_recv` on an empty channel also issues a full fence (mfence), every loop.
        while !end.generations.is_empty() {
            let Ok(g) = end.generations.try_recv() else { break };
            gen = g;
            core.adopt(&gen);
        }
        let now = clock.now_ns();
        let mut work = 0usize;
        for p in 0..io.rx.len() {
            if !io.link_up[p].load(Ordering::Relaxed) {
                continue;
            }
            let n = io.rx[p].rx_burst(&mut burst);
            if n == 0 {
                continue;
            }
            work += n;
            bump(&counters.bursts, 1);
            process_burst(&mut core, &mut io, &gen, now, &mut burst, Some(p as u16));
        }
        for c in 0..io.rings.consumers.len() {
            let n = io.rings.consumers[c].dequeue_burst(&mut burst);
            if n > 0 {
                work += n;
                process_burst(&mut core, &mut io, &gen, now, &mut burst, None);
            }
        }
        for p in 0..io.inject.len() {
            let n = io.inject[p].dequeue_burst(&mut burst);
            if n > 0 {
                work += n;
                for m in burst.drain() {
                    push(&mut io.tx_bufs, &mut io.tx, p as u16, m, &core);
                }
            }
        }
        if !core.outbox.is_empty() {
            emit(&mut core, &mut io);
        }
        flush(&mut io, &counters);
        // After a sleep too: an idle worker's loops are up to a maximal sleep apart.
        if slept || loops.is_multiple_of(SWEEP_EVERY) {
            let budget = core.sweep_budget(now.saturating_sub(last_sweep));
            if budget > 0 {
                last_sweep = now;
            }
            core.maintain(&gen, now, budget);
            if dump.is_none() {
                dump = end.sessions.requests.try_recv().ok();
            }
        }
        if let Some(job) = dump.as_mut() {
            if core.dump_flows(now, job, DUMP_BUDGET) {
                // The control side may have given up waiting; then the job is dropped here.
                if let Some(job) = dump.take() {
                    let _ = end.sessions.replies.try_send(job);
                }
            }
        }
        // A listing in progress is work: its slices go at full speed.
        slept = false;
        match policy.after_round(work + usize::from(dump.is_some()), now) {
            Action::Poll => {}
            Action::Pause(ns) => {
                let until = clock.now_ns() + ns;
                while clock.now_ns() < until {
                    std::hint::spin_loop();
                }
            }
            Action::Sleep(ns) => {
                let t0 = clock.now_ns();
                // Ready (a message waiting) or timed out: either way, poll again.
                let _ = wake.ready_timeout(Duration::from_nanos(ns));
                bump(&counters.idle_sleeps, 1);
                bump(&counters.asleep_ns, clock.now_ns().saturating_sub(t0));
                slept = true;
            }
        }
    }
    0
}

fn process_burst(
    core: &mut Worker,
    io: &mut WorkerIo,
    gen: &Arc<Generation>,
    now: u64,
    burst: &mut Burst<BURST>,
    port: Option<u16>,
) {
    core.prepare_burst(burst.iter().map(|m| m.data()));
    for (i, mut m) in burst.drain().enumerate() {
        let in_port = match port {
            Some(p) => p,
            None => io.port_index.get(usize::from(m.port())).copied().unwrap_or(u16::MAX),
        };
        if usize::from(in_port) >= io.rx.len() {
            continue; // drops the mbuf
        }
        match core.process_prepared(gen, now, in_port, i, m.data_mut()) {
            Verdict::Forward { port, len } => {
                m.truncate(len);
                push(&mut io.tx_bufs, &mut io.tx, port, m, core);
            }
            Verdict::ToHost { port } => {
                let p = usize::from(port);
                host::to_host(m.data_mut(), &io.views[p].mac, &io.tap_macs[p]);
                push(&mut io.tap_bufs, &mut io.tap_tx, port, m, core);
            }
            Verdict::Handoff { worker } => {
                match io.rings.producers.get_mut(usize::from(worker)).and_then(Option::as_mut) {
                    Some(ring) => {
                        if ring.enqueue(m).is_err() {
                            core.counters().count_drop(DropReason::HandoffFull);
                        }
                    }
                    None => core.counters().count_drop(DropReason::HandoffFull),
                }
            }
            Verdict::Drop(_) => {}
        }
    }
}

/// Adds a frame to a port's tx batch, sending the batch when full.
fn push(bufs: &mut [Burst<BURST>], queues: &mut [TxQueue], port: u16, m: Mbuf, core: &Worker) {
    let p = usize::from(port);
    let Some(buf) = bufs.get_mut(p) else { return };
    if let Err(m) = buf.push(m) {
        let _ = queues[p].tx_burst(buf);
        if buf.push(m).is_err() {
            core.counters().count_drop(DropReason::TxFull);
        }
    }
}

fn flush(io: &mut WorkerIo, counters: &dataplane::counters::WorkerCounters) {
    for (bufs, queues, reason) in [
        (&mut io.tx_bufs, &mut io.tx, DropReason::TxFull),
        (&mut io.tap_bufs, &mut io.tap_tx, DropReason::HostPathFull),
    ] {
        for (buf, q) in bufs.iter_mut().zip(queues.iter_mut()) {
            if buf.is_empty() {
                continue;
            }
            let (_, dropped) = q.tx_burst_or_drop(buf);
            for _ in 0..dropped {
                counters.count_drop(reason);
            }
        }
    }
}

fn emit(core: &mut Worker, io: &mut WorkerIo) {
    let mut items = std::mem::take(&mut io.scratch);
    items.extend(core.outbox.drain());
    for e in items.drain(..) {
        let Some(mut m) = io.pool.alloc() else {
            core.counters().count_drop(DropReason::NoMbuf);
            continue;
        };
        let (port, len) = {
            let Some(buf) = m.append(64) else { continue };
            match e {
                Emit::ArpRequest { port, target } => {
                    let v = &io.views[usize::from(port)];
                    (port, nat::build_arp_request(buf, v.mac, v.addr.ip, target, None))
                }
                Emit::Rst { port, src_mac, dst_mac, src, dst, seq } => (
                    port,
                    nat::build_tcp_rst(
                        buf,
                        src_mac,
                        dst_mac,
                        None,
                        SocketAddrV4::new(src.0, src.1),
                        SocketAddrV4::new(dst.0, dst.1),
                        seq,
                        0,
                    ),
                ),
            }
        };
        match len {
            Ok(n) => {
                m.truncate(n);
                push(&mut io.tx_bufs, &mut io.tx, port, m, core);
            }
            Err(_) => core.counters().count_drop(DropReason::NoMbuf),
        }
    }
    io.scratch = items;
}
