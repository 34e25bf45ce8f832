//! Loading one raw file: clean it while streaming, binary COPY into a staging table, then
//! insert into the clean table, all in one transaction. A failed file leaves nothing but a
//! `failed` ingest_run row behind.
//!
//! The bulk path: when the clean table holds no rows at all (every first load), the rows are
//! COPYed straight into it, each written once, duplicates dropped here ([`RowKeys`]: within a
//! file grouped by person, the current person's row hashes); their persons are inserted after
//! them (the person keys are checked at commit). From the first row it cannot judge (a person
//! seen again later, or past [`BulkLimits::keys`]), the rest of the file goes through the
//! staging table, whose `ON CONFLICT` sees the rows already copied; so do quarantined rows (a
//! second COPY after the first).

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
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
/// How far a first load goes on the bulk path (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    /// Whether a load into an empty table may take it at all.
    pub enabled: bool,
    /// Persons passed, rows of one person and natural ids remembered, each at most (the
    /// default fills hash tables of 2^23 slots: at most about 75 MB for the persons of a file
    /// and as much for its natural ids); past it the rest of the file goes through the stage.
    pub keys: usize,
    /// Quarantined rows held until the staging COPY can take them; one more switches the rest
    /// of the file to the staging table at once.
    pub held_quarantine: usize,
}

impl Default for BulkLimits {
    fn default() -> Self {
        BulkLimits {
            enabled: true,
            keys: 7_340_032,
            held_quarantine: 8_192,
        }
    }
}

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
    ingest_with(client, source, input, BulkLimits::default()).await
}

/// [`ingest`] with other bulk-path limits (the tests make them small to cross each switch).
pub async fn ingest_with<R: Read + Send + 'static>(
    client: &mut Client,
    source: Source,
    input: R,
    limits: BulkLimits,
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
    let result = load_in_transaction(client, &source, input, started, limits).await;
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
    limits: BulkLimits,
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

    let mut tx = client
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
    let bulk = limits.enabled
        && bulk_load(&mut tx, table)
            .await
            .map_err(|e| db_error(source, e))?;
    tx.batch_execute(&stage_ddl(columns))
        .await
        .map_err(|e| db_error(source, e))?;

    let (sender, receiver) = mpsc::channel::<Vec<Outcome>>(BATCHES_IN_FLIGHT);
    let cleaning = tokio::task::spawn_blocking(move || clean_into(outcomes, digest, sender));
    let copied = copy_rows(&tx, table, run_id, bulk.then_some(limits), receiver).await;
    let summary = cleaning
        .await
        .expect("cleaning thread panicked")
        .map_err(read_error)?;
    let copied = copied.map_err(|e| db_error(source, e))?;

    let mut counts = move_from_stage(&tx, table, run_id, copied.direct_rows > 0)
        .await
        .map_err(|e| db_error(source, e))?;
    let copied_direct = copied.direct_rows;
    counts.loaded += copied.direct_rows;
    counts.conflicts += copied.conflicts;
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
        copied_straight = copied_direct,
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

/// Whether this load takes the bulk path: the clean table holds no rows, and no other load of
/// it is running (its lock taken without waiting; held to the commit, so that no other writer's
/// row can collide with a copied one). The person keys are then checked at commit.
async fn bulk_load(tx: &mut Transaction<'_>, table: Table) -> Result<bool, tokio_postgres::Error> {
    // (A database not yet migrated to deferrable person keys loads through the stage.)
    let empty = format!(
        "SELECT NOT EXISTS (SELECT 1 FROM {table})
             AND coalesce((SELECT condeferrable FROM pg_constraint
                           WHERE conrelid = '{table}'::regclass
                             AND conname = '{table}_person_id_fkey'), false)"
    );
    if !tx.query_one(&empty, &[]).await?.get::<_, bool>(0) {
        return Ok(false);
    }
    let attempt = tx.savepoint("bulk_lock").await?;
    match attempt
        .batch_execute(&format!(
            "LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE NOWAIT"
        ))
        .await
    {
        Ok(()) => attempt.commit().await?,
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            attempt.rollback().await?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    }
    // Rows committed between the check and the lock: the staging path (the lock stays).
    if !tx.query_one(&empty, &[]).await?.get::<_, bool>(0) {
        return Ok(false);
    }
    tx.batch_execute(&format!("SET CONSTRAINTS {table}_person_id_fkey DEFERRED"))
        .await?;
    Ok(true)
}

