//! Rolling restart with 100% availability (the paper's §4.3): for each real server of a
//! virtual service in turn —
//!
//! 1. Remove (drain): no new flows go to it, existing flows finish;
//! 2. wait until its flows reached 0 (the switch let the binding go), or Force Remove after the
//!    drain timeout;
//! 3. run the command (`{server}` → its address, `{port}` → its port);
//! 4. wait until it is healthy (a TCP connect to the real port answers);
//! 5. Add it back and wait until the CM lists it Active; then the next one.
//!
//! The procedure is written against [`RollingOps`] so that it runs in tests on virtual time
//! (against the real CM core in the simulation, [`crate::sim`]); [`ApiOps`] is the real thing over the controlplane's API (`acmctl
//! rolling-restart --vip VIP:PORT --each 'COMMAND {server}'`).

use std::net::SocketAddrV4;
use std::time::Duration;

use acm::{BindingInfo, BindingKey, BindingState, Primitive, RealServer, ServiceKey};

use crate::api::client::Client;
use crate::time::{Clock, Time};

/// What the procedure needs from the world.
pub trait RollingOps {
    /// The CM's bindings.
    fn list(&mut self) -> Result<Vec<BindingInfo>, String>;
    /// Runs a primitive through the CM.
    fn primitive(&mut self, p: Primitive) -> Result<(), String>;
    /// Runs the per-server command; `Err` when it fails.
    fn run(&mut self, command: &str) -> Result<(), String>;
    /// Does the real server answer?
    fn healthy(&mut self, real: RealServer) -> bool;
    /// Waits.
    fn sleep(&mut self, d: Duration);
    /// The clock.
    fn now(&mut self) -> Time;
}

/// The settings of one rolling restart.
#[derive(Debug, Clone)]
pub struct RollingPlan {
    /// The virtual service whose real servers restart.
    pub service: ServiceKey,
    /// Command template (`{server}`, `{port}`).
    pub command: String,
    /// Longest wait for a drain before Force Remove.
    pub drain_timeout: Duration,
    /// Longest wait for a restarted server to answer, and then to be Active.
    pub health_timeout: Duration,
    /// Poll period.
    pub poll: Duration,
}

impl RollingPlan {
    /// Defaults: 60 s drain, 60 s health, 100 ms polls.
    pub fn new(service: ServiceKey, command: impl Into<String>) -> RollingPlan {
        RollingPlan {
            service,
            command: command.into(),
            drain_timeout: Duration::from_secs(60),
            health_timeout: Duration::from_secs(60),
            poll: Duration::from_millis(100),
        }
    }
}

/// What happened to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The binding.
    pub key: BindingKey,
    /// Remove to drained.
    pub drain: Duration,
    /// The drain timed out: Force Remove.
    pub forced: bool,
    /// The command's run time.
    pub command: Duration,
    /// Command end to Active again.
    pub back: Duration,
}

/// Why a rolling restart stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollingError {
    /// The service has no binding.
    #[error("no real server is bound to {0}")]
    NoBindings(ServiceKey),
    /// Talking to the CM failed.
    #[error("{key}: {what}: {why}")]
    Cm {
        /// The binding.
        key: BindingKey,
        /// Which step.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// The command failed (the server stays removed).
    #[error("{key}: command `{command}` failed: {why} (the server stays out of the service)")]
    Command {
        /// The binding.
        key: BindingKey,
        /// The command line.
        command: String,
        /// Why.
        why: String,
    },
    /// The server did not answer, or did not become Active, in time (it stays removed).
    #[error("{key}: not healthy {waited:?} after the restart (the server stays out of the service)")]
    Unhealthy {
        /// The binding.
        key: BindingKey,
        /// How long we waited.
        waited: Duration,
    },
}

/// The command for one server.
pub fn command_for(template: &str, real: RealServer) -> String {
    template.replace("{server}", &real.rip.to_string()).replace("{port}", &real.rport.to_string())
}

