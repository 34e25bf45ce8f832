//! What the data team looks at: the quality report page (`GET /report`), one run's detail
//! (`GET /runs/{id}`) and the feature catalogue (`GET /features`). Counts, reasons, line numbers
//! and ids only: the API never gathers the report with record values.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::Pool;
use serde_json::json;

use crate::params::{run_id, Params};
use crate::problem::Problem;

pub async fn report(State(pool): State<Pool>, params: Params) -> Result<Response, Problem> {
    params.allow(&[])?;
    let mut client = crate::client(&pool, "report").await?;
    let report = medrec_store::report::gather(&mut client, false)
        .await
        .map_err(|e| Problem::database("report", &e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page is self-contained: nothing may load from anywhere, and no script runs.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        crate::report_page::render(&report),
    )
        .into_response())
}

pub async fn run(
    State(pool): State<Pool>,
    params: Params,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    params.allow(&[])?;
    let id = run_id(id)?;
    let client = crate::client(&pool, "run").await?;
    let detail = medrec_store::report::run_detail(&client, id)
        .await
        .map_err(|e| Problem::database("run", &e))?
        .ok_or_else(Problem::unknown_run)?;
    Ok(Json(json!(detail)))
}

/// The catalogue from its one source, `medrec_core::features::FEATURES`, with the definitions
/// version the database computes with.
pub async fn features(
    State(pool): State<Pool>,
    params: Params,
) -> Result<Json<serde_json::Value>, Problem> {
    params.allow(&[])?;
    let client = crate::client(&pool, "catalogue").await?;
    let version: String = client
        .query_one("SELECT feature_definitions_version()", &[])
        .await
        .map_err(|e| Problem::database("catalogue", &e))?
        .get(0);
    Ok(Json(medrec_core::features::catalogue(&version)))
}
