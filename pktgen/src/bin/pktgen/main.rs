//! `pktgen`: DPDK traffic generator for the ACM dataplane.
//!
//! Two ports: the client port sends client → VIP traffic and receives the answers; the
//! server port receives what the device under test forwards to the real servers, validates
//! every packet, answers ARP for the real servers and (with `--reply`) answers as them.
//! One lcore does all of it (the main lcore; `--lcores` picks the core).
//!
//! A run: open the long-lived flows (one SYN each, retried until each came through), send
//! the pattern for `--warmup` + `--duration` seconds, stop, drain, report. With `--api`
//! it also reads the dataplane's counters, makes binding changes at `--churn-rate`, or
//! (`--disruption-remove`) measures how many flows Maglev moves when a server goes.

mod api;
mod cli;
mod engine;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{parse_servers, Args, Pattern, Progress};
use dataplane::wire::MacAddr;
use dpdk::{Eal, EalArgs, Mempool, Port, PortConfig, SocketId};
use engine::{Counters, Engine, Io, Source};
use pktgen::flows::FlowSpace;
use pktgen::histogram::Histogram;
use pktgen::packet::{L4Proto, Template, TemplateSpec};
use pktgen::summary::{DirectionStats, Disruption, Setup, Stalls, Summary};
use pktgen::validate::{Expect, Invalid, Servers, Validator};

fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).init();
    match run(args) {
        Ok(ok) => std::process::exit(if ok { 0 } else { 2 }),
        Err(e) => {
            eprintln!("pktgen: {e:#}");
            std::process::exit(1);
        }
    }
}

