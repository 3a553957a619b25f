//! Workspace REST calls: the Lakebase credential APIs (Provisioned and Autoscaling), instance and
//! endpoint lookups, and SCIM `/Me`. One file per service, all through [`WorkspaceApi::call`].

pub mod database;
pub mod errors;
pub mod postgres;
pub mod scim;

use crate::auth::Credentials;
use crate::error::{Error, Result};
use crate::http::{HttpClient, Request};
use std::sync::Arc;

/// An authenticated view of one workspace. Thread-safe.
pub struct WorkspaceApi {
    host: String,
    workspace_id: Option<String>,
    http: Arc<HttpClient>,
    creds: Arc<dyn Credentials>,
}

impl WorkspaceApi {
    pub fn new(host: String, workspace_id: Option<String>, http: Arc<HttpClient>, creds: Arc<dyn Credentials>) -> Self {
        WorkspaceApi { host: host.trim_end_matches('/').to_string(), workspace_id, http, creds }
    }

    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn credentials(&self) -> &Arc<dyn Credentials> {
        &self.creds
    }

    /// `GET`/`POST` `path` (starting with `/api/`) with JSON; non-2xx becomes an [`Error`]
    /// carrying the status, the API `error_code` and message.
    pub fn call(&self, method: &'static str, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value> {
        let url = format!("{}{}", self.host, path);
        let auth = self.creds.authorization().map_err(|e| e.context(format!("{} auth", self.creds.name())))?;
        let mut req = match body {
            Some(b) => Request::post_json(url, b),
            None => Request { method, ..Request::get(url) },
        };
        req.method = method;
        req = req.auth(auth);
        for (k, v) in self.creds.extra_headers()? {
            req = req.header(k, v.expose().to_string());
        }
        if let Some(id) = &self.workspace_id {
            req = req.header("X-Databricks-Workspace-Id", id.clone());
        }
        let what = req.describe();
        let resp = self.http.send(&req)?;
        if !resp.is_success() {
            let e = errors::from_response(&resp, &what);
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
}

/// Parse an RFC 3339 timestamp (with or without fractional seconds) into Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
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
    let token = str_field(v, "token", what)?;
    let exp = str_field(v, expiry_key, what)?;
    let expiry_ms = parse_rfc3339_ms(exp)
        .ok_or_else(|| Error::api(format!("{what}: \"{expiry_key}\" is not an RFC 3339 timestamp: {exp:?}")))?;
    Ok(DatabaseCredential { token: crate::secret::Secret::new(token), expiry_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_and_without_fraction() {
        assert_eq!(parse_rfc3339_ms("2026-08-19T12:00:00Z"), Some(1_787_140_800_000));
        assert_eq!(parse_rfc3339_ms("2026-08-19T12:00:00.250Z"), Some(1_787_140_800_250));
        assert_eq!(parse_rfc3339_ms("2026-08-19T12:00:00.123456789Z"), Some(1_787_140_800_123));
        assert_eq!(parse_rfc3339_ms("2026-08-19T14:00:00+02:00"), Some(1_787_140_800_000));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

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
