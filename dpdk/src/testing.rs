//! Helpers for tests that need a real EAL (root and hugepages).

/// Free 2 MB hugepages [`require_root_and_hugepages`] asks for (64 MB).
pub const MIN_FREE_HUGEPAGES: u64 = 32;

/// Whether EAL tests can run here: running as root with at least
/// [`MIN_FREE_HUGEPAGES`] free hugepages.
///
/// When a prerequisite is missing it **panics** (the test fails) if the
/// environment has `CI=true`, and otherwise prints a skip notice naming the
/// problem and returns `false`, so the caller returns early.
pub fn require_root_and_hugepages() -> bool {
    match missing_prerequisite() {
        None => true,
        Some(problem) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("DPDK EAL tests cannot run: {problem} (CI=true requires them)")
        }
        Some(problem) => {
            println!("SKIPPED DPDK EAL tests: {problem}");
            false
        }
    }
}

/// Why EAL tests cannot run here, if they cannot.
pub fn missing_prerequisite() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".to_owned());
    }
    match hugepages_free() {
        Some(n) if n >= MIN_FREE_HUGEPAGES => None,
        Some(n) => Some(format!(
            "only {n} free hugepages (need {MIN_FREE_HUGEPAGES}; reserve more in /sys/kernel/mm/hugepages/)"
        )),
        None => Some("cannot read HugePages_Free from /proc/meminfo".to_owned()),
    }
}

/// Free default-size hugepages (`HugePages_Free` in /proc/meminfo).
pub fn hugepages_free() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo.lines().find_map(|l| l.strip_prefix("HugePages_Free:")).and_then(|v| v.trim().parse().ok())
}
