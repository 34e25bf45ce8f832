//! A fresh, migrated database per test on the local PostgreSQL server.
//!
//! The server comes from `MEDREC_TEST_DATABASE_URL` (default: the machine's PostgreSQL at
//! 127.0.0.1:5432 as user postgres). Each [`TestDb`] is dropped with its owner.

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use medrec_store::{connect, DbConfig};
use tokio_postgres::Client;

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDb {
    pub name: String,
    pub config: DbConfig,
    admin: DbConfig,
}

fn admin_config() -> DbConfig {
    DbConfig::new(
        std::env::var("MEDREC_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into()),
    )
}

impl TestDb {
    /// Creates an empty database (no migrations applied).
    pub async fn empty() -> anyhow::Result<TestDb> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin = admin_config();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let name = format!(
            "medrec_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let client = connect(&admin)
            .await
            .context("is PostgreSQL running on 127.0.0.1:5432? (see README: make test)")?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let mut pg = admin.pg_config()?;
        pg.dbname(&name);
        let url = format!(
            "postgres://{}@{}:{}/{}",
            pg.get_user().unwrap_or("postgres"),
            host_of(&pg),
            pg.get_ports().first().copied().unwrap_or(5432),
            name
        );
        Ok(TestDb {
            name,
            config: DbConfig::new(url),
            admin,
        })
    }

    /// Creates a database with every migration applied.
    pub async fn migrated() -> anyhow::Result<TestDb> {
        let db = TestDb::empty().await?;
        let mut client = db.client().await?;
        medrec_store::migrate(&mut client).await?;
        Ok(db)
    }

    /// A migrated database holding the sample ([`load_sample`]) with its features computed.
    pub async fn with_sample() -> anyhow::Result<TestDb> {
        let db = TestDb::migrated().await?;
        let mut client = db.client().await?;
        load_sample(&mut client).await?;
        medrec_store::features::refresh(&client, None).await?;
        Ok(db)
    }

    pub async fn client(&self) -> anyhow::Result<Client> {
        connect(&self.config).await
    }

    /// This database as the login user `user`, a member of `role` only (created when missing,
    /// with no password: the local server trusts local connections). Login users are
    /// cluster-wide and shared by every test database; the role's grants are this database's.
    pub async fn config_as(
        &self,
        user: &str,
        role: medrec_store::roles::Role,
    ) -> anyhow::Result<DbConfig> {
        let client = self.client().await?;
        medrec_store::roles::ensure_login(&client, user, None, role).await?;
        let pg = self.config.pg_config()?;
        Ok(DbConfig::new(format!(
            "postgres://{user}@{}:{}/{}",
            host_of(&pg),
            pg.get_ports().first().copied().unwrap_or(5432),
            self.name
        )))
    }

    /// [`crate::count`] on a new connection to this database.
    pub async fn count(&self, sql: &str) -> i64 {
        crate::count(&self.client().await.unwrap(), sql).await
    }
}

/// Loads every `<table>_ae.csv` of the sample ([`crate::sample_dir`]) with `medrec_store::ingest`,
/// named by its file name; computes no features.
pub async fn load_sample(client: &mut Client) -> anyhow::Result<()> {
    for table in medrec_core::Table::ALL {
        let name = format!("{}_ae.csv", table.name());
        let path = crate::sample_dir().join(&name);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading the sample file {}", path.display()))?;
        let source = medrec_store::Source {
            table,
            name,
            version: None,
            sha256: Some(medrec_core::reader::sha256_hex(&bytes[..])?),
        };
        medrec_store::ingest(client, source, std::io::Cursor::new(bytes)).await?;
    }
    Ok(())
}

fn host_of(pg: &tokio_postgres::Config) -> String {
    match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".into(),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = connect(&admin).await.ok()?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}
