//! NAT rewrites (work in progress).
