//! Health checks, as part of the sans-IO core ([`super::core::CmCore`]): one health state
//! machine ([`crate::health::fsm::Checker`]) per real server, fed with probe verdicts and
//! failure reports, and the bindings moved with their endpoint's health:
//!
//! | endpoint | binding | becomes |
//! |---|---|---|
//! | Up | Testing | Active (first traffic only after a passed check) |
//! | Up | Failed (by these checks) | Active |
//! | Down | Testing, Active | Failed |
//!
//! Draining and Disabled bindings are left alone, and so are bindings failed by someone else
//! (a client module that flagged its own binding down brings it back itself). The probes
//! themselves are IO: the edge ([`crate::services::health`]) asks [`CmCore::health_targets`] what
//! to probe, probes, and hands the verdicts to [`CmCore::handle_probe_results`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use acm::{BindingKey, BindingState, RealServer, ServiceKey};

use super::core::CmCore;
use crate::beacon::wire::Target;
use crate::health::fsm::{Checker, Health, Thresholds, Verdict};
use crate::health::target::{matches_target, HealthImage};
use crate::time::Time;

/// The health checks' part of the core's state.
#[derive(Debug)]
pub(super) struct HealthState {
    thresholds: Thresholds,
    checkers: HashMap<RealServer, Checker>,
    failed_by_us: HashSet<BindingKey>,
}

fn checked(s: BindingState) -> bool {
    matches!(s, BindingState::Testing | BindingState::Active | BindingState::Failed)
}

impl CmCore {
    /// Runs health checks with these thresholds from now on.
    pub fn enable_health(&mut self, thresholds: Thresholds) {
        self.health = Some(HealthState { thresholds, checkers: HashMap::new(), failed_by_us: HashSet::new() });
    }

    /// Is a health checker running?
    pub fn health_enabled(&self) -> bool {
        self.health.is_some()
    }

    /// An endpoint's health, as the checks see it.
    pub fn health_of(&self, real: &RealServer) -> Option<Health> {
        self.health.as_ref()?.checkers.get(real).map(Checker::health)
    }

    /// The real servers to probe this round, each with one service it serves (whose probe to
    /// use): those of Testing, Active and Failed bindings. Forgets endpoints and bindings that
    /// left the cache.
    pub fn health_targets(&mut self) -> Vec<(RealServer, ServiceKey)> {
        let Some(h) = self.health.as_mut() else { return Vec::new() };
        let mut endpoints: BTreeMap<RealServer, ServiceKey> = BTreeMap::new();
        for (k, _) in self.cache.entries().filter(|(_, e)| checked(e.state)) {
            endpoints.entry(k.real).or_insert(k.service);
        }
        h.checkers.retain(|r, _| endpoints.contains_key(r));
        let cache = &self.cache;
        h.failed_by_us.retain(|k| cache.get(k).is_some());
        endpoints.into_iter().collect()
    }

    /// A round of probes finished at `now` (inconclusive ones of a starved round already left
    /// out by the edge): the endpoints' state machines move, and the bindings with them.
    pub fn handle_probe_results(&mut self, results: &[(RealServer, Verdict)], now: Time) {
        let Some(h) = self.health.as_mut() else { return };
        for (real, verdict) in results {
            let t = h.thresholds;
            let c = h.checkers.entry(*real).or_insert_with(|| Checker::new(t));
            if let Some(health) = c.on_result(now, verdict) {
                match health {
                    Health::Down => tracing::warn!(%real, "health check failed: {}", c.last_reason().unwrap_or("")),
                    _ => tracing::info!(%real, "health check passed: {health:?}"),
                }
            }
        }
        self.apply_health(None, now);
    }

    /// A client module at `from` says `target` failed: its endpoints go Down at once and stay
    /// down for the hold-down. Without health checks the bindings are failed
    /// ([`CmCore::handle_report`]).
    pub fn handle_health_report(&mut self, target: &Target, from: Ipv4Addr, now: Time) {
        let Some(h) = self.health.as_mut() else {
            self.handle_report(target, from, now);
            return;
        };
        let reals: Vec<RealServer> = self
            .cache
            .entries()
            .filter(|(k, e)| checked(e.state) && matches_target(target, k))
            .map(|(k, _)| k.real)
            .collect();
        if reals.is_empty() {
            tracing::info!(%from, real = %target.real, "failure report for a server with no binding: ignored");
            return;
        }
        for real in &reals {
            let t = h.thresholds;
            let c = h.checkers.entry(*real).or_insert_with(|| Checker::new(t));
            c.on_report(now, &format!("reported failed by {from}"));
            tracing::warn!(%real, %from, "failure report: taking the server out");
        }
        self.apply_health(Some(target), now);
    }

    /// Moves bindings with their endpoint's health (only those matching `only`, if given).
    fn apply_health(&mut self, only: Option<&Target>, now: Time) {
        let Some(h) = self.health.as_mut() else { return };
        let mut moves = Vec::new();
        for (k, e) in self.cache.entries() {
            if only.is_some_and(|t| !matches_target(t, k)) {
                continue;
            }
            let Some(health) = h.checkers.get(&k.real).map(Checker::health) else { continue };
            let to = match (health, e.state) {
                (Health::Up, BindingState::Testing) => BindingState::Active,
                (Health::Up, BindingState::Failed) if h.failed_by_us.remove(k) => BindingState::Active,
                (Health::Down, BindingState::Testing | BindingState::Active) => {
                    h.failed_by_us.insert(*k);
                    BindingState::Failed
                }
                _ => continue,
            };
            moves.push((*k, e.state, to));
        }
        for (k, from, to) in moves {
            tracing::info!(binding = %k, "health: {from} -> {to}");
            self.set_state_unattended(k, to, now);
        }
    }

    /// What the checks keep across a control plane restart ([`crate::zlr`]).
    pub fn health_image(&self, now: Time) -> HealthImage {
        let Some(h) = self.health.as_ref() else { return HealthImage::default() };
        let mut failed_by_us: Vec<BindingKey> = h.failed_by_us.iter().copied().collect();
        failed_by_us.sort();
        let mut endpoints: Vec<(RealServer, Health, Option<u64>)> = h
            .checkers
            .iter()
            .map(|(r, c)| {
                let held = c.held_until().map(|u| u64::try_from(u.saturating_duration_since(now).as_millis()));
                (*r, c.health(), held.map(|ms| ms.unwrap_or(u64::MAX)).filter(|ms| *ms > 0))
            })
            .collect();
        endpoints.sort_by_key(|e| e.0);
        HealthImage { failed_by_us, endpoints }
    }

    /// Takes over a previous generation's checks ([`CmCore::health_image`]).
    pub fn restore_health(&mut self, img: HealthImage, now: Time) {
        let Some(h) = self.health.as_mut() else { return };
        h.failed_by_us = img.failed_by_us.into_iter().collect();
        for (real, health, held) in img.endpoints {
            let until = held.map(|ms| now + Duration::from_millis(ms));
            h.checkers.insert(real, Checker::restored(h.thresholds, health, until));
        }
    }
}
