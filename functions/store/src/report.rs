//! The data behind the quality report (`medrec report`, `GET /report`): what each load did, why
//! rows were quarantined and where, which quality flags the cleaners raised, a scorecard per
//! source, feature coverage and distributions, and the trend over loads. Counts, reasons, flags,
//! line numbers and ids only: no record value is read unless `show_values` asks for the most
//! common repaired source values (a trusted environment's choice).
//!
//! Every section is one set-based query (a scan or an aggregate), never a query per run or row.

use chrono::{DateTime, Utc};
use medrec_core::features::{FeatureKind, FEATURES};
use medrec_core::Table;
use serde::Serialize;
use tokio_postgres::Client;

/// The most recent loads listed one by one (the totals cover them all).
pub const LOADS_LISTED: i64 = 200;
/// The most recent loads the trend charts: a vendor feed makes runs by the million, and a page
/// must stay a page.
pub const TREND_LOADS: i64 = 500;
/// Runs shown per table and quarantine reason (those with the most such rows); the reason's
/// totals cover every run.
pub const RUNS_PER_REASON: i64 = 5;
/// Line numbers shown per run and quarantine reason.
pub const LINES_SHOWN: i32 = 20;
/// Buckets of each numeric feature's histogram.
pub const HISTOGRAM_BUCKETS: i32 = 20;

#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    pub generated_at: DateTime<Utc>,
    pub totals: Totals,
    pub loads: Vec<Load>,
    pub quarantine: Vec<QuarantineGroup>,
    pub flags: Vec<FlagCount>,
    pub sources: Vec<SourceScore>,
    pub vendor_files: Vec<VendorOutcome>,
    pub features: Vec<FeatureCoverage>,
    pub trend: Vec<TrendPoint>,
    /// Only with `show_values`: the most common source values behind repairs, per column.
    pub values: Vec<ValueCount>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub runs: i64,
    pub failed_runs: i64,
    pub persons: i64,
    pub raw_rows: i64,
    pub loaded_rows: i64,
    pub duplicate_rows: i64,
    pub quarantined_rows: i64,
    pub tables: Vec<TableTotals>,
}

/// One clean table: its rows now, and what its loads read.
#[derive(Debug, Clone, Serialize)]
pub struct TableTotals {
    pub table: String,
    pub clean_rows: i64,
    pub loads: i64,
    pub raw_rows: i64,
    pub duplicate_rows: i64,
    pub quarantined_rows: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub run_id: i64,
    pub table: String,
    pub source: String,
    pub status: String,
    /// Why a failed run failed (the store's safe summary: never a record value).
    pub error: Option<String>,
    pub raw_rows: i64,
    pub loaded_rows: i64,
    pub duplicate_rows: i64,
    pub quarantined_rows: i64,
    pub started_at: DateTime<Utc>,
    pub seconds: Option<f64>,
}

