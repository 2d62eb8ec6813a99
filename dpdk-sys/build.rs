//! Build script for `dpdk-sys`.
//!
//! 1. Finds the system DPDK with pkg-config (`libdpdk >= 22.11`) and emits its
//!    link flags (shared libraries).
//! 2. Generates bindings with bindgen into `OUT_DIR/bindings.rs`, passing every
//!    token of `pkg-config --cflags libdpdk` to clang.
//! 3. Compiles `src/shim.c` (non-inline wrappers for DPDK's static-inline fast
//!    path) with the cc crate and the same flags.
//! 4. Discovers the EAL's plugin (PMD) directory and exports it to the crate as
//!    `DPDK_SYS_PLUGIN_DIR`, along with the DPDK version as `DPDK_SYS_VERSION`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIN_VERSION: &str = "22.11";

fn main() {
    for f in ["build.rs", "src/shim.c", "src/shim.h", "src/wrapper.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
    for v in ["PKG_CONFIG", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR"] {
        println!("cargo:rerun-if-env-changed={v}");
    }

    // Link flags: the pkg-config crate prints `cargo:rustc-link-lib=...` and
    // `cargo:rustc-link-search=...` for every token of `--libs libdpdk`.
    let lib = pkg_config::Config::new().atleast_version(MIN_VERSION).probe("libdpdk").unwrap_or_else(|e| {
        panic!(
            "dpdk-sys needs the system DPDK (pkg-config module `libdpdk` >= {MIN_VERSION}, \
                 Debian: `apt-get install libdpdk-dev`): {e}"
        )
    });

    let cflags = pkg_config_tokens(&["--cflags", "libdpdk"]);
    let plugin_dir = plugin_dir(&cflags, &lib.link_paths);
    println!("cargo:rustc-env=DPDK_SYS_PLUGIN_DIR={}", plugin_dir.display());
    println!("cargo:rustc-env=DPDK_SYS_VERSION={}", lib.version);

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let src = manifest_dir.join("src");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    // The C shim.
    let mut cc = cc::Build::new();
    cc.file(src.join("shim.c")).include(&src).warnings(true).opt_level(3);
    for flag in &cflags {
        cc.flag(flag);
    }
    cc.compile("dpdk_shim");

    // The bindings.
    let bindings = bindgen::Builder::default()
        .header(src.join("wrapper.h").to_string_lossy())
        .clang_args(cflags.iter())
        .clang_arg(format!("-I{}", src.display()))
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        // Function-like macros such as RTE_BIT64() in RTE_ETH_RSS_* and the
        // offload flags: let clang evaluate them.
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(&out_dir)
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_.*")
        .allowlist_function("rte_mbuf_.*")
        .allowlist_function("rte_mempool_.*")
        .allowlist_function("rte_ring_.*")
        .allowlist_function("rte_lcore_.*")
        .allowlist_function("rte_get_main_lcore|rte_get_next_lcore")
        .allowlist_function("rte_socket_.*|rte_socket_id")
        .allowlist_function("rte_get_tsc_hz|rte_delay_us.*")
        .allowlist_function("rte_exit|rte_strerror|rte_version")
        .allowlist_function("rte_dev_probe|rte_dev_remove|rte_vdev_.*")
        .allowlist_function("dpdk_shim_.*")
        .allowlist_type("rte_eth_.*")
        .allowlist_type("rte_ether_addr")
        .allowlist_type("rte_mbuf|rte_mempool|rte_ring|rte_lcore_state_t|rte_rmt_call_main_t")
        .allowlist_var("rte_delay_us")
        .allowlist_var("RTE_ETH_.*")
        .allowlist_var("RTE_ETHER_.*")
        .allowlist_var("RTE_MBUF_.*|RTE_PKTMBUF_.*")
        .allowlist_var("RTE_MEMPOOL_.*|MEMPOOL_.*")
        .allowlist_var("RTE_RING_.*|RING_F_.*")
        .allowlist_var("RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RTE_MAX_NUMA_NODES|LCORE_ID_ANY")
        .allowlist_var("SOCKET_ID_ANY|RTE_CACHE_LINE_SIZE|RTE_EAL_PMD_PATH|RTE_VER_.*")
        .allowlist_var("RTE_DEV_NAME_MAX_LEN|RTE_ETH_NAME_MAX_LEN")
        // Packed structs that contain an aligned member (or are packed *and*
        // aligned) cannot be expressed in Rust (E0588) or cannot derive Debug;
        // they are opaque blobs of the right size. Not reachable from the
        // allowlist today, listed so that widening it does not break the build.
        // Found by binding every `rte_*` type of rte_ethdev/rte_flow/rte_arp/
        // rte_l2tpv2/rte_gtp headers of DPDK 22.11.
        .opaque_type("rte_arp_hdr|rte_arp_ipv4|rte_l2tpv2_combined_msg_hdr|rte_gtp_psc_generic_hdr")
        // Plain integer constants instead of Rust enums: a C enum may carry a
        // value Rust does not know, which would be UB for a Rust enum.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .generate_comments(true)
        .generate_cstr(true)
        .generate()
        .expect("bindgen failed on the DPDK headers");
    bindings.write_to_file(out_dir.join("bindings.rs")).expect("cannot write bindings.rs");
}

/// Runs the pkg-config binary (the one the pkg-config crate uses) and splits
/// its output into tokens.
fn pkg_config_tokens(args: &[&str]) -> Vec<String> {
    let exe = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let out =
        Command::new(&exe).args(args).output().unwrap_or_else(|e| panic!("cannot run `{exe} {}`: {e}", args.join(" ")));
    assert!(out.status.success(), "`{exe} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("pkg-config output is not UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The directory the EAL loads driver plugins from: `RTE_EAL_PMD_PATH` from
/// `rte_build_config.h` when found, else the `dpdk/pmds-*` folder beside the
/// libraries.
fn plugin_dir(cflags: &[String], link_paths: &[PathBuf]) -> PathBuf {
    let include_dirs = cflags.iter().filter_map(|t| t.strip_prefix("-I")).map(PathBuf::from);
    for dir in include_dirs {
        let header = dir.join("rte_build_config.h");
        // Only a header that exists is watched: cargo takes a missing rerun-if-changed file
        // for a changed one and would run this script (and rebuild everything above it) on
        // every build. Debian has the header under the multiarch include dir only.
        if let Ok(text) = std::fs::read_to_string(&header) {
            println!("cargo:rerun-if-changed={}", header.display());
            for line in text.lines() {
                let mut words = line.split_whitespace();
                if words.next() == Some("#define") && words.next() == Some("RTE_EAL_PMD_PATH") {
                    let value: String = words.collect::<Vec<_>>().join(" ");
                    return PathBuf::from(value.trim_matches('"'));
                }
            }
        }
    }
    let mut libdirs: Vec<PathBuf> = link_paths.to_vec();
    libdirs.extend(pkg_config_tokens(&["--variable=libdir", "libdpdk"]).into_iter().map(PathBuf::from));
    for libdir in libdirs {
        if let Some(dir) = find_pmds_dir(&libdir.join("dpdk")) {
            return dir;
        }
    }
    println!("cargo:warning=dpdk-sys: could not find the DPDK plugin directory");
    PathBuf::new()
}

fn find_pmds_dir(dpdk_dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dpdk_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("pmds-")))
}
