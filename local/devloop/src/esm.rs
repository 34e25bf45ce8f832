//! `medrec-dev event-source-mappings`: a local stand-in for Lambda's SQS event source mappings,
//! the one piece LocalStack cannot run without Docker. For each mapping in `.local/mappings.json`
//! (written from infra/template.yaml by local/emulator/provision.py) it long-polls the queue,
//! gathers up to the batch size within the batching window, invokes the function with an
//! `SqsEvent` through the Lambda Invoke API that `cargo lambda watch` serves, and then, as the
//! real mapping does:
//! - on success, deletes the batch, except the messages listed in `batchItemFailures` when the
//!   mapping reports batch item failures;
//! - on a function error or an unreadable response, deletes nothing.
//!
//! Messages left undeleted become visible again after the queue's visibility timeout and are
//! retried; the queue's own redrive policy moves them to the DLQ after maxReceiveCount receives,
//! as in AWS. `--retry-after` shortens the wait before a retry: `local/stack` passes 3 s
//! (ESM_RETRY_AFTER), so that a message a function keeps failing on is in the DLQ after about
//! maxReceiveCount x (3 s + the batching window): 10 s for a raw queue, 40 s for features (a 5 s
//! window), instead of maxReceiveCount x the visibility timeout (1.5 hours for a raw queue).
//! Unset, the queue's visibility timeout applies, as in the cloud. Each mapping's schedule is
//! printed at start.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HttpClient};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value as Json;

/// One SQS event source mapping, as provision.py writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Mapping {
    pub function: String,
    #[serde(default)]
    pub logical_id: Option<String>,
    pub queue_url: String,
    pub batch_size: usize,
    #[serde(default)]
    pub maximum_batching_window_s: u64,
    #[serde(default)]
    pub report_batch_item_failures: bool,
    /// The queue's visibility timeout, its redrive policy's maxReceiveCount and DLQ (for the
    /// schedule printed at start; SQS itself applies them).
    #[serde(default)]
    pub visibility_timeout_s: Option<u64>,
    #[serde(default)]
    pub max_receive_count: Option<u64>,
    #[serde(default)]
    pub dlq_url: Option<String>,
}

impl Mapping {
    /// When a message the function fails on is retried and when it is dead-lettered.
    pub fn schedule(&self, retry_after: Option<Duration>) -> String {
        let wait = retry_after
            .map(|d| d.as_secs())
            .or(self.visibility_timeout_s);
        let retry = match (retry_after, self.visibility_timeout_s) {
            (Some(d), Some(v)) => format!(
                "retried after {} s (--retry-after; the queue's visibility timeout is {v} s)",
                d.as_secs()
            ),
            (Some(d), None) => format!("retried after {} s (--retry-after)", d.as_secs()),
            (None, Some(v)) => format!("retried after the queue's visibility timeout, {v} s"),
            (None, None) => "retried after the queue's visibility timeout".to_owned(),
        };
        match (self.max_receive_count, &self.dlq_url) {
            (Some(n), Some(dlq)) => {
                // Each receive waits out the batching window, then the retry delay.
                let total = wait
                    .map(|w| format!(", about {} s", n * (w + self.maximum_batching_window_s)))
                    .unwrap_or_default();
                format!("a failed message is {retry}; to {dlq} after {n} failed receives{total}")
            }
            _ => format!("a failed message is {retry}; the queue has no DLQ"),
        }
    }
}

pub fn read_mappings(path: &Path) -> anyhow::Result<Vec<Mapping>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mappings: Vec<Mapping> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for mapping in &mappings {
        anyhow::ensure!(
            (1..=10_000).contains(&mapping.batch_size),
            "{}: batch size {} is outside 1..=10000",
            mapping.function,
            mapping.batch_size
        );
    }
    Ok(mappings)
}

