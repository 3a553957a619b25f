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
