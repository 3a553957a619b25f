//! Workspace REST calls: the Lakebase credential APIs (Provisioned and Autoscaling), instance and
//! endpoint lookups, and SCIM `/Me` and `/Groups`. One file per service, all through
//! [`WorkspaceApi::call`].
//!
//! Every call carries `X-Databricks-Workspace-Id` when the workspace id is known: configured, or
//! back-filled from host metadata ([`crate::config::host_metadata`]). When it is not known yet,
//! the call is sent at once while the metadata is fetched beside it; if that call fails and the
//! metadata then says the header may be what was missing (a unified host), it is sent once more
//! with the header.

pub mod database;
pub mod postgres;
pub mod scim;

use crate::auth::Credentials;
use crate::config::host_metadata::HostMetadataSource;
use crate::error::{Error, Result};
use crate::http::{HttpClient, Request, Response};
use std::sync::Arc;

/// The header unified hosts route workspace calls by.
pub const WORKSPACE_ID_HEADER: &str = "X-Databricks-Workspace-Id";

/// An authenticated view of one workspace. Thread-safe.
pub struct WorkspaceApi {
    host: String,
    workspace_id: Option<String>,
    metadata: Option<Arc<HostMetadataSource>>,
    http: Arc<HttpClient>,
    creds: Arc<dyn Credentials>,
}

impl WorkspaceApi {
    /// `workspace_id`: the configured one (wins); otherwise `metadata` supplies it.
    pub fn new(
        host: String,
        workspace_id: Option<String>,
        metadata: Option<Arc<HostMetadataSource>>,
        http: Arc<HttpClient>,
        creds: Arc<dyn Credentials>,
    ) -> Self {
        let workspace_id = workspace_id.filter(|w| !w.is_empty());
        WorkspaceApi { host: host.trim_end_matches('/').to_string(), workspace_id, metadata, http, creds }
    }

    /// The workspace id sent as `X-Databricks-Workspace-Id`, if known now.
    pub fn workspace_id(&self) -> Option<String> {
        self.workspace_id.clone().or_else(|| self.metadata.as_ref()?.known()?.workspace_id.clone())
    }

    /// The host's metadata source.
    pub fn host_metadata(&self) -> Option<&Arc<HostMetadataSource>> {
        self.metadata.as_ref()
    }

    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn credentials(&self) -> &Arc<dyn Credentials> {
        &self.creds
    }
    pub fn http(&self) -> &Arc<HttpClient> {
        &self.http
    }

    /// `GET`/`POST` `path` (starting with `/api/`) with JSON; non-2xx becomes an [`Error`]
    /// carrying the status, the API `error_code` and message. A POST is not repeated after a
    /// response that timed out (see [`call_repeatable`](Self::call_repeatable)).
    pub fn call(&self, method: &'static str, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value> {
        self.request(method, path, body, false)
    }

    /// [`call`](Self::call) for a request that is harmless to send twice (a credential mint: a
    /// second token, nothing else), so it is repeated after a response that timed out.
    pub fn call_repeatable(&self, method: &'static str, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value> {
        self.request(method, path, body, true)
    }

    fn request(&self, method: &'static str, path: &str, body: Option<serde_json::Value>, repeatable: bool) -> Result<serde_json::Value> {
        let url = format!("{}{}", self.host, path);
        let auth = self.creds.authorization().map_err(|e| e.context(format!("{} auth", self.creds.name())))?;
        let mut req = match body {
            Some(b) => Request::post_json(url, b),
            None => Request::get(url),
        };
        req.method = method;
        req.repeatable = req.repeatable || repeatable;
        req = req.auth(auth);
        for (k, v) in self.creds.extra_headers()? {
            req = req.secret_header(k, v);
        }
        let what = req.describe();
        let known = self.workspace_id();
        if known.is_none() {
            if let Some(m) = &self.metadata {
                m.start(self.http.operation_end());
            }
        }
        let resp = self.send_with_id(&req, known.as_deref())?;
        let resp = match (resp.is_success(), known, &self.metadata) {
            (false, None, Some(m)) => match m.wait(self.http.operation_end()).filter(|m| m.header_may_matter()) {
                Some(meta) => {
                    crate::log_info!(
                        "api: {what} failed without {WORKSPACE_ID_HEADER} on a unified host; sending it again with the header"
                    );
                    self.send_with_id(&req, meta.workspace_id.as_deref())?
                }
                None => resp,
            },
            _ => resp,
        };
        if !resp.is_success() {
            let e = crate::http::apierr::from_response(&resp, &what);
            return Err(match e.status() {
                Some(401) | Some(403) => {
                    let m = format!("{} (authenticated with {})", e.message(), self.creds.name());
                    Error::new(e.kind(), m).with_http(e.status().unwrap_or(0), e.error_code().map(String::from))
                }
                _ => e,
            });
        }
        resp.json(&what)
    }

