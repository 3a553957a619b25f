//! `github-oidc-azure`: a GitHub Actions ID token (audience `api://AzureADTokenExchange`) used as
//! the client assertion of an Azure AD app with a federated credential (GO
//! config/auth_azure_github_oidc.go). Needs an Azure workspace, `azure_client_id`,
//! `azure_tenant_id` and the GitHub Actions ID-token variables. Only the Azure Databricks token is
//! sent (no management token), as the Go SDK. A fresh GitHub ID token is requested for every
//! Azure AD token, so refreshes keep working after the first ID token expires.

use super::azure::{self, AadClientAuth, AadToken, Tenant};
use super::federation::IdTokenSource;
use super::github_oidc::GithubIdToken;
use super::token_source::CachedCredentials;
use super::{host_of, non_empty, AuthContext, Credentials, Strategy};
use crate::config::Config;
use crate::error::Result;
use std::sync::Arc;

pub const AUDIENCE: &str = "api://AzureADTokenExchange";

pub struct GithubOidcAzure;

impl Strategy for GithubOidcAzure {
    fn name(&self) -> &'static str {
        "github-oidc-azure"
    }
    fn requirement(&self) -> &'static str {
        "needs an Azure workspace host, ARM_CLIENT_ID and ARM_TENANT_ID of an Azure AD app with a GitHub federated credential, in a GitHub Actions job with `permissions: id-token: write`"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        let (Some(client_id), Some(_)) = (non_empty(&cfg.azure_client_id), non_empty(&cfg.azure_tenant_id)) else { return Ok(None) };
        if !cfg.is_azure() || host_of(cfg).is_none() {
            return Ok(None);
        }
        let Some(gh) = GithubIdToken::from_config(cfg, &ctx.http) else { return Ok(None) };
        crate::http::check_url(&gh.request_url)?;
        let gh = Arc::new(gh);
        let assertion = AadClientAuth::Assertion(Arc::new(move || gh.id_token(AUDIENCE)));
        let src = AadToken {
            login_base: azure::login_base(cfg, &*ctx.env)?,
            tenant: Tenant::new(cfg, &ctx.http),
            client_id: client_id.to_string(),
            auth: Arc::new(assertion),
            resource: azure::AZURE_DATABRICKS_APP_ID.to_string(),
            http: ctx.http.clone(),
            clock: ctx.clock.clone(),
        };
        Ok(Some(Arc::new(CachedCredentials::new("github-oidc-azure", src, ctx))))
    }
}