/// Restarts every real server of `plan.service`, one at a time; `log` gets one line per step.
pub fn rolling_restart(
    ops: &mut impl RollingOps,
    plan: &RollingPlan,
    mut log: impl FnMut(&str),
) -> Result<Vec<StepReport>, RollingError> {
    let cm_err = |key, what| move |why: String| RollingError::Cm { key, what, why };
    let initial = ops.list().map_err(cm_err(
        BindingKey { service: plan.service, real: RealServer { rip: [0, 0, 0, 0].into(), rport: 0 } },
        "list",
    ))?;
    let bindings: Vec<BindingInfo> = initial.into_iter().filter(|b| b.key.service == plan.service).collect();
    if bindings.is_empty() {
        return Err(RollingError::NoBindings(plan.service));
    }
    let active = bindings.iter().filter(|b| b.state == BindingState::Active).count();
    if active < 2 {
        log(&format!("warning: {active} active real server(s): the service is unavailable while one restarts"));
    }
    let mut reports = Vec::new();
    for b in bindings {
        let key = b.key;
        log(&format!("{}: remove (drain)", key.real));
        let t0 = ops.now();
        ops.primitive(Primitive::Remove { key }).map_err(cm_err(key, "remove"))?;
        let mut forced = false;
        loop {
            let list = ops.list().map_err(cm_err(key, "list"))?;
            if !list.iter().any(|x| x.key == key && x.state == BindingState::Draining) {
                break;
            }
            if ops.now().duration_since(t0) >= plan.drain_timeout {
                log(&format!("{}: drain timed out after {:?}: force remove", key.real, plan.drain_timeout));
                ops.primitive(Primitive::ForceRemove { key }).map_err(cm_err(key, "force remove"))?;
                forced = true;
                break;
            }
            ops.sleep(plan.poll);
        }
        let drain = ops.now().duration_since(t0);
        log(&format!("{}: drained in {:.1} s", key.real, drain.as_secs_f64()));
        let command = command_for(&plan.command, key.real);
        log(&format!("{}: run `{command}`", key.real));
        let t1 = ops.now();
        ops.run(&command).map_err(|why| RollingError::Command { key, command: command.clone(), why })?;
        let ran = ops.now().duration_since(t1);
        let t2 = ops.now();
        while !ops.healthy(key.real) {
            if ops.now().duration_since(t2) >= plan.health_timeout {
                return Err(RollingError::Unhealthy { key, waited: plan.health_timeout });
            }
            ops.sleep(plan.poll);
        }
        log(&format!("{}: healthy: add", key.real));
        ops.primitive(Primitive::Add { key, params: b.params }).map_err(cm_err(key, "add"))?;
        loop {
            let list = ops.list().map_err(cm_err(key, "list"))?;
            if list.iter().any(|x| x.key == key && x.state == BindingState::Active) {
                break;
            }
            if ops.now().duration_since(t2) >= plan.health_timeout {
                return Err(RollingError::Unhealthy { key, waited: plan.health_timeout });
            }
            ops.sleep(plan.poll);
        }
        let back = ops.now().duration_since(t2);
        log(&format!("{}: active again ({:.1} s after the command)", key.real, back.as_secs_f64()));
        reports.push(StepReport { key, drain, forced, command: ran, back });
    }
    Ok(reports)
}

/// [`RollingOps`] over the controlplane API; commands run with `sh -c`.
pub struct ApiOps<'a> {
    /// The API connection.
    pub client: &'a mut Client,
    /// Connect timeout of the health probe.
    pub probe_timeout: Duration,
    /// Probe out of this interface only (by name).
    pub probe_interface: Option<String>,
}

