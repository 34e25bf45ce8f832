//! Connections: one pool per process, built once (at cold start in a Lambda).

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Where the database is: a libpq-style URL (`postgres://user@host:port/db`) or key=value string.
/// `sslmode=require` connects over TLS and verifies the server's certificate against the system's
/// roots (RDS Proxy serves certificates those roots trust); other modes connect in plain text.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: String,
}

impl DbConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
        Ok(DbConfig { url })
    }

    pub fn pg_config(&self) -> anyhow::Result<tokio_postgres::Config> {
        self.url
            .parse()
            .with_context(|| "DATABASE_URL is not a valid PostgreSQL URL".to_string())
    }
}

fn wants_tls(config: &tokio_postgres::Config) -> bool {
    config.get_ssl_mode() == SslMode::Require
}

/// TLS with the system's certificate roots and rustls' aws-lc-rs provider.
fn tls() -> anyhow::Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // Skip any the platform ships that rustls cannot parse; the rest still verify.
        let _ = roots.add(cert);
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "no TLS root certificates found on this system"
    );
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::aws_lc_rs::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// A single connection whose driver task runs in the background.
pub async fn connect(config: &DbConfig) -> anyhow::Result<Client> {
    let pg = config.pg_config()?;
    let client = if wants_tls(&pg) {
        let (client, connection) = pg
            .connect(tls()?)
            .await
            .context("connecting to PostgreSQL")?;
        spawn_connection(connection);
        client
    } else {
        let (client, connection) = pg
            .connect(NoTls)
            .await
            .context("connecting to PostgreSQL")?;
        spawn_connection(connection);
        client
    };
    Ok(client)
}

fn spawn_connection<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL connection closed with an error");
        }
    });
}

/// A small pool. Keep `max_size` times the number of concurrent processes under the server's
/// connection limit.
pub fn pool(config: &DbConfig, max_size: usize) -> anyhow::Result<Pool> {
    let pg = config.pg_config()?;
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if wants_tls(&pg) {
        Manager::from_config(pg, tls()?, manager_config)
    } else {
        Manager::from_config(pg, NoTls, manager_config)
    };
    // Bounded waits: a request fails fast with "unavailable" instead of hanging to the timeout.
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .create_timeout(Some(Duration::from_secs(5)))
        .wait_timeout(Some(Duration::from_secs(5)))
        .build()
        .context("building the connection pool")
}
