//! acm-agent: the CM client module as a sidecar, for services in any language.
//!
//! ```text
//! acm-agent run --key-file /etc/acm/beacon.key --profile local \
//!     --bind 10.0.0.100:80=80 [--bind 10.0.0.100:443=443,weight=2,snat] \
//!     [--to 239.255.77.77:8790 | --to 10.0.1.1:8790] [--interval 10s] [--server-ip 10.0.1.11] \
//!     [--check tcp | --check http:/healthz] [--check-interval 500ms] [-- COMMAND ARGS...]
//! acm-agent report --key-file F --profile local --real 10.0.1.12:80 [--service 10.0.0.100:80]
//! ```
//!
//! `run` registers the bindings (real server = this server's address and the given port),
//! beacons them every interval and, on SIGTERM / SIGINT, sends Remove (the switch drains the
//! server) and exits. With `--check`, it checks the local service every `--check-interval` and
//! flags its bindings down the moment the check fails (the CM takes them out at once), up when
//! it passes again. With a COMMAND, the agent runs the service itself: when it exits, the
//! bindings are removed and the agent exits with its status.
//!
//! `report` is application-assisted failure detection from a script: the CM takes the real
//! server out at once.
#![deny(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use acm::{BindingKey, BindingParams, RealServer, ServiceKey};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use controlplane::beacon::{DEFAULT_GROUP, DEFAULT_PORT, DEFAULT_PROFILE};
use controlplane::client::{parse_duration, ClientConfig, CmClient};
use controlplane::health::fsm::{Checker, Health, Thresholds, Verdict};
use controlplane::health::probe::{HttpCheck, Probe};

#[derive(Parser)]
#[command(version, about = "ACM client module sidecar: registers a service's bindings with the Connection Manager")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Register bindings, beacon them, remove them on exit.
    Run(RunArgs),
    /// Report a real server as failed.
    Report(ReportArgs),
}

#[derive(Args)]
struct Common {
    /// Switch profile whose key signs the datagrams.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// The profile's key (prefer --key-file or ACM_BEACON_KEY).
    #[arg(long, env = "ACM_BEACON_KEY", hide_env_values = true)]
    key: Option<String>,
    /// File holding the profile's key.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Where datagrams go (multicast group or CM address), repeatable.
    #[arg(long = "to")]
    to: Vec<SocketAddrV4>,
    /// This server's address (default: the source address towards the first --to).
    #[arg(long)]
    server_ip: Option<Ipv4Addr>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// VIP:PORT[/udp]=REALPORT[,weight=N][,snat], repeatable.
    #[arg(long = "bind", required = true)]
    bind: Vec<String>,
    /// Beacon interval (e.g. 10s, 500ms; at least 100ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    interval: Duration,
    /// Local check of the service: tcp, or http[:PATH].
    #[arg(long)]
    check: Option<String>,
    /// Time between local checks.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    check_interval: Duration,
    /// The service to run (after --).
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    common: Common,
    /// The failed real server, IP:PORT (port 0: every port).
    #[arg(long)]
    real: RealServer,
    /// Only for this virtual service.
    #[arg(long)]
    service: Option<ServiceKey>,
}

impl Common {
    fn config(&self) -> Result<ClientConfig> {
        let key = match (&self.key, &self.key_file) {
            (Some(k), None) => k.clone().into_bytes(),
            (None, Some(f)) => {
                std::fs::read(f).with_context(|| format!("key file {}", f.display()))?.trim_ascii().to_vec()
            }
            (Some(_), Some(_)) => bail!("give --key or --key-file, not both"),
            (None, None) => bail!("no key: give --key-file, --key or ACM_BEACON_KEY"),
        };
        if key.is_empty() {
            bail!("the key is empty");
        }
        let mut cfg = ClientConfig::new(key);
        cfg.profile = self.profile.clone();
        if !self.to.is_empty() {
            cfg.destinations = self.to.clone();
        } else {
            cfg.destinations = vec![SocketAddrV4::new(DEFAULT_GROUP, DEFAULT_PORT)];
        }
        if let Some(ip) = self.server_ip {
            cfg.server_addr = ip;
        }
        Ok(cfg)
    }
}

/// `VIP:PORT[/udp]=REALPORT[,weight=N][,snat]` → service, real port, params.
fn parse_bind(s: &str) -> Result<(ServiceKey, u16, BindingParams)> {
    let (svc, rest) = s.split_once('=').with_context(|| format!("--bind {s:?}: want VIP:PORT=REALPORT"))?;
    let service: ServiceKey = svc.parse().with_context(|| format!("--bind {s:?}"))?;
    let mut parts = rest.split(',');
    let rport: u16 = parts.next().unwrap_or("").parse().with_context(|| format!("--bind {s:?}: real port"))?;
    let mut params = BindingParams::default();
    for p in parts {
        match p.split_once('=') {
            Some(("weight", w)) => params.weight = w.parse().with_context(|| format!("--bind {s:?}: weight"))?,
            None if p == "snat" => params.source_nat = true,
            _ => bail!("--bind {s:?}: unknown option {p:?} (weight=N, snat)"),
        }
    }
    params.validate().with_context(|| format!("--bind {s:?}"))?;
    Ok((service, rport, params))
}

