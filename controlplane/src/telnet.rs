//! The telnet server (work in progress).
