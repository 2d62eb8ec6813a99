//! The local API: how `acmctl` and tests drive the CM, over a Unix stream socket.
//!
//! One frame each way per request ([`Request`] → [`Response`]) over the `rpc` crate's
//! transport, like the dataplane's switch API. Primitives sent here take the same path as
//! beacons and the CLI ([`crate::cm::Cm::primitive`]). A document that is not a valid request
//! is answered with [`ApiError::Malformed`] and the connection goes on; a frame too large or
//! cut short is answered so and the connection is closed.
//!
//! Adding a request kind (e.g. `rolling-restart`): a variant of [`RequestBody`], its answer in
//! [`ResponseBody`], a match arm in [`server::handle`], and an `acmctl` subcommand.

pub mod client;
pub mod server;

use std::time::Duration;

use acm::{BindingInfo, Primitive};
use rpc::Reject;
use serde::{Deserialize, Serialize};

use crate::cm::{CmCounters, CmError, Outcome};
use crate::latency::LatencyReport;

/// Protocol version; requests of another version are refused.
pub const API_VERSION: u16 = 1;

/// Largest frame accepted.
pub const MAX_FRAME: usize = 4 << 20;

/// The local API as an [`rpc::Protocol`].
pub struct LocalApi;

impl rpc::Protocol for LocalApi {
    type Body = RequestBody;
    type Response = Response;
    type Error = ApiError;
    const PEER: &'static str = "controlplane";
    const VERSION: u16 = API_VERSION;
    const MIN_VERSION: u16 = API_VERSION;
    const MAX_FRAME: usize = MAX_FRAME;
    /// CLI commands may wait for slow switches.
    const CALL_TIMEOUT: Duration = Duration::from_secs(60);

    fn body_version(_: &RequestBody) -> u16 {
        1
    }

    fn response_id(response: &Response) -> u64 {
        response.id
    }

    fn reject(id: u64, why: Reject) -> Response {
        let error = match why {
            Reject::Malformed(m) => ApiError::Malformed(m),
            Reject::Version { got } => ApiError::Version { got },
        };
        Response { id, result: Err(error) }
    }
}

/// One request; its version must be [`API_VERSION`].
pub type Request = rpc::Request<RequestBody>;

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RequestBody {
    /// An ACM primitive (Add, Remove, ForceRemove, Drop, List).
    Primitive {
        /// The primitive.
        primitive: Primitive,
    },
    /// The binding cache.
    List,
    /// The latency histograms (`reset`: forget them afterwards).
    Latency {
        /// Forget the samples after reporting.
        #[serde(default)]
        reset: bool,
    },
    /// CLI lines, run in privileged mode.
    Cli {
        /// The lines.
        lines: Vec<String>,
    },
    /// Counters, switches, role.
    Status,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResponseBody {
    /// What a primitive did.
    Outcome(Outcome),
    /// The binding cache.
    List {
        /// Every binding.
        bindings: Vec<BindingInfo>,
    },
    /// Latency rows.
    Latency {
        /// Per primitive and switch.
        rows: Vec<LatencyReport>,
    },
    /// CLI output.
    Cli {
        /// Output lines.
        output: Vec<String>,
    },
    /// Status.
    Status(Status),
}

/// The CM's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Active (not standby).
    pub active: bool,
    /// Cache generation.
    pub generation: u64,
    /// Cached bindings.
    pub bindings: usize,
    /// Counters.
    pub counters: CmCounters,
    /// Switches.
    pub switches: Vec<SwitchStatus>,
    /// API requests that were not valid.
    pub api_malformed: u64,
}

/// One switch in [`Status`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchStatus {
    /// Profile name.
    pub name: String,
    /// Driver description.
    pub driver: String,
    /// Answered last time.
    pub up: bool,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ApiError {
    /// The CM refused it.
    #[error(transparent)]
    Cm(#[from] CmError),
    /// Not a valid request.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Another protocol version.
    #[error("protocol version {got} is not supported (this controlplane speaks {API_VERSION})")]
    Version {
        /// What the client sent.
        got: u16,
    },
}

/// One response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id (0 when it could not be decoded).
    pub id: u64,
    /// The answer.
    pub result: Result<ResponseBody, ApiError>,
}
