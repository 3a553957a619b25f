//! `azure-msi`: an Azure managed identity, tokens from the instance metadata service (GO
//! config/auth_azure_msi.go; the Python SDK has no such method).
//!
//! Needs an Azure workspace, `azure_use_msi = true` / `ARM_USE_MSI=true` and the host
//! (`azure_client_id` picks a user-assigned identity). Two tokens, both from
//! `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=<r>
//! [&client_id=<id>]` with `Metadata: true` (answer `access_token`, `token_type`, `expires_on`):
//! the Azure Databricks app and the management endpoint (required header).
//!
//! IMDS is plain http on a link-local address by design. Requests go through the shared
//! [`HttpClient`] (deadlines, retries, fork-aware pool, bounded DNS) marked
//! [`Request::instance_metadata`], the one narrow exception to its https rule: plain http to
//! exactly `169.254.169.254:80` (or, for tests only, `LAKEBASE_TEST_IMDS_URL`, which must be
//! loopback).

use super::azure::{self, AzureCredentials};
use super::token_source::TokenSource;
use super::{host_of, non_empty, AuthContext, Credentials, Strategy};
use crate::cache::Fetched;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{HttpClient, Request};
use std::sync::Arc;

pub const IMDS_URL: &str = "http://169.254.169.254";
/// Test-only: replaces [`IMDS_URL`]; loopback only.
pub const TEST_IMDS_URL_ENV: &str = "LAKEBASE_TEST_IMDS_URL";

pub struct AzureMsi;

struct ImdsToken {
    base: String,
    resource: String,
    client_id: Option<String>,
    http: Arc<HttpClient>,
    clock: SharedClock,
}

impl ImdsToken {
    fn url(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("api-version", "2018-02-01");
        q.append_pair("resource", &self.resource);
        if let Some(c) = &self.client_id {
            q.append_pair("client_id", c);
        }
        format!("{}metadata/identity/oauth2/token?{}", self.base, q.finish())
    }
}

impl TokenSource for ImdsToken {
    fn token(&self) -> Result<Fetched> {
        let what = format!(
            "Azure managed identity token request for {} (GET /metadata/identity/oauth2/token)",
            azure::resource_name(&self.resource)
        );
        let req = Request::instance_metadata(self.url()).header("Metadata", "true");
        let resp = self.http.send(&req).map_err(|e| e.context(&what))?;
        if !resp.is_success() {
            return Err(super::token_source::token_error(&resp, &what));
        }
        azure::parse_aad_token(&resp.json(&what)?, self.clock.wall_ms(), &what)
    }
}

impl Strategy for AzureMsi {
    fn name(&self) -> &'static str {
        "azure-msi"
    }
    fn requirement(&self) -> &'static str {
        "needs an Azure workspace host (or azure_workspace_resource_id), ARM_USE_MSI=true on an Azure VM or service with a managed identity, and ARM_CLIENT_ID for a user-assigned identity"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        if !cfg.is_azure() || cfg.azure_use_msi != Some(true) {
            return Ok(None);
        }
        if host_of(cfg).is_none() {
            return Err(Error::config(
                "host is required: set DATABRICKS_HOST to the workspace URL (resolving it from azure_workspace_resource_id is not supported)",
            ));
        }
        let env = azure::environment(cfg)?;
        let base = match ctx.env.var(TEST_IMDS_URL_ENV) {
            Some(u) => azure::test_override(TEST_IMDS_URL_ENV, &u)?,
            None => format!("{IMDS_URL}/"),
        };
        let source = |resource: &str| ImdsToken {
            base: base.clone(),
            resource: resource.to_string(),
            client_id: non_empty(&cfg.azure_client_id).map(String::from),
            http: ctx.http.clone(),
            clock: ctx.clock.clone(),
        };
        Ok(Some(AzureCredentials::shared(
            "azure-msi",
            cfg,
            ctx,
            source(azure::AZURE_DATABRICKS_APP_ID),
            source(env.management_endpoint()),
            false,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imds_url() {
        let t = ImdsToken {
            base: "http://169.254.169.254/".into(),
            resource: "https://management.core.windows.net/".into(),
            client_id: Some("abc".into()),
            http: Arc::new(HttpClient::new(Default::default(), crate::clock::ManualClock::new(0))),
            clock: crate::clock::ManualClock::new(0),
        };
        assert_eq!(
            t.url(),
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.core.windows.net%2F&client_id=abc"
        );
    }
}