impl Load {
    pub fn rows_per_second(&self) -> Option<f64> {
        self.seconds
            .filter(|s| *s > 0.0)
            .map(|s| self.raw_rows as f64 / s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineGroup {
    pub table: String,
    pub reason: String,
    pub run_id: i64,
    pub rows: i64,
    /// The first [`LINES_SHOWN`] line numbers of the run's file.
    pub lines: Vec<i64>,
    /// The reason's rows and runs in the table, over every run.
    pub reason_rows: i64,
    pub reason_runs: i64,
}

/// One flag on one source column of a table, over its loaded runs: the rows the cleaner kept
/// with it (duplicates included, as cleaned).
#[derive(Debug, Clone, Serialize)]
pub struct FlagCount {
    pub table: String,
    /// The source column; `None` for runs loaded before columns were recorded (migration 0015).
    pub column: Option<String>,
    pub flag: String,
    pub rows: i64,
    /// Of the rows the cleaner kept from the table's loaded runs.
    pub rate: f64,
}

/// One source: the directory (or S3 prefix) its files came from.
#[derive(Debug, Clone, Serialize)]
pub struct SourceScore {
    pub source: String,
    pub files: i64,
    pub failed_files: i64,
    pub raw_rows: i64,
    pub duplicate_share: f64,
    pub quarantine_rate: f64,
    /// Rows the cleaner kept from this source with at least one quality flag, of those rows.
    pub flagged_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VendorOutcome {
    pub vendor: String,
    pub status: String,
    pub reason: Option<String>,
    pub files: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureCoverage {
    pub name: String,
    pub kind: String,
    pub description: String,
    pub persons: i64,
    pub non_null: i64,
    /// Numeric features only: equal-width buckets from min to max.
    pub histogram: Option<Histogram>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Histogram {
    pub min: f64,
    pub max: f64,
    pub counts: Vec<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub run_id: i64,
    pub table: String,
    pub started_at: DateTime<Utc>,
    pub raw_rows: i64,
    pub quarantine_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ValueCount {
    pub table: String,
    pub column: String,
    pub value: String,
    pub rows: i64,
}

/// `sql_of(table)` for every clean table, as one `UNION ALL`.
fn per_table(sql_of: impl Fn(&str) -> String) -> String {
    Table::ALL
        .iter()
        .map(|t| sql_of(t.name()))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// The `ingest_run` columns a [`Load`] is read from ([`load_of`]).
const LOAD_COLUMNS: &str = "run_id, table_name, source, status, error, raw_rows, loaded_rows,
    duplicate_rows, quarantined_rows, started_at,
    extract(epoch FROM finished_at - started_at)::float8";

fn load_of(r: &tokio_postgres::Row) -> Load {
    Load {
        run_id: r.get(0),
        table: r.get(1),
        source: r.get(2),
        status: r.get(3),
        error: r.get(4),
        raw_rows: r.get(5),
        loaded_rows: r.get(6),
        duplicate_rows: r.get(7),
        quarantined_rows: r.get(8),
        started_at: r.get(9),
        seconds: r.get(10),
    }
}

fn share(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    }
}

/// Gathers the report, in one repeatable-read snapshot so its sections agree.
pub async fn gather(
    client: &mut Client,
    show_values: bool,
) -> Result<QualityReport, tokio_postgres::Error> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let report = QualityReport {
        generated_at: Utc::now(),
        totals: totals(&tx).await?,
        loads: loads(&tx).await?,
        quarantine: quarantine(&tx).await?,
        flags: flags(&tx).await?,
        sources: sources(&tx).await?,
        vendor_files: vendor_files(&tx).await?,
        features: features(&tx).await?,
        trend: trend(&tx).await?,
        values: if show_values {
            values(&tx).await?
        } else {
            Vec::new()
        },
    };
    tx.commit().await?;
    Ok(report)
}

async fn totals(tx: &tokio_postgres::Transaction<'_>) -> Result<Totals, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE status = 'failed'),
                    coalesce(sum(raw_rows), 0)::bigint, coalesce(sum(loaded_rows), 0)::bigint,
                    coalesce(sum(duplicate_rows), 0)::bigint,
                    coalesce(sum(quarantined_rows), 0)::bigint,
                    (SELECT count(*) FROM person)
             FROM ingest_run",
            &[],
        )
        .await?;
    let clean = per_table(|t| format!("SELECT '{t}'::text AS table_name, count(*) AS n FROM {t}"));
    let tables = tx
        .query(
            &format!(
                "SELECT c.table_name, c.n, count(i.run_id), coalesce(sum(i.raw_rows), 0)::bigint,
                        coalesce(sum(i.duplicate_rows), 0)::bigint,
                        coalesce(sum(i.quarantined_rows), 0)::bigint
                 FROM ({clean}) c
                 LEFT JOIN ingest_run i ON i.table_name = c.table_name AND i.status = 'loaded'
                 GROUP BY c.table_name, c.n"
            ),
            &[],
        )
        .await?;
    let tables = Table::ALL
        .iter()
        .filter_map(|t| tables.iter().find(|r| r.get::<_, &str>(0) == t.name()))
        .map(|r| TableTotals {
            table: r.get(0),
            clean_rows: r.get(1),
            loads: r.get(2),
            raw_rows: r.get(3),
            duplicate_rows: r.get(4),
            quarantined_rows: r.get(5),
        })
        .collect();
    Ok(Totals {
        runs: row.get(0),
        failed_runs: row.get(1),
        raw_rows: row.get(2),
        loaded_rows: row.get(3),
        duplicate_rows: row.get(4),
        quarantined_rows: row.get(5),
        persons: row.get(6),
        tables,
    })
}

async fn loads(tx: &tokio_postgres::Transaction<'_>) -> Result<Vec<Load>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {LOAD_COLUMNS} FROM ingest_run WHERE status <> 'loading'
         ORDER BY run_id DESC LIMIT $1"
    );
    Ok(tx
        .query(&sql, &[&LOADS_LISTED])
        .await?
        .iter()
        .map(load_of)
        .collect())
}

async fn quarantine(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<QuarantineGroup>, tokio_postgres::Error> {
    Ok(tx
        .query(
            "WITH per_run AS (
                 SELECT i.table_name, q.reason, q.run_id, count(*) AS n,
                        (array_agg(q.source_line ORDER BY q.source_line))[1:$1] AS lines
                 FROM quarantine q JOIN ingest_run i USING (run_id)
                 GROUP BY 1, 2, 3),
             ranked AS (
                 SELECT *, row_number() OVER w AS k, sum(n) OVER w_all AS reason_rows,
                        count(*) OVER w_all AS reason_runs
                 FROM per_run
                 WINDOW w AS (PARTITION BY table_name, reason ORDER BY n DESC, run_id),
                        w_all AS (PARTITION BY table_name, reason))
             SELECT table_name, reason, run_id, n, lines, reason_rows::bigint, reason_runs
             FROM ranked WHERE k <= $2 ORDER BY 1, 2, k",
            &[&LINES_SHOWN, &RUNS_PER_REASON],
        )
        .await?
        .iter()
        .map(|r| QuarantineGroup {
            table: r.get(0),
            reason: r.get(1),
            run_id: r.get(2),
            rows: r.get(3),
            lines: r.get(4),
            reason_rows: r.get(5),
            reason_runs: r.get(6),
        })
        .collect())
}

async fn flags(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<FlagCount>, tokio_postgres::Error> {
    // The per-run tallies of the loaded runs (migration 0015): a few rows per run, whatever
    // the tables hold.
    Ok(tx
        .query(
            "WITH cleaned AS (
                 SELECT table_name, sum(cleaned_rows)::bigint AS rows
                 FROM ingest_run WHERE status = 'loaded' GROUP BY table_name)
             SELECT i.table_name, f.column_name, f.flag, sum(f.rows)::bigint, c.rows
             FROM ingest_run_flag f
             JOIN ingest_run i USING (run_id)
             JOIN cleaned c USING (table_name)
             WHERE i.status = 'loaded'
             GROUP BY i.table_name, f.column_name, f.flag, c.rows
             ORDER BY 1, 4 DESC, 3, 2",
            &[],
        )
        .await?
        .iter()
        .map(|r| FlagCount {
            table: r.get(0),
            column: r.get(1),
            flag: r.get(2),
            rows: r.get(3),
            rate: share(r.get(3), r.get::<_, Option<i64>>(4).unwrap_or(0)),
        })
        .collect())
}

/// A source is the directory or S3 prefix of its files (`s3://bucket/raw/labs`, `data/feed-a`).
async fn sources(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<SourceScore>, tokio_postgres::Error> {
    let sql = "SELECT regexp_replace(source, '/[^/]*$', '') AS source, count(*),
                count(*) FILTER (WHERE status = 'failed'),
                sum(raw_rows)::bigint, sum(duplicate_rows)::bigint,
                sum(quarantined_rows)::bigint,
                coalesce(sum(flagged_rows), 0)::bigint, coalesce(sum(cleaned_rows), 0)::bigint
         FROM ingest_run
         WHERE status <> 'loading'
         GROUP BY 1 ORDER BY 1";
    Ok(tx
        .query(sql, &[])
        .await?
        .iter()
        .map(|r| {
            let raw: i64 = r.get(3);
            SourceScore {
                source: r.get(0),
                files: r.get(1),
                failed_files: r.get(2),
                raw_rows: raw,
                duplicate_share: share(r.get(4), raw),
                quarantine_rate: share(r.get(5), raw),
                flagged_rate: share(r.get(6), r.get(7)),
            }
        })
        .collect())
}

async fn vendor_files(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<VendorOutcome>, tokio_postgres::Error> {
    Ok(tx
        .query(
            "SELECT coalesce(vendor_id, '(unknown)'), status, reason, count(*)
             FROM vendor_file GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            &[],
        )
        .await?
        .iter()
        .map(|r| VendorOutcome {
            vendor: r.get(0),
            status: r.get(1),
            reason: r.get(2),
            files: r.get(3),
        })
        .collect())
}

async fn features(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<FeatureCoverage>, tokio_postgres::Error> {
    let counts = FEATURES
        .iter()
        .map(|f| format!("count({})", f.name))
        .collect::<Vec<_>>()
        .join(", ");
    let row = tx
        .query_one(
            &format!("SELECT count(*), {counts} FROM person_features"),
            &[],
        )
        .await?;
    let persons: i64 = row.get(0);
    let mut out = Vec::with_capacity(FEATURES.len());
    for (i, feature) in FEATURES.iter().enumerate() {
        let histogram = match feature.kind {
            FeatureKind::Int | FeatureKind::Float => histogram(tx, feature.name).await?,
            _ => None,
        };
        out.push(FeatureCoverage {
            name: feature.name.to_owned(),
            kind: feature.kind.name().to_owned(),
            description: feature.description.to_owned(),
            persons,
            non_null: row.get(i + 1),
            histogram,
        });
    }
    Ok(out)
}

/// Equal-width buckets between the column's min and max (one bucket when they are equal).
async fn histogram(
    tx: &tokio_postgres::Transaction<'_>,
    column: &str,
) -> Result<Option<Histogram>, tokio_postgres::Error> {
    let sql = format!(
        "WITH v AS (SELECT {column}::float8 AS x FROM person_features WHERE {column} IS NOT NULL),
              r AS (SELECT min(x) AS lo, max(x) AS hi FROM v)
         SELECT r.lo, r.hi,
                CASE WHEN r.hi > r.lo
                     THEN least(width_bucket(v.x, r.lo, r.hi, $1), $1) ELSE 1 END AS b,
                count(*)
         FROM v CROSS JOIN r GROUP BY 1, 2, 3 ORDER BY 3"
    );
    let rows = tx.query(&sql, &[&HISTOGRAM_BUCKETS]).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let (min, max): (f64, f64) = (first.get(0), first.get(1));
    let buckets = if max > min { HISTOGRAM_BUCKETS } else { 1 };
    let mut counts = vec![0; buckets as usize];
    for row in &rows {
        let bucket: i32 = row.get(2);
        counts[(bucket.clamp(1, buckets) - 1) as usize] += row.get::<_, i64>(3);
    }
    Ok(Some(Histogram { min, max, counts }))
}

/// The newest [`TREND_LOADS`] loads, oldest first.
async fn trend(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<TrendPoint>, tokio_postgres::Error> {
    Ok(tx
        .query(
            "SELECT * FROM (
                 SELECT run_id, table_name, started_at, raw_rows, quarantined_rows
                 FROM ingest_run WHERE status = 'loaded' ORDER BY run_id DESC LIMIT $1) newest
             ORDER BY run_id",
            &[&TREND_LOADS],
        )
        .await?
        .iter()
        .map(|r| {
            let raw: i64 = r.get(3);
            TrendPoint {
                run_id: r.get(0),
                table: r.get(1),
                started_at: r.get(2),
                raw_rows: raw,
                quarantine_rate: share(r.get(4), raw),
            }
        })
        .collect())
}

/// The five most common source values behind each repaired column (`raw_values`).
async fn values(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<ValueCount>, tokio_postgres::Error> {
    let union = per_table(|t| {
        format!(
            "(SELECT '{t}'::text AS table_name, e.key AS col, e.value #>> '{{}}' AS val,
                     count(*) AS n
              FROM {t} CROSS JOIN LATERAL jsonb_each(raw_values) AS e
              WHERE raw_values IS NOT NULL GROUP BY 2, 3)"
        )
    });
    let sql = format!(
        "SELECT table_name, col, val, n FROM (
             SELECT *, row_number() OVER (PARTITION BY table_name, col ORDER BY n DESC, val) AS k
             FROM ({union}) u) ranked
         WHERE k <= 5 ORDER BY 1, 2, 4 DESC"
    );
    Ok(tx
        .query(&sql, &[])
        .await?
        .iter()
        .map(|r| ValueCount {
            table: r.get(0),
            column: r.get(1),
            value: r.get::<_, Option<String>>(2).unwrap_or_default(),
            rows: r.get(3),
        })
        .collect())
}

/// One ingest run as `GET /runs/{id}` serves it: its counts, its quarantine by reason (with the
/// first line numbers), and the receipts of the objects that named it.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub load: Load,
    pub source_version: Option<String>,
    pub sha256: Option<String>,
    pub bytes: Option<i64>,
    pub finished_at: Option<DateTime<Utc>>,
    pub rows_per_second: Option<f64>,
    pub quarantine: Vec<RunQuarantine>,
    pub receipts: Vec<crate::receipts::Listed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunQuarantine {
    pub reason: String,
    pub rows: i64,
    pub lines: Vec<i64>,
}

/// The run, or `None` when there is no such run (or it is still loading, which no one else sees).
pub async fn run_detail(
    client: &Client,
    run_id: i64,
) -> Result<Option<RunDetail>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {LOAD_COLUMNS}, source_version, sha256, bytes, finished_at
         FROM ingest_run WHERE run_id = $1 AND status <> 'loading'"
    );
    let Some(r) = client.query_opt(&sql, &[&run_id]).await? else {
        return Ok(None);
    };
    let load = load_of(&r);
    let quarantine = client
        .query(
            "SELECT reason, count(*), (array_agg(source_line ORDER BY source_line))[1:$2]
             FROM quarantine WHERE run_id = $1 GROUP BY reason ORDER BY 2 DESC, 1",
            &[&run_id, &LINES_SHOWN],
        )
        .await?
        .iter()
        .map(|q| RunQuarantine {
            reason: q.get(0),
            rows: q.get(1),
            lines: q.get(2),
        })
        .collect();
    let receipts = crate::receipts::of_run(client, run_id).await?;
    Ok(Some(RunDetail {
        rows_per_second: load.rows_per_second(),
        load,
        source_version: r.get(11),
        sha256: r.get(12),
        bytes: r.get(13),
        finished_at: r.get(14),
        quarantine,
        receipts,
    }))
}
