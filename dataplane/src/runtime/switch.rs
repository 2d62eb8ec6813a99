//! The switch: the dataplane's control side at run time.
//!
//! Owns the [`Control`] tables behind a mutex (changes are serialized), publishes each new
//! [`Generation`] to every worker, waits until every worker forwards with it (the ack),
//! answers the switch API, and does housekeeping: neighbours learned by workers, reaping
//! drained bindings, ARP for unresolved next hops and gratuitous ARP for new VIPs (handed to
//! the main lcore, which owns the management tx queues).
//!
//! A change is acknowledged once the workers forward with it, through an interim correction
//! of the service's Maglev table (see [`crate::control`]). The builder thread
//! ([`Switch::run_builder`]) then builds the exact tables without holding the lock and
//! publishes them; [`MaglevStats`] tells how long that took.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use acm::Primitive;
use crossbeam::channel::{Receiver, Sender, TrySendError};
use crossbeam::queue::ArrayQueue;

use super::api_server::Handler;
use super::clock::now_ns;
use super::sessions::{sessions_link, SessionsEnd, SessionsLink, SESSIONS_TIMEOUT};
use crate::api::{
    ApiError, MaglevStats, PortStats, Request, RequestBody, Response, ResponseBody, ServiceStats, Stats, Timing,
    WorkerStats,
};
use crate::control::{BuildJob, Control, Outcome};
use crate::counters::{read, DropReason, WorkerCounters};
use crate::generation::Generation;
use crate::wire::MacAddr;

/// How long a change may wait for the workers' acknowledgement.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The control side's end of one worker.
pub struct WorkerLink {
    /// The worker's lcore (for Stats).
    pub lcore: u32,
    /// New generations go here; the worker takes the newest between bursts.
    pub generations: Sender<Arc<Generation>>,
    /// The worker's counters.
    pub counters: Arc<WorkerCounters>,
    /// Neighbours the worker learned from ARP, for the control side to publish.
    pub learned: Arc<ArrayQueue<(u32, MacAddr)>>,
    /// The worker's flow-table capacity.
    pub flow_capacity: u64,
    /// Sessions requests to the worker.
    pub sessions: SessionsLink,
}

/// The worker's end of its link.
pub struct WorkerEnd {
    /// Generations from the control side.
    pub generations: Receiver<Arc<Generation>>,
    /// Its counters.
    pub counters: Arc<WorkerCounters>,
    /// Where it reports learned neighbours.
    pub learned: Arc<ArrayQueue<(u32, MacAddr)>>,
    /// Sessions requests (flow listings) to serve between bursts.
    pub sessions: SessionsEnd,
}

/// Creates a linked pair for one worker.
pub fn worker_link(
    lcore: u32,
    max_bindings: usize,
    max_services: usize,
    flow_capacity: u64,
) -> (WorkerLink, WorkerEnd) {
    let (tx, rx) = crossbeam::channel::bounded(64);
    let counters = Arc::new(WorkerCounters::new(max_bindings, max_services));
    let learned = Arc::new(ArrayQueue::new(1024));
    let (sessions, sessions_end) = sessions_link();
    (
        WorkerLink {
            lcore,
            generations: tx,
            counters: counters.clone(),
            learned: learned.clone(),
            flow_capacity,
            sessions,
        },
        WorkerEnd { generations: rx, counters, learned, sessions: sessions_end },
    )
}

/// Work for the main lcore's management tx path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCmd {
    /// Send an ARP request for `target` out of `port`.
    ArpRequest {
        /// Port index.
        port: u16,
        /// Address to resolve.
        target: Ipv4Addr,
    },
    /// Announce `vip` with a gratuitous ARP out of `port`.
    GratuitousArp {
        /// Port index.
        port: u16,
        /// The VIP.
        vip: Ipv4Addr,
    },
}

/// Reads the NIC-level port counters (supplied by the binary; empty in tests).
pub type PortStatsFn = Box<dyn Fn() -> Vec<PortStats> + Send + Sync>;

struct Inner {
    control: Control,
    /// Generations still possibly referenced by workers; freed here, not on the fast path.
    retired: Vec<Arc<Generation>>,
    announced_vips: BTreeSet<Ipv4Addr>,
    arp_sent: HashMap<Ipv4Addr, Instant>,
    /// When the oldest change not yet in an exact Maglev table was published.
    unbuilt_since_ns: Option<u64>,
    maglev: MaglevStats,
}

