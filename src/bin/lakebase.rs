//! The `lakebase` command (being written).
fn main() {}
