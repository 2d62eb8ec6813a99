//! Connection images: the whole state of one telnet CLI connection ([`crate::Connection`]) as
//! plain, serializable data — login state, mode and sub-mode, enable prompt, paging setting and
//! history, the `--More--` pager, the half-typed line with its cursor and escape state, and the
//! telnet option negotiation. A control plane that is restarted (zero-loss restart) writes an
//! image after every input it processed and rebuilds the connection from it in the next
//! generation: the session continues at the same prompt with the same line.
//!
//! Times are stored relative to the moment the image was taken, so an image can be restored in
//! another process. [`crate::Connection::from_image`] checks every field; a bad image is an
//! [`ImageError`], never a panic.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A connection's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionImage {
    /// Login state.
    pub state: StateImage,
    /// Failed logins so far.
    pub attempts: u32,
    /// Terminal height from NAWS (0: unknown).
    pub height: u16,
    /// Lines still to page out (`--More--` showing when not empty).
    pub pager: Vec<String>,
    /// Milliseconds since the connection started (login timeout).
    pub started_ago_ms: u64,
    /// Milliseconds since the last input (idle timeout).
    pub idle_ms: u64,
    /// The telnet codec.
    pub codec: CodecImage,
    /// The line editor.
    pub editor: EditorImage,
    /// The CLI session.
    pub session: SessionImage,
}

/// Login state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateImage {
    /// Asking for the user name.
    User,
    /// Asking for the password of `user`.
    Password {
        /// The name typed.
        user: String,
    },
    /// After a failed login, discarding input this much longer.
    Delay {
        /// Milliseconds left.
        remaining_ms: u64,
    },
    /// Logged in.
    Shell,
    /// Over.
    Closed,
}

/// RFC 1143 state of one side of one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptImage {
    /// Disabled.
    No,
    /// Enabled.
    Yes,
    /// Asked to disable.
    WantNo {
        /// Opposite request queued.
        opposite: bool,
    },
    /// Asked to enable.
    WantYes {
        /// Opposite request queued.
        opposite: bool,
    },
}

/// Decoder state between bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RxImage {
    /// Plain data.
    Data,
    /// After CR.
    Cr,
    /// After IAC.
    Iac,
    /// After `IAC` and this verb.
    Opt(u8),
    /// Inside a subnegotiation.
    Sb,
    /// IAC inside a subnegotiation.
    SbIac,
}

/// The telnet codec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodecImage {
    /// Decoder state.
    pub rx: RxImage,
    /// Options not in the `No`/`No` state: (option, our side, the client's side).
    pub options: Vec<(u8, OptImage, OptImage)>,
    /// Subnegotiation bytes so far.
    pub sb: Vec<u8>,
    /// The subnegotiation overflowed.
    pub sb_overflow: bool,
}

/// Escape-sequence state of the editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EscImage {
    /// None.
    None,
    /// `ESC`.
    Start,
    /// `ESC [` with a parameter.
    Csi(u16),
    /// `ESC O`.
    Ss3,
}

/// The line editor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditorImage {
    /// The line so far (printable ASCII).
    pub line: String,
    /// Cursor position in the line.
    pub cursor: usize,
    /// Escape state.
    pub esc: EscImage,
    /// Password mode (no echo).
    pub password: bool,
    /// Position in the history while walking it.
    pub hist: Option<usize>,
    /// The new line stashed while walking the history.
    pub stash: String,
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModeImage {
    /// User EXEC.
    User,
    /// Privileged EXEC.
    Privileged,
    /// Global configuration.
    Config,
    /// A real server's configuration.
    RealServer(String),
    /// A virtual server's configuration.
    VirtualServer(String),
}

/// Page display setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PagingImage {
    /// By the terminal height.
    Auto,
    /// Off.
    Off,
    /// N lines.
    Lines(u16),
}

/// The CLI session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionImage {
    /// Mode.
    pub mode: ModeImage,
    /// Started privileged.
    pub privileged: bool,
    /// The next line is the enable password.
    pub awaiting_enable: bool,
    /// Paging.
    pub paging: PagingImage,
    /// History, oldest first.
    pub history: Vec<String>,
}

/// Why an image cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImageError {
    /// A field holds a value a connection never has.
    #[error("connection image: {field} is invalid: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
}

impl ImageError {
    pub(crate) fn invalid(field: &'static str, why: impl Into<String>) -> ImageError {
        ImageError::Invalid { field, why: why.into() }
    }
}
