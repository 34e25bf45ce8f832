//! `medrec serve`: the API's router (`medrec_api::router`, the same code the `api` function
//! runs) behind a plain HTTP/1.1 server (`axum::serve`), for benchmarks and for running the API
//! without `cargo lambda`. Requests reach the router as API Gateway's would: method, path, query
//! and headers. No graceful shutdown: the process stops on its signal, as it always has.

use std::net::SocketAddr;

use anyhow::Context;
use axum::serve::ListenerExt;
use medrec_store::DbConfig;

pub async fn run(
    listen: SocketAddr,
    db: &DbConfig,
    pool_size: usize,
    api_key: &str,
) -> anyhow::Result<()> {
    let pool = medrec_store::pool(db, pool_size)?;
    let router = medrec_api::router(pool, api_key)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!("serving the API on http://{}", listener.local_addr()?);
    // Accept errors (out of file descriptors and the like) are axum's to wait out; the open
    // connections keep being served.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, router)
        .await
        .context("serving the API")
}
