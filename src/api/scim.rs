//! `GET /api/2.0/preview/scim/v2/Me`: the caller's `userName`, which is its Postgres role.

use super::{str_field, WorkspaceApi};
use crate::error::Result;

pub fn me_user_name(api: &WorkspaceApi) -> Result<String> {
    let v = api.call("GET", "/api/2.0/preview/scim/v2/Me?attributes=userName", None)?;
    Ok(str_field(&v, "userName", "GET /api/2.0/preview/scim/v2/Me")?.to_string())
}
