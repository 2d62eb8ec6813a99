//! EAL integration tests: one process, one `rte_eal_init`, steps run in order.
//!
//! DPDK's EAL can be initialised only once per process, so this is a
//! `harness = false` test binary that runs its steps in sequence against one
//! EAL (`--in-memory --no-pci -l 0-1` with `net_null0`, `net_null1` and
//! `net_ring0` vdevs) and reports each. Scenarios where `rte_eal_init` itself
//! must fail run in child processes (this same binary with `--child NAME`).
//!
//! Needs root and free 2 MB hugepages; without them it prints a skip notice,
//! unless `CI=true`, where it fails.
//!
//! Run: `cargo test -p dpdk --test eal`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk::{
    ring, AllocError, Burst, Direction, Eal, EalArgs, EalError, Mbuf, MbufError, Mempool, Port, PortConfig,
    PortConfigError, PortId, PortLookupError, PortStateError, QueueError, SocketId, LCORE_PANICKED, PLUGIN_DIR,
};

/// Free 2 MB hugepages this test wants (it uses far less than 64 MB).
const MIN_FREE_HUGEPAGES: u64 = 32;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("");
        std::process::exit(child(name));
    }
    if !require_root_and_hugepages() {
        println!("eal: 0 passed, 0 failed, 1 skipped");
        return;
    }

    let mut runner = Runner::default();
    runner.step("child_bad_vdev_name_is_a_clear_error", child_bad_vdev_name);
    runner.step("child_bad_vdev_args_fail_init_cleanly", child_bad_vdev_args);

    let eal_args = EalArgs::new("dpdk-eal-test")
        .lcores("0-1")
        .no_pci()
        .in_memory()
        .no_telemetry()
        .vdev("net_null0")
        .vdev("net_null1,size=128")
        .vdev("net_null2")
        .vdev("net_ring0")
        .build();
    let eal = match Eal::init(&eal_args) {
        Ok(eal) => eal,
        Err(e) => panic!("EAL init failed: {e}"),
    };
    let pool = Mempool::new(&eal, "test_pool", 4095, 64, Mempool::DEFAULT_DATA_ROOM, SocketId::ANY)
        .expect("mempool");
    let mut ctx = Ctx { eal, pool };

    runner.step("eal_init_once_and_lcores", || eal_init_once_and_lcores(&ctx));
    runner.step("configured_devices_became_ports", || configured_devices_became_ports(&ctx));
    runner.step("missing_port_errors_name_the_plugin_dir", || missing_port_errors(&ctx));
    runner.step("mbuf_lengths", || mbuf_lengths(&ctx));
    runner.step("burst_behaviour", || burst_behaviour(&ctx));
    runner.step("mempool_errors", || mempool_errors(&ctx));
    runner.step("net_null_two_ports_rx_tx_stats", || net_null_two_ports(&ctx));
    runner.step("net_null_rss_over_two_queues", || net_null_rss(&ctx));
    runner.step("net_ring_loopback_exact_bytes_and_lcores", || net_ring_loopback(&mut ctx));
    runner.step("ring_moves_mbufs_between_lcores", || ring_between_lcores(&ctx));
    runner.step("cleanup_releases_everything", move || cleanup(ctx));

    std::process::exit(runner.finish());
}

/// Returns whether the EAL tests can run here (root, free hugepages). When
/// they cannot: fails (panics) if `CI=true`, else prints why and returns false.
fn require_root_and_hugepages() -> bool {
    let problem = if unsafe_free_geteuid() != 0 {
        Some("not running as root".to_owned())
    } else {
        match free_hugepages() {
            Some(n) if n >= MIN_FREE_HUGEPAGES => None,
            Some(n) => Some(format!("only {n} free 2 MB hugepages (need {MIN_FREE_HUGEPAGES})")),
            None => Some("cannot read HugePages_Free from /proc/meminfo".to_owned()),
        }
    };
    match problem {
        None => true,
        Some(p) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("DPDK EAL tests cannot run: {p} (CI=true requires them)")
        }
        Some(p) => {
            println!("SKIPPED DPDK EAL tests: {p}");
            false
        }
    }
}

