//! The cleaning function: SQS messages carrying S3 object-created notifications for
//! `raw/<table>/...` objects. Each object is streamed from S3, cleaned and loaded in one
//! transaction (the core's cleaner for its table), recorded as an ingest run keyed by
//! `s3://bucket/key` and ETag, and its persons are announced to the features queue.
//!
//! Redelivery is safe: a loaded (key, ETag) is not read again, but its persons are announced
//! again (the first delivery may have committed and then failed before announcing).

use anyhow::{bail, Context};
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_s3::operation::get_object::GetObjectError;
use deadpool_postgres::Pool;
use medrec_core::Table;
use medrec_store::load::{loaded_version, persons_of_run};
use medrec_store::{ingest, RunStatus, Source};
use tokio_util::io::SyncIoBridge;

use crate::queue::FeaturesQueue;

/// One object named by a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The decoded key (S3 notifications URL-encode keys, with spaces as `+`).
    pub key: String,
    pub etag: Option<String>,
}

/// The objects an SQS message's S3 notification names; empty for S3's `s3:TestEvent`.
pub fn objects_of(body: &str) -> anyhow::Result<Vec<ObjectRef>> {
    let value: serde_json::Value =
        serde_json::from_str(body).context("the message body is not JSON")?;
    if value.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let event: S3Event =
        serde_json::from_value(value).context("the message is not an S3 notification")?;
    event
        .records
        .into_iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .is_some_and(|n| n.starts_with("ObjectCreated:"))
        })
        .map(|record| {
            let bucket = record.s3.bucket.name.context("no bucket name")?;
            let key = record.s3.object.key.context("no object key")?;
            Ok(ObjectRef {
                bucket,
                key: decode_key(&key)?,
                etag: record.s3.object.e_tag.filter(|e| !e.is_empty()),
            })
        })
        .collect()
}

/// Runs `load` on each object an S3-notification message names, in order; the first failure
/// fails the message (its objects are idempotent to load again).
pub async fn each_object<F, Fut, O>(message: SqsMessage, mut load: F) -> anyhow::Result<()>
where
    F: FnMut(ObjectRef) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<O>>,
    O: std::fmt::Debug,
{
    let body = message.body.as_deref().context("the message has no body")?;
    for object in objects_of(body)? {
        let outcome = load(object).await?;
        tracing::info!(?outcome, "object processed");
    }
    Ok(())
}

/// S3 event keys are form-encoded: `+` is a space, `%2B` a plus.
pub fn decode_key(key: &str) -> anyhow::Result<String> {
    let spaced = key.replace('+', " ");
    Ok(percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .context("the object key is not UTF-8")?
        .into_owned())
}

/// `raw/<table>/<file>` names the table.
pub fn table_of_key(key: &str) -> anyhow::Result<Table> {
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("raw"), Some(table), Some(file)) if !file.is_empty() => Table::ALL
            .into_iter()
            .find(|t| t.name() == table)
            .with_context(|| "the key's raw/<table>/ prefix names no known table".to_string()),
        _ => bail!("the key is not under raw/<table>/"),
    }
}

pub struct CleanFunction {
    pool: Pool,
    s3: aws_sdk_s3::Client,
    queue: FeaturesQueue,
    /// When set (one function per table in the cloud), objects of other tables are refused.
    table: Option<Table>,
}

/// What happened to one object.
#[derive(Debug, PartialEq, Eq)]
pub enum ObjectOutcome {
    Loaded {
        run_id: i64,
        persons: usize,
    },
    AlreadyLoaded {
        run_id: i64,
        persons: usize,
    },
    /// Overwritten or deleted since the notification: the newer object has its own event.
    Superseded,
}

impl CleanFunction {
    pub fn new(
        pool: Pool,
        s3: aws_sdk_s3::Client,
        queue: FeaturesQueue,
        table: Option<Table>,
    ) -> CleanFunction {
        CleanFunction {
            pool,
            s3,
            queue,
            table,
        }
    }

