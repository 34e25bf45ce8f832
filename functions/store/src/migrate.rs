//! Plain SQL migrations from `migrations/`, applied in order, each exactly once.

use anyhow::{bail, Context};
use medrec_core::clean::rx::DRUG_BOOK;
use medrec_core::reader::sha256_hex;
use tokio_postgres::Client;

macro_rules! migration {
    ($file:literal) => {
        ($file, include_str!(concat!("../../../migrations/", $file)))
    };
}

/// Every migration, in order. `migrations_match_the_directory` keeps this list complete.
pub const MIGRATIONS: &[(&str, &str)] = &[
    migration!("0001_ingest.sql"),
    migration!("0002_clean_tables.sql"),
    migration!("0003_features.sql"),
    migration!("0004_person_document.sql"),
    migration!("0005_ingest_source_version.sql"),
    migration!("0006_vendor.sql"),
    migration!("0007_features_by_person.sql"),
];

/// Any constant: serialises concurrent migrators (two Lambdas cold-starting at once).
const MIGRATION_LOCK: i64 = 0x6d65_6472_6563;

/// Applies pending migrations and syncs reference data; returns the versions it applied.
/// Fails if an applied migration's file changed since.
pub async fn migrate(client: &mut Client) -> anyhow::Result<Vec<&'static str>> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migration (
             version    text PRIMARY KEY,
             sha256     text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let applied: Vec<(String, String)> = tx
        .query("SELECT version, sha256 FROM schema_migration", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut newly_applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        let sha = sha256_hex(sql.as_bytes())?;
        match applied.iter().find(|(v, _)| v == version) {
            Some((_, applied_sha)) if *applied_sha == sha => continue,
            Some(_) => bail!("migration {version} was changed after it was applied"),
            None => {}
        }
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying migration {version}"))?;
        tx.execute(
            "INSERT INTO schema_migration (version, sha256) VALUES ($1, $2)",
            &[version, &sha],
        )
        .await?;
        newly_applied.push(*version);
    }
    let (classes, descriptions): (Vec<&str>, Vec<&str>) = DRUG_BOOK.classes.iter().copied().unzip();
    tx.execute(
        "INSERT INTO drug_class (drug_class, description)
         SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (drug_class) DO UPDATE SET description = EXCLUDED.description",
        &[&classes, &descriptions],
    )
    .await?;
    tx.commit().await?;
    Ok(newly_applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_match_the_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert_eq!(files, listed);
    }
}