impl RollingOps for ApiOps<'_> {
    fn list(&mut self) -> Result<Vec<BindingInfo>, String> {
        self.client.list().map_err(|e| e.to_string())
    }
    fn primitive(&mut self, p: Primitive) -> Result<(), String> {
        self.client.primitive(p).map(drop).map_err(|e| e.to_string())
    }
    fn run(&mut self, command: &str) -> Result<(), String> {
        let st = std::process::Command::new("sh").args(["-c", command]).status().map_err(|e| e.to_string())?;
        if st.success() {
            Ok(())
        } else {
            Err(st.to_string())
        }
    }
    fn healthy(&mut self, real: RealServer) -> bool {
        use socket2::{Domain, Socket, Type};
        let Ok(s) = Socket::new(Domain::IPV4, Type::STREAM, None) else { return false };
        if let Some(i) = &self.probe_interface {
            if s.bind_device(Some(i.as_bytes())).is_err() {
                return false;
            }
        }
        s.connect_timeout(&SocketAddrV4::new(real.rip, real.rport).into(), self.probe_timeout).is_ok()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d)
    }
    fn now(&mut self) -> Time {
        static CLOCK: std::sync::OnceLock<Clock> = std::sync::OnceLock::new();
        CLOCK.get_or_init(Clock::new).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acm::{BindingCounters, BindingParams};

    /// A fake CM + switch + servers on a fake clock (the real CM core on virtual time is in
    /// [`crate::sim`]'s tests): drains take `drain_for`, restarts take
    /// `boot_for` of fake time; Add makes a binding Testing, Active one poll later.
    struct World {
        now: Time,
        bindings: Vec<BindingInfo>,
        drain_left: Option<(BindingKey, Duration)>,
        down_until: Option<(RealServer, Time)>,
        drain_for: Duration,
        boot_for: Duration,
        ran: Vec<String>,
        ops: Vec<String>,
        fail_command: bool,
    }

    impl World {
        fn new(n: u8) -> World {
            let bindings = (1..=n)
                .map(|i| BindingInfo {
                    key: BindingKey {
                        service: "10.0.0.100:80".parse().unwrap(),
                        real: format!("10.0.1.{}:80", 10 + i).parse().unwrap(),
                    },
                    params: BindingParams { weight: i as u32, source_nat: false },
                    state: BindingState::Active,
                    counters: BindingCounters::default(),
                })
                .collect();
            World {
                now: Time::ZERO,
                bindings,
                drain_left: None,
                down_until: None,
                drain_for: Duration::from_secs(2),
                boot_for: Duration::from_secs(3),
                ran: vec![],
                ops: vec![],
                fail_command: false,
            }
        }
    }

    impl RollingOps for World {
        fn list(&mut self) -> Result<Vec<BindingInfo>, String> {
            Ok(self.bindings.clone())
        }
        fn primitive(&mut self, p: Primitive) -> Result<(), String> {
            self.ops.push(format!(
                "{} {}",
                p.name(),
                match &p {
                    Primitive::Add { key, .. } | Primitive::Remove { key } | Primitive::ForceRemove { key } =>
                        key.real.to_string(),
                    _ => String::new(),
                }
            ));
            match p {
                Primitive::Remove { key } => {
                    self.bindings.iter_mut().filter(|b| b.key == key).for_each(|b| b.state = BindingState::Draining);
                    self.drain_left = Some((key, self.drain_for));
                }
                Primitive::ForceRemove { key } => self.bindings.retain(|b| b.key != key),
                Primitive::Add { key, params } => {
                    // Health-gated: Testing now, Active at the next poll.
                    self.bindings.push(BindingInfo {
                        key,
                        params,
                        state: BindingState::Testing,
                        counters: BindingCounters::default(),
                    })
                }
                _ => {}
            }
            Ok(())
        }
        fn run(&mut self, command: &str) -> Result<(), String> {
            self.ran.push(command.to_string());
            if self.fail_command {
                return Err("exit status: 1".into());
            }
            let real: RealServer = format!("{}:80", command.rsplit(' ').next().unwrap()).parse().unwrap();
            self.down_until = Some((real, self.now + self.boot_for));
            Ok(())
        }
        fn healthy(&mut self, real: RealServer) -> bool {
            self.down_until.is_none_or(|(r, t)| r != real || self.now >= t)
        }
        fn sleep(&mut self, d: Duration) {
            self.now += d;
            if let Some((key, left)) = self.drain_left {
                let left = left.saturating_sub(d);
                self.drain_left = Some((key, left));
                if left.is_zero() {
                    self.bindings.retain(|b| b.key != key);
                    self.drain_left = None;
                }
            }
            self.bindings
                .iter_mut()
                .filter(|b| b.state == BindingState::Testing)
                .for_each(|b| b.state = BindingState::Active);
        }
        fn now(&mut self) -> Time {
            self.now
        }
    }

    #[test]
    fn each_server_drains_restarts_and_comes_back_in_turn() {
        let mut w = World::new(3);
        let plan = RollingPlan::new("10.0.0.100:80".parse().unwrap(), "reboot {server}");
        let mut lines = vec![];
        let r = rolling_restart(&mut w, &plan, |l| lines.push(l.to_string())).unwrap();
        assert_eq!(w.ran, vec!["reboot 10.0.1.11", "reboot 10.0.1.12", "reboot 10.0.1.13"]);
        assert_eq!(
            w.ops,
            vec![
                "remove 10.0.1.11:80",
                "add 10.0.1.11:80",
                "remove 10.0.1.12:80",
                "add 10.0.1.12:80",
                "remove 10.0.1.13:80",
                "add 10.0.1.13:80"
            ]
        );
        assert!(r.iter().all(|s| !s.forced && s.drain == Duration::from_secs(2)));
        assert!(r.iter().all(|s| s.back >= Duration::from_secs(3)));
        // Every binding is back, Active, with its weight.
        assert_eq!(w.bindings.len(), 3);
        assert!(w
            .bindings
            .iter()
            .all(|b| b.state == BindingState::Active && b.params.weight == u32::from(b.key.real.rip.octets()[3]) - 10));
        assert!(lines.iter().any(|l| l.contains("drained in 2.0 s")), "{lines:?}");
    }

    #[test]
    fn a_drain_that_never_ends_is_forced() {
        let mut w = World::new(2);
        w.drain_for = Duration::from_secs(1000);
        let mut plan = RollingPlan::new("10.0.0.100:80".parse().unwrap(), "reboot {server}");
        plan.drain_timeout = Duration::from_secs(5);
        let r = rolling_restart(&mut w, &plan, |_| {}).unwrap();
        assert!(r.iter().all(|s| s.forced && s.drain >= Duration::from_secs(5) && s.drain < Duration::from_secs(6)));
        assert_eq!(w.ops[1], "force-remove 10.0.1.11:80");
    }

    #[test]
    fn failures_stop_the_roll_with_the_server_out() {
        let mut w = World::new(2);
        w.fail_command = true;
        let plan = RollingPlan::new("10.0.0.100:80".parse().unwrap(), "reboot {server}");
        let e = rolling_restart(&mut w, &plan, |_| {}).unwrap_err();
        assert!(matches!(e, RollingError::Command { .. }), "{e}");
        assert_eq!(w.ran.len(), 1, "stopped at the first failure");
        let mut w = World::new(2);
        w.boot_for = Duration::from_secs(100);
        let mut plan = RollingPlan::new("10.0.0.100:80".parse().unwrap(), "reboot {server}");
        plan.health_timeout = Duration::from_secs(10);
        assert!(matches!(rolling_restart(&mut w, &plan, |_| {}), Err(RollingError::Unhealthy { .. })));
        let mut w = World::new(0);
        assert_eq!(rolling_restart(&mut w, &plan, |_| {}), Err(RollingError::NoBindings(plan.service)));
    }

    #[test]
    fn command_templates() {
        assert_eq!(
            command_for("ssh {server} restart; echo {port}", "10.0.1.12:8080".parse().unwrap()),
            "ssh 10.0.1.12 restart; echo 8080"
        );
    }
}
