//! `basic`: `Authorization: Basic base64(username:password)` (Go config/auth_basic.go).

use super::{host_of, AuthContext, Credentials, Strategy};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::secret::Secret;
use base64::Engine;
use std::sync::Arc;

pub struct Basic;

struct BasicCredentials {
    header: Secret,
}

impl Credentials for BasicCredentials {
    fn name(&self) -> &'static str {
        "basic"
    }
    fn authorization(&self) -> Result<Secret> {
        Ok(self.header.clone())
    }
}

impl Strategy for Basic {
    fn name(&self) -> &'static str {
        "basic"
    }
    fn requirement(&self) -> &'static str {
        "needs host, username / DATABRICKS_USERNAME and password / DATABRICKS_PASSWORD"
    }
    fn configure(&self, cfg: &Config, _ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        let user = cfg.username.as_deref().unwrap_or("");
        let Some(pass) = cfg.password.as_ref().filter(|p| !p.is_empty()) else { return Ok(None) };
        if user.is_empty() {
            return Ok(None);
        }
        if host_of(cfg).is_none() {
            return Err(Error::config("host is required for basic authentication"));
        }
        let raw = zeroize::Zeroizing::new(format!("{user}:{}", pass.expose()));
        let header = Secret::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())));
        Ok(Some(Arc::new(BasicCredentials { header })))
    }
}
