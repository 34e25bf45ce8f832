//! medrec's HTTP API: a person's clean resources and features, as JSON, as an axum [`Router`]
//! over the store. The `api` Lambda runs it with `lambda_http::run` (API Gateway HTTP API,
//! payload v2, or a function URL) and `medrec serve` with `axum::serve`.
//!
//! Routes:
//! - `GET /persons/{id}?since=&until=&types=`: every clean resource of the person, by table
//! - `GET /persons/{id}/features?as_of=`: the person's features
//! - `GET /runs?limit=&outcome=`: what became of the objects that reached medrec, newest first
//! - `GET /health`: the database answers (no key needed)
//! - `GET /openapi.json`: the contract (`functions/api/openapi.json`)
//!
//! A request is checked in this order, and the first failure answers: the path (404), the method
//! (only GET; 405), the API key (every route but `/health`; 401), the query (400), the person id
//! (400). Errors are RFC 9457 problem documents ([`problem::Problem`]); they never carry SQL,
//! stack traces or record values.

mod params;
pub mod problem;

use std::time::{Duration, Instant};

use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use deadpool_postgres::{Pool, PoolError};
use medrec_store::features;
use medrec_store::person::{self, ResourceFilter};
use medrec_store::receipts;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::params::{person_id, Params};
use crate::problem::{Problem, PROBLEM_JSON};

/// The OpenAPI document, served as is.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The longest a request may take before it is answered 503 (a problem document): under the
/// `api` function's 10 s timeout, so that callers get an answer rather than a gateway error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);

/// The largest request body accepted (413 beyond). No route reads a body.
pub const MAX_REQUEST_BODY: usize = 16 * 1024;

const PERSON: &str = "/persons/{id}";
/// `/persons/{id}` with the id left empty: a bad id (400), as in `/persons//features`, which the
/// `{id}` routes match with an empty id; not an unknown path.
const PERSON_EMPTY_ID: &str = "/persons/";
const FEATURES: &str = "/persons/{id}/features";
const RUNS: &str = "/runs";
const HEALTH: &str = "/health";
const OPENAPI_PATH: &str = "/openapi.json";

/// The API over `pool`, built once per process (at cold start in the Lambda). `api_key` must
/// not be empty: an empty key would let every request in.
pub fn router(pool: Pool, api_key: &str) -> anyhow::Result<Router> {
    anyhow::ensure!(!api_key.is_empty(), "the API key is empty");
    let key = KeyDigest(Sha256::digest(api_key.as_bytes()).into());
    // Layers added later wrap the ones before; `route_layer`s only see matched routes.
    Ok(Router::new()
        .route(PERSON, get(person))
        .route(PERSON_EMPTY_ID, get(person))
        .route(FEATURES, get(person_features))
        .route(RUNS, get(runs))
        .route(OPENAPI_PATH, get(openapi))
        .route_layer(middleware::from_fn_with_state(key, require_api_key))
        .route(HEALTH, get(health))
        .route_layer(middleware::from_fn(only_get))
        .fallback(not_found)
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::map_response(bare_errors_as_problems))
        .layer(middleware::from_fn(log_request))
        .with_state(pool))
}

/// The SHA-256 of the API key: requests' keys are hashed too, so the comparison takes the same
/// time whatever the lengths.
#[derive(Clone, Copy)]
struct KeyDigest([u8; 32]);

async fn require_api_key(State(key): State<KeyDigest>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(API_KEY_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let given: [u8; 32] = Sha256::digest(given).into();
    if bool::from(given.ct_eq(&key.0)) {
        next.run(request).await
    } else {
        Problem::unauthorized().into_response()
    }
}

/// HEAD included: every route is GET only.
async fn only_get(request: Request, next: Next) -> Response {
    if request.method() == Method::GET {
        next.run(request).await
    } else {
        Problem::method_not_allowed().into_response()
    }
}

async fn not_found() -> Problem {
    Problem::not_found()
}

/// Route names, statuses and timings only: no path (it may carry filters) and no body.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = match request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some(PERSON | PERSON_EMPTY_ID) => "person",
        Some(FEATURES) => "features",
        Some(RUNS) => "runs",
        Some(HEALTH) => "health",
        Some(OPENAPI_PATH) => "openapi",
        _ => "unknown",
    };
    let response = next.run(request).await;
    tracing::info!(
        route,
        status = response.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// The body limit and the timeout answer with a bare status: give those a problem document.
async fn bare_errors_as_problems(response: Response) -> Response {
    let status = response.status();
    let ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t == PROBLEM_JSON || t == "application/json");
    if ours || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    tracing::warn!(status = status.as_u16(), "a server limit answered");
    Problem::for_bare_status(status).into_response()
}

