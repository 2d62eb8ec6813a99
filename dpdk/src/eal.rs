//! The environment abstraction layer: init once, look up ports, clean up.

use std::ffi::{c_char, CString};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::errno::Errno;
use crate::ethdev::{port_name, PortId};
use crate::live;

/// The directory from which the EAL loads driver plugins (PMDs) of the DPDK
/// this crate was built against, found at build time, e.g.
/// `/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0`.
pub const PLUGIN_DIR: &str = dpdk_sys::PLUGIN_DIR;

const NEVER: u8 = 0;
const STARTED: u8 = 1;
const FINISHED: u8 = 2;

/// `rte_eal_init` may run only once per process, whether it succeeds or not.
static INIT: AtomicU8 = AtomicU8::new(NEVER);

/// Builder for EAL command-line arguments.
///
/// ```
/// let args = dpdk::EalArgs::new("dataplane")
///     .lcores("0-1")
///     .no_pci()
///     .file_prefix("dataplane")
///     .vdev("net_null0")
///     .build();
/// assert_eq!(args[0], "dataplane");
/// assert!(args.contains(&"--file-prefix=dataplane".to_string()));
/// ```
///
/// Every DPDK process running at the same time as another needs its own
/// [`file_prefix`](EalArgs::file_prefix) or [`in_memory`](EalArgs::in_memory).
#[derive(Debug, Clone)]
pub struct EalArgs {
    args: Vec<String>,
}

impl EalArgs {
    /// Starts with the program name (`argv[0]`).
    pub fn new(program: impl Into<String>) -> EalArgs {
        EalArgs { args: vec![program.into()] }
    }

    /// `-l LIST`: the lcores to use, e.g. `"0-1"` or `"2,4,6"`. The first is
    /// the main lcore unless [`main_lcore`](EalArgs::main_lcore) says otherwise.
    pub fn lcores(self, list: &str) -> EalArgs {
        self.arg("-l").arg(list)
    }

    /// `--main-lcore ID`.
    pub fn main_lcore(self, lcore: u32) -> EalArgs {
        self.arg("--main-lcore").arg(lcore.to_string())
    }

    /// `--no-pci`: do not scan the PCI bus (vdev-only setups).
    pub fn no_pci(self) -> EalArgs {
        self.arg("--no-pci")
    }

    /// `--in-memory`: keep no runtime files or hugepage files, so any number
    /// of such processes can run side by side (no secondary processes).
    pub fn in_memory(self) -> EalArgs {
        self.arg("--in-memory")
    }

    /// `--file-prefix=PREFIX`: a private runtime directory and hugepage file
    /// prefix. Needed for each of several DPDK processes running at once.
    pub fn file_prefix(self, prefix: &str) -> EalArgs {
        self.arg(format!("--file-prefix={prefix}"))
    }

    /// `--vdev DEVARGS`: a virtual device such as `net_null0`,
    /// `net_ring0`, `net_memif0,role=server,socket=/run/x.sock` or
    /// `net_af_packet0,iface=veth0`.
    pub fn vdev(self, devargs: &str) -> EalArgs {
        self.arg("--vdev").arg(devargs)
    }

    /// `-a DEVICE`: allow (probe) a PCI device, e.g. `0000:01:00.0`.
    pub fn allow(self, pci: &str) -> EalArgs {
        self.arg("-a").arg(pci)
    }

    /// `-m MB`: hugepage memory to reserve up front.
    pub fn memory_mb(self, mb: u32) -> EalArgs {
        self.arg("-m").arg(mb.to_string())
    }

    /// `--no-telemetry`: no telemetry socket.
    pub fn no_telemetry(self) -> EalArgs {
        self.arg("--no-telemetry")
    }

    /// `--log-level=LEVEL`, e.g. `"notice"` or `"pmd.net.null:debug"`.
    pub fn log_level(self, level: &str) -> EalArgs {
        self.arg(format!("--log-level={level}"))
    }

