//! medrec's HTTP API: a person's clean resources and features, as JSON, as an axum [`Router`]
//! over the store. The `api` Lambda runs it with `lambda_http::run` (API Gateway HTTP API,
//! payload v2, or a function URL) and `medrec serve` with hyper (`local/src/serve.rs`, which
//! adds the connection limits: header and idle timeouts, a connection cap).
//!
//! Routes:
//! - `GET /persons/{id}?since=&until=&types=`: every clean resource of the person, by table
//! - `GET /persons/{id}/features?as_of=&explain=`: the person's features (with `explain=true`,
//!   the clean rows that decided each)
//! - `GET /runs?limit=&outcome=`: what became of the objects that reached medrec, newest first
//! - `GET /runs/{id}`: one ingest run: its counts, its quarantine by reason, its receipts
//! - `GET /report`: the quality report page (HTML, self-contained; [`report_page`])
//! - `GET /features`: the feature catalogue (name, type, unit, definition, NULL meaning, tables)
//! - `GET /health`: the database answers (no key needed)
//! - `GET /openapi.json`: the contract (`functions/api/openapi.json`)
//!
//! A request is checked in this order, and the first failure answers: the path (404), the method
//! (only GET; 405), the API key (every route but `/health`; 401), the query (400), the person id
//! (400). The query is bounded before it is decoded: over `params::MAX_QUERY_BYTES` (2048
//! bytes) it answers 414, with over `params::MAX_QUERY_PARAMS` (32) parameters 400. A body is
//! never read: a declared length over [`MAX_REQUEST_BODY`] answers 413 before anything else,
//! and an undeclared (chunked) one is cut off there. Errors are RFC 9457 problem documents
//! ([`problem::Problem`]); they never carry SQL, stack traces or record values.

pub mod keys;
mod params;
pub mod problem;
mod quality;
pub mod report_page;

use std::time::{Duration, Instant};

use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, MatchedPath, Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use deadpool_postgres::{Pool, PoolError};
use medrec_store::audit::{Access, AuditError, AuditLog, AuditRoute};
use medrec_store::features;
use medrec_store::person::{self, DocumentError, ResourceFilter};
use medrec_store::receipts;
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use crate::keys::{ApiKeys, KeyId};
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
const RUN: &str = "/runs/{id}";
const REPORT: &str = "/report";
const CATALOGUE: &str = "/features";
const HEALTH: &str = "/health";
const OPENAPI_PATH: &str = "/openapi.json";

/// The API over `pool` with one plain key, id `local` ([`keys::LOCAL_KEY_ID`]): see
/// [`router_with_keys`]. `api_key` must not be empty: an empty key would let every request in.
pub fn router(pool: Pool, api_key: &str) -> anyhow::Result<Router> {
    router_with_keys(pool, ApiKeys::plain(keys::LOCAL_KEY_ID, api_key)?)
}

/// The API over `pool`, built once per process (at cold start in the Lambda), accepting any of
/// `keys` (at least one). The caller's key id goes to the request log and the access audit.
/// The pool's user needs only the reader role's privileges (`medrec_store::roles`). Call it on a
/// tokio runtime: the access audit's writer ([`AuditLog`]) runs on it.
pub fn router_with_keys(pool: Pool, keys: ApiKeys) -> anyhow::Result<Router> {
    anyhow::ensure!(!keys.is_empty(), "no API key is configured");
    anyhow::ensure!(
        tokio::runtime::Handle::try_current().is_ok(),
        "the API router is built outside a tokio runtime"
    );
    let key = std::sync::Arc::new(keys);
    let audit = AuditLog::spawn(pool.clone());
    // Layers added later wrap the ones before; `route_layer`s only see matched routes.
    Ok(Router::new()
        .route(PERSON, get(person))
        .route(PERSON_EMPTY_ID, get(person))
        .route(FEATURES, get(person_features))
        .route(RUNS, get(runs))
        .route(RUN, get(quality::run))
        .route(REPORT, get(quality::report))
        .route(CATALOGUE, get(quality::features))
        .route(OPENAPI_PATH, get(openapi))
        .route_layer(middleware::from_fn_with_state(key, require_api_key))
        .route(HEALTH, get(health))
        .route_layer(middleware::from_fn(only_get))
        .fallback(not_found)
        .layer(Extension(audit))
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::map_response(bare_errors_as_problems))
        .layer(middleware::from_fn(log_request))
        .with_state(pool))
}

