//! Raw bindings to the system DPDK (filled in by the dpdk-sys work).
