//! What a request names besides its route: the query's parameters and the path's person id.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use chrono::NaiveDate;
use medrec_core::{PersonId, Table};
use medrec_store::receipts::Outcome;

use crate::problem::Problem;

/// The query string's parameters, decoded by axum's [`Query`] (form encoding, in order); each
/// parameter at most once.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params, Problem> {
        // Pairs of strings: decoding never fails (invalid UTF-8 is replaced, as in any form).
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::bad_request("the query string is not valid"))?;
        Params::new(pairs)
    }
}

impl Params {
    fn new(pairs: Vec<(String, String)>) -> Result<Params, Problem> {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(Problem::bad_request(
                    "a query parameter is given more than once",
                ));
            }
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

    /// A calendar date written YYYY-MM-DD.
    pub fn date(&self, name: &'static str) -> Result<Option<NaiveDate>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let strict = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
        match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) if strict => Ok(Some(date)),
            _ => Err(Problem::bad_request(format!(
                "{name} must be a date written YYYY-MM-DD"
            ))),
        }
    }

    /// A decimal integer within `min..=max`.
    pub fn integer(&self, name: &'static str, min: i64, max: i64) -> Result<Option<i64>, Problem> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) && text.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(n))
            }
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
        ] {
            assert!(q(bad).date("since").is_err(), "{bad}");
        }
        assert_eq!(q("").date("since").unwrap(), None);
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