/// Requests' keys are hashed and compared with every key's SHA-256 in constant time
/// ([`ApiKeys::check`]). The key's id is a request extension (for the audit) and a response one
/// (for the request log).
async fn require_api_key(
    State(keys): State<std::sync::Arc<ApiKeys>>,
    mut request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(API_KEY_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    match keys.check(given) {
        Some(id) => {
            request.extensions_mut().insert(id.clone());
            let mut response = next.run(request).await;
            response.extensions_mut().insert(id);
            response
        }
        None => Problem::unauthorized().into_response(),
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
        Some(RUN) => "run",
        Some(REPORT) => "report",
        Some(CATALOGUE) => "catalogue",
        Some(HEALTH) => "health",
        Some(OPENAPI_PATH) => "openapi",
        _ => "unknown",
    };
    let response = next.run(request).await;
    // The id of the caller's key, never the key ("-": none was checked or it was refused).
    let key_id = response
        .extensions()
        .get::<KeyId>()
        .map(KeyId::as_str)
        .unwrap_or("-");
    tracing::info!(
        route,
        key_id,
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
    Extension(audit): Extension<AuditLog>,
    Extension(key): Extension<KeyId>,
    params: Params,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
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
    let answer = {
        let client = client(&pool, "person").await?;
        person::document(&client, person.get(), &filter).await
    };
    let answer = match answer {
        // The JSON text as the store wrote it: nothing to serialise again.
        Ok(Some(document)) => Ok(([(header::CONTENT_TYPE, "application/json")], document)),
        Ok(None) => Err(Problem::unknown_person()),
        Err(DocumentError::Database(error)) => Err(Problem::database("person", &error)),
        Err(error @ DocumentError::Unsupported(_)) => {
            tracing::error!(%error, "a person document could not be written");
            Err(Problem::internal())
        }
    };
    let answer = audited(&audit, AuditRoute::Person, person.get(), &key, answer).await?;
    Ok(answer.into_response())
}

/// Appends the access audit row of a person read (route, person, key id, status) through the
/// API's [`AuditLog`], then answers. An audit that cannot be written fails the read (5xx): a
/// read is never served unaudited. The read's connection is back in the pool by now: the audit
/// writer takes its own.
async fn audited<T>(
    audit: &AuditLog,
    route: AuditRoute,
    person: i64,
    key: &KeyId,
    answer: Result<T, Problem>,
) -> Result<T, Problem> {
    let status = match &answer {
        Ok(_) => StatusCode::OK.as_u16(),
        Err(problem) => problem.status().as_u16(),
    };
    let access = Access {
        route,
        person_id: person,
        key_id: key.as_str(),
        status,
    };
    match audit.record(&access).await {
        Ok(()) => answer,
        Err(error) => {
            tracing::error!(
                route = route.as_str(),
                "the access audit could not be written; the read is refused"
            );
            Err(match error {
                AuditError::Database(error) => {
                    let problem = Problem::database("audit", &error);
                    if problem.status().is_server_error() {
                        problem
                    } else {
                        Problem::unavailable()
                    }
                }
                AuditError::Unavailable | AuditError::Stopped => Problem::unavailable(),
            })
        }
    }
}

async fn person_features(
    State(pool): State<Pool>,
    Extension(audit): Extension<AuditLog>,
    Extension(key): Extension<KeyId>,
    params: Params,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    params.allow(&["as_of", "explain"])?;
    let person = person_id(id)?;
    let as_of = params.date("as_of")?;
    let explain = params.flag("explain")?;
    let answer = {
        let client = client(&pool, "features").await?;
        if explain {
            features::explain(&client, person.get(), as_of)
                .await
                .map(|found| found.map(|(doc, why)| (doc, Some(why))))
        } else {
            features::for_person(&client, person.get(), as_of)
                .await
                .map(|found| found.map(|doc| (doc, None)))
        }
    }
    .map_err(|e| Problem::database("features", &e))
    .and_then(|doc| doc.ok_or_else(Problem::unknown_person));
    let (doc, explanation) =
        audited(&audit, AuditRoute::Features, person.get(), &key, answer).await?;
    let mut body = json!({
        "person_id": doc.features.person_id,
        "data": doc.features.values,
        "definitions_version": doc.definitions_version,
        "as_of": as_of.map(|d| d.to_string()),
        "computed_at": doc.computed_at.map(|t| t.to_rfc3339()),
    });
    if let Some(why) = explanation {
        body["explanation"] = why;
    }
    Ok(Json(body))
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
