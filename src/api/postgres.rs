//! Lakebase Autoscaling ("postgres" service): `POST /api/2.0/postgres/credentials`,
//! `GET /api/2.0/postgres/{endpoint name}`, endpoint listing.

use super::{parse_credential, DatabaseCredential, WorkspaceApi};
use crate::error::{Error, Result};
use serde_json::json;

/// Mint a credential for `projects/{p}/branches/{b}/endpoints/{e}`.
pub fn generate_credential(api: &WorkspaceApi, endpoint: &str) -> Result<DatabaseCredential> {
    let v = api.call("POST", "/api/2.0/postgres/credentials", Some(json!({ "endpoint": endpoint })))?;
    parse_credential(&v, "expire_time", "POST /api/2.0/postgres/credentials")
}

/// The endpoint as JSON (`status.hosts.host`, `status.current_state`, ...).
pub fn get_endpoint(api: &WorkspaceApi, name: &str) -> Result<serde_json::Value> {
    validate_endpoint_name(name)?;
    api.call("GET", &format!("/api/2.0/postgres/{name}"), None)
}

/// Check the shape `projects/{p}/branches/{b}/endpoints/{e}` with non-empty, slash-free ids.
pub fn validate_endpoint_name(name: &str) -> Result<()> {
    let parts: Vec<&str> = name.split('/').collect();
    let ok = parts.len() == 6
        && parts[0] == "projects"
        && parts[2] == "branches"
        && parts[4] == "endpoints"
        && [1, 3, 5].iter().all(|&i| {
            let p = parts[i];
            !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "endpoint {name:?} is not an Autoscaling endpoint resource name: expected projects/<project>/branches/<branch>/endpoints/<endpoint>"
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoint_names() {
        use super::validate_endpoint_name as v;
        assert!(v("projects/p/branches/b/endpoints/e").is_ok());
        assert!(v("projects/my-proj/branches/production/endpoints/ep-1").is_ok());
        assert!(v("projects/p/branches/b").is_err());
        assert!(v("projects//branches/b/endpoints/e").is_err());
        assert!(v("projects/p/branches/b/endpoints/e/x").is_err());
        assert!(v("projects/p?x/branches/b/endpoints/e").is_err());
    }
}

/// Follow `next_page_token` through a list call, collecting `items_key`.
fn list_all(api: &WorkspaceApi, path: &str, items_key: &str) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..1000 {
        // The first page as the SDKs ask for it (no query); then only the page token.
        let mut p = path.to_string();
        if !token.is_empty() {
            p.push_str(if path.contains('?') { "&page_token=" } else { "?page_token=" });
            p.push_str(&super::database::urlencode_segment(&token));
        }
        let v = api.call("GET", &p, None)?;
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

fn names(items: &[serde_json::Value]) -> Vec<String> {
    items.iter().filter_map(|i| i.get("name").and_then(|n| n.as_str()).map(String::from)).collect()
}

/// Every endpoint of every branch of every project the caller can see.
pub fn list_all_endpoints(api: &WorkspaceApi) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for project in names(&list_all(api, "/api/2.0/postgres/projects", "projects")?) {
        for branch in names(&list_all(api, &format!("/api/2.0/postgres/{project}/branches"), "branches")?) {
            out.extend(list_all(api, &format!("/api/2.0/postgres/{branch}/endpoints"), "endpoints")?);
        }
    }
    Ok(out)
}

/// The Postgres host names an endpoint answers on (`status.hosts.*`).
pub fn endpoint_hosts(ep: &serde_json::Value) -> Vec<String> {
    let hosts = &ep["status"]["hosts"];
    ["host", "read_only_host", "read_write_pooled_host", "read_only_pooled_host"]
        .iter()
        .filter_map(|k| hosts.get(*k).and_then(|h| h.as_str()).filter(|h| !h.is_empty()).map(String::from))
        .collect()
}
