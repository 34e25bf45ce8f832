//! The clean and vendor functions: SQS messages carrying S3 object-created notifications, each
//! object handed to the pipeline's "a bucket notification named an object" (which owns
//! idempotency, re-announcing on redelivery, the vendor size and reject policy, and which
//! failures are settled rather than retried). A message fails, to be redelivered and at last
//! dead-lettered, only for a failure worth retrying.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use medrec_pipeline::{Accepts, ObjectSource, PersonsSink, Pipeline, Processed};

use crate::s3_event::{each_object, NotifiedObject};

pub struct ObjectsFunction<S, P> {
    pipeline: Pipeline<S, P>,
    /// One clean function per table in the cloud; the vendor function takes `vendor/` only.
    accepts: Accepts,
}

impl<S: ObjectSource, P: PersonsSink> ObjectsFunction<S, P> {
    pub fn new(pipeline: Pipeline<S, P>, accepts: Accepts) -> ObjectsFunction<S, P> {
        ObjectsFunction { pipeline, accepts }
    }

    pub fn pipeline(&self) -> &Pipeline<S, P> {
        &self.pipeline
    }

    /// Processes each message on its own; failed ones are reported for redelivery.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        crate::queue::each_message(event, |message| {
            each_object(message, |object| async move { self.object(&object).await })
        })
        .await
    }

    /// One notified object.
    pub async fn object(&self, object: &NotifiedObject) -> anyhow::Result<Processed> {
        let processed = self
            .pipeline
            .notified(&object.key, &object.object_ref(), self.accepts)
            .await?;
        if let Processed::Refused(error) = &processed {
            // Recorded with its reason (ingest_run.error); a retry could only record it again.
            tracing::warn!(error = %error, "permanently bad object settled");
        }
        Ok(processed)
    }
}
