//! Azure Databricks: environments, the Azure AD (v1) token endpoint, tenant discovery and the
//! two-token credentials shared by the Azure methods (GO config/azure.go, environments.go).
//!
//! Azure methods send `Authorization: Bearer <AAD token for the Azure Databricks app>` and, for
//! service principals, `X-Databricks-Azure-SP-Management-Token: <AAD token for the Azure service
//! management API>` (lets the workspace add the principal on first use), plus
//! `X-Databricks-Azure-Workspace-Resource-Id` when `azure_workspace_resource_id` is set.
//!
//! The environment (PUBLIC, USGOVERNMENT, CHINA) comes from the host's DNS zone, else from
//! `azure_environment` / `ARM_ENVIRONMENT` (`AzureUSGovernmentCloud` style names accepted), else
//! PUBLIC. The login host can be redirected only by `LAKEBASE_TEST_AZURE_LOGIN_URL`, a test
//! setting accepted only for loopback addresses.

use super::token_source::{token_error, token_field, CachedCredentials, TokenSource};
use super::{AuthContext, Credentials};
use crate::cache::Fetched;
use crate::clock::SharedClock;
use crate::config::{Config, Env};
use crate::error::{Error, Result};
use crate::http::{HttpClient, Request};
use crate::secret::Secret;
use arc_swap::ArcSwapOption;
use std::sync::Arc;

/// The Azure Databricks first-party application (the token resource) in all production clouds.
pub const AZURE_DATABRICKS_APP_ID: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
pub const MANAGEMENT_TOKEN_HEADER: &str = "X-Databricks-Azure-SP-Management-Token";
pub const RESOURCE_ID_HEADER: &str = "X-Databricks-Azure-Workspace-Resource-Id";
/// Test-only: replaces the Azure AD login host (`https://login.microsoftonline.com/`); loopback only.
pub const TEST_LOGIN_URL_ENV: &str = "LAKEBASE_TEST_AZURE_LOGIN_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AzureEnvironment {
    Public,
    UsGovernment,
    China,
}

impl AzureEnvironment {
    pub fn name(self) -> &'static str {
        match self {
            AzureEnvironment::Public => "PUBLIC",
            AzureEnvironment::UsGovernment => "USGOVERNMENT",
            AzureEnvironment::China => "CHINA",
        }
    }
    /// Azure AD, with a trailing `/`.
    pub fn login_endpoint(self) -> &'static str {
        match self {
            AzureEnvironment::Public => "https://login.microsoftonline.com/",
            AzureEnvironment::UsGovernment => "https://login.microsoftonline.us/",
            AzureEnvironment::China => "https://login.chinacloudapi.cn/",
        }
    }
    /// The resource of the management token.
    pub fn management_endpoint(self) -> &'static str {
        match self {
            AzureEnvironment::Public => "https://management.core.windows.net/",
            AzureEnvironment::UsGovernment => "https://management.core.usgovcloudapi.net/",
            AzureEnvironment::China => "https://management.core.chinacloudapi.cn/",
        }
    }
    /// PY `_get_azure_environment_name`: upper-cased, leading `AZURE` and trailing `CLOUD` dropped.
    pub fn parse(s: &str) -> Option<AzureEnvironment> {
        let u = s.trim().to_ascii_uppercase();
        let u = u.strip_prefix("AZURE").unwrap_or(&u);
        let u = u.strip_suffix("CLOUD").unwrap_or(u);
        match u {
            "" | "PUBLIC" => Some(AzureEnvironment::Public),
            "USGOVERNMENT" => Some(AzureEnvironment::UsGovernment),
            "CHINA" => Some(AzureEnvironment::China),
            _ => None,
        }
    }
}

