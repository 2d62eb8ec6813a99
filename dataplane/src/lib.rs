//! The dataplane.
#![deny(unsafe_code)]
