//! Loading one per-person vendor file: one short transaction that touches only that person's
//! rows from that vendor (migrations/0006_vendor.sql).
//!
//! Why no table lock: every statement is a row-level INSERT, UPDATE, DELETE or SELECT ... FOR
//! UPDATE, which take at most ROW EXCLUSIVE on a table (it conflicts only with SHARE and
//! stronger: DDL, explicit LOCK); the transaction takes that same lock on the five clean tables
//! first, so that a first CSV load's bulk lock is waited for before any person row is held. There is no staging table (CREATE TEMP TABLE is DDL and
//! writes the catalogs), no TRUNCATE and no COPY; a per-person file holds tens of rows, so one
//! `INSERT ... SELECT FROM unnest(...)` per table (one typed array parameter per column, bound in
//! binary like COPY's values) is as set-based as COPY and cheaper to set up.
//! Row locks are taken on the person's `vendor_person` row (serialising files of one person),
//! the person's old rows (moved to `<table>_superseded`), the person's `features_owed` row (last, just before commit)
//! and, by foreign keys, the person's `person` row: another person's ingestion or any reader
//! never waits on them.

use std::collections::BTreeMap;

const BEFORE_ANY_ROW: &str =
    "LOCK TABLE lifestyle, rx, conditions, labs, tests IN ROW EXCLUSIVE MODE";
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use medrec_core::vendor::{self, VendorError, VendorFile, VendorReason};
use medrec_core::{CleanedRow, Outcome, Reason, Table, Value};
use serde_json::Value as Json;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Transaction};

use crate::pg_value::{sql_type_name, PgValue};

/// Where a vendor file came from.
#[derive(Debug, Clone)]
pub struct VendorSource {
    /// A path or `s3://bucket/key`.
    pub name: String,
    /// The object's version where the source has one (an S3 ETag).
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VendorStatus {
    /// The person's rows from the vendor were replaced by this file's.
    Loaded,
    /// The stored version is this file's or newer: nothing but the file's record was written.
    Ignored {
        reason: &'static str,
        stored_version: i64,
    },
    /// The file could not be used at all.
    Rejected {
        reason: VendorReason,
        detail: String,
    },
}

/// Row counts of one file (or one table of it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    pub raw: i64,
    pub loaded: i64,
    pub duplicate: i64,
    pub quarantined: i64,
}

impl RowCounts {
    pub fn add(&mut self, other: RowCounts) {
        self.raw += other.raw;
        self.loaded += other.loaded;
        self.duplicate += other.duplicate;
        self.quarantined += other.quarantined;
    }
}

#[derive(Debug, Clone)]
pub struct VendorReport {
    pub source: String,
    pub file_id: i64,
    pub status: VendorStatus,
    pub vendor_id: Option<String>,
    pub person_id: Option<i64>,
    pub version: Option<i64>,
    pub rows: RowCounts,
    pub quarantined_by_reason: BTreeMap<&'static str, i64>,
    /// Persons whose features may have changed (the file's person when it was loaded).
    pub persons: Vec<i64>,
    pub elapsed: Duration,
}

/// Parses, cleans and loads one vendor file. Idempotent: the same file again, or any file
/// not newer than the stored version, changes nothing but adds an `ignored` record. A bad file
/// is recorded as `rejected` and touches nothing else. Only database failures are errors.
pub async fn ingest_vendor_file(
    client: &mut Client,
    source: &VendorSource,
    bytes: Vec<u8>,
) -> Result<VendorReport, tokio_postgres::Error> {
    let started = Instant::now();
    let size = bytes.len() as u64;
    let sha256 = medrec_core::reader::sha256_hex(&bytes[..]).unwrap_or_default();
    // Cleaning a large file is CPU work: keep it off the async threads.
    let parsed = tokio::task::spawn_blocking(move || vendor::parse(&bytes))
        .await
        .unwrap_or_else(|_| {
            Err(VendorError::new(
                VendorReason::Unreadable,
                "the parser stopped",
            ))
        });
    match parsed {
        Err(error) => {
            let content = (!sha256.is_empty()).then_some((sha256.as_str(), size));
            reject(client, source, content, &error, started).await
        }
        Ok(file) => load(client, source, file, started).await,
    }
}

