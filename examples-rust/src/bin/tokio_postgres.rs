//! tokio-postgres: every new connection gets the current password (a memory read on a hit).
//! TLS is verified by rustls (system store + PGSSLROOTCERT).

use lakebase_examples::{report, rounds, setup, tls_config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (lb, t) = setup().await?;
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*tls_config(t.root_cert.as_deref())?).clone());
    let (n, pause) = rounds();
    for round in 1..=n {
        let password = lb.password_async().await?;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&t.host).port(t.port).dbname(&t.database).user(&t.user).password(password.expose());
        cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
        let (client, connection) = cfg.connect(tls.clone()).await?;
        let conn = tokio::spawn(connection);
        let row = client.query_one("SELECT current_user::text", &[]).await?;
        report(round, "new connection", row.get(0), &lb);
        drop(client);
        let _ = conn.await;
        if round < n {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}
