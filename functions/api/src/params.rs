//! What a request names besides its route: the query's parameters and the path's person id.
//!
//! The query string is bounded before it is decoded, in time linear in its length: longer than
//! [`MAX_QUERY_BYTES`] it answers 414 URI Too Long, with more than [`MAX_QUERY_PARAMS`]
//! parameters 400, both as problem documents. Every route that takes a query (all of them,
//! `/health` included) goes through [`Params`], so no route does more than linear work on it.

use std::collections::HashSet;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use chrono::NaiveDate;
use medrec_core::{PersonId, Table};
use medrec_store::receipts::Outcome;

use crate::problem::Problem;

/// The longest query string accepted (the bytes after `?`, as sent): 414 beyond. The longest
/// legitimate one (`since`, `until` and all five `types`) is under 100 bytes.
pub const MAX_QUERY_BYTES: usize = 2048;

/// The most query parameters accepted (`&`-separated pieces): 400 beyond. No route knows more
/// than three.
pub const MAX_QUERY_PARAMS: usize = 32;

/// The query string's parameters, decoded by axum's [`Query`] (form encoding, in order); each
/// parameter at most once.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params, Problem> {
        check_size(parts.uri.query().unwrap_or_default())?;
        // Pairs of strings: decoding never fails (invalid UTF-8 is replaced, as in any form).
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::bad_request("the query string is not valid"))?;
        Params::new(pairs)
    }
}

/// The raw query's limits, checked before it is decoded.
fn check_size(query: &str) -> Result<(), Problem> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(Problem::uri_too_long(format!(
            "the query string is longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    // Empty pieces (`a=1&&b=2`) are no parameters, as in the form decoding.
    if query.split('&').filter(|p| !p.is_empty()).count() > MAX_QUERY_PARAMS {
        return Err(Problem::bad_request(format!(
            "the query string has more than {MAX_QUERY_PARAMS} parameters"
        )));
    }
    Ok(())
}

impl Params {
    /// Linear in the number of parameters (a set of the names seen).
    fn new(pairs: Vec<(String, String)>) -> Result<Params, Problem> {
        let mut seen = HashSet::with_capacity(pairs.len());
        if !pairs.iter().all(|(name, _)| seen.insert(name.as_str())) {
            return Err(Problem::bad_request(
                "a query parameter is given more than once",
            ));
        }
        Ok(Params(pairs))
    }

    /// Rejects parameters the route does not know (a typo must not silently widen a query).
    pub fn allow(&self, known: &[&str]) -> Result<(), Problem> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(_) if known.is_empty() => Err(Problem::bad_request(
                "this resource takes no query parameters",
            )),
            Some(_) => Err(Problem::bad_request(format!(
                "unknown query parameter; known: {}",
                known.join(", ")
            ))),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `true` or `false` (absent: false).
    pub fn flag(&self, name: &'static str) -> Result<bool, Problem> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(Problem::bad_request(format!(
                "{name} must be true or false"
            ))),
        }
    }

    /// A calendar date written YYYY-MM-DD, of a year from 0001 to 9999 (chrono alone would take
    /// `-999-01-01` and `0000-01-01`).
    pub fn date(&self, name: &'static str) -> Result<Option<NaiveDate>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let b = text.as_bytes();
        let strict = b.len() == 10
            && b[..4].iter().all(u8::is_ascii_digit)
            && &b[..4] != b"0000"
            && b[4] == b'-'
            && b[7] == b'-';
        match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) if strict => Ok(Some(date)),
            _ => Err(Problem::bad_request(format!(
                "{name} must be a date written YYYY-MM-DD, of a year from 0001 to 9999"
            ))),
        }
    }

    /// A decimal integer within `min..=max`.
    pub fn integer(&self, name: &'static str, min: i64, max: i64) -> Result<Option<i64>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match digits(text) {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(Problem::bad_request(format!(
                "{name} must be a whole number from {min} to {max}"
            ))),
        }
    }

    /// One of the object outcomes of `medrec_store::receipts::Outcome`.
    pub fn outcome(&self, name: &'static str) -> Result<Option<Outcome>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        text.parse().map(Some).map_err(|_| {
            let known: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            Problem::bad_request(format!("{name} must be one of: {}", known.join(", ")))
        })
    }

    /// A comma-separated list of table names, without repeats.
    pub fn tables(&self, name: &'static str) -> Result<Option<Vec<Table>>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let bad = || {
            Problem::bad_request(format!(
                "{name} must list tables from: {}",
                Table::ALL.map(|t| t.name()).join(", ")
            ))
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

/// The `{id}` path parameter: a [`PersonId`] written in digits. The handlers take the path as a
/// `Result` (never a rejection) and call this after checking the query, the order it has always
/// had. `PersonId`'s `Deserialize` takes JSON integers only, so the text goes through `FromStr`.
/// A whole number written as digits only (no sign, no spaces) that fits an `i64`.
fn digits(text: &str) -> Option<i64> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
        .flatten()
}

