//! `azure-devops-oidc`: in an Azure Pipelines job, ask Azure DevOps for the job's OIDC token and
//! exchange it for a workspace token ([`super::federation`]), as databricks-sdk 0.167
//! (oidc_token_supplier.py `AzureDevOpsOIDCTokenSupplier`) and the Go SDK
//! (config/experimental/auth/oidc/azuredevops.go).
//!
//! Needs `host`, `client_id` (the service principal with a federation policy for the pipeline)
//! and the pipeline's variables `SYSTEM_ACCESSTOKEN` (mapped into the job's environment),
//! `SYSTEM_TEAMFOUNDATIONCOLLECTIONURI`, `SYSTEM_TEAMPROJECTID`, `SYSTEM_PLANID`, `SYSTEM_JOBID`,
//! `SYSTEM_HOSTTYPE`. The ID token: `POST {collection uri}{project}/_apis/distributedtask/hubs/
//! {host type}/plans/{plan}/jobs/{job}/oidctoken?api-version=7.2-preview.1` with
//! `Authorization: Bearer $SYSTEM_ACCESSTOKEN` and an empty body → `{"oidcToken": "<jwt>"}`. Its
//! audience is fixed by Azure DevOps (`api://AzureADTokenExchange`). A fresh one is asked for on
//! every refresh. Nothing is requested while configuring.

use super::federation::{self, IdTokenSource};
use super::{host_of, non_empty, AuthContext, Credentials, Probe, Strategy};
use crate::config::{Config, Env};
use crate::error::{Error, Result};
use crate::http::{HttpClient, Request};
use crate::secret::Secret;
use std::sync::Arc;

pub const VARIABLES: [&str; 6] = [
    "SYSTEM_ACCESSTOKEN",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
    "SYSTEM_TEAMPROJECTID",
    "SYSTEM_PLANID",
    "SYSTEM_JOBID",
    "SYSTEM_HOSTTYPE",
];

pub struct AzureDevopsOidc;

struct PipelineIdToken {
    url: String,
    access_token: Secret,
    http: Arc<HttpClient>,
}

impl PipelineIdToken {
    /// From the pipeline's variables, or which ones are missing.
    fn from_env(env: &dyn Env, http: &Arc<HttpClient>) -> std::result::Result<PipelineIdToken, String> {
        let get = |k: &str| env.var(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let missing: Vec<&str> = VARIABLES.iter().copied().filter(|k| get(k).is_none()).collect();
        if missing.contains(&"SYSTEM_ACCESSTOKEN") && missing.len() < VARIABLES.len() {
            return Err(
                "SYSTEM_ACCESSTOKEN is not set: map it into the job's environment (env: SYSTEM_ACCESSTOKEN: $(System.AccessToken))".into(),
            );
        }
        if !missing.is_empty() {
            return Err(format!("not in an Azure Pipelines job (missing {})", missing.join(", ")));
        }
        let v = |k: &str| get(k).unwrap_or_default();
        let seg = |k: &str| url::form_urlencoded::byte_serialize(v(k).as_bytes()).collect::<String>().replace('+', "%20");
        let url = format!(
            "{}/{}/_apis/distributedtask/hubs/{}/plans/{}/jobs/{}/oidctoken?api-version=7.2-preview.1",
            v("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI").trim_end_matches('/'),
            seg("SYSTEM_TEAMPROJECTID"),
            seg("SYSTEM_HOSTTYPE"),
            seg("SYSTEM_PLANID"),
            seg("SYSTEM_JOBID"),
        );
        Ok(PipelineIdToken { url, access_token: Secret::new(v("SYSTEM_ACCESSTOKEN")), http: http.clone() })
    }
}

impl IdTokenSource for PipelineIdToken {
    fn id_token(&self, _audience: &str) -> Result<Secret> {
        let req = Request::post_empty(self.url.clone())
            .repeatable()
            .header("Content-Type", "application/json")
            .header("Content-Length", "0")
            .auth(Secret::new(format!("Bearer {}", self.access_token.expose())));
        let what = format!("Azure DevOps OIDC token request ({})", req.describe());
        let resp = self.http.send(&req)?;
        if !resp.is_success() {
            return Err(super::token_source::token_error(&resp, &what));
        }
        let v = resp.json(&what)?;
        Ok(Secret::new(super::token_source::token_field(&v, "oidcToken", &what)?))
    }
}

impl Strategy for AzureDevopsOidc {
    fn name(&self) -> &'static str {
        "azure-devops-oidc"
    }
    fn supports_group(&self) -> bool {
        true
    }
    fn requirement(&self) -> &'static str {
        "needs host, client_id / DATABRICKS_CLIENT_ID of a service principal with a federation policy for the pipeline, and an Azure Pipelines job (SYSTEM_ACCESSTOKEN, SYSTEM_TEAMFOUNDATIONCOLLECTIONURI, SYSTEM_TEAMPROJECTID, SYSTEM_PLANID, SYSTEM_JOBID, SYSTEM_HOSTTYPE)"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        Ok(match self.probe(cfg, ctx, false)? {
            Probe::Configured(c) => Some(c),
            Probe::NotConfigured(_) => None,
        })
    }
    fn probe(&self, cfg: &Config, ctx: &AuthContext, _forced: bool) -> Result<Probe> {
        if host_of(cfg).is_none() || non_empty(&cfg.client_id).is_none() {
            return Ok(Probe::NotConfigured(None));
        }
        let src = match PipelineIdToken::from_env(&*ctx.env, &ctx.http) {
            Ok(s) => s,
            Err(why) => return Ok(Probe::NotConfigured(Some(why))),
        };
        crate::http::check_url(&src.url).map_err(|e| Error::config(format!("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: {}", e.message())))?;
        Ok(Probe::Configured(federation::credentials("azure-devops-oidc", cfg, ctx, src)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    fn http() -> Arc<HttpClient> {
        Arc::new(HttpClient::new(Default::default(), Arc::new(crate::clock::SystemClock)))
    }

    #[test]
    fn request_url_and_missing_variables() {
        let mut pairs = vec![
            ("SYSTEM_ACCESSTOKEN", "ado-secret"),
            ("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI", "https://dev.azure.com/org/"),
            ("SYSTEM_TEAMPROJECTID", "proj-1"),
            ("SYSTEM_PLANID", "plan-2"),
            ("SYSTEM_JOBID", "job 3"),
            ("SYSTEM_HOSTTYPE", "build"),
        ];
        let t = PipelineIdToken::from_env(&MapEnv::from_pairs(pairs.clone()), &http()).ok().unwrap();
        assert_eq!(
            t.url,
            "https://dev.azure.com/org/proj-1/_apis/distributedtask/hubs/build/plans/plan-2/jobs/job%203/oidctoken?api-version=7.2-preview.1"
        );
        pairs.remove(0);
        let e = PipelineIdToken::from_env(&MapEnv::from_pairs(pairs), &http()).err().unwrap();
        assert!(e.starts_with("SYSTEM_ACCESSTOKEN is not set"), "{e}");
        let e = PipelineIdToken::from_env(&MapEnv::default(), &http()).err().unwrap();
        assert!(e.starts_with("not in an Azure Pipelines job (missing SYSTEM_ACCESSTOKEN, "), "{e}");
    }
}
