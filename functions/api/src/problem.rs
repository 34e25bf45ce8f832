//! Error answers: RFC 9457 problem documents. They never carry SQL, stack traces or record values.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer (RFC 9457 problem details, `application/problem+json`).
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    title: &'static str,
    detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            title,
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "Bad Request", detail)
    }

    /// 414: the URI (or its query string) is longer than the server takes.
    pub fn uri_too_long(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::URI_TOO_LONG, "URI Too Long", detail)
    }

    pub fn not_found() -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "Not Found",
            "no such resource; see /openapi.json",
        )
    }

    pub fn unknown_person() -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "Not Found", "no such person")
    }

    pub fn unknown_run() -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "Not Found", "no such run")
    }

    pub fn method_not_allowed() -> Problem {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            "only GET is supported",
        )
    }

    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "a valid x-api-key header is required",
        )
    }

    pub fn unavailable() -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "the database is unavailable; retry later",
        )
    }

    /// A fault of the server's own, already logged by the caller (without record values).
    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "the request could not be answered",
        )
    }

    /// Logs the SQLSTATE only: a database message may quote values.
    pub fn database(route: &'static str, error: &tokio_postgres::Error) -> Problem {
        let code = error.code().map(|c| c.code()).unwrap_or("none");
        if error.is_closed() || error.code().is_none() {
            tracing::warn!(route, sqlstate = code, "database connection failed");
            return Problem::unavailable();
        }
        tracing::error!(route, sqlstate = code, "database query failed");
        Problem::internal()
    }

    /// The document, as sent.
    pub fn to_json(&self) -> String {
        json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        })
        .to_string()
    }

    /// The answer for an error response that a server limit (the tower-http body limit and
    /// timeout layers, or hyper's own answers to a request head it cannot parse, which
    /// `medrec serve` rewrites) built without a body of ours.
    pub fn for_bare_status(status: StatusCode) -> Problem {
        match status {
            StatusCode::BAD_REQUEST => Problem::bad_request("the request could not be parsed"),
            StatusCode::URI_TOO_LONG => Problem::uri_too_long("the URI is too long"),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Problem::new(
                status,
                "Request Header Fields Too Large",
                "the request head is too large",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::new(status, "Content Too Large", "the API takes no request body")
            }
            StatusCode::SERVICE_UNAVAILABLE => Problem::new(
                status,
                "Service Unavailable",
                "the request took too long; retry later",
            ),
            _ => Problem::new(
                status,
                status.canonical_reason().unwrap_or("Error"),
                "the request could not be answered",
            ),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut builder = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, PROBLEM_JSON);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            builder = builder.header(header::ALLOW, "GET");
        }
        if self.status == StatusCode::UNAUTHORIZED {
            builder = builder.header(header::WWW_AUTHENTICATE, "ApiKey header=\"x-api-key\"");
        }
        builder
            .body(Body::from(self.to_json()))
            .expect("static response parts are valid")
    }
}

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";
