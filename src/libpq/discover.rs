//! Which Lakebase database a Postgres host belongs to, when LAKEBASE_INSTANCE / LAKEBASE_ENDPOINT
//! are not set: the host is matched against Provisioned instances' `read_write_dns` /
//! `read_only_dns` and Autoscaling endpoints' `status.hosts`. Results are cached per host.

use crate::api::{database, postgres, WorkspaceApi};
use crate::error::{Error, Result};
use crate::target::Target;

pub fn find_target(api: &WorkspaceApi, host: &str) -> Result<Target> {
    let host_l = host.trim_end_matches('.').to_ascii_lowercase();
    let same = |h: &str| h.trim_end_matches('.').eq_ignore_ascii_case(&host_l);
    let mut errors = Vec::new();
    match database::list_instances(api) {
        Ok(list) => {
            for inst in list {
                let dns = ["read_write_dns", "read_only_dns"].iter().filter_map(|k| inst.get(*k).and_then(|v| v.as_str())).any(|h| same(h));
                if dns {
                    if let Some(name) = inst.get("name").and_then(|n| n.as_str()) {
                        return Ok(Target::Instance(name.to_string()));
                    }
                }
            }
        }
        Err(e) => errors.push(e),
    }
    match postgres::list_all_endpoints(api) {
        Ok(list) => {
            for ep in list {
                if postgres::endpoint_hosts(&ep).iter().any(|h| same(h)) {
                    if let Some(name) = ep.get("name").and_then(|n| n.as_str()) {
                        return Ok(Target::Endpoint(name.to_string()));
                    }
                }
            }
        }
        Err(e) => errors.push(e),
    }
    if errors.len() == 2 {
        let e = errors.swap_remove(0);
        return Err(e.context(format!("looking up which Lakebase database has the host {host:?}")));
    }
    let why = if errors.is_empty() {
        String::new()
    } else {
        format!(" (lookups failed: {})", errors.iter().map(|e| e.message().to_string()).collect::<Vec<_>>().join("; "))
    };
    Err(Error::config(format!(
        "no Lakebase instance or endpoint in workspace {} has the host {host:?}{why}; set LAKEBASE_INSTANCE or LAKEBASE_ENDPOINT",
        api.host()
    )))
}
