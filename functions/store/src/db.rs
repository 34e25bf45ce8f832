//! Connections: one pool per process, built once (at cold start in a Lambda).

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Where the database is: a libpq-style URL (`postgres://user@host:port/db`) or key=value string.
/// `sslmode=require` connects over TLS and verifies the server's certificate against the system's
/// roots (RDS Proxy serves certificates those roots trust); other modes connect in plain text.
///
/// The URL may hold the password, so it is a secret: `Debug` shows where the database is but
/// never the password, and the text is exposed only to make a connection.
#[derive(Clone)]
pub struct DbConfig {
    url: SecretString,
}

impl DbConfig {
    pub fn new(url: impl Into<String>) -> Self {
        DbConfig {
            url: SecretString::from(url.into()),
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
        Ok(DbConfig::new(url))
    }

    /// The connection settings (password included) for the driver.
    pub fn pg_config(&self) -> anyhow::Result<tokio_postgres::Config> {
        self.url
            .expose_secret()
            .parse()
            .with_context(|| "DATABASE_URL is not a valid PostgreSQL URL".to_string())
    }

    /// The URL as written, password included: only for handing it to what connects (a child
    /// process's `DATABASE_URL`), never for logs or messages.
    pub fn expose_url(&self) -> &str {
        self.url.expose_secret()
    }
}

/// Where the database is (hosts, ports, database, user, TLS mode), never the password.
impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("DbConfig");
        match self.pg_config() {
            Ok(pg) => {
                let hosts: Vec<String> = pg
                    .get_hosts()
                    .iter()
                    .map(|host| match host {
                        tokio_postgres::config::Host::Tcp(name) => name.clone(),
                        #[cfg(unix)]
                        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                    })
                    .collect();
                out.field("hosts", &hosts)
                    .field("ports", &pg.get_ports())
                    .field("dbname", &pg.get_dbname())
                    .field("user", &pg.get_user())
                    .field("ssl_mode", &pg.get_ssl_mode())
                    .field("password", &pg.get_password().map(|_| Redacted));
            }
            Err(_) => {
                out.field("url", &Redacted);
            }
        }
        out.finish()
    }
}

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        for url in [
            "postgres://medrec:hunter2-s3cret@db.example:6432/medrec?sslmode=require",
            "host=db.example port=6432 dbname=medrec user=medrec password='hunter2-s3cret'",
            // Unparseable: nothing of it is shown.
            "postgres://medrec:hunter2-s3cret@db.example:notaport/medrec",
        ] {
            let config = DbConfig::new(url);
            let debug = format!("{config:?}");
            let pretty = format!("{config:#?}");
            assert!(!debug.contains("hunter2-s3cret"), "{debug}");
            assert!(!pretty.contains("hunter2-s3cret"), "{pretty}");
            assert!(!debug.contains("notaport"), "{debug}");
        }
        let debug = format!(
            "{:?}",
            DbConfig::new("postgres://medrec:hunter2-s3cret@db.example:6432/medrec")
        );
        assert!(
            debug.contains("db.example") && debug.contains("6432"),
            "{debug}"
        );
        assert!(debug.contains("[REDACTED]"), "{debug}");
        // The connection itself still gets the password.
        let config = DbConfig::new("postgres://medrec:hunter2-s3cret@db.example/medrec");
        assert_eq!(
            config.pg_config().unwrap().get_password(),
            Some(&b"hunter2-s3cret"[..])
        );
    }
}