/// What the bulk path knows of the rows it copied. A file grouped by person (each person's rows
/// together, as extracts and `medrec generate` write them) needs only the current person's row
/// hashes and the persons already passed; a person seen again later, or more than `limit`
/// persons, rows of one person or natural ids, and what the file holds can no longer be told
/// here: the rest goes through the stage, whose `ON CONFLICT` sees the rows copied. At most
/// about 24 bytes per entry of each set.
struct RowKeys {
    limit: usize,
    current: Option<i64>,
    current_rows: std::collections::HashSet<[u8; 16]>,
    passed: std::collections::HashSet<i64>,
    /// A natural key's first row wins (as the staging path's ORDER BY line): a later row with
    /// the id and other content is a conflict (quarantined, as is every repeat of it).
    natural_ids: std::collections::HashSet<i64>,
}

enum Admit {
    /// Not seen before: to be copied.
    New,
    /// The same row earlier in the file.
    Duplicate,
    /// Its natural id belongs to an earlier row of other content.
    Conflict,
    /// Beyond what is remembered: to the stage.
    Unknowable,
}

impl RowKeys {
    fn new(limit: usize) -> RowKeys {
        RowKeys {
            limit,
            current: None,
            current_rows: Default::default(),
            passed: Default::default(),
            natural_ids: Default::default(),
        }
    }

    fn admit(&mut self, row: &CleanedRow, natural_id: Option<i64>) -> Admit {
        if self.current != Some(row.person_id) {
            if self.passed.contains(&row.person_id) || self.passed.len() >= self.limit {
                return Admit::Unknowable;
            }
            if let Some(previous) = self.current.replace(row.person_id) {
                self.passed.insert(previous);
            }
            self.current_rows.clear();
        }
        if self.current_rows.contains(&row.row_hash) {
            return Admit::Duplicate;
        }
        if self.current_rows.len() >= self.limit {
            return Admit::Unknowable;
        }
        if let Some(id) = natural_id {
            if self.natural_ids.contains(&id) {
                return Admit::Conflict;
            }
            if self.natural_ids.len() >= self.limit {
                return Admit::Unknowable;
            }
            self.natural_ids.insert(id);
        }
        self.current_rows.insert(row.row_hash);
        Admit::New
    }
}

/// A bulk load's next move for one row.
enum Step {
    /// Copied, dropped as a duplicate, or held for the stage.
    Done,
    /// From here on, the staging table (`this_too`: this row as well).
    Stage { this_too: bool },
}

/// What [`copy_rows`] wrote straight into the clean table.
#[derive(Debug, Default)]
struct Copied {
    direct_rows: i64,
    /// Rows whose natural key an earlier row of the file holds with other content (quarantined).
    conflicts: i64,
}

/// One COPY at a time on the transaction: first into the clean table (bulk), then, if needed,
/// into the staging table.
struct Copies<'a, 't> {
    tx: &'a Transaction<'t>,
    table: Table,
    direct: Option<std::pin::Pin<Box<BinaryCopyInWriter>>>,
    stage: Option<std::pin::Pin<Box<BinaryCopyInWriter>>>,
}

impl Copies<'_, '_> {
    async fn stage(
        &mut self,
    ) -> Result<std::pin::Pin<&mut BinaryCopyInWriter>, tokio_postgres::Error> {
        if let Some(mut direct) = self.direct.take() {
            direct.as_mut().finish().await?;
        }
        if self.stage.is_none() {
            let stage = stage_columns(self.table.clean_columns());
            let names: Vec<&str> = stage.iter().map(|(n, _, _)| *n).collect();
            let types: Vec<Type> = stage.iter().map(|(_, _, t)| t.clone()).collect();
            let sink = self
                .tx
                .copy_in(&format!(
                    "COPY stage ({}) FROM STDIN BINARY",
                    names.join(", ")
                ))
                .await?;
            self.stage = Some(Box::pin(BinaryCopyInWriter::new(sink, &types)));
        }
        Ok(self.stage.as_mut().expect("opened above").as_mut())
    }
}

