//! The features queue: the message the cleaning functions send and the features function reads.

use std::time::Duration;

use anyhow::{bail, Context};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use medrec_core::PersonId;
use serde::{Deserialize, Serialize};

/// Person ids per message: at most 20 KB of JSON (19-digit ids), so a batch of ten stays below
/// SQS's 256 KiB limit on a message and on a batch.
pub const IDS_PER_MESSAGE: usize = 1_000;
/// SendMessageBatch takes at most ten entries.
const MESSAGES_PER_BATCH: usize = 10;
/// Attempts for entries SQS reports as failed inside an otherwise successful batch.
const ATTEMPTS: u32 = 4;

/// `{"person_ids": [..]}`: persons whose features must be recomputed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonsMessage {
    pub person_ids: Vec<PersonId>,
}

impl PersonsMessage {
    /// Parses a message body; an unusable body is an error (the message is poisoned).
    pub fn parse(body: &str) -> anyhow::Result<PersonsMessage> {
        let message: PersonsMessage =
            serde_json::from_str(body).context("not a {\"person_ids\": [..]} message")?;
        if message.person_ids.len() > 10 * IDS_PER_MESSAGE {
            bail!("too many person ids in one message");
        }
        Ok(message)
    }
}

/// Handles each message of an SQS batch on its own; the failed ones are reported as batch item
/// failures, so SQS redelivers only them (and, after the queue's receive limit, moves them to
/// the DLQ) while the rest of the batch is done.
pub async fn each_message<F, Fut>(event: SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        if let Err(error) = handle(message).await {
            // The error chain names files, tables and kinds, never record values.
            tracing::error!(
                message_id,
                error = crate::log_safe(&error),
                "message failed"
            );
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

impl medrec_pipeline::PersonsSink for FeaturesQueue {
    async fn announce(&self, persons: &[i64]) -> Result<(), medrec_pipeline::PipelineError> {
        FeaturesQueue::announce(self, persons)
            .await
            .map(|_| ())
            .map_err(|e| {
                medrec_pipeline::PipelineError::transient(
                    &self.url,
                    "sending to the features queue",
                    e,
                )
            })
    }
}

/// Sends person ids to the features queue.
#[derive(Clone)]
pub struct FeaturesQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl FeaturesQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: String) -> FeaturesQueue {
        FeaturesQueue { sqs, url }
    }

    /// Announces `persons` in as few messages and calls as the limits allow; returns the number
    /// of messages. Fails when a message could not be sent after retries (the caller's message
    /// is then retried, and announcing twice is harmless: recomputing features is idempotent).
    pub async fn announce(&self, persons: &[i64]) -> anyhow::Result<usize> {
        let bodies: Vec<String> = persons
            .chunks(IDS_PER_MESSAGE)
            .map(|ids| {
                let person_ids = ids
                    .iter()
                    .map(|&id| PersonId::try_from(id))
                    .collect::<Result<_, _>>()?;
                Ok(serde_json::to_string(&PersonsMessage { person_ids })?)
            })
            .collect::<anyhow::Result<_>>()?;
        for (batch_number, batch) in bodies.chunks(MESSAGES_PER_BATCH).enumerate() {
            let mut pending: Vec<SendMessageBatchRequestEntry> = batch
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("m{batch_number}-{i}"))
                        .message_body(body)
                        .build()
                })
                .collect::<Result<_, _>>()?;
            for attempt in 1..=ATTEMPTS {
                let output = self
                    .sqs
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(pending.clone()))
                    .send()
                    .await
                    .context("sending to the features queue")?;
                let failed: Vec<&str> = output.failed().iter().map(|f| f.id()).collect();
                if failed.is_empty() {
                    break;
                }
                if attempt == ATTEMPTS {
                    bail!(
                        "{} message(s) to the features queue failed {ATTEMPTS} times",
                        failed.len()
                    );
                }
                pending.retain(|entry| failed.contains(&entry.id()));
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
        Ok(bodies.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_strictly() {
        assert_eq!(
            PersonsMessage::parse(r#"{"person_ids":[1,2]}"#).unwrap(),
            PersonsMessage {
                person_ids: vec![PersonId::new(1).unwrap(), PersonId::new(2).unwrap()]
            }
        );
        for bad in [
            "",
            "poison",
            "{}",
            r#"{"person_ids":"1"}"#,
            r#"{"person_ids":[1.5]}"#,
            r#"{"person_ids":[0]}"#,
            r#"{"person_ids":[-4]}"#,
            r#"{"person_ids":[1],"extra":1}"#,
            r#"{"person_ids":[99999999999999999999]}"#,
        ] {
            assert!(PersonsMessage::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_full_batch_stays_under_the_sqs_limit() {
        let ids: Vec<PersonId> = (i64::MAX - IDS_PER_MESSAGE as i64..i64::MAX)
            .map(|id| PersonId::new(id).unwrap())
            .collect();
        let body = serde_json::to_string(&PersonsMessage { person_ids: ids }).unwrap();
        assert!(
            body.len() * MESSAGES_PER_BATCH < 256 * 1024,
            "{}",
            body.len()
        );
    }
}
