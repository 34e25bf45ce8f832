//! Loading one raw file: clean it while streaming, binary COPY into a staging table, then
//! insert into the clean table, all in one transaction. A failed file leaves nothing but a
//! `failed` ingest_run row behind.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::pin::pin;
use std::time::{Duration, Instant};

use medrec_core::reader::{ContentDigest, HashingReader};
use medrec_core::{
    CleanedRow, Column, ColumnType, FileError, Outcome, QuarantinedRow, Reason, Table,
};
use postgres_types::{ToSql, Type};
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Transaction};

use crate::error::ErrorKind;
use crate::pg_value::{pg_type, sql_type_name, PgValue};

/// Rows per message between the cleaning thread and the COPY writer.
const BATCH_ROWS: usize = 2048;
/// Batches in flight: bounds memory whatever the file size.
const BATCHES_IN_FLIGHT: usize = 4;

/// What is being loaded.
#[derive(Debug, Clone)]
pub struct Source {
    pub table: Table,
    /// A path or `s3://bucket/key`.
    pub name: String,
    /// The object's version where the source has one (an S3 ETag).
    pub version: Option<String>,
    /// The content's SHA-256 when known before reading (lets a re-delivery skip the read).
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Loaded,
    /// The same content was already loaded into this table by that run: nothing was written.
    AlreadyLoaded {
        run_id: i64,
    },
}

/// The outcome of one file.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub table: Table,
    pub source: String,
    pub status: RunStatus,
    pub run_id: i64,
    pub raw_rows: i64,
    pub loaded_rows: i64,
    pub duplicate_rows: i64,
    pub quarantined_rows: i64,
    pub quarantined_by_reason: BTreeMap<&'static str, i64>,
    /// Persons with at least one clean row in the file (whose features may have changed).
    pub persons: Vec<i64>,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{source_name}: unusable file")]
    File {
        source_name: String,
        #[source]
        error: FileError,
    },
    #[error("{source_name}: reading failed")]
    Read {
        source_name: String,
        #[source]
        error: std::io::Error,
    },
    #[error("{source_name}: database error")]
    Database {
        source_name: String,
        #[source]
        error: tokio_postgres::Error,
    },
}

impl IngestError {
    /// A description safe to store and log: names the file and the kind, never a record value.
    pub fn summary(&self) -> String {
        match self {
            IngestError::File { error, .. } => error.to_string(),
            IngestError::Read { error, .. } => format!("read error: {}", error.kind()),
            IngestError::Database { error, .. } => crate::error::safe_summary(error),
        }
    }

    /// Permanent: this content can never load (no retry will change it). Reading and database
    /// failures are transient: the same content may load when tried again.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IngestError::File { .. } => ErrorKind::Permanent,
            IngestError::Read { .. } | IngestError::Database { .. } => ErrorKind::Transient,
        }
    }
}

/// What the cleaning thread saw, for the run's counts.
#[derive(Debug, Default)]
struct CleanSummary {
    sha256: String,
    bytes: u64,
    clean_rows: i64,
    quarantined: BTreeMap<&'static str, i64>,
    flags: crate::run_flags::FlagTally,
}

/// Loads one file. Idempotent: the same content loaded twice into a table is a no-op, reported
/// as [`RunStatus::AlreadyLoaded`] with the persons of the run that loaded it. Whether a known
/// object version needs reading at all is the caller's decision ([`find_loaded`]).
pub async fn ingest<R: Read + Send + 'static>(
    client: &mut Client,
    source: Source,
    input: R,
) -> Result<RunReport, IngestError> {
    let started = Instant::now();
    if let Some(sha) = &source.sha256 {
        if let Some(run_id) = loaded_run(client, source.table, sha)
            .await
            .map_err(|e| db_error(&source, e))?
        {
            return already_loaded(client, &source, run_id, started).await;
        }
    }
    let result = load_in_transaction(client, &source, input, started).await;
    if let Err(error) = &result {
        record_failure(client, &source, error).await;
    }
    result
}

async fn loaded_run(
    client: &Client,
    table: Table,
    sha256: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT run_id FROM ingest_run
             WHERE table_name = $1 AND sha256 = $2 AND status = 'loaded'",
            &[&table.name(), &sha256],
        )
        .await?
        .map(|r| r.get(0)))
}

