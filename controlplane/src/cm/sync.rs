//! The periodic sync: every switch's List against the cache (soft state repair), as part of the
//! sans-IO core ([`super::core::CmCore`]).
//!
//! A binding a switch holds that the cache does not know is removed (drained); a binding the
//! cache has that a switch lost — the switch was reset, the dataplane restarted — is added back,
//! with its drop fraction. Drains that finished leave the cache. A standby CM does not sync.
//!
//! A round queues a List to every switch (behind the operations already queued to it); each
//! answer is reconciled with the cache and the corrections are queued to that switch. The round
//! ends, as a [`super::core::Completion::Sync`], when every List and correction was answered.
//! One round runs at a time; a round asked for meanwhile starts when it ends. With the periodic
//! sync on, the next round is due `sync_interval` after the last one ended.

use super::core::CmCore;
use super::switch::SwitchView;
use crate::time::Time;

/// A sync round, as [`CmCore::start_sync`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncId(pub u64);

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

#[derive(Debug)]
struct Round {
    id: SyncId,
    reports: Vec<SyncReport>,
    lists_left: usize,
}

/// The sync's part of the core's state.
#[derive(Debug)]
pub(super) struct SyncState {
    periodic: bool,
    /// When the next periodic round is due.
    next: Time,
    round: Option<Round>,
    /// A round asked for while one runs.
    queued: Option<SyncId>,
    /// Rounds skipped in a row because the cache moved while a List was on its way.
    skips: u32,
    pub(super) corrections_left: usize,
}

impl SyncState {
    pub(super) fn new(now: Time) -> SyncState {
        SyncState { periodic: false, next: now, round: None, queued: None, skips: 0, corrections_left: 0 }
    }
}

impl CmCore {
    /// Runs a sync round every `sync_interval` from now on (the first at the next tick).
    pub fn enable_periodic_sync(&mut self, now: Time) {
        self.sync.periodic = true;
        self.sync.next = self.sync.next.min(now);
    }

    /// Starts a sync round now (or, when one runs, right after it). A standby's round ends at
    /// once with no report.
    pub fn start_sync(&mut self, now: Time) -> SyncId {
        if self.sync.round.is_some() {
            if let Some(id) = self.sync.queued {
                return id;
            }
            let id = SyncId(self.id());
            self.sync.queued = Some(id);
            return id;
        }
        let id = SyncId(self.id());
        self.begin_round(id, now);
        id
    }

    fn begin_round(&mut self, id: SyncId, now: Time) {
        if !self.active {
            self.completions.push_back(super::core::Completion::Sync(id, Vec::new()));
            self.sync.next = now + self.options.sync_interval;
            return;
        }
        self.counters.syncs += 1;
        let reports = self
            .switches
            .iter()
            .map(|s| SyncReport { switch: s.name.clone(), reached: false, corrections: Vec::new() })
            .collect();
        self.sync.round = Some(Round { id, reports, lists_left: self.switches.len() });
        self.sync.corrections_left = 0;
        for i in 0..self.switches.len() {
            self.enqueue_list(i);
        }
        self.maybe_end_round(now);
    }

    pub(super) fn next_sync(&self) -> Option<Time> {
        (self.sync.periodic && self.sync.round.is_none() && self.active).then_some(self.sync.next)
    }

    pub(super) fn tick_sync(&mut self, now: Time) {
        if self.next_sync().is_some_and(|t| now >= t) {
            self.start_sync(now);
        }
    }

    /// Switch `i` answered List (`None`: it did not); `generation` is the cache's when the List
    /// was queued.
    pub(super) fn on_list(&mut self, i: usize, generation: u64, view: Option<SwitchView>, now: Time) {
        if self.sync.round.is_none() {
            return;
        }
        self.list_answered(i, generation, view, now);
        if let Some(r) = self.sync.round.as_mut() {
            r.lists_left -= 1;
        }
        self.maybe_end_round(now);
    }

    fn list_answered(&mut self, i: usize, generation: u64, view: Option<SwitchView>, now: Time) {
        let name = self.switches[i].name.clone();
        let Some(view) = view else {
            tracing::debug!(switch = name, "sync: switch did not answer List");
            return;
        };
        if let Some(r) = self.sync.round.as_mut() {
            r.reports[i].reached = true;
        }
        // Requests crossed the List: its picture may be older than the cache. Skip the round
        // (but not forever, or a busy CM would never repair a reset switch).
        if self.cache.generation() != generation && self.sync.skips < 3 {
            self.sync.skips += 1;
            return;
        }
        self.sync.skips = 0;
        let remove_unknown = now.saturating_duration_since(self.started) >= self.options.sync_grace;
        let vips = self.switches[i].vips.clone();
        let covers = |s: &acm::ServiceKey| vips.covers(s);
        let listed: Vec<_> = view.bindings.iter().filter(|b| covers(&b.key.service)).cloned().collect();
        let ops = self.cache.reconcile(&listed, view.drops.as_ref(), &covers, remove_unknown);
        if ops.is_empty() || !self.active {
            return;
        }
        tracing::info!(switch = name, "sync: {} correction(s): {:?}", ops.len(), ops);
        self.counters.sync_corrections += ops.len() as u64;
        if let Some(r) = self.sync.round.as_mut() {
            r.reports[i].corrections = ops.iter().map(|o| format!("{o:?}")).collect();
        }
        self.correct(i, &ops, now);
    }

    /// A correction of the running round was answered.
    pub(super) fn sync_correction_done(&mut self) {
        // The round ends in `maybe_end_round`, which every switch reply calls.
        self.sync.corrections_left = self.sync.corrections_left.saturating_sub(1);
    }

    pub(super) fn maybe_end_round(&mut self, now: Time) {
        let done = self.sync.round.as_ref().is_some_and(|r| r.lists_left == 0) && self.sync.corrections_left == 0;
        if !done {
            return;
        }
        let Some(r) = self.sync.round.take() else { return };
        self.completions.push_back(super::core::Completion::Sync(r.id, r.reports));
        self.sync.next = now + self.options.sync_interval;
        if let Some(id) = self.sync.queued.take() {
            self.begin_round(id, now);
        }
    }
}