    /// Processes each message on its own; failed ones are reported for redelivery.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        crate::queue::each_message(event, |message| {
            each_object(message, |object| async move { self.object(&object).await })
        })
        .await
    }

    /// Cleans and loads one object, then announces its persons.
    pub async fn object(&self, object: &ObjectRef) -> anyhow::Result<ObjectOutcome> {
        let table = table_of_key(&object.key)?;
        if let Some(expected) = self.table {
            if expected != table {
                bail!(
                    "this function loads {} but the object is under raw/{}/",
                    expected.name(),
                    table.name()
                );
            }
        }
        let source = Source {
            table,
            name: format!("s3://{}/{}", object.bucket, object.key),
            version: object.etag.clone(),
            sha256: None,
        };
        let mut client = self.pool.get().await.context("no database connection")?;
        if let Some(etag) = &object.etag {
            // A redelivery of a loaded version needs no read (ingest checks this too).
            if let Some(run_id) = loaded_version(&client, &source, etag).await? {
                return self.reannounce(&client, table, run_id).await;
            }
        }
        let mut request = self.s3.get_object().bucket(&object.bucket).key(&object.key);
        if let Some(etag) = &object.etag {
            request = request.if_match(etag);
        }
        let body = match request.send().await {
            Ok(output) => output.body,
            Err(error) => {
                return match error.as_service_error() {
                    Some(GetObjectError::NoSuchKey(_)) => Ok(ObjectOutcome::Superseded),
                    _ if error.raw_response().map(|r| r.status().as_u16()) == Some(412) => {
                        Ok(ObjectOutcome::Superseded)
                    }
                    _ => Err(anyhow::Error::new(error).context("reading the object from S3")),
                }
            }
        };
        let reader = SyncIoBridge::new(body.into_async_read());
        let report = ingest(&mut client, source, reader).await?;
        match report.status {
            RunStatus::Loaded => {
                self.queue.announce(&report.persons).await?;
                Ok(ObjectOutcome::Loaded {
                    run_id: report.run_id,
                    persons: report.persons.len(),
                })
            }
            RunStatus::AlreadyLoaded { run_id } => self.reannounce(&client, table, run_id).await,
        }
    }

    async fn reannounce(
        &self,
        client: &tokio_postgres::Client,
        table: Table,
        run_id: i64,
    ) -> anyhow::Result<ObjectOutcome> {
        let persons = persons_of_run(client, table, run_id).await?;
        self.queue.announce(&persons).await?;
        Ok(ObjectOutcome::AlreadyLoaded {
            run_id,
            persons: persons.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_like_s3_encodes_them() {
        assert_eq!(
            decode_key("raw/rx/rx+file.csv").unwrap(),
            "raw/rx/rx file.csv"
        );
        assert_eq!(decode_key("raw/rx/a%2Bb.csv").unwrap(), "raw/rx/a+b.csv");
        assert_eq!(
            decode_key("raw/rx/caf%C3%A9.csv").unwrap(),
            "raw/rx/café.csv"
        );
        assert!(decode_key("raw/rx/%FF.csv").is_err());
    }

    #[test]
    fn the_prefix_names_the_table() {
        assert_eq!(table_of_key("raw/labs/2026/x.csv").unwrap(), Table::Labs);
        for bad in ["raw/vitals/x.csv", "raw/labs/", "labs/x.csv", "raw", ""] {
            assert!(table_of_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_committed_example_event_names_its_object() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../local/events/clean-sqs.json"
        );
        let event: SqsEvent =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let body = event.records[0].body.as_deref().unwrap();
        let objects = objects_of(body).unwrap();
        assert_eq!(objects.len(), 1);
        assert!(objects[0].key.starts_with("raw/"));
        assert!(objects[0].etag.is_some());
        table_of_key(&objects[0].key).unwrap();
    }

    #[test]
    fn test_events_and_garbage() {
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-22T00:00:00Z","Bucket":"b","RequestId":"r","HostId":"h"}"#;
        assert_eq!(objects_of(test_event).unwrap(), vec![]);
        assert!(objects_of("poison").is_err());
        assert!(objects_of(r#"{"Records":"no"}"#).is_err());
    }
}
