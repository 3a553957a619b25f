//! Workspace authentication, as the Databricks SDKs do it.
//!
//! Each method is one file implementing [`Strategy`]. [`resolve`] runs the chain in the Go SDK's
//! order, or only the method named by `auth_type`. A strategy answers one of three ways:
//! `Ok(Some(credentials))` (configured), `Ok(None)` (not configured: try the next one), or
//! `Err` (configured but broken: stop, and say which method failed).
//!
//! Resolving does no network I/O: token-producing methods fetch on first use, through one
//! `TokenCache` each. The one exception is `databricks-cli`, which runs
//! `databricks auth token` once while resolving, as the SDKs do (only the CLI knows whether it
//! holds a login for this host); the token it prints is kept for the first use.
//!
//! Group roles (`group_id`, SDK 0.167): the methods that mint a Databricks OAuth token
//! (`oauth-m2m`, `github-oidc`, `azure-devops-oidc`, `env-oidc`, `file-oidc`) send
//! `assume_group=<id>` with the token request. The others cannot assume a group: with `group_id`
//! set they step aside in the default chain, and named in `auth_type` they fail with the SDK's
//! message (`auth type "pat" does not support group role assumption. Use Databricks OAuth
//! authentication`).
//!
//! Addresses that are fixed in production can be redirected only by settings meant for tests,
//! read from the environment and accepted only when they point at a loopback address:
//! `LAKEBASE_TEST_AZURE_LOGIN_URL` (the Azure AD login host) and `LAKEBASE_TEST_IMDS_URL` (the
//! Azure instance metadata service, `http://169.254.169.254`).

pub mod azure;
pub mod azure_cli;
pub mod azure_client_secret;
pub mod azure_devops_oidc;
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
pub mod model_serving;
pub mod oidc;
pub mod pat;
pub mod subprocess;
pub mod token_source;

use crate::clock::SharedClock;
use crate::config::host_metadata::HostMetadataSource;
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
    /// The configured host's metadata (`None` without a host): OIDC discovery and the token
    /// audience read it.
    pub metadata: Option<Arc<HostMetadataSource>>,
}