/// Runs every mapping until the process is stopped.
pub async fn run(
    mappings: Vec<Mapping>,
    lambda_url: String,
    retry_after: Option<Duration>,
) -> anyhow::Result<()> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let http: HttpClient<HttpConnector, Full<Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let mut tasks = tokio::task::JoinSet::new();
    for mapping in mappings {
        eprintln!(
            "mapping {} : {} -> function {} (batch {}, window {} s); {}",
            mapping.logical_id.as_deref().unwrap_or("-"),
            mapping.queue_url,
            mapping.function,
            mapping.batch_size,
            mapping.maximum_batching_window_s,
            mapping.schedule(retry_after)
        );
        let poller = Poller {
            arn: queue_arn(&sqs, &mapping.queue_url).await?,
            region: sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
            sqs: sqs.clone(),
            http: http.clone(),
            invoke_url: format!(
                "{}/2015-03-31/functions/{}/invocations",
                lambda_url.trim_end_matches('/'),
                mapping.function
            ),
            mapping,
            retry_after,
        };
        tasks.spawn(async move { poller.run().await });
    }
    eprintln!("event source mappings running ({} queue(s))", tasks.len());
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the attributes of {url}"))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("the queue has no ARN")
}

struct Poller {
    mapping: Mapping,
    arn: String,
    region: String,
    sqs: aws_sdk_sqs::Client,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    invoke_url: String,
    retry_after: Option<Duration>,
}

impl Poller {
    async fn run(self) -> anyhow::Result<()> {
        loop {
            let batch = match self.gather().await {
                Ok(batch) => batch,
                Err(error) => {
                    eprintln!("{}: receive failed: {error:#}", self.mapping.function);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                continue;
            }
            if let Err(error) = self.deliver(batch).await {
                eprintln!("{}: {error:#}", self.mapping.function);
            }
        }
    }

    /// Up to batch_size messages: the first long poll, then more until the window closes.
    async fn gather(&self) -> anyhow::Result<Vec<Message>> {
        let window = Duration::from_secs(self.mapping.maximum_batching_window_s);
        let mut batch = self.receive(self.mapping.batch_size, 10).await?;
        let started = Instant::now();
        while !batch.is_empty() && batch.len() < self.mapping.batch_size {
            let left = window.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            let wait = left.as_secs().clamp(1, 20) as i32;
            let more = self
                .receive(self.mapping.batch_size - batch.len(), wait)
                .await?;
            if more.is_empty() {
                break;
            }
            batch.extend(more);
        }
        Ok(batch)
    }

    async fn receive(&self, at_most: usize, wait_s: i32) -> anyhow::Result<Vec<Message>> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.mapping.queue_url)
            .max_number_of_messages(at_most.min(10) as i32)
            .wait_time_seconds(wait_s)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Invokes the function with the batch and settles each message.
    async fn deliver(&self, batch: Vec<Message>) -> anyhow::Result<()> {
        let event = sqs_event(&batch, &self.arn, &self.region);
        let failed: Vec<String> = match self.invoke(&event).await {
            Ok(response) => match self.failures(&response, &batch) {
                Some(failed) => failed,
                None => all_ids(&batch),
            },
            Err(error) => {
                eprintln!(
                    "{}: invocation failed ({error:#}); {} message(s) will be retried",
                    self.mapping.function,
                    batch.len()
                );
                all_ids(&batch)
            }
        };
        let (retry, done): (Vec<&Message>, Vec<&Message>) = batch
            .iter()
            .partition(|m| failed.iter().any(|f| Some(f.as_str()) == m.message_id()));
        self.delete(&done).await?;
        if let Some(after) = self.retry_after {
            self.delay(&retry, after).await?;
        }
        Ok(())
    }

