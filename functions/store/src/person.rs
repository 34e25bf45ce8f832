//! A person's clean resources, as the API serves them: `{"person_id": .., "data": {"conditions":
//! [..], ..}}`. The rows come from `person_rows` (defined in
//! `migrations/definitions/R__40_person_document.sql`) as one typed array per table, in binary,
//! and the JSON text is written here straight from them: no JSON is built in SQL, parsed and
//! serialised again.
//!
//! The bytes are the contract the API served when the document was `person_document`'s json
//! reshaped through `serde_json::Value` (the tests compare the two for every person): keys in
//! byte order at every level, an item without its `person_id` (the document's) and with its
//! `row_hash` as the hex `row_id`, tables left out dropped, compact, and every value as
//! PostgreSQL's json rendered it and serde_json re-read it. Floats take PostgreSQL's text form
//! ([`pg_float8_text`]) through serde_json's own parser, so even serde_json's rounding is kept.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use deadpool_postgres::GenericClient;
use medrec_core::Table;
use postgres_types::{FromSql, Kind, Type};

/// Which of a person's resources to return.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceFilter {
    /// Only events on or after this date.
    pub since: Option<NaiveDate>,
    /// Only events on or before this date.
    pub until: Option<NaiveDate>,
    /// Only these tables (`None`: all five).
    pub tables: Option<Vec<Table>>,
}

/// Why a document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    /// A value in a form the writer does not know (a column type added to a clean table without
    /// teaching [`write_value`] its JSON), or a malformed binary value. Never a record value.
    #[error("person document: {0}")]
    Unsupported(String),
}

/// `known`, then one array of whole rows per table.
const QUERY: &str = "SELECT known, conditions, labs, lifestyle, rx, tests \
                     FROM person_rows($1, $2, $3, $4)";

/// The document's JSON text, or `None` for an unknown person. One statement (one snapshot).
pub async fn document(
    client: &impl GenericClient,
    person: i64,
    filter: &ResourceFilter,
) -> Result<Option<Vec<u8>>, DocumentError> {
    let tables: Option<Vec<&str>> = filter
        .tables
        .as_ref()
        .map(|tables| tables.iter().map(|t| t.name()).collect());
    let statement = client.prepare_cached(QUERY).await?;
    let row = client
        .query_one(
            &statement,
            &[&person, &filter.since, &filter.until, &tables],
        )
        .await?;
    if !row.try_get::<_, Option<bool>>(0)?.unwrap_or(false) {
        return Ok(None);
    }
    // The tables in byte order of their names, as serde_json's map kept them.
    let mut tables: Vec<(usize, &tokio_postgres::Column)> =
        row.columns().iter().enumerate().skip(1).collect();
    tables.sort_unstable_by_key(|(_, column)| column.name());
    let mut out = Vec::with_capacity(16 * 1024);
    out.extend_from_slice(b"{\"data\":{");
    let mut first = true;
    for (index, column) in tables {
        let Some(Raw(rows)) = row.try_get::<_, Option<Raw>>(index)? else {
            continue; // a table the filter leaves out
        };
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(&mut out, column.name());
        out.push(b':');
        write_rows(&mut out, column.type_(), rows)?;
    }
    out.extend_from_slice(b"},\"person_id\":");
    let _ = write!(Text(&mut out), "{person}");
    out.push(b'}');
    Ok(Some(out))
}

/// A value's binary form, as received.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn unsupported(what: impl Into<String>) -> DocumentError {
    DocumentError::Unsupported(what.into())
}