impl AuthContext {
    /// A context whose host metadata source is private to it (tests, tools).
    pub fn new(cfg: &Config, http: Arc<HttpClient>, clock: SharedClock, env: Arc<dyn Env>) -> AuthContext {
        let metadata = host_of(cfg).map(|h| HostMetadataSource::private(h, http.clone()));
        AuthContext { http, clock, env, metadata }
    }
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
    /// The workspace this method found by itself when none is configured (`model-serving`).
    fn host(&self) -> Option<String> {
        None
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
    /// Whether this method can act as a group (`group_id`: `assume_group` on its token request).
    fn supports_group(&self) -> bool {
        false
    }
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

/// The chain, in the Go SDK's order (config/auth_default.go), then `model-serving` (last, as in
/// the Python SDK). `google-credentials`, `google-id`, `runtime` and `runtime-oauth` are not
/// supported; `external-browser` is answered with [`EXTERNAL_BROWSER`].
pub fn strategies() -> Vec<Box<dyn Strategy>> {
    vec![
        Box::new(pat::Pat),
        Box::new(basic::Basic),
        Box::new(m2m::M2m),
        Box::new(databricks_cli::DatabricksCli),
        Box::new(metadata_service::MetadataService),
        Box::new(github_oidc::GithubOidc),
        Box::new(azure_devops_oidc::AzureDevopsOidc),
        Box::new(env_oidc::EnvOidc),
        Box::new(file_oidc::FileOidc),
        Box::new(github_oidc_azure::GithubOidcAzure),
        Box::new(azure_msi::AzureMsi),
        Box::new(azure_client_secret::AzureClientSecret),
        Box::new(azure_cli::AzureCli),
        Box::new(model_serving::ModelServing),
    ]
}

/// `auth_type=external-browser`: the SDKs' interactive login, which a library inside other
/// programs cannot run (no browser, no local redirect port).
pub const EXTERNAL_BROWSER: &str = "external-browser auth: liblakebase cannot run an interactive browser login. Log in once with `databricks auth login --host <workspace>` (or `--profile <name>`), then use auth_type=databricks-cli (or leave auth_type unset): the databricks-cli method reuses that login and refreshes its tokens";

/// The SDK's refusal of `group_id` for a method that cannot assume a group.
pub fn group_unsupported(name: &str) -> String {
    format!(
        "auth type \"{name}\" does not support group role assumption. Use Databricks OAuth authentication (oauth-m2m, github-oidc, azure-devops-oidc, env-oidc or file-oidc), or unset group_id / DATABRICKS_GROUP_ID"
    )
}

pub const AUTH_DOCS: &str = "https://docs.databricks.com/en/dev-tools/auth.html#databricks-client-unified-authentication";

/// One method of the chain and what became of it while resolving (for `lakebase doctor`).
#[derive(Clone, Debug)]
pub struct AuthStep {
    /// The method's name (`pat`, `oauth-m2m`, ...).
    pub name: &'static str,
    /// What happened.
    pub outcome: StepOutcome,
}

/// What became of one method of the chain.
#[derive(Clone, Debug)]
pub enum StepOutcome {
    /// Configured: the chain picked it.
    Picked,
    /// Not configured: what it needs (and why it is not configured, when known).
    NotConfigured(String),
    /// Configured but broken: the chain stopped here with this error.
    Failed(String),
    /// Not looked at: the chain stopped at an earlier method.
    NotTried,
    /// Not looked at: `auth_type` names another method.
    Skipped,
}

/// Pick and configure the auth method for `cfg`.
pub fn resolve(cfg: &Config, ctx: &AuthContext) -> Result<Arc<dyn Credentials>> {
    resolve_traced(cfg, ctx, &mut Vec::new())
}

/// [`resolve`], recording what became of every method of the chain into `trace`.
pub fn resolve_traced(cfg: &Config, ctx: &AuthContext, trace: &mut Vec<AuthStep>) -> Result<Arc<dyn Credentials>> {
    let chain = strategies();
    let mut step = |name: &'static str, outcome: StepOutcome| trace.push(AuthStep { name, outcome });
    let group = cfg.group_id.as_deref().is_some_and(|g| !g.is_empty());
    if let Some(want) = cfg.auth_type.as_deref().filter(|s| !s.is_empty()) {
        if want == "external-browser" {
            for c in &chain {
                step(c.name(), StepOutcome::Skipped);
            }
            return Err(with_debug(Error::config(EXTERNAL_BROWSER), cfg));
        }
        let Some(s) = chain.iter().find(|s| s.name() == want) else {
            let names: Vec<_> = chain.iter().map(|s| s.name()).collect();
            for n in &names {
                step(n, StepOutcome::Skipped);
            }
            return Err(Error::config(format!(
                "auth type {want:?} not found (this version supports: {}); see {AUTH_DOCS}",
                names.join(", ")
            )));
        };
        let mut result = None;
        for c in &chain {
            if c.name() != want {
                step(c.name(), StepOutcome::Skipped);
                continue;
            }
            if group && !s.supports_group() {
                let m = group_unsupported(want);
                step(s.name(), StepOutcome::Failed(m.clone()));
                result = Some(Err(with_debug(Error::config(m).context(format!("{want} auth")), cfg)));
                continue;
            }
            let r = match s.probe(cfg, ctx, true) {
                Ok(Probe::Configured(c)) => {
                    step(s.name(), StepOutcome::Picked);
                    Ok(c)
                }
                Ok(Probe::NotConfigured(why)) => {
                    let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
                    step(s.name(), StepOutcome::NotConfigured(format!("{}{why}", s.requirement())));
                    Err(Error::config(format!("{want} auth: not configured{why}: {}. {}", s.requirement(), cfg.debug_string())))
                }
                Err(e) => {
                    step(s.name(), StepOutcome::Failed(e.message().to_string()));
                    Err(with_debug(e.context(format!("{want} auth")), cfg))
                }
            };
            result = Some(r);
        }
        return result.unwrap_or_else(|| Err(Error::internal("forced auth type vanished from the chain")));
    }
    let mut lacked = Vec::new();
    let mut found: Option<Result<Arc<dyn Credentials>>> = None;
    for s in &chain {
        if found.is_some() {
            step(s.name(), StepOutcome::NotTried);
            continue;
        }
        if group && !s.supports_group() {
            let what = format!("group_id is set and this method cannot assume a group; {}", s.requirement());
            step(s.name(), StepOutcome::NotConfigured(what.clone()));
            lacked.push(format!("{} ({what})", s.name()));
            continue;
        }
        match s.probe(cfg, ctx, false) {
            Ok(Probe::Configured(c)) => {
                crate::log_debug!("auth: using {}", s.name());
                step(s.name(), StepOutcome::Picked);
                found = Some(Ok(c));
            }
            Ok(Probe::NotConfigured(why)) => {
                crate::log_debug!("auth: {} not configured", s.name());
                let what = match why {
                    Some(w) => format!("{w}; {}", s.requirement()),
                    None => s.requirement().to_string(),
                };
                step(s.name(), StepOutcome::NotConfigured(what.clone()));
                lacked.push(format!("{} ({what})", s.name()));
            }
            Err(e) => {
                step(s.name(), StepOutcome::Failed(e.message().to_string()));
                found = Some(Err(with_debug(e.context(format!("{} auth", s.name())), cfg)));
            }
        }
    }
    found.unwrap_or_else(|| Err(Error::config(nothing_configured(cfg, &lacked))))
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
    if cfg.group_id.as_deref().is_some_and(|g| !g.is_empty()) {
        msg.push_str(" group_id is set: only oauth-m2m, github-oidc, azure-devops-oidc, env-oidc and file-oidc can assume a group.");
    }
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
