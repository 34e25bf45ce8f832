//! Feature computation and reads. The definitions are SQL (`migrations/0003_features.sql`, the
//! function as it runs in `migrations/0007_features_by_person.sql`).

use chrono::NaiveDate;
use medrec_core::features::{FeatureKind, FEATURES};
use serde_json::{Map, Value as Json};
use tokio_postgres::{Client, Row};

/// Recomputes the stored features of `persons` (all persons when `None`) in one set-based
/// statement. Idempotent: only `computed_at` changes when nothing else did.
pub async fn refresh(
    client: &Client,
    persons: Option<&[i64]>,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT refresh_person_features($1)", &[&persons])
        .await?
        .get(0))
}

/// One person's features, keyed by feature name.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonFeatures {
    pub person_id: i64,
    pub values: Map<String, Json>,
}

fn select_list() -> String {
    FEATURES
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Features of `persons` (all when `None`): the stored ones, or computed as of a date (only
/// events on or before it), ordered by person.
pub async fn read(
    client: &Client,
    persons: Option<&[i64]>,
    as_of: Option<NaiveDate>,
) -> Result<Vec<PersonFeatures>, tokio_postgres::Error> {
    let rows = match as_of {
        None => {
            client
                .query(
                    &format!(
                        "SELECT person_id, {} FROM person_features
                         WHERE $1::bigint[] IS NULL OR person_id = ANY($1) ORDER BY person_id",
                        select_list()
                    ),
                    &[&persons],
                )
                .await?
        }
        Some(date) => {
            client
                .query(
                    &format!(
                    "SELECT person_id, {} FROM person_features_as_of($1, $2) ORDER BY person_id",
                    select_list()
                ),
                    &[&persons, &date],
                )
                .await?
        }
    };
    Ok(rows.iter().map(to_features).collect())
}

fn to_features(row: &Row) -> PersonFeatures {
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
                 FROM person_features WHERE person_id = $1",
                select_list()
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
            FEATURES
                .iter()
                .map(|f| format!("f.{}", f.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .await?;
    let row = client.query_opt(&statement, &[&person, &as_of]).await?;
    Ok(row.map(|row| FeatureDocument {
        features: to_features(&row),
        definitions_version: row.get(FEATURES.len() + 1),
        computed_at: None,
    }))
}
