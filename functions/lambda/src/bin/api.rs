//! The HTTP API Lambda (API Gateway HTTP API or a function URL): `medrec_api`'s router, run by
//! lambda_http (an axum `Router` is a tower service of lambda_http's requests).

use lambda_http::{run, Error};
use medrec_lambda::config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_tracing();
    let pool = medrec_store::pool(&config::database().await?, config::pool_size()?)?;
    run(medrec_api::router_with_keys(
        pool,
        config::api_keys().await?,
    )?)
    .await
}
