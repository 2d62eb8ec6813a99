//! Harness for lab tests: each test builds its own copy of the ACM lab
//! (`lab/lab.sh up PREFIX`) under a unique prefix, so tests run in parallel and
//! beside a running demo, runs commands inside the lab's network namespaces,
//! and tears the lab down again when the [`Lab`] is dropped.
//!
//! ```no_run
//! use std::time::Duration;
//! use labtest::{Lab, Role};
//!
//! if !labtest::require_lab_prereqs() {
//!     return; // printed "skipped: <reason>" (or panicked, with CI=true)
//! }
//! let lab = Lab::up_unique().unwrap();
//! let body = lab.curl_in(Role::Rs(1), "http://127.0.0.1/", Duration::from_secs(5)).unwrap();
//! assert_eq!(body, "rs1\n");
//! // dropping `lab` runs `lab/lab.sh down PREFIX`
//! ```
//!
//! Set `LABTEST_KEEP=1` to leave labs standing after a test (for a post-mortem);
//! remove them with `lab/lab.sh down PREFIX`.

#![deny(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use appliance_config::presets::{self, LabPorts};
use appliance_config::{Appliance, Timeouts};

mod seeds;
pub use seeds::fuzz_seed;

/// The virtual IP the appliance serves, on the client side.
pub const VIP: &str = "10.0.0.100";
/// The virtual port.
pub const VPORT: u16 = 80;
/// The client's address (netns `${P}-client`).
pub const CLIENT_ADDR: &str = "10.0.0.2";
/// The appliance's port 0 address: the client's default gateway.
pub const PORT0_ADDR: &str = "10.0.0.1";
/// The appliance's port 1 address: the real servers' default gateway.
pub const PORT1_ADDR: &str = "10.0.1.1";
/// How many real servers a lab has.
pub const RS_COUNT: u8 = 3;

/// The address of real server `i` (1-based): 10.0.1.11, .12, .13.
pub fn rs_addr(i: u8) -> String {
    format!("10.0.1.{}", 10 + u32::from(i))
}

/// Where a command runs: the root namespace or one of the lab's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The root network namespace (where the appliance's ports live).
    Root,
    /// `${P}-client`: the client, 10.0.0.2.
    Client,
    /// `${P}-lan`: the bridge joining the real servers and port 1.
    Lan,
    /// `${P}-rsN`: real server N (1-based).
    Rs(u8),
    /// `${P}-kgw`: the kernel stand-in for the appliance (`Lab::kernel_gateway`).
    KernelGateway,
}

impl Role {
    /// The netns name suffix, as after `${P}-`; `None` for the root namespace.
    pub fn suffix(self) -> Option<String> {
        match self {
            Role::Root => None,
            Role::Client => Some("client".into()),
            Role::Lan => Some("lan".into()),
            Role::Rs(i) => Some(format!("rs{i}")),
            Role::KernelGateway => Some("kgw".into()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix().as_deref().unwrap_or("root"))
    }
}

impl FromStr for Role {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Role> {
        match s {
            "root" => Ok(Role::Root),
            "client" => Ok(Role::Client),
            "lan" => Ok(Role::Lan),
            "kgw" => Ok(Role::KernelGateway),
            _ => s
                .strip_prefix("rs")
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| (1..=RS_COUNT).contains(n))
                .map(Role::Rs)
                .ok_or_else(|| LabError::BadRole(s.to_owned())),
        }
    }
}

