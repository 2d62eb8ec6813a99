//! The switch API: how the control plane (and tests, `dpctl`, `pktgen`) drive the dataplane.
//!
//! Typed, versioned requests over the dataplane's Unix stream socket, one frame each way per
//! request (the `rpc` crate's transport). Every primitive is acknowledged only after every
//! worker forwards with the new state; the acknowledgement carries timestamps ([`Timing`]) so
//! config latency is measured, not guessed.
//!
//! The messages live in their own crate, not in the dataplane, so that the control plane links
//! the API without linking the fast path: the dataplane serves [`SwitchApi`], the control plane
//! is a [`client::Client`].

pub mod client;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use acm::{AcmError, BindingInfo, DropFraction, Primitive, ServiceKey};
use rpc::Reject;
use serde::{Deserialize, Serialize};

/// The switch API as an [`rpc::Protocol`].
pub struct SwitchApi;

impl rpc::Protocol for SwitchApi {
    type Body = RequestBody;
    type Response = Response;
    type Error = ApiError;
    const PEER: &'static str = "dataplane";
    const VERSION: u16 = API_VERSION;
    const MIN_VERSION: u16 = MIN_API_VERSION;
    const MAX_FRAME: usize = MAX_FRAME;
    const CALL_TIMEOUT: Duration = Duration::from_secs(10);

    fn body_version(body: &RequestBody) -> u16 {
        body.min_version()
    }

    fn response_id(response: &Response) -> u64 {
        response.id
    }

    /// A rejected request has no timing: the dataplane did not act on it.
    fn reject(id: u64, why: Reject) -> Response {
        let error = match why {
            Reject::Malformed(m) => ApiError::Malformed(m),
            Reject::Version { got } => ApiError::Version { got },
        };
        Response { id, result: Err(error), timing: Timing::default() }
    }
}

/// Largest frame (a List of a million bindings fits; garbage lengths do not).
pub const MAX_FRAME: usize = 64 << 20;

/// The newest protocol version spoken by this build.
///
/// A request carries the lowest version that defines its body ([`RequestBody::min_version`]):
/// version 1 has Primitive, Stats and Ping; version 2 adds Sessions. So an older dataplane
/// keeps answering a newer client's version-1 requests and refuses only what it cannot know,
/// and this dataplane answers every version from [`MIN_API_VERSION`] up.
pub const API_VERSION: u16 = 2;

/// The oldest protocol version this build still answers.
pub const MIN_API_VERSION: u16 = 1;

/// The most rows one Sessions request returns.
pub const MAX_SESSIONS_LIMIT: u32 = 100_000;

/// One request: its version is at least [`RequestBody::min_version`] of the body, at most
/// [`API_VERSION`].
pub type Request = rpc::Request<RequestBody>;

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RequestBody {
    /// An ACM primitive.
    Primitive {
        /// The primitive.
        primitive: Primitive,
    },
    /// Counters of ports, services, drops and workers.
    Stats,
    /// Liveness; answered after the workers have acknowledged the current generation.
    Ping,
    /// The live flows (version 2): each worker lists its own flow table between bursts.
    Sessions {
        /// Only the flows of this virtual service (`None`: every flow).
        service: Option<ServiceKey>,
        /// The most rows to return (clamped to 1..=[`MAX_SESSIONS_LIMIT`]); the answer says
        /// how many flows matched in all.
        limit: u32,
    },
}

impl RequestBody {
    /// The protocol version that introduced this request.
    pub fn min_version(&self) -> u16 {
        match self {
            RequestBody::Primitive { .. } | RequestBody::Stats | RequestBody::Ping => 1,
            RequestBody::Sessions { .. } => 2,
        }
    }
}

/// One response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id (0 when the request could not be decoded).
    pub id: u64,
    /// The outcome.
    pub result: Result<ResponseBody, ApiError>,
    /// When the dataplane received, published and saw the change taken up.
    pub timing: Timing,
}

