//! The schema, from two kinds of SQL file (`migrations/definitions/README.md`):
//!
//! - versioned migrations, `migrations/NNNN_*.sql` ([`MIGRATIONS`]): tables, constraints, data;
//!   applied in order, each exactly once. An applied file must never change: its SHA-256 is
//!   recorded in `schema_migration` and a changed file is an error.
//! - repeatable definitions, `migrations/definitions/R__NN_*.sql` ([`DEFINITIONS`]): views and
//!   functions, the current text of each in one file, re-applied whenever the file changes (its
//!   SHA-256 is recorded in `schema_definition`).
//!
//! One transaction under an advisory lock: pending versioned migrations, then the vocabularies
//! from medrec_core, then the changed definitions, then the vocabulary checks, then (when
//! anything was applied) the roles' grants ([`crate::roles::GRANTS`]).

use std::collections::HashMap;

use anyhow::{bail, Context};
use medrec_core::clean::common::SPECIALTY_CODES;
use medrec_core::clean::rx::DRUG_BOOK;
use medrec_core::reader::sha256_hex;
use medrec_core::{Flag, Reason};
use tokio_postgres::{Client, Transaction};

macro_rules! migration {
    ($file:literal) => {
        ($file, include_str!(concat!("../../../migrations/", $file)))
    };
}

macro_rules! definition {
    ($file:literal) => {
        (
            $file,
            include_str!(concat!("../../../migrations/definitions/", $file)),
        )
    };
}

/// Every versioned migration, in order. `migrations_match_the_directory` keeps this list complete.
pub const MIGRATIONS: &[(&str, &str)] = &[
    migration!("0001_ingest.sql"),
    migration!("0002_clean_tables.sql"),
    migration!("0003_features.sql"),
    migration!("0004_person_document.sql"),
    migration!("0005_ingest_source_version.sql"),
    migration!("0006_vendor.sql"),
    migration!("0007_features_by_person.sql"),
    migration!("0008_vocabulary.sql"),
    migration!("0009_object_receipt.sql"),
    migration!("0010_features_owed.sql"),
    migration!("0011_roles_audit.sql"),
    migration!("0012_object_receipt_run.sql"),
    migration!("0013_knowledge_time.sql"),
    migration!("0014_export_audit.sql"),
    migration!("0015_run_flags.sql"),
    migration!("0016_deferrable_person_keys.sql"),
];

/// Every repeatable definition, in the order applied (a file may use what an earlier one
/// defines). `definitions_match_the_directory` keeps this list complete.
pub const DEFINITIONS: &[(&str, &str)] = &[
    definition!("R__10_vocabulary.sql"),
    definition!("R__20_events.sql"),
    definition!("R__30_features.sql"),
    definition!("R__40_person_document.sql"),
];

/// Any constant: serialises concurrent migrators (two Lambdas cold-starting at once).
const MIGRATION_LOCK: i64 = 0x6d65_6472_6563;

/// Applies pending migrations, syncs the vocabularies and re-applies changed definitions; returns
/// the names of the files it applied (versioned ones first). Fails if an applied migration's file
/// changed since. Running it again with nothing changed writes nothing.
pub async fn migrate(client: &mut Client) -> anyhow::Result<Vec<&'static str>> {
    migrate_with(client, MIGRATIONS, DEFINITIONS).await
}

/// [`migrate`] with other files, for tests of changed files.
#[doc(hidden)]
pub async fn migrate_with<'a>(
    client: &mut Client,
    migrations: &[(&'a str, &'a str)],
    definitions: &[(&'a str, &'a str)],
) -> anyhow::Result<Vec<&'a str>> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migration (
             version    text PRIMARY KEY,
             sha256     text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS schema_definition (
             name       text PRIMARY KEY,
             sha256     text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now());",
    )
    .await?;
    tx.batch_execute(crate::roles::ENSURE_ROLES)
        .await
        .context("creating the group roles")?;
    let mut applied = apply_versioned(&tx, migrations).await?;
    sync_vocabularies(&tx).await?;
    applied.extend(apply_definitions(&tx, definitions).await?);
    if applied.contains(&FEATURE_DEFINITIONS) {
        tx.batch_execute(OWE_STALE_FEATURES)
            .await
            .context("recording the features computed under older definitions as owed")?;
    }
    tx.execute("CALL rebuild_vocabulary_checks()", &[]).await?;
    if !applied.is_empty() && has_roles(&tx).await? {
        tx.batch_execute(crate::roles::GRANTS)
            .await
            .context("granting the roles their privileges")?;
    }
    tx.commit().await?;
    Ok(applied)
}

/// The repeatable definition of the features (and of `feature_definitions_version()`).
pub const FEATURE_DEFINITIONS: &str = "R__30_features.sql";

