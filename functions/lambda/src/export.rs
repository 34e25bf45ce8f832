//! The export function: SQS messages carrying S3 notifications for `spines/` and
//! `full-exports/` objects, each handed to the pipeline's "an export was asked for" (which owns
//! the layout, the size limit, and which failures are settled rather than retried). A message
//! fails, to be redelivered and at last dead-lettered, only for a failure worth retrying.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use medrec_pipeline::{Delivered, ExportSink, Exports, ObjectSource};

use crate::s3_event::{each_object, NotifiedObject};

pub struct ExportFunction<S, E> {
    exports: Exports<S, E>,
}

impl<S: ObjectSource, E: ExportSink> ExportFunction<S, E> {
    pub fn new(exports: Exports<S, E>) -> ExportFunction<S, E> {
        ExportFunction { exports }
    }

    /// Processes each message on its own; failed ones are reported for redelivery.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        crate::queue::each_message(event, |message| {
            each_object(message, |object| async move { self.object(&object).await })
        })
        .await
    }

    /// One notified request.
    pub async fn object(&self, object: &NotifiedObject) -> anyhow::Result<Delivered> {
        let delivered = self
            .exports
            .notified(&object.key, &object.object_ref())
            .await?;
        match &delivered {
            Delivered::Exported { rows, parquet, .. } => {
                tracing::info!(rows, parquet, "exported");
            }
            // The reason is in the error report: a retry could only write it again.
            Delivered::Refused(error) => tracing::warn!(error = %error, "request settled"),
            Delivered::Superseded => tracing::info!("superseded since it was announced"),
        }
        Ok(delivered)
    }
}
