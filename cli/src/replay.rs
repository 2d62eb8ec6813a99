//! [`replay`]: rebuilds a configuration from saved running-config text (a startup-config), as
//! if typed at `configure terminal`, so every binding reaches the switch through the same
//! primitives as typed commands.

use crate::backend::Backend;
use crate::config::SlbConfig;
use crate::mode::{Mode, ModeKind};
use crate::session::{Session, SessionOptions};

/// An error while replaying a startup-config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayError {
    /// 1-based line number.
    pub line: usize,
    /// The line.
    pub text: String,
    /// What the CLI answered.
    pub message: String,
}

/// Replays configuration text (a saved running-config) as if typed at `configure terminal`,
/// applying every binding to `backend`. Lines starting with `!` and blank lines are skipped; a
/// final `end` is accepted. Returns the lines that failed.
pub fn replay(text: &str, cfg: &mut SlbConfig, backend: &mut dyn Backend) -> Vec<ReplayError> {
    let mut s = Session::new(SessionOptions { enable_secret: None, privileged: true });
    s.mode = Mode::Config;
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('!') {
            continue;
        }
        if t == "end" {
            s.mode = Mode::Config;
            continue;
        }
        // A line not indented ends a sub-mode block: run it at config level.
        if !line.starts_with(char::is_whitespace) && s.mode.kind() != ModeKind::Config {
            s.mode = Mode::Config;
        }
        let out = s.execute(t, cfg, backend);
        let errs: Vec<&String> = out
            .lines
            .iter()
            .filter(|l| {
                l.starts_with("Error")
                    || l.starts_with("Invalid")
                    || l.starts_with("Ambiguous")
                    || l.starts_with("Incomplete")
            })
            .collect();
        if !errs.is_empty() {
            errors.push(ReplayError {
                line: i + 1,
                text: line.to_string(),
                message: errs.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; "),
            });
        }
        if s.mode.kind() == ModeKind::Privileged || s.mode.kind() == ModeKind::User {
            s.mode = Mode::Config;
        }
    }
    errors
}
