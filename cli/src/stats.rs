//! Counters of the telnet server: sessions, logins and bad input (`show telnet`).
//!
//! Every [`crate::Connection`] made with the same [`crate::ServerSettings`] (or clones of them)
//! counts into one shared [`TelnetCounters`], so a control plane with several listeners gets
//! one set of totals. Plain atomics: counting never blocks a session.

use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters, shared by every connection of a server.
#[derive(Debug, Default)]
pub struct TelnetCounters {
    opened: AtomicU64,
    closed: AtomicU64,
    logins: AtomicU64,
    failed_logins: AtomicU64,
    login_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    bad_telnet: AtomicU64,
    long_lines: AtomicU64,
    refused: AtomicU64,
}

/// What one event adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelnetEvent {
    /// A connection started (or was taken over from a previous control plane).
    Opened,
    /// A connection ended, for whatever reason.
    Closed,
    /// A user logged in.
    Login,
    /// A wrong user name or password.
    FailedLogin,
    /// Nobody logged in within the login time.
    LoginTimeout,
    /// A logged-in session was idle too long and closed.
    IdleTimeout,
    /// A malformed telnet command sequence (a byte after IAC that is no command, a garbled or
    /// over-long subnegotiation, a subnegotiation of an option not agreed).
    BadTelnet,
    /// A line grew past the editor's limit (counted once per line).
    LongLine,
    /// A connection refused because the session limit was reached (counted by the embedder).
    Refused,
}

impl TelnetCounters {
    /// Adds `n` to the counter of `event`.
    pub fn add(&self, event: TelnetEvent, n: u64) {
        if n == 0 {
            return;
        }
        let c = match event {
            TelnetEvent::Opened => &self.opened,
            TelnetEvent::Closed => &self.closed,
            TelnetEvent::Login => &self.logins,
            TelnetEvent::FailedLogin => &self.failed_logins,
            TelnetEvent::LoginTimeout => &self.login_timeouts,
            TelnetEvent::IdleTimeout => &self.idle_timeouts,
            TelnetEvent::BadTelnet => &self.bad_telnet,
            TelnetEvent::LongLine => &self.long_lines,
            TelnetEvent::Refused => &self.refused,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one `event`.
    pub fn count(&self, event: TelnetEvent) {
        self.add(event, 1);
    }

    /// The counters now.
    pub fn snapshot(&self) -> TelnetStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TelnetStats {
            opened: r(&self.opened),
            closed: r(&self.closed),
            logins: r(&self.logins),
            failed_logins: r(&self.failed_logins),
            login_timeouts: r(&self.login_timeouts),
            idle_timeouts: r(&self.idle_timeouts),
            bad_telnet: r(&self.bad_telnet),
            long_lines: r(&self.long_lines),
            refused: r(&self.refused),
        }
    }
}

/// A copy of [`TelnetCounters`], for `show telnet`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TelnetStats {
    /// Connections started.
    pub opened: u64,
    /// Connections ended.
    pub closed: u64,
    /// Successful logins.
    pub logins: u64,
    /// Wrong user names or passwords.
    pub failed_logins: u64,
    /// Connections closed for not logging in in time.
    pub login_timeouts: u64,
    /// Sessions closed for being idle.
    pub idle_timeouts: u64,
    /// Malformed telnet command sequences.
    pub bad_telnet: u64,
    /// Lines that grew past the limit.
    pub long_lines: u64,
    /// Connections refused at the session limit.
    pub refused: u64,
}

impl TelnetStats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.opened.saturating_sub(self.closed)
    }
}