    /// `-d PATH`: load a driver plugin (a `.so` or a directory of them) in
    /// addition to the default [`PLUGIN_DIR`].
    pub fn plugin(self, path: &str) -> EalArgs {
        self.arg("-d").arg(path)
    }

    /// Any other argument, verbatim.
    pub fn arg(mut self, arg: impl Into<String>) -> EalArgs {
        self.args.push(arg.into());
        self
    }

    /// The argument vector for [`Eal::init`].
    pub fn build(self) -> Vec<String> {
        self.args
    }
}

/// Why [`Eal::init`] failed.
#[derive(Debug, thiserror::Error)]
pub enum EalError {
    /// `rte_eal_init` was already called in this process (successfully or
    /// not); DPDK supports a single initialisation per process.
    #[error("the DPDK EAL was already initialised in this process (it can be initialised only once)")]
    AlreadyInitialized,
    /// The argument list was empty (it needs at least the program name).
    #[error("EAL arguments must start with the program name")]
    NoProgramName,
    /// An argument contained a NUL byte.
    #[error("EAL argument {0:?} contains a NUL byte")]
    InvalidArgument(String),
    /// A `--vdev` names a driver for which no plugin exists in the plugin
    /// directory, so the EAL could not create the device.
    #[error(
        "no driver `{driver}` for device `{device}`: no librte_{driver}.so in the DPDK plugin \
         directory {plugin_dir} (check the device name, or install the driver there or pass it with -d)"
    )]
    DriverMissing {
        /// The device as passed, e.g. `net_bogus0`.
        device: String,
        /// The driver name derived from it, e.g. `net_bogus`.
        driver: String,
        /// The EAL plugin directory searched.
        plugin_dir: String,
    },
    /// `rte_eal_init` failed for another reason (bad option, no hugepages,
    /// a runtime directory in use by another process, a device that failed to
    /// probe, ...). DPDK's log on stderr has the details.
    #[error(
        "rte_eal_init failed: {errno} (see the EAL log above; several DPDK processes at once \
         need distinct --file-prefix or --in-memory; hugepages must be reserved; drivers load from {plugin_dir})"
    )]
    InitFailed {
        /// The `rte_errno` after the failure.
        errno: Errno,
        /// The EAL plugin directory, for driver problems.
        plugin_dir: String,
    },
}

/// Why [`Eal::cleanup`] did not release DPDK's resources.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// Pools, rings or ports (or mbufs, which keep their pool) are still
    /// alive; releasing the memory under them would be unsound, so
    /// `rte_eal_cleanup` was skipped.
    #[error("{live} DPDK pools, rings or ports are still alive; rte_eal_cleanup skipped")]
    ResourcesAlive {
        /// How many objects are alive.
        live: usize,
    },
    /// `rte_eal_cleanup` returned an error.
    #[error("rte_eal_cleanup failed: {0}")]
    Failed(Errno),
}

/// Why a device did not turn up as a port.
#[derive(Debug, thiserror::Error)]
pub enum PortLookupError {
    /// The name contained a NUL byte or was empty.
    #[error("invalid port name {0:?}")]
    InvalidName(String),
    /// The device is a vdev whose driver plugin is not in the plugin directory.
    #[error("no port `{name}`: no driver `{driver}` (librte_{driver}.so) in the DPDK plugin directory {plugin_dir}")]
    DriverMissing {
        /// The device name looked up.
        name: String,
        /// The driver name derived from it.
        driver: String,
        /// The EAL plugin directory searched.
        plugin_dir: String,
    },
    /// No port has this name.
    #[error(
        "no port `{name}` (ports: [{}]): was it passed as --vdev or -a, did it probe (bad device \
         arguments fail the probe: see the EAL log), and did its driver load from the DPDK plugin \
         directory {plugin_dir}?",
        known.join(", ")
    )]
    NotFound {
        /// The device name looked up.
        name: String,
        /// The names of the ports that do exist.
        known: Vec<String>,
        /// The EAL plugin directory.
        plugin_dir: String,
    },
}

