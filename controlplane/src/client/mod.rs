//! The CM client module (in progress).