/// What went wrong in the harness.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A program could not be started at all (not installed, not executable).
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// `lab/lab.sh` exited with an error.
    #[error("lab/lab.sh {args} failed ({status}): {stderr}")]
    LabScript {
        /// Its arguments.
        args: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A command run in a lab namespace exited with an error.
    #[error("`{command}` in {role} failed ({status}): {stderr}")]
    Command {
        /// Where it ran.
        role: Role,
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A lab prefix that `lab/lab.sh` would refuse.
    #[error("bad lab prefix {0:?}: want [a-z][a-z0-9]*, at most 12 characters")]
    BadPrefix(String),
    /// A role name that is none of root, client, lan, kgw, rs1..rs3.
    #[error("bad role {0:?}: want root, client, lan, kgw or rs1..rs3")]
    BadRole(String),
    /// The lab's state (`ports.env`) is missing or lacks a key.
    #[error("lab state {path}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// A command succeeded but printed something the harness cannot read.
    #[error("unexpected output from {what}: {detail}")]
    Unexpected {
        /// The command.
        what: String,
        /// What it printed.
        detail: String,
    },
}

/// The harness's result type.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// The repository root (this crate lives in `labtest/` under it).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// `lab/lab.sh` in the repository.
pub fn lab_script() -> PathBuf {
    repo_root().join("lab").join("lab.sh")
}

/// The directory holding one state dir per lab (`ACM_LAB_RUN`, default `/run/acm-lab`).
pub fn run_root() -> PathBuf {
    std::env::var_os("ACM_LAB_RUN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/run/acm-lab"))
}

/// A lab prefix no other running test or demo uses: `t` + pid + counter + clock,
/// 12 characters at most (interface names are `${P}br1`, at most 15).
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xff;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let pid = std::process::id() & 0xff_ffff;
    format!("t{pid:x}{n:02x}{:03x}", (nanos >> 10) & 0xfff)
}

/// Whether a prefix is one `lab/lab.sh` accepts.
pub fn valid_prefix(p: &str) -> bool {
    let b = p.as_bytes();
    (1..=12).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Whether this runs in CI (`CI=true`), where a missing prerequisite is a failure.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// A lab test cannot run here: in CI this panics (the machine is broken);
/// elsewhere it prints `skipped: <reason>` and returns `false`.
pub fn skip(reason: &str) -> bool {
    if in_ci() {
        panic!("lab prerequisite missing in CI: {reason}");
    }
    // Straight to stderr, not eprintln!: the test harness captures (and hides)
    // the output of passing tests, and a skip must be seen.
    let _ = writeln!(io::stderr().lock(), "skipped: {reason}");
    false
}

/// The effective user id, from /proc/self/status.
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether a program is on PATH (or in the sbin directories a root shell has).
pub fn have_program(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .any(|dir| dir.join(name).is_file())
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `true` when running as root; otherwise [`skip`]s.
pub fn require_root() -> bool {
    if euid() == Some(0) {
        true
    } else {
        skip("not root (lab tests need network namespaces; run as root or via make test)")
    }
}

/// `true` when a lab can be built here: root, iproute2 with netns, ethtool,
/// nginx, curl, python3, hugepages reserved and hugetlbfs mounted. Otherwise
/// [`skip`]s (prints the reason and returns `false`; panics with `CI=true`).
pub fn require_lab_prereqs() -> bool {
    if !require_root() {
        return false;
    }
    for prog in ["ip", "ethtool", "nginx", "curl", "python3", "flock", "bash", "sha256sum"] {
        if !have_program(prog) {
            return skip(&format!("{prog} not found (run make setup)"));
        }
    }
    if !lab_script().is_file() {
        return skip(&format!("{} is missing", lab_script().display()));
    }
    match Command::new("ip").args(["netns", "list"]).stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => {}
        _ => return skip("`ip netns` does not work here"),
    }
    let pages = read_u64("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").unwrap_or(0);
    if pages == 0 {
        return skip("no 2 MB hugepages reserved (run make setup)");
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if !mounts.lines().any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs")) {
        return skip("hugetlbfs is not mounted (run make setup)");
    }
    true
}

/// [`require_lab_prereqs`], plus `dpdk-testpmd` and at least 256 MB of free hugepages.
pub fn require_dpdk_prereqs() -> bool {
    if !require_lab_prereqs() {
        return false;
    }
    if !have_program("dpdk-testpmd") {
        return skip("dpdk-testpmd not found (run make setup)");
    }
    let free = read_u64("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").unwrap_or(0);
    if free < 128 {
        return skip(&format!("only {free} free 2 MB hugepages, need 128"));
    }
    true
}

/// What is left of a lab with this prefix: netns names, root-namespace ports,
/// the state dir and live processes started from it. Empty once it is down.
pub fn remnants(prefix: &str) -> Vec<String> {
    let mut left = Vec::new();
    let dash = format!("{prefix}-");
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&dash) {
                left.push(format!("netns {name}"));
            }
        }
    }
    for port in ["p0", "p1"] {
        let dev = format!("{prefix}{port}");
        if Path::new("/sys/class/net").join(&dev).exists() {
            left.push(format!("link {dev}"));
        }
    }
    let state = run_root().join(prefix);
    if state.exists() {
        left.push(format!("state dir {}", state.display()));
    }
    let needle = format!("{}/", state.display());
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for e in procs.flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) {
                left.push(format!("process {pid}: {}", cmdline.trim()));
            }
        }
    }
    left
}