/// The initialised DPDK environment (EAL) of this process.
///
/// There is at most one per process. It stays on the thread that created it,
/// which is the main lcore: DPDK requires lcore launches and waits to come
/// from there, so `Eal` is neither `Send` nor `Sync`.
///
/// Dropping it waits for all worker lcores (tell their closures to return
/// first), then calls `rte_eal_cleanup` if no pool, ring or port is left
/// (see [`Eal::cleanup`]).
#[derive(Debug)]
pub struct Eal {
    devices: Vec<String>,
    /// Whether `-d` added plugins beyond PLUGIN_DIR (then a driver missing
    /// from PLUGIN_DIR may still exist).
    extra_plugins: bool,
    cleaned: bool,
    _not_send: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises DPDK with command-line style arguments
    /// (`args[0]` is the program name), e.g.
    /// `["prog", "-l", "0-1", "--no-pci", "--in-memory", "--vdev", "net_null0"]`
    /// (see [`EalArgs`]).
    ///
    /// Call it from the thread that will be the main lcore, once per process:
    /// a second call returns [`EalError::AlreadyInitialized`]. When several
    /// DPDK processes run at once, give each its own `--file-prefix` or
    /// `--in-memory`.
    ///
    /// Driver plugins (`net_null`, `net_ring`, `net_memif`, `net_af_packet`,
    /// `net_tap`, NIC drivers, ...) are loaded from [`PLUGIN_DIR`] by the EAL
    /// itself; `-d PATH` adds more.
    ///
    /// The EAL pins the calling thread to the main lcore's CPU; threads spawned
    /// from it afterwards inherit that affinity (set their own if they should
    /// run elsewhere).
    pub fn init(args: &[String]) -> Result<Eal, EalError> {
        if args.is_empty() {
            return Err(EalError::NoProgramName);
        }
        let cstrings = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| EalError::InvalidArgument(a.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        if INIT.compare_exchange(NEVER, STARTED, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Err(EalError::AlreadyInitialized);
        }
        let devices = configured_devices(args);
        let extra_plugins = args.iter().skip(1).any(|a| a == "-d" || a.starts_with("-d"));
        // The EAL may keep pointers into argv (and getopt permutes the array),
        // so both the strings and the array live for the rest of the process.
        let argv: &'static mut [*mut c_char] = Box::leak(
            cstrings
                .into_iter()
                .map(CString::into_raw)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let argc = i32::try_from(argv.len() - 1).unwrap_or(i32::MAX);
        // SAFETY: argv holds argc valid NUL-terminated strings followed by a
        // NULL, all leaked so they outlive the EAL; INIT guarantees this is the
        // only rte_eal_init call in the process.
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        INIT.store(FINISHED, Ordering::SeqCst);
        if ret < 0 {
            let errno = Errno::last();
            let missing =
                if extra_plugins { None } else { devices.iter().find_map(|d| missing_driver(d).map(|drv| (d, drv))) };
            if let Some((device, driver)) = missing {
                return Err(EalError::DriverMissing {
                    device: device.clone(),
                    driver,
                    plugin_dir: PLUGIN_DIR.to_owned(),
                });
            }
            return Err(EalError::InitFailed { errno, plugin_dir: PLUGIN_DIR.to_owned() });
        }
        tracing::debug!(?args, "DPDK EAL initialised");
        Ok(Eal { devices, extra_plugins, cleaned: false, _not_send: PhantomData })
    }

    /// The device names given with `--vdev` / `-a` (without their
    /// `,key=value` options), in order: the ports this process expects.
    pub fn configured_devices(&self) -> &[String] {
        &self.devices
    }

    /// Checks that every configured device ([`configured_devices`]) became a
    /// port, returning their ids in the same order.
    ///
    /// [`configured_devices`]: Eal::configured_devices
    pub fn check_devices(&self) -> Result<Vec<PortId>, PortLookupError> {
        self.devices.iter().map(|d| self.port_by_name(d)).collect()
    }

    /// The port of a device by name (`rte_eth_dev_get_port_by_name`): a vdev
    /// name such as `net_null0` (any `,options` suffix is ignored) or a PCI
    /// address such as `0000:01:00.0`.
    pub fn port_by_name(&self, name: &str) -> Result<PortId, PortLookupError> {
        let name = device_name(name);
        let c = CString::new(name).map_err(|_| PortLookupError::InvalidName(name.to_owned()))?;
        if name.is_empty() {
            return Err(PortLookupError::InvalidName(name.to_owned()));
        }
        let mut id = 0u16;
        // SAFETY: c is a valid NUL-terminated string and id a valid u16 out
        // pointer, both live for the call.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if ret == 0 {
            return Ok(PortId(id));
        }
        if let Some(driver) = missing_driver(name).filter(|_| !self.extra_plugins) {
            return Err(PortLookupError::DriverMissing {
                name: name.to_owned(),
                driver,
                plugin_dir: PLUGIN_DIR.to_owned(),
            });
        }
        Err(PortLookupError::NotFound {
            name: name.to_owned(),
            known: self.ports().into_iter().filter_map(|p| self.port_name(p)).collect(),
            plugin_dir: PLUGIN_DIR.to_owned(),
        })
    }

