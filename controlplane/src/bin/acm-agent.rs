//! acm-agent (in progress).
fn main() {}
