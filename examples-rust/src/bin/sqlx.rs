//! sqlx: the pool's connect options carry the password, so they are refreshed with the current
//! one before each acquire (a memory read on a hit); connections the pool opens after a rotation
//! use the new token. TLS: verify-full against the system store + PGSSLROOTCERT.

use lakebase_examples::{report, rounds, setup};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Acquire a connection after giving the pool the current password for any new login.
async fn acquire(
    pool: &PgPool,
    lb: &lakebase_core::Client,
    opts: &PgConnectOptions,
) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, BoxError> {
    let password = lb.password_async().await?;
    pool.set_connect_options(opts.clone().password(password.expose()));
    Ok(pool.acquire().await?)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (lb, t) = setup().await?;
    let mut opts =
        PgConnectOptions::new().host(&t.host).port(t.port).database(&t.database).username(&t.user).ssl_mode(PgSslMode::VerifyFull);
    if let Some(ca) = &t.root_cert {
        opts = opts.ssl_root_cert(ca.as_str());
    }
    let pool = PgPoolOptions::new().max_connections(8).connect_lazy_with(opts.clone());
    let (n, pause) = rounds();
    let mut held = Vec::new();
    for round in 1..=n {
        // Hold each connection so that the next round needs a new login.
        let mut c = acquire(&pool, &lb, &opts).await?;
        let (user,): (String,) = sqlx::query_as("SELECT current_user::text").fetch_one(&mut *c).await?;
        report(round, "new pooled connection", &user, &lb);
        held.push(c);
        if round < n {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}
