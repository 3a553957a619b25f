//! liblakebase: rotating OAuth passwords for Databricks Lakebase Postgres, for any program.
//!
//! Layout (plain-Rust core, thin C layer on top):
//! - [`config`]: attributes, `.databrickscfg`, environment, options strings (as the SDKs).
//! - [`auth`]: one file per workspace auth method behind one trait, and the chain.
//! - [`api`]: Lakebase credential APIs (Provisioned and Autoscaling), lookups, SCIM `/Me`.
//! - [`cache`] + [`refresher`]: the cached token and the one background refresher thread.
//! - [`client`]: clients, shared cache entries, the process-wide default client.
//! - [`http`]: the one HTTP client and its TLS/retry policy.
//! - `ffi`: the C ABI (`include/lakebase.h` is generated from it by cbindgen).

#[macro_use]
pub mod log;

pub mod api;
pub mod auth;
pub mod cache;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod fork;
pub mod http;
pub mod libpq;
pub mod refresher;
pub mod secret;
pub mod sync;
pub mod target;

pub mod ffi;

pub use client::{Builder, Client};
pub use error::{Error, ErrorKind, Result};
pub use secret::Secret;
