//! A fresh, migrated database per test on the local PostgreSQL server (for tests and benches).
//!
//! The server comes from `MEDREC_TEST_DATABASE_URL` (default: the machine's PostgreSQL at
//! 127.0.0.1:5432 as user postgres). Each [`TestDb`] is dropped with its owner.

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use tokio_postgres::Client;

use crate::db::{connect, DbConfig};

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
        crate::migrate::migrate(&mut client).await?;
        Ok(db)
    }

    pub async fn client(&self) -> anyhow::Result<Client> {
        connect(&self.config).await
    }

    /// A migrated database holding the sample (`../shared/data/sample`, every `<table>_ae.csv`)
    /// with its features computed.
    pub async fn with_sample() -> anyhow::Result<TestDb> {
        let db = TestDb::migrated().await?;
        let mut client = db.client().await?;
        for table in medrec_core::Table::ALL {
            let name = format!("{}_ae.csv", table.name());
            let path = sample_dir().join(&name);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading the sample file {}", path.display()))?;
            let source = crate::Source {
                table,
                name,
                version: None,
                sha256: Some(medrec_core::reader::sha256_hex(&bytes[..])?),
            };
            crate::ingest(&mut client, source, std::io::Cursor::new(bytes)).await?;
        }
        crate::features::refresh(&client, None).await?;
        Ok(db)
    }
}

/// The shared sample beside the repository (never copied into it).
pub fn sample_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/sample"
    ))
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
