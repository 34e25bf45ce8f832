//! The HTTP API: a person's clean resources and features, as JSON.
//!
//! Routes (API Gateway HTTP API, payload v2, or a function URL):
//! - `GET /persons/{id}?since=&until=&types=`: every clean resource of the person, by table
//! - `GET /persons/{id}/features?as_of=`: the person's features
//! - `GET /health`: the database answers (no key needed)
//! - `GET /openapi.json`: the contract (`functions/lambda/openapi.json`)
//!
//! Errors are RFC 9457 problem documents; they never carry SQL, stack traces or record values.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use deadpool_postgres::{Pool, PoolError};
use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use medrec_core::Table;
use medrec_store::features;
use medrec_store::person::{self, ResourceFilter};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The OpenAPI document, served as is.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Everything a request needs, built once per process (cold start).
pub struct Api {
    pool: Pool,
    key_digest: [u8; 32],
}

impl Api {
    /// `api_key` must not be empty: an empty key would let every request in.
    pub fn new(pool: Pool, api_key: &str) -> anyhow::Result<Api> {
        anyhow::ensure!(!api_key.is_empty(), "the API key is empty");
        Ok(Api {
            pool,
            key_digest: Sha256::digest(api_key.as_bytes()).into(),
        })
    }

    /// Answers one request; never fails (errors become problem responses).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let (route, response) = match self.route(&request).await {
            Ok((route, response)) => (route, response),
            Err(problem) => (problem.route, problem.into_response()),
        };
        // Ids, statuses and timings only: no path (it may carry filters) and no body.
        tracing::info!(
            route,
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request"
        );
        response
    }

    async fn route(&self, request: &Request) -> Result<(&'static str, Response<Body>), Problem> {
        let segments: Vec<&str> = request.uri().path().split('/').skip(1).collect();
        let (route, target) = match segments.as_slice() {
            ["health"] => ("health", Target::Health),
            ["openapi.json"] => ("openapi", Target::OpenApi),
            ["persons", id] => ("person", Target::Person(id)),
            ["persons", id, "features"] => ("features", Target::Features(id)),
            _ => {
                return Err(Problem::new(
                    "unknown",
                    StatusCode::NOT_FOUND,
                    "Not Found",
                    "no such resource; see /openapi.json",
                ))
            }
        };
        if request.method() != Method::GET {
            return Err(Problem::new(
                route,
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                "only GET is supported",
            ));
        }
        if route != "health" {
            self.authorize(request, route)?;
        }
        let query = Query::parse(request.uri().query(), route)?;
        let response = match target {
            Target::Health => {
                query.allow(&[])?;
                self.health().await
            }
            Target::OpenApi => {
                query.allow(&[])?;
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(OPENAPI))
                    .expect("static response parts are valid")
            }
            Target::Person(id) => {
                query.allow(&["since", "until", "types"])?;
                let person = parse_person_id(id, route)?;
                let filter = ResourceFilter {
                    since: query.date("since")?,
                    until: query.date("until")?,
                    tables: query.tables("types")?,
                };
                if let (Some(since), Some(until)) = (filter.since, filter.until) {
                    if since > until {
                        return Err(Problem::bad_request(route, "since is after until"));
                    }
                }
                let client = self.client(route).await?;
                match person::document(&client, person, &filter)
                    .await
                    .map_err(|e| Problem::database(route, &e))?
                {
                    Some(document) => json_response(StatusCode::OK, &document),
                    None => return Err(Problem::unknown_person(route)),
                }
            }
            Target::Features(id) => {
                query.allow(&["as_of"])?;
                let person = parse_person_id(id, route)?;
                let as_of = query.date("as_of")?;
                let client = self.client(route).await?;
                match features::for_person(&client, person, as_of)
                    .await
                    .map_err(|e| Problem::database(route, &e))?
                {
                    Some(doc) => json_response(
                        StatusCode::OK,
                        &json!({
                            "person_id": doc.features.person_id,
                            "data": doc.features.values,
                            "definitions_version": doc.definitions_version,
                            "as_of": as_of.map(|d| d.to_string()),
                            "computed_at": doc.computed_at.map(|t| t.to_rfc3339()),
                        }),
                    ),
                    None => return Err(Problem::unknown_person(route)),
                }
            }
        };
        Ok((route, response))
    }

    fn authorize(&self, request: &Request, route: &'static str) -> Result<(), Problem> {
        let given = request
            .headers()
            .get(API_KEY_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        // Digests first, so the comparison takes the same time whatever the lengths.
        let given: [u8; 32] = Sha256::digest(given).into();
        if bool::from(given.ct_eq(&self.key_digest)) {
            Ok(())
        } else {
            Err(Problem::new(
                route,
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a valid x-api-key header is required",
            ))
        }
    }

    async fn client(&self, route: &'static str) -> Result<deadpool_postgres::Object, Problem> {
        self.pool.get().await.map_err(|error| {
            tracing::warn!(
                route,
                kind = pool_error_kind(&error),
                "no database connection"
            );
            Problem::unavailable(route)
        })
    }

    async fn health(&self) -> Response<Body> {
        let check = async {
            let client = self.pool.get().await.ok()?;
            client.simple_query("SELECT 1").await.ok()
        };
        match tokio::time::timeout(Duration::from_secs(2), check).await {
            Ok(Some(_)) => {
                json_response(StatusCode::OK, &json!({"status": "ok", "database": "ok"}))
            }
            _ => {
                tracing::warn!("health check: the database did not answer");
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "unavailable", "database": "unreachable"}),
                )
            }
        }
    }
}

