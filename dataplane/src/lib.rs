//! The dataplane: a poll-mode NAT load balancer.
//!
//! The library is the sans-IO core and everything around it that has no DPDK in it:
//!
//! - [`wire`]: checked packet views and the fast-path parser; [`nat`]: in-place rewrites
//!   with incremental checksums and the few packets we build (ARP, ICMP echo reply, RST).
//! - [`lb`]: Maglev consistent hashing and the per-worker flow table.
//! - [`pipeline`]: what a worker does with one frame (ARP, ICMP, NAT, flows, drop fraction,
//!   exception path), taking time and bytes as arguments and returning a verdict.
//! - [`generation`], [`control`]: forwarding state published to workers as immutable
//!   generations, and the ACM primitives applied to it.
//! - [`api`]: the switch API the control plane speaks (messages and client: the `switch-api`
//!   crate); [`runtime::api_server`] serves it.
//! - [`config`]: reading and checking `appliance.toml`.
//! - [`idle`]: adaptive polling, when an empty loop pauses or sleeps.
//! - [`runtime`]: what runs around the sans-IO core: the switch (publishing generations,
//!   acknowledgements, the API handler), the live-flow listing asked of each worker between
//!   bursts, the control side's clock.
//!
//! The `dataplane` binary (feature `dpdk`) wraps this in DPDK ports, lcores and taps.
#![deny(unsafe_code)]

pub mod api;
pub mod config;
pub mod control;
pub mod counters;
#[doc(hidden)]
pub mod fuzzing;
pub mod generation;
pub mod host;
pub mod idle;
pub mod lb;
pub mod nat;
pub mod pipeline;
pub mod runtime;
pub mod wire;
