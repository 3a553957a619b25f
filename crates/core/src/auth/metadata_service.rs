//! `metadata-service`: a token server on this machine (GO config/auth_metadata_service.go).
//!
//! `GET <metadata_service_url>` with `X-Databricks-Metadata-Version: 1` and
//! `X-Databricks-Host: <host>`; answer `{"access_token", "token_type", "expires_on": <unix s>}`.
//! Only `localhost` / `127.0.0.1` URLs are accepted. The URL is sensitive (it may carry a session
//! path) and never appears in messages.

use super::token_source::{expiry_ms, header_value, token_error, token_field, CachedCredentials, TokenSource};
use super::{host_of, AuthContext, Credentials, Strategy};
use crate::cache::Fetched;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{HttpClient, Request};
use crate::secret::Secret;
use std::sync::Arc;
use std::time::Duration;

pub const VERSION_HEADER: &str = "X-Databricks-Metadata-Version";
pub const HOST_HEADER: &str = "X-Databricks-Host";

pub struct MetadataService;

struct Source {
    url: Secret,
    host: String,
    http: Arc<HttpClient>,
    clock: SharedClock,
}

impl TokenSource for Source {
    fn token(&self) -> Result<Fetched> {
        let req = Request::get(self.url.expose().to_string()).header(VERSION_HEADER, "1").header(HOST_HEADER, self.host.clone());
        let what = "GET <metadata service>";
        let resp =
            self.http.send_within(&req, Duration::from_secs(10)).map_err(|e| Error::new(e.kind(), redact_url(e.message(), &self.url)))?;
        if !resp.is_success() {
            return Err(token_error(&resp, what));
        }
        let v = resp.json(what)?;
        let token = token_field(&v, "access_token", what)?;
        let ty = v.get("token_type").and_then(|s| s.as_str());
        Ok(Fetched { secret: header_value(ty, token, what)?, expiry_ms: expiry_ms(&v, self.clock.wall_ms(), what)? })
    }
}

fn redact_url(msg: &str, url: &Secret) -> String {
    msg.replace(url.expose(), "<metadata service>")
}

/// Whether `raw` is an http(s) URL on `localhost` or `127.0.0.1` (Go's rule).
pub fn is_local_url(raw: &str) -> bool {
    match url::Url::parse(raw) {
        Ok(u) => matches!(u.scheme(), "http" | "https") && matches!(u.host_str(), Some("localhost") | Some("127.0.0.1")),
        Err(_) => false,
    }
}

impl Strategy for MetadataService {
    fn name(&self) -> &'static str {
        "metadata-service"
    }
    fn requirement(&self) -> &'static str {
        "needs host and metadata_service_url / DATABRICKS_METADATA_SERVICE_URL (a localhost token server)"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        let Some(url) = cfg.metadata_service_url.as_ref().filter(|u| !u.is_empty()) else { return Ok(None) };
        let Some(host) = host_of(cfg) else { return Ok(None) };
        if !is_local_url(url.expose()) {
            return Err(Error::config("invalid metadata service URL: only http(s)://localhost or http(s)://127.0.0.1 URLs are allowed"));
        }
        let src = Source { url: url.clone(), host: host.to_string(), http: ctx.http.clone(), clock: ctx.clock.clone() };
        Ok(Some(Arc::new(CachedCredentials::new("metadata-service", src, ctx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_urls() {
        assert!(is_local_url("http://localhost:1234/token"));
        assert!(is_local_url("http://127.0.0.1:1/x"));
        assert!(!is_local_url("http://127.0.0.2/x"));
        assert!(!is_local_url("https://metadata.example.com/x"));
        assert!(!is_local_url("http://localhost.example.com/x"));
        assert!(!is_local_url("not a url"));
    }
}
