//! Feature computation and reads. The definitions are SQL, all in
//! `migrations/definitions/R__30_features.sql`; the column lists here come from the catalogue
//! ([`FEATURES`]).

use chrono::NaiveDate;
use medrec_core::features::{FeatureKind, FEATURES};
use serde_json::{Map, Value as Json};
use tokio_postgres::{Client, Row};

/// The longest a refresh statement may run: about 7x a full recompute at 1M persons on 2 cores
/// (about 80 s measured, docs/performance.md), so a full `medrec features refresh` fits with room
/// to spare, while a statement that can no longer finish usefully (its client gone, a plan gone
/// wrong) is cancelled within 10 minutes instead of holding its locks for hours. The features
/// function refreshes bounded chunks (`medrec_pipeline::REFRESH_CHUNK`), far below it.
pub const REFRESH_STATEMENT_TIMEOUT: &str = "10min";

/// How often the server checks, while a refresh runs, that its client is still connected. A
/// client killed mid-refresh (SIGKILL, a Lambda timeout) would otherwise leave the server running
/// the orphaned statement to its end, racing the run that replaces it.
pub const CLIENT_CONNECTION_CHECK_INTERVAL: &str = "2s";

/// Recomputes the stored features of `persons` (all persons when `None`) in one set-based
/// statement, and settles what they were owed (`features_owed`, in the same transaction); returns
/// the number of rows written. Idempotent: only `computed_at` changes when nothing else did. A row
/// is never replaced by one computed from an older snapshot of the person's records, and
/// overlapping refreshes wait for each other (R__30_features.sql). The statement runs under
/// [`REFRESH_STATEMENT_TIMEOUT`] and [`CLIENT_CONNECTION_CHECK_INTERVAL`], set for its
/// transaction only (the connection may be a pooled one).
pub async fn refresh(
    client: &Client,
    persons: Option<&[i64]>,
) -> Result<i64, tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "BEGIN;
             SET LOCAL statement_timeout = '{REFRESH_STATEMENT_TIMEOUT}';
             SET LOCAL client_connection_check_interval = '{CLIENT_CONNECTION_CHECK_INTERVAL}';"
        ))
        .await?;
    let refreshed = client
        .query_one("SELECT refresh_person_features($1)", &[&persons])
        .await;
    match refreshed {
        Ok(row) => {
            client.batch_execute("COMMIT").await?;
            Ok(row.get(0))
        }
        Err(error) => {
            // Best effort: on a lost connection there is nothing to roll back.
            let _ = client.batch_execute("ROLLBACK").await;
            Err(error)
        }
    }
}

/// Recomputes everyone, as [`refresh`] with `None` does, in one contiguous range of persons per
/// connection, all at once: one statement runs on one server core, so on a server with more the
/// parts run side by side (measured at 1M persons on 2 cores, docs/performance.md). Everyone is
/// every person and every person owed (`features_owed`), as listed on the first connection; a
/// person added meanwhile is owed by its own load, whose refresh covers it. Each part is its own
/// transaction: all are awaited to their commit or rollback, then the first error is returned
/// (the parts that failed stay owed). With one connection it is `refresh(client, None)`.
pub async fn refresh_everyone(clients: &[&Client]) -> Result<i64, tokio_postgres::Error> {
    let Some((first, _)) = clients.split_first() else {
        return Ok(0);
    };
    if clients.len() == 1 {
        return refresh(first, None).await;
    }
    let everyone: Vec<i64> = first
        .query_one(
            "SELECT coalesce(array_agg(person_id ORDER BY person_id), '{}') FROM (
                 SELECT person_id FROM person UNION SELECT person_id FROM features_owed) p",
            &[],
        )
        .await?
        .get(0);
    let part = everyone.len().div_ceil(clients.len()).max(1);
    let results = futures_util::future::join_all(
        everyone
            .chunks(part)
            .zip(clients)
            .map(|(persons, client)| refresh(client, Some(persons))),
    )
    .await;
    results.into_iter().sum()
}

/// The number of persons: exact (a count, tens of milliseconds at 1M persons, nothing beside a
/// refresh), since the planner's estimate lags a load that has just committed.
pub async fn persons_count(client: &Client) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT count(*) FROM person", &[])
        .await?
        .get(0))
}

/// Records that `persons`' features are owed a recompute, in the transaction of the load that
/// changed their records (migrations/0010_features_owed.sql). In person order, so concurrent loads
/// wait for each other instead of deadlocking; call it last before committing, since the rows
/// stay locked until then.
pub async fn owe(
    tx: &tokio_postgres::Transaction<'_>,
    persons: &[i64],
) -> Result<(), tokio_postgres::Error> {
    if persons.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO features_owed (person_id, seq)
         SELECT person_id, nextval('features_owed_seq')
         FROM (SELECT DISTINCT unnest($1::bigint[]) AS person_id) p ORDER BY person_id
         ON CONFLICT (person_id) DO UPDATE SET seq = nextval('features_owed_seq')",
        &[&persons],
    )
    .await?;
    Ok(())
}

