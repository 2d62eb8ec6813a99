//! The health checker at run time: every `interval` it probes the real server of every binding
//! in the CM's cache (Testing, Active, Failed) and hands the verdicts to the CM's core, which
//! moves the bindings with their endpoint's health (the table is in `cm::health`, the core's
//! part of the checks):
//!
//! | endpoint | binding | becomes |
//! |---|---|---|
//! | Up | Testing | Active (first traffic only after a passed check) |
//! | Up | Failed (by this checker) | Active |
//! | Down | Testing, Active | Failed |
//!
//! A round whose probes all time out at once, or that takes far longer than its timeout, says
//! the checker itself was starved: its timeouts do not count against the servers.
//!
//! Draining and Disabled bindings are left alone, and so are bindings failed by someone else
//! (a client module that flagged its own binding down brings it back itself). A failure report
//! ([`HealthHandle::report`]) takes the endpoint Down at once and holds it down for
//! `hold_down`.
//!
//! `[health]` of `appliance.toml` (typed in the `appliance-config` crate, built into a
//! [`HealthConfig`] when the file is loaded; every key optional):
//!
//! ```toml
//! [health]
//! check = "l4"            # none | l2 (ARP) | l3 (ICMP echo) | l4 (TCP connect) | l7 (HTTP)
//! interval_ms = 300
//! timeout_ms = 250
//! rise = 2                # passes that bring a failed server back
//! fall = 2                # soft failures (timeouts) that take it out; a refused connection is enough alone
//! hold_down_ms = 5000     # after a client module's failure report
//! interface = "acmt1"     # probe out of this interface only (default: the routing table's choice)
//! http_path = "/"
//! http_host = "www.example.com"   # default: the real server's address
//! http_status = ["200-399"]
//! [[health.service]]      # per virtual service
//! service = "10.0.0.100:80"
//! check = "l7"
//! http_path = "/healthz"
//! ```

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use acm::ServiceKey;
use appliance_config::{CheckKind, HealthSection, Invalid};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::beacon::wire::Target;
use crate::cm::Cm;
use crate::health::fsm::{Thresholds, Verdict};
use crate::health::probe::{parse_status_range, HttpCheck, Probe};
pub use crate::health::target::{matches_target, HealthImage};

/// Checker settings.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Default probe.
    pub probe: Probe,
    /// Per-service probes.
    pub per_service: HashMap<ServiceKey, Probe>,
    /// Time between rounds.
    pub interval: Duration,
    /// Probe timeout.
    pub timeout: Duration,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Probe out of this interface only (by name), e.g. the dataplane's tap to the servers.
    pub interface: Option<String>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            probe: Probe::Tcp,
            per_service: HashMap::new(),
            interval: Duration::from_millis(300),
            timeout: Duration::from_millis(250),
            thresholds: Thresholds::default(),
            interface: None,
        }
    }
}

/// The probe keys of `[health]` or of one `[[health.service]]`.
#[derive(Debug, Default, Clone)]
struct ProbeToml {
    check: Option<CheckKind>,
    http_path: Option<String>,
    http_host: Option<String>,
    http_status: Option<Vec<String>>,
}

impl ProbeToml {
    fn build(&self, base: &Probe) -> Result<Probe, Invalid> {
        let kind = self.check.unwrap_or(match base {
            Probe::Http(_) => CheckKind::L7,
            Probe::None => CheckKind::None,
            Probe::Arp => CheckKind::L2,
            Probe::Icmp => CheckKind::L3,
            Probe::Tcp => CheckKind::L4,
        });
        Ok(match kind {
            CheckKind::None => Probe::None,
            CheckKind::L2 => Probe::Arp,
            CheckKind::L3 => Probe::Icmp,
            CheckKind::L4 => Probe::Tcp,
            CheckKind::L7 => {
                let mut h = match base {
                    Probe::Http(h) => h.clone(),
                    _ => HttpCheck::default(),
                };
                if let Some(p) = &self.http_path {
                    if !p.starts_with('/') || p.contains(|c: char| c.is_whitespace() || c.is_control()) {
                        return Err(Invalid::new("http_path", format!("{p:?}: want an absolute path without spaces")));
                    }
                    h.path = p.clone();
                }
                if let Some(host) = &self.http_host {
                    h.host = Some(host.clone());
                }
                if let Some(st) = &self.http_status {
                    h.accept = st
                        .iter()
                        .map(|s| parse_status_range(s))
                        .collect::<Result<_, _>>()
                        .map_err(|e| Invalid::new("http_status", e))?;
                }
                Probe::Http(h)
            }
        })
    }
}