/// What a path names.
enum Target<'a> {
    Health,
    OpenApi,
    Person(&'a str),
    Features(&'a str),
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

/// A person id as the database keys it: a positive 64-bit integer, digits only.
fn parse_person_id(text: &str, route: &'static str) -> Result<i64, Problem> {
    let bad = || Problem::bad_request(route, "person_id must be a positive integer below 2^63");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(bad()),
    }
}

/// The query string, decoded; each parameter at most once.
struct Query {
    route: &'static str,
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(query: Option<&str>, route: &'static str) -> Result<Query, Problem> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(Problem::bad_request(
                    route,
                    "a query parameter is given more than once",
                ));
            }
        }
        Ok(Query { route, pairs })
    }

    /// Rejects parameters the route does not know (a typo must not silently widen a query).
    fn allow(&self, known: &[&str]) -> Result<(), Problem> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            None => Ok(()),
            Some(_) if known.is_empty() => Err(Problem::bad_request(
                self.route,
                "this resource takes no query parameters",
            )),
            Some(_) => Err(Problem::bad_request(
                self.route,
                &format!("unknown query parameter; known: {}", known.join(", ")),
            )),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A calendar date written YYYY-MM-DD.
    fn date(&self, name: &'static str) -> Result<Option<NaiveDate>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let strict = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
        match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) if strict => Ok(Some(date)),
            _ => Err(Problem::bad_request(
                self.route,
                &format!("{name} must be a date written YYYY-MM-DD"),
            )),
        }
    }

    /// A comma-separated list of table names, without repeats.
    fn tables(&self, name: &'static str) -> Result<Option<Vec<Table>>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let bad = || {
            Problem::bad_request(
                self.route,
                &format!(
                    "{name} must list tables from: {}",
                    Table::ALL.map(|t| t.name()).join(", ")
                ),
            )
        };
        let mut tables = Vec::new();
        for part in text.split(',') {
            let table = Table::ALL
                .into_iter()
                .find(|t| t.name() == part)
                .ok_or_else(bad)?;
            if !tables.contains(&table) {
                tables.push(table);
            }
        }
        Ok(Some(tables))
    }
}

