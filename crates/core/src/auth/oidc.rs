//! OIDC endpoint discovery for OAuth flows (M2M now; token federation later).
//!
//! Order, as the Go SDK: an explicit `discovery_url`; for account hosts the fixed
//! `{host}/oidc/accounts/{account_id}/v1/token`; otherwise host metadata
//! (`/.well-known/databricks-config` → `oidc_endpoint`, see [`crate::config::host_metadata`]),
//! falling back to `{host}/oidc/.well-known/oauth-authorization-server`.
//!
//! The two discovery GETs run in parallel: the fallback document is fetched on a short-lived
//! thread while host metadata is read (by the shared [`HostMetadataSource`], which also serves the
//! workspace id and token audience to everyone else, so it is read once), and used when host
//! metadata is unavailable or points at the same document (the usual case on a workspace host).
//! A cold M2M start therefore waits for three round trips (discovery, token, mint) instead of
//! four; the SDKs' order of preference is kept.

use crate::config::host_metadata::HostMetadataSource;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{HttpClient, Request};
use std::sync::{mpsc, Arc};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct OidcEndpoints {
    pub token_endpoint: String,
}

/// Endpoints discovered on first use and kept for the life of a credentials object.
#[derive(Default)]
pub struct LazyEndpoints(arc_swap::ArcSwapOption<OidcEndpoints>);

impl LazyEndpoints {
    pub fn get(&self, cfg: &Config, http: &Arc<HttpClient>, meta: Option<&Arc<HostMetadataSource>>) -> Result<Arc<OidcEndpoints>> {
        if let Some(e) = self.0.load_full() {
            return Ok(e);
        }
        let e = Arc::new(discover(cfg, http, meta)?);
        self.0.store(Some(e.clone()));
        Ok(e)
    }
}

/// Find the token endpoint. `meta`: the host's metadata source (one is made for this call when
/// `None`).
pub fn discover(cfg: &Config, http: &Arc<HttpClient>, meta: Option<&Arc<HostMetadataSource>>) -> Result<OidcEndpoints> {
    let host = cfg.host.as_deref().unwrap_or("").trim_end_matches('/');
    if host.is_empty() {
        return Err(Error::config("host is required"));
    }
    let end = http.operation_end();
    if let Some(url) = cfg.discovery_url.as_deref().filter(|s| !s.is_empty()) {
        return from_discovery_url(url, http, end);
    }
    if cfg.is_account_host() {
        let account = cfg
            .account_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::config("account_id is required for OAuth on an account host"))?;
        return Ok(OidcEndpoints { token_endpoint: format!("{host}/oidc/accounts/{account}/v1/token") });
    }
    let fallback = format!("{host}/oidc/.well-known/oauth-authorization-server");
    let early = prefetch(&fallback, http, end);
    let own;
    let meta = match meta {
        Some(m) => m,
        None => {
            own = HostMetadataSource::private(host, http.clone());
            &own
        }
    };
    let account = cfg.account_id.as_deref().filter(|s| !s.is_empty());
    match meta.wait(end).and_then(|m| m.discovery_url(account)) {
        Some(url) if url != fallback => match from_discovery_url(&url, http, end) {
            Ok(ep) => return Ok(ep),
            Err(e) => crate::log_debug!("oidc: discovery via host metadata failed ({e}); falling back"),
        },
        Some(_) => {}
        None => crate::log_debug!("oidc: no OIDC endpoint from host metadata; falling back"),
    }
    match early.and_then(|rx| rx.recv().ok()) {
        Some(result) => result,
        // No thread could be started (or it died): fetch it here.
        None => from_discovery_url(&fallback, http, end),
    }
}

/// Start fetching `url` on a helper thread within the same deadline (`None`: no thread could be
/// started). Abandoned, finishing on its own, when host metadata names another document.
fn prefetch(url: &str, http: &Arc<HttpClient>, end: Duration) -> Option<mpsc::Receiver<Result<OidcEndpoints>>> {
    let (url, http) = (url.to_string(), http.clone());
    crate::sync::helper("lakebase-oidc", move || from_discovery_url(&url, &http, end)).ok()
}

fn from_discovery_url(url: &str, http: &HttpClient, end: Duration) -> Result<OidcEndpoints> {
    let req = Request::get(url.to_string());
    let what = req.describe();
    let resp = http.send_before(&req, end)?;
    if resp.status == 404 {
        return Err(Error::config(format!("databricks OAuth is not supported for this host ({what}: HTTP 404)")));
    }
    if !resp.is_success() {
        return Err(crate::http::apierr::from_response(&resp, &what));
    }
    let v = resp.json(&what)?;
    let token_endpoint = v
        .get("token_endpoint")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::new(ErrorKind::Api, format!("{what}: the response has no \"token_endpoint\"")))?;
    crate::http::check_url(token_endpoint)?;
    Ok(OidcEndpoints { token_endpoint: token_endpoint.to_string() })
}
