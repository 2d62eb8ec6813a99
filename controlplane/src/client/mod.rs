//! The CM client module: what a service links to manage its own bindings.
//!
//! On start a service registers its bindings ([`CmClient::add`], sent at once); a background
//! thread beacons the whole list every `interval` (default 10 s, as low as 100 ms) to the CM's
//! multicast group (or unicast addresses); [`CmClient::shutdown`] (or drop) sends Remove, so
//! the switch drains the server. The paper's "two-line change" is [`CmClient::listen`]: ask
//! for a server socket for `VIP:vport`, get a listener on an anonymous port of this server that
//! is already registered.
//!
//! ```no_run
//! use controlplane::client::{ClientConfig, CmClient};
//! let cm = CmClient::start(ClientConfig::new(b"lab-secret".to_vec()))?;
//! let listener = cm.listen("10.0.0.100:80".parse()?)?; // was: TcpListener::bind("0.0.0.0:80")
//! for conn in listener.incoming() { /* serve */ let _ = conn; }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Application-assisted failure detection: a service that sees a peer fail (a reset, a
//! wrong answer) calls [`CmClient::report_failed`], and the CM takes the peer out at once.
//! A service that knows it is broken itself calls [`CmClient::set_up`]`(key, false)`.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acm::{BindingKey, BindingParams, RealServer, ServiceKey};

use crate::beacon::wire::{self, Advert, Body, Envelope, Sender, Target, MAX_ENTRIES};
use crate::beacon::{DEFAULT_GROUP, DEFAULT_PORT, DEFAULT_PROFILE};

/// Shortest beacon interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Default beacon interval (the paper's 10 s).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Client module settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Switch profile whose key signs the datagrams.
    pub profile: String,
    /// The profile's key.
    pub key: Vec<u8>,
    /// Where beacons go: the CM multicast group, or CM addresses (unicast).
    pub destinations: Vec<SocketAddrV4>,
    /// Beacon interval (at least [`MIN_INTERVAL`]).
    pub interval: Duration,
    /// This server's address (real-server address of anonymous bindings, source of beacons).
    /// Unspecified: the address the kernel would use towards the first destination.
    pub server_addr: Ipv4Addr,
    /// Multicast TTL.
    pub ttl: u32,
}

impl ClientConfig {
    /// Defaults: profile `default`, group 239.255.77.77:7946, 10 s.
    pub fn new(key: Vec<u8>) -> ClientConfig {
        ClientConfig {
            profile: DEFAULT_PROFILE.into(),
            key,
            destinations: vec![SocketAddrV4::new(DEFAULT_GROUP, DEFAULT_PORT)],
            interval: DEFAULT_INTERVAL,
            server_addr: Ipv4Addr::UNSPECIFIED,
            ttl: 1,
        }
    }
}

