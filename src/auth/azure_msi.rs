//! `azure-msi`: an Azure managed identity, tokens from the instance metadata service (GO
//! config/auth_azure_msi.go; the Python SDK has no such method).
//!
//! Needs an Azure workspace, `azure_use_msi = true` / `ARM_USE_MSI=true` and the host
//! (`azure_client_id` picks a user-assigned identity). Two tokens, both from
//! `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=<r>
//! [&client_id=<id>]` with `Metadata: true` (answer `access_token`, `token_type`, `expires_on`):
//! the Azure Databricks app and the management endpoint (required header).
//!
//! IMDS is plain http on a link-local address by design, which the workspace HTTP client refuses
//! (https, or http only to loopback); so this file talks to exactly that address (or, for tests
//! only, `LAKEBASE_TEST_IMDS_URL`, which must be loopback) with its own minimal client: no proxy,
//! no redirects, 10 s timeout, 3 attempts.

use super::azure::{self, AzureCredentials};
use super::token_source::TokenSource;
use super::{host_of, non_empty, AuthContext, Credentials, Strategy};
use crate::cache::Fetched;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Response;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

pub const IMDS_URL: &str = "http://169.254.169.254";
/// Test-only: replaces [`IMDS_URL`]; loopback only.
pub const TEST_IMDS_URL_ENV: &str = "LAKEBASE_TEST_IMDS_URL";
const ATTEMPTS: u32 = 3;

pub struct AzureMsi;

struct ImdsToken {
    base: String,
    resource: String,
    client_id: Option<String>,
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

    fn get_once(&self, what: &str) -> Result<Response> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirects(0)
            .user_agent(crate::http::USER_AGENT)
            .build();
        let resp = match agent.get(&self.url()).set("Metadata", "true").set("Accept", "application/json").call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(Error::network(format!("{what} failed: {}", t.kind()))),
        };
        let status = resp.status();
        let headers = resp.headers_names().into_iter().filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string()))).collect();
        let mut body = Vec::new();
        resp.into_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .map_err(|e| Error::network(format!("{what}: reading the response failed: {:?}", e.kind())))?;
        Ok(Response { status, headers, body })
    }
}

impl TokenSource for ImdsToken {
    fn token(&self) -> Result<Fetched> {
        let what = format!("Azure managed identity token request for {} (GET /metadata/identity/oauth2/token)", azure::resource_name(&self.resource));
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let r = self.get_once(&what);
            let retry = match &r {
                Ok(resp) => resp.status == 429 || resp.status >= 500,
                Err(e) => e.kind() == ErrorKind::Network,
            };
            if !retry || attempt >= ATTEMPTS {
                break r?;
            }
            self.clock.sleep(crate::http::backoff(attempt, None));
        };
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
            clock: ctx.clock.clone(),
        };
        Ok(Some(AzureCredentials::new(
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
            clock: crate::clock::ManualClock::new(0),
        };
        assert_eq!(
            t.url(),
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.core.windows.net%2F&client_id=abc"
        );
    }
}