impl HealthConfig {
    /// From `[health]` (absent: defaults).
    pub fn from_section(h: Option<&HealthSection>) -> Result<HealthConfig, Invalid> {
        let d = HealthConfig::default();
        let Some(h) = h else { return Ok(d) };
        let within = |at: String| move |e: Invalid| Invalid::new(format!("{at}.{}", e.field), e.why);
        let top = ProbeToml {
            check: h.check,
            http_path: h.http_path.clone(),
            http_host: h.http_host.clone(),
            http_status: h.http_status.clone(),
        };
        let probe = top.build(&d.probe).map_err(within("health".into()))?;
        let mut per_service = HashMap::new();
        for (i, s) in h.service.iter().enumerate() {
            let at = format!("health.service[{i}]");
            let service: ServiceKey =
                s.service.parse().map_err(|e| Invalid::new(format!("{at}.service"), format!("{e}")))?;
            let p = ProbeToml {
                check: s.check,
                http_path: s.http_path.clone(),
                http_host: s.http_host.clone(),
                http_status: s.http_status.clone(),
            };
            per_service.insert(service, p.build(&probe).map_err(within(at))?);
        }
        let ms = |v: Option<u64>, d: Duration| v.map(Duration::from_millis).unwrap_or(d);
        Ok(HealthConfig {
            probe,
            per_service,
            interval: ms(h.interval_ms, d.interval).max(Duration::from_millis(10)),
            timeout: ms(h.timeout_ms, d.timeout).max(Duration::from_millis(1)),
            thresholds: Thresholds {
                rise: h.rise.unwrap_or(d.thresholds.rise).max(1),
                fall: h.fall.unwrap_or(d.thresholds.fall).max(1),
                hold_down: ms(h.hold_down_ms, d.thresholds.hold_down),
            },
            interface: h.interface.clone(),
        })
    }

    fn probe_for(&self, s: &ServiceKey) -> &Probe {
        self.per_service.get(s).unwrap_or(&self.probe)
    }
}

enum Msg {
    Report { target: Target, from: Ipv4Addr },
}

/// Sends failure reports to the running checker.
#[derive(Clone)]
pub struct HealthHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl HealthHandle {
    /// A client module at `from` says `target` failed.
    pub fn report(&self, target: Target, from: Ipv4Addr) {
        let _ = self.tx.send(Msg::Report { target, from });
    }
}

/// The prober: the core ([`crate::cm::core::CmCore`]) keeps the health state machines and moves
/// the bindings; this runs the probes and keeps the state region up to date.
struct Runner {
    cm: Cm,
    cfg: HealthConfig,
}

impl Runner {
    /// Saves the image when it changed (hold-downs count down on their own: not a change).
    fn save(&self, last: &mut Option<HealthImage>) {
        let Some(z) = crate::zlr::get() else { return };
        let mut img = self.cm.drive(|c, now| c.health_image(now));
        let key = |i: &HealthImage| {
            (
                i.failed_by_us.clone(),
                i.endpoints.iter().map(|(r, h, held)| (*r, *h, held.is_some())).collect::<Vec<_>>(),
            )
        };
        if last.as_ref().is_some_and(|l| key(l) == key(&img)) {
            return;
        }
        if let Err(e) = serde_json::to_vec(&img).map_err(|e| e.to_string()).and_then(|b| {
            crate::zlr::blob::write(z.region(), crate::zlr::blob::BLOB_HEALTH, &b).map_err(|e| e.to_string())
        }) {
            tracing::error!("state region: health state not saved: {e}");
        }
        img.endpoints.iter_mut().for_each(|e| e.2 = e.2.map(|_| 1));
        *last = Some(img);
    }
}

/// Starts the checker on the current tokio runtime. Under restartd, a restarted generation
/// takes over the previous one's health state ([`HealthImage`]).
pub fn spawn(cm: Cm, cfg: HealthConfig) -> (HealthHandle, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let thresholds = cfg.thresholds;
    cm.drive(|c, _| c.enable_health(thresholds));
    let r = Runner { cm, cfg };
    if let Some(z) = crate::zlr::get().filter(|z| z.start() == crate::zlr::Start::Recover) {
        match crate::zlr::blob::read(z.region(), crate::zlr::blob::BLOB_HEALTH) {
            Ok(Some(b)) => match serde_json::from_slice::<HealthImage>(&b) {
                Ok(img) => {
                    tracing::info!(
                        "health: took over {} endpoint(s) and {} binding(s) failed by health checks",
                        img.endpoints.len(),
                        img.failed_by_us.len()
                    );
                    r.cm.drive(|c, now| c.restore_health(img, now));
                }
                Err(e) => tracing::error!("state region: kept health state does not decode ({e}); starting fresh"),
            },
            Ok(None) => {}
            Err(e) => tracing::error!("state region: kept health state unusable ({e}); starting fresh"),
        }
    }
    let task = tokio::spawn(async move {
        let mut last = None;
        let mut tick = tokio::time::interval(r.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => r.round().await,
                m = rx.recv() => match m {
                    Some(Msg::Report { target, from }) => r.cm.drive(|c, now| c.handle_health_report(&target, from, now)),
                    None => return,
                },
            }
            r.save(&mut last);
        }
    });
    (HealthHandle { tx }, task)
}

