//! Placeholder: the benchmark suite is being written (see scripts/bench.sh).
fn main() {}
