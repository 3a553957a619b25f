//! The Lakebase database a password is for: a Provisioned instance or an Autoscaling endpoint,
//! what the API says about it ([`TargetInfo`]), and which one a Postgres host belongs to
//! (`discover`).

pub(crate) mod discover;

use crate::api::{self, DatabaseCredential, WorkspaceApi};
use crate::config::Config;
use crate::error::{Error, Result};
use std::fmt;

/// A Lakebase database.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Lakebase Provisioned: `POST /api/2.0/database/credentials`.
    Instance(String),
    /// Lakebase Autoscaling: `POST /api/2.0/postgres/credentials`.
    Endpoint(String),
}

impl Target {
    /// From `instance` / `endpoint` (options, LAKEBASE_INSTANCE / LAKEBASE_ENDPOINT, or profile).
    pub(crate) fn from_config(cfg: &Config) -> Result<Option<Target>> {
        let inst = cfg.instance.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let ep = cfg.endpoint.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let group_name = cfg.group_name.as_deref().is_some_and(|g| !g.trim().is_empty());
        match (inst, ep) {
            (Some(_), Some(_)) => {
                Err(Error::config("both instance (Lakebase Provisioned) and endpoint (Lakebase Autoscaling) are set; set only one"))
            }
            (Some(i), None) if group_name => Err(Error::config(format!(
                "group_name is set, but instance {i:?} is a Lakebase Provisioned instance, whose credential API has no group_name (Lakebase Autoscaling endpoints only): use group_id / DATABRICKS_GROUP_ID to act as a group, or unset group_name"
            ))),
            (Some(i), None) => Ok(Some(Target::Instance(i.to_string()))),
            (None, Some(e)) => {
                api::postgres::validate_endpoint_name(e)?;
                Ok(Some(Target::Endpoint(e.to_string())))
            }
            (None, None) => Ok(None),
        }
    }

    /// Mint a credential; `group_name` (Autoscaling only, checked by `from_config`): for that
    /// group's Postgres role.
    pub(crate) fn generate_credential(&self, api: &WorkspaceApi, group_name: Option<&str>) -> Result<DatabaseCredential> {
        match self {
            Target::Instance(name) => api::database::generate_credential(api, name),
            Target::Endpoint(name) => api::postgres::generate_credential(api, name, group_name),
        }
    }

    /// The Postgres host to connect to: an instance's `read_write_dns` (else `read_only_dns`), an
    /// endpoint's `status.hosts.host` (else its other hosts). One API call.
    pub(crate) fn postgres_host(&self, api: &WorkspaceApi) -> Result<String> {
        let host = match self {
            Target::Instance(name) => {
                let v = api::database::get_instance(api, name)?;
                ["read_write_dns", "read_only_dns"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(|h| h.as_str()).filter(|h| !h.is_empty()).map(String::from))
            }
            Target::Endpoint(name) => api::postgres::endpoint_hosts(&api::postgres::get_endpoint(api, name)?).into_iter().next(),
        };
        host.ok_or_else(|| Error::api(format!("the {self} has no Postgres host yet (is it still being created?)")))
    }

    /// `"instance"` or `"endpoint"`: the options key that names this kind of target.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Instance(_) => "instance",
            Target::Endpoint(_) => "endpoint",
        }
    }
    /// The instance name or the endpoint's resource name.
    pub fn name(&self) -> &str {
        match self {
            Target::Instance(n) | Target::Endpoint(n) => n,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind(), self.name())
    }
}

/// The message for "no target configured".
pub const NO_TARGET: &str = "no Lakebase database is configured: set LAKEBASE_INSTANCE (a Provisioned instance name) or LAKEBASE_ENDPOINT (an Autoscaling endpoint, projects/<p>/branches/<b>/endpoints/<e>), or instance= / endpoint= in the options or the profile";

/// What the workspace API says about a target (one lookup; no secret).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetInfo {
    /// The Postgres host to connect to: an instance's `read_write_dns`, an endpoint's
    /// `status.hosts.host`.
    pub host: Option<String>,
    /// Every host name the database answers on (read-write and read-only).
    pub all_hosts: Vec<String>,
    /// `state` (instance) or `status.current_state` (endpoint), e.g. `AVAILABLE`, `ACTIVE`, `IDLE`.
    pub state: Option<String>,
    /// Endpoint only: the state it is changing to (`status.pending_state`).
    pub pending_state: Option<String>,
    /// Endpoint only: `status.disabled` (a disabled endpoint does not wake on connect).
    pub disabled: Option<bool>,
    /// Endpoint only: the connection-pooler hosts (`status.hosts.*_pooled_host`).
    pub pooled_hosts: Vec<String>,
    /// The raw API object, for tools that show more.
    pub raw: serde_json::Value,
}

impl Target {
    /// Look the target up (one API call).
    pub(crate) fn describe(&self, api: &WorkspaceApi) -> Result<TargetInfo> {
        let s = |v: &serde_json::Value, path: &[&str]| -> Option<String> {
            let mut cur = v;
            for k in path {
                cur = cur.get(k)?;
            }
            cur.as_str().filter(|s| !s.is_empty()).map(String::from)
        };
        Ok(match self {
            Target::Instance(name) => {
                let v = api::database::get_instance(api, name)?;
                let all_hosts = [s(&v, &["read_write_dns"]), s(&v, &["read_only_dns"])].into_iter().flatten().collect();
                TargetInfo { host: s(&v, &["read_write_dns"]), all_hosts, state: s(&v, &["state"]), raw: v, ..TargetInfo::default() }
            }
            Target::Endpoint(name) => {
                let v = api::postgres::get_endpoint(api, name)?;
                TargetInfo {
                    host: s(&v, &["status", "hosts", "host"]),
                    all_hosts: api::postgres::endpoint_hosts(&v),
                    state: s(&v, &["status", "current_state"]),
                    pending_state: s(&v, &["status", "pending_state"]),
                    disabled: v["status"].get("disabled").and_then(|d| d.as_bool()),
                    pooled_hosts: api::postgres::pooled_hosts(&v),
                    raw: v,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_options, MapEnv};

    fn target(options: &str) -> Result<Option<Target>> {
        let cfg = Config::resolve(&parse_options(options).unwrap(), &MapEnv::from_pairs([("HOME", "/nonexistent")])).unwrap();
        Target::from_config(&cfg)
    }

    #[test]
    fn group_name_is_for_autoscaling_endpoints_only() {
        let ep = "projects/p/branches/b/endpoints/e";
        assert_eq!(target(&format!("endpoint={ep} group_name=writers")).unwrap(), Some(Target::Endpoint(ep.into())));
        let e = target("instance=db group_name=writers").unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Config);
        assert!(e.message().starts_with("group_name is set, but instance \"db\" is a Lakebase Provisioned instance"), "{e}");
        assert!(target("instance=db group_id=42").is_ok(), "group_id works for both");
    }
}
