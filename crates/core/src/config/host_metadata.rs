//! Host metadata: `GET {host}/.well-known/databricks-config`, as databricks-sdk 0.167 reads it
//! (config.py `_resolve_host_metadata`, GO config/host_metadata.go) for every auth type. It fills
//! what the configuration leaves unset:
//! - `workspace_id`, sent as `X-Databricks-Workspace-Id` on workspace calls (a unified host
//!   routes by it);
//! - `account_id`, and the OIDC discovery URL (`oidc_endpoint` with `{account_id}` substituted,
//!   plus `/.well-known/oauth-authorization-server`);
//! - the token audience of federated ID tokens: `token_federation_default_oidc_audiences[0]`, else
//!   the account id when the metadata names no workspace (an account-level host).
//!
//! Read at most once per host and process (clients with the same host, CA file and proxies share
//! one [`HostMetadataSource`]), never while configuring, and never as an extra step in front of a
//! request: the first workspace call is sent at once while the metadata is fetched beside it, and
//! the OAuth methods' endpoint discovery waits for it together with the fallback OIDC document
//! (see `auth::oidc`). So a cold start costs no extra sequential round trip. The one case that
//! waits: a first workspace call sent without the header that fails while the metadata says the
//! host is not a plain workspace host and names a workspace id: it is sent once more, with the
//! header (a unified host refuses workspace calls without it before doing anything).
//!
//! Best effort, like the SDKs: no metadata (404, not JSON) is remembered for good; a transient
//! failure (network, 5xx) for [`RETRY_AFTER_FAILURE`], after which the next call tries again.

use crate::error::Result;
use crate::http::{HttpClient, Request};
use crate::sync::ForkLocal;
use arc_swap::{ArcSwap, ArcSwapOption};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// How long a failed fetch is remembered before the next use tries again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// The host type the metadata declares (GO `HostType`, normalised from `host_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostType {
    Workspace,
    Account,
    Unified,
}

/// What `/.well-known/databricks-config` says about a host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostMetadata {
    pub oidc_endpoint: Option<String>,
    pub account_id: Option<String>,
    pub workspace_id: Option<String>,
    pub cloud: Option<String>,
    pub host_type: Option<HostType>,
    pub token_audiences: Vec<String>,
}

impl HostMetadata {
    /// Parse the document; unknown fields are ignored, odd values dropped.
    pub fn parse(v: &serde_json::Value) -> HostMetadata {
        let s = |k: &str| match v.get(k) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let host_type = s("host_type").and_then(|t| match t.to_ascii_lowercase().as_str() {
            "workspace" | "workspace_host" => Some(HostType::Workspace),
            "account" | "account_host" => Some(HostType::Account),
            "unified" | "unified_host" => Some(HostType::Unified),
            _ => None,
        });
        let token_audiences = v
            .get("token_federation_default_oidc_audiences")
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).filter(|x| !x.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        // A workspace id goes into a header: only what a header value may hold.
        let workspace_id = s("workspace_id").filter(|w| w.bytes().all(|b| b.is_ascii_graphic()));
        HostMetadata {
            oidc_endpoint: s("oidc_endpoint"),
            account_id: s("account_id"),
            workspace_id,
            cloud: s("cloud"),
            host_type,
            token_audiences,
        }
    }

    /// The OIDC discovery document URL, with `{account_id}` replaced by `account_id` (the
    /// configured one wins over the metadata's); `None` without an endpoint, or when the
    /// placeholder cannot be filled.
    pub fn discovery_url(&self, configured_account: Option<&str>) -> Option<String> {
        let oidc = self.oidc_endpoint.as_deref()?;
        let oidc = if oidc.contains("{account_id}") {
            let a = configured_account.filter(|a| !a.is_empty()).or(self.account_id.as_deref())?;
            oidc.replace("{account_id}", a)
        } else {
            oidc.to_string()
        };
        Some(format!("{}/.well-known/oauth-authorization-server", oidc.trim_end_matches('/')))
    }

