//! The CM side of beacons at run time: one UDP socket (joined to the beacon group on the
//! configured interfaces) for client-module beacons and CM heartbeats, the replay guard, the
//! beacon-loss tracker and the election, all driven from one task; the CM primitives they
//! decide run in order on a second task.
//!
//! Garbage, wrong keys, replays and stale datagrams are counted ([`BeaconStats`]), logged with
//! the peer (at most once a second per kind) and ignored: never a crash, never a lost binding.
//!
//! `[beacon]` and `[election]` of `appliance.toml` (typed in the `appliance-config` crate, built
//! into [`BeaconConfig`] and [`ElectionSettings`] when the file is loaded; every key optional):
//!
//! ```toml
//! [beacon]
//! port = 8790
//! groups = ["239.255.77.77"]          # empty: unicast only
//! interfaces = ["10.0.1.1"]           # where to join the groups (default: the kernel's choice); or one
//!                                     # interface by name, e.g. ["acmt1"]: the socket is bound to it
//! keys = { local = "lab-secret" }     # switch profile -> key (or key_files = { local = "/etc/acm/local.key" })
//! misses = 3                          # silent intervals before a server is removed
//! replay_window_ms = 30000            # timestamps further off are stale
//! peers = ["10.0.9.2:8790"]           # other CMs by unicast (heartbeats), besides the groups
//!
//! [election]
//! id = 1                              # unique; lowest wins. Absent table: no election, always active
//! interval_ms = 3000
//! misses = 3
//! profile = "local"                   # whose key signs heartbeats (default: the first key)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use appliance_config::{BeaconSection, ElectionSection, Invalid};
use tokio::task::JoinHandle;

use crate::beacon::replay::{ReplayError, ReplayGuard};
use crate::beacon::tracker::TrackerConfig;
use crate::beacon::wire::{self, Body, DecodeError, Envelope, Role, Sender};
use crate::beacon::{DEFAULT_GROUP, DEFAULT_PORT};
use crate::cm::Cm;
use crate::election::ElectionConfig;
use crate::services::health::{self as health, HealthConfig, HealthHandle};

/// Beacon receiver settings.
#[derive(Debug, Clone)]
pub struct BeaconConfig {
    /// UDP port.
    pub port: u16,
    /// Multicast groups to join.
    pub groups: Vec<Ipv4Addr>,
    /// Interfaces to join them on, by address or name (empty: the kernel's choice).
    pub interfaces: Vec<Interface>,
    /// Profile → key.
    pub keys: BTreeMap<String, Vec<u8>>,
    /// Beacon-loss detection.
    pub tracker: TrackerConfig,
    /// Timestamps further than this from the local clock are stale.
    pub replay_window: Duration,
    /// Other CMs' addresses, for heartbeats by unicast (besides the groups).
    pub peers: Vec<SocketAddrV4>,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        BeaconConfig {
            port: DEFAULT_PORT,
            groups: vec![DEFAULT_GROUP],
            interfaces: Vec::new(),
            keys: BTreeMap::new(),
            tracker: TrackerConfig::default(),
            replay_window: Duration::from_secs(30),
            peers: Vec::new(),
        }
    }
}

/// Election settings as configured: the state machine's, plus the signing profile.
#[derive(Debug, Clone)]
pub struct ElectionSettings {
    /// The state machine's settings.
    pub config: ElectionConfig,
    /// Whose key signs heartbeats.
    pub profile: String,
}

