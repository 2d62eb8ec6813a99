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
//!
//! Under `restartd` (`restartd -- controlplane --config …`) it survives its own crashes: its
//! sockets and sessions are kept channels and its cache and running-config live in a state
//! region (see the `zlr` module).
#![deny(unsafe_code)]

use std::os::fd::AsFd;
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
use controlplane::zlr::bindings::Persister;
use controlplane::zlr::layout::{Global, T_CACHE_GEN};
use controlplane::zlr::{self, blob, Start, Zlr};

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
    // `restartctl upgrade NEW_BINARY` asks the new binary for its state layout first.
    restart::service::answer_layout_query(&restart::proto::LayoutInfo {
        name: zlr::layout::LAYOUT_NAME.into(),
        version: zlr::layout::LAYOUT_VERSION,
    });
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let started = std::time::Instant::now();
    let args = Args::parse();
    // Every config error stops it here, before anything starts.
    let cfg = Config::load(&args.config)?;
    if cfg.file.switches.is_empty() {
        bail!("{}: no [[switch]] profile: the CM has nothing to manage", args.config.display());
    }
    // Under restartd: reginfo, kept channels and the state region, before anything else.
    let sessions = u32::try_from(cfg.file.telnet.max_sessions).unwrap_or(u32::MAX).min(1024);
    let z = Zlr::init(&zlr::region_name(&cfg.file.api.socket), sessions).context("zero-loss restart setup")?;
    if let Some(p) = &args.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id())).with_context(|| format!("writing {}", p.display()))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cm")
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run(cfg, z, started))
}

fn driver(p: &controlplane::config::SwitchProfile) -> Box<dyn SwitchDriver> {
    match p.driver {
        DriverKind::Dataplane => Box::new(DataplaneDriver::new(p.socket.clone().expect("checked by Config"))),
        DriverKind::ServerironTelnet => Box::new(ServerIronDriver::from_profile(p)),
        DriverKind::Fake => Box::new(FakeSwitch::new()),
    }
}

/// Takes over the previous generation's cache and running-config; `None` when they are not
/// usable (then the caller cold-starts).
fn recover_state(z: &Zlr, cm: &Cm, shared: &CliShared) -> Option<Persister> {
    let (persister, mut cache) = match Persister::load(z.region()) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("STATE REGION: binding cache unusable ({e}); cold start");
            return None;
        }
    };
    let config = match blob::read(z.region(), blob::BLOB_CONFIG) {
        Ok(b) => String::from_utf8(b.unwrap_or_default()).unwrap_or_default(),
        Err(e) => {
            tracing::error!("STATE REGION: running-config unusable ({e}); cold start");
            return None;
        }
    };
    if let Ok(Some(g)) = z.region().read::<Global>(T_CACHE_GEN, 0) {
        cache.generation = g.next_id;
    }
    let n = cache.bindings.len();
    cm.restore_cache(cache);
    for e in shared.restore_config(&config) {
        tracing::warn!("{e}");
    }
    tracing::info!("took over the previous generation's binding cache ({n} binding(s)) and running-config");
    Some(persister)
}

/// Keeps the cache (record by record) and the running-config in the state region from now on.
fn persist_state(z: &'static Zlr, cm: &Cm, shared: &CliShared, persister: Persister) {
    let region = z.region().clone();
    let persister = std::sync::Mutex::new(persister);
    let save_cache = move |c: &controlplane::cm::cache::Cache| {
        let mut p = persister.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = p.sync(c) {
            tracing::error!("state region: binding cache not saved: {e}");
        }
        if let Err(e) = region.write(T_CACHE_GEN, 0, &Global { next_id: c.generation() }) {
            tracing::error!("state region: cache generation not saved: {e}");
        }
    };
    let region = z.region().clone();
    let save_config = move |cfg: &cli::SlbConfig| {
        if let Err(e) = blob::write(&region, blob::BLOB_CONFIG, cfg.render().as_bytes()) {
            tracing::error!("state region: running-config not saved: {e}");
        }
    };
    // The state as of now, then every change.
    cm.on_change(Box::new(save_cache));
    cm.touch_cache();
    save_config(&shared.config());
    shared.on_config_change(Box::new(save_config));
}

