//! The `dataplane` process: DPDK ports, one worker lcore per worker core polling them, the
//! main lcore forwarding the exception path (taps) and management frames, the switch API.

mod mgmt;
mod worker;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use dataplane::api::PortStats;
use dataplane::config::DataplaneConfig;
use dataplane::control::Control;
use dataplane::generation::PortView;
use dataplane::idle::IdleConfig;
use dataplane::lb::flows::Placement;
use dataplane::pipeline::{Worker, WorkerConfig};
use dataplane::runtime::switch::{worker_link, Switch};
use dataplane::wire::MacAddr;
use dpdk::{Eal, EalArgs, Mempool, Port, PortConfig, SocketId};

#[derive(Parser, Debug)]
#[command(version, about = "ACM load-balancing dataplane (DPDK poll mode)")]
struct Args {
    /// Platform configuration.
    #[arg(long, short, default_value = "/etc/acm/appliance.toml")]
    config: PathBuf,
    /// Log filter (tracing env-filter syntax), overridden by RUST_LOG.
    #[arg(long, default_value = "info")]
    log: String,
    /// Write the process id here once forwarding.
    #[arg(long)]
    pid_file: Option<PathBuf>,
}

/// Whether a device string names a PCI device (as opposed to a vdev).
fn is_pci(device: &str) -> bool {
    let name = device.split(',').next().unwrap_or("");
    name.contains(':') && name.contains('.') && !name.starts_with("net_")
}

/// af_packet vdevs have one queue pair unless told otherwise, and spread received frames
/// over all of them (fanout): ask for exactly one pair per worker when unset.
fn with_queue_pairs(device: &str, pairs: usize) -> String {
    if device.starts_with("net_af_packet") && !device.contains("qpairs=") {
        format!("{device},qpairs={pairs}")
    } else {
        device.to_string()
    }
}

fn run_ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip(8)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn setup_tap(name: &str, address: &str) -> Result<()> {
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
    let _ = run_ip(&["addr", "flush", "dev", name]);
    run_ip(&["addr", "add", address, "dev", name])?;
    run_ip(&["link", "set", name, "up"])?;
    Ok(())
}

