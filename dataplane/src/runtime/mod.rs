//! The runtime around the sans-IO core: threads, channels, locks and the wall clock.
//!
//! Everything outside this folder (the [`crate::pipeline`], [`crate::control`],
//! [`crate::lb`], [`crate::wire`], [`crate::nat`] cores) takes time and bytes as arguments;
//! what is here owns them at run time:
//!
//! - [`switch`]: the control side's thread state: publishes generations to the workers,
//!   waits for their acknowledgements, answers the switch API, runs the Maglev builder.
//! - [`sessions`]: the live-flow listing, collected from the workers over channels.
//! - [`api_server`]: serves the switch API on its Unix socket (the `rpc` crate's server).
//! - [`clock`]: the monotonic clock of the control side (API timestamps).

pub mod api_server;
pub mod clock;
pub mod sessions;
pub mod switch;