/// Records a rejected file (also for one refused before reading, e.g. by its size).
pub async fn reject(
    client: &Client,
    source: &VendorSource,
    content: Option<(&str, u64)>,
    error: &VendorError,
    started: Instant,
) -> Result<VendorReport, tokio_postgres::Error> {
    let (sha256, bytes) = match content {
        Some((sha, bytes)) => (Some(sha), Some(bytes as i64)),
        None => (None, None),
    };
    let file_id: i64 = client
        .query_one(
            "INSERT INTO vendor_file (source, source_version, sha256, bytes, status, reason, detail)
             VALUES ($1, $2, $3, $4, 'rejected', $5, $6) RETURNING file_id",
            &[
                &source.name,
                &source.version,
                &sha256,
                &bytes,
                &error.reason.as_str(),
                &error.detail,
            ],
        )
        .await?
        .get(0);
    tracing::warn!(
        file_id,
        reason = error.reason.as_str(),
        "vendor file rejected"
    );
    Ok(VendorReport {
        source: source.name.clone(),
        file_id,
        status: VendorStatus::Rejected {
            reason: error.reason,
            detail: error.detail.clone(),
        },
        vendor_id: None,
        person_id: None,
        version: None,
        rows: RowCounts::default(),
        quarantined_by_reason: BTreeMap::new(),
        persons: Vec::new(),
        elapsed: started.elapsed(),
    })
}

