//! One generated raw row as text fields, and how a row is written: a CSV line or a JSON object.
//!
//! A row is rendered once into [`Fields`] (one reusable buffer, no allocation per row) and then
//! written as often as it was drawn, so exact duplicates are byte-identical by construction.

use std::io::{self, Write};

/// The text of one row's fields in column order; an empty field is an empty string.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    buf: String,
    ends: Vec<usize>,
}

impl Fields {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    pub fn push(&mut self, text: &str) {
        self.buf.push_str(text);
        self.end();
    }

    /// Appends a field written by `write` into the buffer (numbers and dates, without a
    /// temporary string).
    pub fn push_with(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.buf);
        self.end();
    }

    fn end(&mut self) {
        self.ends.push(self.buf.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    /// Replaces field `i` (rare: only corrupted rows and id copies are edited after rendering).
    pub fn replace(&mut self, i: usize, text: &str) {
        let copy = self.clone();
        self.clear();
        for j in 0..copy.len() {
            self.push(if j == i { text } else { copy.get(j) });
        }
    }
}

/// How a deliberately bad row is broken (`--bad-row-rate`); each is quarantined by the cleaner
/// for the reason in its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    MissingPersonId,
    InvalidPersonId,
    /// The table's required text column (feature, rx_name) left empty.
    MissingRequiredValue,
    /// conditions only: an id that is not a positive integer.
    InvalidId,
    TooFewFields,
    TooManyFields,
    NulByte,
    InvalidUtf8,
}

impl Bad {
    /// What a CSV line can carry.
    pub const CSV: [Bad; 8] = [
        Bad::MissingPersonId,
        Bad::InvalidPersonId,
        Bad::MissingRequiredValue,
        Bad::InvalidId,
        Bad::TooFewFields,
        Bad::TooManyFields,
        Bad::NulByte,
        Bad::InvalidUtf8,
    ];
    /// What a JSON object can carry: its person id is the file's, and JSON text is valid
    /// UTF-8 with a fixed set of keys.
    pub const JSON: [Bad; 2] = [Bad::MissingRequiredValue, Bad::InvalidId];
}

/// Where the columns that bad rows break are, for one table.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub columns: &'static [&'static str],
    pub person_id: usize,
    pub required: usize,
    /// The `id` column (conditions only).
    pub id: Option<usize>,
    /// A free-text column where a NUL or invalid byte goes.
    pub text: usize,
}

/// Writes rows as CSV lines: fields quoted only when they hold a comma, quote or line break
/// (as the sample is), `\n` line ends.
pub fn write_csv_row(
    out: &mut impl Write,
    layout: &Layout,
    row: &Fields,
    bad: Option<Bad>,
) -> io::Result<()> {
    let n = row.len();
    let last = if bad == Some(Bad::TooFewFields) {
        n - 1
    } else {
        n
    };
    for i in 0..last {
        if i > 0 {
            out.write_all(b",")?;
        }
        let field = row.get(i);
        match bad {
            Some(Bad::MissingPersonId) if i == layout.person_id => {}
            Some(Bad::InvalidPersonId) if i == layout.person_id => {
                out.write_all(b"P-")?;
                write_csv_field(out, field)?;
            }
            Some(Bad::MissingRequiredValue) if i == layout.required => {}
            Some(Bad::InvalidId) if Some(i) == layout.id => {
                out.write_all(b"ID")?;
                write_csv_field(out, field)?;
            }
            Some(Bad::NulByte) if i == layout.text => {
                write_csv_field(out, field)?;
                out.write_all(b"\0")?;
            }
            Some(Bad::InvalidUtf8) if i == layout.text => {
                write_csv_field(out, field)?;
                out.write_all(b"\xff")?;
            }
            _ => write_csv_field(out, field)?,
        }
    }
    if bad == Some(Bad::TooManyFields) {
        out.write_all(b",extra")?;
    }
    out.write_all(b"\n")
}

fn write_csv_field(out: &mut impl Write, field: &str) -> io::Result<()> {
    if !field
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        return out.write_all(field.as_bytes());
    }
    out.write_all(b"\"")?;
    for (i, part) in field.split('"').enumerate() {
        if i > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(part.as_bytes())?;
    }
    out.write_all(b"\"")
}

pub fn write_csv_header(out: &mut impl Write, columns: &[&str]) -> io::Result<()> {
    out.write_all(columns.join(",").as_bytes())?;
    out.write_all(b"\n")
}

/// Writes a row as a JSON object: every column except `person_id`, the CSV text as a string,
/// an empty field as `null`.
pub fn write_json_row(out: &mut Vec<u8>, layout: &Layout, row: &Fields, bad: Option<Bad>) {
    out.push(b'{');
    let mut first = true;
    for (i, column) in layout.columns.iter().enumerate() {
        if i == layout.person_id {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json_string(out, column);
        out.push(b':');
        let field = row.get(i);
        match bad {
            Some(Bad::MissingRequiredValue) if i == layout.required => {
                out.extend_from_slice(b"null")
            }
            Some(Bad::InvalidId) if Some(i) == layout.id => json_string(out, &format!("ID{field}")),
            _ if field.is_empty() => out.extend_from_slice(b"null"),
            _ => json_string(out, field),
        }
    }
    out.push(b'}');
}

pub fn json_string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("writing JSON to memory cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        columns: &["id", "feature", "value", "person_id"],
        person_id: 3,
        required: 1,
        id: Some(0),
        text: 2,
    };

    fn csv(bad: Option<Bad>) -> String {
        let mut row = Fields::default();
        for s in ["7", "Pain", "a, \"b\"", "1000001"] {
            row.push(s);
        }
        let mut out = Vec::new();
        write_csv_row(&mut out, &LAYOUT, &row, bad).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv(None), "7,Pain,\"a, \"\"b\"\"\",1000001\n");
        assert_eq!(
            csv(Some(Bad::MissingPersonId)),
            "7,Pain,\"a, \"\"b\"\"\",\n"
        );
        assert_eq!(csv(Some(Bad::TooFewFields)), "7,Pain,\"a, \"\"b\"\"\"\n");
        assert_eq!(
            csv(Some(Bad::TooManyFields)),
            "7,Pain,\"a, \"\"b\"\"\",1000001,extra\n"
        );
        assert_eq!(
            csv(Some(Bad::InvalidId)),
            "ID7,Pain,\"a, \"\"b\"\"\",1000001\n"
        );
        assert_eq!(
            csv(Some(Bad::MissingRequiredValue)),
            "7,,\"a, \"\"b\"\"\",1000001\n"
        );
    }

    #[test]
    fn json_skips_person_id_and_nulls_empty_fields() {
        let mut f = Fields::default();
        for s in ["7", "", "a \"b\"", "1000001"] {
            f.push(s);
        }
        let mut out = Vec::new();
        write_json_row(&mut out, &LAYOUT, &f, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"id":"7","feature":null,"value":"a \"b\""}"#
        );
    }
}
