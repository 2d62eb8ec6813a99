//! Listing the live flows (the switch API's Sessions request) without stopping a worker.
//!
//! The flow tables belong to the workers, so the control side asks each worker for its flows
//! through a pair of small channels per worker ([`sessions_link`]) and merges the answers:
//!
//! 1. The control side sends each worker a [`DumpJob`] whose row buffer it has already
//!    allocated (`limit` rows), so the worker never allocates.
//! 2. The worker picks the job up between bursts (one `try_recv` every few loops), and walks
//!    its table in slices of a bounded number of records per loop
//!    ([`crate::pipeline::Worker::dump_flows`]), so forwarding is never held up for long.
//! 3. When the walk is done it sends the job back, rows filled, and the control side merges,
//!    sorts and truncates ([`collect`]).
//!
//! No locks on the worker side; a worker that does not answer in time is left out and
//! counted (`answered < workers`). Jobs carry an id, so a late answer to an abandoned request
//! is recognised and dropped by the control side.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use acm::ServiceKey;
use crossbeam::channel::{Receiver, Sender, TrySendError};

use crate::api::{SessionInfo, Sessions, MAX_SESSIONS_LIMIT};

/// How long [`collect`] waits for the workers.
pub const SESSIONS_TIMEOUT: Duration = Duration::from_secs(2);

/// One worker's part of a Sessions request.
#[derive(Debug)]
pub struct DumpJob {
    /// Request id (to recognise late answers).
    pub id: u64,
    /// Only this service's flows, or all.
    pub service: Option<ServiceKey>,
    /// The most rows to fill.
    pub limit: usize,
    /// The rows; allocated with room for `limit` by the control side.
    pub rows: Vec<SessionInfo>,
    /// Live flows that matched (also those past `limit`).
    pub total: u64,
    /// Where the walk goes on (a record index of the worker's table).
    pub cursor: usize,
}

impl DumpJob {
    /// A job for up to `limit` rows, buffer allocated.
    pub fn new(id: u64, service: Option<ServiceKey>, limit: usize) -> DumpJob {
        DumpJob { id, service, limit, rows: Vec::with_capacity(limit), total: 0, cursor: 0 }
    }

    /// Whether a flow with this forward key (client → VIP:vport) belongs to the job's service.
    pub fn wants(&self, vip: SocketAddrV4, proto: acm::Proto) -> bool {
        self.service.is_none_or(|s| s.vip == *vip.ip() && s.vport == vip.port() && s.proto == proto)
    }

    /// Counts a matching flow and keeps its row if there is room (never reallocates).
    pub fn offer(&mut self, row: impl FnOnce() -> SessionInfo) {
        self.total += 1;
        if self.rows.len() < self.limit {
            self.rows.push(row());
        }
    }
}

/// The control side's end of one worker's Sessions channels.
#[derive(Debug)]
pub struct SessionsLink {
    requests: Sender<DumpJob>,
    replies: Receiver<DumpJob>,
}

/// The worker's end.
#[derive(Debug)]
pub struct SessionsEnd {
    /// Jobs to do (checked between bursts).
    pub requests: Receiver<DumpJob>,
    /// Finished jobs go back here.
    pub replies: Sender<DumpJob>,
}

