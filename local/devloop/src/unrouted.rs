//! The local stand-in for the bucket policy that, in the cloud, refuses an upload under a prefix
//! no notification routes (`DenyUnroutedUploads` in infra/template.yaml). LocalStack does not
//! enforce bucket policies, so locally such an object would land and no function would ever hear
//! of it. Every few seconds this lists the bucket, skipping the subtrees its notification
//! configuration routes, and sends each object it finds outside them, once, to the queue of the
//! first notification as an `ObjectCreated` event: the function behind it refuses a key it does
//! not take and records why (`medrec runs` shows it as `refused`, "the key is under neither
//! raw/<table>/ nor vendor/").

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Where the stack writes objects of its own (the export function's `exports/`): the bucket
/// policy lets only that function write there (`OnlyTheExportFunctionWritesExports`), so nothing
/// under it is an unrouted upload.
pub const STACK_OUTPUTS: &[&str] = &["exports/"];

/// How often the bucket is listed.
pub const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// A notification's key filter: the object keys it routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: String,
    pub suffix: String,
    pub queue_arn: String,
}

impl Route {
    pub fn routes(&self, key: &str) -> bool {
        key.starts_with(&self.prefix) && key.ends_with(&self.suffix)
    }

    /// Every key under `prefix` is routed: nothing there needs listing.
    fn covers(&self, prefix: &str) -> bool {
        self.suffix.is_empty() && prefix.starts_with(&self.prefix)
    }
}

pub struct Sweeper {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub bucket: String,
    pub region: String,
}

impl Sweeper {
    /// Clients from the environment (`AWS_ENDPOINT_URL`: the emulator).
    pub async fn new(bucket: String) -> Sweeper {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        Sweeper {
            s3,
            sqs: aws_sdk_sqs::Client::new(&sdk),
            region: sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
            bucket,
        }
    }

    pub async fn run(self) -> anyhow::Result<()> {
        eprintln!(
            "sweeping s3://{} every {} s for objects no notification routes",
            self.bucket,
            SWEEP_EVERY.as_secs()
        );
        let mut sent: HashSet<(String, String)> = HashSet::new();
        let mut shown: Vec<Route> = Vec::new();
        loop {
            if let Err(error) = self.sweep(&mut sent, &mut shown).await {
                eprintln!("sweep of s3://{}: {error:#}", self.bucket);
            }
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    }

    /// One sweep; the routes are printed when they change (`shown`: the last printed).
    async fn sweep(
        &self,
        sent: &mut HashSet<(String, String)>,
        shown: &mut Vec<Route>,
    ) -> anyhow::Result<()> {
        let routes = self.routes().await?;
        if routes != *shown {
            let prefixes: Vec<_> = routes.iter().map(|r| r.prefix.as_str()).collect();
            eprintln!("routed prefixes: {}", prefixes.join(" "));
            shown.clone_from(&routes);
        }
        let Some(first) = routes.first() else {
            return Ok(());
        };
        let mut unrouted = Vec::new();
        self.walk("", &routes, &mut unrouted).await?;
        let fresh: Vec<_> = unrouted
            .into_iter()
            .filter(|(key, etag, _)| !sent.contains(&(key.clone(), etag.clone())))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let queue_url = self.queue_url(&first.queue_arn).await?;
        for (key, etag, size) in fresh {
            let body = self.event(&key, &etag, size).to_string();
            self.sqs
                .send_message()
                .queue_url(&queue_url)
                .message_body(body)
                .send()
                .await
                .with_context(|| format!("sending the event of s3://{}/{key}", self.bucket))?;
            eprintln!(
                "s3://{}/{key}: under no routed prefix; sent to {queue_url} to be refused and recorded",
                self.bucket
            );
            sent.insert((key, etag));
        }
        Ok(())
    }

    async fn routes(&self) -> anyhow::Result<Vec<Route>> {
        let config = self
            .s3
            .get_bucket_notification_configuration()
            .bucket(&self.bucket)
            .send()
            .await
            .context("reading the bucket's notification configuration")?;
        Ok(config
            .queue_configurations()
            .iter()
            .map(|q| {
                let rules = q
                    .filter()
                    .and_then(|f| f.key())
                    .map(|k| k.filter_rules())
                    .unwrap_or_default();
                // S3 answers "Prefix" for the "prefix" it was given: compare without case.
                let rule = |name: &str| {
                    rules
                        .iter()
                        .find(|r| {
                            r.name()
                                .is_some_and(|n| n.as_str().eq_ignore_ascii_case(name))
                        })
                        .and_then(|r| r.value())
                        .unwrap_or_default()
                        .to_owned()
                };
                Route {
                    prefix: rule("prefix"),
                    suffix: rule("suffix"),
                    queue_arn: q.queue_arn().to_owned(),
                }
            })
            .collect())
    }

    /// The unrouted objects under `prefix` (key, ETag, size), listing one level at a time so
    /// that routed subtrees (a million vendor files) are never listed.
    async fn walk(
        &self,
        prefix: &str,
        routes: &[Route],
        found: &mut Vec<(String, String, i64)>,
    ) -> anyhow::Result<()> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut children = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("listing s3://{}/{prefix}", self.bucket))?;
            for object in page.contents() {
                let key = object.key().unwrap_or_default();
                if !routes.iter().any(|r| r.routes(key)) {
                    let etag = object.e_tag().unwrap_or_default().trim_matches('"');
                    found.push((key.to_owned(), etag.to_owned(), object.size().unwrap_or(0)));
                }
            }
            children.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
        }
        for child in children {
            if routes.iter().any(|r| r.covers(&child))
                || STACK_OUTPUTS.iter().any(|p| child.starts_with(p))
            {
                continue;
            }
            Box::pin(self.walk(&child, routes, found)).await?;
        }
        Ok(())
    }

    async fn queue_url(&self, arn: &str) -> anyhow::Result<String> {
        let name = arn.rsplit(':').next().unwrap_or(arn);
        self.sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .with_context(|| format!("finding the queue {name}"))?
            .queue_url
            .context("the queue has no URL")
    }

    /// The notification S3 itself would have sent (aws_lambda_events' types, which the functions
    /// read it with).
    fn event(&self, key: &str, etag: &str, size: i64) -> serde_json::Value {
        let mut record = S3EventRecord::default();
        record.event_version = Some("2.1".into());
        record.event_source = Some("aws:s3".into());
        record.aws_region = Some(self.region.clone());
        record.event_time = chrono::Utc::now();
        record.event_name = Some("ObjectCreated:Put".into());
        record.s3.schema_version = Some("1.0".into());
        record.s3.bucket.name = Some(self.bucket.clone());
        record.s3.bucket.arn = Some(format!("arn:aws:s3:::{}", self.bucket));
        record.s3.object.key = Some(encode_key(key));
        record.s3.object.size = Some(size);
        record.s3.object.e_tag = Some(etag.to_owned());
        let mut event = S3Event::default();
        event.records = vec![record];
        serde_json::to_value(event).unwrap_or_default()
    }
}