/// Checksum and segmentation offloads of one interface (`ethtool -k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offloads {
    /// `rx-checksumming`
    pub rx_checksum: bool,
    /// `tx-checksumming`
    pub tx_checksum: bool,
    /// `tcp-segmentation-offload`
    pub tso: bool,
    /// `generic-segmentation-offload`
    pub gso: bool,
    /// `generic-receive-offload`
    pub gro: bool,
}

impl Offloads {
    /// Parse `ethtool -k` output; `None` if a feature is not listed.
    pub fn parse(text: &str) -> Option<Offloads> {
        let get = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(|v| v.trim_start().starts_with("on"))
        };
        Some(Offloads {
            rx_checksum: get("rx-checksumming")?,
            tx_checksum: get("tx-checksumming")?,
            tso: get("tcp-segmentation-offload")?,
            gso: get("generic-segmentation-offload")?,
            gro: get("generic-receive-offload")?,
        })
    }

    /// All five off, as DPDK af_packet ports need.
    pub fn all_off(&self) -> bool {
        !(self.rx_checksum || self.tx_checksum || self.tso || self.gso || self.gro)
    }
}

/// A running lab. Dropping it runs `lab/lab.sh down PREFIX` (unless `LABTEST_KEEP=1`).
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    state: PathBuf,
    ports: BTreeMap<String, String>,
    down: bool,
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    std::iter::once(cmd).chain(args.iter().copied()).collect::<Vec<_>>().join(" ")
}

