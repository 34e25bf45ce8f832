//! The migrations Lambda: a CloudFormation custom resource, or invoked directly.

use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use medrec_lambda::{config, migrate::MigrateFunction};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let function = Arc::new(
        MigrateFunction::new(config::database().await?).with_logins(config::database_logins()?),
    );
    run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move { function.handle(event.payload).await.map_err(Error::from) }
    }))
    .await
}