async fn load(
    client: &mut Client,
    source: &VendorSource,
    file: VendorFile,
    started: Instant,
) -> Result<VendorReport, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // The lock every INSERT into the clean tables takes anyway, taken first: a first CSV load of
    // a table (medrec_store::load's bulk path, which holds SHARE ROW EXCLUSIVE on it) makes this
    // file wait here, before it holds any person's row, so the two never deadlock over a person.
    tx.batch_execute(BEFORE_ANY_ROW).await?;
    // The placeholder makes the row exist so that FOR UPDATE has something to lock; a concurrent
    // first file of the same person waits here, and only that one.
    tx.execute(
        "INSERT INTO vendor_person (vendor_id, person_id, version) VALUES ($1, $2, 0)
         ON CONFLICT DO NOTHING",
        &[&file.vendor_id, &file.person_id],
    )
    .await?;
    let stored = tx
        .query_one(
            "SELECT version, sha256 FROM vendor_person
             WHERE vendor_id = $1 AND person_id = $2 FOR UPDATE",
            &[&file.vendor_id, &file.person_id],
        )
        .await?;
    let stored_version: i64 = stored.get(0);
    let stored_sha: Option<String> = stored.get(1);
    let mut report = VendorReport {
        source: source.name.clone(),
        file_id: 0,
        status: VendorStatus::Loaded,
        vendor_id: Some(file.vendor_id.clone()),
        person_id: Some(file.person_id),
        version: Some(file.version),
        rows: RowCounts::default(),
        quarantined_by_reason: BTreeMap::new(),
        persons: Vec::new(),
        elapsed: Duration::ZERO,
    };
    if file.version <= stored_version {
        let reason = if stored_sha.as_deref() == Some(file.sha256.as_str()) {
            "same_file"
        } else {
            "not_newer"
        };
        report.file_id = tx
            .query_one(
                "INSERT INTO vendor_file (source, source_version, sha256, bytes, vendor_id,
                     person_id, version, updated_at, status, reason, stored_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ignored', $9, $10) RETURNING file_id",
                &[
                    &source.name,
                    &source.version,
                    &file.sha256,
                    &(file.bytes as i64),
                    &file.vendor_id,
                    &file.person_id,
                    &file.version,
                    &file.updated_at,
                    &reason,
                    &stored_version,
                ],
            )
            .await?
            .get(0);
        tx.commit().await?;
        report.status = VendorStatus::Ignored {
            reason,
            stored_version,
        };
        report.elapsed = started.elapsed();
        tracing::info!(
            file_id = report.file_id,
            person = file.person_id,
            version = file.version,
            stored_version,
            reason,
            "vendor file ignored"
        );
        return Ok(report);
    }

    // One instant for the whole file (knowledge time, migrations/0013_knowledge_time.sql): the
    // rows it supersedes stop being known, and its runs start and finish, at the same moment,
    // taken after the person's lock so that files of one person are stamped in their order.
    let stamped: DateTime<Utc> = tx.query_one("SELECT clock_timestamp()", &[]).await?.get(0);
    for table in Table::ALL {
        tx.execute(
            &format!(
                "WITH superseded AS (
                     DELETE FROM {t} WHERE person_id = $2 AND run_id IN (
                         SELECT run_id FROM ingest_run WHERE vendor_id = $1 AND vendor_person_id = $2)
                     RETURNING {t}
                 )
                 INSERT INTO {t}_superseded (clean_row, superseded_at, superseded_by_version)
                 SELECT superseded.{t}, $3, $4 FROM superseded",
                t = table.name()
            ),
            &[&file.vendor_id, &file.person_id, &stamped, &file.version],
        )
        .await?;
    }

    let has_clean = file
        .tables
        .iter()
        .flat_map(|t| &t.outcomes)
        .any(|o| matches!(o, Outcome::Clean(_)));
    let mut run_ids = Vec::new();
    for vt in &file.tables {
        if vt.outcomes.is_empty() {
            continue;
        }
        let run_id: i64 = tx
            .query_one(
                "INSERT INTO ingest_run (table_name, source, source_version, status, vendor_id,
                     vendor_person_id, started_at)
                 VALUES ($1, $2, $3, 'loading', $4, $5, $6) RETURNING run_id",
                &[
                    &vt.table.name(),
                    &source.name,
                    &source.version,
                    &file.vendor_id,
                    &file.person_id,
                    &stamped,
                ],
            )
            .await?
            .get(0);
        if run_ids.is_empty() && has_clean {
            tx.execute(
                "INSERT INTO person (person_id, first_run_id) VALUES ($1, $2)
                 ON CONFLICT (person_id) DO NOTHING",
                &[&file.person_id, &run_id],
            )
            .await?;
        }
        run_ids.push(run_id);
        let counts = load_table(&tx, vt.table, run_id, &vt.outcomes, &mut report).await?;
        tx.execute(
            "UPDATE ingest_run SET status = 'loaded', sha256 = $2, bytes = $3, raw_rows = $4,
                 loaded_rows = $5, duplicate_rows = $6, quarantined_rows = $7,
                 finished_at = $8
             WHERE run_id = $1",
            &[
                &run_id,
                &file.sha256,
                &(file.bytes as i64),
                &counts.raw,
                &counts.loaded,
                &counts.duplicate,
                &counts.quarantined,
                &stamped,
            ],
        )
        .await?;
        report.rows.add(counts);
    }

    report.file_id = tx
        .query_one(
            "INSERT INTO vendor_file (source, source_version, sha256, bytes, vendor_id, person_id,
                 version, updated_at, status, run_ids, raw_rows, loaded_rows, duplicate_rows,
                 quarantined_rows)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'loaded', $9, $10, $11, $12, $13)
             RETURNING file_id",
            &[
                &source.name,
                &source.version,
                &file.sha256,
                &(file.bytes as i64),
                &file.vendor_id,
                &file.person_id,
                &file.version,
                &file.updated_at,
                &run_ids,
                &report.rows.raw,
                &report.rows.loaded,
                &report.rows.duplicate,
                &report.rows.quarantined,
            ],
        )
        .await?
        .get(0);
    // Durable with the rows: if the process dies before its refresh, a later one finds it owed.
    crate::features::owe(&tx, &[file.person_id]).await?;
    tx.execute(
        "UPDATE vendor_person SET version = $3, updated_at = $4, sha256 = $5, file_id = $6,
             loaded_at = clock_timestamp()
         WHERE vendor_id = $1 AND person_id = $2",
        &[
            &file.vendor_id,
            &file.person_id,
            &file.version,
            &file.updated_at,
            &file.sha256,
            &report.file_id,
        ],
    )
    .await?;
    tx.commit().await?;
    report.persons = vec![file.person_id];
    report.elapsed = started.elapsed();
    tracing::info!(
        file_id = report.file_id,
        person = file.person_id,
        version = file.version,
        raw = report.rows.raw,
        loaded = report.rows.loaded,
        duplicates = report.rows.duplicate,
        quarantined = report.rows.quarantined,
        ms = report.elapsed.as_millis() as u64,
        "vendor file loaded"
    );
    Ok(report)
}