/// One table's array of whole rows as a JSON array of objects.
fn write_rows(out: &mut Vec<u8>, array_type: &Type, raw: &[u8]) -> Result<(), DocumentError> {
    let Kind::Array(row_type) = array_type.kind() else {
        return Err(unsupported(format!("{array_type} is not an array")));
    };
    let Kind::Composite(fields) = row_type.kind() else {
        return Err(unsupported(format!("{row_type} is not a row type")));
    };
    // Each item's keys in byte order, as serde_json's map kept them.
    let mut keys: Vec<(&str, usize)> = fields
        .iter()
        .enumerate()
        .filter(|(_, field)| field.name() != "person_id")
        .map(|(i, field)| match field.name() {
            "row_hash" => ("row_id", i),
            name => (name, i),
        })
        .collect();
    keys.sort_unstable();
    let rows = Vec::<Option<Raw>>::from_sql(array_type, raw)
        .map_err(|_| unsupported(format!("a malformed {array_type} value")))?;
    let mut item: Vec<Option<&[u8]>> = Vec::with_capacity(fields.len());
    out.push(b'[');
    for (n, element) in rows.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let Some(Raw(element)) = element else {
            out.extend_from_slice(b"null");
            continue;
        };
        composite_fields(element, fields.len(), &mut item)
            .ok_or_else(|| unsupported(format!("a malformed {row_type} value")))?;
        out.push(b'{');
        for (k, &(key, i)) in keys.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write_str(out, key);
            out.push(b':');
            write_value(out, fields[i].type_(), key == "row_id", item[i])?;
        }
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// A composite's binary form: the field count, then per field its type oid, its length (-1:
/// NULL) and its bytes.
fn composite_fields<'a>(
    mut raw: &'a [u8],
    expected: usize,
    fields: &mut Vec<Option<&'a [u8]>>,
) -> Option<()> {
    fn take<'a>(raw: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (raw.get(..n)?, raw.get(n..)?);
        *raw = tail;
        Some(head)
    }
    fn int(raw: &mut &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(take(raw, 4)?.try_into().ok()?))
    }
    fields.clear();
    if usize::try_from(int(&mut raw)?).ok()? != expected {
        return None;
    }
    for _ in 0..expected {
        let _oid = int(&mut raw)?;
        let len = int(&mut raw)?;
        fields.push(match usize::try_from(len) {
            Ok(len) => Some(take(&mut raw, len)?),
            Err(_) => None,
        });
    }
    raw.is_empty().then_some(())
}