impl BeaconConfig {
    /// From `[beacon]` (absent: defaults); key files are read here.
    pub fn from_section(b: Option<&BeaconSection>) -> Result<BeaconConfig, Invalid> {
        let d = BeaconConfig::default();
        let Some(b) = b else { return Ok(d) };
        let mut keys: BTreeMap<String, Vec<u8>> =
            b.keys.iter().map(|(p, k)| (p.clone(), k.clone().into_bytes())).collect();
        for (p, f) in &b.key_files {
            let k = std::fs::read(f)
                .map_err(|e| Invalid::new(format!("beacon.key_files.{p}"), format!("{}: {e}", f.display())))?;
            keys.insert(p.clone(), k.trim_ascii().to_vec());
        }
        if let Some((p, _)) = keys.iter().find(|(_, k)| k.is_empty()) {
            return Err(Invalid::new(format!("beacon.keys.{p}"), "empty key"));
        }
        if b.interfaces.len() > 1 && b.interfaces.iter().any(|i| i.parse::<Ipv4Addr>().is_err()) {
            return Err(Invalid::new("beacon.interfaces", "an interface given by name must be the only one"));
        }
        let tracker = TrackerConfig {
            misses: b.misses.unwrap_or(d.tracker.misses).max(1),
            min_interval: b.min_interval_ms.map(Duration::from_millis).unwrap_or(d.tracker.min_interval),
            ..d.tracker
        };
        Ok(BeaconConfig {
            port: b.port.unwrap_or(d.port),
            groups: b.groups.clone().unwrap_or(d.groups),
            interfaces: b
                .interfaces
                .iter()
                .map(|i| i.parse().map_or_else(|_| Interface::Name(i.clone()), Interface::Addr))
                .collect(),
            keys,
            tracker,
            replay_window: b.replay_window_ms.map(Duration::from_millis).unwrap_or(d.replay_window),
            peers: b.peers.clone(),
        })
    }
}

impl ElectionSettings {
    /// From `[election]`; `None` when absent (no election: always active).
    pub fn from_section(
        e: Option<&ElectionSection>,
        beacon: &BeaconConfig,
    ) -> Result<Option<ElectionSettings>, Invalid> {
        let Some(e) = e else { return Ok(None) };
        let mut config =
            ElectionConfig::with_interval(e.id, Duration::from_millis(e.interval_ms.unwrap_or(3000).max(10)));
        config.misses = e.misses.unwrap_or(3).max(1);
        let profile =
            match &e.profile {
                Some(p) => p.clone(),
                None => beacon.keys.keys().next().cloned().ok_or_else(|| {
                    Invalid::new("election.profile", "no key in [beacon] keys to sign heartbeats with")
                })?,
            };
        if !beacon.keys.contains_key(&profile) {
            return Err(Invalid::new("election.profile", format!("{profile:?} has no key in [beacon] keys")));
        }
        Ok(Some(ElectionSettings { config, profile }))
    }
}

/// An interface to join the beacon groups on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interface {
    /// By address (`0.0.0.0`: the kernel's choice).
    Addr(Ipv4Addr),
    /// By name (for a tap that shares its address with others).
    Name(String),
}

impl std::fmt::Display for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Interface::Addr(a) => write!(f, "{a}"),
            Interface::Name(n) => f.write_str(n),
        }
    }
}

fn join(sock: &tokio::net::UdpSocket, group: Ipv4Addr, i: &Interface) -> std::io::Result<()> {
    use socket2::InterfaceIndexOrAddress as I;
    let iface = match i {
        Interface::Addr(a) => I::Address(*a),
        Interface::Name(n) => {
            let path = format!("/sys/class/net/{n}/ifindex");
            let idx = std::fs::read_to_string(&path)?
                .trim()
                .parse()
                .map_err(|_| std::io::Error::other(format!("{path}: not a number")))?;
            I::Index(idx)
        }
    };
    let s = socket2::SockRef::from(sock);
    s.join_multicast_v4_n(&group, &iface)?;
    if let Interface::Name(n) = i {
        // The socket is bound to the named interface, so heartbeats leave through it (by
        // address, a tap may share its address with other taps).
        s.bind_device(Some(n.as_bytes()))?;
    }
    Ok(())
}

