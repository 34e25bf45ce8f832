//! The vendor function: SQS messages carrying S3 object-created notifications for `vendor/...`
//! objects, one person's vendor JSON file each (docs/vendor-json.md). Each file is loaded in one
//! short transaction that touches only that person's rows (medrec_store::vendor), then the person
//! is announced to the features queue.
//!
//! Redelivery is safe: a file not newer than the stored version is recorded as ignored and
//! changes nothing; the person is announced again in case the first delivery committed and then
//! failed before announcing. A bad file is rejected with a recorded reason and the message
//! succeeds: retrying would not make it good.

use anyhow::{bail, Context};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_s3::operation::get_object::GetObjectError;
use deadpool_postgres::Pool;
use medrec_core::vendor::{check_size, VendorError, VendorReason, MAX_FILE_BYTES};
use medrec_store::vendor::{ingest_vendor_file, reject, VendorSource, VendorStatus};

use crate::clean::{each_object, ObjectRef};
use crate::queue::FeaturesQueue;

/// The prefix the bucket notifies this function for.
pub const PREFIX: &str = "vendor/";

/// What happened to one object.
#[derive(Debug, PartialEq, Eq)]
pub enum VendorOutcome {
    Loaded {
        file_id: i64,
    },
    Ignored {
        file_id: i64,
    },
    Rejected {
        file_id: i64,
        reason: VendorReason,
    },
    /// Overwritten or deleted since the notification: the newer object has its own event.
    Superseded,
}

pub struct VendorFunction {
    pool: Pool,
    s3: aws_sdk_s3::Client,
    queue: FeaturesQueue,
}

impl VendorFunction {
    pub fn new(pool: Pool, s3: aws_sdk_s3::Client, queue: FeaturesQueue) -> VendorFunction {
        VendorFunction { pool, s3, queue }
    }

    /// Processes each message on its own; failed ones are reported for redelivery.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        crate::queue::each_message(event, |message| {
            each_object(message, |object| async move { self.object(&object).await })
        })
        .await
    }

    /// Loads one vendor file, then announces its person.
    pub async fn object(&self, object: &ObjectRef) -> anyhow::Result<VendorOutcome> {
        if !object.key.starts_with(PREFIX) {
            bail!("the key is not under {PREFIX}");
        }
        let source = VendorSource {
            name: format!("s3://{}/{}", object.bucket, object.key),
            version: object.etag.clone(),
        };
        let mut client = self.pool.get().await.context("no database connection")?;
        let started = std::time::Instant::now();
        let mut request = self.s3.get_object().bucket(&object.bucket).key(&object.key);
        if let Some(etag) = &object.etag {
            request = request.if_match(etag);
        }
        let output = match request.send().await {
            Ok(output) => output,
            Err(error) => {
                return match error.as_service_error() {
                    Some(GetObjectError::NoSuchKey(_)) => Ok(VendorOutcome::Superseded),
                    _ if error.raw_response().map(|r| r.status().as_u16()) == Some(412) => {
                        Ok(VendorOutcome::Superseded)
                    }
                    _ => Err(anyhow::Error::new(error).context("reading the object from S3")),
                }
            }
        };
        // The size is known from the response headers: a huge object is refused unread.
        let size = output.content_length().unwrap_or_default().max(0) as u64;
        if let Err(error) = check_size(size) {
            let report = reject(&client, &source, None, &error, started).await?;
            return Ok(VendorOutcome::Rejected {
                file_id: report.file_id,
                reason: error.reason,
            });
        }
        let bytes = output
            .body
            .collect()
            .await
            .context("reading the object body")?
            .into_bytes()
            .to_vec();
        if bytes.len() as u64 > MAX_FILE_BYTES {
            let error = VendorError::new(VendorReason::TooLarge, "body longer than announced");
            let report = reject(&client, &source, None, &error, started).await?;
            return Ok(VendorOutcome::Rejected {
                file_id: report.file_id,
                reason: error.reason,
            });
        }
        let report = ingest_vendor_file(&mut client, &source, bytes).await?;
        match report.status {
            VendorStatus::Loaded => {
                self.queue.announce(&report.persons).await?;
                Ok(VendorOutcome::Loaded {
                    file_id: report.file_id,
                })
            }
            VendorStatus::Ignored { .. } => {
                // The first delivery may have committed and then failed before announcing.
                if let Some(person) = report.person_id {
                    self.queue.announce(&[person]).await?;
                }
                Ok(VendorOutcome::Ignored {
                    file_id: report.file_id,
                })
            }
            VendorStatus::Rejected { reason, .. } => Ok(VendorOutcome::Rejected {
                file_id: report.file_id,
                reason,
            }),
        }
    }
}