/// One table's rows of the file: clean rows by one insert, conflicts and rejects to quarantine.
async fn load_table(
    tx: &Transaction<'_>,
    table: Table,
    run_id: i64,
    outcomes: &[Outcome],
    report: &mut VendorReport,
) -> Result<RowCounts, tokio_postgres::Error> {
    let mut counts = RowCounts {
        raw: outcomes.len() as i64,
        ..RowCounts::default()
    };
    let clean: Vec<&CleanedRow> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Clean(row) => Some(row),
            Outcome::Quarantined(_) => None,
        })
        .collect();
    let mut quarantine: Vec<QuarantineRow> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Quarantined(q) => Some(QuarantineRow {
                line: q.line,
                reason: q.reason.as_str(),
                column: q.column,
                raw: &q.raw,
            }),
            Outcome::Clean(_) => None,
        })
        .collect();
    for o in outcomes {
        if let Outcome::Quarantined(q) = o {
            *report
                .quarantined_by_reason
                .entry(q.reason.as_str())
                .or_default() += 1;
        }
    }

    let mut tally = crate::run_flags::FlagTally::default();
    clean.iter().for_each(|row| tally.add(row));
    tally.record(tx, run_id).await?;
    if !clean.is_empty() {
        let inserted = insert_clean(tx, table, run_id, &clean).await?;
        counts.loaded = inserted.len() as i64;
        if let Some(key) = table.spec().natural_key {
            let conflicts = natural_key_conflicts(tx, table, key, &clean, &inserted).await?;
            for row in &conflicts {
                quarantine.push(QuarantineRow {
                    line: row.line,
                    reason: Reason::ConflictingId.as_str(),
                    column: Some(key),
                    raw: &row.raw,
                });
            }
            if !conflicts.is_empty() {
                *report
                    .quarantined_by_reason
                    .entry(Reason::ConflictingId.as_str())
                    .or_default() += conflicts.len() as i64;
            }
        }
    }
    counts.quarantined = quarantine.len() as i64;
    counts.duplicate = counts.raw - counts.loaded - counts.quarantined;
    if !quarantine.is_empty() {
        let lines: Vec<i64> = quarantine.iter().map(|q| q.line as i64).collect();
        let reasons: Vec<&str> = quarantine.iter().map(|q| q.reason).collect();
        let columns: Vec<Option<&str>> = quarantine.iter().map(|q| q.column).collect();
        let raw_lines: Vec<std::borrow::Cow<str>> = quarantine
            .iter()
            .map(|q| String::from_utf8_lossy(q.raw))
            .collect();
        tx.execute(
            "INSERT INTO quarantine (run_id, source_line, reason, column_name, raw_line)
             SELECT $1::bigint, source_line, reason, column_name, raw_line
             FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[])
                 AS q (source_line, reason, column_name, raw_line)",
            &[&run_id, &lines, &reasons, &columns, &raw_lines],
        )
        .await?;
    }
    Ok(counts)
}

/// Clean rows not inserted whose natural key (`key`, a bigint) is held by a row with other
/// content: the key is taken (by another source, or earlier in this file), so the row cannot
/// be loaded.
async fn natural_key_conflicts<'r>(
    tx: &Transaction<'_>,
    table: Table,
    key: &str,
    clean: &[&'r CleanedRow],
    inserted_lines: &[i64],
) -> Result<Vec<&'r CleanedRow>, tokio_postgres::Error> {
    let id_of = |row: &CleanedRow| {
        let i = table.clean_columns().iter().position(|c| c.name == key)?;
        match row.values.get(i) {
            Some(Value::Int8(id)) => *id,
            _ => None,
        }
    };
    let skipped: Vec<(&CleanedRow, i64)> = clean
        .iter()
        .filter(|row| !inserted_lines.contains(&(row.line as i64)))
        .filter_map(|row| id_of(row).map(|id| (*row, id)))
        .collect();
    if skipped.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = skipped.iter().map(|(_, id)| *id).collect();
    let existing: BTreeMap<i64, Vec<u8>> = tx
        .query(
            &format!("SELECT {key}, row_hash FROM {table} WHERE {key} = ANY($1)"),
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(skipped
        .into_iter()
        .filter(|(row, id)| {
            existing
                .get(id)
                .is_some_and(|hash| hash.as_slice() != row.row_hash.as_slice())
        })
        .map(|(row, _)| row)
        .collect())
}

