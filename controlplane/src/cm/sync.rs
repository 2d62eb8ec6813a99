//! The periodic sync: every switch's List against the cache (soft state repair).
//!
//! A binding a switch holds that the cache does not know is removed (drained); a binding the
//! cache has that a switch lost — the switch was reset, the dataplane restarted — is added back,
//! with its drop fraction. Drains that finished leave the cache. A standby CM does not sync.

use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::oneshot;

use super::switch::{Job, SwitchView};
use super::{Cm, Origin};

/// What one sync round did with one switch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SyncReport {
    /// Switch profile name.
    pub switch: String,
    /// The switch answered List.
    pub reached: bool,
    /// Corrections sent.
    pub corrections: Vec<String>,
}

impl Cm {
    /// One sync round with every switch; returns what it did.
    pub async fn sync_once(&self) -> Vec<SyncReport> {
        let mut reports = Vec::new();
        if !self.is_active() {
            return reports;
        }
        self.inner.counters.syncs.fetch_add(1, Ordering::Relaxed);
        for (i, sw) in self.inner.switches.iter().enumerate() {
            let (tx, rx) = oneshot::channel();
            let before = self.generation();
            let view = if sw.send(Job::List { reply: tx }) { rx.await.ok() } else { None };
            let mut report = SyncReport { switch: sw.name.clone(), reached: false, corrections: Vec::new() };
            let Some(Ok(view)) = view else {
                tracing::debug!(switch = sw.name, "sync: switch did not answer List");
                reports.push(report);
                continue;
            };
            report.reached = true;
            let received = Instant::now();
            let waits = {
                let mut cache = self.cache();
                // Requests crossed the List: its picture may be older than the cache. Skip the
                // round (but not forever, or a busy CM would never repair a reset switch).
                if cache.generation() != before && self.inner.sync_skips.fetch_add(1, Ordering::Relaxed) < 3 {
                    reports.push(report);
                    continue;
                }
                self.inner.sync_skips.store(0, Ordering::Relaxed);
                let ops = self.reconcile(&mut cache, i, &view);
                if ops.is_empty() || !self.is_active() {
                    Vec::new()
                } else {
                    report.corrections = ops.iter().map(|o| format!("{o:?}")).collect();
                    tracing::info!(switch = sw.name, "sync: {} correction(s): {:?}", ops.len(), ops);
                    self.inner.counters.sync_corrections.fetch_add(ops.len() as u64, Ordering::Relaxed);
                    self.enqueue(&ops, Some(i))
                }
            };
            for (switch, op, rx) in waits {
                let r = rx.await.ok();
                let _ = self.finish(&Origin::Sync, "sync", received, true, super::Undo::None, vec![(switch, op, r)]);
            }
            reports.push(report);
        }
        reports
    }

    fn reconcile(&self, cache: &mut super::Cache, i: usize, view: &SwitchView) -> Vec<acm::Primitive> {
        let sw = &self.inner.switches[i];
        let remove_unknown = self.inner.started.elapsed() >= self.inner.options.sync_grace;
        let covers = |s: &acm::ServiceKey| sw.vips.covers(s);
        let listed: Vec<_> = view.bindings.iter().filter(|b| covers(&b.key.service)).cloned().collect();
        cache.reconcile(&listed, view.drops.as_ref(), &covers, remove_unknown)
    }

    /// Runs [`Cm::sync_once`] every `sync_interval` (and at once after [`Cm::set_active`]`(true)`)
    /// on the current tokio runtime.
    pub fn spawn_sync(&self) -> tokio::task::JoinHandle<()> {
        let cm = self.clone();
        tokio::spawn(async move {
            let every = cm.inner.options.sync_interval;
            loop {
                cm.sync_once().await;
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = cm.inner.sync_now.notified() => {}
                }
            }
        })
    }

    /// Asks the sync task for a round now.
    pub fn request_sync(&self) {
        self.inner.sync_now.notify_one();
    }
}
