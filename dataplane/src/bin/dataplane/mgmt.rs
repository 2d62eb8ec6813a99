//! The main lcore's loop: the exception path (taps → ports), management frames (ARP
//! requests, gratuitous ARP) and port-counter snapshots. Polls gently: this core is shared
//! with the control plane. When idle it backs off as [`IdlePolicy`] says (a fixed 50 µs nap
//! with `idle = "busy"`); a management frame to send ends a sleep at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam::channel::Receiver;
use dataplane::counters::{bump, read};
use dataplane::generation::PortView;
use dataplane::host;
use dataplane::idle::{Action, IdleConfig, IdlePolicy};
use dataplane::nat;
use dataplane::runtime::switch::HostCmd;
use dataplane::wire::MacAddr;
use dpdk::ring::Producer;
use dpdk::{Burst, Mempool, Port, PortId, RxQueue};

/// Frames from the kernel sent out, per port (written by the main lcore only).
pub(crate) struct HostCounters(Vec<AtomicU64>);

impl HostCounters {
    pub(crate) fn new(n: usize) -> HostCounters {
        HostCounters((0..n).map(|_| AtomicU64::new(0)).collect())
    }
    pub(crate) fn get(&self, i: usize) -> u64 {
        self.0.get(i).map(read).unwrap_or(0)
    }
}

/// NIC counters and link state of every port, refreshed by the main lcore.
static SNAPSHOT: Mutex<Vec<(u16, dpdk::PortStats, bool)>> = Mutex::new(Vec::new());

/// The latest counters of `id` and whether its link is up.
pub(crate) fn port_stats(id: PortId) -> (dpdk::PortStats, bool) {
    let snap = SNAPSHOT.lock().unwrap_or_else(|e| e.into_inner());
    snap.iter().find(|(p, _, _)| *p == id.0).map(|(_, s, up)| (*s, *up)).unwrap_or_default()
}

pub(crate) struct Mgmt<'a> {
    ports: &'a [Port],
    /// Every rx queue of every tap, with the tap's port index.
    tap_rx: Vec<(usize, RxQueue)>,
    /// Per port, to worker 0 which transmits.
    port_tx: Vec<Producer>,
    pool: Mempool,
    views: Vec<PortView>,
    tap_macs: Vec<MacAddr>,
    host_rx: Receiver<HostCmd>,
    from_host: Arc<HostCounters>,
    last_snapshot: Instant,
    link_up: Arc<[AtomicBool]>,
}

impl<'a> Mgmt<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ports: &'a [Port],
        taps: &[Port],
        port_tx: Vec<Producer>,
        pool: Mempool,
        views: Vec<PortView>,
        tap_macs: Vec<MacAddr>,
        host_rx: Receiver<HostCmd>,
        from_host: Arc<HostCounters>,
        link_up: Arc<[AtomicBool]>,
    ) -> Result<Mgmt<'a>> {
        let m = Mgmt {
            ports,
            tap_rx: taps
                .iter()
                .enumerate()
                .flat_map(|(i, t)| (0..t.rx_queue_count()).map(move |q| t.rx_queue(q).map(|rx| (i, rx))))
                .collect::<Result<_, _>>()?,
            port_tx,
            pool,
            views,
            tap_macs,
            host_rx,
            from_host,
            last_snapshot: Instant::now() - Duration::from_secs(1),
            link_up,
        };
        Ok(m)
    }

    /// Polls until `stop` is set, backing off when idle as `idle` says.
    pub(crate) fn run(&mut self, stop: &AtomicBool, idle: IdleConfig) {
        let clock = Instant::now();
        let now_ns = || clock.elapsed().as_nanos() as u64;
        let mut policy = IdlePolicy::new(idle, now_ns());
        let host_rx = self.host_rx.clone();
        let mut wake = crossbeam::channel::Select::new();
        wake.recv(&host_rx);
        while !stop.load(Ordering::Acquire) {
            let work = self.poll();
            match policy.after_round(work, now_ns()) {
                Action::Poll => {}
                Action::Pause(ns) => {
                    let until = now_ns() + ns;
                    while now_ns() < until {
                        std::hint::spin_loop();
                    }
                }
                Action::Sleep(ns) => {
                    let _ = wake.ready_timeout(Duration::from_nanos(ns));
                }
            }
        }
    }

    /// One round; returns how many frames and commands it handled.
    fn poll(&mut self) -> usize {
        let mut work = 0;
        let mut burst: Burst<32> = Burst::new();
        for (i, rx) in self.tap_rx.iter_mut() {
            let i = *i;
            let n = rx.rx_burst(&mut burst);
            if n == 0 {
                continue;
            }
            work += n;
            burst.retain(|m| host::from_host(m.data_mut(), &self.views[i].mac, &self.tap_macs[i]));
            bump(&self.from_host.0[i], burst.len() as u64);
            self.port_tx[i].enqueue_burst(&mut burst);
            burst.clear();
        }
        while let Ok(cmd) = self.host_rx.try_recv() {
            work += 1;
            self.send(cmd);
        }
        if self.last_snapshot.elapsed() > Duration::from_millis(100) {
            self.snapshot();
        }
        work
    }

    fn send(&mut self, cmd: HostCmd) {
        let (port, target, gratuitous) = match cmd {
            HostCmd::ArpRequest { port, target } => (port, target, false),
            HostCmd::GratuitousArp { port, vip } => (port, vip, true),
        };
        let p = usize::from(port);
        let Some(v) = self.views.get(p) else { return };
        let Some(mut m) = self.pool.alloc() else { return };
        let Some(buf) = m.append(64) else { return };
        let n = if gratuitous {
            nat::build_gratuitous_arp(buf, v.mac, target, None)
        } else {
            nat::build_arp_request(buf, v.mac, v.addr.ip, target, None)
        };
        if let Ok(n) = n {
            m.truncate(n);
            let _ = self.port_tx[p].enqueue(m);
            tracing::debug!(?cmd, "sent");
        }
    }

    fn snapshot(&mut self) {
        let snap: Vec<_> = self
            .ports
            .iter()
            .map(|p| (p.id().0, p.stats().unwrap_or_default(), p.link().map(|l| l.up).unwrap_or(false)))
            .collect();
        for (i, (_, _, up)) in snap.iter().enumerate() {
            if let Some(l) = self.link_up.get(i) {
                if l.swap(*up, Ordering::Relaxed) != *up {
                    tracing::info!(port = i, up, "link state changed");
                }
            }
        }
        *SNAPSHOT.lock().unwrap_or_else(|e| e.into_inner()) = snap;
        self.last_snapshot = Instant::now();
    }
}
