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
use std::time::{Duration, Instant};

use dpdk::{
    Eal, EalArgs, EalError, Mempool, Port, PortConfig, PortConfigError, PortId, PortLookupError, SocketId, PLUGIN_DIR,
};

mod mbufs;
mod ports;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("");
        std::process::exit(child(name));
    }
    if !dpdk::testing::require_root_and_hugepages() {
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
    let pool = Mempool::new(&eal, "test_pool", 4095, 64, Mempool::DEFAULT_DATA_ROOM, SocketId::ANY).expect("mempool");
    let mut ctx = Ctx { eal, pool };

    runner.step("eal_init_once_and_lcores", || eal_init_once_and_lcores(&ctx));
    runner.step("configured_devices_became_ports", || configured_devices_became_ports(&ctx));
    runner.step("missing_port_errors_name_the_plugin_dir", || missing_port_errors(&ctx));
    runner.step("mbuf_lengths", || mbufs::mbuf_lengths(&ctx));
    runner.step("burst_behaviour", || mbufs::burst_behaviour(&ctx));
    runner.step("mempool_errors", || mbufs::mempool_errors(&ctx));
    runner.step("net_null_two_ports_rx_tx_stats", || ports::net_null_two_ports(&ctx));
    runner.step("net_null_rss_over_two_queues", || ports::net_null_rss(&ctx));
    runner.step("net_ring_loopback_exact_bytes_and_lcores", || ports::net_ring_loopback(&mut ctx));
    runner.step("ring_moves_mbufs_between_lcores", || mbufs::ring_between_lcores(&ctx));
    runner.step("cleanup_releases_everything", move || cleanup(ctx));

    std::process::exit(runner.finish());
}

/// Returns whether the EAL tests can run here (root, free hugepages). When
/// they cannot: fails (panics) if `CI=true`, else prints why and returns false.
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

/// What the steps share: the one EAL and a pool.
pub struct Ctx {
    /// The EAL, initialised once.
    pub eal: Eal,
    /// A mempool for the steps' mbufs.
    pub pool: Mempool,
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

fn cleanup(ctx: Ctx) {
    let Ctx { eal, pool } = ctx;
    assert_eq!(pool.in_use(), 0, "no mbuf leaked by the steps");
    drop(pool);
    eal.cleanup().expect("rte_eal_cleanup with nothing alive");
}
