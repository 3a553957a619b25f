//! Lakebase Provisioned ("database" service): `POST /api/2.0/database/credentials`,
//! `GET /api/2.0/database/instances[/{name}]`.

use super::{parse_credential, DatabaseCredential, WorkspaceApi};
use crate::error::Result;
use serde_json::json;

/// Mint a credential for one instance. A fresh `request_id` (UUIDv4) per call, as the SDKs do
/// (the server refuses a request without one). A repeat after a timed-out response keeps the
/// same `request_id`.
pub fn generate_credential(api: &WorkspaceApi, instance: &str) -> Result<DatabaseCredential> {
    let body = json!({ "instance_names": [instance], "request_id": uuid::Uuid::new_v4().to_string() });
    let v = api.call_repeatable("POST", "/api/2.0/database/credentials", Some(body))?;
    parse_credential(&v, "expiration_time", "POST /api/2.0/database/credentials")
}

/// The instance as JSON (`name`, `state`, `read_write_dns`, `read_only_dns`, ...).
pub fn get_instance(api: &WorkspaceApi, name: &str) -> Result<serde_json::Value> {
    let path = format!("/api/2.0/database/instances/{}", super::urlencode_segment(name));
    api.call("GET", &path, None)
}

/// All instances, following `next_page_token` (at most 1000 pages).
pub fn list_instances(api: &WorkspaceApi) -> Result<Vec<serde_json::Value>> {
    list_instances_paged(api, &mut |_| Ok(()))
}

/// [`list_instances`], asking `before_page` before each page request (it ends the listing with
/// its error: a cap on pages or time).
pub fn list_instances_paged(api: &WorkspaceApi, before_page: &mut dyn FnMut(&str) -> Result<()>) -> Result<Vec<serde_json::Value>> {
    api.list_all_paged("/api/2.0/database/instances", "database_instances", before_page)
}