/// Up to `limit` persons whose features are owed, oldest change first, among the changes up to
/// `horizon` (all when `None`).
pub async fn owed(
    client: &Client,
    limit: usize,
    horizon: Option<i64>,
) -> Result<Vec<i64>, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT coalesce(array_agg(person_id), '{}') FROM (
                 SELECT person_id FROM features_owed
                 WHERE $2::bigint IS NULL OR seq <= $2
                 ORDER BY seq LIMIT $1) o",
            &[&(limit as i64), &horizon],
        )
        .await?
        .get(0))
}

/// The latest change owed (`features_owed.seq`), if any is: a healing pass that stops there ends
/// even while loads keep adding newer ones (which their own refresh covers).
pub async fn owed_horizon(client: &Client) -> Result<Option<i64>, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT max(seq) FROM features_owed", &[])
        .await?
        .get(0))
}

/// One person's features, keyed by feature name.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonFeatures {
    pub person_id: i64,
    pub values: Map<String, Json>,
}

/// The feature columns in catalogue order, each prefixed (`"f."`, or `""` for none).
pub(crate) fn select_list(prefix: &str) -> String {
    FEATURES
        .iter()
        .map(|f| format!("{prefix}{}", f.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQL type of a feature's column (in `person_features_as_of` and `person_features`).
pub fn sql_type(kind: FeatureKind) -> &'static str {
    match kind {
        FeatureKind::Bool => "boolean",
        FeatureKind::Int => "integer",
        FeatureKind::Float => "double precision",
        FeatureKind::Date => "date",
        FeatureKind::Text => "text",
    }
}

/// The statement of [`read`] and [`stream`]: `$1` the persons (NULL: all), `$2` the as-of date
/// when computing as of one.
fn read_statement(as_of: bool) -> String {
    if as_of {
        format!(
            "SELECT person_id, {} FROM person_features_as_of($1, $2) ORDER BY person_id",
            select_list("")
        )
    } else {
        format!(
            "SELECT person_id, {} FROM person_features
             WHERE $1::bigint[] IS NULL OR person_id = ANY($1) ORDER BY person_id",
            select_list("")
        )
    }
}

/// Features of `persons` (all when `None`): the stored ones, or computed as of a date (only
/// events on or before it), ordered by person.
pub async fn read(
    client: &Client,
    persons: Option<&[i64]>,
    as_of: Option<NaiveDate>,
) -> Result<Vec<PersonFeatures>, tokio_postgres::Error> {
    let rows = match as_of {
        None => client.query(&read_statement(false), &[&persons]).await?,
        Some(date) => {
            client
                .query(&read_statement(true), &[&persons, &date])
                .await?
        }
    };
    Ok(rows.iter().map(to_features).collect())
}

/// [`read`] of everyone, streamed in person order: memory stays flat however many persons.
pub async fn stream(
    client: &Client,
    as_of: Option<NaiveDate>,
) -> Result<
    impl futures_util::Stream<Item = Result<PersonFeatures, tokio_postgres::Error>>,
    tokio_postgres::Error,
> {
    use futures_util::StreamExt;
    use tokio_postgres::types::ToSql;
    let everyone: Option<&[i64]> = None;
    let rows = match &as_of {
        None => {
            client
                .query_raw(&read_statement(false), [&everyone as &(dyn ToSql + Sync)])
                .await?
        }
        Some(date) => {
            client
                .query_raw(
                    &read_statement(true),
                    [
                        &everyone as &(dyn ToSql + Sync),
                        date as &(dyn ToSql + Sync),
                    ],
                )
                .await?
        }
    };
    Ok(rows.map(|row| row.map(|row| to_features(&row))))
}

pub(crate) fn to_features(row: &Row) -> PersonFeatures {
    let mut values = Map::new();
    for (i, feature) in FEATURES.iter().enumerate() {
        let column = i + 1;
        let value = match feature.kind {
            FeatureKind::Bool => row.get::<_, Option<bool>>(column).map(Json::from),
            FeatureKind::Int => row.get::<_, Option<i32>>(column).map(Json::from),
            FeatureKind::Float => row.get::<_, Option<f64>>(column).map(Json::from),
            FeatureKind::Date => row
                .get::<_, Option<NaiveDate>>(column)
                .map(|d| Json::from(d.to_string())),
            FeatureKind::Text => row.get::<_, Option<String>>(column).map(Json::from),
        };
        values.insert(feature.name.to_owned(), value.unwrap_or(Json::Null));
    }
    PersonFeatures {
        person_id: row.get(0),
        values,
    }
}

/// Counts for the report printed after loading.
pub async fn summary(client: &Client) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*),
                    count(*) FILTER (WHERE taking_alpha_blockers),
                    count(*) FILTER (WHERE NOT taking_alpha_blockers),
                    count(*) FILTER (WHERE taking_alpha_blockers IS NULL),
                    count(hgb_latest), round(avg(hgb_latest)::numeric, 1)::text,
                    count(encounters_6m), round(avg(encounters_6m)::numeric, 1)::text,
                    max(definitions_version)
             FROM person_features",
            &[],
        )
        .await?;
    let n = |i: usize| row.get::<_, i64>(i).to_string();
    let t = |i: usize| {
        row.get::<_, Option<String>>(i)
            .unwrap_or_else(|| "-".into())
    };
    Ok(vec![
        ("persons".into(), n(0)),
        (
            "taking_alpha_blockers".into(),
            format!("true {}, false {}, no rx {}", n(1), n(2), n(3)),
        ),
        (
            "hgb_latest".into(),
            format!("{} persons, mean {} g/dL", n(4), t(5)),
        ),
        (
            "encounters_6m".into(),
            format!("{} persons, mean {}", n(6), t(7)),
        ),
        ("definitions_version".into(), t(8)),
    ])
}