    fn send_with_id(&self, req: &Request, workspace_id: Option<&str>) -> Result<Response> {
        match workspace_id {
            Some(id) => self.http.send(&req.clone().header(WORKSPACE_ID_HEADER, id.to_string())),
            None => self.http.send(req),
        }
    }

    /// `GET path` and every following page (`next_page_token`), collecting the array `items_key`.
    /// The first page is asked for as the SDKs ask for it (no query); then only the page token.
    pub fn list_all(&self, path: &str, items_key: &str) -> Result<Vec<serde_json::Value>> {
        self.list_all_paged(path, items_key, &mut |_| Ok(()))
    }

    /// [`list_all`](Self::list_all), asking `before_page` before each page request (it ends the
    /// listing with its error: a cap on pages or time).
    pub fn list_all_paged(
        &self,
        path: &str,
        items_key: &str,
        before_page: &mut dyn FnMut(&str) -> Result<()>,
    ) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            before_page(path)?;
            let mut p = path.to_string();
            if !token.is_empty() {
                p.push_str(if path.contains('?') { "&page_token=" } else { "?page_token=" });
                p.push_str(&urlencode_segment(&token));
            }
            let v = self.call("GET", &p, None)?;
            if let Some(a) = v.get(items_key).and_then(|a| a.as_array()) {
                out.extend(a.iter().cloned());
            }
            match v.get("next_page_token").and_then(|t| t.as_str()) {
                Some(t) if !t.is_empty() => token = t.to_string(),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// The most pages one list call follows.
const MAX_PAGES: usize = 1000;

/// A path segment or query value, percent-encoded (spaces as `%20`).
pub(crate) fn urlencode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// A string field of a JSON object, or an API error naming what is missing.
pub(crate) fn str_field<'a>(v: &'a serde_json::Value, key: &str, what: &str) -> Result<&'a str> {
    match v.get(key) {
        Some(serde_json::Value::String(s)) if s.contains('\0') => Err(Error::api(format!("{what}: \"{key}\" contains a NUL byte"))),
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(Error::api(format!("{what}: the response has no \"{key}\""))),
    }
}

/// A minted Lakebase database credential.
#[derive(Debug)]
pub struct DatabaseCredential {
    pub token: crate::secret::Secret,
    pub expiry_ms: i64,
}

