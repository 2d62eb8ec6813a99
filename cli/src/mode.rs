//! The session's modes (user, privileged, config, real-server and virtual-server config): the
//! grammar is chosen by a mode's kind, and the session, the startup-config replay and the
//! server's login handling move between modes.

/// The kind of a mode (what grammar applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModeKind {
    /// `HOST>`
    User,
    /// `HOST#`
    Privileged,
    /// `HOST(config)#`
    Config,
    /// `HOST(config-rs-NAME)#`
    RealServer,
    /// `HOST(config-vs-NAME)#`
    VirtualServer,
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// User EXEC.
    User,
    /// Privileged EXEC.
    Privileged,
    /// Global configuration.
    Config,
    /// Configuring a real server.
    RealServer(String),
    /// Configuring a virtual server.
    VirtualServer(String),
}

impl Mode {
    /// Its kind.
    pub fn kind(&self) -> ModeKind {
        match self {
            Mode::User => ModeKind::User,
            Mode::Privileged => ModeKind::Privileged,
            Mode::Config => ModeKind::Config,
            Mode::RealServer(_) => ModeKind::RealServer,
            Mode::VirtualServer(_) => ModeKind::VirtualServer,
        }
    }
}
