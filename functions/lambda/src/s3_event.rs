//! The S3 object-created notifications that SQS messages carry to the clean and vendor functions.

use anyhow::Context;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsMessage;
use medrec_pipeline::ObjectRef;

/// One object named by a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifiedObject {
    pub bucket: String,
    /// The decoded key (S3 notifications URL-encode keys, with spaces as `+`).
    pub key: String,
    pub etag: Option<String>,
}

impl NotifiedObject {
    /// The pipeline's name for it (`s3://bucket/key`, the lineage runs record) and its version.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            name: format!("s3://{}/{}", self.bucket, self.key),
            version: self.etag.clone(),
        }
    }
}

/// The objects an SQS message's S3 notification names; empty for S3's `s3:TestEvent`.
pub fn objects_of(body: &str) -> anyhow::Result<Vec<NotifiedObject>> {
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
            Ok(NotifiedObject {
                bucket,
                key: decode_key(&key)?,
                etag: record.s3.object.e_tag.filter(|e| !e.is_empty()),
            })
        })
        .collect()
}

/// Runs `process` on each object an S3-notification message names, in order; the first failure
/// fails the message (its objects are idempotent to process again).
pub async fn each_object<F, Fut, O>(message: SqsMessage, mut process: F) -> anyhow::Result<()>
where
    F: FnMut(NotifiedObject) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<O>>,
{
    let body = message.body.as_deref().context("the message has no body")?;
    for object in objects_of(body)? {
        process(object).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;

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
        medrec_pipeline::ObjectKind::of_key(&objects[0].key).unwrap();
    }

    #[test]
    fn test_events_and_garbage() {
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-22T00:00:00Z","Bucket":"b","RequestId":"r","HostId":"h"}"#;
        assert_eq!(objects_of(test_event).unwrap(), vec![]);
        assert!(objects_of("poison").is_err());
        assert!(objects_of(r#"{"Records":"no"}"#).is_err());
    }
}
