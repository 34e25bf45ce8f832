//! The features Lambda: SQS batches of person ids to recompute.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use medrec_lambda::{config, features::FeaturesFunction};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let pool = medrec_store::pool(&config::database().await?, config::pool_size()?)?;
    let function = Arc::new(FeaturesFunction::new(pool));
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let function = Arc::clone(&function);
        async move { Ok::<_, Error>(function.handle(event.payload).await) }
    }))
    .await
}
