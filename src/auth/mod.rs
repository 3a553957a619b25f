//! Workspace authentication, as the Databricks SDKs do it.
//!
//! Each method is one file implementing [`Strategy`]. [`resolve`] runs the chain in the Go SDK's
//! order, or only the method named by `auth_type`. A strategy answers one of three ways:
//! `Ok(Some(credentials))` (configured), `Ok(None)` (not configured: try the next one), or
//! `Err` (configured but broken: stop, and say which method failed).

pub mod m2m;
pub mod oidc;
pub mod pat;

use crate::clock::SharedClock;
use crate::config::{Config, Env};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::secret::Secret;
use std::sync::Arc;

/// What strategies may use while configuring.
pub struct AuthContext {
    pub http: Arc<HttpClient>,
    pub clock: SharedClock,
    pub env: Arc<dyn Env>,
}

/// A configured auth method that can produce request headers. Thread-safe.
pub trait Credentials: Send + Sync {
    /// The auth type name, e.g. `"pat"`, `"oauth-m2m"`.
    fn name(&self) -> &'static str;
    /// The `Authorization` header value, e.g. `"Bearer dapi..."`, refreshed as needed.
    fn authorization(&self) -> Result<Secret>;
    /// Additional headers (Azure management token...).
    fn extra_headers(&self) -> Result<Vec<(&'static str, Secret)>> {
        Ok(Vec::new())
    }
}

/// One auth method of the chain.
pub trait Strategy: Send + Sync {
    fn name(&self) -> &'static str;
    /// What this method needs, for the "nothing configured" message.
    fn requirement(&self) -> &'static str;
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>>;
}

/// The chain, in the Go SDK's order (config/auth_default.go). Later methods slot in here.
pub fn strategies() -> Vec<Box<dyn Strategy>> {
    vec![Box::new(pat::Pat), Box::new(m2m::M2m)]
}

pub const AUTH_DOCS: &str = "https://docs.databricks.com/en/dev-tools/auth.html#databricks-client-unified-authentication";

/// Pick and configure the auth method for `cfg`.
pub fn resolve(cfg: &Config, ctx: &AuthContext) -> Result<Arc<dyn Credentials>> {
    let chain = strategies();
    if let Some(want) = cfg.auth_type.as_deref().filter(|s| !s.is_empty()) {
        let Some(s) = chain.iter().find(|s| s.name() == want) else {
            let names: Vec<_> = chain.iter().map(|s| s.name()).collect();
            return Err(Error::config(format!(
                "auth type {want:?} not found (this version supports: {}); see {AUTH_DOCS}",
                names.join(", ")
            )));
        };
        return match s.configure(cfg, ctx) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(Error::config(format!("{want} auth: not configured: {}. {}", s.requirement(), cfg.debug_string()))),
            Err(e) => Err(with_debug(e.context(format!("{want} auth")), cfg)),
        };
    }
    let mut lacked = Vec::new();
    for s in &chain {
        match s.configure(cfg, ctx) {
            Ok(Some(c)) => {
                crate::log_debug!("auth: using {}", s.name());
                return Ok(c);
            }
            Ok(None) => {
                crate::log_debug!("auth: {} not configured", s.name());
                lacked.push(format!("{} ({})", s.name(), s.requirement()));
            }
            Err(e) => return Err(with_debug(e.context(format!("{} auth", s.name())), cfg)),
        }
    }
    Err(Error::config(format!(
        "cannot configure default credentials: no auth method is configured; tried {}; see {AUTH_DOCS}. {}",
        lacked.join("; "),
        cfg.debug_string()
    )))
}

fn with_debug(e: Error, cfg: &Config) -> Error {
    let msg = format!("{}. {}", e.message(), cfg.debug_string());
    let mut out = Error::new(e.kind(), msg).with_retry_after(e.retry_after());
    if let Some(st) = e.status() {
        out = out.with_http(st, e.error_code().map(String::from));
    }
    out
}