/// Counters of the beacon socket.
#[derive(Debug, Default)]
pub struct BeaconStats {
    /// Datagrams received.
    pub received: AtomicU64,
    /// Accepted (authenticated, fresh, well-formed).
    pub accepted: AtomicU64,
    /// Malformed (bad magic, version, length, body).
    pub malformed: AtomicU64,
    /// Wrong key or unknown profile.
    pub unauthenticated: AtomicU64,
    /// Replayed (sequence number seen).
    pub replayed: AtomicU64,
    /// Stale or future timestamps.
    pub stale: AtomicU64,
    /// Beacons refused because the sender table is full.
    pub overflow: AtomicU64,
    /// Failure reports taken.
    pub reports: AtomicU64,
    /// Heartbeats of other CMs taken.
    pub heartbeats: AtomicU64,
}

impl BeaconStats {
    /// The counters as (name, value) pairs.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("received", l(&self.received)),
            ("accepted", l(&self.accepted)),
            ("malformed", l(&self.malformed)),
            ("unauthenticated", l(&self.unauthenticated)),
            ("replayed", l(&self.replayed)),
            ("stale", l(&self.stale)),
            ("overflow", l(&self.overflow)),
            ("reports", l(&self.reports)),
            ("heartbeats", l(&self.heartbeats)),
        ]
    }
}

/// The running beacon, health and election tasks; dropping it stops them, and the CM leaves
/// the election (it stays in the role it had).
pub struct Services {
    /// Beacon counters.
    pub stats: Arc<BeaconStats>,
    /// The socket's local address.
    pub local_addr: SocketAddr,
    /// Failure reports into the health checker.
    pub health: Option<HealthHandle>,
    cm: Cm,
    tasks: Vec<JoinHandle<()>>,
}

impl Services {
    /// The counters as (name, value) pairs: the socket's, and `lost` (bindings removed because
    /// their server fell silent).
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut v = self.stats.snapshot();
        v.push(("lost", self.cm.drive(|c, _| c.beacons_lost())));
        v
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.cm.drive(|c, _| c.disable_election());
    }
}

/// Why the services did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The socket could not be set up.
    #[error("beacon socket on port {port}: {source}")]
    Socket {
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
}

fn socket(cfg: &BeaconConfig) -> std::io::Result<(tokio::net::UdpSocket, Vec<(Ipv4Addr, Interface)>)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let ifaces =
        if cfg.interfaces.is_empty() { vec![Interface::Addr(Ipv4Addr::UNSPECIFIED)] } else { cfg.interfaces.clone() };
    let joins: Vec<_> = cfg.groups.iter().flat_map(|g| ifaces.iter().map(move |i| (*g, i.clone()))).collect();
    // Under restartd: the previous generation's socket, with the datagrams that arrived while
    // no generation ran still queued (group memberships stay; re-joining is EADDRINUSE).
    if let Some(fd) = crate::zlr::get().and_then(|z| z.adopt("beacon")) {
        let std = std::net::UdpSocket::from(fd);
        std.set_nonblocking(true)?;
        tracing::info!("beacon socket taken over from the previous generation");
        return Ok((tokio::net::UdpSocket::from_std(std)?, joins));
    }
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.port).into())?;
    s.set_multicast_loop_v4(true)?;
    s.set_multicast_ttl_v4(1)?;
    if let Some(Interface::Addr(ifa)) = cfg.interfaces.first() {
        // Heartbeats leave through the first interface (where the servers and other CMs are).
        let _ = s.set_multicast_if_v4(ifa);
    }
    s.set_nonblocking(true)?;
    if let Some(z) = crate::zlr::get() {
        z.keep("beacon", std::os::fd::AsFd::as_fd(&s));
    }
    let std: std::net::UdpSocket = s.into();
    Ok((tokio::net::UdpSocket::from_std(std)?, joins))
}

