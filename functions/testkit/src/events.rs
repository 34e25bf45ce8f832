//! The events the Lambdas receive, as `aws_lambda_events` types or as the JSON AWS sends.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::{json, Value as Json};

/// An SQS message with this id and body.
pub fn sqs_message(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.body = Some(body.to_owned());
    message
}

/// An SQS batch of `messages`.
pub fn sqs_event(messages: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages;
    event
}

/// S3's notification (`{"Records": [...]}`) of objects created in `bucket`, one record per
/// `(key, etag)`, keys URL-encoded as S3 does (a space is `+`). Every field
/// `aws_lambda_events::s3::S3Event` requires is there.
pub fn s3_notification(bucket: &str, objects: &[(&str, &str)]) -> Json {
    let records: Vec<Json> = objects
        .iter()
        .map(|(key, etag)| {
            json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-22T08:00:02.933Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "r", "x-amz-id-2": "h"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "RawBucket-1",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": format!("arn:aws:s3:::{bucket}")
                    },
                    "object": {
                        "key": key.replace(' ', "+"),
                        "eTag": etag,
                        "size": 1,
                        "sequencer": "0055AED6DCD90281E5"
                    }
                }
            })
        })
        .collect();
    json!({ "Records": records })
}
