//! `pat`: a personal access token sent as `Authorization: Bearer <token>`.

use super::{AuthContext, Credentials, Strategy};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::secret::Secret;
use std::sync::Arc;

pub struct Pat;

struct PatCredentials {
    header: Secret,
}

impl Credentials for PatCredentials {
    fn name(&self) -> &'static str {
        "pat"
    }
    fn authorization(&self) -> Result<Secret> {
        Ok(self.header.clone())
    }
}

impl Strategy for Pat {
    fn name(&self) -> &'static str {
        "pat"
    }
    fn requirement(&self) -> &'static str {
        "needs host and token / DATABRICKS_TOKEN"
    }
    fn configure(&self, cfg: &Config, _ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        let Some(token) = cfg.token.as_ref().filter(|t| !t.is_empty()) else { return Ok(None) };
        if cfg.host.as_deref().unwrap_or("").is_empty() {
            return Err(Error::config("host is required for PAT authentication"));
        }
        Ok(Some(Arc::new(PatCredentials { header: Secret::new(format!("Bearer {}", token.expose())) })))
    }
}
