//! The features function: SQS batches of `{"person_ids": [..]}` messages. The ids of a batch are
//! de-duplicated and recomputed in one set-based statement; a message that cannot be parsed is
//! reported alone (partial batch failure), so a poisoned message reaches the DLQ without failing
//! the others. Each batch also recomputes up to `medrec_pipeline::FUNCTION_OWED_PER_BATCH`
//! persons that earlier runs left owed (the pipeline's `persons_changed`).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use deadpool_postgres::Pool;

use crate::queue::PersonsMessage;

pub struct FeaturesFunction {
    pool: Pool,
}

impl FeaturesFunction {
    pub fn new(pool: Pool) -> FeaturesFunction {
        FeaturesFunction { pool }
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failed: Vec<String> = Vec::new();
        let mut parsed: Vec<String> = Vec::new();
        let mut persons: Vec<i64> = Vec::new();
        for message in event.records {
            let id = message.message_id.unwrap_or_default();
            match PersonsMessage::parse(message.body.as_deref().unwrap_or_default()) {
                Ok(body) => {
                    persons.extend(body.person_ids.into_iter().map(i64::from));
                    parsed.push(id);
                }
                Err(error) => {
                    tracing::error!(
                        message_id = id,
                        error = crate::log_safe(&error),
                        "poisoned message"
                    );
                    failed.push(id);
                }
            }
        }
        if !persons.is_empty() {
            match self.refresh(&persons).await {
                Ok(rows) => tracing::info!(rows, "features recomputed"),
                Err(error) => {
                    tracing::error!(
                        persons = persons.len(),
                        error = crate::log_safe(&error),
                        "recompute failed"
                    );
                    failed.append(&mut parsed);
                }
            }
        }
        let mut response = SqsBatchResponse::default();
        for id in failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        response
    }

    async fn refresh(&self, persons: &[i64]) -> anyhow::Result<i64> {
        let client = self.pool.get().await?;
        // Never everyone here (at most FUNCTION_OWED_PER_BATCH owed), so no further connections.
        let done = medrec_pipeline::persons_changed(
            &client,
            &[],
            persons,
            medrec_pipeline::Owed::AtMost(medrec_pipeline::FUNCTION_OWED_PER_BATCH),
        )
        .await?;
        Ok(done.total())
    }
}
