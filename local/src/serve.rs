//! `medrec serve`: the API Lambda's router (`medrec_lambda::api::Api`, the same code the `api`
//! function runs) behind a plain HTTP/1.1 server, for benchmarks and for running the API
//! without `cargo lambda`. Requests reach the router exactly as API Gateway's would: method,
//! path, query and headers.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use medrec_lambda::api::Api;
use medrec_store::DbConfig;

pub async fn run(
    listen: SocketAddr,
    db: &DbConfig,
    pool_size: usize,
    api_key: &str,
) -> anyhow::Result<()> {
    let pool = medrec_store::pool(db, pool_size)?;
    let api = Arc::new(Api::new(pool, api_key)?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!("serving the API on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: keep serving the open connections.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let api = Arc::clone(&api);
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await?.to_bytes();
                    let request = lambda_http::Request::from_parts(
                        parts,
                        if body.is_empty() {
                            lambda_http::Body::Empty
                        } else {
                            lambda_http::Body::Binary(body.to_vec())
                        },
                    );
                    let (parts, body) = api.handle(request).await.into_parts();
                    let body = match body {
                        lambda_http::Body::Empty => Bytes::new(),
                        lambda_http::Body::Text(text) => Bytes::from(text),
                        lambda_http::Body::Binary(bytes) => Bytes::from(bytes),
                        _ => Bytes::copy_from_slice(body.as_ref()),
                    };
                    Ok::<_, hyper::Error>(hyper::Response::from_parts(parts, Full::new(body)))
                }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}
