//! The local API: how `acmctl` and tests drive the CM, over a Unix stream socket.
//!
//! One frame each way per request: a 4-byte big-endian length, then a JSON document
//! ([`Request`] → [`Response`]), like the dataplane's switch API. Primitives sent here take the
//! same path as beacons and the CLI ([`crate::cm::Cm::primitive`]). A frame that is not a valid
//! request is answered with [`ApiError::Malformed`] and the connection is closed.
//!
//! Adding a request kind (e.g. `rolling-restart`): a variant of [`RequestBody`], its answer in
//! [`ResponseBody`], a match arm in [`server::handle`], and an `acmctl` subcommand.

pub mod client;
pub mod server;

use acm::{BindingInfo, Primitive};
use serde::{Deserialize, Serialize};

use crate::cm::{CmCounters, CmError, Outcome};
use crate::latency::LatencyReport;

/// Protocol version; requests of another version are refused.
pub const API_VERSION: u16 = 1;

/// Largest frame accepted.
pub const MAX_FRAME: usize = 4 << 20;

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the response.
    pub id: u64,
    /// Must be [`API_VERSION`].
    pub version: u16,
    /// What is asked.
    pub body: RequestBody,
}

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
