//! The controlplane: the Connection Manager on the appliance's management core.
//!
//! ```text
//! controlplane --config /etc/acm/controlplane.toml [--pid-file FILE]
//! ```
//!
//! Loads the config, starts one thread per switch profile, replays the startup-config through
//! the CM, then serves the local API (`acmctl`) and telnet (the ServerIron CLI) and syncs the
//! switches periodically. SIGINT / SIGTERM stop it. Pin it to the management core with
//! `taskset` (the lab does).
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use controlplane::api::server::{self as api_server, ApiServer};
use controlplane::cm::fake::FakeSwitch;
use controlplane::cm::switch::SwitchDriver;
use controlplane::cm::{Cm, SwitchSpec};
use controlplane::config::{Config, DriverKind};
use controlplane::drivers::dataplane::DataplaneDriver;
use controlplane::drivers::serveriron::ServerIronDriver;
use controlplane::telnet::{self, CliShared};

#[derive(Parser)]
#[command(version, about = "ACM Connection Manager: binding cache, switch drivers, telnet CLI, local API")]
struct Args {
    /// Config file (TOML).
    #[arg(short, long, env = "ACM_CONTROLPLANE_CONFIG")]
    config: PathBuf,
    /// Write the process id here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cfg = Config::load(&args.config)?;
    if let Some(p) = &args.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id())).with_context(|| format!("writing {}", p.display()))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cm")
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run(cfg))
}

fn driver(p: &controlplane::config::SwitchProfile) -> Box<dyn SwitchDriver> {
    match p.driver {
        DriverKind::Dataplane => Box::new(DataplaneDriver::new(p.socket.clone().expect("checked by Config"))),
        DriverKind::ServerironTelnet => Box::new(ServerIronDriver::from_profile(p)),
        DriverKind::Fake => Box::new(FakeSwitch::new()),
    }
}

async fn run(cfg: Config) -> Result<()> {
    if cfg.switches.is_empty() {
        bail!("no [[switch]] profile in the config: the CM has nothing to manage");
    }
    let switches = cfg
        .switches
        .iter()
        .map(|p| SwitchSpec { name: p.name.clone(), vips: p.vip_filter(), driver: driver(p) })
        .collect();
    let cm = Cm::new(cfg.cm_options(), switches);
    for (name, desc, _) in cm.switches() {
        tracing::info!("switch {name}: {desc}");
    }
    let shared = CliShared::new(cm.clone(), cfg.startup_config.clone());

    // The startup-config first, through the same primitives as typed commands.
    let sh = shared.clone();
    let errors = tokio::task::spawn_blocking(move || sh.replay_startup()).await?;
    for e in &errors {
        tracing::warn!("{e}");
    }
    if let Some(p) = &cfg.startup_config {
        tracing::info!("startup-config {} replayed: {} binding(s) in the cache", p.display(), cm.list().len());
    }
    cm.spawn_sync();
    // Beacon listener, health checker and election, each with a clone of `cm` (no table: off).
    let _services = (cfg.beacon.is_some() || cfg.health.is_some() || cfg.election.is_some())
        .then(|| {
            let (b, h, e) = (cfg.beacon.as_ref(), cfg.health.as_ref(), cfg.election.as_ref());
            controlplane::beacon::service::spawn_from_tables(&cm, b, h, e)
        })
        .transpose()
        .context("beacon / health / election")?;

    let api = api_server::bind(&cfg.api.socket).with_context(|| format!("API socket {}", cfg.api.socket.display()))?;
    tracing::info!("API on {}", cfg.api.socket.display());
    tokio::spawn(ApiServer::new(shared.clone()).serve(api));

    let creds = cfg.credentials()?;
    let mut settings = cli::ServerSettings::new(creds);
    settings.idle_timeout = (cfg.telnet.idle_timeout_s > 0).then(|| Duration::from_secs(cfg.telnet.idle_timeout_s));
    let listener = tokio::net::TcpListener::bind(cfg.telnet.listen)
        .await
        .with_context(|| format!("telnet listen address {}", cfg.telnet.listen))?;
    tracing::info!("telnet on {}", cfg.telnet.listen);
    // Port 23 on the appliance's port addresses (exception path), and any other listener.
    for l in &cfg.telnet.extra {
        controlplane::telnet_listen::spawn(l.clone(), shared.clone(), settings.clone(), cfg.telnet.max_sessions);
    }
    tokio::spawn(telnet::serve(listener, shared.clone(), settings, cfg.telnet.max_sessions));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    let _ = std::fs::remove_file(&cfg.api.socket);
    Ok(())
}