/// A run that loaded this very object version (a re-delivered S3 event, an unchanged local
/// file), with the persons it loaded: what a redelivery must announce again, in case the first
/// delivery committed and then failed before announcing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRun {
    pub run_id: i64,
    pub persons: Vec<i64>,
}

/// The run that loaded `name` at `version` into `table`, if one did.
pub async fn find_loaded(
    client: &Client,
    table: Table,
    name: &str,
    version: &str,
) -> Result<Option<LoadedRun>, tokio_postgres::Error> {
    let run_id: Option<i64> = client
        .query_opt(
            "SELECT run_id FROM ingest_run
             WHERE table_name = $1 AND source = $2 AND source_version = $3 AND status = 'loaded'",
            &[&table.name(), &name, &version],
        )
        .await?
        .map(|r| r.get(0));
    let Some(run_id) = run_id else {
        return Ok(None);
    };
    let persons = persons_of_run(client, table, run_id).await?;
    Ok(Some(LoadedRun { run_id, persons }))
}

/// The persons with rows first loaded by `run_id`, as one array. Scans the table, which is
/// acceptable for the rare redelivery.
async fn persons_of_run(
    client: &Client,
    table: Table,
    run_id: i64,
) -> Result<Vec<i64>, tokio_postgres::Error> {
    Ok(client
        .query_one(
            &format!(
                "SELECT coalesce(array_agg(DISTINCT person_id ORDER BY person_id), '{{}}')
                 FROM {} WHERE run_id = $1",
                table.name()
            ),
            &[&run_id],
        )
        .await?
        .get(0))
}

/// The report of content some earlier run loaded: nothing written, that run's persons.
async fn already_loaded(
    client: &Client,
    source: &Source,
    run_id: i64,
    started: Instant,
) -> Result<RunReport, IngestError> {
    let persons = persons_of_run(client, source.table, run_id)
        .await
        .map_err(|e| db_error(source, e))?;
    Ok(already_loaded_report(source, run_id, persons, started))
}

/// The report for a run found already loaded, with that run's persons.
pub fn already_loaded_report(
    source: &Source,
    run_id: i64,
    persons: Vec<i64>,
    started: Instant,
) -> RunReport {
    RunReport {
        table: source.table,
        source: source.name.clone(),
        status: RunStatus::AlreadyLoaded { run_id },
        run_id,
        raw_rows: 0,
        loaded_rows: 0,
        duplicate_rows: 0,
        quarantined_rows: 0,
        quarantined_by_reason: BTreeMap::new(),
        persons,
        elapsed: started.elapsed(),
    }
}

fn db_error(source: &Source, error: tokio_postgres::Error) -> IngestError {
    IngestError::Database {
        source_name: source.name.clone(),
        error,
    }
}

async fn record_failure(client: &Client, source: &Source, error: &IngestError) {
    let recorded = client
        .execute(
            "INSERT INTO ingest_run (table_name, source, source_version, sha256, status, error, finished_at)
             VALUES ($1, $2, $3, $4, 'failed', $5, clock_timestamp())",
            &[
                &source.table.name(),
                &source.name,
                &source.version,
                &source.sha256,
                &error.summary(),
            ],
        )
        .await;
    if let Err(e) = recorded {
        tracing::error!(table = %source.table, error = %e, "could not record the failed run");
    }
}