/// The effective user id, read from /proc (keeps this test free of unsafe).
fn unsafe_free_geteuid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

fn free_hugepages() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo.lines().find_map(|l| l.strip_prefix("HugePages_Free:")).and_then(|v| v.trim().parse().ok())
}

#[derive(Default)]
struct Runner {
    passed: usize,
    failed: Vec<String>,
}

impl Runner {
    fn step(&mut self, name: &str, f: impl FnOnce()) {
        let t = Instant::now();
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => {
                println!("test {name} ... ok ({:.0?})", t.elapsed());
                self.passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                self.failed.push(name.to_owned());
            }
        }
    }

    fn finish(self) -> i32 {
        for f in &self.failed {
            println!("failed: {f}");
        }
        println!("eal: {} passed, {} failed", self.passed, self.failed.len());
        i32::from(!self.failed.is_empty())
    }
}

struct Ctx {
    eal: Eal,
    pool: Mempool,
}

// ---------------------------------------------------------------- children

/// Runs a scenario in this process as a child; returns the exit code.
fn child(name: &str) -> i32 {
    let base = EalArgs::new("dpdk-eal-child").lcores("0").no_pci().in_memory().no_telemetry();
    let args = match name {
        "bad-vdev-name" => base.vdev("net_bogus0").build(),
        "bad-vdev-args" => base.vdev("net_ring0,nodeaction=nonsense").build(),
        _ => {
            eprintln!("unknown child scenario {name:?}");
            return 2;
        }
    };
    match Eal::init(&args) {
        // A device that fails to probe does not fail init: the check does.
        Ok(eal) => match eal.check_devices() {
            Ok(ports) => {
                println!("UNEXPECTED: init and device check succeeded: {ports:?}");
                1
            }
            Err(e) => {
                println!("ERROR: {e}");
                let v = match e {
                    PortLookupError::NotFound { .. } => "PortNotFound",
                    PortLookupError::DriverMissing { .. } => "PortDriverMissing",
                    PortLookupError::InvalidName(_) => "PortInvalidName",
                };
                println!("VARIANT: {v}");
                0
            }
        },
        Err(e) => {
            println!("ERROR: {e}");
            println!("VARIANT: {}", variant(&e));
            // A second attempt must be refused, not crash.
            match Eal::init(&args) {
                Err(EalError::AlreadyInitialized) => 0,
                other => {
                    println!("UNEXPECTED second init: {other:?}");
                    1
                }
            }
        }
    }
}

fn variant(e: &EalError) -> &'static str {
    match e {
        EalError::DriverMissing { .. } => "DriverMissing",
        EalError::InitFailed { .. } => "InitFailed",
        EalError::AlreadyInitialized => "AlreadyInitialized",
        _ => "other",
    }
}

