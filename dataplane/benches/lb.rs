//! Micro-benchmarks of Maglev builds and the flow table (filled in below).
fn main() {}