async fn run(cfg: Config, z: Option<&'static Zlr>, started: std::time::Instant) -> Result<()> {
    let switches = cfg
        .file
        .switches
        .iter()
        .map(|p| SwitchSpec { name: p.name.clone(), vips: controlplane::config::vip_filter(p), driver: driver(p) })
        .collect();
    let cm = Cm::new(cfg.cm_options(), switches);
    for (name, desc, _) in cm.switches() {
        tracing::info!("switch {name}: {desc}");
    }
    let shared = CliShared::new(cm.clone(), cfg.file.startup_config.clone());

    // A restarted generation takes over its predecessor's cache and running-config: nothing to
    // relearn, nothing for the sync to remove. Otherwise the startup-config first, through the
    // same primitives as typed commands.
    let mut recovered = false;
    if let Some(z) = z {
        let persister = match z.start() {
            Start::Recover => recover_state(z, &cm, &shared),
            Start::Cold => None,
        };
        recovered = persister.is_some();
        let persister = match persister {
            Some(p) => Ok(p),
            // A fresh region is empty; one whose recovery failed is cleared first.
            None if z.start() == Start::Recover => Persister::cleared(z.region()),
            None => Persister::fresh(z.region()),
        }
        .context("state region: binding cache records")?;
        persist_state(z, &cm, &shared, persister);
    }
    if !recovered {
        let sh = shared.clone();
        let errors = tokio::task::spawn_blocking(move || sh.replay_startup()).await?;
        for e in &errors {
            tracing::warn!("{e}");
        }
        if let Some(p) = &cfg.file.startup_config {
            tracing::info!("startup-config {} replayed: {} binding(s) in the cache", p.display(), cm.list().len());
        }
    }
    cm.spawn_sync();
    // Beacon listener, health checker and election (checked at load), each with a clone of `cm`
    // (none of their tables: off).
    let _services = cfg
        .services
        .clone()
        .map(|s| controlplane::services::beacon::spawn(&cm, s.beacon, Some(s.health), s.election))
        .transpose()
        .context("beacon / health / election")?;

    let api = match z.and_then(|z| z.adopt("api")) {
        Some(fd) => {
            let l = std::os::unix::net::UnixListener::from(fd);
            l.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(l)?
        }
        None => {
            let l = api_server::bind(&cfg.file.api.socket)
                .with_context(|| format!("API socket {}", cfg.file.api.socket.display()))?;
            if let Some(z) = z {
                z.keep("api", l.as_fd());
            }
            l
        }
    };
    tracing::info!("API on {}", cfg.file.api.socket.display());
    let api_server = ApiServer::new(shared.clone());
    api_server.resume_connections();
    tokio::spawn(api_server.serve(api));

    let creds = cfg.credentials()?;
    let mut settings = cli::ServerSettings::new(creds);
    settings.idle_timeout =
        (cfg.file.telnet.idle_timeout_s > 0).then(|| Duration::from_secs(cfg.file.telnet.idle_timeout_s));
    let listener = match z.and_then(|z| z.adopt("telnet")) {
        Some(fd) => {
            let l = std::net::TcpListener::from(fd);
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)?
        }
        None => {
            let l = tokio::net::TcpListener::bind(cfg.file.telnet.listen)
                .await
                .with_context(|| format!("telnet listen address {}", cfg.file.telnet.listen))?;
            if let Some(z) = z {
                z.keep("telnet", l.as_fd());
            }
            l
        }
    };
    tracing::info!("telnet on {}", cfg.file.telnet.listen);
    // Port 23 on the appliance's port addresses (exception path), and any other listener.
    // Kept listeners are adopted here, before the leftovers are released below.
    for l in &cfg.file.telnet.extra {
        let kept = controlplane::telnet_listen::adopt(z, l);
        controlplane::telnet_listen::spawn(
            l.clone(),
            shared.clone(),
            settings.clone(),
            cfg.file.telnet.max_sessions,
            z,
            kept,
        );
    }
    if let Some(z) = z {
        telnet::resume_sessions(z, &shared, &settings);
    }
    tokio::spawn(telnet::serve(listener, shared.clone(), settings, cfg.file.telnet.max_sessions));
    if let Some(z) = z {
        z.release_leftovers();
        z.spawn_control_watch().context("restartd control connection")?;
        z.ready();
        tracing::info!(
            "generation {} serving ({}) {:.2} ms after exec",
            z.generation(),
            if recovered { "state taken over" } else { "cold start" },
            started.elapsed().as_secs_f64() * 1e3
        );
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    let _ = std::fs::remove_file(&cfg.file.api.socket);
    if let Some(z) = z {
        // A clean stop: restartd does not start another generation, so the state goes.
        z.remove_region();
    }
    Ok(())
}
