//! How configuration reaches the switch: [`apply_diff`] turns a configuration edit into ACM
//! primitives, and [`replay`] rebuilds a configuration from saved running-config text.

use acm::{DropFraction, Primitive};

use crate::backend::Backend;
use crate::config::SlbConfig;
use crate::session::{Mode, ModeKind, Session, SessionOptions};

/// Sends the switch the difference between two configurations: Remove (ForceRemove under
/// `server force-delete` in `after`) for bindings that went away, Add for new bindings and for
/// changed parameters, Drop for changed drop fractions. Returns error lines for refusals.
pub fn apply_diff(before: &SlbConfig, after: &SlbConfig, backend: &mut dyn Backend) -> Vec<String> {
    let (b0, b1) = (before.live_bindings(), after.live_bindings());
    let (d0, d1) = (before.live_drops(), after.live_drops());
    let mut prims = Vec::new();
    for key in b0.keys().filter(|k| !b1.contains_key(k)) {
        prims.push(if after.force_delete {
            Primitive::ForceRemove { key: *key }
        } else {
            Primitive::Remove { key: *key }
        });
    }
    for (key, params) in &b1 {
        if b0.get(key) != Some(params) {
            prims.push(Primitive::Add { key: *key, params: *params });
        }
    }
    for (svc, f) in &d1 {
        let old = d0.get(svc).copied().unwrap_or(0.0);
        if old != *f {
            if let Ok(fraction) = DropFraction::new(*f) {
                prims.push(Primitive::Drop { service: *svc, fraction });
            }
        }
    }
    let mut errors = Vec::new();
    for prim in prims {
        let what = describe(&prim);
        if let Err(e) = backend.apply(prim) {
            errors.push(format!("Error - switch refused {what}: {e}"));
        }
    }
    errors
}

fn describe(p: &Primitive) -> String {
    match p {
        Primitive::Add { key, .. } | Primitive::Remove { key } | Primitive::ForceRemove { key } => {
            format!("{} {key}", p.name())
        }
        Primitive::Drop { service, fraction } => format!("drop {fraction} at {service}"),
        Primitive::List => "list".into(),
    }
}

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