async fn load_in_transaction<R: Read + Send + 'static>(
    client: &mut Client,
    source: &Source,
    input: R,
    started: Instant,
) -> Result<RunReport, IngestError> {
    let table = source.table;
    let file_error = |error| IngestError::File {
        source_name: source.name.clone(),
        error,
    };
    let read_error = |error| IngestError::Read {
        source_name: source.name.clone(),
        error,
    };

    // Open (and check the header) before touching the database.
    let (outcomes, digest) = tokio::task::spawn_blocking(move || {
        let hashing = HashingReader::new(input);
        let digest = hashing.digest();
        let outcomes = table.clean(BufReader::with_capacity(1 << 16, hashing))?;
        Ok::<_, FileError>((outcomes, digest))
    })
    .await
    .expect("cleaning thread panicked")
    .map_err(file_error)?;

    let tx = client
        .transaction()
        .await
        .map_err(|e| db_error(source, e))?;
    let run_id: i64 = tx
        .query_one(
            "INSERT INTO ingest_run (table_name, source, source_version, status)
             VALUES ($1, $2, $3, 'loading') RETURNING run_id",
            &[&table.name(), &source.name, &source.version],
        )
        .await
        .map_err(|e| db_error(source, e))?
        .get(0);

    let columns = table.clean_columns();
    tx.batch_execute(&stage_ddl(columns))
        .await
        .map_err(|e| db_error(source, e))?;

    let (sender, receiver) = mpsc::channel::<Vec<Outcome>>(BATCHES_IN_FLIGHT);
    let cleaning = tokio::task::spawn_blocking(move || clean_into(outcomes, digest, sender));
    let copied = copy_to_stage(&tx, table, receiver).await;
    let summary = cleaning
        .await
        .expect("cleaning thread panicked")
        .map_err(read_error)?;
    copied.map_err(|e| db_error(source, e))?;

    let counts = move_from_stage(&tx, table, run_id)
        .await
        .map_err(|e| db_error(source, e))?;
    let conflicts = counts.conflicts;
    let quarantined_rust: i64 = summary.quarantined.values().sum();
    let raw_rows = summary.clean_rows + quarantined_rust;
    let quarantined_rows = quarantined_rust + conflicts;
    let duplicate_rows = summary.clean_rows - counts.loaded - conflicts;
    let mut quarantined_by_reason = summary.quarantined.clone();
    if conflicts > 0 {
        *quarantined_by_reason
            .entry(Reason::ConflictingId.as_str())
            .or_default() += conflicts;
    }

    summary
        .flags
        .record(&tx, run_id)
        .await
        .map_err(|e| db_error(source, e))?;
    // Durable with the rows: if the process dies before its refresh, a later one finds them owed.
    crate::features::owe(&tx, &counts.persons)
        .await
        .map_err(|e| db_error(source, e))?;
    let finished = tx
        .execute(
            "UPDATE ingest_run SET status = 'loaded', sha256 = $2, bytes = $3, raw_rows = $4,
                 loaded_rows = $5, duplicate_rows = $6, quarantined_rows = $7,
                 finished_at = clock_timestamp()
             WHERE run_id = $1",
            &[
                &run_id,
                &summary.sha256,
                &(summary.bytes as i64),
                &raw_rows,
                &counts.loaded,
                &duplicate_rows,
                &quarantined_rows,
            ],
        )
        .await;
    match finished {
        Ok(_) => {}
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            // Another run loaded the same content while this one was reading.
            tx.rollback().await.map_err(|e| db_error(source, e))?;
            let run_id = loaded_run(client, table, &summary.sha256)
                .await
                .map_err(|e| db_error(source, e))?
                .unwrap_or_default();
            return already_loaded(client, source, run_id, started).await;
        }
        Err(e) => return Err(db_error(source, e)),
    }
    tx.commit().await.map_err(|e| db_error(source, e))?;

    let report = RunReport {
        table,
        source: source.name.clone(),
        status: RunStatus::Loaded,
        run_id,
        raw_rows,
        loaded_rows: counts.loaded,
        duplicate_rows,
        quarantined_rows,
        quarantined_by_reason,
        persons: counts.persons,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        table = %table,
        run_id,
        raw = raw_rows,
        loaded = report.loaded_rows,
        duplicates = duplicate_rows,
        quarantined = quarantined_rows,
        ms = report.elapsed.as_millis() as u64,
        "file loaded"
    );
    Ok(report)
}

/// Runs on a blocking thread: cleans every row and sends them in batches.
fn clean_into(
    outcomes: medrec_core::clean::OutcomeStream<'static>,
    digest: ContentDigest,
    sender: mpsc::Sender<Vec<Outcome>>,
) -> std::io::Result<CleanSummary> {
    let mut summary = CleanSummary::default();
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    for outcome in outcomes {
        let outcome = outcome?;
        match &outcome {
            Outcome::Clean(row) => {
                summary.clean_rows += 1;
                summary.flags.add(row);
            }
            Outcome::Quarantined(q) => {
                *summary.quarantined.entry(q.reason.as_str()).or_default() += 1
            }
        }
        batch.push(outcome);
        if batch.len() == BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            if sender.blocking_send(full).is_err() {
                // The COPY side failed; its error is the one reported.
                return Ok(summary);
            }
        }
    }
    if !batch.is_empty() {
        let _ = sender.blocking_send(batch);
    }
    // The record reader stops only at end of input, so the digest covers the whole file.
    (summary.sha256, summary.bytes) = digest.finish();
    Ok(summary)
}

