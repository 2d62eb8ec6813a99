//! restartctl: talk to restartd (status, planned restart, upgrade).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use restart::fdpass;
use restart::proto::{self, Reply, Request, StatusReport};

#[derive(Parser, Debug)]
#[command(name = "restartctl", about = "Control restartd: status, planned restart, online upgrade")]
struct Args {
    /// restartd control socket (default: $RESTARTD_SOCK, else the only socket in /run/restartd).
    #[arg(long, global = true)]
    control: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Show generation, pid, kept channels, last exit and restart time.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Planned restart of a role with the same binary (same channels and state).
    Restart {
        /// Role id.
        #[arg(long, default_value_t = 0)]
        child: u32,
        /// Return without waiting for the new generation.
        #[arg(long)]
        no_wait: bool,
    },
    /// Hand the same channels and state to a new binary (refused if its state
    /// layout is incompatible).
    Upgrade {
        /// New binary.
        binary: PathBuf,
        /// Role id.
        #[arg(long, default_value_t = 0)]
        child: u32,
        /// Return without waiting for the new generation.
        #[arg(long)]
        no_wait: bool,
    },
}

fn control_path(arg: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p);
    }
    if let Some(p) = std::env::var_os(proto::ENV_SOCK) {
        return Ok(p.into());
    }
    let socks: Vec<PathBuf> = std::fs::read_dir("/run/restartd")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "sock")).collect()
        })
        .unwrap_or_default();
    match socks.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no restartd control socket found in /run/restartd; pass --control"),
        many => bail!("several restartd sockets {many:?}; pass --control"),
    }
}

fn call(path: &Path, req: &Request) -> Result<Reply> {
    let sock = fdpass::connect(path).with_context(|| format!("connect to restartd at {}", path.display()))?;
    fdpass::send(sock.as_fd(), &serde_json::to_vec(req)?, &[])?;
    let mut buf = Vec::new();
    fdpass::recv(sock.as_fd(), &mut buf, false)?.context("restartd closed the connection")?;
    Ok(serde_json::from_slice(&buf)?)
}

fn status(path: &Path) -> Result<StatusReport> {
    match call(path, &Request::Status)? {
        Reply::Status(s) => Ok(s),
        other => bail!("unexpected reply {other:?}"),
    }
}

fn print_status(s: &StatusReport) {
    println!("service {} (restartd pid {}, control {})", s.service, s.restartd_pid, s.control);
    for r in &s.roles {
        println!(
            "  role {}: generation {} pid {} {} — {} — kept fds {} — restarts {} — fault streak {}",
            r.child_id,
            r.generation,
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            r.state,
            r.path,
            r.kept_fds,
            r.restarts,
            r.fault_streak
        );
        if let Some(e) = &r.last_exit {
            println!("    previous generation: {e}");
        }
        if let Some(ms) = r.last_restart_ms {
            println!("    last restart: serving again after {ms:.2} ms");
        }
        if let Some(l) = &r.layout {
            println!("    state layout: {} v{}", l.name, l.version);
        }
    }
}

fn wait_new_generation(path: &Path, child: u32, before: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(path)?;
        if let Some(r) = s.roles.iter().find(|r| r.child_id == child) {
            if r.generation > before && r.state == "running" && r.ready {
                println!("role {child}: generation {} running (pid {})", r.generation, r.pid.unwrap_or(0));
                return Ok(());
            }
            if r.state == "failed" {
                bail!("role {child} failed after the planned restart");
            }
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for the new generation");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let path = control_path(args.control)?;
    match args.cmd {
        Cmd::Status { json } => {
            let s = status(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_status(&s);
            }
        }
        cmd @ (Cmd::Restart { .. } | Cmd::Upgrade { .. }) => {
            let (child, no_wait, req) = match cmd {
                Cmd::Restart { child, no_wait } => (child, no_wait, Request::Restart { child_id: child }),
                Cmd::Upgrade { binary, child, no_wait } => {
                    let abs = std::fs::canonicalize(&binary).with_context(|| format!("{}", binary.display()))?;
                    (child, no_wait, Request::Upgrade { child_id: child, path: abs.display().to_string() })
                }
                Cmd::Status { .. } => unreachable!(),
            };
            let before = status(&path)?.roles.iter().find(|r| r.child_id == child).map(|r| r.generation).unwrap_or(0);
            match call(&path, &req)? {
                Reply::Ok { message } => println!("{message}"),
                Reply::Error { message } => bail!("{message}"),
                other => bail!("unexpected reply {other:?}"),
            }
            if !no_wait {
                wait_new_generation(&path, child, before)?;
            }
        }
    }
    Ok(())
}
