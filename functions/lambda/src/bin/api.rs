//! The HTTP API Lambda (API Gateway HTTP API or a function URL).

use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use medrec_lambda::{api::Api, config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let pool = medrec_store::pool(&config::database().await?, config::pool_size()?)?;
    let api = Arc::new(Api::new(pool, &config::api_key().await?)?);
    run(service_fn(move |request: Request| {
        let api = Arc::clone(&api);
        async move { Ok::<_, std::convert::Infallible>(api.handle(request).await) }
    }))
    .await
}