/// Staging columns: lineage, the table's clean columns, quality, then quarantine fields.
fn stage_columns(columns: &[Column]) -> Vec<(&str, &str, Type)> {
    let mut out = vec![
        ("line", "bigint", Type::INT8),
        ("person_id", "bigint", Type::INT8),
        ("row_hash", "bytea", Type::BYTEA),
    ];
    out.extend(
        columns
            .iter()
            .map(|c| (c.name, sql_type_name(c.ty), pg_type(c.ty))),
    );
    out.extend([
        ("flags", "text[]", Type::TEXT_ARRAY),
        ("raw_values", "jsonb", Type::JSONB),
        ("extras", "jsonb", Type::JSONB),
        ("q_reason", "text", Type::TEXT),
        ("q_column", "text", Type::TEXT),
        ("raw_text", "text", Type::TEXT),
        ("raw_bytes", "bytea", Type::BYTEA),
    ]);
    out
}

fn stage_ddl(columns: &[Column]) -> String {
    let cols: Vec<String> = stage_columns(columns)
        .iter()
        .map(|(name, ty, _)| format!("{name} {ty}"))
        .collect();
    format!(
        "CREATE TEMP TABLE stage ({}) ON COMMIT DROP",
        cols.join(", ")
    )
}

/// The raw line as text, plus the exact bytes when the text cannot represent them.
fn raw_text(raw: &[u8]) -> (String, Option<Vec<u8>>) {
    match std::str::from_utf8(raw) {
        Ok(text) if !text.contains('\0') => (text.to_owned(), None),
        _ => (
            String::from_utf8_lossy(raw).replace('\0', "\u{FFFD}"),
            Some(raw.to_vec()),
        ),
    }
}

async fn copy_to_stage(
    tx: &Transaction<'_>,
    table: Table,
    mut receiver: mpsc::Receiver<Vec<Outcome>>,
) -> Result<(), tokio_postgres::Error> {
    let columns = table.clean_columns();
    let stage = stage_columns(columns);
    let names: Vec<&str> = stage.iter().map(|(n, _, _)| *n).collect();
    let types: Vec<Type> = stage.iter().map(|(_, _, t)| t.clone()).collect();
    let sink = tx
        .copy_in(&format!(
            "COPY stage ({}) FROM STDIN BINARY",
            names.join(", ")
        ))
        .await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    // With a natural key, a conflicting row must be quarantinable with its line.
    let keep_raw = table.spec().natural_key.is_some();
    let nulls: Vec<medrec_core::Value> = columns.iter().map(|c| null_of(c.ty)).collect();
    while let Some(batch) = receiver.recv().await {
        for outcome in &batch {
            match outcome {
                Outcome::Clean(row) => write_clean(writer.as_mut(), row, keep_raw).await?,
                Outcome::Quarantined(q) => write_quarantined(writer.as_mut(), q, &nulls).await?,
            }
        }
    }
    writer.finish().await?;
    Ok(())
}

fn null_of(ty: ColumnType) -> medrec_core::Value {
    use medrec_core::Value;
    match ty {
        ColumnType::Text => Value::Text(None),
        ColumnType::Int4 => Value::Int4(None),
        ColumnType::Int8 => Value::Int8(None),
        ColumnType::Float8 => Value::Float8(None),
        ColumnType::Date => Value::Date(None),
        ColumnType::Bool => Value::Bool(None),
    }
}

async fn write_clean(
    writer: std::pin::Pin<&mut BinaryCopyInWriter>,
    row: &CleanedRow,
    keep_raw: bool,
) -> Result<(), tokio_postgres::Error> {
    let line = row.line as i64;
    let hash = row.row_hash.as_slice();
    let flags: Vec<&str> = row.flags.iter().map(|f| f.as_str()).collect();
    let raw = keep_raw.then(|| raw_text(&row.raw));
    let raw_text_value = raw.as_ref().map(|(t, _)| t.as_str());
    let values: Vec<PgValue> = row.values.iter().map(PgValue).collect();
    let none_text: Option<&str> = None;
    let none_bytes: Option<&[u8]> = None;
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(values.len() + 10);
    params.extend([&line as &(dyn ToSql + Sync), &row.person_id, &hash]);
    params.extend(values.iter().map(|v| v as &(dyn ToSql + Sync)));
    params.extend([
        &flags as &(dyn ToSql + Sync),
        &row.raw_values,
        &row.extras,
        &none_text,
        &none_text,
        &raw_text_value,
        &none_bytes,
    ]);
    writer.write(&params).await
}

