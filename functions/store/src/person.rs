//! A person's clean resources, as the API serves them (`person_document`, defined in
//! `migrations/definitions/R__40_person_document.sql`).

use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use medrec_core::Table;
use serde_json::Value as Json;

/// Which of a person's resources to return.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceFilter {
    /// Only events on or after this date.
    pub since: Option<NaiveDate>,
    /// Only events on or before this date.
    pub until: Option<NaiveDate>,
    /// Only these tables (`None`: all five).
    pub tables: Option<Vec<Table>>,
}

/// `{"person_id": .., "data": {"lifestyle": [..], ..}}`, or `None` for an unknown person.
pub async fn document(
    client: &impl GenericClient,
    person: i64,
    filter: &ResourceFilter,
) -> Result<Option<Json>, tokio_postgres::Error> {
    let tables: Option<Vec<&str>> = filter
        .tables
        .as_ref()
        .map(|tables| tables.iter().map(|t| t.name()).collect());
    let statement = client
        .prepare_cached("SELECT person_document($1, $2, $3, $4)")
        .await?;
    let row = client
        .query_one(
            &statement,
            &[&person, &filter.since, &filter.until, &tables],
        )
        .await?;
    Ok(row
        .get::<_, Option<Json>>(0)
        .map(|data| shape(person, data)))
}

/// `{"person_id", "data"}` from the function's whole rows: each item loses `person_id` (the
/// document's) and shows its `row_hash` as the hex `row_id`; tables left out are dropped.
fn shape(person: i64, data: Json) -> Json {
    let Json::Object(tables) = data else {
        return serde_json::json!({ "person_id": person, "data": {} });
    };
    let tables: serde_json::Map<String, Json> = tables
        .into_iter()
        .filter(|(_, rows)| !rows.is_null())
        .map(|(table, mut rows)| {
            for item in rows.as_array_mut().into_iter().flatten() {
                if let Json::Object(fields) = item {
                    fields.remove("person_id");
                    if let Some(Json::String(hash)) = fields.remove("row_hash") {
                        // bytea renders as "\\x<hex>".
                        let hex = hash.strip_prefix("\\x").unwrap_or(&hash).to_owned();
                        fields.insert("row_id".to_owned(), Json::String(hex));
                    }
                }
            }
            (table, rows)
        })
        .collect();
    serde_json::json!({ "person_id": person, "data": tables })
}
