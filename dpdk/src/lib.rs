//! Safe DPDK layer (filled in by the dpdk work).
