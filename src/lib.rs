//! liblakebase: rotating OAuth passwords for Databricks Lakebase Postgres, for any program.
//!
//! This crate is the C library `liblakebase.so` and nothing else: a thin layer over
//! [`lakebase_core`] (configuration, auth, the workspace API, the cached token).
//! - `ffi`: the C ABI, one module per C concept (`include/lakebase.h` is generated from it by
//!   cbindgen); every export runs inside one panic boundary.
//! - `libpq`: libpq's connect entry points under libpq's own names (LD_PRELOAD / linked ahead of
//!   `-lpq`) and as `lakebase_PQ*`: the decision whether to inject, caller-scoped resolution of the
//!   real libpq, the injected call and its retry.
//!
//! See docs/architecture.md for the whole picture.

mod ffi;
#[doc(hidden)]
pub mod libpq;