/// The environment of `cfg`: host DNS zone, else `azure_environment`, else PUBLIC.
pub fn environment(cfg: &Config) -> Result<AzureEnvironment> {
    let host = cfg.host.as_deref().unwrap_or("");
    let name = url::Url::parse(host).ok().and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase())).unwrap_or_default();
    if name.ends_with(".databricks.azure.us") {
        return Ok(AzureEnvironment::UsGovernment);
    }
    if name.ends_with(".databricks.azure.cn") {
        return Ok(AzureEnvironment::China);
    }
    if name.ends_with(".azuredatabricks.net") {
        return Ok(AzureEnvironment::Public);
    }
    match cfg.azure_environment.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(AzureEnvironment::Public),
        Some(e) => AzureEnvironment::parse(e)
            .ok_or_else(|| Error::config(format!("azure_environment {e:?} is not one of PUBLIC, USGOVERNMENT, CHINA"))),
    }
}

/// The Azure AD base URL (with a trailing `/`) for `cfg`.
pub fn login_base(cfg: &Config, env: &dyn Env) -> Result<String> {
    if let Some(u) = env.var(TEST_LOGIN_URL_ENV) {
        return test_override(TEST_LOGIN_URL_ENV, &u);
    }
    Ok(environment(cfg)?.login_endpoint().to_string())
}

/// A test-only address override: must be http(s) on a loopback address. Returned with a
/// trailing `/`.
pub fn test_override(var: &str, raw: &str) -> Result<String> {
    let ok = url::Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && crate::http::is_loopback(&u));
    if !ok {
        return Err(Error::config(format!("{var} is a test setting and must be an http(s) URL on a loopback address")));
    }
    Ok(format!("{}/", raw.trim_end_matches('/')))
}

/// The tenant of the workspace: `GET {host}/aad/auth` answers a redirect to
/// `https://login.microsoftonline.com/<tenant>/oauth2/authorize?...` (GO `loadAzureTenantId`).
pub fn discover_tenant(host: &str, http: &HttpClient) -> Result<String> {
    let req = Request::get(format!("{}/aad/auth", host.trim_end_matches('/')));
    let what = "Azure tenant discovery (GET /aad/auth)";
    let resp = http.send(&req)?;
    let loc = resp
        .header("Location")
        .filter(|_| (300..400).contains(&resp.status))
        .ok_or_else(|| Error::config(format!("{what}: HTTP {} without a redirect; set azure_tenant_id / ARM_TENANT_ID", resp.status)))?;
    tenant_from_location(loc)
        .ok_or_else(|| Error::config(format!("{what}: cannot read the tenant from the redirect; set azure_tenant_id / ARM_TENANT_ID")))
}

pub fn tenant_from_location(loc: &str) -> Option<String> {
    let u = url::Url::parse(loc).ok()?;
    let seg = u.path_segments()?.next()?.to_string();
    (!seg.is_empty()).then_some(seg)
}

/// The tenant: configured, or discovered once and remembered.
pub struct Tenant {
    explicit: Option<String>,
    host: String,
    http: Arc<HttpClient>,
    found: ArcSwapOption<String>,
}

impl Tenant {
    pub fn new(cfg: &Config, http: &Arc<HttpClient>) -> Arc<Tenant> {
        Arc::new(Tenant {
            explicit: cfg.azure_tenant_id.clone().filter(|s| !s.is_empty()),
            host: cfg.host.clone().unwrap_or_default(),
            http: http.clone(),
            found: ArcSwapOption::empty(),
        })
    }
    pub fn get(&self) -> Result<String> {
        if let Some(t) = &self.explicit {
            return Ok(t.clone());
        }
        if let Some(t) = self.found.load_full() {
            return Ok((*t).clone());
        }
        let t = discover_tenant(&self.host, &self.http)?;
        self.found.store(Some(Arc::new(t.clone())));
        Ok(t)
    }
}

/// How a client proves itself to Azure AD.
pub enum AadClientAuth {
    Secret(Secret),
    /// A federated JWT (`client_assertion`), fetched fresh for every token request.
    Assertion(Arc<dyn Fn() -> Result<Secret> + Send + Sync>),
}