/// Parse a credential API response (`token` + RFC 3339 `expiry_key`). Public for fuzzing.
pub fn parse_credential(v: &serde_json::Value, expiry_key: &str, what: &str) -> Result<DatabaseCredential> {
    let token = v
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::api(format!("{what}: the response has no \"token\"")))?;
    crate::auth::token_source::check_token(token, "token", what)?;
    let exp = str_field(v, expiry_key, what)?;
    let expiry_ms = crate::timefmt::parse_rfc3339_ms(exp).ok_or_else(|| {
        Error::api(format!("{what}: \"{expiry_key}\" is not an RFC 3339 timestamp: {}", crate::sanitize::quoted(exp, 64)))
    })?;
    Ok(DatabaseCredential { token: crate::secret::Secret::new(token), expiry_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_parsing() {
        let v = serde_json::json!({"token": "abc", "expiration_time": "2026-08-19T12:00:00Z"});
        let c = parse_credential(&v, "expiration_time", "x").unwrap();
        assert_eq!((c.token.expose(), c.expiry_ms), ("abc", 1_787_140_800_000));
        let v = serde_json::json!({"token": "abc"});
        assert!(parse_credential(&v, "expire_time", "x").unwrap_err().message().contains("expire_time"));
        let v = serde_json::json!({"token": "", "expire_time": "2026-08-19T12:00:00Z"});
        assert!(parse_credential(&v, "expire_time", "x").is_err());
        let v = serde_json::json!({"token": "t", "expire_time": "soon"});
        assert!(parse_credential(&v, "expire_time", "x").unwrap_err().message().contains("RFC 3339"));
    }
}

#[cfg(test)]
mod header_tests {
    //! `X-Databricks-Workspace-Id` from host metadata, against a loopback workspace.
    use super::*;
    use crate::clock::SystemClock;
    use crate::http::wire_tests::{answer, Seen, TestServer};
    use crate::http::HttpOptions;
    use crate::secret::Secret;

    struct Pat;
    impl Credentials for Pat {
        fn name(&self) -> &'static str {
            "pat"
        }
        fn authorization(&self) -> Result<Secret> {
            Ok(Secret::new("Bearer dapiT"))
        }
    }

    /// A workspace whose metadata is `meta`; `unified`: `/api/` needs the header (400 without).
    /// The metadata is answered only once the first workspace call has arrived (or after 10 s,
    /// which fails the tests): the first call is surely sent before the metadata is known.
    fn workspace(meta: (u16, &'static str), unified: bool) -> TestServer {
        let api_seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        TestServer::plain(move |_, r: &Seen| {
            if r.target == "/.well-known/databricks-config" {
                let t0 = crate::clock::Stopwatch::start();
                while !api_seen.load(std::sync::atomic::Ordering::SeqCst) && t0.elapsed() < std::time::Duration::from_secs(10) {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                return answer(meta.0, meta.1);
            }
            api_seen.store(true, std::sync::atomic::Ordering::SeqCst);
            match r.header(WORKSPACE_ID_HEADER) {
                None if unified => answer(400, r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "This is a unified host"}"#),
                Some(id) if id != "77" => answer(404, r#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such workspace"}"#),
                _ => answer(200, r#"{"userName": "alice"}"#),
            }
        })
    }

    fn api(s: &TestServer, workspace_id: Option<&str>) -> WorkspaceApi {
        let http = Arc::new(HttpClient::new(HttpOptions::default(), Arc::new(SystemClock)));
        let meta = HostMetadataSource::private(&s.base, http.clone());
        WorkspaceApi::new(s.base.clone(), workspace_id.map(String::from), Some(meta), http, Arc::new(Pat))
    }

    fn api_calls(s: &TestServer) -> Vec<Option<String>> {
        s.seen().into_iter().filter(|r| r.target.starts_with("/api/")).map(|r| r.header(WORKSPACE_ID_HEADER).map(String::from)).collect()
    }

    fn metadata_reads(s: &TestServer) -> usize {
        s.seen().iter().filter(|r| r.target == "/.well-known/databricks-config").count()
    }

    const ME: &str = "/api/2.0/preview/scim/v2/Me";

    #[test]
    fn workspace_host_the_first_call_does_not_wait_for_the_metadata() {
        let s = workspace((200, r#"{"workspace_id": "77", "host_type": "workspace"}"#), false);
        let a = api(&s, None);
        a.call("GET", ME, None).unwrap();
        // The metadata arrives beside the first call; later calls carry the header.
        a.host_metadata().unwrap().wait(a.http.operation_end());
        assert_eq!(a.workspace_id().as_deref(), Some("77"));
        a.call("GET", ME, None).unwrap();
        assert_eq!(api_calls(&s), [None, Some("77".to_string())]);
        assert_eq!(metadata_reads(&s), 1);
    }

    #[test]
    fn unified_host_a_refused_first_call_is_sent_again_with_the_header() {
        let s = workspace((200, r#"{"workspace_id": "77", "host_type": "unified", "account_id": "a"}"#), true);
        let a = api(&s, None);
        assert_eq!(a.call("GET", ME, None).unwrap()["userName"], "alice");
        a.call("GET", ME, None).unwrap();
        // Refused without the header (sent before the metadata came), then sent again with it.
        assert_eq!(api_calls(&s), [None, Some("77".into()), Some("77".into())]);
        assert_eq!(metadata_reads(&s), 1);
        // Without a workspace id in the metadata the refusal is the answer.
        let s = workspace((200, r#"{"host_type": "unified", "account_id": "a"}"#), true);
        let e = api(&s, None).call("GET", ME, None).unwrap_err();
        assert!(e.message().contains("unified host"), "{e}");
    }

    #[test]
    fn a_configured_workspace_id_wins_and_needs_no_metadata() {
        let s = workspace((200, r#"{"workspace_id": "99", "host_type": "unified"}"#), true);
        let a = api(&s, Some("77"));
        a.call("GET", ME, None).unwrap();
        assert_eq!(api_calls(&s), [Some("77".to_string())]);
        assert_eq!(metadata_reads(&s), 0);
    }

    #[test]
    fn no_metadata_is_remembered_and_a_failure_is_the_answer() {
        let s = TestServer::plain(|_, r: &Seen| match r.target.as_str() {
            "/.well-known/databricks-config" => answer(404, "{}"),
            _ => answer(404, r#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Database instance 'x' does not exist."}"#),
        });
        let a = api(&s, None);
        for _ in 0..3 {
            let e = a.call("GET", "/api/2.0/database/instances/x", None).unwrap_err();
            assert_eq!(e.status(), Some(404));
        }
        assert_eq!(api_calls(&s).len(), 3, "a 404 is not repeated");
        assert_eq!(metadata_reads(&s), 1, "read once, remembered as absent");
    }
}
