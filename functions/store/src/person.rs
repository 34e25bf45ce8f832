//! A person's clean resources, as the API serves them (`person_document` in migrations/0004).

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
    client
        .query_one(
            &statement,
            &[&person, &filter.since, &filter.until, &tables],
        )
        .await
        .map(|row| row.get(0))
}
