//! `env-oidc`: an ID token in an environment variable (`DATABRICKS_OIDC_TOKEN`, or the one named
//! by `oidc_token_env` / `DATABRICKS_OIDC_TOKEN_ENV`), exchanged for a workspace token
//! ([`super::federation`]). The variable is read again on every refresh.

use super::federation::{self, IdTokenSource};
use super::{host_of, AuthContext, Credentials, Strategy};
use crate::config::{Config, Env};
use crate::error::{Error, Result};
use crate::secret::Secret;
use std::sync::Arc;

pub const DEFAULT_VAR: &str = "DATABRICKS_OIDC_TOKEN";

pub struct EnvOidc;

struct EnvIdToken {
    var: String,
    env: Arc<dyn Env>,
}

impl IdTokenSource for EnvIdToken {
    fn id_token(&self, _audience: &str) -> Result<Secret> {
        match self.env.var(&self.var).map(|v| zeroize::Zeroizing::new(v.trim().to_string())).filter(|v| !v.is_empty()) {
            Some(v) => {
                let what = format!("the environment variable {}", self.var);
                super::token_source::check_token(&v, "token", &what)
                    .map_err(|e| Error::auth(e.message().replace("the response's ", "its ")))?;
                Ok(Secret::new(v.as_str()))
            }
            None => Err(Error::auth(format!("the environment variable {} holding the OIDC token is empty or unset", self.var))),
        }
    }
}

impl Strategy for EnvOidc {
    fn name(&self) -> &'static str {
        "env-oidc"
    }
    fn supports_group(&self) -> bool {
        true
    }
    fn requirement(&self) -> &'static str {
        "needs host and an OIDC ID token in DATABRICKS_OIDC_TOKEN (or in the variable named by DATABRICKS_OIDC_TOKEN_ENV), plus DATABRICKS_CLIENT_ID for service-principal federation"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        let var = cfg.oidc_token_env.as_deref().filter(|s| !s.is_empty()).unwrap_or(DEFAULT_VAR).to_string();
        if ctx.env.var(&var).map_or(true, |v| v.trim().is_empty()) || host_of(cfg).is_none() {
            return Ok(None);
        }
        let src = EnvIdToken { var, env: ctx.env.clone() };
        Ok(Some(federation::credentials("env-oidc", cfg, ctx, src)))
    }
}