impl Runner {
    async fn round(&self) {
        let targets = self.cm.drive(|c, _| c.health_targets());
        let mut probes = tokio::task::JoinSet::new();
        for (real, service) in targets {
            let probe = self.cfg.probe_for(&service).clone();
            let timeout = self.cfg.timeout;
            let iface = self.cfg.interface.clone();
            probes.spawn(async move { (real, probe.run(real, timeout, iface.as_deref()).await) });
        }
        let started = Instant::now();
        let mut results = Vec::new();
        while let Some(done) = probes.join_next().await {
            if let Ok(r) = done {
                results.push(r);
            }
        }
        // Timeouts of every endpoint at once, or a round far longer than its timeout, say this
        // process was starved (or its own link is down), not that the servers are: such soft
        // failures do not count. Hard answers (refused, unreachable) always count.
        let stalled = started.elapsed() > 2 * self.cfg.timeout + Duration::from_millis(100);
        let all_soft = results.len() >= 2 && results.iter().all(|(_, v)| matches!(v, Verdict::Soft(_)));
        if stalled || all_soft {
            let n = results.iter().filter(|(_, v)| matches!(v, Verdict::Soft(_))).count();
            tracing::warn!(
                "health round took {:?}, {n} of {} probes inconclusive: ignoring them (local stall?)",
                started.elapsed(),
                results.len()
            );
            results.retain(|(_, v)| !matches!(v, Verdict::Soft(_)));
        }
        self.cm.drive(|c, now| c.handle_probe_results(&results, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acm::BindingKey;

    fn section(text: &str) -> HealthSection {
        let a = appliance_config::Appliance::parse(&format!("[health]\n{text}"), std::path::Path::new("t")).unwrap();
        a.health.unwrap()
    }

    #[test]
    fn config_from_the_section() {
        let h = section(
            r#"
            check = "l7"
            interval_ms = 100
            rise = 3
            http_path = "/health"
            http_status = ["200", "204-206"]
            [[health.service]]
            service = "10.0.0.100:53/udp"
            check = "l3"
            [[health.service]]
            service = "10.0.0.100:8080"
            http_host = "example"
            "#,
        );
        let c = HealthConfig::from_section(Some(&h)).unwrap();
        assert_eq!(c.interval, Duration::from_millis(100));
        assert_eq!(c.thresholds.rise, 3);
        let Probe::Http(h) = &c.probe else { panic!("{:?}", c.probe) };
        assert_eq!((h.path.as_str(), h.accept.as_slice()), ("/health", &[(200, 200), (204, 206)][..]));
        assert_eq!(c.probe_for(&"10.0.0.100:53/udp".parse().unwrap()), &Probe::Icmp);
        let Probe::Http(h2) = c.probe_for(&"10.0.0.100:8080".parse().unwrap()) else { panic!() };
        assert_eq!((h2.path.as_str(), h2.host.as_deref()), ("/health", Some("example")));
        assert_eq!(HealthConfig::from_section(None).unwrap().probe, Probe::Tcp);
        for (bad, field) in [
            ("http_path = \"x y\"\ncheck = \"l7\"", "health.http_path"),
            ("http_status = [\"600\"]\ncheck=\"l7\"", "health.http_status"),
            ("[[health.service]]\nservice = \"10.0.0.100\"", "health.service[0].service"),
            (
                "[[health.service]]\nservice = \"10.0.0.1:80\"\ncheck = \"l7\"\nhttp_path = \"a\"",
                "health.service[0].http_path",
            ),
        ] {
            assert_eq!(HealthConfig::from_section(Some(&section(bad))).unwrap_err().field, field, "{bad}");
        }
    }

    #[test]
    fn report_targets() {
        let k: BindingKey =
            BindingKey { service: "10.0.0.100:80".parse().unwrap(), real: "10.0.1.11:8080".parse().unwrap() };
        let t = |real: &str, svc: Option<&str>| Target {
            real: real.parse().unwrap(),
            service: svc.map(|s| s.parse().unwrap()),
        };
        assert!(matches_target(&t("10.0.1.11:8080", None), &k));
        assert!(matches_target(&t("10.0.1.11:0", None), &k));
        assert!(matches_target(&t("10.0.1.11:8080", Some("10.0.0.100:80")), &k));
        assert!(!matches_target(&t("10.0.1.11:8080", Some("10.0.0.100:81")), &k));
        assert!(!matches_target(&t("10.0.1.12:8080", None), &k));
        assert!(!matches_target(&t("10.0.1.11:80", None), &k));
    }
}
