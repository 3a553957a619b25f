//! The one interface between the proxy and the library that mints passwords.
//!
//! Everything the proxy needs from the core (the password, a forced refresh after a rejection,
//! the default Postgres role, the discovered host, statistics) goes through [`CredentialSource`].
//! [`crate::core_source`] implements it with the `lakebase` library; nothing else in this crate
//! names that library.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use zeroize::Zeroizing;

/// A boxed, sendable future (the trait stays object safe without an extra dependency).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A database password (a Lakebase OAuth token). Zeroed on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Password(Zeroizing::new(s.into()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Password(<{} bytes redacted>)", self.0.len())
    }
}

/// What went wrong getting a password, host or identity. The message is the library's and never
/// holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError {
    pub kind: SourceErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceErrorKind {
    /// Missing or contradictory configuration (no workspace, no target...).
    Config,
    /// The workspace refused the credentials.
    Auth,
    /// The workspace answered with an error (e.g. unknown instance).
    Api,
    /// The workspace could not be reached.
    Network,
    Other,
}

impl SourceError {
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> Self {
        SourceError { kind, message: message.into() }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceError {}

/// Statistics for `/metrics` (no secrets).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceStats {
    /// Expiry of the cached token (Unix seconds), if a servable one is cached.
    pub token_expiry_unix: Option<f64>,
    /// Successful mints so far.
    pub mints: u64,
    /// Failed password fetches or refreshes seen by the proxy.
    pub refresh_errors: u64,
    /// Whether the last fetch (background or foreground) failed and no success followed.
    pub refresh_failing: bool,
}

/// Where the proxy gets passwords and target facts from.
pub trait CredentialSource: Send + Sync + 'static {
    /// The current password. A cache hit is a memory read on the reactor; a miss never blocks it.
    fn password(&self) -> BoxFuture<'_, Result<Password, SourceError>>;
    /// The server rejected `rejected` (a password this source handed out): return a newer one,
    /// minting only if `rejected` is still the current password (so a crowd of connections
    /// rejected with one token causes one mint; the core also single-flights and rate-limits).
    fn refresh<'a>(&'a self, rejected: &'a Password) -> BoxFuture<'a, Result<Password, SourceError>>;
    /// The Postgres role to use when the client sends no user (the workspace identity).
    fn default_user(&self) -> BoxFuture<'_, Result<String, SourceError>>;
    /// The Postgres host of the target (discovered), used unless `--upstream` overrides it.
    fn upstream_host(&self) -> BoxFuture<'_, Result<String, SourceError>>;
    /// For metrics: token expiry, mints, refresh errors.
    fn stats(&self) -> SourceStats;
}