/// A row for the quarantine table (of the file's, or a clean row whose key conflicts).
struct QuarantineRow<'a> {
    line: u64,
    reason: &'static str,
    column: Option<&'static str>,
    raw: &'a [u8],
}

/// Inserts the clean rows of one table with one statement: one typed array per column,
/// unnested in step. The first occurrence of an exact duplicate keeps its position as
/// lineage. Returns the source lines inserted.
async fn insert_clean(
    tx: &Transaction<'_>,
    table: Table,
    run_id: i64,
    clean: &[&CleanedRow],
) -> Result<Vec<i64>, tokio_postgres::Error> {
    let columns = table.clean_columns();
    let person_ids: Vec<i64> = clean.iter().map(|row| row.person_id).collect();
    let hashes: Vec<&[u8]> = clean.iter().map(|row| &row.row_hash[..]).collect();
    let values: Vec<Vec<PgValue>> = (0..columns.len())
        .map(|i| {
            clean
                .iter()
                .map(|row| PgValue(finite(&row.values[i])))
                .collect()
        })
        .collect();
    let lines: Vec<i64> = clean.iter().map(|row| row.line as i64).collect();
    // A text[] per row cannot be one element of an array parameter (PostgreSQL arrays are
    // rectangular): the flags travel comma-joined (flag names are snake_case words).
    let flags: Vec<String> = clean
        .iter()
        .map(|row| {
            let names: Vec<&str> = row.flags.iter().map(|f| f.as_str()).collect();
            names.join(",")
        })
        .collect();
    let raw_values: Vec<Option<&Json>> = clean.iter().map(|row| row.raw_values.as_ref()).collect();
    let extras: Vec<Option<&Json>> = clean.iter().map(|row| row.extras.as_ref()).collect();

    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&run_id, &person_ids, &hashes];
    let mut arrays = vec!["bigint", "bytea"];
    for (column, column_values) in columns.iter().zip(&values) {
        params.push(column_values);
        arrays.push(sql_type_name(column.ty));
    }
    params.extend([&lines as &(dyn ToSql + Sync), &flags, &raw_values, &extras]);
    arrays.extend(["bigint", "text", "jsonb", "jsonb"]);
    let unnested: Vec<&str> = ["person_id", "row_hash"]
        .into_iter()
        .chain(columns.iter().map(|c| c.name))
        .chain(["source_line", "flags", "raw_values", "extras"])
        .collect();
    let arrays: Vec<String> = arrays
        .iter()
        .enumerate()
        .map(|(i, ty)| format!("${}::{ty}[]", i + 2))
        .collect();
    let targets = ["person_id", "row_hash"]
        .into_iter()
        .chain(columns.iter().map(|c| c.name))
        .chain(["run_id", "source_line", "flags", "raw_values", "extras"])
        .collect::<Vec<_>>()
        .join(", ");
    let selected = ["person_id", "row_hash"]
        .into_iter()
        .chain(columns.iter().map(|c| c.name))
        .chain([
            "$1::bigint",
            "source_line",
            "string_to_array(flags, ',')",
            "raw_values",
            "extras",
        ])
        .collect::<Vec<_>>()
        .join(", ");
    let rows = tx
        .query(
            &format!(
                "INSERT INTO {t} ({targets})
                 SELECT {selected} FROM unnest({arrays}) AS u ({unnested})
                 ORDER BY source_line
                 ON CONFLICT DO NOTHING RETURNING source_line",
                t = table.name(),
                arrays = arrays.join(", "),
                unnested = unnested.join(", "),
            ),
            &params,
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Non-finite floats are stored as NULL, as when the rows travelled as JSON (which has no NaN
/// or infinity); the cleaners never produce them.
fn finite(value: &Value) -> &Value {
    static NULL_FLOAT: Value = Value::Float8(None);
    match value {
        Value::Float8(Some(f)) if !f.is_finite() => &NULL_FLOAT,
        other => other,
    }
}

/// The stored version of a person's record from a vendor, if any was loaded.
pub async fn stored_version(
    client: &Client,
    vendor_id: &str,
    person_id: i64,
) -> Result<Option<(i64, Option<DateTime<Utc>>)>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT version, updated_at FROM vendor_person
             WHERE vendor_id = $1 AND person_id = $2 AND version > 0",
            &[&vendor_id, &person_id],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))))
}
