//! Lakebase Autoscaling ("postgres" service): `POST /api/2.0/postgres/credentials`,
//! `GET /api/2.0/postgres/{endpoint name}`, endpoint listing.

use super::{parse_credential, DatabaseCredential, WorkspaceApi};
use crate::error::{Error, Result};
use serde_json::json;

/// Mint a credential for `projects/{p}/branches/{b}/endpoints/{e}`; with `group_name`, for that
/// group's Postgres role (the caller must be a member; databricks-sdk 0.167 `group_name`).
pub fn generate_credential(api: &WorkspaceApi, endpoint: &str, group_name: Option<&str>) -> Result<DatabaseCredential> {
    let mut body = json!({ "endpoint": endpoint });
    if let Some(g) = group_name.filter(|g| !g.is_empty()) {
        body["group_name"] = json!(g);
    }
    let v = api.call_repeatable("POST", "/api/2.0/postgres/credentials", Some(body))?;
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

fn names(items: &[serde_json::Value]) -> Vec<String> {
    items.iter().filter_map(|i| i.get("name").and_then(|n| n.as_str()).map(String::from)).collect()
}

/// Every endpoint of every branch of every project the caller can see.
pub fn list_all_endpoints(api: &WorkspaceApi) -> Result<Vec<serde_json::Value>> {
    list_all_endpoints_paged(api, &mut |_| Ok(()))
}

/// [`list_all_endpoints`], asking `before_page` before each page request (it ends the listing
/// with its error: a cap on pages or time).
pub fn list_all_endpoints_paged(api: &WorkspaceApi, before_page: &mut dyn FnMut(&str) -> Result<()>) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for project in names(&api.list_all_paged("/api/2.0/postgres/projects", "projects", before_page)?) {
        for branch in names(&api.list_all_paged(&format!("/api/2.0/postgres/{project}/branches"), "branches", before_page)?) {
            out.extend(api.list_all_paged(&format!("/api/2.0/postgres/{branch}/endpoints"), "endpoints", before_page)?);
        }
    }
    Ok(out)
}

/// The Postgres host names an endpoint answers on (`status.hosts.*`).
pub fn endpoint_hosts(ep: &serde_json::Value) -> Vec<String> {
    hosts_of(ep, &["host", "read_only_host", "read_write_pooled_host", "read_only_pooled_host"])
}

/// The endpoint's connection-pooler (PgBouncer) hosts (`status.hosts.*_pooled_host`).
pub fn pooled_hosts(ep: &serde_json::Value) -> Vec<String> {
    hosts_of(ep, &["read_write_pooled_host", "read_only_pooled_host"])
}

fn hosts_of(ep: &serde_json::Value, keys: &[&str]) -> Vec<String> {
    let hosts = &ep["status"]["hosts"];
    keys.iter().filter_map(|k| hosts.get(*k).and_then(|h| h.as_str()).filter(|h| !h.is_empty()).map(String::from)).collect()
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
