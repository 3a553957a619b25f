//! `GET /api/2.0/preview/scim/v2/Me`: the caller's `userName`, which is its Postgres role;
//! `GET /api/2.0/preview/scim/v2/Groups/{id}`: a group's `displayName`, which is the group's
//! Postgres role.

use super::{str_field, WorkspaceApi};
use crate::error::Result;

pub fn me_user_name(api: &WorkspaceApi) -> Result<String> {
    // No `?attributes=userName`: the plain path is what the SDKs send and every server answers.
    let v = api.call("GET", "/api/2.0/preview/scim/v2/Me", None)?;
    Ok(str_field(&v, "userName", "GET /api/2.0/preview/scim/v2/Me")?.to_string())
}

/// The display name (the Postgres role) of the group with SCIM id `id`.
pub fn group_display_name(api: &WorkspaceApi, id: &str) -> Result<String> {
    let path = format!("/api/2.0/preview/scim/v2/Groups/{}", super::urlencode_segment(id));
    let v = api.call("GET", &path, None)?;
    Ok(str_field(&v, "displayName", "GET /api/2.0/preview/scim/v2/Groups/{id}")?.to_string())
}