/// A new definitions version makes every stored row computed under another one owed a recompute
/// (`features_owed`): the next refresh of any run (a load, a features batch, `medrec features
/// refresh`) brings them to the new definitions, and until then the API computes such a person's
/// features on read (`features::for_person` serves only rows of the current version).
const OWE_STALE_FEATURES: &str = "
DO $owe$
BEGIN
    IF to_regclass('features_owed') IS NOT NULL THEN
        INSERT INTO features_owed (person_id, seq)
        SELECT person_id, nextval('features_owed_seq')
        FROM person_features
        WHERE definitions_version IS DISTINCT FROM feature_definitions_version()
        ORDER BY person_id
        ON CONFLICT (person_id) DO UPDATE SET seq = nextval('features_owed_seq');
    END IF;
END
$owe$;
";

/// The versioned migration that creates the roles ([`crate::roles`]).
pub const ROLES_MIGRATION: &str = "0011_roles_audit.sql";

/// Whether the roles migration is applied: then [`crate::roles::GRANTS`] re-runs after anything
/// was applied, so that objects created (or dropped and created) since keep their grants.
async fn has_roles(tx: &Transaction<'_>) -> anyhow::Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT FROM schema_migration WHERE version = $1)",
            &[&ROLES_MIGRATION],
        )
        .await?
        .get(0))
}

async fn recorded(tx: &Transaction<'_>, query: &str) -> anyhow::Result<HashMap<String, String>> {
    Ok(tx
        .query(query, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Each pending versioned migration, in order; an applied one must be unchanged.
async fn apply_versioned<'a>(
    tx: &Transaction<'_>,
    migrations: &[(&'a str, &'a str)],
) -> anyhow::Result<Vec<&'a str>> {
    let applied = recorded(tx, "SELECT version, sha256 FROM schema_migration").await?;
    let mut newly_applied = Vec::new();
    for (version, sql) in migrations {
        let sha = sha256_hex(sql.as_bytes())?;
        match applied.get(*version) {
            Some(applied_sha) if *applied_sha == sha => continue,
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
    Ok(newly_applied)
}

/// Each definition whose file differs from the one last applied, and every one after it: a
/// later file may depend on what an earlier one replaced.
async fn apply_definitions<'a>(
    tx: &Transaction<'_>,
    definitions: &[(&'a str, &'a str)],
) -> anyhow::Result<Vec<&'a str>> {
    let applied = recorded(tx, "SELECT name, sha256 FROM schema_definition").await?;
    let mut reapplied = Vec::new();
    for (name, sql) in definitions {
        let sha = sha256_hex(sql.as_bytes())?;
        if reapplied.is_empty() && applied.get(*name) == Some(&sha) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying definition {name}"))?;
        tx.execute(
            "INSERT INTO schema_definition (name, sha256) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()",
            &[name, &sha],
        )
        .await?;
        reapplied.push(*name);
    }
    Ok(reapplied)
}

/// The vocabularies whose source of truth is Rust: the drug book's classes (descriptions
/// updated), the quality flags, quarantine reasons, specialties and object outcomes (added,
/// never removed). Rows
/// are written only when they change.
async fn sync_vocabularies(tx: &Transaction<'_>) -> anyhow::Result<()> {
    let (classes, descriptions): (Vec<&str>, Vec<&str>) = DRUG_BOOK.classes.iter().copied().unzip();
    tx.execute(
        "INSERT INTO drug_class (drug_class, description)
         SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (drug_class) DO UPDATE SET description = EXCLUDED.description
         WHERE drug_class.description IS DISTINCT FROM EXCLUDED.description",
        &[&classes, &descriptions],
    )
    .await?;
    let flags: Vec<&str> = Flag::ALL.iter().map(|f| f.as_str()).collect();
    let reasons: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    let outcomes: Vec<&str> = crate::receipts::Outcome::ALL
        .iter()
        .map(|o| o.as_str())
        .collect();
    for (table, column, values) in [
        ("object_outcome", "outcome", outcomes.as_slice()),
        ("quality_flag", "flag", flags.as_slice()),
        ("quarantine_reason", "reason", reasons.as_slice()),
        ("specialty", "specialty", SPECIALTY_CODES.as_slice()),
    ] {
        tx.execute(
            &format!(
                "INSERT INTO {table} ({column}) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING"
            ),
            &[&values],
        )
        .await
        .with_context(|| format!("syncing {table}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_files(dir: &str) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".sql"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn migrations_match_the_directory() {
        let files = sql_files(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"));
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn definitions_match_the_directory() {
        let files = sql_files(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../migrations/definitions"
        ));
        let listed: Vec<&str> = DEFINITIONS.iter().map(|(v, _)| *v).collect();
        // Listed in name order, which is the order they apply in.
        assert_eq!(files, listed);
        for name in listed {
            let rest = name.strip_prefix("R__").unwrap_or_else(|| panic!("{name}"));
            let (order, _) = rest.split_once('_').unwrap_or_else(|| panic!("{name}"));
            assert!(
                order.len() == 2 && order.bytes().all(|b| b.is_ascii_digit()),
                "{name}: R__NN_name.sql"
            );
        }
    }

    #[test]
    fn versioned_names_are_numbered_in_order() {
        for (i, (version, _)) in MIGRATIONS.iter().enumerate() {
            assert!(
                version.starts_with(&format!("{:04}_", i + 1)),
                "{version} is migration {}",
                i + 1
            );
        }
    }
}