    /// The audience for federated ID tokens the metadata implies.
    pub fn token_audience(&self, configured_account: Option<&str>) -> Option<String> {
        if let Some(a) = self.token_audiences.first() {
            return Some(a.clone());
        }
        if self.workspace_id.is_none() {
            return configured_account.filter(|a| !a.is_empty()).or(self.account_id.as_deref()).map(String::from);
        }
        None
    }

    /// Whether a workspace call without `X-Databricks-Workspace-Id` may have failed for lack of
    /// it: the metadata names a workspace and does not declare a plain workspace host.
    pub fn header_may_matter(&self) -> bool {
        self.workspace_id.is_some() && self.host_type != Some(HostType::Workspace)
    }
}

/// The outcome of the last fetch.
struct Resolved {
    meta: Option<Arc<HostMetadata>>,
    /// When it was fetched (monotonic, on the HTTP client's clock).
    at: Duration,
    /// A transient failure: try again after [`RETRY_AFTER_FAILURE`].
    failed: bool,
}

#[derive(Default)]
struct Flight {
    running: Mutex<bool>,
    finished: Condvar,
}

/// The metadata of one host, fetched on first use on a helper thread. Thread-safe.
pub struct HostMetadataSource {
    url: String,
    http: Arc<HttpClient>,
    /// Survives `fork()`: it describes the host, not the process.
    resolved: ArcSwapOption<Resolved>,
    /// The fetch in flight, per fork generation (a child never waits for its parent's thread).
    flight: ForkLocal<Flight>,
}

impl HostMetadataSource {
    /// A source that no other client shares (clients with a custom clock; tests).
    pub fn private(host: &str, http: Arc<HttpClient>) -> Arc<HostMetadataSource> {
        Arc::new(HostMetadataSource {
            url: format!("{}/.well-known/databricks-config", host.trim_end_matches('/')),
            http,
            resolved: ArcSwapOption::empty(),
            flight: ForkLocal::new(Flight::default),
        })
    }

    /// The process-wide source for `host` (one per host, CA file and proxy settings).
    pub fn shared(host: &str, http: &Arc<HttpClient>) -> Arc<HostMetadataSource> {
        static SOURCES: OnceLock<ArcSwap<HashMap<String, Arc<HostMetadataSource>>>> = OnceLock::new();
        let reg = SOURCES.get_or_init(|| ArcSwap::from_pointee(HashMap::new()));
        let o = http.options();
        let key = format!("{}\0{:?}\0{:?}", host.trim_end_matches('/'), o.ca_file, o.proxy);
        if let Some(s) = reg.load().get(&key) {
            return s.clone();
        }
        let fresh = Self::private(host, http.clone());
        let mut chosen = fresh.clone();
        reg.rcu(|m| {
            let mut m = (**m).clone();
            chosen = m.entry(key.clone()).or_insert_with(|| fresh.clone()).clone();
            m
        });
        chosen
    }

    /// The metadata if it is known now (no I/O, nothing started).
    pub fn known(&self) -> Option<Arc<HostMetadata>> {
        self.resolved.load().as_ref().and_then(|r| r.meta.clone())
    }

    /// Whether a fetch is needed: never fetched, or failed long enough ago.
    fn stale(&self) -> bool {
        match self.resolved.load().as_ref() {
            None => true,
            Some(r) => r.failed && self.http.monotonic().saturating_sub(r.at) >= RETRY_AFTER_FAILURE,
        }
    }

    /// Start fetching in the background unless the metadata is known or on its way; returns at
    /// once. The fetch ends by `end` (monotonic on the HTTP client's clock).
    pub fn start(self: &Arc<Self>, end: Duration) {
        if !self.stale() {
            return;
        }
        let flight = self.flight.get();
        {
            let mut running = crate::sync::lock(&flight.running);
            if *running || !self.stale() {
                return;
            }
            *running = true;
        }
        let me = self.clone();
        let work = move || {
            me.fetch(end);
            let f = me.flight.get();
            *crate::sync::lock(&f.running) = false;
            f.finished.notify_all();
        };
        if let Err(work) = crate::sync::helper("lakebase-metadata", work) {
            work();
        }
    }