    /// All available ports (`RTE_ETH_FOREACH_DEV`).
    pub fn ports(&self) -> Vec<PortId> {
        let mut out = Vec::new();
        // SAFETY: rte_eth_find_next_owned_by only reads the ethdev table.
        let mut p = unsafe { dpdk_sys::rte_eth_find_next_owned_by(0, u64::from(dpdk_sys::RTE_ETH_DEV_NO_OWNER)) };
        while p < u64::from(dpdk_sys::RTE_MAX_ETHPORTS) {
            let id = p as u16;
            out.push(PortId(id));
            // SAFETY: as above.
            p = unsafe { dpdk_sys::rte_eth_find_next_owned_by(id + 1, u64::from(dpdk_sys::RTE_ETH_DEV_NO_OWNER)) };
        }
        out
    }

    /// The device name of a port, if the port exists.
    pub fn port_name(&self, port: PortId) -> Option<String> {
        port_name(port)
    }

    /// The main lcore (the thread that called [`Eal::init`]).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: reads the EAL configuration, initialised since self exists.
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// The enabled worker lcores (every lcore of `-l` but the main one), in
    /// increasing order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: rte_get_next_lcore reads the EAL configuration; u32::MAX is
        // the documented "start" value (-1) of RTE_LCORE_FOREACH_WORKER.
        let mut i = unsafe { dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while i < dpdk_sys::RTE_MAX_LCORE {
            out.push(i);
            // SAFETY: as above.
            i = unsafe { dpdk_sys::rte_get_next_lcore(i, 1, 0) };
        }
        out
    }

    /// The NUMA socket of an lcore.
    pub fn lcore_socket(&self, lcore: u32) -> u32 {
        // rte_lcore_to_socket_id indexes a table without a bounds check.
        if lcore >= dpdk_sys::RTE_MAX_LCORE {
            return 0;
        }
        // SAFETY: lcore < RTE_MAX_LCORE, the size of the table it indexes.
        unsafe { dpdk_sys::rte_lcore_to_socket_id(lcore) }
    }

    /// Releases DPDK's resources now (`rte_eal_cleanup`) after waiting for
    /// all worker lcores. Only done if no pool, ring or port is alive; the
    /// process cannot use DPDK again afterwards. Dropping the `Eal` does the
    /// same and logs instead of returning the error.
    pub fn cleanup(mut self) -> Result<(), CleanupError> {
        self.cleanup_inner()
    }

    fn cleanup_inner(&mut self) -> Result<(), CleanupError> {
        if self.cleaned {
            return Ok(());
        }
        self.wait_all();
        let live = live::count();
        if live > 0 {
            return Err(CleanupError::ResourcesAlive { live });
        }
        self.cleaned = true;
        // SAFETY: no pool, ring or port is alive (live count 0), all worker
        // lcores are idle, and self is the only Eal; nothing references
        // DPDK memory any more.
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        if ret < 0 {
            return Err(CleanupError::Failed(Errno::from_ret(ret)));
        }
        Ok(())
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup_inner() {
            tracing::warn!("DPDK EAL not cleaned up: {e}");
        }
    }
}

