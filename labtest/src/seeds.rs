//! The seed corpora of the fuzz targets (`fuzz/seeds/<target>/`), written from the tests'
//! own encoders so they stay valid as formats change.
//!
//! A test builds each seed with the real encoder and calls [`fuzz_seed`]: normally that
//! asserts the committed file holds exactly those bytes (a format change without new seeds
//! fails the test); with `ACM_WRITE_FUZZ_SEEDS=1` it writes the file instead.

use std::path::PathBuf;

/// Checks (or, with `ACM_WRITE_FUZZ_SEEDS=1`, writes) the seed `name` of fuzz target `target`.
pub fn fuzz_seed(target: &str, name: &str, bytes: &[u8]) {
    let path: PathBuf = crate::repo_root().join("fuzz/seeds").join(target).join(name);
    if std::env::var_os("ACM_WRITE_FUZZ_SEEDS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("seed dir")).expect("create the seed dir");
        std::fs::write(&path, bytes).expect("write the seed");
        return;
    }
    let committed = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (write the seeds with ACM_WRITE_FUZZ_SEEDS=1 cargo test)", path.display()));
    assert!(
        committed == bytes,
        "{} is out of date with the encoder (rewrite with ACM_WRITE_FUZZ_SEEDS=1 cargo test)",
        path.display()
    );
}
