//! The Lakebase database a password is for: a Provisioned instance or an Autoscaling endpoint.

use crate::api::{self, DatabaseCredential, WorkspaceApi};
use crate::config::Config;
use crate::error::{Error, Result};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Lakebase Provisioned: `POST /api/2.0/database/credentials`.
    Instance(String),
    /// Lakebase Autoscaling: `POST /api/2.0/postgres/credentials`.
    Endpoint(String),
}

impl Target {
    /// From `instance` / `endpoint` (options, LAKEBASE_INSTANCE / LAKEBASE_ENDPOINT, or profile).
    pub fn from_config(cfg: &Config) -> Result<Option<Target>> {
        let inst = cfg.instance.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let ep = cfg.endpoint.as_deref().map(str::trim).filter(|s| !s.is_empty());
        match (inst, ep) {
            (Some(_), Some(_)) => Err(Error::config(
                "both instance (Lakebase Provisioned) and endpoint (Lakebase Autoscaling) are set; set only one",
            )),
            (Some(i), None) => Ok(Some(Target::Instance(i.to_string()))),
            (None, Some(e)) => {
                api::postgres::validate_endpoint_name(e)?;
                Ok(Some(Target::Endpoint(e.to_string())))
            }
            (None, None) => Ok(None),
        }
    }

    pub fn generate_credential(&self, api: &WorkspaceApi) -> Result<DatabaseCredential> {
        match self {
            Target::Instance(name) => api::database::generate_credential(api, name),
            Target::Endpoint(name) => api::postgres::generate_credential(api, name),
        }
    }

    /// The Postgres host to connect to: an instance's `read_write_dns` (else `read_only_dns`), an
    /// endpoint's `status.hosts.host` (else its other hosts). One API call.
    pub fn postgres_host(&self, api: &WorkspaceApi) -> Result<String> {
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

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Instance(_) => "instance",
            Target::Endpoint(_) => "endpoint",
        }
    }
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

pub const NO_TARGET: &str = "no Lakebase database is configured: set LAKEBASE_INSTANCE (a Provisioned instance name) or LAKEBASE_ENDPOINT (an Autoscaling endpoint, projects/<p>/branches/<b>/endpoints/<e>), or instance= / endpoint= in the options or the profile";