/// `POST {login}{tenant}/oauth2/token` (Azure AD v1) with `grant_type=client_credentials`.
pub struct AadToken {
    pub login_base: String,
    pub tenant: Arc<Tenant>,
    pub client_id: String,
    pub auth: Arc<AadClientAuth>,
    pub resource: String,
    pub http: Arc<HttpClient>,
    pub clock: SharedClock,
}

impl TokenSource for AadToken {
    fn token(&self) -> Result<Fetched> {
        let tenant = self.tenant.get()?;
        let mut form = vec![
            ("grant_type", Secret::new("client_credentials")),
            ("client_id", Secret::new(self.client_id.clone())),
            ("resource", Secret::new(self.resource.clone())),
        ];
        match &*self.auth {
            AadClientAuth::Secret(s) => form.push(("client_secret", s.clone())),
            AadClientAuth::Assertion(f) => {
                form.push(("client_assertion_type", Secret::new("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")));
                form.push(("client_assertion", f()?));
            }
        }
        let url = format!("{}{}/oauth2/token", self.login_base, url_segment(&tenant));
        let req = Request::token_request(url, form);
        let what = format!("Azure AD token request for {} ({})", resource_name(&self.resource), req.describe());
        let resp = self.http.send(&req)?;
        if !resp.is_success() {
            return Err(aad_error(&resp, &what));
        }
        parse_aad_token(&resp.json(&what)?, self.clock.wall_ms(), &what)
    }
}

fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Human name of a token resource, for messages.
pub fn resource_name(resource: &str) -> &'static str {
    if resource == AZURE_DATABRICKS_APP_ID {
        "Azure Databricks"
    } else if resource.starts_with("https://management.") {
        "the Azure management API"
    } else {
        "a custom resource"
    }
}

/// AAD error bodies: `error_description` trimmed at ". Trace ID" and the `error_uri` appended
/// (GO config/azure.go).
fn aad_error(resp: &crate::http::Response, what: &str) -> Error {
    let e = token_error(resp, what);
    let msg = match e.message().find(" Trace ID") {
        Some(i) => e.message()[..i].to_string(),
        None => e.message().to_string(),
    };
    let uri = serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("error_uri").and_then(|s| s.as_str()).map(String::from));
    let msg = match uri {
        Some(u) => format!("{msg} See {}", crate::sanitize::escape_controls(&u.chars().take(256).collect::<String>())),
        None => msg,
    };
    let mut out = Error::new(e.kind(), msg).with_retry_after(e.retry_after());
    if let Some(st) = e.status() {
        out = out.with_http(st, e.error_code().map(String::from));
    }
    out
}

/// `{"access_token", "token_type", "expires_on" | "expires_in"}` (numbers or numeric strings).
pub fn parse_aad_token(v: &serde_json::Value, now_ms: i64, what: &str) -> Result<Fetched> {
    let token = token_field(v, "access_token", what)?;
    let ty = v.get("token_type").and_then(|s| s.as_str());
    Ok(Fetched { secret: super::token_source::header_value(ty, token, what)?, expiry_ms: super::token_source::expiry_ms(v, now_ms, what)? })
}

/// Two cached tokens: the Azure Databricks one (`Authorization`) and the management one.
pub struct AzureCredentials<S> {
    name: &'static str,
    inner: CachedCredentials<S>,
    management: CachedCredentials<S>,
    /// Omit the management header when its token cannot be had (a user without ARM access).
    management_optional: bool,
    resource_id: Option<String>,
}

impl<S: TokenSource + 'static> AzureCredentials<S> {
    /// The credentials as the chain's trait object.
    pub fn shared(
        name: &'static str,
        cfg: &Config,
        ctx: &AuthContext,
        inner: S,
        management: S,
        management_optional: bool,
    ) -> Arc<dyn Credentials> {
        Arc::new(AzureCredentials {
            name,
            inner: CachedCredentials::new(name, inner, ctx),
            management: CachedCredentials::new(name, management, ctx),
            management_optional,
            resource_id: cfg.azure_workspace_resource_id.clone().filter(|s| !s.is_empty()),
        })
    }
}