fn run_lab_script(args: &[&str]) -> Result<Output> {
    let out = Command::new("bash")
        .arg(lab_script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn { program: lab_script().display().to_string(), source })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::LabScript {
            args: args.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

impl Lab {
    /// Build a lab named `prefix` (`lab/lab.sh up PREFIX`) and read its `ports.env`.
    pub fn up(prefix: &str) -> Result<Lab> {
        if !valid_prefix(prefix) {
            return Err(LabError::BadPrefix(prefix.to_owned()));
        }
        run_lab_script(&["up", prefix])?;
        let mut lab =
            Lab { prefix: prefix.to_owned(), state: run_root().join(prefix), ports: BTreeMap::new(), down: false };
        // On error from here on, Drop takes the half-made lab down again.
        lab.reload()?;
        Ok(lab)
    }

    /// [`Lab::up`] under a fresh [`unique_prefix`].
    pub fn up_unique() -> Result<Lab> {
        Lab::up(&unique_prefix())
    }

    /// Re-read `ports.env` (e.g. after `kernel_gateway`).
    pub fn reload(&mut self) -> Result<()> {
        let path = self.state.join("ports.env");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| LabError::State { path: path.clone(), reason: e.to_string() })?;
        self.ports = parse_env(&text);
        for key in ["PORT0_IFACE", "PORT1_IFACE", "PORT0_VDEV", "PORT1_VDEV", "BIG_SHA256", "BIG_SIZE"] {
            if !self.ports.contains_key(key) {
                return Err(LabError::State { path, reason: format!("no {key}") });
            }
        }
        Ok(())
    }

    /// The lab's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The lab's state dir (`/run/acm-lab/PREFIX`): ports.env, nginx configs and logs.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// A value from the lab's `ports.env` (PORT0_MAC, CLIENT_MAC, VIP, ...).
    pub fn env(&self, key: &str) -> Option<&str> {
        self.ports.get(key).map(String::as_str)
    }

    fn env_or_empty(&self, key: &str) -> &str {
        self.env(key).unwrap_or("")
    }

    /// The netns name for a role (`${P}-client`, ...); `None` for [`Role::Root`].
    pub fn netns(&self, role: Role) -> Option<String> {
        role.suffix().map(|s| format!("{}-{s}", self.prefix))
    }

    /// Port `port`'s interface in the root netns: `${P}p0` or `${P}p1`.
    pub fn port_iface(&self, port: u8) -> String {
        format!("{}p{port}", self.prefix)
    }

    /// Port 0's interface (towards the client).
    pub fn port0_iface(&self) -> &str {
        self.env_or_empty("PORT0_IFACE")
    }

    /// Port 1's interface (towards the real servers).
    pub fn port1_iface(&self) -> &str {
        self.env_or_empty("PORT1_IFACE")
    }

    /// The DPDK `--vdev` argument for port `port` (net_af_packet on its interface).
    pub fn port_vdev(&self, port: u8) -> &str {
        self.env_or_empty(if port == 0 { "PORT0_VDEV" } else { "PORT1_VDEV" })
    }

    /// The SHA-256 (hex) of `/big.bin`, the same file on every real server.
    pub fn big_sha256(&self) -> &str {
        self.env_or_empty("BIG_SHA256")
    }

    /// The size in bytes of `/big.bin`.
    pub fn big_size(&self) -> u64 {
        self.env_or_empty("BIG_SIZE").parse().unwrap_or(0)
    }

    /// Every veth end of the lab, with the namespace it lives in.
    pub fn veth_ends(&self) -> Vec<(Role, String)> {
        let p = &self.prefix;
        let mut v = vec![
            (Role::Root, format!("{p}p0")),
            (Role::Client, format!("{p}c0")),
            (Role::Root, format!("{p}p1")),
            (Role::Lan, format!("{p}bp")),
        ];
        for i in 1..=RS_COUNT {
            v.push((Role::Rs(i), format!("{p}r{i}")));
            v.push((Role::Lan, format!("{p}b{i}")));
        }
        v
    }

    fn command(&self, role: Role, cmd: &str, args: &[&str]) -> Command {
        let mut c = match self.netns(role) {
            None => Command::new(cmd),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns, cmd]);
                c
            }
        };
        c.args(args).stdin(Stdio::null());
        c
    }

    /// Run `cmd args` in the role's netns (`ip netns exec ${P}-ROLE ...`) and
    /// return its output whatever its exit status.
    pub fn exec_in(&self, role: Role, cmd: &str, args: &[&str]) -> Result<Output> {
        self.command(role, cmd, args).output().map_err(|source| LabError::Spawn { program: cmd.to_owned(), source })
    }

    /// Like [`Lab::exec_in`], but a non-zero exit is an error; returns stdout.
    pub fn run_in(&self, role: Role, cmd: &str, args: &[&str]) -> Result<String> {
        let out = self.exec_in(role, cmd, args)?;
        if !out.status.success() {
            return Err(LabError::Command {
                role,
                command: command_line(cmd, args),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Start `cmd args` in the role's netns in the background (stdout/stderr
    /// piped). The caller must kill and wait for it; `lab.sh down` kills
    /// whatever is left in the lab's namespaces anyway.
    pub fn spawn_in(&self, role: Role, cmd: &str, args: &[&str]) -> Result<Child> {
        self.command(role, cmd, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LabError::Spawn { program: cmd.to_owned(), source })
    }

    /// `curl` from the client: the body of a successful (2xx) answer.
    pub fn curl(&self, url: &str, timeout: Duration) -> Result<String> {
        self.curl_in(Role::Client, url, timeout)
    }

    /// `curl` from any role: the body of a successful (2xx) answer.
    pub fn curl_in(&self, role: Role, url: &str, timeout: Duration) -> Result<String> {
        let secs = format!("{:.3}", timeout.as_secs_f64());
        self.run_in(role, "curl", &["-sS", "--fail", "--max-time", &secs, url])
    }

    /// Download `url` in `role` and return (bytes, SHA-256 hex) without keeping it.
    pub fn download_sha256(&self, role: Role, url: &str, timeout: Duration) -> Result<(u64, String)> {
        let secs = format!("{:.3}", timeout.as_secs_f64());
        let script = "set -o pipefail; curl -sS --fail --max-time \"$1\" \"$2\" | tee >(wc -c >&2) | sha256sum";
        let out = self.exec_in(role, "bash", &["-c", script, "download", &secs, url])?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(LabError::Command {
                role,
                command: format!("curl {url} | sha256sum"),
                status: out.status.to_string(),
                stderr: stderr.trim().to_owned(),
            });
        }
        let sum = stdout.split_whitespace().next().unwrap_or("").to_owned();
        let size = stderr.lines().rev().find_map(|l| l.trim().parse::<u64>().ok());
        match size {
            Some(size) if sum.len() == 64 => Ok((size, sum)),
            _ => Err(LabError::Unexpected {
                what: format!("download of {url}"),
                detail: format!("stdout {stdout:?}, stderr {stderr:?}"),
            }),
        }
    }

    /// One ping from the client to `addr` (1 s timeout); `Ok` if answered.
    pub fn ping(&self, addr: &str) -> Result<()> {
        self.ping_in(Role::Client, addr, 1)
    }

    /// `count` pings from `role` to `addr`, one a 0.2 s; `Ok` if any was answered.
    pub fn ping_in(&self, role: Role, addr: &str, count: u32) -> Result<()> {
        let count = count.max(1).to_string();
        self.run_in(role, "ping", &["-q", "-n", "-c", &count, "-i", "0.2", "-W", "1", addr]).map(drop)
    }

    /// The offloads of `iface` in `role`'s namespace.
    pub fn offloads(&self, role: Role, iface: &str) -> Result<Offloads> {
        let text = self.run_in(role, "ethtool", &["-k", iface])?;
        Offloads::parse(&text).ok_or_else(|| LabError::Unexpected {
            what: format!("ethtool -k {iface}"),
            detail: text.lines().take(12).collect::<Vec<_>>().join("; "),
        })
    }

    /// `lab/lab.sh status PREFIX`: true when every piece is there and serving.
    pub fn is_complete(&self) -> bool {
        run_lab_script(&["status", &self.prefix]).is_ok()
    }

    /// Put the kernel in the appliance's place (`lab.sh kgw PREFIX on`): the two
    /// ports move into netns `${P}-kgw` with the gateway addresses and IP
    /// forwarding, so client and real servers talk without the dataplane.
    /// `false` moves them back to the root netns for DPDK.
    pub fn kernel_gateway(&self, on: bool) -> Result<()> {
        run_lab_script(&["kgw", &self.prefix, if on { "on" } else { "off" }]).map(drop)
    }

    /// Tear the lab down now (`lab/lab.sh down PREFIX`), reporting failure.
    pub fn down(mut self) -> Result<()> {
        self.down = true;
        run_lab_script(&["down", &self.prefix]).map(drop)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.down {
            return;
        }
        if std::env::var_os("LABTEST_KEEP").is_some_and(|v| v == "1") {
            eprintln!("labtest: keeping lab {} (lab/lab.sh down {} removes it)", self.prefix, self.prefix);
            return;
        }
        if let Err(e) = run_lab_script(&["down", &self.prefix]) {
            eprintln!("labtest: {e}");
        }
    }
}

/// The dataplane binary for the lab tests of other crates: `ACM_DATAPLANE_BIN`, or the
/// `dataplane` beside the running test in its target directory (`make test` builds it).
pub fn dataplane_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ACM_DATAPLANE_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("dataplane"); // target/<profile>/deps/x -> target/<profile>
    p.is_file().then_some(p)
}

/// The lab tests' short flow timeouts: SYN 3 s, closing 1 s, reset 0.5 s (the rest default).
pub fn short_timeouts() -> Timeouts {
    Timeouts { tcp_syn: 3.0, tcp_closing: 1.0, tcp_reset: 0.5, ..Timeouts::default() }
}

/// The lab's dataplane as the lab tests run it: on the lab's two ports (taps `${P}t0`,
/// `${P}t1`), one worker on lcore 1, 65,536 flows, 8,191 mbufs, its own EAL file prefix
/// (`${P}-dp`), switch API at `sock`, and `timeouts` (absent: the defaults).
pub fn dataplane_config(lab: &Lab, sock: &Path, timeouts: Option<Timeouts>) -> Appliance {
    let ports = LabPorts {
        prefix: lab.prefix().to_string(),
        port0_iface: lab.port0_iface().to_string(),
        port0_addr: format!("{PORT0_ADDR}/24"),
        port1_iface: lab.port1_iface().to_string(),
        port1_addr: format!("{PORT1_ADDR}/24"),
    };
    let mut a = presets::dataplane(sock, &format!("{}-dp", lab.prefix()), ports.ports());
    if let Some(d) = a.dataplane.as_mut() {
        d.flow_capacity = 65536;
        d.mbufs = 8191;
    }
    a.timeouts = timeouts;
    a
}

/// Writes [`dataplane_config`] as `appliance.toml` in the lab's state directory and starts
/// `bin` on it: stdout to `dataplane.log`, stderr to `dataplane.err` there. Returns the child
/// and the log's path.
pub fn spawn_dataplane(lab: &Lab, bin: &Path, sock: &Path, timeouts: Option<Timeouts>) -> (Child, PathBuf) {
    let cfg = lab.state_dir().join("appliance.toml");
    let text = dataplane_config(lab, sock, timeouts).to_toml();
    std::fs::write(&cfg, text).expect("write appliance.toml");
    let log = lab.state_dir().join("dataplane.log");
    let child = Command::new(bin)
        .args(["--config", cfg.to_str().expect("utf-8 path"), "--log", "info"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("dataplane.log"))
        .stderr(std::fs::File::create(lab.state_dir().join("dataplane.err")).expect("dataplane.err"))
        .spawn()
        .expect("start the dataplane");
    (child, log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_prefixes_are_valid_and_differ() {
        let a = unique_prefix();
        let b = unique_prefix();
        assert!(valid_prefix(&a), "{a}");
        assert!(valid_prefix(&b), "{b}");
        assert_ne!(a, b);
        assert!(a.len() + 3 <= 15, "{a}br1 must fit IFNAMSIZ");
    }

    #[test]
    fn prefixes_lab_sh_refuses_are_refused() {
        for bad in ["", "A", "1ab", "a-b", "abcdefghijklm", "a b"] {
            assert!(!valid_prefix(bad), "{bad:?}");
        }
        assert!(valid_prefix("acm"));
    }

    #[test]
    fn roles_parse_and_print() {
        for s in ["root", "client", "lan", "kgw", "rs1", "rs3"] {
            assert_eq!(s.parse::<Role>().unwrap().to_string(), s);
        }
        assert!("rs0".parse::<Role>().is_err());
        assert!("rs4".parse::<Role>().is_err());
        assert!("server".parse::<Role>().is_err());
    }

    #[test]
    fn ethtool_output_parses() {
        let text = "Features for x:\nrx-checksumming: off\ntx-checksumming: off\n\
                    \ttx-checksum-ip-generic: off\ntcp-segmentation-offload: off\n\
                    generic-segmentation-offload: off [fixed]\ngeneric-receive-offload: on\n";
        let o = Offloads::parse(text).unwrap();
        assert!(o.gro && !o.gso && !o.tso && !o.rx_checksum && !o.tx_checksum);
        assert!(!o.all_off());
        assert!(Offloads::parse("rx-checksumming: off\n").is_none());
    }

    #[test]
    fn ports_env_parses() {
        let env = parse_env("# c\nPORT0_IFACE=acmp0\nRS_NS=\"a b c\"\n\nX\n");
        assert_eq!(env["PORT0_IFACE"], "acmp0");
        assert_eq!(env["RS_NS"], "a b c");
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn rs_addresses() {
        assert_eq!(rs_addr(1), "10.0.1.11");
        assert_eq!(rs_addr(3), "10.0.1.13");
    }
}
