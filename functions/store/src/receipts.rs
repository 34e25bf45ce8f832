//! The ledger of every object that reached medrec and what became of it
//! (migrations/0009_object_receipt.sql): one row per attempt, whatever the outcome, so that an
//! upload never leaves no trace.

use chrono::{DateTime, Utc};
use medrec_core::Table;
use tokio_postgres::Client;

/// What became of one object (one attempt).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// Cleaned and loaded (a CSV run, or a vendor file that replaced the person's rows).
    Loaded,
    /// This version or content was loaded before: nothing written, its persons announced again.
    AlreadyLoaded,
    /// A vendor file not newer than the stored version.
    Ignored,
    /// Permanently bad, with a reason (an unusable CSV, a bad vendor file): not retried.
    Rejected,
    /// A failure worth retrying (a read or database error): the next attempt has its own row.
    Failed,
    /// Overwritten or deleted since it was announced: the newer object has its own row.
    Superseded,
    /// Under no known prefix or table, or sent to a function that does not take it.
    Refused,
}

impl Outcome {
    pub const ALL: &'static [Outcome] = <Outcome as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One row to record.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub source: String,
    pub version: Option<String>,
    /// `csv` or `vendor`, when known.
    pub kind: Option<&'static str>,
    pub table: Option<Table>,
    pub outcome: Outcome,
    /// Why (for rejected, failed and refused objects), never a record value.
    pub reason: Option<String>,
    pub run_id: Option<i64>,
    pub file_id: Option<i64>,
    pub persons: usize,
}

/// Appends one receipt; returns its id.
pub async fn record(client: &Client, receipt: &Receipt) -> Result<i64, tokio_postgres::Error> {
    let table = receipt.table.map(Table::name);
    let persons = i32::try_from(receipt.persons).unwrap_or(i32::MAX);
    Ok(client
        .query_one(
            "INSERT INTO object_receipt
                 (source, source_version, kind, table_name, outcome, reason, run_id, file_id, persons)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING receipt_id",
            &[
                &receipt.source,
                &receipt.version,
                &receipt.kind,
                &table,
                &receipt.outcome.as_str(),
                &receipt.reason,
                &receipt.run_id,
                &receipt.file_id,
                &persons,
            ],
        )
        .await?
        .get(0))
}

/// A receipt as listed, with its run's row counts where it has a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub receipt_id: i64,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub source_version: Option<String>,
    pub kind: Option<String>,
    pub table: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub run_id: Option<i64>,
    pub file_id: Option<i64>,
    pub persons: i32,
    pub raw_rows: Option<i64>,
    pub loaded_rows: Option<i64>,
    pub duplicate_rows: Option<i64>,
    pub quarantined_rows: Option<i64>,
}

/// Every receipt's columns, with its run's (or vendor file's runs') row counts where loaded.
const LISTED: &str = "SELECT r.receipt_id, r.received_at, r.source, r.source_version, r.kind,
        r.table_name, r.outcome, r.reason, r.run_id, r.file_id, r.persons,
        coalesce(i.raw_rows, f.raw_rows), coalesce(i.loaded_rows, f.loaded_rows),
        coalesce(i.duplicate_rows, f.duplicate_rows),
        coalesce(i.quarantined_rows, f.quarantined_rows)
 FROM object_receipt r
 LEFT JOIN ingest_run i ON i.run_id = r.run_id AND r.outcome = 'loaded'
 LEFT JOIN vendor_file v ON v.file_id = r.file_id AND r.outcome = 'loaded'
 LEFT JOIN LATERAL (
     SELECT sum(raw_rows)::bigint AS raw_rows, sum(loaded_rows)::bigint AS loaded_rows,
            sum(duplicate_rows)::bigint AS duplicate_rows,
            sum(quarantined_rows)::bigint AS quarantined_rows
     FROM ingest_run WHERE run_id = ANY (v.run_ids)
 ) f ON v.file_id IS NOT NULL";

fn listed(r: &tokio_postgres::Row) -> Listed {
    Listed {
        receipt_id: r.get(0),
        received_at: r.get(1),
        source: r.get(2),
        source_version: r.get(3),
        kind: r.get(4),
        table: r.get(5),
        outcome: r.get(6),
        reason: r.get(7),
        run_id: r.get(8),
        file_id: r.get(9),
        persons: r.get(10),
        raw_rows: r.get(11),
        loaded_rows: r.get(12),
        duplicate_rows: r.get(13),
        quarantined_rows: r.get(14),
    }
}

/// The newest `limit` receipts, newest first (optionally only one outcome).
pub async fn recent(
    client: &Client,
    limit: i64,
    outcome: Option<Outcome>,
) -> Result<Vec<Listed>, tokio_postgres::Error> {
    let outcome = outcome.map(Outcome::as_str);
    let sql = format!(
        "{LISTED} WHERE $2::text IS NULL OR r.outcome = $2
         ORDER BY r.received_at DESC, r.receipt_id DESC LIMIT $1"
    );
    let rows = client.query(&sql, &[&limit, &outcome]).await?;
    Ok(rows.iter().map(listed).collect())
}

/// The receipts that name an ingest run (the load, then each "already loaded"), oldest first.
pub async fn of_run(client: &Client, run_id: i64) -> Result<Vec<Listed>, tokio_postgres::Error> {
    let sql =
        format!("{LISTED} WHERE r.run_id = $1 ORDER BY r.received_at, r.receipt_id LIMIT 100");
    let rows = client.query(&sql, &[&run_id]).await?;
    Ok(rows.iter().map(listed).collect())
}