fn run_child(name: &str) -> String {
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .args(["--child", name])
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {name} failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn child_bad_vdev_name() {
    let out = run_child("bad-vdev-name");
    assert!(out.contains("VARIANT: DriverMissing"), "{out}");
    assert!(out.contains("net_bogus"), "{out}");
    assert!(out.contains(PLUGIN_DIR), "error should name the plugin dir: {out}");
}

fn child_bad_vdev_args() {
    let out = run_child("bad-vdev-args");
    assert!(out.contains("VARIANT: PortNotFound"), "{out}");
    assert!(out.contains("net_ring0") && out.contains(PLUGIN_DIR), "{out}");
}

// ------------------------------------------------------------------- EAL

fn eal_init_once_and_lcores(ctx: &Ctx) {
    assert!(matches!(Eal::init(&EalArgs::new("again").build()), Err(EalError::AlreadyInitialized)));
    assert_eq!(ctx.eal.main_lcore(), 0);
    assert_eq!(ctx.eal.worker_lcores(), vec![1]);
    assert_eq!(dpdk::current_lcore(), Some(0));
    assert!(dpdk::tsc_hz() > 1_000_000, "tsc_hz {}", dpdk::tsc_hz());
    let t0 = dpdk::tsc();
    std::thread::sleep(Duration::from_millis(2));
    assert!(dpdk::tsc() > t0);
    // A plain std thread is not an lcore.
    assert_eq!(std::thread::spawn(dpdk::current_lcore).join().unwrap(), None);
}

fn configured_devices_became_ports(ctx: &Ctx) {
    assert_eq!(ctx.eal.configured_devices(), ["net_null0", "net_null1", "net_null2", "net_ring0"]);
    let ids = ctx.eal.check_devices().expect("every vdev is a port");
    assert_eq!(ids.len(), 4);
    assert_eq!(ctx.eal.ports().len(), 4);
    assert_eq!(ctx.eal.port_by_name("net_null1,size=128").unwrap(), ids[1]);
    assert_eq!(ctx.eal.port_name(ids[3]).as_deref(), Some("net_ring0"));
}

fn missing_port_errors(ctx: &Ctx) {
    match ctx.eal.port_by_name("net_bogus0") {
        Err(e @ PortLookupError::DriverMissing { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(PLUGIN_DIR) && msg.contains("net_bogus"), "{msg}");
        }
        other => panic!("expected DriverMissing, got {other:?}"),
    }
    match ctx.eal.port_by_name("net_null7") {
        Err(PortLookupError::NotFound { known, .. }) => assert!(known.contains(&"net_null0".to_owned())),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(ctx.eal.port_by_name(""), Err(PortLookupError::InvalidName(_))));
    assert!(matches!(
        Port::configure(&ctx.eal, PortId(999), &PortConfig::new(ctx.pool.clone())),
        Err(PortConfigError::InvalidPort { .. })
    ));
}

// ----------------------------------------------------------- mbuf, burst

fn mbuf_lengths(ctx: &Ctx) {
    let in_use = ctx.pool.in_use();
    let mut m = ctx.pool.alloc().expect("alloc");
    assert_eq!(ctx.pool.in_use(), in_use + 1);
    assert_eq!((m.len(), m.pkt_len(), m.refcnt(), m.segments()), (0, 0, 1, 1));
    assert!(m.is_empty());
    assert_eq!(m.headroom(), usize::from(Mempool::HEADROOM));
    let room = m.tailroom();
    assert_eq!(room, usize::from(Mempool::DEFAULT_DATA_ROOM - Mempool::HEADROOM));

    m.append(10).expect("append").copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    m.extend_from_slice(&[11, 12]).unwrap();
    assert_eq!(m.data(), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(m.tailroom(), room - 12);

    m.prepend(2).expect("prepend").copy_from_slice(&[0xaa, 0xbb]);
    assert_eq!(m.len(), 14);
    assert_eq!(m.headroom(), usize::from(Mempool::HEADROOM) - 2);
    assert_eq!(&m.data()[..3], &[0xaa, 0xbb, 1]);

    m.adj(3).unwrap();
    assert_eq!(m.data()[0], 2);
    m.trim(2).unwrap();
    assert_eq!(m.data(), &[2, 3, 4, 5, 6, 7, 8, 9, 10]);
    m.truncate(4);
    assert_eq!(m.data(), &[2, 3, 4, 5]);
    m.data_mut()[0] = 0x42;
    assert_eq!(m.as_ref()[0], 0x42);

    assert_eq!(m.trim(5), Err(MbufError::TooShort { requested: 5, len: 4 }));
    assert_eq!(m.adj(5), Err(MbufError::TooShort { requested: 5, len: 4 }));
    assert_eq!(m.len(), 4);
    assert!(m.append(room + 1).is_none());
    assert!(m.prepend(usize::from(Mempool::HEADROOM) + 10).is_none());
    assert!(matches!(m.extend_from_slice(&vec![0; room]), Err(MbufError::NoTailroom { .. })));
    assert_eq!(m.len(), 4);

    m.reset();
    assert_eq!((m.len(), m.headroom()), (0, usize::from(Mempool::HEADROOM)));

    // into_raw / from_raw round trip keeps ownership.
    let raw = m.into_raw();
    assert_eq!(ctx.pool.in_use(), in_use + 1);
    // SAFETY (test): raw came from into_raw just above and is owned here.
    let m = unsafe_round_trip(raw);
    drop(m);
    assert_eq!(ctx.pool.in_use(), in_use);
}

#[allow(unsafe_code)]
fn unsafe_round_trip(raw: *mut dpdk::raw::rte_mbuf) -> Mbuf {
    // SAFETY: raw came from Mbuf::into_raw and nobody else owns it.
    unsafe { Mbuf::from_raw(raw) }
}

fn burst_behaviour(ctx: &Ctx) {
    let in_use = ctx.pool.in_use();
    let mut b: Burst<4> = Burst::new();
    assert_eq!((b.len(), b.capacity(), b.spare()), (0, 4, 4));
    assert_eq!(ctx.pool.alloc_bulk(&mut b, 5), Err(AllocError::NoRoom { requested: 5, spare: 4 }));
    ctx.pool.alloc_bulk(&mut b, 3).unwrap();
    assert_eq!(b.len(), 3);
    for (i, m) in b.iter_mut().enumerate() {
        m.extend_from_slice(&[i as u8]).unwrap();
    }
    b.push(ctx.pool.alloc().unwrap()).unwrap();
    assert!(b.is_full());
    let extra = ctx.pool.alloc().unwrap();
    let back = b.push(extra).expect_err("full burst gives the mbuf back");
    drop(back);
    assert_eq!(ctx.pool.in_use(), in_use + 4);

    b.retain(|m| m.len() == 1 && m.data()[0] != 1);
    assert_eq!(b.iter().map(|m| m.data()[0]).collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!(ctx.pool.in_use(), in_use + 2);

    let drained: Vec<Mbuf> = b.drain().collect();
    assert_eq!(drained.len(), 2);
    assert!(b.is_empty());
    drop(drained);
    assert_eq!(ctx.pool.in_use(), in_use);

    // A partly consumed drain frees the rest.
    ctx.pool.alloc_bulk(&mut b, 4).unwrap();
    let first = b.drain().next();
    assert!(first.is_some());
    assert_eq!(ctx.pool.in_use(), in_use + 1);
    drop(first);

    ctx.pool.alloc_bulk(&mut b, 4).unwrap();
    assert!(b.pop().is_some());
    b.clear();
    assert!(b.is_empty());
    ctx.pool.alloc_bulk(&mut b, 2).unwrap();
    drop(b);
    assert_eq!(ctx.pool.in_use(), in_use);

    let default_burst: Burst = Burst::default();
    assert_eq!(default_burst.capacity(), dpdk::DEFAULT_BURST);
}

fn mempool_errors(ctx: &Ctx) {
    use dpdk::MempoolError;
    let small = Mempool::new(&ctx.eal, "tiny", 7, 0, 512, SocketId::ANY).expect("small pool");
    assert_eq!(small.size(), 7);
    assert!(matches!(
        Mempool::new(&ctx.eal, "tiny", 7, 0, 512, SocketId::ANY),
        Err(MempoolError::Create { .. })
    ));
    let mut all: Burst<8> = Burst::new();
    assert_eq!(small.alloc_bulk(&mut all, 8), Err(AllocError::Exhausted { requested: 8 }));
    small.alloc_bulk(&mut all, 7).unwrap();
    assert!(small.alloc().is_none());
    assert_eq!((small.available(), small.in_use()), (0, 7));
    drop(all);
    assert_eq!(small.available(), 7);
    assert!(matches!(
        Mempool::new(&ctx.eal, "a_name_that_is_far_too_long_for_dpdk", 7, 0, 512, SocketId::ANY),
        Err(MempoolError::InvalidName { .. })
    ));
}

// ----------------------------------------------------------------- ports

fn net_null_two_ports(ctx: &Ctx) {
    let ids = [ctx.eal.port_by_name("net_null0").unwrap(), ctx.eal.port_by_name("net_null1").unwrap()];
    let cfg = PortConfig::new(ctx.pool.clone()).descriptors(256, 256);
    let mut ports: Vec<Port> = ids.iter().map(|&id| Port::configure(&ctx.eal, id, &cfg).expect("configure")).collect();
    assert!(matches!(Port::configure(&ctx.eal, ids[0], &cfg), Err(PortConfigError::AlreadyConfigured { .. })));

    for p in &mut ports {
        p.start().expect("start");
        let link = p.wait_link_up(Duration::from_secs(2)).unwrap();
        assert!(link.up, "{} link down: {link:?}", p.name());
        let info = p.info().unwrap();
        assert_eq!(info.driver_name, "net_null");
        assert!(info.max_rx_queues >= 1 && info.max_tx_queues >= 1);
        p.mac_addr().unwrap();
        p.reset_stats().unwrap();
    }

    let mut rx = ports[0].rx_queue(0).unwrap();
    let mut tx = ports[1].tx_queue(0).unwrap();
    assert!(matches!(ports[0].rx_queue(0), Err(QueueError::Taken { direction: Direction::Rx, .. })));
    assert!(matches!(ports[0].rx_queue(1), Err(QueueError::OutOfRange { .. })));

    let mut burst: Burst = Burst::new();
    let mut received = 0;
    let mut sent = 0;
    for _ in 0..10 {
        received += rx.rx_burst(&mut burst);
        assert!(burst.iter().all(|m| m.len() == 64), "net_null makes 64-byte packets");
        sent += tx.tx_burst(&mut burst);
        burst.clear();
    }
    assert!(received >= 10, "net_null rx gave {received} packets");
    assert_eq!(sent, received, "net_null tx accepts everything");

    // net_null1 was created with size=128.
    let mut rx1 = ports[1].rx_queue(0).unwrap();
    assert!(rx1.rx_burst(&mut burst) > 0);
    assert!(burst.iter().all(|m| m.len() == 128));
    burst.clear();

    let s0 = ports[0].stats().unwrap();
    let s1 = ports[1].stats().unwrap();
    assert!(s0.ipackets >= received as u64, "{s0:?}");
    assert!(s1.opackets >= sent as u64, "{s1:?}");
    let xs = ports[0].xstats().unwrap();
    assert!(!xs.is_empty());
    assert!(xs.iter().any(|(name, v)| name == "rx_good_packets" && *v >= received as u64), "{xs:?}");

    // No stop while a queue handle is out.
    assert!(matches!(ports[0].stop(), Err(PortStateError::QueuesInUse { rx: 1, tx: 0, .. })));
    drop((rx, rx1, tx));
    for mut p in ports {
        p.stop().unwrap();
        assert!(!p.is_started());
        p.close().unwrap();
    }
    assert!(ctx.eal.port_by_name("net_null0").is_err(), "closed port is released");
}

fn net_null_rss(ctx: &Ctx) {
    // net_null advertises RSS (and a 40-byte key): spread over 2 rx queues
    // with a caller-supplied (symmetric) key.
    let id = ctx.eal.port_by_name("net_null2").unwrap();
    let mut cfg = PortConfig::new(ctx.pool.clone()).queues(2, 2).descriptors(64, 64);
    cfg.rss_key = Some([0x6d, 0x5a].repeat(20));
    let mut port = Port::configure(&ctx.eal, id, &cfg).expect("net_null with 2 RSS queues");
    let info = port.info().unwrap();
    assert_ne!(info.rss_offloads, 0, "{info:?}");
    assert_eq!((port.rx_queue_count(), port.tx_queue_count()), (2, 2));
    port.start().unwrap();
    let mut b: Burst = Burst::new();
    for q in 0..2 {
        let mut rx = port.rx_queue(q).unwrap();
        assert!(rx.rx_burst(&mut b) > 0, "rx queue {q} gives packets");
        let mut tx = port.tx_queue(q).unwrap();
        assert_eq!(tx.tx_burst_or_drop(&mut b).1, 0);
    }
    let mut bad = cfg.clone();
    bad.rss_key = Some(vec![0; 3]);
    assert!(matches!(
        Port::configure(&ctx.eal, id, &bad),
        Err(PortConfigError::AlreadyConfigured { .. })
    ));
    drop(port); // dropping the Port stops and closes the device
    assert!(ctx.eal.port_by_name("net_null2").is_err(), "dropped Port closes the device");

    // net_ring has no RSS: two rx queues are refused, with a clear error.
    let ring_id = ctx.eal.port_by_name("net_ring0").unwrap();
    let cfg = PortConfig::new(ctx.pool.clone()).queues(2, 1).descriptors(128, 128);
    match Port::configure(&ctx.eal, ring_id, &cfg) {
        Err(e @ PortConfigError::RssUnsupported { rx_queues: 2, .. }) => assert!(e.to_string().contains("RSS")),
        other => panic!("net_ring has no RSS, expected RssUnsupported, got {other:?}"),
    }
    // The failed attempt left the port free for the next step.
    assert!(ctx.eal.port_by_name("net_ring0").is_ok());
}

/// A 60-byte frame with recognisable bytes.
fn test_frame(tag: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = tag.wrapping_add(i as u8);
    }
    f
}

fn build(pool: &Mempool, bytes: &[u8]) -> Mbuf {
    let mut m = pool.alloc().expect("alloc");
    m.extend_from_slice(bytes).expect("fits");
    m
}

fn rx_until<const N: usize>(rx: &mut dpdk::RxQueue, burst: &mut Burst<N>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while burst.len() < want && Instant::now() < deadline {
        if rx.rx_burst(burst) == 0 {
            dpdk::pause();
        }
    }
}

fn net_ring_loopback(ctx: &mut Ctx) {
    let id = ctx.eal.port_by_name("net_ring0").unwrap();
    let cfg = PortConfig::new(ctx.pool.clone()).descriptors(256, 256);
    let mut port = Port::configure(&ctx.eal, id, &cfg).expect("configure net_ring0");
    port.start().unwrap();
    assert!(port.wait_link_up(Duration::from_secs(2)).unwrap().up);

    // Main lcore: tx a built frame, rx it back, compare bytes exactly.
    let frame = test_frame(7);
    {
        let mut rx = port.rx_queue(0).unwrap();
        let mut tx = port.tx_queue(0).unwrap();
        let mut out: Burst = Burst::new();
        out.push(build(&ctx.pool, &frame)).unwrap();
        assert_eq!(tx.tx_burst(&mut out), 1);
        assert!(out.is_empty());
        let mut got: Burst = Burst::new();
        rx_until(&mut rx, &mut got, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got.as_slice()[0].data(), frame.as_slice());
    }

    // Worker lcore: owns both queue handles, echoes packets with byte 14
    // incremented until told to stop; returns how many it echoed.
    let worker = ctx.eal.worker_lcores()[0];
    let rx = port.rx_queue(0).unwrap();
    let tx = port.tx_queue(0).unwrap();
    let (mut to_worker, mut from_main) = ring::channel(&ctx.eal, "to_worker", 64, SocketId::ANY).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_w = Arc::clone(&stop);
    ctx.eal
        .launch(worker, move || {
            assert_eq!(dpdk::current_lcore(), Some(1));
            let (mut rx, mut tx) = (rx, tx);
            let mut echoed = 0;
            let mut b: Burst = Burst::new();
            while !stop_w.load(Ordering::Acquire) {
                // Packets handed over by the main lcore go out on the port...
                from_main.dequeue_burst(&mut b);
                tx.tx_burst(&mut b);
                // ...come back in through the ring PMD, and are echoed once more.
                let n = rx.rx_burst(&mut b);
                for m in b.iter_mut() {
                    m.data_mut()[14] = m.data()[14].wrapping_add(1);
                }
                echoed += n as i32;
                let _ = tx.tx_burst_or_drop(&mut b);
                if n == 0 {
                    dpdk::pause();
                }
            }
            echoed
        })
        .expect("launch");
    assert!(ctx.eal.is_running(worker));
    assert!(matches!(ctx.eal.launch(worker, || 0), Err(dpdk::LaunchError::Busy { .. })));
    assert!(matches!(ctx.eal.launch(0, || 0), Err(dpdk::LaunchError::NotAWorker { .. })));

    // The worker loops packets forever (tx -> rx -> tx ...), incrementing
    // byte 14 each pass; let a few through, then stop it.
    let mut b: Burst = Burst::new();
    for tag in 0..4 {
        b.push(build(&ctx.pool, &test_frame(tag * 10))).unwrap();
    }
    assert_eq!(to_worker.enqueue_burst(&mut b), 4);
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Release);
    let echoed = ctx.eal.wait(worker);
    assert!(echoed >= 4, "worker echoed {echoed}");
    drop(to_worker);

    // Packets still looping are in the ring PMD; take them back on main.
    let mut rx = port.rx_queue(0).expect("handle returned by the worker");
    let mut back: Burst = Burst::new();
    rx_until(&mut rx, &mut back, 4);
    assert_eq!(back.len(), 4, "all 4 packets survive the loop");
    for m in back.iter() {
        assert_eq!(m.len(), 60);
        assert_eq!(&m.data()[..14], &test_frame(0)[..14]);
    }
    drop((rx, back));

    // A panicking closure: caught, logged, reported, the process survives.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let deliberate = info.payload().downcast_ref::<&str>().is_some_and(|m| m.starts_with("deliberate"));
        if deliberate {
            println!("(worker lcore panicked on purpose)");
        } else {
            default_hook(info);
        }
    }));
    ctx.eal.launch(worker, || panic!("deliberate test panic on a worker lcore")).unwrap();
    assert_eq!(ctx.eal.wait(worker), LCORE_PANICKED);
    ctx.eal.launch(worker, || 7).unwrap();
    assert_eq!(ctx.eal.wait_all(), vec![(worker, 7)]);

    port.stop().unwrap();
    port.close().unwrap();
}