fn json_response(status: StatusCode, body: &Json) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("static response parts are valid")
}

/// An error answer (RFC 9457 problem details).
#[derive(Debug)]
struct Problem {
    route: &'static str,
    status: StatusCode,
    title: &'static str,
    detail: String,
}

impl Problem {
    fn new(route: &'static str, status: StatusCode, title: &'static str, detail: &str) -> Problem {
        Problem {
            route,
            status,
            title,
            detail: detail.to_owned(),
        }
    }

    fn bad_request(route: &'static str, detail: &str) -> Problem {
        Problem::new(route, StatusCode::BAD_REQUEST, "Bad Request", detail)
    }

    fn unknown_person(route: &'static str) -> Problem {
        Problem::new(route, StatusCode::NOT_FOUND, "Not Found", "no such person")
    }

    fn unavailable(route: &'static str) -> Problem {
        Problem::new(
            route,
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "the database is unavailable; retry later",
        )
    }

    /// Logs the SQLSTATE only: a database message may quote values.
    fn database(route: &'static str, error: &tokio_postgres::Error) -> Problem {
        let code = error.code().map(|c| c.code()).unwrap_or("none");
        if error.is_closed() || error.code().is_none() {
            tracing::warn!(route, sqlstate = code, "database connection failed");
            return Problem::unavailable(route);
        }
        tracing::error!(route, sqlstate = code, "database query failed");
        Problem::new(
            route,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "the request could not be answered",
        )
    }

    fn into_response(self) -> Response<Body> {
        let mut builder = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/problem+json");
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            builder = builder.header(header::ALLOW, "GET");
        }
        if self.status == StatusCode::UNAUTHORIZED {
            builder = builder.header(header::WWW_AUTHENTICATE, "ApiKey header=\"x-api-key\"");
        }
        let body = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        builder
            .body(Body::from(body.to_string()))
            .expect("static response parts are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_ids_are_positive_digit_strings_that_fit() {
        assert_eq!(parse_person_id("3585", "person").unwrap(), 3585);
        assert_eq!(
            parse_person_id("9223372036854775807", "person").unwrap(),
            i64::MAX
        );
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "1.0",
            "1e3",
            "abc",
            " 1",
            "9223372036854775808",
            "99999999999999999999999",
        ] {
            let problem = parse_person_id(bad, "person").unwrap_err();
            assert_eq!(problem.status, StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn dates_must_be_written_in_full() {
        let q = |s: &str| Query::parse(Some(s), "person").unwrap();
        assert_eq!(
            q("since=2034-01-05").date("since").unwrap(),
            NaiveDate::from_ymd_opt(2034, 1, 5)
        );
        for bad in [
            "since=2034-1-5",
            "since=2034-02-30",
            "since=05/01/2034",
            "since=",
            "since=2034-01-05T00:00",
        ] {
            assert!(q(bad).date("since").is_err(), "{bad}");
        }
        assert_eq!(q("").date("since").unwrap(), None);
    }

    #[test]
    fn tables_are_a_known_comma_list() {
        let q = |s: &str| Query::parse(Some(s), "person").unwrap();
        assert_eq!(
            q("types=rx,labs,rx").tables("types").unwrap(),
            Some(vec![Table::Rx, Table::Labs])
        );
        for bad in ["types=", "types=rx,", "types=RX", "types=rx,vitals"] {
            assert!(q(bad).tables("types").is_err(), "{bad}");
        }
    }

    #[test]
    fn repeated_and_unknown_parameters_are_refused() {
        assert!(Query::parse(Some("since=2034-01-01&since=2035-01-01"), "person").is_err());
        let q = Query::parse(Some("sinse=2034-01-01"), "person").unwrap();
        assert!(q.allow(&["since", "until", "types"]).is_err());
        assert!(q.allow(&[]).is_err());
        assert!(Query::parse(None, "health").unwrap().allow(&[]).is_ok());
    }
}
