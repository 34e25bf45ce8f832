//! Connections: one pool per process, built once (at cold start in a Lambda).

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{Client, NoTls};

/// Where the database is: a libpq-style URL (`postgres://user@host:port/db`).
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

/// A single connection whose driver task runs in the background.
pub async fn connect(config: &DbConfig) -> anyhow::Result<Client> {
    let (client, connection) = config
        .pg_config()?
        .connect(NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL connection closed with an error");
        }
    });
    Ok(client)
}

/// A small pool. Keep `max_size` times the number of concurrent processes under the server's
/// connection limit.
pub fn pool(config: &DbConfig, max_size: usize) -> anyhow::Result<Pool> {
    let manager = Manager::from_config(
        config.pg_config()?,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .build()
        .context("building the connection pool")
}