async fn write_quarantined(
    writer: std::pin::Pin<&mut BinaryCopyInWriter>,
    q: &QuarantinedRow,
    nulls: &[medrec_core::Value],
) -> Result<(), tokio_postgres::Error> {
    let line = q.line as i64;
    let (text, bytes) = raw_text(&q.raw);
    let none_i64: Option<i64> = None;
    let none_bytes: Option<&[u8]> = None;
    let none_flags: Option<Vec<&str>> = None;
    let none_json: Option<serde_json::Value> = None;
    let values: Vec<PgValue> = nulls.iter().map(PgValue).collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(values.len() + 10);
    params.extend([&line as &(dyn ToSql + Sync), &none_i64, &none_bytes]);
    params.extend(values.iter().map(|v| v as &(dyn ToSql + Sync)));
    let reason = q.reason.as_str();
    params.extend([
        &none_flags as &(dyn ToSql + Sync),
        &none_json,
        &none_json,
        &reason,
        &q.column,
        &text,
        &bytes,
    ]);
    writer.write(&params).await
}

struct StageCounts {
    loaded: i64,
    conflicts: i64,
    persons: Vec<i64>,
}

/// Set-based moves from the staging table into persons, the clean table and quarantine.
async fn move_from_stage(
    tx: &Transaction<'_>,
    table: Table,
    run_id: i64,
) -> Result<StageCounts, tokio_postgres::Error> {
    let columns: Vec<&str> = table.clean_columns().iter().map(|c| c.name).collect();
    let clean_columns = columns.join(", ");
    // In key order, so that concurrent loads (one per table) lock person keys in the same order
    // and wait for each other instead of deadlocking.
    tx.execute(
        "INSERT INTO person (person_id, first_run_id)
         SELECT DISTINCT person_id, $1::bigint FROM stage WHERE q_reason IS NULL
         ORDER BY person_id
         ON CONFLICT (person_id) DO NOTHING",
        &[&run_id],
    )
    .await?;
    // Primary keys drop exact duplicates (same row_hash) within the file and across files;
    // ORDER BY keeps the first occurrence's line as the row's lineage.
    let loaded = tx
        .execute(
            &format!(
                "INSERT INTO {table} (person_id, row_hash, {clean_columns}, run_id, source_line, flags, raw_values, extras)
                 SELECT person_id, row_hash, {clean_columns}, $1::bigint, line, flags, raw_values, extras
                 FROM stage WHERE q_reason IS NULL ORDER BY line
                 ON CONFLICT DO NOTHING"
            ),
            &[&run_id],
        )
        .await? as i64;
    let conflicts = if let Some(key) = table.spec().natural_key {
        tx.execute(
            &format!(
                "INSERT INTO quarantine (run_id, source_line, reason, column_name, raw_line)
                 SELECT $1::bigint, s.line, $2::text, $3::text, s.raw_text
                 FROM stage s JOIN {table} c ON c.{key} = s.{key}
                 WHERE s.q_reason IS NULL AND c.row_hash <> s.row_hash"
            ),
            &[&run_id, &Reason::ConflictingId.as_str(), &key],
        )
        .await? as i64
    } else {
        0
    };
    tx.execute(
        "INSERT INTO quarantine (run_id, source_line, reason, column_name, raw_line, raw_bytes)
         SELECT $1::bigint, line, q_reason, q_column, raw_text, raw_bytes
         FROM stage WHERE q_reason IS NOT NULL",
        &[&run_id],
    )
    .await?;
    // One array value, not a row per person: a file of a million persons would otherwise
    // hold a million decoded rows in memory at once.
    let persons: Vec<i64> = tx
        .query_one(
            "SELECT coalesce(array_agg(DISTINCT person_id ORDER BY person_id), '{}')
             FROM stage WHERE q_reason IS NULL",
            &[],
        )
        .await?
        .get(0);
    Ok(StageCounts {
        loaded,
        conflicts,
        persons,
    })
}