/// One field as PostgreSQL's json wrote it and serde_json read it back.
fn write_value(
    out: &mut Vec<u8>,
    ty: &Type,
    row_id: bool,
    raw: Option<&[u8]>,
) -> Result<(), DocumentError> {
    let Some(raw) = raw else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    let bad = |_| unsupported(format!("a malformed {ty} value"));
    match *ty {
        Type::INT8 => {
            let _ = write!(Text(out), "{}", i64::from_sql(ty, raw).map_err(bad)?);
        }
        Type::INT4 => {
            let _ = write!(Text(out), "{}", i32::from_sql(ty, raw).map_err(bad)?);
        }
        Type::INT2 => {
            let _ = write!(Text(out), "{}", i16::from_sql(ty, raw).map_err(bad)?);
        }
        Type::BOOL => {
            let value = bool::from_sql(ty, raw).map_err(bad)?;
            out.extend_from_slice(if value { b"true" } else { b"false" });
        }
        Type::FLOAT8 => write_float8(out, f64::from_sql(ty, raw).map_err(bad)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            write_str(out, <&str>::from_sql(ty, raw).map_err(bad)?)
        }
        Type::DATE => {
            let days = postgres_protocol::types::date_from_sql(raw).map_err(bad)?;
            write_str(
                out,
                &pg_date_text(days).ok_or_else(|| unsupported("a date"))?,
            )
        }
        Type::BYTEA => {
            let bytes = <&[u8]>::from_sql(ty, raw).map_err(bad)?;
            let mut text = String::with_capacity(2 + 2 * bytes.len());
            // `row_id` is the bare hex; another bytea keeps PostgreSQL's "\x" prefix.
            if !row_id {
                text.push_str("\\x");
            }
            for byte in bytes {
                let _ = write!(text, "{byte:02x}");
            }
            write_str(out, &text)
        }
        Type::JSON | Type::JSONB => {
            let value = serde_json::Value::from_sql(ty, raw).map_err(bad)?;
            serde_json::to_writer(&mut *out, &value)
                .map_err(|_| unsupported(format!("a {ty} value")))?;
        }
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
            let items = Vec::<Option<&str>>::from_sql(ty, raw).map_err(bad)?;
            out.push(b'[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                match item {
                    Some(text) => write_str(out, text),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.push(b']');
        }
        _ => return Err(unsupported(format!("a column of type {ty}"))),
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    // serde_json's escaping, as the document always had.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// `write!` into a byte buffer.
struct Text<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A float8 as PostgreSQL's json has it (NaN and the infinities as strings), read back by
/// serde_json: an integral value printed without a point stays an integer ("12"), others are
/// serde_json's float of PostgreSQL's digits.
fn write_float8(out: &mut Vec<u8>, value: f64) {
    let text = pg_float8_text(value);
    match serde_json::Number::from_str(&text) {
        Ok(number) => {
            let _ = serde_json::to_writer(&mut *out, &number);
        }
        Err(_) => write_str(out, &text),
    }
}

/// PostgreSQL's `float8out` (extra_float_digits 1, the default): the shortest digits that read
/// back to `value`, fixed-point when the decimal exponent is in -4..15 (as printf's %g),
/// otherwise `d.ddde+XX`.
pub fn pg_float8_text(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0");
    }
    // ryu's shortest digits (PostgreSQL's d2s is the same algorithm), re-laid out.
    let mut buffer = ryu::Buffer::new();
    let shortest = buffer.format_finite(value.abs());
    let (mantissa, exponent) = match shortest.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (shortest, 0),
    };
    let (integral, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = [integral, fraction].concat();
    let mut point = integral.len() as i32 + exponent;
    let leading = all.len() - all.trim_start_matches('0').len();
    point -= leading as i32;
    let digits = all.trim_start_matches('0').trim_end_matches('0');
    let decimal_exponent = point - 1;
    let mut text = String::from(sign);
    if (-4..15).contains(&decimal_exponent) {
        if point <= 0 {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', (-point) as usize));
            text.push_str(digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                text.push_str(digits);
                text.extend(std::iter::repeat_n('0', point - digits.len()));
            } else {
                text.push_str(&digits[..point]);
                text.push('.');
                text.push_str(&digits[point..]);
            }
        }
    } else {
        text.push_str(&digits[..1]);
        if digits.len() > 1 {
            text.push('.');
            text.push_str(&digits[1..]);
        }
        let _ = write!(
            text,
            "e{}{:02}",
            if decimal_exponent < 0 { '-' } else { '+' },
            decimal_exponent.unsigned_abs()
        );
    }
    text
}

/// A date as PostgreSQL's json writes it (ISO; "infinity"; "0044-03-15 BC"), from its binary
/// days since 2000-01-01. `None` beyond chrono's range.
fn pg_date_text(days: i32) -> Option<String> {
    match days {
        i32::MAX => return Some("infinity".to_owned()),
        i32::MIN => return Some("-infinity".to_owned()),
        _ => {}
    }
    let date = NaiveDate::from_ymd_opt(2000, 1, 1)?
        .checked_add_signed(chrono::Duration::try_days(days.into())?)?;
    let year = date.year();
    Some(if year > 0 {
        format!("{year:04}-{:02}-{:02}", date.month(), date.day())
    } else {
        format!("{:04}-{:02}-{:02} BC", 1 - year, date.month(), date.day())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_laid_out_as_postgresql_prints_them() {
        // Each pair measured with psql (PostgreSQL 15): SELECT v::float8::text.
        for (value, text) in [
            (1e14, "100000000000000"),
            (999999999999999.0, "999999999999999"),
            (1e15, "1e+15"),
            (1.5e15, "1.5e+15"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (0.00001, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (12.5, "12.5"),
            (100.0, "100"),
            (0.0, "0"),
            (-0.0, "-0"),
            (-2.25, "-2.25"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(pg_float8_text(value), text, "{value:e}");
        }
    }

    #[test]
    fn dates_are_laid_out_as_postgresql_json_writes_them() {
        assert_eq!(pg_date_text(0).unwrap(), "2000-01-01");
        assert_eq!(pg_date_text(i32::MAX).unwrap(), "infinity");
        let bc = NaiveDate::from_ymd_opt(-43, 3, 15).unwrap();
        let days = (bc - NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()).num_days() as i32;
        assert_eq!(pg_date_text(days).unwrap(), "0044-03-15 BC");
    }
}
