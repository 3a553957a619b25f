//! `file-oidc`: an ID token in a file (`oidc_token_filepath` / `DATABRICKS_OIDC_TOKEN_FILEPATH`;
//! Go's file key `databricks_id_token_filepath` is accepted too), exchanged for a workspace token
//! ([`super::federation`]). The file is read again on every refresh, so a rotated token (e.g. a
//! Kubernetes projected service-account token) is picked up; surrounding whitespace is dropped.

use super::federation::{self, IdTokenSource};
use super::{host_of, AuthContext, Credentials, Strategy};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::secret::Secret;
use std::sync::Arc;

pub struct FileOidc;

struct FileIdToken {
    path: String,
}

impl FileIdToken {
    /// Only a regular file of at most 64 KiB is read (a FIFO, a device or a huge file is an error
    /// at once); surrounding whitespace is dropped and what remains must look like a token.
    fn read(&self) -> Result<Secret> {
        let data = crate::fs::read_capped(std::path::Path::new(&self.path), crate::fs::TOKEN_FILE_MAX)
            .map_err(|e| Error::auth(format!("cannot read the OIDC token file {:?}: {e}", self.path)))?;
        let text = std::str::from_utf8(&data).map_err(|_| Error::auth(format!("the OIDC token file {:?} is not UTF-8", self.path)))?;
        let t = text.trim();
        if t.is_empty() {
            return Err(Error::auth(format!("the OIDC token file {:?} is empty", self.path)));
        }
        let what = format!("the OIDC token file {:?}", self.path);
        super::token_source::check_token(t, "token", &what).map_err(|e| Error::auth(e.message().replace("the response's ", "its ")))?;
        Ok(Secret::new(t))
    }
}

impl IdTokenSource for FileIdToken {
    fn id_token(&self, _audience: &str) -> Result<Secret> {
        self.read()
    }
}

impl Strategy for FileOidc {
    fn name(&self) -> &'static str {
        "file-oidc"
    }
    fn supports_group(&self) -> bool {
        true
    }
    fn requirement(&self) -> &'static str {
        "needs host and DATABRICKS_OIDC_TOKEN_FILEPATH / oidc_token_filepath naming a file that holds an OIDC ID token, plus DATABRICKS_CLIENT_ID for service-principal federation"
    }
    fn configure(&self, cfg: &Config, ctx: &AuthContext) -> Result<Option<Arc<dyn Credentials>>> {
        let Some(path) = cfg.oidc_token_filepath.as_deref().filter(|s| !s.is_empty()) else { return Ok(None) };
        if host_of(cfg).is_none() {
            return Ok(None);
        }
        let src = FileIdToken { path: path.to_string() };
        // The file is named explicitly: an unreadable or empty one is a broken configuration.
        src.read()?;
        Ok(Some(federation::credentials("file-oidc", cfg, ctx, src)))
    }
}
