//! Zero-loss restart.
