//! `model-serving`: an agent or model deployed on Databricks Model Serving (databricks-sdk 0.167
//! credentials_provider.py `ModelServingAuthProvider`). Active when `IS_IN_DB_MODEL_SERVING_ENV`
//! (or `IS_IN_DATABRICKS_MODEL_SERVING_ENV`) is `true` and the platform's token file exists:
//! `$SERVING_CREDENTIALS_DIR/model-dependencies-oauth-token`, else
//! `/var/credentials-secret/model-dependencies-oauth-token`, holding
//! `{"OAUTH_TOKEN": [{"oauthTokenValue": "<token>"}]}`. The platform rotates the file; it is read
//! again every few minutes (the SDK's 300 s), so a rotated token is picked up. The workspace is
//! `host` when configured, else `DATABRICKS_MODEL_SERVING_HOST_URL` / `DB_MODEL_SERVING_HOST_URL`.
//! Last in the chain, as in the Python SDK; cannot assume a group.

use super::token_source::{CachedCredentials, TokenSource};
use super::{host_of, AuthContext, Credentials, Probe, Strategy};
use crate::cache::Fetched;
use crate::clock::SharedClock;
use crate::config::{Config, Env};
use crate::error::{Error, Result};
use crate::secret::Secret;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const TOKEN_FILE_NAME: &str = "model-dependencies-oauth-token";
pub const LEGACY_TOKEN_FILE: &str = "/var/credentials-secret/model-dependencies-oauth-token";
/// How long a token read from the file is used before the file is read again (the SDK's value).
pub const REREAD_AFTER: Duration = Duration::from_secs(300);
const MAX_FILE: u64 = 1 << 20;

pub struct ModelServing;

/// The token file, for this environment.
pub fn token_path(env: &dyn Env) -> PathBuf {
    match env.var("SERVING_CREDENTIALS_DIR").map(|d| d.trim().to_string()).filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join(TOKEN_FILE_NAME),
        None => PathBuf::from(LEGACY_TOKEN_FILE),
    }
}

fn in_model_serving(env: &dyn Env) -> bool {
    ["IS_IN_DB_MODEL_SERVING_ENV", "IS_IN_DATABRICKS_MODEL_SERVING_ENV"]
        .iter()
        .find_map(|k| env.var(k).filter(|v| !v.is_empty()))
        .is_some_and(|v| v == "true")
}

struct TokenFile {
    path: PathBuf,
    clock: SharedClock,
    host: Option<String>,
}

impl TokenFile {
    fn read_once(&self) -> Result<Secret> {
        let shown = self.path.display();
        // A regular file of at most 1 MiB (a FIFO or a device is an error at once).
        let data = crate::fs::read_capped(&self.path, MAX_FILE)
            .map_err(|e| Error::auth(format!("cannot read the Model Serving token file {shown}: {e}")))?;
        let bad =
            || Error::auth(format!("the Model Serving token file {shown} is not {{\"OAUTH_TOKEN\": [{{\"oauthTokenValue\": ...}}]}}"));
        let v: serde_json::Value = serde_json::from_slice(&data).map_err(|_| bad())?;
        let tok = v.get("OAUTH_TOKEN").and_then(|a| a.get(0)).and_then(|t| t.get("oauthTokenValue")).and_then(|t| t.as_str());
        match tok.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => {
                let what = format!("the Model Serving token file {shown}");
                super::token_source::check_token(t, "oauthTokenValue", &what)
                    .map_err(|e| Error::auth(e.message().replace("the response's ", "its ")))?;
                Ok(Secret::new(t))
            }
            None => Err(bad()),
        }
    }
}

impl TokenSource for TokenFile {
    fn token(&self) -> Result<Fetched> {
        // The platform may be replacing the file at this moment: one more try (as the SDK).
        let tok = self.read_once().or_else(|_| {
            self.clock.sleep(Duration::from_millis(100));
            self.read_once()
        })?;
        let expiry_ms = self.clock.wall_ms().saturating_add(REREAD_AFTER.as_millis() as i64);
        Ok(Fetched { secret: Secret::new(format!("Bearer {}", tok.expose())), expiry_ms })
    }
}

/// The credentials, plus the workspace found in the environment.
struct ModelServingCredentials {
    inner: CachedCredentials<TokenFile>,
}

impl Credentials for ModelServingCredentials {
    fn name(&self) -> &'static str {
        "model-serving"
    }
    fn authorization(&self) -> Result<Secret> {
        self.inner.header()
    }
    fn host(&self) -> Option<String> {
        self.inner.source().host.clone()
    }
}

impl Strategy for ModelServing {
    fn name(&self) -> &'static str {
        "model-serving"
    }
    fn requirement(&self) -> &'static str {
        "needs Databricks Model Serving: IS_IN_DB_MODEL_SERVING_ENV=true and the token file $SERVING_CREDENTIALS_DIR/model-dependencies-oauth-token (or /var/credentials-secret/model-dependencies-oauth-token)"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        Ok(match self.probe(cfg, ctx, false)? {
            Probe::Configured(c) => Some(c),
            Probe::NotConfigured(_) => None,
        })
    }
    fn probe(&self, cfg: &Config, ctx: &AuthContext, forced: bool) -> Result<Probe> {
        if !in_model_serving(&*ctx.env) {
            return Ok(Probe::NotConfigured(None));
        }
        let path = token_path(&*ctx.env);
        if !path.is_file() {
            return Ok(Probe::NotConfigured(Some(format!("{} does not exist", path.display()))));
        }
        let env_host = ["DATABRICKS_MODEL_SERVING_HOST_URL", "DB_MODEL_SERVING_HOST_URL"]
            .iter()
            .find_map(|k| ctx.env.var(k).map(|v| v.trim().trim_end_matches('/').to_string()).filter(|v| !v.is_empty()))
            .map(|h| if h.contains("://") { h } else { format!("https://{h}") });
        let host = match host_of(cfg) {
            Some(_) => None,
            None => match env_host {
                Some(h) => Some(h),
                None if forced => return Err(Error::config("host is required: set DATABRICKS_HOST or DATABRICKS_MODEL_SERVING_HOST_URL")),
                None => return Ok(Probe::NotConfigured(Some("no host: DATABRICKS_MODEL_SERVING_HOST_URL is not set".into()))),
            },
        };
        if let Some(h) = &host {
            crate::http::check_url(h).map_err(|e| Error::config(format!("DATABRICKS_MODEL_SERVING_HOST_URL: {}", e.message())))?;
        }
        let src = TokenFile { path, clock: ctx.clock.clone(), host };
        // Read now: the file is what says this method is configured (as the SDK does).
        let first = match src.token() {
            Ok(f) => f,
            Err(e) if forced => return Err(e),
            Err(e) => return Ok(Probe::NotConfigured(Some(e.message().to_string()))),
        };
        let inner = CachedCredentials::primed("model-serving", src, ctx, first);
        Ok(Probe::Configured(Arc::new(ModelServingCredentials { inner })))
    }
}
