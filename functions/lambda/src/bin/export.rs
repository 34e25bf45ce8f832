//! The export function: SQS messages carrying S3 notifications for `spines/` (a training set)
//! and `full-exports/` (every person) objects; the Parquet file and its manifest go to
//! `exports/` in the same bucket.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use medrec_lambda::{config, export::ExportFunction, s3_exports::S3Exports, s3_source::S3Source};
use medrec_pipeline::Exports;

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let sdk = config::aws().await;
    let pool = medrec_store::pool(&config::database().await?, config::pool_size()?)?;
    let exports = Exports::new(
        pool,
        S3Source::new(config::s3_client(sdk)),
        S3Exports::new(config::s3_client(sdk)),
    )
    .with_max_spine_bytes(config::max_spine_bytes()?);
    let function = Arc::new(ExportFunction::new(exports));
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let function = Arc::clone(&function);
        async move { Ok::<_, Error>(function.handle(event.payload).await) }
    }))
    .await
}