/// One person's features as the API serves them.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDocument {
    pub features: PersonFeatures,
    pub definitions_version: String,
    /// When the stored row was computed; `None` when computed for this request (as of a date, or
    /// not stored yet).
    pub computed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The features of one person: the stored row, or computed now when `as_of` is given or the
/// person has no stored row yet (their load's refresh has not run). `None` for an unknown person.
pub async fn for_person(
    client: &impl deadpool_postgres::GenericClient,
    person: i64,
    as_of: Option<NaiveDate>,
) -> Result<Option<FeatureDocument>, tokio_postgres::Error> {
    if as_of.is_none() {
        let statement = client
            .prepare_cached(&format!(
                "SELECT person_id, {}, definitions_version, computed_at
                 FROM person_features
                 WHERE person_id = $1 AND definitions_version = feature_definitions_version()",
                select_list("")
            ))
            .await?;
        let stored = client.query_opt(&statement, &[&person]).await?;
        if let Some(row) = stored {
            let n = FEATURES.len();
            return Ok(Some(FeatureDocument {
                features: to_features(&row),
                definitions_version: row.get(n + 1),
                computed_at: Some(row.get(n + 2)),
            }));
        }
    }
    let statement = client
        .prepare_cached(&format!(
            "SELECT p.person_id, {}, feature_definitions_version()
             FROM person p
             LEFT JOIN person_features_as_of(ARRAY[$1::bigint], $2) f USING (person_id)
             WHERE p.person_id = $1",
            select_list("f.")
        ))
        .await?;
    let row = client.query_opt(&statement, &[&person, &as_of]).await?;
    Ok(row.map(|row| FeatureDocument {
        features: to_features(&row),
        definitions_version: row.get(FEATURES.len() + 1),
        computed_at: None,
    }))
}

/// One person's features computed now (as of a date, or with every event), with, for each
/// feature, the clean rows that decided it (`person_features_at`'s `explanation`: the same
/// computation, docs/features.md "Why a feature has its value"). `None` for an unknown person.
pub async fn explain(
    client: &Client,
    person: i64,
    as_of: Option<NaiveDate>,
) -> Result<Option<(FeatureDocument, Json)>, tokio_postgres::Error> {
    // Not prepared: an explanation is a rare request, and its plan is made for its person.
    let statement = format!(
        "SELECT p.person_id, {}, feature_definitions_version(),
                    coalesce(f.explanation, '{{}}'::jsonb)
             FROM person p
             LEFT JOIN person_features_at(NULL, ARRAY[$1::bigint], $2, NULL, true) f
                 USING (person_id)
             WHERE p.person_id = $1",
        select_list("f.")
    );
    let row = client.query_opt(&statement, &[&person, &as_of]).await?;
    Ok(row.map(|row| {
        let n = FEATURES.len();
        (
            FeatureDocument {
                features: to_features(&row),
                definitions_version: row.get(n + 1),
                computed_at: None,
            },
            row.get(n + 2),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(column, type)` as `person_features_at`'s `RETURNS TABLE` declares them in its file.
    fn declared_columns(sql: &str) -> Vec<(String, String)> {
        let function = sql
            .find("CREATE FUNCTION person_features_at(")
            .expect("R__30_features.sql creates person_features_at");
        let open =
            function + sql[function..].find("RETURNS TABLE (").unwrap() + "RETURNS TABLE (".len();
        let close = open + sql[open..].find("\n)").unwrap();
        sql[open..close]
            .lines()
            .map(|line| line.trim().trim_end_matches(','))
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (name, ty) = line.split_once(' ').unwrap();
                (name.to_owned(), ty.trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn the_definitions_file_declares_exactly_the_catalogue() {
        let (_, sql) = crate::migrate::DEFINITIONS
            .iter()
            .find(|(name, _)| *name == "R__30_features.sql")
            .unwrap();
        let mut declared = declared_columns(sql);
        let mut catalogue: Vec<(String, String)> = FEATURES
            .iter()
            .map(|f| (f.name.to_owned(), sql_type(f.kind).to_owned()))
            .collect();
        catalogue.push(("person_id".into(), "bigint".into()));
        assert_eq!(declared[0].0, "spine_row", "spine_row comes first");
        assert_eq!(declared[1].0, "person_id", "then person_id");
        assert_eq!(
            declared.last().unwrap().0,
            "explanation",
            "explanation comes last"
        );
        declared.remove(0);
        declared.pop();
        declared.sort();
        catalogue.sort();
        assert_eq!(declared, catalogue);
    }
}
