//! `acmctl`: drive the Connection Manager from scripts, over its local API socket.
//!
//! ```text
//! acmctl add 10.0.0.100:80 10.0.1.11:80 [--weight 2] [--source-nat]
//! acmctl remove 10.0.0.100:80 10.0.1.11:80        # drain
//! acmctl force-remove 10.0.0.100:80 10.0.1.11:80  # unbind now
//! acmctl drop 10.0.0.100:80 0.25                   # admission control
//! acmctl list [--json]
//! acmctl latency [--json] [--reset]
//! acmctl cli 'show server bind'                    # any CLI command(s), privileged
//! acmctl status
//! acmctl churn 1000 10.0.0.100:80 10.0.1.14:80     # Add/Remove pairs, then latency
//! acmctl rolling-restart --vip 10.0.0.100:80 --each 'ssh {server} reboot-service'
//! ```
//!
//! (DESIGN.md places acmctl in `cli/`; it lives here because it speaks the controlplane's API
//! and `cli` must not depend on the controlplane.)
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use acm::{BindingKey, BindingParams, Primitive, RealServer, ServiceKey};
use clap::{Parser, Subcommand};
use controlplane::api::client::Client;
use controlplane::cm::Outcome;
use controlplane::config::DEFAULT_API_SOCKET;
use controlplane::latency::LatencyReport;
use rpc::args::PrimitiveCmd;

#[derive(Parser)]
#[command(version, about = "Drive the ACM Connection Manager (controlplane) over its local API")]
struct Args {
    /// The controlplane's API socket.
    #[arg(short, long, env = "ACM_CONTROLPLANE_SOCKET", default_value = DEFAULT_API_SOCKET)]
    socket: PathBuf,
    /// Machine-readable output (JSON).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    #[command(flatten)]
    Primitive(PrimitiveCmd),
    /// Configuration-latency histograms.
    Latency {
        /// Forget the samples afterwards.
        #[arg(long)]
        reset: bool,
    },
    /// Run CLI commands non-interactively (privileged mode), e.g. 'show server bind'.
    Cli {
        /// Command lines, run in order.
        #[arg(required = true)]
        lines: Vec<String>,
    },
    /// Counters, switches and role.
    Status,
    /// Alternate Add and Remove of one binding COUNT times each, then print the latency.
    Churn {
        /// Pairs of Add/Remove.
        count: u32,
        /// VIP:PORT[/udp]
        service: ServiceKey,
        /// RIP:PORT
        real: RealServer,
    },
    /// Restart every real server of a service in turn without failing a request: drain,
    /// run the command, wait until healthy, add back.
    RollingRestart {
        /// VIP:PORT[/udp]
        #[arg(long)]
        vip: ServiceKey,
        /// Command per server; `{server}` is its address, `{port}` its port.
        #[arg(long)]
        each: String,
        /// Force Remove after this long draining.
        #[arg(long, default_value = "60s", value_parser = controlplane::client::parse_duration)]
        drain_timeout: std::time::Duration,
        /// Give up when a restarted server is not Active after this long.
        #[arg(long, default_value = "60s", value_parser = controlplane::client::parse_duration)]
        health_timeout: std::time::Duration,
        /// Probe restarted servers out of this interface only (e.g. the dataplane's tap).
        #[arg(long)]
        probe_interface: Option<String>,
    },
}

