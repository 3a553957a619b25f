//! `azure-cli`: tokens from the Azure CLI's login (`az login`), by running
//! `az account get-access-token --resource <r> --output json [--tenant <t>] [--subscription <s>]`
//! (GO config/auth_azure_cli.go; PY `AzureCliTokenSource`).
//!
//! Configured when the workspace is on Azure and `az` is on `PATH`; nothing runs while resolving,
//! so a missing login shows up on first use as an `azure-cli` auth error that says to run
//! `az login`. With no tenant configured and a subscription in `azure_workspace_resource_id`,
//! `--subscription` is tried first, then the default subscription. The management token is
//! fetched too and sent when it can be had (users without ARM access go without).
//!
//! Output fields: `accessToken`, `tokenType`, `expires_on` (Unix seconds, newer CLIs) or
//! `expiresOn` (local time `YYYY-MM-DD HH:MM:SS.ffffff`).

use super::azure::{self, AzureCredentials};
use super::subprocess::{self, find_executable};
use super::token_source::{header_value, number_field, TokenSource};
use super::{host_of, non_empty, AuthContext, Credentials, Strategy};
use crate::cache::Fetched;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::timefmt::parse_local_datetime_ms;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

pub struct AzureCli;

struct AzCliToken {
    program: PathBuf,
    resource: String,
    tenant: Option<String>,
    subscription: Option<String>,
}

impl AzCliToken {
    fn args(&self, with_subscription: bool) -> Vec<String> {
        let mut a: Vec<String> =
            ["account", "get-access-token", "--resource", &self.resource, "--output", "json"].iter().map(|s| s.to_string()).collect();
        if let Some(t) = &self.tenant {
            a.extend(["--tenant".into(), t.clone()]);
        }
        if let (true, Some(s)) = (with_subscription, &self.subscription) {
            a.extend(["--subscription".into(), s.clone()]);
        }
        a
    }

    fn run(&self, with_subscription: bool) -> Result<Fetched> {
        let out = subprocess::run(&self.program, &self.args(with_subscription), TIMEOUT, "az account get-access-token")?;
        if !out.success() {
            let hint = if out.stderr.contains("az login") { "" } else { " (log in with `az login`)" };
            return Err(Error::auth(format!(
                "cannot get an access token for {} from the Azure CLI: {}: {}{hint}",
                azure::resource_name(&self.resource),
                out.stderr,
                out.status_text()
            )));
        }
        parse_output(&out.stdout)
    }
}

impl TokenSource for AzCliToken {
    fn token(&self) -> Result<Fetched> {
        if self.tenant.is_none() && self.subscription.is_some() {
            match self.run(true) {
                Ok(t) => return Ok(t),
                Err(e) => crate::log_debug!("azure-cli: with --subscription: {e}; retrying with the default subscription"),
            }
        }
        self.run(false)
    }
}

/// `az account get-access-token --output json` → header and expiry.
pub fn parse_output(stdout: &[u8]) -> Result<Fetched> {
    let what = "az account get-access-token";
    let v: serde_json::Value =
        serde_json::from_slice(stdout).map_err(|e| Error::auth(format!("cannot parse the output of `{what}`: {e}")))?;
    let token = super::token_source::token_field(&v, "accessToken", what)?;
    let expiry_ms = number_field(&v, "expires_on")
        .filter(|s| *s > 0)
        .map(|s| s.saturating_mul(1000))
        .or_else(|| v.get("expiresOn").and_then(|s| s.as_str()).and_then(parse_local_datetime_ms))
        .ok_or_else(|| Error::auth(format!("`{what}` gave no usable \"expires_on\" / \"expiresOn\"")))?;
    Ok(Fetched { secret: header_value(v.get("tokenType").and_then(|s| s.as_str()), token, what)?, expiry_ms })
}

/// The subscription id of `/subscriptions/<id>/resourceGroups/...`.
pub fn subscription_of(resource_id: &str) -> Option<String> {
    let mut parts = resource_id.trim_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some(s), Some(id)) if s.eq_ignore_ascii_case("subscriptions") && !id.is_empty() => Some(id.to_string()),
        _ => None,
    }
}

impl Strategy for AzureCli {
    fn name(&self) -> &'static str {
        "azure-cli"
    }
    fn requirement(&self) -> &'static str {
        "needs an Azure workspace host (or azure_workspace_resource_id) and the Azure CLI (`az`) on PATH, logged in with `az login`"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        if !cfg.is_azure() || host_of(cfg).is_none() {
            return Ok(None);
        }
        let Some(program) = find_executable("az", &*ctx.env) else { return Ok(None) };
        let env = azure::environment(cfg)?;
        let source = |resource: &str| AzCliToken {
            program: program.clone(),
            resource: resource.to_string(),
            tenant: non_empty(&cfg.azure_tenant_id).map(String::from),
            subscription: cfg.azure_workspace_resource_id.as_deref().and_then(subscription_of),
        };
        Ok(Some(AzureCredentials::shared(
            "azure-cli",
            cfg,
            ctx,
            source(azure::AZURE_DATABRICKS_APP_ID),
            source(env.management_endpoint()),
            true,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shapes() {
        let f = parse_output(
            br#"{"accessToken": "t", "expiresOn": "2026-08-19 12:00:00.000000", "expires_on": 1787140800, "tokenType": "Bearer"}"#,
        )
        .unwrap();
        assert_eq!((f.secret.expose(), f.expiry_ms), ("Bearer t", 1_787_140_800_000));
        let f = parse_output(br#"{"accessToken": "t", "expiresOn": "2026-08-19 12:00:00.000000", "tokenType": "Bearer"}"#).unwrap();
        assert!((f.expiry_ms - 1_787_140_800_000).abs() <= 14 * 3_600_000);
        assert!(parse_output(br#"{"accessToken": "t"}"#).is_err());
        assert!(parse_output(b"ERROR").is_err());
    }

    #[test]
    fn subscriptions() {
        let id = "/subscriptions/0000-1111/resourceGroups/rg/providers/Microsoft.Databricks/workspaces/ws";
        assert_eq!(subscription_of(id).as_deref(), Some("0000-1111"));
        assert_eq!(subscription_of("garbage"), None);
    }

    #[test]
    fn arguments() {
        let t = AzCliToken { program: "az".into(), resource: "r".into(), tenant: Some("t".into()), subscription: Some("s".into()) };
        assert_eq!(t.args(false).join(" "), "account get-access-token --resource r --output json --tenant t");
        assert_eq!(t.args(true).join(" "), "account get-access-token --resource r --output json --tenant t --subscription s");
    }
}
