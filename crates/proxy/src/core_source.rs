//! [`CredentialSource`] over lakebase-core: the only file that names it.
//!
//! The hit path is the core's non-blocking read (`Client::password_async`: ready at the first poll
//! on a hit, a memory read); a miss is fetched on a library thread that wakes the task, so the
//! reactor never blocks on a mint. Forced refreshes and discovery run on tokio's blocking pool.

use crate::source::{BoxFuture, CredentialSource, Password, SourceError, SourceErrorKind, SourceStats};
use crate::TargetSpec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct CoreSource {
    client: Arc<lakebase_core::Client>,
    errors: AtomicU64,
}

impl CoreSource {
    /// A source for `target` (`None`: the configured instance or endpoint) with `options` (the
    /// command line's settings) on top of the environment and profile. Resolves the
    /// configuration and auth method; no network I/O.
    pub fn new(options: &[(String, String)], target: Option<&TargetSpec>) -> Result<CoreSource, SourceError> {
        let mut b = lakebase_core::Client::builder().options(options.iter().cloned());
        match target {
            Some(TargetSpec::Instance(n)) => b = b.option("instance", n.clone()),
            Some(TargetSpec::Endpoint(n)) => b = b.option("endpoint", n.clone()),
            None => {}
        }
        let client = b.build().map_err(convert)?;
        if client.target().is_none() {
            return Err(SourceError::new(
                SourceErrorKind::Config,
                "no target: name an instance or an endpoint (projects/.../endpoints/...) on the command line, or set LAKEBASE_INSTANCE or LAKEBASE_ENDPOINT",
            ));
        }
        Ok(CoreSource { client: Arc::new(client), errors: AtomicU64::new(0) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&lakebase_core::Client) -> lakebase_core::Result<T> + Send + 'static,
    ) -> Result<T, SourceError> {
        let c = self.client.clone();
        match tokio::task::spawn_blocking(move || f(&c)).await {
            Ok(r) => r.map_err(convert),
            Err(_) => Err(SourceError::new(SourceErrorKind::Other, "internal error: the password task failed")),
        }
    }

    fn count<T>(&self, r: Result<T, SourceError>) -> Result<T, SourceError> {
        if r.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

fn convert(e: lakebase_core::Error) -> SourceError {
    use lakebase_core::ErrorKind as K;
    let kind = match e.kind() {
        K::Config | K::InvalidArgument => SourceErrorKind::Config,
        K::Auth => SourceErrorKind::Auth,
        K::Api => SourceErrorKind::Api,
        K::Network => SourceErrorKind::Network,
        _ => SourceErrorKind::Other,
    };
    SourceError::new(kind, e.message().to_string())
}

impl CredentialSource for CoreSource {
    fn password(&self) -> BoxFuture<'_, Result<Password, SourceError>> {
        Box::pin(async move {
            let r = self.client.password_async().await.map(|s| Password::new(s.expose())).map_err(convert);
            self.count(r)
        })
    }

    fn refresh<'a>(&'a self, rejected: &'a Password) -> BoxFuture<'a, Result<Password, SourceError>> {
        let rejected = rejected.clone();
        Box::pin(async move {
            // Mints only if `rejected` is still the cached password (another connection may have
            // replaced it already); then the newest password.
            let r = self.blocking(move |c| c.refresh_rejected(rejected.expose())).await;
            let r = match r {
                Ok(()) => self.client.password_async().await.map(|s| Password::new(s.expose())).map_err(convert),
                Err(e) => Err(e),
            };
            self.count(r)
        })
    }

    fn default_user(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        // The group's role when group_id / group_name is configured, else the identity's.
        Box::pin(async move { self.client.postgres_role_async().await.map_err(convert) })
    }

    fn upstream_host(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        Box::pin(async move { self.client.postgres_host_async().await.map_err(convert) })
    }

    fn stats(&self) -> SourceStats {
        SourceStats {
            token_expiry_unix: self.client.token_info().map(|t| t.expiry_ms as f64 / 1000.0),
            mints: self.client.mint_count(),
            refresh_errors: self.errors.load(Ordering::Relaxed),
            refresh_failing: self.client.refresh_error().is_some(),
        }
    }
}
