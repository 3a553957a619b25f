//! Workload identity federation: an ID token (JWT) from somewhere else, exchanged for a workspace
//! token (RFC 8693) at the token endpoint found by OIDC discovery (GO config/auth_oidc.go,
//! experimental/auth/oidc/tokensource.go). Used by `github-oidc`, `azure-devops-oidc`,
//! `env-oidc` and `file-oidc`.
//!
//! `POST <token_endpoint>` form: `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`,
//! `subject_token_type=urn:ietf:params:oauth:token-type:jwt`, `subject_token=<jwt>`,
//! `scope=<scopes>`, `client_id=<client_id>` only when set (no client secret), `assume_group=<id>`
//! when `group_id` is set (SDK 0.167). With a client id it is service-principal federation,
//! without one account-wide token federation.
//!
//! The audience asked of ID-token sources that take one (GitHub): `token_audience` if set, else
//! what host metadata implies (its default OIDC audience; the account id on a host without a
//! workspace), the account id on account hosts, else the token endpoint URL.

use super::oidc::{self, OidcEndpoints};
use super::token_source::{token_error, CachedCredentials, TokenSource};
use super::{AuthContext, Credentials};
use crate::cache::Fetched;
use crate::clock::SharedClock;
use crate::config::host_metadata::HostMetadataSource;
use crate::config::Config;
use crate::error::Result;
use crate::http::{HttpClient, Request};
use crate::secret::Secret;
use std::sync::Arc;

pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Where the ID token comes from. Called on every refresh (files are re-read, GitHub is asked
/// again), so a rotated ID token is picked up.
pub trait IdTokenSource: Send + Sync {
    fn id_token(&self, audience: &str) -> Result<Secret>;
}

pub struct Exchange<I> {
    cfg: Config,
    http: Arc<HttpClient>,
    clock: SharedClock,
    endpoints: oidc::LazyEndpoints,
    metadata: Option<Arc<HostMetadataSource>>,
    id_tokens: I,
}

impl<I: IdTokenSource> Exchange<I> {
    fn endpoints(&self) -> Result<Arc<OidcEndpoints>> {
        self.endpoints.get(&self.cfg, &self.http, self.metadata.as_ref())
    }

    /// Go `determineAudience`, after the host-metadata back-fill of `token_audience`.
    pub fn audience(&self, token_endpoint: &str) -> String {
        if let Some(a) = self.cfg.token_audience.as_deref().filter(|s| !s.is_empty()) {
            return a.to_string();
        }
        let account = self.cfg.account_id.as_deref().filter(|s| !s.is_empty());
        if let Some(a) = self.metadata.as_ref().and_then(|m| m.known()).and_then(|m| m.token_audience(account)) {
            return a;
        }
        if self.cfg.is_account_host() {
            if let Some(a) = self.cfg.account_id.as_deref().filter(|s| !s.is_empty()) {
                return a.to_string();
            }
        }
        token_endpoint.to_string()
    }
}

impl<I: IdTokenSource> TokenSource for Exchange<I> {
    fn token(&self) -> Result<Fetched> {
        let ep = self.endpoints()?;
        let subject = self.id_tokens.id_token(&self.audience(&ep.token_endpoint))?;
        let mut form = vec![
            ("grant_type", Secret::new(TOKEN_EXCHANGE_GRANT)),
            ("subject_token_type", Secret::new(JWT_TOKEN_TYPE)),
            ("subject_token", subject),
            ("scope", Secret::new(self.cfg.scopes().join(" "))),
        ];
        if let Some(id) = self.cfg.client_id.as_deref().filter(|s| !s.is_empty()) {
            form.push(("client_id", Secret::new(id)));
        }
        if let Some(g) = self.cfg.group_id.as_deref().filter(|s| !s.is_empty()) {
            form.push(("assume_group", Secret::new(g)));
        }
        let req = Request::token_request(ep.token_endpoint.clone(), form);
        let what = format!("token exchange ({})", req.describe());
        let resp = self.http.send(&req)?;
        if !resp.is_success() {
            return Err(token_error(&resp, &what));
        }
        super::m2m::parse_token_response(&resp.json(&what)?, self.clock.wall_ms(), &what)
    }
}

/// Cached credentials named `name` exchanging ID tokens from `id_tokens`.
pub fn credentials<I: IdTokenSource + 'static>(name: &'static str, cfg: &Config, ctx: &AuthContext, id_tokens: I) -> Arc<dyn Credentials> {
    let ex = Exchange {
        cfg: cfg.clone(),
        http: ctx.http.clone(),
        clock: ctx.clock.clone(),
        endpoints: oidc::LazyEndpoints::default(),
        metadata: ctx.metadata.clone(),
        id_tokens,
    };
    Arc::new(CachedCredentials::new(name, ex, ctx))
}