/// A successful outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResponseBody {
    /// The change is in force in every worker.
    Done {
        /// The forwarding generation now in force.
        generation: u64,
    },
    /// Nothing had to change (the request restated the current state).
    Unchanged {
        /// The generation in force.
        generation: u64,
    },
    /// The answer to List.
    List {
        /// Every binding.
        bindings: Vec<BindingInfo>,
    },
    /// The answer to Stats.
    Stats(Box<Stats>),
    /// The answer to Ping.
    Pong {
        /// The generation in force.
        generation: u64,
    },
    /// The answer to Sessions.
    Sessions(Box<Sessions>),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ApiError {
    /// The ACM request was invalid; nothing changed.
    #[error(transparent)]
    Acm(#[from] AcmError),
    /// The request was not a valid frame or document.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The request's protocol version is not this dataplane's.
    #[error(
        "protocol version {got} does not have this request (this dataplane speaks {MIN_API_VERSION} to {API_VERSION})"
    )]
    Version {
        /// The version the client sent.
        got: u16,
    },
    /// The workers did not take up the change in time (they may be stuck).
    #[error("workers did not acknowledge generation {generation} within {waited_ms} ms")]
    AckTimeout {
        /// The generation published.
        generation: u64,
        /// How long the dataplane waited.
        waited_ms: u64,
    },
    /// The dataplane is shutting down.
    #[error("dataplane is shutting down")]
    ShuttingDown,
}

/// Timestamps of one request on the dataplane's monotonic clock (ns since it started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// The request was decoded.
    pub received_ns: u64,
    /// The new generation was handed to the workers (= received for reads).
    pub published_ns: u64,
    /// Every worker forwards with it.
    pub acked_ns: u64,
}

impl Timing {
    /// Receipt to acknowledgement, in microseconds.
    pub fn latency_us(&self) -> f64 {
        self.acked_ns.saturating_sub(self.received_ns) as f64 / 1e3
    }
}

/// Counters of the whole dataplane, read without stopping workers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The generation in force.
    pub generation: u64,
    /// Nanoseconds since start.
    pub uptime_ns: u64,
    /// Per port.
    pub ports: Vec<PortStats>,
    /// Per virtual service.
    pub services: Vec<ServiceStats>,
    /// Dropped packets by reason (every reason listed, zeros included).
    pub drops: BTreeMap<String, u64>,
    /// Per worker.
    pub workers: Vec<WorkerStats>,
    /// Maglev table builds (off the path of changes).
    #[serde(default)]
    pub maglev: MaglevStats,
}

/// How the exact Maglev tables follow changes. A change takes effect when it is acknowledged
/// (through an interim correction); its service's exact table is built after.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaglevStats {
    /// Build rounds (each builds every table due, and publishes once).
    pub rounds: u64,
    /// Tables built.
    pub tables_built: u64,
    /// Time the last round spent building, µs.
    pub build_us_last: u64,
    /// Longest round, µs.
    pub build_us_max: u64,
    /// Total build time, µs.
    pub build_us_total: u64,
    /// From the oldest change a round covered to the publication of its exact tables, for the
    /// last round, µs: how long a change waited for its exact table, at most.
    pub converge_us_last: u64,
    /// The longest such time, µs.
    pub converge_us_max: u64,
    /// Their sum over all rounds, µs (divide by `rounds` for the mean).
    pub converge_us_total: u64,
    /// Whether some table is not exact right now.
    pub pending: bool,
}

impl Stats {
    /// Sum of all drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// Counters of one port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortStats {
    /// Configured name.
    pub name: String,
    /// Address.
    pub ip: Option<Ipv4Addr>,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Link up.
    pub link_up: bool,
    /// Received packets (NIC counter).
    pub rx_packets: u64,
    /// Received bytes (NIC counter).
    pub rx_bytes: u64,
    /// Sent packets (NIC counter).
    pub tx_packets: u64,
    /// Sent bytes (NIC counter).
    pub tx_bytes: u64,
    /// Missed for lack of rx descriptors (NIC counter).
    pub rx_missed: u64,
    /// Receive errors (NIC counter).
    pub rx_errors: u64,
    /// Transmit errors (NIC counter).
    pub tx_errors: u64,
    /// Rx mbuf allocation failures (NIC counter).
    pub rx_nombuf: u64,
    /// Frames passed to the kernel through the tap.
    pub to_host: u64,
    /// Frames from the kernel sent out of this port.
    pub from_host: u64,
}

