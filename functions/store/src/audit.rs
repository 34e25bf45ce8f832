//! The access audit (`access_audit`, `migrations/0011_roles_audit.sql`): one row per person read
//! through the API, `medrec features explain`, an export or a training set, appended on the
//! connection that served the read. Never a record value.

use deadpool_postgres::GenericClient;

/// What the API read: the route of the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditRoute {
    /// `GET /persons/{id}`
    Person,
    /// `GET /persons/{id}/features`
    Features,
    /// A training set (`medrec features training-set`, a spine of the export function): one row
    /// per distinct person of the spine.
    TrainingSet,
    /// A full export (`medrec features export`, the export function's full export): one row per
    /// person written.
    Export,
}

impl AuditRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditRoute::Person => "person",
            AuditRoute::Features => "features",
            AuditRoute::TrainingSet => "training_set",
            AuditRoute::Export => "export",
        }
    }
}

/// One read of a person: who (the API key's id), which person, on which route, and the status
/// answered.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub route: AuditRoute,
    pub person_id: i64,
    pub key_id: &'a str,
    pub status: u16,
}

/// Appends one audit row (one prepared INSERT, cached per connection). An error means the read
/// must not be served.
pub async fn record(
    client: &impl GenericClient,
    access: &Access<'_>,
) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached(INSERT).await?;
    let status = access.status as i16;
    client
        .execute(
            &statement,
            &[
                &access.route.as_str(),
                &access.person_id,
                &access.key_id,
                &status,
            ],
        )
        .await?;
    Ok(())
}

const INSERT: &str =
    "INSERT INTO access_audit (route, person_id, key_id, status) VALUES ($1, $2, $3, $4)";

/// [`record`] on a plain connection (the `medrec` command's), not prepared.
pub async fn record_on(
    client: &tokio_postgres::Client,
    access: &Access<'_>,
) -> Result<(), tokio_postgres::Error> {
    let status = access.status as i16;
    client
        .execute(
            INSERT,
            &[
                &access.route.as_str(),
                &access.person_id,
                &access.key_id,
                &status,
            ],
        )
        .await?;
    Ok(())
}

/// One audit row per person of `persons` (each once), read by `key_id` on `route` and answered
/// 200: a bulk read (an export) in one statement.
pub async fn record_many(
    client: &tokio_postgres::Client,
    route: AuditRoute,
    persons: &[i64],
    key_id: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO access_audit (route, person_id, key_id, status)
             SELECT DISTINCT $1, p, $3, 200 FROM unnest($2::bigint[]) AS p",
            &[&route.as_str(), &persons, &key_id],
        )
        .await
}