async fn person(
    State(pool): State<Pool>,
    params: Params,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    params.allow(&["since", "until", "types"])?;
    let person = person_id(id)?;
    let filter = ResourceFilter {
        since: params.date("since")?,
        until: params.date("until")?,
        tables: params.tables("types")?,
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until) {
        if since > until {
            return Err(Problem::bad_request("since is after until"));
        }
    }
    let client = client(&pool, "person").await?;
    person::document(&client, person.get(), &filter)
        .await
        .map_err(|e| Problem::database("person", &e))?
        .map(Json)
        .ok_or_else(Problem::unknown_person)
}

async fn person_features(
    State(pool): State<Pool>,
    params: Params,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    params.allow(&["as_of"])?;
    let person = person_id(id)?;
    let as_of = params.date("as_of")?;
    let client = client(&pool, "features").await?;
    let doc = features::for_person(&client, person.get(), as_of)
        .await
        .map_err(|e| Problem::database("features", &e))?
        .ok_or_else(Problem::unknown_person)?;
    Ok(Json(json!({
        "person_id": doc.features.person_id,
        "data": doc.features.values,
        "definitions_version": doc.definitions_version,
        "as_of": as_of.map(|d| d.to_string()),
        "computed_at": doc.computed_at.map(|t| t.to_rfc3339()),
    })))
}

/// Receipts listed per request at most.
const MAX_RUNS: i64 = 1000;

async fn runs(
    State(pool): State<Pool>,
    params: Params,
) -> Result<Json<serde_json::Value>, Problem> {
    params.allow(&["limit", "outcome"])?;
    let limit = params.integer("limit", 1, MAX_RUNS)?.unwrap_or(50);
    let outcome = params.outcome("outcome")?;
    let client = client(&pool, "runs").await?;
    let runs = receipts::recent(&client, limit, outcome)
        .await
        .map_err(|e| Problem::database("runs", &e))?;
    Ok(Json(json!({ "runs": runs })))
}

async fn openapi(params: Params) -> Result<Response, Problem> {
    params.allow(&[])?;
    Ok(([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response())
}

async fn health(State(pool): State<Pool>, params: Params) -> Result<Response, Problem> {
    params.allow(&[])?;
    let check = async {
        let client = pool.get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    Ok(
        match tokio::time::timeout(Duration::from_secs(2), check).await {
            Ok(Some(_)) => Json(json!({"status": "ok", "database": "ok"})).into_response(),
            _ => {
                tracing::warn!("health check: the database did not answer");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"status": "unavailable", "database": "unreachable"})),
                )
                    .into_response()
            }
        },
    )
}

async fn client(pool: &Pool, route: &'static str) -> Result<deadpool_postgres::Object, Problem> {
    pool.get().await.map_err(|error| {
        tracing::warn!(
            route,
            kind = pool_error_kind(&error),
            "no database connection"
        );
        Problem::unavailable()
    })
}

fn pool_error_kind(error: &PoolError) -> &'static str {
    match error {
        PoolError::Timeout(_) => "timeout",
        PoolError::Backend(_) => "backend",
        PoolError::Closed => "closed",
        PoolError::NoRuntimeSpecified => "no_runtime",
        PoolError::PostCreateHook(_) => "post_create_hook",
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    async fn answer(response: Response) -> (StatusCode, String, String) {
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_timeout_becomes_a_problem_document_and_ours_stay_as_they_are() {
        // What tower-http's timeout layer answers.
        let mut bare = Response::new(Body::empty());
        *bare.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let (status, content_type, body) = answer(bare_errors_as_problems(bare).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(
            body,
            r#"{"detail":"the request took too long; retry later","status":503,"title":"Service Unavailable","type":"about:blank"}"#
        );

        for ours in [
            Problem::unavailable().into_response(),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response(),
        ] {
            let before = answer(ours).await;
            let rebuilt = Response::builder()
                .status(before.0)
                .header(header::CONTENT_TYPE, &before.1)
                .body(Body::from(before.2.clone()))
                .unwrap();
            assert_eq!(answer(bare_errors_as_problems(rebuilt).await).await, before);
        }
    }
}
