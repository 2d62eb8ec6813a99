#![allow(dead_code)]
use std::path::Path;

/// hugetlbfs is a prerequisite: fail under CI, otherwise skip with a message.
pub fn hugetlbfs_or_skip(test: &str) -> bool {
    let ok = restart::sys::is_hugetlbfs(Path::new(restart::region::HUGETLBFS_DIR));
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: hugetlbfs not mounted at /dev/hugepages (required under CI)");
        }
        eprintln!("SKIP {test}: hugetlbfs not mounted at /dev/hugepages");
    }
    ok
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
