//! The one error type of a call.

use std::io;

use crate::frame::FrameError;

/// Why a call failed; `E` is the API's refusal ([`crate::Protocol::Error`]).
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// Could not connect to the socket.
    #[error("cannot connect to the {peer} at {path}")]
    Connect {
        /// Who serves the socket.
        peer: &'static str,
        /// The socket path.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The connection failed mid-call, or the answer was not a valid frame.
    #[error("{peer} API transport")]
    Transport {
        /// Who serves the socket.
        peer: &'static str,
        /// What failed.
        source: FrameError,
    },
    /// The server refused the request.
    #[error("refused: {0}")]
    Refused(E),
    /// The server answered something that does not fit the request.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}
