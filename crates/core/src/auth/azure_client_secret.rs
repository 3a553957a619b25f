//! `azure-client-secret`: an Azure AD service principal with a client secret (GO
//! config/auth_azure_client_secret.go; PY `azure_service_principal`).
//!
//! Needs an Azure workspace, `azure_client_id`, `azure_client_secret`; `azure_tenant_id` is found
//! through `{host}/aad/auth` when not set (as the Python SDK; Go requires it). Two tokens from
//! `POST {login}{tenant}/oauth2/token` (`grant_type=client_credentials`, client id and secret in
//! the form): resource `2ff814a6-...` for `Authorization`, the management endpoint for
//! `X-Databricks-Azure-SP-Management-Token` (required).

use super::azure::{self, AadClientAuth, AadToken, AzureCredentials, Tenant};
use super::{host_of, non_empty, AuthContext, Credentials, Strategy};
use crate::config::Config;
use crate::error::Result;
use std::sync::Arc;

pub struct AzureClientSecret;

impl Strategy for AzureClientSecret {
    fn name(&self) -> &'static str {
        "azure-client-secret"
    }
    fn requirement(&self) -> &'static str {
        "needs an Azure workspace host (or azure_workspace_resource_id), ARM_CLIENT_ID, ARM_CLIENT_SECRET and optionally ARM_TENANT_ID"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        let (Some(client_id), Some(secret)) = (non_empty(&cfg.azure_client_id), cfg.azure_client_secret.as_ref().filter(|s| !s.is_empty()))
        else {
            return Ok(None);
        };
        if !cfg.is_azure() || host_of(cfg).is_none() {
            return Ok(None);
        }
        let env = azure::environment(cfg)?;
        let login_base = azure::login_base(cfg, &*ctx.env)?;
        let tenant = Tenant::new(cfg, &ctx.http);
        let auth = Arc::new(AadClientAuth::Secret(secret.clone()));
        let source = |resource: &str| AadToken {
            login_base: login_base.clone(),
            tenant: tenant.clone(),
            client_id: client_id.to_string(),
            auth: auth.clone(),
            resource: resource.to_string(),
            http: ctx.http.clone(),
            clock: ctx.clock.clone(),
        };
        Ok(Some(AzureCredentials::shared(
            "azure-client-secret",
            cfg,
            ctx,
            source(azure::AZURE_DATABRICKS_APP_ID),
            source(env.management_endpoint()),
            false,
        )))
    }
}
