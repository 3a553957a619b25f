//! `github-oidc`: in a GitHub Actions job with `permissions: id-token: write`, ask GitHub for an
//! ID token (`GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>` with
//! `Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answer `{"value": "<jwt>"}`) and
//! exchange it for a workspace token ([`super::federation`]).
//!
//! Not configured when `azure_client_id` is set and `client_id` is not: that is a GitHub → Azure
//! AD federation, handled by `github-oidc-azure` (the Go SDK reaches the same result by trying
//! this method first and falling through when the exchange fails).

use super::federation::{self, IdTokenSource};
use super::{host_of, non_empty, AuthContext, Credentials, Strategy};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{HttpClient, Request};
use crate::secret::Secret;
use std::sync::Arc;

pub struct GithubOidc;

/// Asks the GitHub Actions runtime for ID tokens.
pub struct GithubIdToken {
    pub request_url: String,
    pub request_token: Secret,
    pub http: Arc<HttpClient>,
}

impl GithubIdToken {
    /// The request URL and token, when both are set.
    pub fn from_config(cfg: &Config, http: &Arc<HttpClient>) -> Option<GithubIdToken> {
        let url = non_empty(&cfg.actions_id_token_request_url)?;
        let tok = cfg.actions_id_token_request_token.as_ref().filter(|t| !t.is_empty())?;
        Some(GithubIdToken { request_url: url.to_string(), request_token: tok.clone(), http: http.clone() })
    }
}

impl IdTokenSource for GithubIdToken {
    fn id_token(&self, audience: &str) -> Result<Secret> {
        let sep = if self.request_url.contains('?') { '&' } else { '?' };
        let aud: String = url::form_urlencoded::byte_serialize(audience.as_bytes()).collect();
        let url = format!("{}{sep}audience={aud}", self.request_url);
        let req = Request::get(url).auth(Secret::new(format!("Bearer {}", self.request_token.expose())));
        let what = format!("GitHub Actions ID token request ({})", req.describe());
        let resp = self.http.send(&req)?;
        if !resp.is_success() {
            return Err(super::token_source::token_error(&resp, &what));
        }
        let v = resp.json(&what)?;
        let jwt = super::token_source::token_field(&v, "value", &what)?;
        Ok(Secret::new(jwt))
    }
}

impl Strategy for GithubOidc {
    fn name(&self) -> &'static str {
        "github-oidc"
    }
    fn supports_group(&self) -> bool {
        true
    }
    fn requirement(&self) -> &'static str {
        "needs host, a GitHub Actions job with `permissions: id-token: write` (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN) and a federation policy; DATABRICKS_CLIENT_ID for service-principal federation"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        let Some(src) = GithubIdToken::from_config(cfg, &ctx.http) else { return Ok(None) };
        if host_of(cfg).is_none() || (non_empty(&cfg.azure_client_id).is_some() && non_empty(&cfg.client_id).is_none()) {
            return Ok(None);
        }
        crate::http::check_url(&src.request_url).map_err(|e| Error::config(format!("ACTIONS_ID_TOKEN_REQUEST_URL: {}", e.message())))?;
        Ok(Some(federation::credentials("github-oidc", cfg, ctx, src)))
    }
}
