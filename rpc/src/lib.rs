//! The appliance's local RPC: typed, versioned requests over a Unix stream socket.
//!
//! Two APIs speak it: the switch API (control plane → dataplane, defined in the `switch-api`
//! crate) and the Connection Manager's local API (`acmctl` → control plane). Each request and
//! each response is one frame ([`frame`]): a 4-byte big-endian length, then a JSON document.
//! A request is a [`Request`] envelope (id, version, body); what a body and a response are,
//! which versions are spoken and how large a frame may be is the API's [`Protocol`].
//!
//! - [`frame`]: the codec (sans-IO [`frame::split_frame`], blocking read and write).
//! - [`serve`]: what a server does with one frame: decode, negotiate the version, or reject.
//! - [`server`]: a blocking server, a thread per connection (the dataplane's).
//! - [`client`]: a blocking client with connect-wait.
//! - [`args`]: the command-line arguments of the primitives, shared by `acmctl` and `dpctl`.
//!
//! Version negotiation: a body has the version that introduced it
//! ([`Protocol::body_version`]); a client sends that version, so a server that is older but
//! knows the body still answers it, and a server refuses a version outside
//! [`Protocol::MIN_VERSION`]`..=`[`Protocol::VERSION`] or a body newer than the version claimed.

pub mod args;
pub mod client;
mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod serve;
pub mod server;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use client::Client;
pub use error::CallError;
pub use serve::{Incoming, Reject};
pub use server::{Handler, Server, ServerCounters};

/// One request: the envelope every API shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request<B> {
    /// Echoed in the response.
    pub id: u64,
    /// The protocol version the client claims: at least the body's, at most the server's.
    pub version: u16,
    /// What is asked.
    pub body: B,
}

/// An API spoken over this transport.
pub trait Protocol: 'static {
    /// What a request asks.
    type Body: Serialize + DeserializeOwned + Send + 'static;
    /// The response envelope (it carries the request's id).
    type Response: Serialize + DeserializeOwned + Send + 'static;
    /// Why the server refused a request.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Who serves the API, for messages ("dataplane", "controlplane").
    const PEER: &'static str;
    /// The newest version spoken.
    const VERSION: u16;
    /// The oldest version still answered.
    const MIN_VERSION: u16;
    /// The largest frame accepted or sent.
    const MAX_FRAME: usize;
    /// How long a client waits for each read and write.
    const CALL_TIMEOUT: Duration;

    /// The version that introduced `body`.
    fn body_version(body: &Self::Body) -> u16;
    /// The id a response answers.
    fn response_id(response: &Self::Response) -> u64;
    /// The answer to request `id` that the server rejects before it reaches the handler.
    fn reject(id: u64, why: Reject) -> Self::Response;
}

#[cfg(test)]
mod tests;