    /// The metadata, fetching it (or waiting for the fetch in flight) until `end` at the latest.
    pub fn wait(self: &Arc<Self>, end: Duration) -> Option<Arc<HostMetadata>> {
        self.start(end);
        let flight = self.flight.get();
        let mut running = crate::sync::lock(&flight.running);
        while *running {
            let left = end.saturating_sub(self.http.monotonic());
            if left.is_zero() {
                break;
            }
            running = flight.finished.wait_timeout(running, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        drop(running);
        self.known()
    }

    fn fetch(&self, end: Duration) {
        let at = self.http.monotonic();
        let (meta, failed) = match self.get(end) {
            Ok(m) => (m.map(Arc::new), false),
            Err(e) => {
                crate::log_debug!("host metadata: unavailable ({e}); using the configuration as it is");
                (None, true)
            }
        };
        if let Some(m) = &meta {
            crate::log_debug!(
                "host metadata: workspace_id {}, account_id {}, host type {:?}",
                m.workspace_id.as_deref().unwrap_or("-"),
                m.account_id.as_deref().unwrap_or("-"),
                m.host_type
            );
        }
        // A transient failure never replaces metadata that is already known.
        if failed && self.known().is_some() {
            return;
        }
        self.resolved.store(Some(Arc::new(Resolved { meta, at, failed })));
    }

    /// `Ok(None)`: the host serves no metadata (an answer, not a failure).
    fn get(&self, end: Duration) -> Result<Option<HostMetadata>> {
        let resp = self.http.send_before(&Request::get(self.url.clone()), end)?;
        if resp.status >= 500 || resp.status == 429 {
            return Err(crate::http::apierr::from_response(&resp, "GET /.well-known/databricks-config"));
        }
        if !resp.is_success() {
            return Ok(None);
        }
        match resp.json("GET /.well-known/databricks-config") {
            Ok(v) if v.is_object() => Ok(Some(HostMetadata::parse(&v))),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_workspace_and_unified_documents() {
        let m = HostMetadata::parse(&json!({
            "oidc_endpoint": "https://h/oidc", "account_id": "acc", "workspace_id": 1234567890123456u64, "cloud": "AWS",
            "host_type": "workspace", "token_federation_default_oidc_audiences": ["https://h/oidc/v1/token"]
        }));
        assert_eq!(m.workspace_id.as_deref(), Some("1234567890123456"), "numbers are ids too");
        assert_eq!(m.host_type, Some(HostType::Workspace));
        assert_eq!(m.discovery_url(None).as_deref(), Some("https://h/oidc/.well-known/oauth-authorization-server"));
        assert_eq!(m.token_audience(None).as_deref(), Some("https://h/oidc/v1/token"));
        assert!(!m.header_may_matter());

        let u = HostMetadata::parse(&json!({
            "oidc_endpoint": "https://h/oidc/accounts/{account_id}/", "account_id": "acc", "workspace_id": "42",
            "host_type": "unified", "token_federation_default_oidc_audiences": ["acc"]
        }));
        assert_eq!(u.discovery_url(None).as_deref(), Some("https://h/oidc/accounts/acc/.well-known/oauth-authorization-server"));
        assert_eq!(u.discovery_url(Some("mine")).as_deref(), Some("https://h/oidc/accounts/mine/.well-known/oauth-authorization-server"));
        assert_eq!(u.token_audience(None).as_deref(), Some("acc"));
        assert!(u.header_may_matter());

        let account = HostMetadata::parse(&json!({"oidc_endpoint": "https://a/oidc/accounts/{account_id}", "host_type": "ACCOUNT"}));
        assert_eq!(account.discovery_url(None), None, "placeholder without an account id");
        assert_eq!(account.token_audience(Some("acc-2")).as_deref(), Some("acc-2"), "no workspace: the account is the audience");
        let odd = HostMetadata::parse(&json!({"workspace_id": "4\r\nX-Evil: 1", "host_type": "moon", "oidc_endpoint": ""}));
        assert_eq!((odd.workspace_id, odd.host_type, odd.oidc_endpoint), (None, None, None));
    }
}