/// The rows into the clean table (bulk: de-duplicated here) or the staging table.
async fn copy_rows(
    tx: &Transaction<'_>,
    table: Table,
    run_id: i64,
    bulk: Option<BulkLimits>,
    mut receiver: mpsc::Receiver<Vec<Outcome>>,
) -> Result<Copied, tokio_postgres::Error> {
    let limits = bulk.unwrap_or_default();
    let columns = table.clean_columns();
    let mut copies = Copies {
        tx,
        table,
        direct: None,
        stage: None,
    };
    if bulk.is_some() {
        let mut types = vec![Type::INT8, Type::BYTEA];
        types.extend(columns.iter().map(|c| pg_type(c.ty)));
        types.extend([
            Type::INT8,
            Type::INT8,
            Type::TEXT_ARRAY,
            Type::JSONB,
            Type::JSONB,
        ]);
        let sink = tx
            .copy_in(&format!(
                "COPY {table} ({}) FROM STDIN BINARY",
                clean_table_columns(table)
            ))
            .await?;
        copies.direct = Some(Box::pin(BinaryCopyInWriter::new(sink, &types)));
    }
    // With a natural key, a conflicting row must be quarantinable with its line.
    let natural_key = table.spec().natural_key;
    let keep_raw = natural_key.is_some();
    let nulls: Vec<medrec_core::Value> = columns.iter().map(|c| null_of(c.ty)).collect();
    let natural_key_index = natural_key.and_then(|key| columns.iter().position(|c| c.name == key));
    let mut keys = RowKeys::new(limits.keys);
    let mut held: Vec<QuarantinedRow> = Vec::new();
    let mut copied = Copied::default();
    while let Some(batch) = receiver.recv().await {
        for outcome in &batch {
            if let Some(direct) = copies.direct.as_mut() {
                let step = match outcome {
                    Outcome::Clean(row) => {
                        let id = natural_key_index.and_then(|i| natural_id(&row.values[i]));
                        match keys.admit(row, id) {
                            Admit::Duplicate => Step::Done,
                            Admit::Unknowable => Step::Stage { this_too: true },
                            Admit::Conflict => {
                                // The first row of this id was copied: this one is quarantined.
                                copied.conflicts += 1;
                                held.push(QuarantinedRow {
                                    line: row.line,
                                    reason: Reason::ConflictingId,
                                    column: natural_key,
                                    raw: row.raw.clone(),
                                });
                                if held.len() >= limits.held_quarantine {
                                    Step::Stage { this_too: false }
                                } else {
                                    Step::Done
                                }
                            }
                            Admit::New => {
                                write_direct(direct.as_mut(), row, run_id).await?;
                                copied.direct_rows += 1;
                                Step::Done
                            }
                        }
                    }
                    Outcome::Quarantined(q) if held.len() < limits.held_quarantine => {
                        held.push(q.clone());
                        Step::Done
                    }
                    Outcome::Quarantined(_) => Step::Stage { this_too: true },
                };
                match step {
                    Step::Done => continue,
                    Step::Stage { this_too } => {
                        // Too many rows to hold: the rest of the file goes to the stage.
                        let stage = copies.stage().await?;
                        flush_held(stage, &mut held, &nulls).await?;
                        if !this_too {
                            continue;
                        }
                    }
                }
            }
            let stage = copies.stage().await?;
            match outcome {
                Outcome::Clean(row) => write_clean(stage, row, keep_raw).await?,
                Outcome::Quarantined(q) => write_quarantined(stage, q, &nulls).await?,
            }
        }
    }
    if let Some(mut direct) = copies.direct.take() {
        direct.as_mut().finish().await?;
    }
    if !held.is_empty() || copies.stage.is_some() {
        let stage = copies.stage().await?;
        flush_held(stage, &mut held, &nulls).await?;
    }
    if let Some(mut stage) = copies.stage.take() {
        stage.as_mut().finish().await?;
    }
    Ok(copied)
}

