//! The dataplane: a poll-mode NAT load balancer.
//!
//! The library is the sans-IO core and everything around it that has no DPDK in it:
//!
//! - [`wire`]: checked packet views and the fast-path parser; [`nat`]: in-place rewrites
//!   with incremental checksums and the few packets we build (ARP, ICMP echo reply, RST).
//! - [`lb`]: Maglev consistent hashing and the per-worker flow table.
//! - [`pipeline`]: what a worker does with one frame (ARP, ICMP, NAT, flows, drop fraction,
//!   exception path), taking time and bytes as arguments and returning a verdict.
//! - [`generation`], [`control`], [`switch`]: forwarding state published to workers as
//!   immutable generations, the ACM primitives applied to it, acknowledgements.
//! - [`api`]: the switch API the control plane speaks (messages and client: the `switch-api`
//!   crate); [`runtime::api_server`] serves it.
//! - [`sessions`]: the live-flow listing (the API's Sessions request), asked of each worker
//!   between bursts.
//! - [`config`]: reading and checking `appliance.toml`.
//!
//! The `dataplane` binary (feature `dpdk`) wraps this in DPDK ports, lcores and taps.
#![deny(unsafe_code)]

pub mod api;
pub mod clock;
pub mod config;
pub mod control;
pub mod counters;
#[doc(hidden)]
pub mod fuzzing;
pub mod generation;
pub mod host;
pub mod lb;
pub mod nat;
pub mod pipeline;
pub mod runtime;
pub mod sessions;
pub mod switch;
pub mod wire;