/// Counters of one virtual service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStats {
    /// The service.
    pub key: ServiceKey,
    /// Its drop fraction.
    pub drop_fraction: DropFraction,
    /// Active bindings in its Maglev table.
    pub active_bindings: u32,
    /// Client → server packets.
    pub packets_in: u64,
    /// Client → server bytes.
    pub bytes_in: u64,
    /// Server → client packets.
    pub packets_out: u64,
    /// Server → client bytes.
    pub bytes_out: u64,
    /// Flows created.
    pub new_flows: u64,
    /// Flows in the tables now.
    pub active_flows: u64,
    /// New connections refused by the drop fraction.
    pub admission_drops: u64,
    /// New connections refused because no binding was active.
    pub no_backend_drops: u64,
}

/// Counters of one worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Its lcore.
    pub lcore: u32,
    /// The generation it forwards with.
    pub generation: u64,
    /// Flows in its table.
    pub flows: u64,
    /// Its table's capacity.
    pub flow_capacity: u64,
    /// Packets it processed.
    pub packets: u64,
    /// Non-empty rx bursts it processed.
    pub bursts: u64,
    /// SYNs that reused the 5-tuple of a closed or dead flow (placed as new connections).
    #[serde(default)]
    pub reused_tuples: u64,
    /// Rounds of its polling loop.
    #[serde(default)]
    pub loops: u64,
    /// Times it slept for lack of packets (`[dataplane] idle = "adaptive"`).
    #[serde(default)]
    pub idle_sleeps: u64,
    /// Time it spent in those sleeps, µs: `1 - asleep_us / uptime` is the share of its core it
    /// used.
    #[serde(default)]
    pub asleep_us: u64,
}

/// The answer to Sessions: live flows, as the workers saw them between two bursts.
///
/// Each worker walks its own table in slices between bursts, so the list is not one instant's
/// picture: a flow created or ended during the walk may be missing or still listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    /// Live flows that matched, over every worker that answered (may exceed `sessions.len()`).
    pub total: u64,
    /// At most `limit` of them, sorted by virtual service, then client.
    pub sessions: Vec<SessionInfo>,
    /// Workers asked.
    pub workers: u32,
    /// Workers that answered in time (the others' flows are missing).
    pub answered: u32,
}

/// One live flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The worker (lcore) whose table holds it.
    pub lcore: u32,
    /// TCP or UDP.
    pub proto: acm::Proto,
    /// The client, as it connected.
    pub client: SocketAddrV4,
    /// The virtual service it connected to (VIP:vport).
    pub vip: SocketAddrV4,
    /// The real server it was sent to.
    pub real: SocketAddrV4,
    /// The appliance's address and port the real server sees, when source-NATed.
    pub snat: Option<SocketAddrV4>,
    /// Where the connection stands.
    pub state: SessionState,
    /// Milliseconds since its last packet.
    pub idle_ms: u64,
    /// Milliseconds until it expires unless another packet comes.
    pub expires_ms: u64,
}

/// Where a flow's connection stands, as far as the dataplane follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionState {
    /// Only the client's SYN seen.
    Syn,
    /// Established (traffic both ways, or picked up mid-stream).
    Established,
    /// A FIN was seen.
    Closing,
    /// A RST was seen.
    Reset,
    /// UDP (no connection state).
    Udp,
}

impl SessionState {
    /// The short word the CLI shows (`SYN`, `EST`, `FIN`, `RST`, `UDP`).
    pub fn abbrev(self) -> &'static str {
        match self {
            SessionState::Syn => "SYN",
            SessionState::Established => "EST",
            SessionState::Closing => "FIN",
            SessionState::Reset => "RST",
            SessionState::Udp => "UDP",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_keeps_its_wire_form() {
        let req = Request { id: 7, version: 2, body: RequestBody::Sessions { service: None, limit: 5 } };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(json, r#"{"id":7,"version":2,"body":{"kind":"sessions","service":null,"limit":5}}"#);
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);
    }

    #[test]
    fn bodies_carry_the_version_that_introduced_them() {
        use rpc::Protocol;
        assert_eq!(SwitchApi::body_version(&RequestBody::Ping), 1);
        assert_eq!(SwitchApi::body_version(&RequestBody::Sessions { service: None, limit: 1 }), 2);
        let r = SwitchApi::reject(3, Reject::Version { got: 9 });
        assert_eq!((r.id, r.result), (3, Err(ApiError::Version { got: 9 })));
    }
}