/// The switch. Shared by the API connection threads and the housekeeping thread.
pub struct Switch {
    inner: Mutex<Inner>,
    workers: Vec<WorkerLink>,
    host: Sender<HostCmd>,
    port_stats: PortStatsFn,
    n_ports: u16,
    /// Wakes the builder thread (capacity 1: one wake-up covers every change before it).
    build_tx: Sender<()>,
    build_rx: Receiver<()>,
}

impl Switch {
    /// A switch over `control` driving `workers`; host work goes to `host`.
    pub fn new(control: Control, workers: Vec<WorkerLink>, host: Sender<HostCmd>, port_stats: PortStatsFn) -> Switch {
        let n_ports = control.current().ports.len() as u16;
        let (build_tx, build_rx) = crossbeam::channel::bounded(1);
        let sw = Switch {
            inner: Mutex::new(Inner {
                control,
                retired: Vec::new(),
                announced_vips: BTreeSet::new(),
                arp_sent: HashMap::new(),
                unbuilt_since_ns: None,
                maglev: MaglevStats::default(),
            }),
            workers,
            host,
            port_stats,
            n_ports,
            build_tx,
            build_rx,
        };
        // Hand generation 0 to the workers so they can start.
        let g = sw.lock().control.current().clone();
        for w in &sw.workers {
            let _ = w.generations.try_send(g.clone());
        }
        sw
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug; the tables are still consistent enough
        // to keep serving (every mutation is applied before publish), so recover.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the control's next generation and waits for every worker's ack.
    /// Returns (generation, published_ns).
    fn publish_and_wait(&self, inner: &mut Inner) -> Result<(u64, u64), ApiError> {
        let gen = inner.control.publish();
        let published = now_ns();
        for w in &self.workers {
            match w.generations.try_send(gen.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    // The worker is not taking generations up; it will be caught by the wait.
                    tracing::error!(lcore = w.lcore, "generation queue full");
                }
                Err(TrySendError::Disconnected(_)) => return Err(ApiError::ShuttingDown),
            }
        }
        inner.retired.push(gen.clone());
        if inner.control.needs_build() {
            inner.unbuilt_since_ns.get_or_insert(published);
            // Full means a wake-up is already pending, which covers this change too.
            let _ = self.build_tx.try_send(());
        }
        self.wait_acks(gen.number)?;
        // Free generations nobody else holds any more, here rather than on a worker: a worker
        // never drops the last reference because `retired` keeps one until then.
        inner.retired.retain(|g| Arc::strong_count(g) > 1);
        self.announce_vips(inner);
        self.resolve_next_hops(inner);
        Ok((gen.number, published))
    }