/// What went wrong in the client module.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket call failed.
    #[error("{what}: {source}")]
    Io {
        /// Which call.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("bad configuration: {0}")]
    Config(String),
    /// More bindings than one beacon carries.
    #[error("at most {MAX_ENTRIES} bindings per client module")]
    TooManyBindings,
    /// The binding is not registered here.
    #[error("binding {0} is not registered by this module")]
    NotRegistered(BindingKey),
    /// A message could not be encoded.
    #[error(transparent)]
    Encode(#[from] wire::EncodeError),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ClientError {
    move |source| ClientError::Io { what, source }
}

#[derive(Default)]
struct State {
    bindings: BTreeMap<BindingKey, Advert>,
    beacon_now: bool,
    stop: bool,
}

struct Shared {
    cfg: ClientConfig,
    sender: Sender,
    socket: UdpSocket,
    seq: Mutex<u64>,
    state: Mutex<State>,
    wake: Condvar,
}

/// A running client module. Dropping it is a clean shutdown (Remove of every binding).
pub struct CmClient {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A random 64-bit number (std's randomly keyed hasher, over the clock and pid).
pub fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.write_u32(std::process::id());
    h.finish()
}

/// The local address the kernel uses to reach `dest`.
pub fn local_addr_towards(dest: SocketAddrV4) -> Result<Ipv4Addr, ClientError> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(io("bind"))?;
    s.connect(dest).map_err(io("route to the CM"))?;
    match s.local_addr().map_err(io("local address"))? {
        std::net::SocketAddr::V4(a) if !a.ip().is_unspecified() => Ok(*a.ip()),
        other => Err(ClientError::Config(format!("no IPv4 route to {dest} (local address {other})"))),
    }
}

impl CmClient {
    /// Opens the socket and starts beaconing (an empty list until bindings are added).
    pub fn start(mut cfg: ClientConfig) -> Result<CmClient, ClientError> {
        let first = *cfg.destinations.first().ok_or_else(|| ClientError::Config("no destination".into()))?;
        if cfg.profile.len() > wire::MAX_PROFILE_LEN {
            return Err(ClientError::Config("profile name too long".into()));
        }
        cfg.interval = cfg.interval.max(MIN_INTERVAL);
        if cfg.server_addr.is_unspecified() {
            cfg.server_addr = local_addr_towards(first)?;
        }
        let socket = UdpSocket::bind((cfg.server_addr, 0)).map_err(io("bind the beacon socket"))?;
        socket.set_multicast_ttl_v4(cfg.ttl).map_err(io("multicast TTL"))?;
        socket2::SockRef::from(&socket).set_multicast_if_v4(&cfg.server_addr).map_err(io("multicast interface"))?;
        let sender = Sender { addr: cfg.server_addr, instance: random_u64() };
        let shared = Arc::new(Shared {
            cfg,
            sender,
            socket,
            seq: Mutex::new(0),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("acm-beacon".into())
            .spawn(move || beacon_loop(&s))
            .map_err(io("spawn the beacon thread"))?;
        Ok(CmClient { shared, thread: Some(thread) })
    }

    /// This module's sender identity.
    pub fn sender(&self) -> Sender {
        self.shared.sender
    }

    /// This server's address.
    pub fn server_addr(&self) -> Ipv4Addr {
        self.shared.cfg.server_addr
    }

    /// Registers (or updates) a binding; a beacon goes out at once.
    pub fn add(&self, key: BindingKey, params: BindingParams) -> Result<(), ClientError> {
        let up = self.shared.lock().bindings.get(&key).is_none_or(|a| a.up);
        self.add_with_state(key, params, up)
    }

    /// [`CmClient::add`], saying at once whether the binding works (`false`: registered but
    /// down until [`CmClient::set_up`]).
    pub fn add_with_state(&self, key: BindingKey, params: BindingParams, up: bool) -> Result<(), ClientError> {
        let mut st = self.shared.lock();
        if !st.bindings.contains_key(&key) && st.bindings.len() >= MAX_ENTRIES {
            return Err(ClientError::TooManyBindings);
        }
        st.bindings.insert(key, Advert { key, params, up });
        self.shared.beacon_soon(st);
        Ok(())
    }

    /// Unregisters a binding: the CM drains it (Remove).
    pub fn remove(&self, key: BindingKey) -> Result<(), ClientError> {
        let mut st = self.shared.lock();
        if st.bindings.remove(&key).is_none() {
            return Err(ClientError::NotRegistered(key));
        }
        drop(st);
        self.shared.send_twice(Body::Remove { bindings: vec![key] })
    }

    /// Says whether a binding works (a failed local check: `false`). A change is beaconed at once.
    pub fn set_up(&self, key: BindingKey, up: bool) -> Result<(), ClientError> {
        let mut st = self.shared.lock();
        let a = st.bindings.get_mut(&key).ok_or(ClientError::NotRegistered(key))?;
        if a.up != up {
            a.up = up;
            self.shared.beacon_soon(st);
        }
        Ok(())
    }

    /// Application-assisted failure detection: `real` (for `service`, or for every service when
    /// `None`) is failed; the CM takes it out at once.
    pub fn report_failed(&self, real: RealServer, service: Option<ServiceKey>) -> Result<(), ClientError> {
        self.shared.send_twice(Body::Report { targets: vec![Target { real, service }] })
    }

    /// Anonymous port allocation: a TCP listener on an ephemeral port of this server, already
    /// registered as a real server of `service` (weight 1).
    pub fn listen(&self, service: ServiceKey) -> Result<TcpListener, ClientError> {
        self.listen_with(service, BindingParams::default())
    }

    /// [`CmClient::listen`] with binding parameters.
    pub fn listen_with(&self, service: ServiceKey, params: BindingParams) -> Result<TcpListener, ClientError> {
        let l = TcpListener::bind((self.server_addr(), 0)).map_err(io("bind an anonymous port"))?;
        let port = l.local_addr().map_err(io("local address"))?.port();
        self.add(BindingKey { service, real: RealServer { rip: self.server_addr(), rport: port } }, params)?;
        Ok(l)
    }

    /// The bindings registered here.
    pub fn bindings(&self) -> Vec<Advert> {
        self.shared.lock().bindings.values().copied().collect()
    }

    /// Sends a beacon now (besides the periodic ones).
    pub fn beacon_now(&self) {
        let st = self.shared.lock();
        self.shared.beacon_soon(st);
    }

    /// Clean shutdown: Remove of every binding, then the beacon thread stops.
    pub fn shutdown(mut self) -> Result<(), ClientError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ClientError> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        let keys: Vec<BindingKey> = {
            let mut st = self.shared.lock();
            st.stop = true;
            self.shared.wake.notify_all();
            std::mem::take(&mut st.bindings).into_keys().collect()
        };
        let _ = thread.join();
        let mut result = Ok(());
        for chunk in keys.chunks(MAX_ENTRIES) {
            if let Err(e) = self.shared.send_twice(Body::Remove { bindings: chunk.to_vec() }) {
                result = Err(e);
            }
        }
        result
    }
}

impl Drop for CmClient {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("CM client module: clean shutdown failed: {e}");
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn beacon_soon(&self, mut st: MutexGuard<'_, State>) {
        st.beacon_now = true;
        self.wake.notify_all();
    }

    fn send(&self, body: Body) -> Result<(), ClientError> {
        let seq = {
            let mut s = self.seq.lock().unwrap_or_else(|e| e.into_inner());
            *s += 1;
            *s
        };
        let env =
            Envelope { sender: self.sender, seq, timestamp_ms: now_ms(), profile: self.cfg.profile.clone(), body };
        let bytes = wire::encode(&env, &self.cfg.key)?;
        let mut last = Ok(());
        for d in &self.cfg.destinations {
            if let Err(e) = self.socket.send_to(&bytes, d) {
                tracing::debug!("beacon to {d}: {e}");
                last = Err(ClientError::Io { what: "send", source: e });
            }
        }
        last
    }

    /// Remove and Report are one-shot: send twice against a lost datagram (the CM's answer to
    /// the second is a no-op).
    fn send_twice(&self, body: Body) -> Result<(), ClientError> {
        self.send(body.clone())?;
        self.send(body)
    }

    fn beacon(&self, st: &State) {
        let bindings = st.bindings.values().copied().collect();
        let interval_ms = self.cfg.interval.as_millis().min(u32::MAX as u128) as u32;
        if let Err(e) = self.send(Body::Beacon { interval_ms, bindings }) {
            tracing::warn!("beacon not sent: {e}");
        }
    }
}

fn beacon_loop(s: &Shared) {
    let mut next = Instant::now();
    let mut st = s.lock();
    loop {
        if st.stop {
            return;
        }
        let now = Instant::now();
        if st.beacon_now || now >= next {
            st.beacon_now = false;
            s.beacon(&st);
            next = now + s.cfg.interval;
            continue;
        }
        st = s.wake.wait_timeout(st, next - now).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
    }
}

/// Parses a duration: `250ms`, `10s`, `1.5s`, `2m`, or plain seconds (`3`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("{s:?}: not a duration (e.g. 250ms, 10s, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("{s:?}: unit must be ms, s or m")),
    };
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beacon::wire::decode;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    /// Add, listen (anonymous port), report, shutdown: what reaches a unicast CM socket.
    #[test]
    fn module_beacons_registers_anonymous_ports_and_removes_on_shutdown() {
        let cm = UdpSocket::bind("127.0.0.1:0").unwrap();
        cm.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let std::net::SocketAddr::V4(dest) = cm.local_addr().unwrap() else { unreachable!() };
        let mut cfg = ClientConfig::new(b"k".to_vec());
        cfg.destinations = vec![dest];
        cfg.interval = Duration::from_millis(100);
        let client = CmClient::start(cfg).unwrap();
        assert_eq!(client.server_addr(), Ipv4Addr::LOCALHOST);
        let keys = |p: &str| (p == DEFAULT_PROFILE).then_some(&b"k"[..]);
        let mut buf = [0u8; 2048];
        let mut recv = || {
            let (n, _) = cm.recv_from(&mut buf).unwrap();
            decode(&buf[..n], keys).unwrap()
        };
        let first = recv();
        assert!(matches!(first.body, Body::Beacon { interval_ms: 100, ref bindings } if bindings.is_empty()));
        let listener = client.listen("10.0.0.100:80".parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        let key = BindingKey {
            service: "10.0.0.100:80".parse().unwrap(),
            real: RealServer { rip: Ipv4Addr::LOCALHOST, rport: port },
        };
        let mut seq = first.seq;
        let env = loop {
            let e = recv();
            assert!(e.seq > seq, "sequence numbers grow");
            seq = e.seq;
            if matches!(&e.body, Body::Beacon { bindings, .. } if !bindings.is_empty()) {
                break e;
            }
        };
        assert_eq!(
            env.body,
            Body::Beacon {
                interval_ms: 100,
                bindings: vec![Advert { key, params: BindingParams::default(), up: true }]
            }
        );
        assert_eq!(env.sender, client.sender());
        // The listener is real.
        let _c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        client.report_failed("10.0.1.12:80".parse().unwrap(), None).unwrap();
        let report = std::iter::repeat_with(&mut recv).find(|e| matches!(e.body, Body::Report { .. })).unwrap();
        assert_eq!(
            report.body,
            Body::Report { targets: vec![Target { real: "10.0.1.12:80".parse().unwrap(), service: None }] }
        );
        client.shutdown().unwrap();
        let bye = std::iter::repeat_with(&mut recv).find(|e| matches!(e.body, Body::Remove { .. })).unwrap();
        assert_eq!(bye.body, Body::Remove { bindings: vec![key] });
    }
}