fn main() {
    let args = Args::parse();
    let _ = dataplane::runtime::clock::now_ns(); // start the API clock at process start
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
    if let Err(e) = run(args) {
        tracing::error!("{e:#}");
        eprintln!("dataplane: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let cfg = DataplaneConfig::load(&args.config)?;
    let d = &cfg.dataplane;
    let n_ports = cfg.ports.len();
    let n_workers = d.worker_lcores.len();

    // EAL: main lcore + workers, one device per port and one tap per port.
    let lcores: Vec<String> =
        std::iter::once(d.main_lcore).chain(d.worker_lcores.iter().copied()).map(|c| c.to_string()).collect();
    let mut eal_args = EalArgs::new("dataplane").lcores(&lcores.join(",")).main_lcore(d.main_lcore).no_telemetry();
    if !cfg.ports.iter().any(|p| is_pci(&p.device)) {
        eal_args = eal_args.no_pci();
    }
    for p in &cfg.ports {
        eal_args = if is_pci(&p.device) {
            eal_args.allow(&p.device)
        } else {
            eal_args.vdev(&with_queue_pairs(&p.device, n_workers))
        };
    }
    let tap_names: Vec<String> = (0..n_ports).map(|i| cfg.tap_name(i)).collect();
    for (i, tap) in tap_names.iter().enumerate() {
        eal_args = eal_args.vdev(&format!("net_tap{},iface={tap}", 90 + i));
    }
    if !d.eal_args.iter().any(|a| a.starts_with("--file-prefix") || a == "--in-memory") {
        eal_args = eal_args.file_prefix("acm-dataplane");
    }
    for a in &d.eal_args {
        eal_args = eal_args.arg(a.clone());
    }
    let eal = Eal::init(&eal_args.build()).context("DPDK EAL initialisation")?;
    let ids = eal.check_devices().context("a configured port did not appear")?;
    let (phys_ids, tap_ids) = ids.split_at(n_ports);

    let pool = Mempool::new(&eal, "acm_pkt", d.mbufs, 256, Mempool::DEFAULT_DATA_ROOM, SocketId::current())
        .context("creating the packet pool")?;

    // Physical ports: one rx and one tx queue per worker. The main lcore sends through
    // worker 0 (injection rings), so every queue of a port is polled by a worker.
    let mut ports = Vec::new();
    let mut views = Vec::new();
    for (i, id) in phys_ids.iter().enumerate() {
        let pc = PortConfig::new(pool.clone())
            .queues(n_workers as u16, n_workers as u16)
            .descriptors(d.descriptors, d.descriptors);
        let mut port =
            Port::configure(&eal, *id, &pc).with_context(|| format!("configuring port {}", cfg.ports[i].name))?;
        port.start().with_context(|| format!("starting port {}", cfg.ports[i].name))?;
        let mac = MacAddr(port.mac_addr().context("port MAC")?);
        let addr = cfg.port_addrs()[i];
        tracing::info!(port = %cfg.ports[i].name, device = %cfg.ports[i].device, mac = %mac, address = %cfg.ports[i].address, "port up");
        views.push(PortView { addr, mac, gateway: cfg.ports[i].gateway });
        ports.push(port);
    }
    // Taps: net_tap wants as many rx as tx queues: one tx queue per worker plus one; the
    // kernel spreads what it sends over the rx queues, and the main lcore polls them all.
    let mut taps = Vec::new();
    let mut tap_macs = Vec::new();
    for (i, id) in tap_ids.iter().enumerate() {
        let q = n_workers as u16 + 1;
        let pc = PortConfig::new(pool.clone()).queues(q, q).descriptors(512, 512);
        let mut tap = Port::configure(&eal, *id, &pc).with_context(|| format!("configuring tap {}", tap_names[i]))?;
        tap.start().with_context(|| format!("starting tap {}", tap_names[i]))?;
        tap_macs.push(MacAddr(tap.mac_addr().context("tap MAC")?));
        setup_tap(&tap_names[i], &cfg.ports[i].address)
            .with_context(|| format!("configuring kernel interface {}", tap_names[i]))?;
        taps.push(tap);
    }

    // Control side.
    let control = Control::new(views.clone(), d.max_bindings, d.max_services, d.maglev_table_size);
    let (host_tx, host_rx) = crossbeam::channel::bounded(4096);
    let mut links = Vec::new();
    let mut ends = Vec::new();
    for &lcore in &d.worker_lcores {
        let (link, end) = worker_link(lcore, d.max_bindings, d.max_services, d.flow_capacity as u64);
        links.push(link);
        ends.push(end);
    }
    let stats_ports: Vec<(String, Option<Ipv4Addr>, String, dpdk::PortId)> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| (cfg.ports[i].name.clone(), Some(views[i].addr.ip), views[i].mac.to_string(), p.id()))
        .collect();
    let from_host = Arc::new(mgmt::HostCounters::new(n_ports));
    let from_host2 = from_host.clone();
    let port_stats = Box::new(move || {
        stats_ports
            .iter()
            .enumerate()
            .map(|(i, (name, ip, mac, id))| {
                let s = mgmt::port_stats(*id);
                PortStats {
                    name: name.clone(),
                    ip: *ip,
                    mac: mac.clone(),
                    link_up: s.1,
                    rx_packets: s.0.ipackets,
                    rx_bytes: s.0.ibytes,
                    tx_packets: s.0.opackets,
                    tx_bytes: s.0.obytes,
                    rx_missed: s.0.imissed,
                    rx_errors: s.0.ierrors,
                    tx_errors: s.0.oerrors,
                    rx_nombuf: s.0.rx_nombuf,
                    to_host: 0,
                    from_host: from_host2.get(i),
                }
            })
            .collect()
    });
    let switch = Arc::new(Switch::new(control, links, host_tx, port_stats));

    // Workers.
    let stop = Arc::new(AtomicBool::new(false));
    let link_up: Arc<[AtomicBool]> = (0..n_ports).map(|_| AtomicBool::new(true)).collect();
    let handoff = worker::handoff_rings(&eal, n_workers)?;
    let (inject_tx, mut inject_rx) = worker::inject_rings(&eal, n_ports)?;
    for (w, (end, rings)) in ends.into_iter().zip(handoff).enumerate() {
        let lcore = d.worker_lcores[w];
        let wcfg = WorkerConfig {
            index: w as u16,
            workers: n_workers as u16,
            flow_capacity: d.flow_capacity,
            timeouts: cfg.timeouts.to_ns(),
            snat_ports: (d.snat_ports[0], d.snat_ports[1]),
            seed: 0x5eed ^ (lcore as u64) << 17 ^ dpdk::tsc(),
        };
        let core = Worker::with_flow_placement(wcfg, end.counters.clone(), end.learned.clone(), Placement::Hugepages);
        let flow_memory = core.flow_placement();
        let inject = if w == 0 { std::mem::take(&mut inject_rx) } else { Vec::new() };
        let io = worker::WorkerIo::new(
            &ports,
            &taps,
            w as u16,
            &pool,
            views.clone(),
            tap_macs.clone(),
            rings,
            inject,
            link_up.clone(),
        )?;
        let stop = stop.clone();
        let nice = d.worker_nice;
        let idle = IdleConfig::worker(d.idle, d.idle_max_sleep_us);
        eal.launch(lcore, move || {
            if let Err(e) = dpdk::set_thread_nice(nice) {
                tracing::warn!(
                    lcore,
                    nice,
                    "cannot set the worker's nice value: {e} (other threads may take its core)"
                );
            }
            worker::run(core, io, end, stop, idle)
        })
        .with_context(|| format!("launching worker on lcore {lcore}"))?;
        tracing::info!(lcore, flows = d.flow_capacity, %flow_memory, "worker started");
    }

    // Switch API and housekeeping.
    let server = dataplane::runtime::api_server::start(&d.api_socket, switch.clone())
        .with_context(|| format!("switch API socket {}", d.api_socket.display()))?;
    let hk = {
        let (sw, stop) = (switch.clone(), stop.clone());
        std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || sw.run_housekeeping(Duration::from_millis(5), stop))?
    };
    // Exact Maglev tables, built after the changes they follow are acknowledged. Below the
    // API threads in priority: a build never delays an acknowledgement.
    let builder = {
        let (sw, stop, nice) = (switch.clone(), stop.clone(), d.builder_nice);
        std::thread::Builder::new().name("maglev-build".into()).spawn(move || {
            if let Err(e) = dpdk::set_thread_nice(nice) {
                tracing::debug!("cannot lower the Maglev builder's priority: {e}");
            }
            sw.run_builder(Duration::from_millis(2), stop)
        })?
    };
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    if let Some(p) = &args.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))?;
    }
    tracing::info!(api = %d.api_socket.display(), workers = n_workers, ports = n_ports, "dataplane forwarding");

    // The main lcore: exception path and management frames until stopped.
    let mut m = mgmt::Mgmt::new(&ports, &taps, inject_tx, pool.clone(), views, tap_macs, host_rx, from_host, link_up)?;
    m.run(&stop, IdleConfig::main_lcore(d.idle, d.idle_max_sleep_us));
    tracing::info!("stopping");
    drop(server);
    let _ = hk.join();
    let _ = builder.join();
    for (lcore, rc) in eal.wait_all() {
        if rc != 0 {
            tracing::warn!(lcore, rc, "worker ended with an error");
        }
    }
    drop(m);
    drop(switch);
    for mut p in ports.into_iter().chain(taps) {
        let _ = p.stop();
    }
    if let Some(p) = &args.pid_file {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
