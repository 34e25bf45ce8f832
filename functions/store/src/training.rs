//! Training sets: every feature of each spine row (a person and a cutoff) as of that row's
//! cutoff, a point-in-time join done by the one feature definition (`person_features_at`,
//! migrations/definitions/R__30_features.sql), optionally over the tables as they were known at
//! an instant (`<table>_known_at`, R__20_events.sql). docs/features.md has the contract.
//!
//! The spine goes to the session's temporary table by COPY, the features come back as one
//! streamed query in spine order: set-based whatever the spine's size, memory flat on both
//! sides.

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::{SinkExt, Stream, StreamExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, CopyInSink, Row};

use crate::features::{to_features, PersonFeatures};

/// The session's spine table: `spine_row` numbers the rows from 1 in spine order.
const SPINE_TABLE: &str = "pg_temp.training_spine";

/// Bytes of COPY text buffered before a send.
const COPY_CHUNK: usize = 256 * 1024;

/// A spine with at most this many distinct persons restricts every table to them (index reads);
/// a larger one reads the tables whole (hash joins), which is cheaper past this size.
const PERSON_FILTER_MAX: i64 = 100_000;

/// The spine being written to the session's temporary table.
pub struct SpineWriter {
    sink: std::pin::Pin<Box<CopyInSink<bytes::Bytes>>>,
    buffer: BytesMut,
    rows: i64,
}

/// Creates (or empties) the session's spine table and starts its COPY.
pub async fn begin_spine(client: &Client) -> Result<SpineWriter, tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {SPINE_TABLE};
             CREATE TEMPORARY TABLE training_spine (
                 spine_row bigint PRIMARY KEY,
                 person_id bigint NOT NULL,
                 cutoff    date NOT NULL
             )"
        ))
        .await?;
    let sink = client
        .copy_in(&format!(
            "COPY {SPINE_TABLE} (spine_row, person_id, cutoff) FROM STDIN"
        ))
        .await?;
    Ok(SpineWriter {
        sink: Box::pin(sink),
        buffer: BytesMut::with_capacity(COPY_CHUNK + 64),
        rows: 0,
    })
}

impl SpineWriter {
    /// Adds the next spine row (numbered in the order added).
    pub async fn push(
        &mut self,
        person_id: i64,
        cutoff: NaiveDate,
    ) -> Result<(), tokio_postgres::Error> {
        self.rows += 1;
        // Integers and ISO dates: nothing to escape in COPY's text format.
        self.buffer.put_slice(
            format!(
                "{}\t{person_id}\t{}\n",
                self.rows,
                cutoff.format("%Y-%m-%d")
            )
            .as_bytes(),
        );
        if self.buffer.len() >= COPY_CHUNK {
            self.sink.send(self.buffer.split().freeze()).await?;
        }
        Ok(())
    }

    /// Ends the COPY and analyses the table (the planner then knows its size); returns the rows.
    pub async fn finish(mut self, client: &Client) -> Result<i64, tokio_postgres::Error> {
        if !self.buffer.is_empty() {
            self.sink.send(self.buffer.split().freeze()).await?;
        }
        self.sink.as_mut().finish().await?;
        client
            .batch_execute(&format!("ANALYZE {SPINE_TABLE}"))
            .await?;
        Ok(self.rows)
    }
}

/// One access-audit row per distinct person of the session's spine, read by `key_id`
/// (`training_set`, status 200): the persons whose features the training set holds.
pub async fn audit_spine(client: &Client, key_id: &str) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            &format!(
                "INSERT INTO access_audit (route, person_id, key_id, status)
                 SELECT DISTINCT 'training_set', person_id, $1, 200 FROM {SPINE_TABLE}"
            ),
            &[&key_id],
        )
        .await
}

/// What a training set was computed from, for its manifest: enough to reproduce it.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    pub definitions_version: String,
    /// `--known-at`, when the tables were read as known at an instant.
    pub known_at: Option<DateTime<Utc>>,
    /// The latest finish of a loaded run the set could see (at or before `known_at`): the load
    /// high-water mark. `None` when no run could be seen.
    pub loaded_through: Option<DateTime<Utc>>,
    /// Loaded runs the set could see.
    pub runs: i64,
}

/// The definitions version and the loads visible at `known_at` (now when `None`).
pub async fn provenance(
    client: &Client,
    known_at: Option<DateTime<Utc>>,
) -> Result<Provenance, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT feature_definitions_version(), max(finished_at), count(*)
             FROM ingest_run
             WHERE status = 'loaded' AND ($1::timestamptz IS NULL OR finished_at <= $1)",
            &[&known_at],
        )
        .await?;
    Ok(Provenance {
        definitions_version: row.get(0),
        known_at,
        loaded_through: row.get(1),
        runs: row.get(2),
    })
}

/// The features of every row of the spine written by [`begin_spine`], in spine order: one row
/// per spine row, `(spine_row, features)`. A person with no event on or before the row's cutoff
/// (or unknown) has every feature NULL.
pub async fn features_at_cutoffs(
    client: &Client,
    known_at: Option<DateTime<Utc>>,
) -> Result<
    impl Stream<Item = Result<(i64, PersonFeatures), tokio_postgres::Error>>,
    tokio_postgres::Error,
> {
    let statement = format!(
        "SELECT person_id, {features}, spine_row
         FROM person_features_at(
             '{SPINE_TABLE}'::regclass,
             (SELECT CASE WHEN count(DISTINCT person_id) <= {PERSON_FILTER_MAX}
                          THEN array_agg(DISTINCT person_id) END
              FROM {SPINE_TABLE}),
             NULL, $1, false)
         ORDER BY spine_row",
        features = crate::features::select_list(""),
    );
    let rows = client
        .query_raw(&statement, [&known_at as &(dyn ToSql + Sync)])
        .await?;
    Ok(rows.map(|row| row.map(|row: Row| (spine_row(&row), to_features(&row)))))
}

fn spine_row(row: &Row) -> i64 {
    row.get(row.len() - 1)
}