/// Starts the services with typed settings; call on a tokio runtime. With an election the CM
/// is put in standby at once and becomes active only when it wins.
pub fn spawn(
    cm: &Cm,
    cfg: BeaconConfig,
    health_cfg: Option<HealthConfig>,
    election: Option<ElectionSettings>,
) -> Result<Services, ServiceError> {
    let port = cfg.port;
    let (sock, joins) = socket(&cfg).map_err(|source| ServiceError::Socket { port, source })?;
    let local_addr = sock.local_addr().map_err(|source| ServiceError::Socket { port, source })?;
    let stats = Arc::new(BeaconStats::default());
    let mut tasks = Vec::new();
    let health = health_cfg.map(|h| {
        let (handle, task) = health::spawn(cm.clone(), h);
        tasks.push(task);
        handle
    });
    let profile = election.as_ref().map(|e| e.profile.clone());
    cm.drive(|c, now| {
        c.set_tracker_config(cfg.tracker);
        if let Some(e) = &election {
            c.enable_election(e.config, now);
        }
    });
    cm.spawn_timer();
    let mut heartbeat_to: Vec<SocketAddrV4> = cfg.groups.iter().map(|g| SocketAddrV4::new(*g, port)).collect();
    heartbeat_to.extend(&cfg.peers);
    let rx_loop = Receiver {
        cm: cm.clone(),
        replay: ReplayGuard::new(cfg.replay_window.as_millis() as u64, 65_536),
        profile,
        me: Sender { addr: Ipv4Addr::UNSPECIFIED, instance: crate::client::random_u64() },
        seq: 0,
        heartbeat_to,
        keys: cfg.keys,
        stats: stats.clone(),
        health: health.clone(),
        warned: HashMap::new(),
        pending_joins: joins,
    };
    tasks.push(tokio::spawn(rx_loop.run(sock)));
    Ok(Services { stats, local_addr, health, cm: cm.clone(), tasks })
}

/// The socket's side: datagrams in (authenticated, de-duplicated, then handed to the CM's
/// core), heartbeats out. Timers (beacon loss, election) run in the CM's timer task.
struct Receiver {
    cm: Cm,
    replay: ReplayGuard,
    /// With an election: whose key signs heartbeats.
    profile: Option<String>,
    me: Sender,
    seq: u64,
    heartbeat_to: Vec<SocketAddrV4>,
    keys: BTreeMap<String, Vec<u8>>,
    stats: Arc<BeaconStats>,
    health: Option<HealthHandle>,
    warned: HashMap<&'static str, Instant>,
    pending_joins: Vec<(Ipv4Addr, Interface)>,
}

