//! Raw bindings to the system DPDK (`libdpdk` >= 22.11, found with pkg-config)
//! and a small C shim for DPDK's static-inline fast-path functions.
//!
//! Nothing here is safe to use directly: the `dpdk` crate is the safe layer.
//!
//! * The bindings are generated at build time by bindgen into `OUT_DIR` and
//!   cover what the appliance uses: `rte_eal_*`, `rte_eth_*`, `rte_pktmbuf_*`,
//!   `rte_mempool_*`, `rte_ring_*`, `rte_lcore_*` and their types/constants.
//!   C enums are plain integer constants (no enum-variant prefix).
//! * DPDK's inline fast path (`rte_eth_rx_burst`, `rte_pktmbuf_alloc`,
//!   `rte_ring_enqueue_burst`, `rte_errno`, `rte_lcore_id`, ...) is exported by
//!   `src/shim.c` as `dpdk_shim_*` functions.
//! * [`PLUGIN_DIR`] is the directory from which the EAL loads driver plugins.
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(unsafe_code)]
#![allow(clippy::all, clippy::pedantic, clippy::undocumented_unsafe_blocks)]
#![allow(rustdoc::all, missing_docs, improper_ctypes)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// The EAL's driver plugin directory (`RTE_EAL_PMD_PATH`) of the DPDK this
/// crate was built against, e.g. `/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0`.
/// Empty if the build script could not find it.
pub const PLUGIN_DIR: &str = env!("DPDK_SYS_PLUGIN_DIR");

/// The version of the DPDK this crate was built against (from pkg-config).
pub const DPDK_VERSION: &str = env!("DPDK_SYS_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_constants_come_from_function_like_macros() {
        // RTE_ETH_RSS_* are built with RTE_BIT64(); bindgen evaluates them
        // through clang.
        assert_eq!(RTE_ETH_RSS_IPV4, 1 << 2);
        assert_eq!(RTE_ETH_RSS_NONFRAG_IPV4_TCP, 1 << 4);
        assert_ne!(RTE_ETH_RSS_IP & RTE_ETH_RSS_IPV4, 0);
        assert_ne!(RTE_MBUF_F_RX_RSS_HASH, 0);
    }

    #[test]
    fn plugin_dir_is_known() {
        assert!(!PLUGIN_DIR.is_empty(), "build script found no plugin dir");
        assert_eq!(RTE_EAL_PMD_PATH.to_str().unwrap(), PLUGIN_DIR);
        assert!(DPDK_VERSION.starts_with("2"));
    }

    #[test]
    fn shim_links_and_tsc_advances() {
        // SAFETY: rte_rdtsc only reads the time-stamp counter; no EAL needed.
        let (a, b) = unsafe { (dpdk_shim_rdtsc(), dpdk_shim_rdtsc()) };
        assert!(b >= a);
    }

    #[test]
    fn mbuf_layout_is_two_cache_lines() {
        assert_eq!(std::mem::size_of::<rte_mbuf>(), 128);
    }
}
