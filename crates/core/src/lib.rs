//! # lakebase-core
//!
//! Rotating OAuth passwords for Databricks Lakebase Postgres, in plain Rust: workspace
//! authentication exactly as the Databricks SDKs do it (`DATABRICKS_*` variables,
//! `~/.databrickscfg` profiles, every auth method of their default chain), the Lakebase credential
//! APIs (Provisioned instances and Autoscaling endpoints), and a cached token that one lazily
//! started background thread refreshes ahead of expiry. A cache hit is a memory read.
//!
//! This crate is the core of liblakebase: the C library (`liblakebase.so`), the `lakebase`
//! command and the proxy are thin layers on top of it. It has no async runtime, starts no thread
//! until the first password is asked for, and is safe across `fork()`.
//!
//! ```no_run
//! use lakebase_core::Client;
//!
//! # fn main() -> lakebase_core::Result<()> {
//! // DATABRICKS_HOST + DATABRICKS_TOKEN (or a profile, a service principal, ...) from the
//! // environment; the database from the options (or LAKEBASE_INSTANCE / LAKEBASE_ENDPOINT).
//! let client = Client::builder().option("instance", "my-database").build()?;
//! let user = client.identity()?;            // the Postgres role (SCIM userName), cached
//! let host = client.postgres_host()?;       // the instance's read_write_dns, cached
//! let password = client.password()?;        // the cached token; minted on the first call
//! println!("host={host} user={user} password=<{} bytes>", password.len());
//! # Ok(()) }
//! ```
//!
//! Async code never blocks on a mint: [`Client::password_async`] returns a future that is ready
//! at once on a cache hit and otherwise is woken by the library's fetch thread (any executor);
//! [`Client::try_password`] is the non-blocking read itself.
//!
//! ## Layers
//!
//! Modules only depend on modules of their own layer or below (`tests/layers.rs` fails on an
//! upward `crate::` path). From the bottom:
//!
//! 1. [`secret`], `clock` (the one real clock), `timefmt` (RFC 3339 and CLI time formats), `env`
//!    (where environment variables come from), `fs` (capped reads of regular files), `sanitize`
//!    (credential checks, control-character escaping, redaction of sent secrets);
//! 2. `log` (`LAKEBASE_LOG`);
//! 3. `fork` (generation counter), `sync` (fork-proof locks, helper threads), `deadline` (who is
//!    waiting, and until when), [`connect`] (which failed database connects to repeat, and when);
//! 4. `error`;
//! 5. `cache`: a cached, proactively refreshed token (hot path, single-flight, schedule) — used
//!    for workspace OAuth tokens by `auth` and for database credentials by `client`;
//! 6. `http`: the one HTTP client (TLS policy, bounded DNS, retries) and API error bodies
//!    (`http::apierr`);
//! 7. `config`: attributes, options strings, `.databrickscfg` (INI and profiles), environment;
//! 8. `auth`: one file per auth method behind one trait, the chain in `auth/mod.rs`;
//! 9. `api`: the workspace REST calls (Lakebase Provisioned and Autoscaling, SCIM `/Me`);
//! 10. [`target`]: the database a password is for, its lookups and host discovery;
//! 11. `refresher`: the one background thread;
//! 12. `client`: [`Client`], [`Builder`], shared cache entries (in the process: `registry`; across
//!     processes: `shared_cache`, over `cache::disk`, the per-user cache on disk), the
//!     process-wide default client.
//!
//! Modules marked `#[doc(hidden)]` are public only for the other crates of this workspace (the C
//! library, the command, fuzzers, benchmarks); they are not part of the supported API.

#![warn(missing_docs)]

#[macro_use]
#[doc(hidden)]
pub mod log;

#[doc(hidden)]
pub mod clock;
pub mod connect;
pub(crate) mod deadline;
pub(crate) mod fork;
#[doc(hidden)]
pub mod fs;
#[doc(hidden)]
pub mod sanitize;
pub mod secret;
pub(crate) mod sync;
#[doc(hidden)]
pub mod timefmt;

#[doc(hidden)]
pub mod env;
pub(crate) mod error;

#[doc(hidden)]
pub mod http;

#[doc(hidden)]
pub mod config;

#[doc(hidden)]
pub mod auth;

#[doc(hidden)]
pub mod api;

pub mod target;

pub(crate) mod cache;
pub(crate) mod refresher;
/// The per-user on-disk cache shared by the user's processes (for `lakebase cache list|clear`).
#[doc(hidden)]
pub use cache::disk as shared_cache;

pub(crate) mod client;

pub use cache::minted::is_minted_here;
pub use client::{default_client, default_client_if_set, default_client_ref, Builder, Client, OffThread, PasswordFuture, TokenInfo};
pub use error::{Error, ErrorKind, Result};
pub use secret::Secret;
pub use target::{Target, TargetInfo};
