//! ServerIron CLI.
#![deny(unsafe_code)]

pub mod telnet;
