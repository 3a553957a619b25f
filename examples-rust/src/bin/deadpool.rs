//! deadpool: a pool whose manager asks for the current password each time it opens a physical
//! connection, so the pool keeps working after the first token expired. Connections already open
//! are unaffected by expiry (Lakebase checks the token only at login).

use deadpool::managed::{Manager, Metrics, Pool, RecycleError, RecycleResult};
use lakebase_examples::{report, rounds, setup, tls_config, Target};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens tokio-postgres connections to Lakebase with the library's current password.
struct LakebaseManager {
    lb: lakebase_core::Client,
    target: Target,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

impl Manager for LakebaseManager {
    type Type = tokio_postgres::Client;
    type Error = BoxError;

    async fn create(&self) -> Result<tokio_postgres::Client, BoxError> {
        let password = self.lb.password_async().await?;
        let t = &self.target;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&t.host).port(t.port).dbname(&t.database).user(&t.user).password(password.expose());
        cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
        let (client, connection) = cfg.connect(self.tls.clone()).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    async fn recycle(&self, client: &mut tokio_postgres::Client, _: &Metrics) -> RecycleResult<BoxError> {
        if client.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (lb, target) = setup().await?;
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*tls_config(target.root_cert.as_deref())?).clone());
    let pool: Pool<LakebaseManager> = Pool::builder(LakebaseManager { lb: lb.clone(), target, tls }).max_size(8).build()?;
    let (n, pause) = rounds();
    // One connection held for the whole run: opened with the first token, used after it expired.
    let held = pool.get().await.map_err(|e| e.to_string())?;
    let held: &tokio_postgres::Client = &held;
    let mut fresh = Vec::new();
    for round in 1..=n {
        let row = held.query_one("SELECT current_user::text", &[]).await?;
        report(round, "held connection", row.get(0), &lb);
        // A new physical connection each round (the held ones keep the pool from reusing).
        let c = pool.get().await.map_err(|e| e.to_string())?;
        let row = (*c).query_one("SELECT current_user::text", &[]).await?;
        report(round, "new pooled connection", row.get(0), &lb);
        fresh.push(c);
        if round < n {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}
