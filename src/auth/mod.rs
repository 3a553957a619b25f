//! Workspace authentication, as the Databricks SDKs do it.
//!
//! Each method is one file implementing [`Strategy`]. [`resolve`] runs the chain in the Go SDK's
//! order, or only the method named by `auth_type`. A strategy answers one of three ways:
//! `Ok(Some(credentials))` (configured), `Ok(None)` (not configured: try the next one), or
//! `Err` (configured but broken: stop, and say which method failed).
//!
//! Resolving does no network I/O: token-producing methods fetch on first use, through one
//! [`crate::cache::TokenCache`] each. The one exception is `databricks-cli`, which runs
//! `databricks auth token` once while resolving, as the SDKs do (only the CLI knows whether it
//! holds a login for this host); the token it prints is kept for the first use.
//!
//! Addresses that are fixed in production can be redirected only by settings meant for tests,
//! read from the environment and accepted only when they point at a loopback address:
//! `LAKEBASE_TEST_AZURE_LOGIN_URL` (the Azure AD login host) and `LAKEBASE_TEST_IMDS_URL` (the
//! Azure instance metadata service, `http://169.254.169.254`).

pub mod azure;
pub mod azure_cli;
pub mod azure_client_secret;
pub mod azure_msi;
pub mod basic;
pub mod databricks_cli;
pub mod env_oidc;
pub mod federation;
pub mod file_oidc;
pub mod github_oidc;
pub mod github_oidc_azure;
pub mod m2m;
pub mod metadata_service;
pub mod oidc;
pub mod pat;
pub mod subprocess;
pub mod token_source;

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

/// The answer of [`Strategy::probe`].
pub enum Probe {
    /// Configured: use these credentials.
    Configured(Arc<dyn Credentials>),
    /// Not configured; optionally why (shown in the "nothing configured" message instead of
    /// [`Strategy::requirement`] alone).
    NotConfigured(Option<String>),
}

/// One auth method of the chain.
pub trait Strategy: Send + Sync {
    fn name(&self) -> &'static str;
    /// What this method needs, for the "nothing configured" message: the settings to make.
    fn requirement(&self) -> &'static str;
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>>;
    /// [`configure`](Self::configure) with a reason when not configured. `forced` is true when
    /// `auth_type` names this method (a method may then report a failure it would otherwise
    /// treat as "not configured").
    fn probe(&self, cfg: &Config, ctx: &AuthContext, forced: bool) -> Result<Probe> {
        let _ = forced;
        Ok(match self.configure(cfg, ctx)? {
            Some(c) => Probe::Configured(c),
            None => Probe::NotConfigured(None),
        })
    }
}

/// The chain, in the Go SDK's order (config/auth_default.go). `azure-devops-oidc`,
/// `google-credentials` and `google-id` are not supported.
pub fn strategies() -> Vec<Box<dyn Strategy>> {
    vec![
        Box::new(pat::Pat),
        Box::new(basic::Basic),
        Box::new(m2m::M2m),
        Box::new(databricks_cli::DatabricksCli),
        Box::new(metadata_service::MetadataService),
        Box::new(github_oidc::GithubOidc),
        Box::new(env_oidc::EnvOidc),
        Box::new(file_oidc::FileOidc),
        Box::new(github_oidc_azure::GithubOidcAzure),
        Box::new(azure_msi::AzureMsi),
        Box::new(azure_client_secret::AzureClientSecret),
        Box::new(azure_cli::AzureCli),
    ]
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
        return match s.probe(cfg, ctx, true) {
            Ok(Probe::Configured(c)) => Ok(c),
            Ok(Probe::NotConfigured(why)) => {
                let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
                Err(Error::config(format!(
                    "{want} auth: not configured{why}: {}. {}",
                    s.requirement(),
                    cfg.debug_string()
                )))
            }
            Err(e) => Err(with_debug(e.context(format!("{want} auth")), cfg)),
        };
    }
    let mut lacked = Vec::new();
    for s in &chain {
        match s.probe(cfg, ctx, false) {
            Ok(Probe::Configured(c)) => {
                crate::log_debug!("auth: using {}", s.name());
                return Ok(c);
            }
            Ok(Probe::NotConfigured(why)) => {
                crate::log_debug!("auth: {} not configured", s.name());
                match why {
                    Some(w) => lacked.push(format!("{} ({w}; {})", s.name(), s.requirement())),
                    None => lacked.push(format!("{} ({})", s.name(), s.requirement())),
                }
            }
            Err(e) => return Err(with_debug(e.context(format!("{} auth", s.name())), cfg)),
        }
    }
    Err(Error::config(nothing_configured(cfg, &lacked)))
}

/// The "nothing configured" message: what to set, then what each method lacked, then the SDKs'
/// debug string.
fn nothing_configured(cfg: &Config, lacked: &[String]) -> String {
    let host_set = cfg.host.as_deref().is_some_and(|h| !h.is_empty());
    let first = if host_set {
        "cannot configure default credentials: no auth method is configured for this host. Set one of: \
         DATABRICKS_TOKEN (a personal access token), DATABRICKS_CLIENT_ID + DATABRICKS_CLIENT_SECRET (a service \
         principal), or log in with `databricks auth login --host <host>`; or name a profile of ~/.databrickscfg \
         with DATABRICKS_CONFIG_PROFILE"
    } else {
        "cannot configure default credentials: no workspace and no auth method are configured. Set \
         DATABRICKS_HOST (https://<workspace>.cloud.databricks.com) and one of: DATABRICKS_TOKEN (a personal \
         access token), DATABRICKS_CLIENT_ID + DATABRICKS_CLIENT_SECRET (a service principal), or log in with \
         `databricks auth login --host <host>`; or name a profile of ~/.databrickscfg with \
         DATABRICKS_CONFIG_PROFILE"
    };
    let mut msg = format!("{first}. Methods tried, in order: {}. See {AUTH_DOCS}.", lacked.join("; "));
    let debug = cfg.debug_string();
    if !debug.is_empty() {
        msg.push(' ');
        msg.push_str(&debug);
    }
    msg
}

fn with_debug(e: Error, cfg: &Config) -> Error {
    let debug = cfg.debug_string();
    let msg = if debug.is_empty() { e.message().to_string() } else { format!("{}. {debug}", e.message()) };
    let mut out = Error::new(e.kind(), msg).with_retry_after(e.retry_after());
    if let Some(st) = e.status() {
        out = out.with_http(st, e.error_code().map(String::from));
    }
    out
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn host_of(cfg: &Config) -> Option<&str> {
    non_empty(&cfg.host)
}

#[cfg(test)]
mod tests;