fn parse_check(s: &str) -> Result<Probe> {
    match s.split_once(':') {
        None if s == "tcp" => Ok(Probe::Tcp),
        None if s == "http" => Ok(Probe::Http(HttpCheck::default())),
        Some(("http", path)) if path.starts_with('/') => {
            Ok(Probe::Http(HttpCheck { path: path.into(), ..HttpCheck::default() }))
        }
        _ => bail!("--check {s:?}: want tcp, http or http:/PATH"),
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    match cli.cmd {
        Cmd::Report(a) => {
            let client = CmClient::start(a.common.config()?)?;
            client.report_failed(a.real, a.service)?;
            tracing::info!(real = %a.real, "failure report sent");
            // No bindings of our own: shutdown sends nothing.
            client.shutdown()?;
            Ok(())
        }
        Cmd::Run(a) => rt.block_on(run(a)),
    }
}

async fn run(a: RunArgs) -> Result<()> {
    let binds = a.bind.iter().map(|b| parse_bind(b)).collect::<Result<Vec<_>>>()?;
    let check = a.check.as_deref().map(parse_check).transpose()?;
    let mut cfg = a.common.config()?;
    cfg.interval = a.interval;
    let client = CmClient::start(cfg)?;
    let ip = client.server_addr();
    let keys: Vec<BindingKey> = binds
        .iter()
        .map(|(service, rport, _)| BindingKey { service: *service, real: RealServer { rip: ip, rport: *rport } })
        .collect();
    let mut child = match a.command.split_first() {
        Some((prog, args)) => {
            let c = tokio::process::Command::new(prog)
                .args(args)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {prog}"))?;
            tracing::info!(pid = c.id(), "service {prog} started");
            Some(c)
        }
        None => None,
    };
    // With a local check, bindings are announced down until the first check passes.
    for (k, (_, _, params)) in keys.iter().zip(&binds) {
        client.add_with_state(*k, *params, check.is_none())?;
        tracing::info!(binding = %k, "registered");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(a.check_interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkers: Vec<Checker> =
        keys.iter().map(|_| Checker::new(Thresholds { rise: 1, fall: 2, hold_down: Duration::ZERO })).collect();
    let clock = controlplane::time::Clock::new();
    let timeout = a.check_interval.clamp(Duration::from_millis(50), Duration::from_secs(2));
    let status = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break None,
            _ = term.recv() => break None,
            st = async { child.as_mut().expect("guarded").wait().await }, if child.is_some() => {
                let st = st.context("waiting for the service")?;
                tracing::warn!("service exited: {st}");
                break Some(st);
            }
            _ = tick.tick(), if check.is_some() => {
                let probe = check.as_ref().expect("guarded");
                for (k, c) in keys.iter().zip(checkers.iter_mut()) {
                    let v = probe.run(k.real, timeout, None).await;
                    if let Some(h) = c.on_result(clock.now(), &v) {
                        let up = h == Health::Up;
                        match &v {
                            Verdict::Pass => tracing::info!(binding = %k, "local check passed: up"),
                            Verdict::Soft(w) | Verdict::Hard(w) => tracing::warn!(binding = %k, "local check failed: {w}: down"),
                        }
                        client.set_up(*k, up)?;
                    }
                }
            }
        }
    };
    tracing::info!("removing {} binding(s)", keys.len());
    client.shutdown()?;
    if let Some(mut c) = child {
        if status.is_none() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
    match status.and_then(|s| s.code()) {
        Some(0) | None => Ok(()),
        // The agent wraps a service: it exits with the service's own code.
        #[allow(clippy::exit, reason = "a wrapper's exit status is the wrapped service's")]
        Some(code) => std::process::exit(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_specs() {
        let (s, p, params) = parse_bind("10.0.0.100:80=8080,weight=3,snat").unwrap();
        assert_eq!((s.to_string().as_str(), p, params.weight, params.source_nat), ("10.0.0.100:80/tcp", 8080, 3, true));
        assert!(parse_bind("10.0.0.100:80").is_err());
        assert!(parse_bind("10.0.0.100:80=x").is_err());
        assert!(parse_bind("10.0.0.100:80=80,weight=70000").is_err());
        assert!(parse_bind("10.0.0.100:80=80,bogus").is_err());
        assert_eq!(
            parse_check("http:/hz").unwrap(),
            Probe::Http(HttpCheck { path: "/hz".into(), ..HttpCheck::default() })
        );
        assert!(parse_check("icmp").is_err());
    }
}
