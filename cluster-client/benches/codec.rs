//! Codec micro-benchmarks (being written).
fn main() {}
