//! The cleaning Lambda: SQS messages carrying S3 notifications for `raw/<table>/` objects.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use medrec_lambda::{config, objects::ObjectsFunction, queue::FeaturesQueue, s3_source::S3Source};
use medrec_pipeline::{Accepts, Pipeline};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let sdk = config::aws().await;
    let pool = medrec_store::pool(&config::database().await?, config::pool_size()?)?;
    let queue = FeaturesQueue::new(aws_sdk_sqs::Client::new(sdk), config::features_queue_url()?);
    let pipeline = Pipeline::new(pool, S3Source::new(config::s3_client(sdk)), queue)
        .with_max_csv_bytes(config::max_csv_bytes()?);
    let function = Arc::new(ObjectsFunction::new(
        pipeline,
        Accepts::Raw(config::table()?),
    ));
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let function = Arc::clone(&function);
        async move { Ok::<_, Error>(function.handle(event.payload).await) }
    }))
    .await
}
