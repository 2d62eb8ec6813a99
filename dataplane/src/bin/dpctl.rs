//! `dpctl`: drive the dataplane's switch API from a shell — the ACM primitives, List and
//! counters. Human tables by default, `--json` for scripts.

use std::path::PathBuf;

use acm::ServiceKey;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rpc::args::PrimitiveCmd;
use switch_api::client::{Ack, Client};

#[derive(Parser, Debug)]
#[command(version, about = "Switch API client of the ACM dataplane")]
struct Args {
    /// The dataplane's API socket.
    #[arg(long, short, default_value = "/run/acm/dataplane.sock", env = "ACM_DATAPLANE_SOCK")]
    socket: PathBuf,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    #[command(flatten)]
    Primitive(PrimitiveCmd),
    /// Counters of ports, services, drops and workers.
    Stats,
    /// Live flows (the workers' flow tables): client, VIP, real server, state, idle time.
    Sessions {
        /// Only this virtual service (VIP:PORT[/udp]).
        service: Option<ServiceKey>,
        /// The most flows to print.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Wait until the dataplane answers (up to --wait seconds).
    Ping {
        /// Seconds to keep trying to connect.
        #[arg(long, default_value_t = 0.0)]
        wait: f64,
    },
}

fn main() {
    rpc::args::quiet_on_closed_stdout();
    if let Err(e) = run(Args::parse()) {
        eprintln!("dpctl: {e:#}");
        std::process::exit(1);
    }
}

fn print_ack(json: bool, what: &str, ack: Ack) {
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "changed": ack.changed, "generation": ack.generation,
                "latency_us": ack.timing.latency_us()})
        );
    } else {
        let how = if ack.changed { "done" } else { "unchanged" };
        println!("{what}: {how} (generation {}, {:.1} us)", ack.generation, ack.timing.latency_us());
    }
}

fn run(a: Args) -> Result<()> {
    let mut c = match &a.cmd {
        Cmd::Ping { wait } => Client::connect_wait(&a.socket, std::time::Duration::from_secs_f64(*wait))?,
        _ => Client::connect(&a.socket)?,
    };
    match a.cmd {
        Cmd::Primitive(PrimitiveCmd::List) => {
            let list = c.list()?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                rpc::args::bindings_table(&list).iter().for_each(|line| println!("{line}"));
            }
        }
        Cmd::Primitive(cmd) => {
            let primitive = cmd.primitive();
            print_ack(a.json, primitive.name(), c.primitive(primitive)?);
        }
        Cmd::Stats => {
            let s = c.stats()?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("generation {}  uptime {:.1}s", s.generation, s.uptime_ns as f64 / 1e9);
                for p in &s.ports {
                    println!(
                        "port {:<10} {:<16} {} link {}  rx {} pkts / {} B  tx {} pkts / {} B  missed {}  to-host {}  from-host {}",
                        p.name,
                        p.ip.map(|i| i.to_string()).unwrap_or_default(),
                        p.mac,
                        if p.link_up { "up" } else { "down" },
                        p.rx_packets,
                        p.rx_bytes,
                        p.tx_packets,
                        p.tx_bytes,
                        p.rx_missed,
                        p.to_host,
                        p.from_host
                    );
                }
                for v in &s.services {
                    println!(
                        "service {:<22} bindings {}  drop {}  in {}  out {}  flows {} (new {})  admission-drops {}  no-backend {}",
                        v.key.to_string(),
                        v.active_bindings,
                        v.drop_fraction,
                        v.packets_in,
                        v.packets_out,
                        v.active_flows,
                        v.new_flows,
                        v.admission_drops,
                        v.no_backend_drops
                    );
                }
                for w in &s.workers {
                    // The share of its core the worker used: the time it was not asleep.
                    let awake = 100.0 * (1.0 - w.asleep_us as f64 * 1e3 / s.uptime_ns.max(1) as f64);
                    println!(
                        "worker lcore {}  generation {}  flows {}/{}  packets {}  bursts {}  reused tuples {}  \
                         loops {}  idle sleeps {}  asleep {:.3} s  awake {:.1} %",
                        w.lcore,
                        w.generation,
                        w.flows,
                        w.flow_capacity,
                        w.packets,
                        w.bursts,
                        w.reused_tuples,
                        w.loops,
                        w.idle_sleeps,
                        w.asleep_us as f64 / 1e6,
                        awake.clamp(0.0, 100.0)
                    );
                }
                let m = &s.maglev;
                println!(
                    "maglev tables {}  rounds {}  build last {} us max {} us  exact {} us after a change (max {} us){}",
                    m.tables_built,
                    m.rounds,
                    m.build_us_last,
                    m.build_us_max,
                    m.converge_us_last,
                    m.converge_us_max,
                    if m.pending { "  building" } else { "" }
                );
                let drops: Vec<String> =
                    s.drops.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}={n}")).collect();
                println!("drops: {}", if drops.is_empty() { "none".into() } else { drops.join(" ") });
            }
        }
        Cmd::Sessions { service, limit } => {
            let s = c.sessions(service, limit)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "{:<5} {:<21} {:<21} {:<21} {:<21} {:<5} {:>9} {:>9} {:>5}",
                    "proto", "client", "virtual", "real", "snat", "state", "idle-ms", "left-ms", "lcore"
                );
                for r in &s.sessions {
                    println!(
                        "{:<5} {:<21} {:<21} {:<21} {:<21} {:<5} {:>9} {:>9} {:>5}",
                        r.proto.to_string(),
                        r.client.to_string(),
                        r.vip.to_string(),
                        r.real.to_string(),
                        r.snat.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                        r.state.abbrev(),
                        r.idle_ms,
                        r.expires_ms,
                        r.lcore
                    );
                }
                let missing = if s.answered < s.workers {
                    format!(" ({} of {} workers did not answer)", s.workers - s.answered, s.workers)
                } else {
                    String::new()
                };
                println!("{} of {} flows shown{missing}", s.sessions.len(), s.total);
            }
        }
        Cmd::Ping { .. } => {
            let g = c.ping().context("ping")?;
            if a.json {
                println!("{}", serde_json::json!({"ok": true, "generation": g}));
            } else {
                println!("dataplane answers, generation {g}");
            }
        }
    }
    Ok(())
}
