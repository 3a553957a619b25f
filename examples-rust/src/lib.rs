//! What the three examples share: where the database is, how TLS is verified, how many rounds to
//! run. Everything Lakebase-specific is one `lakebase_core::Client`; the rest is each library's
//! ordinary API.
//!
//! Environment: `DATABRICKS_HOST` + credentials (`DATABRICKS_TOKEN`, a service principal, a
//! profile, ...), `LAKEBASE_INSTANCE` or `LAKEBASE_ENDPOINT`; optional `PGHOST` (else the
//! database's host from the API), `PGPORT` (5432), `PGDATABASE` (`databricks_postgres`),
//! `PGSSLROOTCERT` (a CA trusted besides the system store). For the tests:
//! `LAKEBASE_EXAMPLE_ROUNDS` (1) and `LAKEBASE_EXAMPLE_PAUSE_MS` (0) between rounds.

use std::sync::Arc;

/// Where to connect.
pub struct Target {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    /// `PGSSLROOTCERT`, if set.
    pub root_cert: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The Lakebase client from the environment and the Postgres target it leads to. The user is the
/// identity's Postgres role; the host comes from the API unless `PGHOST` is set. Neither call
/// blocks the runtime.
pub async fn setup() -> Result<(lakebase_core::Client, Target), Box<dyn std::error::Error + Send + Sync>> {
    let lb = lakebase_core::Client::builder().build()?;
    let user = lb.postgres_role_async().await?; // the group's role with group_id/group_name, else the identity's
    let host = match env("PGHOST") {
        Some(h) => h,
        None => lb.postgres_host_async().await?,
    };
    let port = env("PGPORT").map(|p| p.parse()).transpose()?.unwrap_or(5432);
    let database = env("PGDATABASE").unwrap_or_else(|| "databricks_postgres".into());
    Ok((lb, Target { host, port, database, user, root_cert: env("PGSSLROOTCERT") }))
}

/// A rustls configuration that verifies the server: the system store plus `PGSSLROOTCERT`.
pub fn tls_config(root_cert: Option<&str>) -> Result<Arc<rustls::ClientConfig>, Box<dyn std::error::Error + Send + Sync>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(lakebase_core::http::tls::system_roots().iter().cloned());
    if let Some(path) = root_cert {
        for c in lakebase_core::http::tls::read_pem_certs(path)? {
            roots.add(c)?;
        }
    }
    let cfg = rustls::ClientConfig::builder_with_provider(lakebase_core::http::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// `(rounds, pause between rounds)` from the environment.
pub fn rounds() -> (u32, std::time::Duration) {
    let rounds = env("LAKEBASE_EXAMPLE_ROUNDS").and_then(|r| r.parse().ok()).unwrap_or(1);
    let pause = env("LAKEBASE_EXAMPLE_PAUSE_MS").and_then(|r| r.parse().ok()).unwrap_or(0);
    (rounds, std::time::Duration::from_millis(pause))
}

/// One line of the examples' output: what a round saw (never the password).
pub fn report(round: u32, what: &str, user: &str, lb: &lakebase_core::Client) {
    let t = lb.token_info();
    let line = serde_json::json!({
        "round": round,
        "what": what,
        "current_user": user,
        "token_serial": t.map(|t| t.serial),
        "token_expiry_ms": t.map(|t| t.expiry_ms),
    });
    println!("{line}");
}
