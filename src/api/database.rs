//! Lakebase Provisioned ("database" service): `POST /api/2.0/database/credentials`,
//! `GET /api/2.0/database/instances[/{name}]`.

use super::{parse_credential, DatabaseCredential, WorkspaceApi};
use crate::error::Result;
use serde_json::json;

/// Mint a credential for one instance. A fresh `request_id` (UUIDv4) per call, as the SDKs do.
pub fn generate_credential(api: &WorkspaceApi, instance: &str) -> Result<DatabaseCredential> {
    let body = json!({ "instance_names": [instance], "request_id": uuid::Uuid::new_v4().to_string() });
    let v = api.call("POST", "/api/2.0/database/credentials", Some(body))?;
    parse_credential(&v, "expiration_time", "POST /api/2.0/database/credentials")
}

/// The instance as JSON (`name`, `state`, `read_write_dns`, `read_only_dns`, ...).
pub fn get_instance(api: &WorkspaceApi, name: &str) -> Result<serde_json::Value> {
    let path = format!("/api/2.0/database/instances/{}", urlencode_segment(name));
    api.call("GET", &path, None)
}

/// All instances, following `next_page_token`.
pub fn list_instances(api: &WorkspaceApi) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..1000 {
        // The first page as the SDKs ask for it (no query); then only the page token.
        let mut path = "/api/2.0/database/instances".to_string();
        if !token.is_empty() {
            path.push_str("?page_token=");
            path.push_str(&urlencode_segment(&token));
        }
        let v = api.call("GET", &path, None)?;
        if let Some(a) = v.get("database_instances").and_then(|a| a.as_array()) {
            out.extend(a.iter().cloned());
        }
        match v.get("next_page_token").and_then(|t| t.as_str()) {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    Ok(out)
}

pub(crate) fn urlencode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}
