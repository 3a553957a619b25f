//! `oauth-m2m`: OAuth client credentials for a service principal: a [`TokenSource`] behind the
//! shared [`CachedCredentials`], like every other token-producing method.
//!
//! `POST <token_endpoint>` with `grant_type=client_credentials&scope=all-apis` (plus
//! `assume_group=<group_id>` when a group is configured, as SDK 0.167) and HTTP Basic
//! client authentication (`base64(urlencode(id):urlencode(secret))`, as golang/oauth2). The
//! workspace token is cached and refreshed ahead of expiry (`min(TTL/2, 20 min)`), never used
//! within 40 s of its expiry, and a failed early refresh falls back to the still-valid token.

use super::non_empty;
use super::oidc;
use super::token_source::{token_error, CachedCredentials, TokenSource};
use super::{AuthContext, Credentials, Strategy};
use crate::cache::Fetched;
use crate::clock::SharedClock;
use crate::config::host_metadata::HostMetadataSource;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{HttpClient, Request};
use crate::secret::Secret;
use base64::Engine;
use std::sync::Arc;

pub struct M2m;

impl Strategy for M2m {
    fn name(&self) -> &'static str {
        "oauth-m2m"
    }
    fn supports_group(&self) -> bool {
        true
    }
    fn requirement(&self) -> &'static str {
        "needs host, client_id / DATABRICKS_CLIENT_ID and client_secret / DATABRICKS_CLIENT_SECRET"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        let id = cfg.client_id.as_deref().unwrap_or("");
        let secret = cfg.client_secret.as_ref().filter(|s| !s.is_empty());
        let (false, Some(secret)) = (id.is_empty(), secret) else { return Ok(None) };
        if cfg.host.as_deref().unwrap_or("").is_empty() {
            return Err(Error::config("host is required"));
        }
        let source = ClientCredentials {
            cfg: cfg.clone(),
            client_id: id.to_string(),
            client_secret: secret.clone(),
            scopes: cfg.scopes().join(" "),
            http: ctx.http.clone(),
            endpoints: oidc::LazyEndpoints::default(),
            metadata: ctx.metadata.clone(),
            clock: ctx.clock.clone(),
        };
        Ok(Some(Arc::new(CachedCredentials::new("oauth-m2m", source, ctx))))
    }
}

/// The client-credentials grant against the workspace's OIDC token endpoint.
struct ClientCredentials {
    cfg: Config,
    client_id: String,
    client_secret: Secret,
    scopes: String,
    http: Arc<HttpClient>,
    endpoints: oidc::LazyEndpoints,
    metadata: Option<Arc<HostMetadataSource>>,
    clock: SharedClock,
}

impl TokenSource for ClientCredentials {
    fn token(&self) -> Result<Fetched> {
        let ep = self.endpoints.get(&self.cfg, &self.http, self.metadata.as_ref())?;
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = zeroize::Zeroizing::new(format!("{}:{}", enc(&self.client_id), enc(self.client_secret.expose())));
        let header = Secret::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(basic.as_bytes())));
        let mut form = vec![("grant_type", Secret::new("client_credentials")), ("scope", Secret::new(self.scopes.clone()))];
        if let Some(g) = non_empty(&self.cfg.group_id) {
            form.push(("assume_group", Secret::new(g)));
        }
        let req = Request::token_request(ep.token_endpoint.clone(), form).auth(header);
        let what = req.describe();
        let resp = self.http.send(&req)?;
        if !resp.is_success() {
            return Err(token_error(&resp, &what));
        }
        parse_token_response(&resp.json(&what)?, self.clock.wall_ms(), &what)
    }
}

/// `{"access_token", "token_type", "expires_in"}` → `"<type> <token>"` with absolute expiry.
pub fn parse_token_response(v: &serde_json::Value, now_ms: i64, what: &str) -> Result<Fetched> {
    let token = v
        .get("access_token")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::api(format!("{what}: the response has no \"access_token\"")))?;
    super::token_source::check_token(token, "access_token", what)?;
    let header = super::token_source::header_value(v.get("token_type").and_then(|s| s.as_str()), token, what)?;
    let expires_in = match v.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| *s > 0.0)
    .ok_or_else(|| Error::api(format!("{what}: the response has no valid \"expires_in\"")))?;
    Ok(Fetched { secret: header, expiry_ms: now_ms.saturating_add((expires_in * 1000.0) as i64) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_regression_huge_expires_in_saturates() {
        // fuzz/regressions/api_json/huge-expires-in: `now + expires_in` overflowed i64.
        let v = serde_json::json!({"access_token": "a", "expires_in": 4.4e33});
        assert_eq!(parse_token_response(&v, 1_800_000_000_000, "x").unwrap().expiry_ms, i64::MAX);
        let v = serde_json::json!({"access_token": "a", "expires_in": "1e308"});
        assert_eq!(parse_token_response(&v, 1, "x").unwrap().expiry_ms, i64::MAX);
    }

    #[test]
    fn token_response() {
        let v = serde_json::json!({"access_token": "abc", "token_type": "bearer", "expires_in": 3600});
        let f = parse_token_response(&v, 1000, "x").unwrap();
        assert_eq!(f.secret.expose(), "Bearer abc");
        assert_eq!(f.expiry_ms, 1000 + 3_600_000);
        let v = serde_json::json!({"access_token": "abc", "token_type": "Bearer"});
        assert!(parse_token_response(&v, 0, "x").unwrap_err().message().contains("expires_in"));
        let v = serde_json::json!({"token_type": "Bearer", "expires_in": 1});
        assert!(parse_token_response(&v, 0, "x").is_err());
    }
}