impl Receiver {
    async fn run(mut self, sock: tokio::net::UdpSocket) {
        let mut buf = vec![0u8; 65_536];
        let mut next_join = Instant::now();
        let mut next_expire = Instant::now() + Duration::from_secs(10);
        loop {
            let now = Instant::now();
            if now >= next_join && !self.pending_joins.is_empty() {
                self.join(&sock);
                next_join = now + Duration::from_secs(1);
            }
            if now >= next_expire {
                self.replay.expire(crate::client::now_ms());
                next_expire = now + Duration::from_secs(10);
            }
            let mut wake = next_expire;
            if !self.pending_joins.is_empty() {
                wake = wake.min(next_join);
            }
            tokio::select! {
                r = sock.recv_from(&mut buf) => match r {
                    Ok((n, peer)) => self.datagram(&buf[..n], peer),
                    Err(e) => {
                        self.warn("socket", format!("beacon socket: {e}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = self.cm.heartbeats_ready() => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            self.send_heartbeats(&sock).await;
        }
    }

    fn join(&mut self, sock: &tokio::net::UdpSocket) {
        self.pending_joins.retain(|(g, i)| match join(sock, *g, i) {
            Ok(()) => {
                tracing::info!(group = %g, interface = %i, "beacon group joined");
                false
            }
            Err(e) if e.raw_os_error() == Some(98) => false, // EADDRINUSE: joined already
            Err(e) => {
                tracing::debug!(group = %g, interface = %i, "cannot join the beacon group yet: {e}");
                true
            }
        });
    }

    /// Logs a refused datagram, at most once a second per kind.
    fn warn(&mut self, kind: &'static str, msg: String) {
        let now = Instant::now();
        let last = self.warned.get(kind).copied();
        if last.is_none_or(|l| now.duration_since(l) >= Duration::from_secs(1)) {
            self.warned.insert(kind, now);
            tracing::warn!("{msg}");
        } else {
            tracing::debug!("{msg}");
        }
    }

    fn datagram(&mut self, bytes: &[u8], peer: SocketAddr) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let keys = &self.keys;
        let env = match wire::decode(bytes, |p| keys.get(p).map(Vec::as_slice)) {
            Ok(env) => env,
            Err(e) => {
                let (counter, kind) = match e {
                    DecodeError::UnknownProfile(_) | DecodeError::BadTag(_) => {
                        (&self.stats.unauthenticated, "unauthenticated")
                    }
                    _ => (&self.stats.malformed, "malformed"),
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.warn(kind, format!("beacon from {peer} refused ({kind}): {e}"));
                return;
            }
        };
        if env.sender == self.me {
            return; // our own heartbeat, looped back
        }
        if let Err(e) = self.replay.check(crate::client::now_ms(), env.sender, env.seq, env.timestamp_ms) {
            let (counter, kind) = match e {
                ReplayError::Replayed { .. } => (&self.stats.replayed, "replayed"),
                _ => (&self.stats.stale, "stale"),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.warn(kind, format!("beacon from {peer} (sender {}) refused: {e}", env.sender.addr));
            return;
        }
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.message(env, peer);
    }

    fn message(&mut self, env: Envelope, peer: SocketAddr) {
        match env.body {
            Body::Beacon { interval_ms, bindings } => {
                let interval = Duration::from_millis(u64::from(interval_ms));
                let r = self.cm.drive(|c, now| c.handle_beacon(env.sender, interval, &bindings, now));
                if let Err(e) = r {
                    self.stats.overflow.fetch_add(1, Ordering::Relaxed);
                    self.warn("overflow", format!("beacon from {peer} refused: {e}"));
                }
            }
            Body::Remove { bindings } => self.cm.drive(|c, now| c.handle_beacon_remove(env.sender, &bindings, now)),
            Body::Report { targets } => {
                self.stats.reports.fetch_add(1, Ordering::Relaxed);
                for t in targets {
                    match &self.health {
                        Some(h) => h.report(t, env.sender.addr),
                        None => self.cm.drive(|c, now| c.handle_report(&t, env.sender.addr, now)),
                    }
                }
            }
            Body::Heartbeat(hb) => {
                self.stats.heartbeats.fetch_add(1, Ordering::Relaxed);
                if self.profile.is_none() && hb.role == Role::Active {
                    self.warn(
                        "heartbeat",
                        format!("heartbeat of active CM {} from {peer}, but no [election] here", hb.cm_id),
                    );
                }
                self.cm.drive(|c, now| c.handle_heartbeat(&hb, now));
            }
        }
    }

    async fn send_heartbeats(&mut self, sock: &tokio::net::UdpSocket) {
        for hb in self.cm.take_heartbeats() {
            let Some(profile) = &self.profile else { continue };
            self.seq += 1;
            let env = Envelope {
                sender: self.me,
                seq: self.seq,
                timestamp_ms: crate::client::now_ms(),
                profile: profile.clone(),
                body: Body::Heartbeat(hb),
            };
            let Some(key) = self.keys.get(profile) else { continue };
            let Ok(bytes) = wire::encode(&env, key) else { continue };
            for d in &self.heartbeat_to {
                if let Err(e) = sock.send_to(&bytes, d).await {
                    tracing::debug!("heartbeat to {d}: {e}");
                }
            }
        }
    }
}