/// A run id from the path: a positive whole number.
pub fn run_id(path: Result<Path<String>, PathRejection>) -> Result<i64, Problem> {
    path.ok()
        .and_then(|Path(text)| digits(&text))
        .filter(|id| *id > 0)
        .ok_or_else(|| Problem::bad_request("the run id must be a positive whole number"))
}

pub fn person_id(path: Result<Path<String>, PathRejection>) -> Result<PersonId, Problem> {
    path.ok()
        .and_then(|Path(text)| text.parse().ok())
        .ok_or_else(|| Problem::bad_request("person_id must be a positive integer below 2^63"))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn q(query: &str) -> Result<Params, Problem> {
        let pairs = form_pairs(query);
        Params::new(pairs)
    }

    /// Decoded the way the extractor decodes.
    fn form_pairs(query: &str) -> Vec<(String, String)> {
        let uri: axum::http::Uri = format!("/?{query}").parse().unwrap();
        Query::<Vec<(String, String)>>::try_from_uri(&uri)
            .unwrap()
            .0
    }

    #[test]
    fn person_ids_are_positive_digit_strings_that_fit() {
        let parse = |text: &str| person_id(Ok(Path(text.to_owned())));
        assert_eq!(parse("3585").unwrap().get(), 3585);
        assert_eq!(parse("9223372036854775807").unwrap(), PersonId::MAX);
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
            let problem = parse(bad).unwrap_err();
            assert_eq!(problem.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn dates_must_be_written_in_full() {
        let q = |s: &str| q(s).unwrap();
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
            "since=-999-01-01",
            "since=%2B999-01-01",
            "since=0000-01-01",
            "since=%20999-01-01",
            "since=10000-01-01",
        ] {
            assert!(q(bad).date("since").is_err(), "{bad}");
        }
        assert_eq!(q("").date("since").unwrap(), None);
        assert_eq!(
            q("as_of=0001-01-01").date("as_of").unwrap(),
            NaiveDate::from_ymd_opt(1, 1, 1)
        );
        assert_eq!(
            q("until=9999-12-31").date("until").unwrap(),
            NaiveDate::from_ymd_opt(9999, 12, 31)
        );
    }

    #[test]
    fn oversized_queries_are_refused_before_decoding() {
        let long = "a".repeat(MAX_QUERY_BYTES + 1);
        assert_eq!(
            check_size(&long).unwrap_err().status(),
            StatusCode::URI_TOO_LONG
        );
        assert!(check_size(&long[1..]).is_ok());
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("p{i}="))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert!(check_size(&many(MAX_QUERY_PARAMS)).is_ok());
        assert_eq!(
            check_size(&many(MAX_QUERY_PARAMS + 1))
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
        // Empty pieces are not parameters.
        assert!(check_size(&"&".repeat(MAX_QUERY_BYTES)).is_ok());
    }

    #[test]
    fn repeats_are_found_in_linear_time() {
        // Pairwise comparison of 200,000 names takes minutes; a set takes milliseconds.
        let mut pairs: Vec<(String, String)> = (0..200_000)
            .map(|i| (format!("p{i}"), String::new()))
            .collect();
        let started = std::time::Instant::now();
        assert!(Params::new(pairs.clone()).is_ok());
        pairs.push(("p0".to_owned(), String::new()));
        assert!(Params::new(pairs).is_err());
        let elapsed = started.elapsed();
        assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    }

    #[test]
    fn tables_are_a_known_comma_list() {
        let q = |s: &str| q(s).unwrap();
        assert_eq!(
            q("types=rx,labs,rx").tables("types").unwrap(),
            Some(vec![Table::Rx, Table::Labs])
        );
        assert_eq!(
            q("types=rx%2Clabs").tables("types").unwrap(),
            Some(vec![Table::Rx, Table::Labs])
        );
        for bad in ["types=", "types=rx,", "types=RX", "types=rx,vitals"] {
            assert!(q(bad).tables("types").is_err(), "{bad}");
        }
    }

    #[test]
    fn repeated_and_unknown_parameters_are_refused() {
        assert!(q("since=2034-01-01&since=2035-01-01").is_err());
        let sinse = q("sinse=2034-01-01").unwrap();
        assert!(sinse.allow(&["since", "until", "types"]).is_err());
        assert!(sinse.allow(&[]).is_err());
        assert!(q("").unwrap().allow(&[]).is_ok());
    }
}