/// The device part of a devargs string: `net_null0,size=64` → `net_null0`;
/// a short PCI address `01:00.0` gets its `0000:` domain.
fn device_name(devargs: &str) -> &str {
    devargs.split(',').next().unwrap_or("").trim()
}

/// The device names of the `--vdev`, `-a`/`--allow` (and legacy `-w`)
/// arguments.
fn configured_devices(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let value = match a.as_str() {
            "--vdev" | "-a" | "--allow" | "-w" => it.next().cloned(),
            s => ["--vdev=", "--allow=", "-a"]
                .iter()
                .find_map(|p| s.strip_prefix(p).filter(|v| !v.is_empty()).map(str::to_owned)),
        };
        if let Some(v) = value {
            let name = device_name(&v);
            let name = if is_short_pci(name) { format!("0000:{name}") } else { name.to_owned() };
            out.push(name);
        }
    }
    out
}

/// `bb:dd.f` without a PCI domain.
fn is_short_pci(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 7 && b[2] == b':' && b[5] == b'.'
}

/// For a vdev name such as `net_bogus0`, the driver (`net_bogus`) if no
/// plugin for it exists in [`PLUGIN_DIR`]. `None` for PCI devices, for
/// drivers that exist, or when the plugin directory is unknown.
fn missing_driver(device: &str) -> Option<String> {
    let name = device_name(device);
    if name.contains(':') || PLUGIN_DIR.is_empty() {
        return None;
    }
    let driver = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if driver.is_empty() {
        return None;
    }
    let dir = Path::new(PLUGIN_DIR);
    if !dir.is_dir() {
        return Some(driver.to_owned());
    }
    let exists = |drv: &str| dir.join(format!("librte_{drv}.so")).exists();
    // Drivers register aliases: `eth_af_packet` is `net_af_packet`.
    let canonical = driver.strip_prefix("eth_").map(|rest| format!("net_{rest}"));
    if exists(driver) || canonical.as_deref().is_some_and(exists) {
        None
    } else {
        Some(driver.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn builder_makes_the_expected_argv() {
        let a = EalArgs::new("p").lcores("0-1").no_pci().in_memory().vdev("net_null0").build();
        assert_eq!(a, strings(&["p", "-l", "0-1", "--no-pci", "--in-memory", "--vdev", "net_null0"]));
    }

    #[test]
    fn configured_devices_are_parsed_from_args() {
        let a = strings(&[
            "p",
            "-l",
            "0",
            "--vdev",
            "net_null0,size=64",
            "--vdev=net_ring0",
            "-a",
            "01:00.0",
            "-a0000:02:00.1",
            "--file-prefix=x",
        ]);
        assert_eq!(configured_devices(&a), strings(&["net_null0", "net_ring0", "0000:01:00.0", "0000:02:00.1"]));
    }

    #[test]
    fn missing_driver_is_detected_from_the_plugin_dir() {
        assert_eq!(missing_driver("net_null0"), None);
        assert_eq!(missing_driver("net_ring0,nodeaction=x"), None);
        assert_eq!(missing_driver("eth_af_packet0"), None);
        assert_eq!(missing_driver("net_bogus7"), Some("net_bogus".to_owned()));
        assert_eq!(missing_driver("0000:01:00.0"), None);
    }

    #[test]
    fn init_rejects_empty_and_nul_args_without_consuming_the_once() {
        assert!(matches!(Eal::init(&[]), Err(EalError::NoProgramName)));
        assert!(matches!(Eal::init(&strings(&["p", "a\0b"])), Err(EalError::InvalidArgument(_))));
        assert_eq!(INIT.load(Ordering::SeqCst), NEVER);
    }
}