fn main() -> ExitCode {
    rpc::args::quiet_on_closed_stdout();
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("acmctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn run(a: &Args) -> anyhow::Result<ExitCode> {
    let mut c = Client::connect(&a.socket)?;
    let outcome = match &a.cmd {
        Cmd::Primitive(PrimitiveCmd::List) => {
            let l = c.list()?;
            if a.json {
                print_json(&l);
            } else {
                rpc::args::bindings_table(&l).iter().for_each(|line| println!("{line}"));
            }
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Primitive(cmd) => c.primitive(cmd.primitive())?,
        Cmd::Latency { reset } => {
            let rows = c.latency(*reset)?;
            if a.json {
                print_json(&rows);
            } else {
                print_latency(&rows);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Cli { lines } => {
            for l in c.cli(lines.clone())? {
                println!("{l}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Status => {
            let s = c.status()?;
            if a.json {
                print_json(&s);
            } else {
                println!(
                    "role: {}   cache generation: {}   bindings: {}",
                    if s.active { "active" } else { "standby" },
                    s.generation,
                    s.bindings
                );
                let k = &s.counters;
                println!(
                    "requests: {}   filtered: {}   refused: {}   unavailable: {}   syncs: {}   sync corrections: {}   malformed API requests: {}",
                    k.requests, k.filtered, k.refused, k.unavailable, k.syncs, k.sync_corrections, s.api_malformed
                );
                for sw in &s.switches {
                    println!("switch {:<12} {:<8} {}", sw.name, if sw.up { "up" } else { "DOWN" }, sw.driver);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::RollingRestart { vip, each, drain_timeout, health_timeout, probe_interface } => {
            use controlplane::rolling::{rolling_restart, ApiOps, RollingPlan};
            let mut plan = RollingPlan::new(*vip, each.clone());
            (plan.drain_timeout, plan.health_timeout) = (*drain_timeout, *health_timeout);
            let probe_interface = probe_interface.clone();
            let mut ops = ApiOps { client: &mut c, probe_timeout: std::time::Duration::from_secs(1), probe_interface };
            let steps = rolling_restart(&mut ops, &plan, |l| println!("{l}"))?;
            println!("rolling restart of {vip}: {} server(s) restarted", steps.len());
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Churn { count, service, real } => {
            let k = BindingKey { service: *service, real: *real };
            let t = Instant::now();
            for _ in 0..*count {
                c.primitive(Primitive::Add { key: k, params: BindingParams::default() })?;
                c.primitive(Primitive::Remove { key: k })?;
            }
            let secs = t.elapsed().as_secs_f64();
            let ops = 2.0 * *count as f64;
            let rows = c.latency(false)?;
            if a.json {
                print_json(
                    &serde_json::json!({ "ops": ops, "seconds": secs, "ops_per_s": ops / secs, "latency": rows }),
                );
            } else {
                println!("{ops} primitives in {secs:.3} s: {:.0} ops/s (one client, sequential)", ops / secs);
                print_latency(&rows);
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    report(a.json, &outcome);
    Ok(if outcome.unavailable().is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

fn report(json: bool, o: &Outcome) {
    if json {
        print_json(o);
        return;
    }
    let what = if o.standby {
        "cached (standby CM: not pushed)"
    } else if o.changed {
        "done"
    } else {
        "unchanged (already so)"
    };
    println!("{what} in {:.1} us", o.latency_us);
    for s in &o.switches {
        match &s.error {
            None => println!(
                "  switch {}: {} acknowledged in {:.1} us{}",
                s.switch,
                s.op,
                s.latency_us,
                s.switch_us.map(|u| format!(" (switch itself {u:.1} us)")).unwrap_or_default()
            ),
            Some(e) if s.unavailable => {
                println!(
                    "  switch {}: {} NOT acknowledged: {e} (kept in the cache; the next sync pushes it)",
                    s.switch, s.op
                )
            }
            Some(e) => println!("  switch {}: {} refused: {e}", s.switch, s.op),
        }
    }
}

fn print_latency(rows: &[LatencyReport]) {
    println!(
        "{:<13} {:<12} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "Primitive", "Switch", "Count", "p50 us", "p90 us", "p99 us", "max us"
    );
    for r in rows {
        let s = &r.summary;
        println!(
            "{:<13} {:<12} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            r.primitive, r.switch, s.count, s.p50_us, s.p90_us, s.p99_us, s.max_us
        );
    }
    println!("(ServerIron XL, Chen & Brewer: add 26 ms, remove 20 ms, ~40 ops/s)");
}
