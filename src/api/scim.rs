//! `GET /api/2.0/preview/scim/v2/Me`: the caller's `userName`, which is its Postgres role.

use super::{str_field, WorkspaceApi};
use crate::error::Result;

pub fn me_user_name(api: &WorkspaceApi) -> Result<String> {
    // No `?attributes=userName`: the plain path is what the SDKs send and every server answers.
    let v = api.call("GET", "/api/2.0/preview/scim/v2/Me", None)?;
    Ok(str_field(&v, "userName", "GET /api/2.0/preview/scim/v2/Me")?.to_string())
}
