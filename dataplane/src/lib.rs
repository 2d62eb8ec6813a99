//! The dataplane.
#![deny(unsafe_code)]
pub mod nat;
pub mod wire;