fn ring_between_lcores(ctx: &Ctx) {
    let in_use = ctx.pool.in_use();
    let (mut tx, mut rx) = ring::channel(&ctx.eal, "test_ring", 16, SocketId::ANY).unwrap();
    assert!(matches!(
        ring::channel(&ctx.eal, "test_ring", 16, SocketId::ANY),
        Err(dpdk::RingError::Create { .. })
    ));
    assert_eq!(tx.free_count(), 16);

    // Ring full: what does not fit stays in the burst.
    let mut b: Burst<32> = Burst::new();
    ctx.pool.alloc_bulk(&mut b, 20).unwrap();
    for (i, m) in b.iter_mut().enumerate() {
        m.extend_from_slice(&[i as u8]).unwrap();
    }
    assert_eq!(tx.enqueue_burst(&mut b), 16);
    assert_eq!(b.len(), 4);
    assert_eq!(b.as_slice()[0].data(), &[16]);
    let last = b.pop().unwrap();
    let last = tx.enqueue(last).expect_err("ring full");
    drop((b, last));
    assert_eq!(rx.len(), 16);

    // The consumer end moves to the worker lcore, which checks order.
    let worker = ctx.eal.worker_lcores()[0];
    ctx.eal
        .launch(worker, move || {
            let mut got: Burst<32> = Burst::new();
            rx.dequeue_burst(&mut got);
            let ok = got.iter().enumerate().all(|(i, m)| m.data() == [i as u8]);
            let single = rx.dequeue();
            if ok && single.is_none() && rx.is_empty() {
                got.len() as i32
            } else {
                -1
            }
        })
        .unwrap();
    assert_eq!(ctx.eal.wait(worker), 16);
    assert_eq!(ctx.pool.in_use(), in_use);

    // Dropping the ends frees what is still queued.
    let (mut tx2, rx2) = ring::channel(&ctx.eal, "test_ring2", 8, SocketId::ANY).unwrap();
    tx2.enqueue(ctx.pool.alloc().unwrap()).unwrap();
    tx2.enqueue(ctx.pool.alloc().unwrap()).unwrap();
    assert_eq!(rx2.len(), 2);
    drop((tx2, rx2));
    assert_eq!(ctx.pool.in_use(), in_use);
}

fn cleanup(ctx: Ctx) {
    let Ctx { eal, pool } = ctx;
    assert_eq!(pool.in_use(), 0, "no mbuf leaked by the steps");
    drop(pool);
    eal.cleanup().expect("rte_eal_cleanup with nothing alive");
}
