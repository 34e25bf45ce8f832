//! The access audit (`access_audit`, `migrations/0011_roles_audit.sql`): one row per person read
//! through the API, `medrec features explain`, an export or a training set, appended on the
//! connection that served the read, or, for the API, by [`AuditLog`]: many reads' rows in one
//! statement, each read answered only once its row is written. Never a record value.

use std::sync::Arc;

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::{mpsc, oneshot};

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

const INSERT: &str =
    "INSERT INTO access_audit (route, person_id, key_id, status) VALUES ($1, $2, $3, $4)";

/// Appends one audit row on a plain connection (the `medrec` command's), not prepared.
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

/// The API's audit writer: reads hand their rows to one task, which appends whatever has queued
/// up (at most [`AuditLog::MAX_BATCH`] rows) in one statement on a connection of its own and
/// then tells each read the outcome: a group commit. No row is dropped and no read is answered
/// before its row is written; a failed statement fails every read of its batch. Under load a
/// request costs a share of one INSERT instead of a statement of its own.
#[derive(Clone, Debug)]
pub struct AuditLog {
    queue: mpsc::Sender<Queued>,
}

#[derive(Debug)]
struct Queued {
    route: AuditRoute,
    person_id: i64,
    key_id: String,
    status: i16,
    written: oneshot::Sender<Result<(), AuditError>>,
}

/// Why an audit row was not written (the read must not be served).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("no database connection for the access audit")]
    Unavailable,
    #[error("the access audit could not be written: {0}")]
    Database(Arc<tokio_postgres::Error>),
    #[error("the access audit writer has stopped")]
    Stopped,
}

impl AuditError {
    fn kind(&self) -> &'static str {
        match self {
            AuditError::Unavailable => "unavailable",
            AuditError::Database(_) => "database",
            AuditError::Stopped => "stopped",
        }
    }
}

impl AuditLog {
    /// Rows appended per statement at most.
    pub const MAX_BATCH: usize = 512;

    /// Starts the writer on the current tokio runtime; it stops when every handle is dropped.
    /// It takes a connection from `pool` per batch, so a read must give its own back before it
    /// waits (a pool of one would otherwise wait on itself).
    pub fn spawn(pool: Pool) -> AuditLog {
        let (queue, rows) = mpsc::channel(4 * Self::MAX_BATCH);
        tokio::spawn(write_batches(pool, rows));
        AuditLog { queue }
    }

    /// Appends `access`'s row; returns once it is written.
    pub async fn record(&self, access: &Access<'_>) -> Result<(), AuditError> {
        let (written, outcome) = oneshot::channel();
        let queued = Queued {
            route: access.route,
            person_id: access.person_id,
            key_id: access.key_id.to_owned(),
            status: access.status as i16,
            written,
        };
        self.queue
            .send(queued)
            .await
            .map_err(|_| AuditError::Stopped)?;
        outcome.await.map_err(|_| AuditError::Stopped)?
    }
}

async fn write_batches(pool: Pool, mut rows: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(AuditLog::MAX_BATCH);
    while rows.recv_many(&mut batch, AuditLog::MAX_BATCH).await > 0 {
        let outcome = append(&pool, &batch).await;
        if let Err(error) = &outcome {
            // The SQLSTATE only: a database message may quote a row (a person id).
            let sqlstate = match error {
                AuditError::Database(e) => e.code().map(|c| c.code()).unwrap_or("none"),
                _ => "none",
            };
            tracing::error!(
                rows = batch.len(),
                sqlstate,
                kind = error.kind(),
                "access audit batch not written"
            );
        }
        for queued in batch.drain(..) {
            // A read that gave up (its request timed out) no longer listens.
            let _ = queued.written.send(outcome.clone());
        }
    }
}

async fn append(pool: &Pool, batch: &[Queued]) -> Result<(), AuditError> {
    let client = pool.get().await.map_err(|_| AuditError::Unavailable)?;
    let routes: Vec<&str> = batch.iter().map(|q| q.route.as_str()).collect();
    let persons: Vec<i64> = batch.iter().map(|q| q.person_id).collect();
    let keys: Vec<&str> = batch.iter().map(|q| q.key_id.as_str()).collect();
    let statuses: Vec<i16> = batch.iter().map(|q| q.status).collect();
    let database = |error| AuditError::Database(Arc::new(error));
    let statement = client
        .prepare_cached(
            "INSERT INTO access_audit (route, person_id, key_id, status)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::smallint[])",
        )
        .await
        .map_err(database)?;
    client
        .execute(&statement, &[&routes, &persons, &keys, &statuses])
        .await
        .map_err(database)?;
    Ok(())
}