    fn wait_acks(&self, number: u64) -> Result<(), ApiError> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.workers.iter().all(|w| w.counters.generation.load(Ordering::Acquire) >= number) {
                return Ok(());
            }
            if start.elapsed() > ACK_TIMEOUT {
                return Err(ApiError::AckTimeout { generation: number, waited_ms: ACK_TIMEOUT.as_millis() as u64 });
            }
            spins += 1;
            if spins < 2000 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }

    fn announce_vips(&self, inner: &mut Inner) {
        let vips = inner.control.vips();
        for vip in vips.difference(&inner.announced_vips) {
            for port in 0..self.n_ports {
                let _ = self.host.try_send(HostCmd::GratuitousArp { port, vip: *vip });
            }
        }
        inner.announced_vips = vips;
    }

    fn resolve_next_hops(&self, inner: &mut Inner) {
        let now = Instant::now();
        for (port, ip) in inner.control.unresolved_next_hops() {
            let due = inner.arp_sent.get(&ip).is_none_or(|t| now.duration_since(*t) > Duration::from_millis(500));
            if due && self.host.try_send(HostCmd::ArpRequest { port, target: ip }).is_ok() {
                inner.arp_sent.insert(ip, now);
            }
        }
    }

    fn sum_binding(&self, slot: u32) -> acm::BindingCounters {
        let mut c = acm::BindingCounters::default();
        for w in &self.workers {
            c.add(&w.counters.bindings[slot as usize].snapshot());
        }
        c
    }

    fn active_flows(&self, slot: u32) -> u64 {
        self.workers.iter().map(|w| read(&w.counters.bindings[slot as usize].active_flows)).sum()
    }

    /// One round of housekeeping: learned neighbours, reaping, ARP. Call every few ms.
    pub fn housekeeping(&self) {
        let mut inner = self.lock();
        let mut changed = false;
        for w in &self.workers {
            while let Some((ip, mac)) = w.learned.pop() {
                changed |= inner.control.learn_neighbor(Ipv4Addr::from(ip), mac);
            }
        }
        inner.retired.retain(|g| Arc::strong_count(g) > 1);
        let current = inner.control.current().number;
        let all_acked = self.workers.iter().all(|w| w.counters.generation.load(Ordering::Acquire) >= current);
        if all_acked && inner.control.reap(|slot| self.active_flows(slot)) == Outcome::Changed {
            changed = true;
        }
        if changed {
            if let Err(e) = self.publish_and_wait(&mut inner) {
                tracing::warn!("housekeeping publish: {e}");
            }
        } else {
            self.resolve_next_hops(&mut inner);
        }
    }

    /// Runs housekeeping every `period` until `stop` is set.
    pub fn run_housekeeping(self: &Arc<Self>, period: Duration, stop: Arc<std::sync::atomic::AtomicBool>) {
        while !stop.load(Ordering::Acquire) {
            self.housekeeping();
            std::thread::sleep(period);
        }
    }

    /// Builds the exact Maglev tables of services changed since their last build, without
    /// holding the lock, and publishes them. Returns whether anything was built.
    pub fn build_round(&self) -> bool {
        // The jobs cover every change published so far; later ones start a new wait.
        let (jobs, covered_since) = {
            let mut inner = self.lock();
            let jobs = inner.control.build_jobs();
            let since = inner.unbuilt_since_ns.take();
            if jobs.is_empty() && inner.control.needs_build() {
                inner.unbuilt_since_ns = since;
            }
            (jobs, since)
        };
        if jobs.is_empty() {
            return false;
        }
        let (tables, entries) = (jobs.len() as u64, jobs.iter().map(BuildJob::table_size).sum::<usize>());
        let t0 = now_ns();
        let built: Vec<_> = jobs.into_iter().map(BuildJob::run).collect();
        let build_ns = now_ns().saturating_sub(t0);
        let mut inner = self.lock();
        let mut changed = false;
        for b in built {
            changed |= inner.control.install(b) == Outcome::Changed;
        }
        if changed {
            if let Err(e) = self.publish_and_wait(&mut inner) {
                tracing::warn!("publishing built Maglev tables: {e}");
                return true;
            }
        }
        let now = now_ns();
        let m = &mut inner.maglev;
        m.rounds += 1;
        m.tables_built += tables;
        m.build_us_last = build_ns / 1000;
        m.build_us_max = m.build_us_max.max(m.build_us_last);
        m.build_us_total += build_ns / 1000;
        tracing::debug!(tables, entries, us = build_ns / 1000, "Maglev tables built");
        if let Some(since) = covered_since {
            let us = now.saturating_sub(since) / 1000;
            m.converge_us_last = us;
            m.converge_us_max = m.converge_us_max.max(us);
            m.converge_us_total += us;
        }
        true
    }

    /// Runs [`Switch::build_round`] whenever a change leaves a table to build, at most once per
    /// `min_interval` (changes arriving meanwhile share the next round), until `stop` is set.
    pub fn run_builder(self: &Arc<Self>, min_interval: Duration, stop: Arc<std::sync::atomic::AtomicBool>) {
        let mut last: Option<Instant> = None;
        while !stop.load(Ordering::Acquire) {
            match self.build_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => {}
                Err(crossbeam::channel::RecvTimeoutError::Timeout) => {
                    if !self.lock().control.needs_build() {
                        continue;
                    }
                }
                Err(crossbeam::channel::RecvTimeoutError::Disconnected) => return,
            }
            if let Some(t) = last {
                if let Some(wait) = min_interval.checked_sub(t.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            last = Some(Instant::now());
            self.build_round();
        }
    }

    /// Applies one primitive; the answer comes after every worker forwards with it.
    pub fn primitive(&self, p: &Primitive, received_ns: u64) -> (Result<ResponseBody, ApiError>, Timing) {
        let mut inner = self.lock();
        if let Primitive::List = p {
            let bindings = inner.control.list(|slot| self.sum_binding(slot));
            let t = now_ns();
            return (Ok(ResponseBody::List { bindings }), Timing { received_ns, published_ns: t, acked_ns: t });
        }
        match inner.control.apply(p) {
            Err(e) => {
                let t = now_ns();
                tracing::debug!("{} refused: {e}", p.name());
                (Err(e.into()), Timing { received_ns, published_ns: t, acked_ns: t })
            }
            Ok(Outcome::Unchanged) => {
                let t = now_ns();
                let generation = inner.control.current().number;
                (Ok(ResponseBody::Unchanged { generation }), Timing { received_ns, published_ns: t, acked_ns: t })
            }
            Ok(Outcome::Changed) => match self.publish_and_wait(&mut inner) {
                Ok((generation, published_ns)) => {
                    let acked_ns = now_ns();
                    tracing::debug!(generation, us = (acked_ns - received_ns) / 1000, "{} applied", p.name());
                    (Ok(ResponseBody::Done { generation }), Timing { received_ns, published_ns, acked_ns })
                }
                Err(e) => {
                    let t = now_ns();
                    (Err(e), Timing { received_ns, published_ns: t, acked_ns: t })
                }
            },
        }
    }

    /// Counters of everything.
    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        let mut drops = std::collections::BTreeMap::new();
        for r in DropReason::ALL {
            drops.insert(r.label().to_string(), self.workers.iter().map(|w| w.counters.drops_of(*r)).sum());
        }
        let mut ports = (self.port_stats)();
        for (i, p) in ports.iter_mut().enumerate() {
            p.to_host += self.workers.iter().map(|w| read(&w.counters.ports[i].to_host)).sum::<u64>();
        }
        let services = inner
            .control
            .services()
            .map(|(key, id, drop_fraction, active_bindings)| {
                let sum = |f: fn(&crate::counters::ServiceCounters) -> &std::sync::atomic::AtomicU64| -> u64 {
                    self.workers.iter().map(|w| read(f(&w.counters.services[id as usize]))).sum()
                };
                ServiceStats {
                    key,
                    drop_fraction,
                    active_bindings,
                    packets_in: sum(|s| &s.packets_in),
                    bytes_in: sum(|s| &s.bytes_in),
                    packets_out: sum(|s| &s.packets_out),
                    bytes_out: sum(|s| &s.bytes_out),
                    new_flows: sum(|s| &s.new_flows),
                    active_flows: sum(|s| &s.active_flows),
                    admission_drops: sum(|s| &s.admission_drops),
                    no_backend_drops: sum(|s| &s.no_backend_drops),
                }
            })
            .collect();
        let workers = self
            .workers
            .iter()
            .map(|w| WorkerStats {
                lcore: w.lcore,
                generation: w.counters.generation.load(Ordering::Acquire),
                flows: read(&w.counters.flows),
                flow_capacity: w.flow_capacity,
                packets: read(&w.counters.packets),
                bursts: read(&w.counters.bursts),
                reused_tuples: read(&w.counters.reused_tuples),
                loops: read(&w.counters.loops),
                idle_sleeps: read(&w.counters.idle_sleeps),
                asleep_us: read(&w.counters.asleep_ns) / 1000,
            })
            .collect();
        let mut maglev = inner.maglev.clone();
        maglev.pending = inner.control.needs_build();
        Stats {
            generation: inner.control.current().number,
            uptime_ns: now_ns(),
            ports,
            services,
            drops,
            workers,
            maglev,
        }
    }
}

impl Handler for Switch {
    fn handle(&self, req: Request, received_ns: u64) -> Response {
        let (result, timing) = match &req.body {
            RequestBody::Primitive { primitive } => self.primitive(primitive, received_ns),
            RequestBody::Stats => {
                let s = self.stats();
                let t = now_ns();
                (Ok(ResponseBody::Stats(Box::new(s))), Timing { received_ns, published_ns: t, acked_ns: t })
            }
            RequestBody::Ping => {
                let generation = self.lock().control.current().number;
                let r = self.wait_acks(generation).map(|()| ResponseBody::Pong { generation });
                let t = now_ns();
                (r, Timing { received_ns, published_ns: received_ns, acked_ns: t })
            }
            RequestBody::Sessions { service, limit } => {
                let workers = self.workers.iter().map(|w| (w.lcore, &w.sessions));
                let s = super::sessions::collect(workers, *service, *limit, SESSIONS_TIMEOUT);
                let t = now_ns();
                (Ok(ResponseBody::Sessions(Box::new(s))), Timing { received_ns, published_ns: t, acked_ns: t })
            }
        };
        Response { id: req.id, result, timing }
    }
}

#[cfg(test)]
#[path = "switch_tests.rs"]
mod tests;
