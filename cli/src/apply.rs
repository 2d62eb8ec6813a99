//! How configuration reaches the switch: [`apply_diff`] turns a configuration edit into ACM
//! primitives (a startup-config replay, [`crate::replay()`], takes the same path).

use acm::{DropFraction, Primitive};

use crate::backend::Backend;
use crate::config::SlbConfig;

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
