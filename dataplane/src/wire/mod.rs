//! Packet views (work in progress).