/// A linked pair for one worker.
pub fn sessions_link() -> (SessionsLink, SessionsEnd) {
    let (req_tx, req_rx) = crossbeam::channel::bounded(1);
    // Room for one stale answer beside the current one.
    let (rep_tx, rep_rx) = crossbeam::channel::bounded(2);
    (SessionsLink { requests: req_tx, replies: rep_rx }, SessionsEnd { requests: req_rx, replies: rep_tx })
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// One listing at a time: the channels hold one job per worker.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Asks every worker (`(lcore, link)`) for its flows, waits up to `timeout` for the answers
/// and merges them: sorted by service, then client, at most `limit` rows (clamped to
/// 1..=[`MAX_SESSIONS_LIMIT`]).
pub fn collect<'a>(
    workers: impl IntoIterator<Item = (u32, &'a SessionsLink)>,
    service: Option<ServiceKey>,
    limit: u32,
    timeout: Duration,
) -> Sessions {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let limit = limit.clamp(1, MAX_SESSIONS_LIMIT) as usize;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let workers: Vec<(u32, &SessionsLink)> = workers.into_iter().collect();
    let mut asked = Vec::new();
    for &(lcore, link) in &workers {
        // Late answers to an abandoned request.
        while link.replies.try_recv().is_ok() {}
        match link.requests.try_send(DumpJob::new(id, service, limit)) {
            Ok(()) => asked.push((lcore, link)),
            Err(TrySendError::Full(_)) => tracing::warn!(lcore, "sessions: worker has not taken the last request"),
            Err(TrySendError::Disconnected(_)) => tracing::warn!(lcore, "sessions: worker gone"),
        }
    }
    let deadline = Instant::now() + timeout;
    let mut out = Sessions { workers: workers.len() as u32, ..Sessions::default() };
    for (lcore, link) in asked {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match link.replies.recv_timeout(left) {
                Ok(job) if job.id == id => {
                    out.answered += 1;
                    out.total += job.total;
                    out.sessions.extend(job.rows.into_iter().map(|mut r| {
                        r.lcore = lcore;
                        r
                    }));
                    break;
                }
                Ok(_) => continue, // an older request's answer
                Err(_) => {
                    tracing::warn!(lcore, "sessions: worker did not answer in {timeout:?}");
                    break;
                }
            }
        }
    }
    out.sessions.sort_by_key(|s| (*s.vip.ip(), s.vip.port(), s.proto, *s.client.ip(), s.client.port()));
    out.sessions.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SessionState;

    fn row(client_port: u16) -> SessionInfo {
        SessionInfo {
            lcore: 0,
            proto: acm::Proto::Tcp,
            client: SocketAddrV4::new([10, 0, 0, 2].into(), client_port),
            vip: SocketAddrV4::new([10, 0, 0, 100].into(), 80),
            real: SocketAddrV4::new([10, 0, 1, 11].into(), 80),
            snat: None,
            state: SessionState::Established,
            idle_ms: 0,
            expires_ms: 1000,
        }
    }

    /// A stand-in worker: answers every job with `n` flows (client ports base..base+n).
    fn fake_worker(end: SessionsEnd, base: u16, n: u16) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            while let Ok(mut job) = end.requests.recv() {
                let cap = job.rows.capacity();
                for p in base..base + n {
                    job.offer(|| row(p));
                }
                assert_eq!(job.rows.capacity(), cap, "offer never reallocates");
                if end.replies.send(job).is_err() {
                    return;
                }
            }
        })
    }

    #[test]
    fn merges_sorts_and_limits_with_totals() {
        let (l1, e1) = sessions_link();
        let (l2, e2) = sessions_link();
        let t1 = fake_worker(e1, 5000, 3);
        let t2 = fake_worker(e2, 4000, 2);
        let s = collect([(1, &l1), (2, &l2)], None, 4, Duration::from_secs(5));
        assert_eq!((s.workers, s.answered, s.total), (2, 2, 5));
        let ports: Vec<u16> = s.sessions.iter().map(|r| r.client.port()).collect();
        assert_eq!(ports, [4000, 4001, 5000, 5001]);
        assert_eq!(s.sessions[0].lcore, 2);
        assert_eq!(s.sessions[2].lcore, 1);
        drop((l1, l2));
        t1.join().unwrap();
        t2.join().unwrap();
    }

    #[test]
    fn a_silent_worker_is_left_out_and_its_late_answer_ignored() {
        let (l1, e1) = sessions_link();
        let (l2, e2) = sessions_link();
        let t1 = fake_worker(e1, 5000, 1);
        // Worker 2 takes the job but answers only after the timeout.
        let s = collect([(1, &l1), (2, &l2)], None, 10, Duration::from_millis(50));
        assert_eq!((s.workers, s.answered, s.total), (2, 1, 1));
        let late = e2.requests.try_recv().expect("job was sent");
        e2.replies.send(late).unwrap();
        // The next request skips the stale answer and is answered properly.
        let t2 = fake_worker(e2, 4000, 2);
        let s = collect([(1, &l1), (2, &l2)], None, 10, Duration::from_secs(5));
        assert_eq!((s.answered, s.total), (2, 3));
        drop((l1, l2));
        t1.join().unwrap();
        t2.join().unwrap();
    }

    #[test]
    fn service_filter_and_limit_clamp() {
        let job = DumpJob::new(1, Some("10.0.0.100:80".parse().unwrap()), 0);
        assert!(job.wants(SocketAddrV4::new([10, 0, 0, 100].into(), 80), acm::Proto::Tcp));
        assert!(!job.wants(SocketAddrV4::new([10, 0, 0, 100].into(), 81), acm::Proto::Tcp));
        assert!(!job.wants(SocketAddrV4::new([10, 0, 0, 100].into(), 80), acm::Proto::Udp));
        let (l, e) = sessions_link();
        let t = fake_worker(e, 1, 3);
        // limit 0 is clamped to 1 row; the total still counts every flow.
        let s = collect([(0, &l)], None, 0, Duration::from_secs(5));
        assert_eq!((s.sessions.len(), s.total), (1, 3));
        drop(l);
        t.join().unwrap();
    }
}