fn natural_id(value: &medrec_core::Value) -> Option<i64> {
    match value {
        medrec_core::Value::Int8(id) => *id,
        medrec_core::Value::Int4(id) => id.map(i64::from),
        _ => None,
    }
}

async fn flush_held(
    mut stage: std::pin::Pin<&mut BinaryCopyInWriter>,
    held: &mut Vec<QuarantinedRow>,
    nulls: &[medrec_core::Value],
) -> Result<(), tokio_postgres::Error> {
    for q in held.drain(..) {
        write_quarantined(stage.as_mut(), &q, nulls).await?;
    }
    Ok(())
}

/// The clean table's columns as a load writes them, in the order of [`write_direct`]'s values
/// (the bulk path's COPY) and of the staging path's `INSERT ... SELECT`.
fn clean_table_columns(table: Table) -> String {
    let clean: Vec<&str> = table.clean_columns().iter().map(|c| c.name).collect();
    format!(
        "person_id, row_hash, {}, run_id, source_line, flags, raw_values, extras",
        clean.join(", ")
    )
}

/// A clean row as the clean table's own row (the bulk path's COPY).
async fn write_direct(
    writer: std::pin::Pin<&mut BinaryCopyInWriter>,
    row: &CleanedRow,
    run_id: i64,
) -> Result<(), tokio_postgres::Error> {
    let line = row.line as i64;
    let hash = row.row_hash.as_slice();
    let flags: Vec<&str> = row.flags.iter().map(|f| f.as_str()).collect();
    let values: Vec<PgValue> = row.values.iter().map(PgValue).collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(values.len() + 7);
    params.extend([&row.person_id as &(dyn ToSql + Sync), &hash]);
    params.extend(values.iter().map(|v| v as &(dyn ToSql + Sync)));
    params.extend([
        &run_id as &(dyn ToSql + Sync),
        &line,
        &flags,
        &row.raw_values,
        &row.extras,
    ]);
    writer.write(&params).await
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
/// `copied_direct`: rows of this run are in the clean table already (the bulk path), and their
/// persons are inserted here too.
async fn move_from_stage(
    tx: &Transaction<'_>,
    table: Table,
    run_id: i64,
    copied_direct: bool,
) -> Result<StageCounts, tokio_postgres::Error> {
    let columns: Vec<&str> = table.clean_columns().iter().map(|c| c.name).collect();
    let clean_columns = columns.join(", ");
    // What the INSERT below takes anyway, before any person row is held: a bulk load of this
    // table (which holds SHARE ROW EXCLUSIVE, then inserts persons) is waited for here, not
    // while holding persons it will need (a deadlock).
    tx.batch_execute(&format!("LOCK TABLE {table} IN ROW EXCLUSIVE MODE"))
        .await?;
    // The table held no rows before this run's: its rows are this run's only.
    let copied = if copied_direct {
        format!("UNION SELECT person_id FROM {table}")
    } else {
        String::new()
    };
    // In key order, so that concurrent loads (one per table) lock person keys in the same order
    // and wait for each other instead of deadlocking.
    tx.execute(
        &format!(
            "INSERT INTO person (person_id, first_run_id)
             SELECT DISTINCT person_id, $1::bigint
             FROM (SELECT person_id FROM stage WHERE q_reason IS NULL {copied}) p
             ORDER BY person_id
             ON CONFLICT (person_id) DO NOTHING"
        ),
        &[&run_id],
    )
    .await?;
    // Primary keys drop exact duplicates (same row_hash) within the file and across files;
    // ORDER BY keeps the first occurrence's line as the row's lineage.
    let loaded = tx
        .execute(
            &format!(
                "INSERT INTO {table} ({})
                 SELECT person_id, row_hash, {clean_columns}, $1::bigint, line, flags, raw_values, extras
                 FROM stage WHERE q_reason IS NULL ORDER BY line
                 ON CONFLICT DO NOTHING",
                clean_table_columns(table)
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
            &format!(
                "SELECT coalesce(array_agg(DISTINCT person_id ORDER BY person_id), '{{}}')
                 FROM (SELECT person_id FROM stage WHERE q_reason IS NULL {copied}) p"
            ),
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
