//! The local API (work in progress).
