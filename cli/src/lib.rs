//! ServerIron CLI.
#![deny(unsafe_code)]