/// Keys in S3 notifications are URL-encoded, `/` kept.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ENCODE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str) -> Route {
        Route {
            prefix: prefix.into(),
            suffix: String::new(),
            queue_arn: "arn:aws:sqs:us-east-1:000000000000:q".into(),
        }
    }

    #[test]
    fn a_key_is_routed_by_a_prefix_that_holds_it() {
        let routes = [route("raw/labs/"), route("vendor/")];
        assert!(routes.iter().any(|r| r.routes("raw/labs/labs_1.csv")));
        assert!(routes.iter().any(|r| r.routes("vendor/3591.json")));
        assert!(!routes.iter().any(|r| r.routes("raw/foo/labs_1.csv")));
        assert!(!routes.iter().any(|r| r.routes("raw/labs")));
        assert!(routes.iter().any(|r| r.covers("vendor/")));
        assert!(!routes.iter().any(|r| r.covers("raw/")));
    }

    #[test]
    fn the_event_reads_back_as_an_s3_notification() {
        let sweeper = Sweeper {
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::Config::builder()
                    .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::Config::builder()
                    .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                    .build(),
            ),
            bucket: "b".into(),
            region: "us-east-1".into(),
        };
        let event: S3Event =
            serde_json::from_value(sweeper.event("raw/foo/a b.csv", "e1", 3)).unwrap();
        let object = &event.records[0].s3.object;
        assert_eq!(object.key.as_deref(), Some("raw/foo/a%20b.csv"));
        assert_eq!(object.e_tag.as_deref(), Some("e1"));
        assert_eq!(
            event.records[0].event_name.as_deref(),
            Some("ObjectCreated:Put")
        );
    }

    #[test]
    fn keys_are_encoded_as_s3_sends_them() {
        assert_eq!(encode_key("raw/foo/a b+c.csv"), "raw/foo/a%20b%2Bc.csv");
        assert_eq!(encode_key("raw/fé"), "raw/f%C3%A9");
    }
}