    async fn invoke(&self, event: &SqsEvent) -> anyhow::Result<Json> {
        let request = hyper::Request::post(&self.invoke_url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(event)?)))?;
        let response = self
            .http
            .request(request)
            .await
            .context("calling the Lambda Invoke API")?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status.is_success() && !function_error,
            "the function failed (HTTP {status})"
        );
        serde_json::from_slice(&body).context("the function's response is not JSON")
    }

    /// The ids the function reported as failed; `None` when the whole batch counts as failed
    /// (a malformed response, or an id that is not in the batch, as Lambda treats it).
    fn failures(&self, response: &Json, batch: &[Message]) -> Option<Vec<String>> {
        if !self.mapping.report_batch_item_failures {
            return Some(Vec::new());
        }
        let items = match response.get("batchItemFailures") {
            None | Some(Json::Null) => return Some(Vec::new()),
            Some(Json::Array(items)) => items,
            Some(_) => return None,
        };
        let mut failed = Vec::new();
        for item in items {
            let id = item.get("itemIdentifier")?.as_str()?;
            if !batch.iter().any(|m| m.message_id() == Some(id)) {
                return None;
            }
            failed.push(id.to_owned());
        }
        Some(failed)
    }

    async fn delete(&self, done: &[&Message]) -> anyhow::Result<()> {
        for chunk in done.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.sqs
                .delete_message_batch()
                .queue_url(&self.mapping.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .context("deleting processed messages")?;
        }
        Ok(())
    }

    async fn delay(&self, retry: &[&Message], after: Duration) -> anyhow::Result<()> {
        for chunk in retry.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .visibility_timeout(after.as_secs() as i32)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.sqs
                .change_message_visibility_batch()
                .queue_url(&self.mapping.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .context("shortening the visibility of failed messages")?;
        }
        Ok(())
    }
}

/// The SQS event Lambda sends for a batch received from the queue `arn`: each message's id,
/// receipt handle, body, MD5 and system attributes (message attributes are not forwarded).
fn sqs_event(batch: &[Message], arn: &str, region: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = batch
        .iter()
        .map(|m| {
            // SqsMessage is #[non_exhaustive]: built from its default, field by field.
            let mut record = SqsMessage::default();
            record.message_id = m.message_id().map(str::to_owned);
            record.receipt_handle = m.receipt_handle().map(str::to_owned);
            record.body = m.body().map(str::to_owned);
            record.md5_of_body = m.md5_of_body().map(str::to_owned);
            record.attributes = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            record.event_source = Some("aws:sqs".to_owned());
            record.event_source_arn = Some(arn.to_owned());
            record.aws_region = Some(region.to_owned());
            record
        })
        .collect();
    event
}

fn all_ids(batch: &[Message]) -> Vec<String> {
    batch
        .iter()
        .filter_map(|m| m.message_id().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageSystemAttributeName as Attr;
    use serde_json::json;

    #[test]
    fn the_schedule_says_when_a_failed_message_reaches_the_dlq() {
        let mapping: Mapping = serde_json::from_value(json!({
            "function": "clean",
            "queue_url": "http://127.0.0.1:4566/000000000000/medrec-raw-rx",
            "batch_size": 10,
            "maximum_batching_window_s": 1,
            "visibility_timeout_s": 1800,
            "max_receive_count": 3,
            "dlq_url": "http://127.0.0.1:4566/000000000000/medrec-raw-rx-dlq",
        }))
        .unwrap();
        assert_eq!(
            mapping.schedule(Some(Duration::from_secs(3))),
            "a failed message is retried after 3 s (--retry-after; the queue's visibility \
             timeout is 1800 s); to http://127.0.0.1:4566/000000000000/medrec-raw-rx-dlq after 3 \
             failed receives, about 12 s"
        );
        assert!(mapping
            .schedule(None)
            .ends_with("3 failed receives, about 5403 s"));
    }

    /// The event has the fields (and names) Lambda sends, which the functions deserialize as
    /// `SqsEvent`.
    #[test]
    fn the_event_is_what_lambda_sends() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body(r#"{"Records":[]}"#)
            .md5_of_body("0123")
            .attributes(Attr::ApproximateReceiveCount, "2")
            .attributes(Attr::SentTimestamp, "1700000000000")
            .build();
        let arn = "arn:aws:sqs:us-east-1:000000000000:medrec-features";
        let event = sqs_event(&[message], arn, "us-east-1");
        let got = serde_json::to_value(&event).unwrap();
        assert_eq!(
            got,
            json!({ "Records": [{
                "messageId": "m-1",
                "receiptHandle": "rh-1",
                "body": r#"{"Records":[]}"#,
                "md5OfBody": "0123",
                "md5OfMessageAttributes": null,
                "attributes": {
                    "ApproximateReceiveCount": "2",
                    "SentTimestamp": "1700000000000",
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }]})
        );
        let back: SqsEvent = serde_json::from_value(got).unwrap();
        assert_eq!(back, event);
    }
}