impl<S: TokenSource> Credentials for AzureCredentials<S> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn authorization(&self) -> Result<Secret> {
        self.inner.header()
    }
    fn extra_headers(&self) -> Result<Vec<(&'static str, Secret)>> {
        let mut h = Vec::new();
        match self.management.header() {
            // The header carries the bare access token, without the "Bearer " scheme.
            Ok(v) => {
                let bare = v.expose().split_once(' ').map_or(v.expose(), |(_, t)| t);
                h.push((MANAGEMENT_TOKEN_HEADER, Secret::new(bare)));
            }
            Err(e) if self.management_optional => {
                crate::log_debug!("{}: no management token ({e}); sending none", self.name);
            }
            Err(e) => return Err(e.context(format!("{} auth: management token", self.name))),
        }
        if let Some(r) = &self.resource_id {
            h.push((RESOURCE_ID_HEADER, Secret::new(r.clone())));
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str, env: Option<&str>) -> Config {
        Config { host: Some(host.into()), azure_environment: env.map(String::from), ..Config::default() }
    }

    #[test]
    fn environments() {
        assert_eq!(environment(&cfg("https://adb-1.2.azuredatabricks.net", None)).unwrap(), AzureEnvironment::Public);
        assert_eq!(environment(&cfg("https://adb-1.2.databricks.azure.us", None)).unwrap(), AzureEnvironment::UsGovernment);
        assert_eq!(environment(&cfg("https://adb-1.2.databricks.azure.cn", Some("PUBLIC"))).unwrap(), AzureEnvironment::China);
        assert_eq!(environment(&cfg("http://127.0.0.1:1", Some("AzureUSGovernmentCloud"))).unwrap(), AzureEnvironment::UsGovernment);
        assert_eq!(environment(&cfg("http://127.0.0.1:1", Some("china"))).unwrap(), AzureEnvironment::China);
        assert_eq!(environment(&cfg("http://127.0.0.1:1", None)).unwrap(), AzureEnvironment::Public);
        assert!(environment(&cfg("http://127.0.0.1:1", Some("mars"))).is_err());
        assert_eq!(AzureEnvironment::China.login_endpoint(), "https://login.chinacloudapi.cn/");
        assert_eq!(AzureEnvironment::UsGovernment.management_endpoint(), "https://management.core.usgovcloudapi.net/");
    }

    #[test]
    fn test_overrides_are_loopback_only() {
        assert_eq!(test_override("X", "http://127.0.0.1:5/aad").unwrap(), "http://127.0.0.1:5/aad/");
        assert!(test_override("X", "https://login.example.com/").is_err());
        assert!(test_override("X", "http://169.254.169.254").is_err());
        let env = crate::config::MapEnv::from_pairs([(TEST_LOGIN_URL_ENV, "http://localhost:9")]);
        assert_eq!(login_base(&cfg("https://a.azuredatabricks.net", None), &env).unwrap(), "http://localhost:9/");
        let none = crate::config::MapEnv::default();
        assert_eq!(login_base(&cfg("https://a.databricks.azure.us", None), &none).unwrap(), "https://login.microsoftonline.us/");
    }

    #[test]
    fn tenant_location() {
        let loc = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize?client_id=x";
        assert_eq!(tenant_from_location(loc).as_deref(), Some("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert_eq!(tenant_from_location("/relative"), None);
    }

    #[test]
    fn aad_token_shapes() {
        let v = serde_json::json!({"token_type": "Bearer", "expires_in": "3599", "expires_on": "1700003599", "access_token": "x"});
        let f = parse_aad_token(&v, 0, "x").unwrap();
        assert_eq!((f.secret.expose(), f.expiry_ms), ("Bearer x", 1_700_003_599_000));
    }
}