struct Ctx {
    stop: Arc<AtomicBool>,
    progress: bool,
    hz: f64,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Polls for `secs` seconds (or until stopped).
fn poll_for(e: &mut Engine, secs: f64, ctx: &Ctx) {
    let end = dpdk::tsc() + (secs * ctx.hz) as u64;
    while dpdk::tsc() < end && !ctx.stopped() {
        e.poll();
    }
}

/// Opens every long-lived flow: one SYN each, then again for those not seen, until all
/// came through or the rounds are used up.
fn open_flows(e: &mut Engine, rounds: u32, ctx: &Ctx) -> Setup {
    let t0 = Instant::now();
    let n = e.v.established.len();
    let mut setup = Setup::default();
    for round in 0..rounds {
        setup.rounds = round + 1;
        let before = e.opened.count();
        let r0 = Instant::now();
        e.set_source(Source::OpenFlows);
        while !e.open_pass_done() && !ctx.stopped() {
            e.poll();
        }
        e.set_source(Source::Idle);
        // Wait for stragglers: until nothing new for 50 ms (at least 250 ms on retries,
        // the dataplane's ARP retry interval being 200 ms).
        let min_wait = if round == 0 { 0.05 } else { 0.25 };
        let mut last = e.opened.count();
        let mut quiet = Instant::now();
        let wait_start = Instant::now();
        while !ctx.stopped() && e.opened.count() < n {
            poll_for(e, 0.01, ctx);
            if e.opened.count() != last {
                last = e.opened.count();
                quiet = Instant::now();
            } else if quiet.elapsed().as_secs_f64() > 0.05 && wait_start.elapsed().as_secs_f64() > min_wait {
                break;
            }
            if wait_start.elapsed().as_secs_f64() > 2.0 {
                break;
            }
        }
        if round == 0 {
            setup.syn_per_s = f64::from(e.opened.count() - before) / r0.elapsed().as_secs_f64().max(1e-9);
        }
        if e.opened.count() >= n || ctx.stopped() {
            break;
        }
    }
    setup.opened = e.opened.count();
    setup.missing = n - setup.opened;
    setup.seconds = t0.elapsed().as_secs_f64();
    setup
}

#[allow(clippy::too_many_arguments)]
fn direction(
    tx: u64,
    rx: u64,
    bytes: u64,
    invalid: &[u64],
    lost: i64,
    reorder: u64,
    lat: &Histogram,
    secs: f64,
) -> DirectionStats {
    DirectionStats {
        tx,
        rx,
        invalid: Invalid::ALL
            .iter()
            .filter(|w| invalid[w.index()] > 0)
            .map(|w| (w.name().to_string(), invalid[w.index()]))
            .collect(),
        lost,
        reorder,
        tx_mpps: tx as f64 / secs / 1e6,
        mpps: rx as f64 / secs / 1e6,
        gbps: bytes as f64 * 8.0 / secs / 1e9,
        latency_us: lat.summary_us(),
    }
}

fn run(args: Args) -> Result<bool> {
    let servers = parse_servers(&args.servers)?;
    let dut_mac: MacAddr = args.dut_mac.parse().context("--dut-mac")?;
    let rate: f64 = if args.rate == "line" {
        0.0
    } else {
        args.rate.parse().with_context(|| format!("--rate {:?}: want `line` or packets per second", args.rate))?
    };
    if (args.churn_rate > 0.0 || args.disruption_remove.is_some()) && args.api.is_none() {
        bail!("--churn-rate and --disruption-remove need --api");
    }
    if let Some(i) = args.disruption_remove {
        if i >= servers.len() {
            bail!("--disruption-remove {i}: there are {} servers", servers.len());
        }
    }
    let established = FlowSpace::new(args.client_base, 1024, args.ports_per_ip, args.flows.max(1))?;
    let new_space = FlowSpace::new(args.new_base, 1024, 64_000, args.new_endpoints.max(1))?;
    if u32::from(args.client_base) + established.addresses() > u32::from(args.new_base)
        && u32::from(args.client_base) < u32::from(args.new_base) + new_space.addresses()
    {
        bail!(
            "the long-lived flows ({} addresses from {}) overlap the new-connection endpoints from {}",
            established.addresses(),
            args.client_base,
            args.new_base
        );
    }

    // EAL and ports.
    let prefix = args.file_prefix.clone().unwrap_or_else(|| format!("pktgen-{}", std::process::id()));
    let mut ea = EalArgs::new("pktgen")
        .lcores(&args.lcores)
        .no_pci()
        .no_telemetry()
        .file_prefix(&prefix)
        .arg("--huge-unlink")
        .vdev(&args.client_dev)
        .vdev(&args.server_dev);
    for a in &args.eal_args {
        ea = ea.arg(a.clone());
    }
    let eal = Eal::init(&ea.build()).context("DPDK EAL initialisation")?;
    let ids = eal.check_devices().context("a device did not appear")?;
    let pool = Mempool::new(&eal, "pktgen", 32767, 256, Mempool::DEFAULT_DATA_ROOM, SocketId::current())
        .context("packet pool")?;
    let mut ports = Vec::new();
    for (id, name) in ids.iter().zip(["client", "server"]) {
        let pc = PortConfig::new(pool.clone()).queues(1, 1).descriptors(1024, 1024);
        let mut p = Port::configure(&eal, *id, &pc).with_context(|| format!("configuring the {name} port"))?;
        p.start().with_context(|| format!("starting the {name} port"))?;
        ports.push(p);
    }
    for (p, name) in ports.iter().zip(["client", "server"]) {
        let l = p.wait_link_up(Duration::from_secs_f64(args.link_timeout)).with_context(|| format!("{name} link"))?;
        if !l.up {
            bail!("the {name} link did not come up within {} s (is the device under test running?)", args.link_timeout);
        }
    }
    let client_mac = MacAddr(ports[0].mac_addr()?);
    let server_mac = MacAddr(ports[1].mac_addr()?);
    let io = Io {
        client_rx: ports[0].rx_queue(0)?,
        client_tx: ports[0].tx_queue(0)?,
        server_rx: ports[1].rx_queue(0)?,
        server_tx: ports[1].tx_queue(0)?,
        pool: pool.clone(),
        server_mac,
    };
    let ttl = 64;
    let tmpl = Template::new(&TemplateSpec {
        proto: args.proto,
        frame_size: args.frame_size,
        src_mac: client_mac,
        dst_mac: dut_mac,
        dst: args.vip,
        dst_port: args.vport,
        ttl,
    })?;
    let v = Validator {
        proto: args.proto,
        vip: args.vip,
        vport: args.vport,
        servers: Servers::new(&servers),
        established,
        new: Some(new_space),
        expect: args.expect,
        ttl,
    };
    // The memif ring size (`rsize` = log2 of the slots; 10 by default) bounds what the server
    // port can hold while the generator is off its core.
    let ring_slots = args
        .server_dev
        .split(',')
        .find_map(|kv| kv.strip_prefix("rsize="))
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(1024, |l| 1u64 << l.min(16));
    let mut e = Engine::new(io, tmpl, v, args.reply, rate, ring_slots);

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let long = args.duration + args.warmup > 3.0;
    let progress = match args.progress {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => long || std::io::stderr().is_terminal(),
    };
    let ctx = Ctx { stop, progress, hz: dpdk::tsc_hz() as f64 };
    let proto = match args.proto {
        L4Proto::Tcp => acm::Proto::Tcp,
        L4Proto::Udp => acm::Proto::Udp,
    };
    let service = acm::ServiceKey { vip: args.vip, proto, vport: args.vport };

    let mut summary = Summary {
        label: args.label.clone(),
        expect: format!("{:?}", args.expect).to_lowercase(),
        pattern: match (args.disruption_remove, args.pattern) {
            (Some(_), _) => "disruption".into(),
            (None, p) => format!("{p:?}").to_lowercase(),
        },
        proto: format!("{:?}", args.proto).to_lowercase(),
        frame_size: args.frame_size,
        flows: args.flows,
        rate_pps: rate,
        ..Default::default()
    };

    // Disruption compares two exact Maglev tables: the device places flows through an interim
    // correction until the exact table of its last change is built, so wait for that.
    if args.disruption_remove.is_some() {
        let ms = api::wait_exact_maglev(args.api.as_deref().expect("checked"), Duration::from_secs(10))?;
        eprintln!("pktgen: disruption: exact Maglev table in force after {ms:.1} ms");
    }

    // Open the long-lived flows. For the new-connection pattern too: it also gets the
    // device to resolve the real servers' MACs before the measurement.
    {
        summary.setup = open_flows(&mut e, args.setup_rounds, &ctx);
        if ctx.progress {
            eprintln!(
                "pktgen: setup: {} of {} flows opened in {:.2} s ({} rounds)",
                summary.setup.opened, args.flows, summary.setup.seconds, summary.setup.rounds
            );
        }
    }

    if let Some(idx) = args.disruption_remove {
        let sock = args.api.clone().expect("checked");
        let before: Vec<u16> = e.flow_server.clone();
        let key = api::binding(args.vip, args.vport, proto, servers[idx]);
        api::connect(&sock)?.remove(key).context("removing the real server")?;
        let ms = api::wait_exact_maglev(&sock, Duration::from_secs(10))?;
        eprintln!("pktgen: disruption: exact Maglev table without {} in force {ms:.1} ms after the remove", key.real);
        poll_for(&mut e, args.expiry_wait, &ctx);
        e.reset_opened();
        let again = open_flows(&mut e, args.setup_rounds, &ctx);
        let mut d = Disruption {
            servers: servers.len(),
            removed: format!("{}:{}", servers[idx].0, servers[idx].1),
            ideal: 1.0 / servers.len() as f64,
            ..Default::default()
        };
        for (a, b) in before.iter().zip(e.flow_server.iter()) {
            if *a == u16::MAX || *b == u16::MAX {
                continue;
            }
            d.flows += 1;
            if usize::from(*a) == idx {
                d.on_removed += 1;
            }
            if a != b {
                d.moved += 1;
            }
        }
        d.fraction_moved = f64::from(d.moved) / f64::from(d.flows.max(1));
        if again.missing > 0 {
            eprintln!("pktgen: disruption: {} flows did not come through the second time", again.missing);
        }
        summary.disruption = Some(d);
        let invalid = e.c.invalid_fwd_total();
        summary.forward.invalid = Invalid::ALL
            .iter()
            .filter(|w| e.c.invalid_fwd[w.index()] > 0)
            .map(|w| (w.name().to_string(), e.c.invalid_fwd[w.index()]))
            .collect();
        return finish(&args, summary, invalid == 0);
    }

    // Traffic.
    let source = match args.pattern {
        Pattern::Established => Source::Established,
        Pattern::Syn => Source::NewConnections,
        Pattern::Mixed => Source::Mixed(((100.0 / args.new_percent.clamp(0.01, 100.0)).round() as u32).max(1)),
    };
    let stats_before = match &args.api {
        Some(s) => Some(api::stats(s)?),
        None => None,
    };
    let start_counts = e.c;
    e.set_source(source);
    let t0 = dpdk::tsc();
    let warm_end = t0 + (args.warmup * ctx.hz) as u64;
    let end = warm_end + (args.duration * ctx.hz) as u64;
    let mut warm: Option<(Counters, u64)> = None;
    let mut churn = None;
    let mut next_report = t0 + ctx.hz as u64;
    let mut last_report = (e.c, t0);
    loop {
        for _ in 0..64 {
            e.poll();
        }
        let now = dpdk::tsc();
        if warm.is_none() && now >= warm_end {
            e.lat_fwd.clear();
            e.lat_rev.clear();
            e.per_server.fill(0);
            e.c.max_gap_ticks = 0;
            warm = Some((e.c, now));
            if args.churn_rate > 0.0 {
                let keys = servers.iter().map(|rs| api::binding(args.vip, args.vport, proto, *rs)).collect();
                churn = Some(api::ChurnThread::start(args.api.clone().expect("checked"), keys, args.churn_rate)?);
            }
        }
        if now >= end || ctx.stopped() {
            break;
        }
        if ctx.progress && now >= next_report {
            let (c0, t) = last_report;
            let secs = (now - t) as f64 / ctx.hz;
            let c = e.c;
            eprintln!(
                "pktgen: {:>5.1} s  tx {:>7.3} Mpps  rx {:>7.3} Mpps  rev {:>7.3} Mpps  invalid {}",
                (now - t0) as f64 / ctx.hz,
                (c.tx_est + c.tx_new + c.tx_syn - c0.tx_est - c0.tx_new - c0.tx_syn) as f64 / secs / 1e6,
                (c.rx_fwd - c0.rx_fwd) as f64 / secs / 1e6,
                (c.rx_rev - c0.rx_rev) as f64 / secs / 1e6,
                c.invalid_fwd_total() + c.invalid_rev_total()
            );
            last_report = (c, now);
            next_report = now + ctx.hz as u64;
        }
    }
    let end_counts = e.c;
    let end_tsc = dpdk::tsc();
    let lat_fwd = e.lat_fwd.clone();
    let lat_rev = e.lat_rev.clone();
    let per_server = e.per_server.clone();
    if let Some(c) = churn {
        let (c, _) = c.finish()?;
        summary.churn = Some(c);
    }
    // Drain: stop sending and let everything in flight arrive.
    e.set_source(Source::Idle);
    poll_for(&mut e, 0.3, &ctx);
    let fin = e.c;
    let stats_after = match &args.api {
        Some(s) => Some(api::stats(s)?),
        None => None,
    };

    let (w, wt) = warm.unwrap_or((start_counts, t0));
    let secs = ((end_tsc - wt) as f64 / ctx.hz).max(1e-9);
    let tx_fwd = (end_counts.tx_est + end_counts.tx_new + end_counts.tx_syn) - (w.tx_est + w.tx_new + w.tx_syn);
    let sent_all =
        (fin.tx_est + fin.tx_new + fin.tx_syn) - (start_counts.tx_est + start_counts.tx_new + start_counts.tx_syn);
    let got_all = (fin.rx_fwd + fin.invalid_fwd_total()) - (start_counts.rx_fwd + start_counts.invalid_fwd_total());
    let lost_fwd = sent_all as i64 - got_all as i64;
    summary.window_s = secs;
    summary.forward = direction(
        tx_fwd,
        end_counts.rx_fwd - w.rx_fwd,
        end_counts.rx_fwd_bytes - w.rx_fwd_bytes,
        &fin.invalid_fwd,
        lost_fwd,
        fin.reorder_fwd,
        &lat_fwd,
        secs,
    );
    if args.reply {
        let lost_rev = (fin.rev_tx - start_counts.rev_tx) as i64
            - ((fin.rx_rev + fin.invalid_rev_total()) - (start_counts.rx_rev + start_counts.invalid_rev_total()))
                as i64;
        summary.reverse = Some(direction(
            end_counts.rev_tx - w.rev_tx,
            end_counts.rx_rev - w.rx_rev,
            end_counts.rx_rev_bytes - w.rx_rev_bytes,
            &fin.invalid_rev,
            lost_rev,
            fin.reorder_rev,
            &lat_rev,
            secs,
        ));
    }
    summary.new_conn_per_s = (end_counts.rx_fwd_new - w.rx_fwd_new) as f64 / secs;
    if args.expect == Expect::Nat {
        summary.servers =
            e.v.servers
                .list()
                .iter()
                .zip(per_server.iter())
                .map(|((ip, p), n)| (format!("{ip}:{p}"), *n))
                .collect::<BTreeMap<_, _>>();
    }
    // Established-flow packets lost: ACKs of the long-lived flows sent vs received.
    let est_lost = (fin.tx_est - start_counts.tx_est) as i64 - (fin.rx_fwd_est - start_counts.rx_fwd_est) as i64;
    if let (Some(b), Some(a)) = (&stats_before, &stats_after) {
        let mut d = api::stats_delta(b, a, &service);
        d["established_lost"] = serde_json::json!(est_lost);
        summary.dataplane = Some(d);
    }
    summary.latency_cdf_us = lat_fwd.cdf_us();
    summary.generator_stalls = Some(Stalls {
        count: end_counts.stalls - w.stalls,
        threshold_us: engine::STALL_NS as f64 / 1e3,
        total_ms: e.ticks_to_us(end_counts.stall_ticks - w.stall_ticks) / 1e3,
        max_us: e.ticks_to_us(end_counts.max_gap_ticks),
        ring_slots,
        overflowing: end_counts.overflowing_stalls - w.overflowing_stalls,
        overflow_estimate: end_counts.overflow_estimate - w.overflow_estimate,
    });
    let invalid = fin.invalid_fwd_total() + fin.invalid_rev_total();
    if fin.rev_tx_fail > 0 {
        eprintln!("pktgen: {} answers could not be sent (server-side tx full)", fin.rev_tx_fail);
    }
    finish(&args, summary, invalid == 0)
}

fn finish(args: &Args, summary: Summary, ok: bool) -> Result<bool> {
    eprint!("{}", summary.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary)?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(ok)
}
