//! What a server does with one frame, sans-IO: decode the request and check its version, or
//! say how to reject it. Both server loops (the blocking [`crate::server`] and the control
//! plane's tokio one) go through [`incoming`].

use crate::{Protocol, Request};

/// Why a request is answered without reaching the handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// Not a valid frame or document.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A version the server does not speak, or a body newer than the version claimed.
    #[error("protocol version {got} does not have this request")]
    Version {
        /// The version the client sent.
        got: u16,
    },
}

/// One decoded frame.
#[derive(Debug)]
pub enum Incoming<P: Protocol> {
    /// A request for the handler.
    Call(Request<P::Body>),
    /// A request answered by `response` without the handler (counted by the server).
    Rejected {
        /// The answer.
        response: P::Response,
        /// Why.
        why: Reject,
    },
}

/// Decodes the body of one frame. A document that is not a request is rejected as malformed
/// (the framing is intact, so the connection can go on).
pub fn incoming<P: Protocol>(frame: &[u8]) -> Incoming<P> {
    match serde_json::from_slice::<Request<P::Body>>(frame) {
        Err(e) => rejected::<P>(0, Reject::Malformed(e.to_string())),
        Ok(r) => {
            let known = (P::MIN_VERSION..=P::VERSION).contains(&r.version);
            if !known || P::body_version(&r.body) > r.version {
                rejected::<P>(r.id, Reject::Version { got: r.version })
            } else {
                Incoming::Call(r)
            }
        }
    }
}

/// The rejection of request `id` (0 when it could not be decoded).
pub fn rejected<P: Protocol>(id: u64, why: Reject) -> Incoming<P> {
    Incoming::Rejected { response: P::reject(id, why.clone()), why }
}
