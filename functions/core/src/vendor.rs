//! Per-person vendor JSON files (`docs/vendor-json.md`): parse, check, and clean every table's
//! rows through the very cleaners the CSV path uses.
//!
//! Each table's array becomes rows of named fields (one column per key the cleaner knows or
//! any object of the array has, plus `person_id`; each object's values as their text) handed to
//! the table's [`crate::clean::RowCleaner`] ([`Table::row_cleaner`]): the header rules, the
//! person id rule and the table's cleaner run exactly as for a delivered CSV, so a rule is
//! written once, and the CSV reader's limits (record size, NUL bytes) hold for a row as if it
//! had been delivered as a CSV record.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::Xxh3;

use crate::clean::{FileError, Outcome, QuarantinedRow, Reason};
use crate::person_id::PersonId;
use crate::reader::{hex, RecordDefect, MAX_RECORD_BYTES};
use crate::table::Table;

/// The schema id a vendor file must carry.
pub const SCHEMA_ID: &str = "medrec.vendor-person.v1";
/// Files larger than this are rejected before any parsing.
pub const MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;
const MAX_VENDOR_ID_CHARS: usize = 64;

/// Why a whole vendor file was rejected (nothing of it is loaded).
/// Its name (`as_str`, `Display`, `FromStr`) is the snake_case variant name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    strum::EnumCount,
)]
#[strum(serialize_all = "snake_case")]
pub enum VendorReason {
    TooLarge,
    InvalidJson,
    NotAnObject,
    WrongSchema,
    MissingField,
    InvalidVendorId,
    InvalidPersonId,
    InvalidVersion,
    InvalidUpdatedAt,
    WrongType,
    Unreadable,
}

impl VendorReason {
    pub const ALL: [VendorReason; <VendorReason as strum::EnumCount>::COUNT] =
        crate::variant_array();

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A rejected file: the reason and where (a field path or a JSON position), never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({detail})", reason.as_str())]
pub struct VendorError {
    pub reason: VendorReason,
    pub detail: String,
}

impl VendorError {
    pub fn new(reason: VendorReason, detail: impl Into<String>) -> Self {
        VendorError {
            reason,
            detail: detail.into(),
        }
    }
}

/// One table's rows of a vendor file, cleaned.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorTable {
    pub table: Table,
    /// One per array element, in order; `line` is the 1-based array position and `raw` the
    /// element's JSON text.
    pub outcomes: Vec<Outcome>,
}

/// A parsed and cleaned vendor file.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorFile {
    pub vendor_id: String,
    pub person_id: i64,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub sha256: String,
    pub bytes: u64,
    /// All five tables, in [`Table::ALL`] order (an empty array is an empty table).
    pub tables: Vec<VendorTable>,
}

/// Rejects a file by its size alone (call before reading it when the size is known).
pub fn check_size(bytes: u64) -> Result<(), VendorError> {
    if bytes > MAX_FILE_BYTES {
        return Err(VendorError::new(
            VendorReason::TooLarge,
            format!("{bytes} bytes, limit {MAX_FILE_BYTES}"),
        ));
    }
    Ok(())
}

/// Parses, checks and cleans one vendor file.
pub fn parse(bytes: &[u8]) -> Result<VendorFile, VendorError> {
    check_size(bytes.len() as u64)?;
    let json: Json = serde_json::from_slice(bytes).map_err(|e| {
        VendorError::new(
            VendorReason::InvalidJson,
            format!(
                "{:?} at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    let Json::Object(top) = json else {
        return Err(VendorError::new(VendorReason::NotAnObject, "$"));
    };
    match top.get("schema") {
        Some(Json::String(s)) if s == SCHEMA_ID => {}
        Some(_) => return Err(VendorError::new(VendorReason::WrongSchema, "schema")),
        None => return Err(missing("schema")),
    }
    let vendor_id = vendor_id(top.get("vendor_id").ok_or_else(|| missing("vendor_id"))?)?;
    let person_id = person_id(top.get("person_id").ok_or_else(|| missing("person_id"))?)?;
    let version = version(top.get("version").ok_or_else(|| missing("version"))?)?;
    let updated_at = match top.get("updated_at").ok_or_else(|| missing("updated_at"))? {
        Json::String(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|_| VendorError::new(VendorReason::InvalidUpdatedAt, "updated_at"))?
            .with_timezone(&Utc),
        _ => {
            return Err(VendorError::new(
                VendorReason::InvalidUpdatedAt,
                "updated_at",
            ))
        }
    };
    let mut tables = Vec::with_capacity(Table::ALL.len());
    for table in Table::ALL {
        let rows = match top.get(table.name()) {
            Some(Json::Array(rows)) => rows,
            Some(_) => return Err(VendorError::new(VendorReason::WrongType, table.name())),
            None => return Err(missing(table.name())),
        };
        tables.push(clean_table(table, rows, &vendor_id, person_id)?);
    }
    Ok(VendorFile {
        vendor_id,
        person_id,
        version,
        updated_at,
        sha256: hex(&Sha256::digest(bytes)),
        bytes: bytes.len() as u64,
        tables,
    })
}

fn missing(field: &str) -> VendorError {
    VendorError::new(VendorReason::MissingField, field)
}

/// Vendor ids name lineage and S3 keys: short, plain ASCII.
fn vendor_id(value: &Json) -> Result<String, VendorError> {
    match value {
        Json::String(s)
            if !s.is_empty()
                && s.chars().count() <= MAX_VENDOR_ID_CHARS
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            Ok(s.clone())
        }
        _ => Err(VendorError::new(VendorReason::InvalidVendorId, "vendor_id")),
    }
}

/// A positive integer (the [`PersonId`] rule), as a JSON integer or a string of digits.
fn positive_int(value: &Json) -> Option<i64> {
    let id = match value {
        Json::String(s) => s.parse::<PersonId>().ok()?,
        other => PersonId::deserialize(other).ok()?,
    };
    Some(id.get())
}

fn person_id(value: &Json) -> Result<i64, VendorError> {
    positive_int(value).ok_or_else(|| VendorError::new(VendorReason::InvalidPersonId, "person_id"))
}

fn version(value: &Json) -> Result<i64, VendorError> {
    positive_int(value).ok_or_else(|| VendorError::new(VendorReason::InvalidVersion, "version"))
}

/// A row value as the CSV field it stands for: strings as they are, numbers and booleans as
/// their JSON text, null as empty.
fn field_text(value: &Json) -> Option<Cow<'_, str>> {
    match value {
        Json::Null => Some(Cow::Borrowed("")),
        Json::String(s) => Some(Cow::Borrowed(s)),
        Json::Number(n) => Some(Cow::Owned(n.to_string())),
        Json::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Json::Array(_) | Json::Object(_) => None,
    }
}

type ObjectsAndColumns<'a> = (Vec<&'a Map<String, Json>>, Vec<String>);

/// A table's row objects and its columns: every column the cleaner knows, so that an absent key
/// reads as an empty value (never as a missing required column) and the column order is the same
/// for every file, then every other key in the order first seen. Refuses a row that is not an
/// object and a value that is not a scalar.
fn objects_and_columns(table: Table, rows: &[Json]) -> Result<ObjectsAndColumns<'_>, VendorError> {
    let mut objects = Vec::with_capacity(rows.len());
    let mut columns: Vec<String> = std::iter::once("person_id")
        .chain(
            table
                .spec()
                .source_columns
                .iter()
                .copied()
                .filter(|c| *c != "person_id"),
        )
        .map(str::to_owned)
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let Json::Object(object) = row else {
            return Err(VendorError::new(
                VendorReason::WrongType,
                format!("{}[{i}]", table.name()),
            ));
        };
        for (key, value) in object {
            if field_text(value).is_none() {
                return Err(VendorError::new(
                    VendorReason::WrongType,
                    format!("{}[{i}].{key}", table.name()),
                ));
            }
            // The CSV header rules (case, spaces, duplicates) then apply to the keys as well.
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
        objects.push(object);
    }
    Ok((objects, columns))
}

fn clean_table(
    table: Table,
    rows: &[Json],
    vendor_id: &str,
    file_person: i64,
) -> Result<VendorTable, VendorError> {
    if rows.is_empty() {
        return Ok(VendorTable {
            table,
            outcomes: Vec::new(),
        });
    }
    let (objects, columns) = objects_and_columns(table, rows)?;
    let header_error =
        |e: FileError| VendorError::new(VendorReason::WrongType, format!("{}: {e}", table.name()));
    if let Some(defect) = record_defect(&columns) {
        return Err(header_error(FileError::HeaderUnreadable {
            line: 1,
            defect,
        }));
    }
    let cleaner = table.row_cleaner(&columns).map_err(header_error)?;
    let file_person_text = file_person.to_string();
    let mut outcomes = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        let line = i as u64 + 1;
        // The row's source as kept (a quarantined row's `raw_line`): the object's compact JSON.
        let raw = serde_json::to_vec(object).unwrap_or_default();
        let texts: Vec<Cow<str>> = columns
            .iter()
            .map(|column| match object.get(column) {
                Some(value) => field_text(value).unwrap_or_default(),
                None if column == "person_id" => Cow::Borrowed(file_person_text.as_str()),
                None => Cow::Borrowed(""),
            })
            .collect();
        let fields: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        let outcome = match record_defect(&fields) {
            Some(defect) => Outcome::Quarantined(QuarantinedRow {
                line,
                reason: defect.into(),
                column: None,
                raw,
            }),
            None => cleaner.clean_fields(line, &fields, raw),
        };
        outcomes.push(match outcome {
            Outcome::Clean(row) if row.person_id != file_person => {
                // A row about someone else cannot be replaced with this person's record.
                Outcome::Quarantined(QuarantinedRow {
                    line,
                    reason: Reason::InvalidPersonId,
                    column: Some("person_id"),
                    raw: row.raw,
                })
            }
            Outcome::Clean(mut row) => {
                row.row_hash = vendor_row_hash(vendor_id, &row.row_hash);
                Outcome::Clean(row)
            }
            quarantined => quarantined,
        });
    }
    Ok(VendorTable { table, outcomes })
}

/// What the CSV reader would refuse in these fields written as one CSV record (every field
/// quoted, `\n`-terminated): a record over [`MAX_RECORD_BYTES`], or a NUL byte (PostgreSQL text
/// cannot hold one). JSON strings are always UTF-8.
fn record_defect<S: AsRef<str>>(fields: &[S]) -> Option<RecordDefect> {
    let quoted: usize = fields
        .iter()
        .map(|f| {
            let f = f.as_ref();
            f.len() + 2 + f.bytes().filter(|b| *b == b'"').count()
        })
        .sum();
    // The separators between the fields and the terminator.
    if quoted + fields.len() > MAX_RECORD_BYTES {
        Some(RecordDefect::TooLong)
    } else if fields.iter().any(|f| f.as_ref().contains('\0')) {
        Some(RecordDefect::NulByte)
    } else {
        None
    }
}

/// Each vendor owns its rows: the same content from another vendor (or a CSV) is a separate
/// row, so replacing one vendor's version of a person never removes another source's rows.
fn vendor_row_hash(vendor_id: &str, content: &[u8; 16]) -> [u8; 16] {
    let mut hasher = Xxh3::new();
    hasher.update(b"vendor\0");
    hasher.update(&(vendor_id.len() as u64).to_le_bytes());
    hasher.update(vendor_id.as_bytes());
    hasher.update(content);
    hasher.digest128().to_be_bytes()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn file(person: &str, tables: &str) -> String {
        format!(
            r#"{{"schema":"{SCHEMA_ID}","vendor_id":"vendor-a","person_id":{person},"version":2,
            "updated_at":"2026-11-21T08:30:00Z",{tables}}}"#
        )
    }

    const EMPTY: &str = r#""lifestyle":[],"rx":[],"conditions":[],"labs":[],"tests":[]"#;

    fn reason(text: &str) -> VendorReason {
        parse(text.as_bytes()).unwrap_err().reason
    }

    #[test]
    fn accepts_string_or_number_person_ids() {
        assert_eq!(
            parse(file("\"42\"", EMPTY).as_bytes()).unwrap().person_id,
            42
        );
        let parsed = parse(file("42", EMPTY).as_bytes()).unwrap();
        assert_eq!((parsed.person_id, parsed.version), (42, 2));
        assert_eq!(parsed.tables.len(), 5);
    }

    #[test]
    fn rejects_bad_files_with_a_reason() {
        assert_eq!(reason("{"), VendorReason::InvalidJson);
        assert_eq!(reason("[]"), VendorReason::NotAnObject);
        assert_eq!(
            reason(&file("42", EMPTY).replace(SCHEMA_ID, "other.v1")),
            VendorReason::WrongSchema
        );
        for bad in [
            "\"0\"",
            "0",
            "-3",
            "\"-3\"",
            "\"12a\"",
            "1.5",
            "42.0",
            "\"42.0\"",
            "9223372036854775808",
            "\"9223372036854775808\"",
            "true",
            "null",
            "\"\"",
            "\" 7\"",
        ] {
            assert_eq!(
                reason(&file(bad, EMPTY)),
                VendorReason::InvalidPersonId,
                "{bad}"
            );
        }
        assert_eq!(
            reason(&file("42", EMPTY).replace("\"vendor-a\"", "\"a b\"")),
            VendorReason::InvalidVendorId
        );
        assert_eq!(
            reason(&file(
                "42",
                &EMPTY.replace(r#""tests":[]"#, r#""tests":{}"#)
            )),
            VendorReason::WrongType
        );
        assert_eq!(
            reason(&file("42", &EMPTY.replace(r#","tests":[]"#, ""))),
            VendorReason::MissingField
        );
        assert_eq!(
            reason(&file(
                "42",
                &EMPTY.replace(r#""rx":[]"#, r#""rx":[{"rx_name":[1]}]"#)
            )),
            VendorReason::WrongType
        );
        assert_eq!(
            reason(&file("42", EMPTY).replace("2026-11-21T08:30:00Z", "yesterday")),
            VendorReason::InvalidUpdatedAt
        );
    }

    #[test]
    fn reasons_are_snake_case_words() {
        let names: Vec<&str> = VendorReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "too_large",
                "invalid_json",
                "not_an_object",
                "wrong_schema",
                "missing_field",
                "invalid_vendor_id",
                "invalid_person_id",
                "invalid_version",
                "invalid_updated_at",
                "wrong_type",
                "unreadable",
            ]
        );
        for reason in VendorReason::ALL {
            assert_eq!(reason.to_string(), reason.as_str());
            assert_eq!(reason.as_str().parse::<VendorReason>(), Ok(reason));
        }
        assert!("Too_Large".parse::<VendorReason>().is_err());
    }

    #[test]
    fn size_is_checked_before_parsing() {
        let big = vec![b'x'; MAX_FILE_BYTES as usize + 1];
        assert_eq!(parse(&big).unwrap_err().reason, VendorReason::TooLarge);
    }

    #[test]
    fn rows_go_through_the_table_cleaners() {
        let tables = EMPTY.replace(
            r#""lifestyle":[]"#,
            r#""lifestyle":[
                {"feature":"Smoking","report_date":"2030-01-02","value":"never"},
                {"feature":null},
                {"feature":"Smoking","report_date":"2030-01-02","value":"never","person_id":"7"},
                {"feature":"Smoking","report_date":"2030-01-02","value":"never","person_id":"42.0"}
            ]"#,
        );
        let parsed = parse(file("42", &tables).as_bytes()).unwrap();
        let outcomes = &parsed.tables[0].outcomes;
        assert_eq!(outcomes.len(), 4);
        let Outcome::Clean(first) = &outcomes[0] else {
            panic!("clean: {:?}", outcomes[0])
        };
        assert_eq!((first.line, first.person_id), (1, 42));
        assert!(matches!(&outcomes[1], Outcome::Quarantined(q)
            if q.reason == Reason::MissingRequiredValue && q.line == 2));
        assert!(matches!(&outcomes[2], Outcome::Quarantined(q)
            if q.reason == Reason::InvalidPersonId && q.line == 3));
        let Outcome::Clean(fourth) = &outcomes[3] else {
            panic!("clean: {:?}", outcomes[3])
        };
        assert!(fourth.flags.contains(&crate::Flag::FloatEncodedPersonId));
        // An explicit matching person id is a different raw row than an implicit one.
        assert_eq!(
            String::from_utf8(first.raw.clone()).unwrap(),
            r#"{"feature":"Smoking","report_date":"2030-01-02","value":"never"}"#
        );
    }

    #[test]
    fn the_vendor_is_part_of_a_rows_identity() {
        let tables = EMPTY.replace(
            r#""lifestyle":[]"#,
            r#""lifestyle":[{"feature":"Smoking","value":"never"}]"#,
        );
        let a = parse(file("42", &tables).as_bytes()).unwrap();
        let b = parse(
            file("42", &tables)
                .replace("vendor-a", "vendor-b")
                .as_bytes(),
        )
        .unwrap();
        let hash = |f: &VendorFile| match &f.tables[0].outcomes[0] {
            Outcome::Clean(row) => row.row_hash,
            other => panic!("{other:?}"),
        };
        assert_ne!(hash(&a), hash(&b));
    }

    /// The same content as a CSV row and as a vendor row: the vendor row's identity is the CSV
    /// row's content hash mixed with the vendor id (not the CSV row's hash itself: each source
    /// owns its rows), and every other cleaned value is the same.
    #[test]
    fn a_vendor_row_is_the_csv_rows_content_under_the_vendors_name() {
        let csv = "person_id,feature,report_date,value,Color\n\
                   42, Smoking ,2030-01-02,never,blue\n";
        let csv_row = match Table::Lifestyle.clean(csv.as_bytes()).unwrap().next() {
            Some(Ok(Outcome::Clean(row))) => row,
            other => panic!("{other:?}"),
        };
        let tables = EMPTY.replace(
            r#""lifestyle":[]"#,
            r#""lifestyle":[{"feature":" Smoking ","report_date":"2030-01-02","value":"never",
                "color":"blue"}]"#,
        );
        let parsed = parse(file("42", &tables).as_bytes()).unwrap();
        let Outcome::Clean(vendor_row) = &parsed.tables[0].outcomes[0] else {
            panic!("{:?}", parsed.tables[0].outcomes[0])
        };
        assert_ne!(vendor_row.row_hash, csv_row.row_hash);
        assert_eq!(
            vendor_row.row_hash,
            vendor_row_hash("vendor-a", &csv_row.row_hash)
        );
        assert_eq!(
            (
                &vendor_row.values,
                &vendor_row.flags,
                &vendor_row.raw_values,
                &vendor_row.extras
            ),
            (
                &csv_row.values,
                &csv_row.flags,
                &csv_row.raw_values,
                &csv_row.extras
            )
        );
    }

    /// How rows were cleaned before they became rows of named fields: rendered as an in-memory
    /// CSV and read back by the table's file cleaner. Kept as the reference the direct path
    /// must match outcome for outcome.
    fn through_csv(
        table: Table,
        rows: &[Json],
        vendor_id: &str,
        file_person: i64,
    ) -> Result<VendorTable, VendorError> {
        let (objects, columns) = objects_and_columns(table, rows)?;
        if objects.is_empty() {
            return Ok(VendorTable {
                table,
                outcomes: Vec::new(),
            });
        }
        let mut writer = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Always)
            .from_writer(Vec::new());
        writer.write_record(&columns).unwrap();
        for object in &objects {
            let record: Vec<String> = columns
                .iter()
                .map(|column| match object.get(column) {
                    Some(value) => field_text(value).unwrap_or_default().into_owned(),
                    None if column == "person_id" => file_person.to_string(),
                    None => String::new(),
                })
                .collect();
            writer.write_record(&record).unwrap();
        }
        let csv = writer.into_inner().unwrap();
        let stream = table.clean(std::io::Cursor::new(csv)).map_err(|e| {
            VendorError::new(VendorReason::WrongType, format!("{}: {e}", table.name()))
        })?;
        let mut outcomes = Vec::new();
        for (i, (outcome, object)) in stream.zip(&objects).enumerate() {
            let line = i as u64 + 1;
            let raw = serde_json::to_vec(object).unwrap();
            outcomes.push(match outcome.unwrap() {
                Outcome::Clean(row) if row.person_id != file_person => {
                    Outcome::Quarantined(QuarantinedRow {
                        line,
                        reason: Reason::InvalidPersonId,
                        column: Some("person_id"),
                        raw,
                    })
                }
                Outcome::Clean(mut row) => {
                    row.line = line;
                    row.row_hash = vendor_row_hash(vendor_id, &row.row_hash);
                    row.raw = raw;
                    Outcome::Clean(row)
                }
                Outcome::Quarantined(mut q) => {
                    q.line = line;
                    q.raw = raw;
                    Outcome::Quarantined(q)
                }
            });
        }
        assert_eq!(outcomes.len(), objects.len());
        Ok(VendorTable { table, outcomes })
    }

    fn assert_same_as_through_csv(table: Table, rows: &[Json]) {
        let direct = clean_table(table, rows, "vendor-a", 42);
        let reference = through_csv(table, rows, "vendor-a", 42);
        assert_eq!(direct, reference, "{table}");
    }

    #[test]
    fn rows_clean_as_they_did_through_an_in_memory_csv() {
        let values = [
            json!(null),
            json!(""),
            json!("  "),
            json!(" Smoking "),
            json!("never"),
            json!("2030-01-02"),
            json!("1926-07-01"),
            json!("0001-01-01"),
            json!("3.9-5.5"),
            json!("5.5 - 3.9"),
            json!("H"),
            json!("I49. 9"),
            json!("J45.9"),
            json!("02242931"),
            json!("a \"quoted\", value"),
            json!("two\r\nlines\nand\rthree"),
            json!("\u{feff}bom"),
            json!("\u{a0}nbsp\u{3000}"),
            json!("nul\u{0}byte"),
            json!("é ü 中文"),
            json!(5.5),
            json!(1e2),
            json!(-0.0),
            json!(12),
            json!(12.0),
            json!(-3),
            json!(18446744073709551615u64),
            json!(true),
            json!(false),
        ];
        let person_ids = [
            None,
            Some(json!("42")),
            Some(json!(42)),
            Some(json!("42.0")),
            Some(json!(42.0)),
            Some(json!(" 42 ")),
            Some(json!("7")),
            Some(json!(7)),
            Some(json!(null)),
            Some(json!("")),
            Some(json!("x")),
        ];
        for table in Table::ALL {
            let known = table.spec().source_columns;
            // Every value in every known column, with the person id rules cycling along.
            let mut rows = Vec::new();
            for (i, value) in values.iter().enumerate() {
                for (j, column) in known.iter().enumerate() {
                    let mut row = Map::new();
                    for (k, other) in known.iter().enumerate() {
                        // A plausible row around the value under test.
                        let filler = values[(i + j + k) % values.len()].clone();
                        row.insert((*other).to_owned(), filler);
                    }
                    row.insert((*column).to_owned(), value.clone());
                    match &person_ids[(i + j) % person_ids.len()] {
                        None => {
                            row.remove("person_id");
                        }
                        Some(id) => {
                            row.insert("person_id".to_owned(), id.clone());
                        }
                    }
                    if (i + j) % 3 == 0 {
                        row.remove(known[(i * 7 + j) % known.len()]);
                    }
                    rows.push(Json::Object(row));
                }
            }
            assert_same_as_through_csv(table, &rows);
            // Keys the cleaner does not know, in some rows only: extras (with nulls where a row
            // lacks one) and part of the content hash.
            let mut with_extras = rows.clone();
            for (i, row) in with_extras.iter_mut().enumerate() {
                let row = row.as_object_mut().unwrap();
                match i % 4 {
                    0 => {
                        row.insert("color".into(), json!("blue"));
                    }
                    1 => {
                        row.insert("quote\"key, with\nbreak".into(), json!(3));
                    }
                    2 => {
                        row.insert(" padded ".into(), json!(null));
                    }
                    _ => {}
                }
            }
            assert_same_as_through_csv(table, &with_extras);
            // Keys the header rules refuse: a known column in another case, a name twice after
            // trimming, an empty name, a NUL byte.
            for bad in [
                known[0].to_uppercase(),
                " color".into(),
                "".into(),
                "a\0b".into(),
            ] {
                let mut bad_rows = with_extras.clone();
                bad_rows[1]
                    .as_object_mut()
                    .unwrap()
                    .insert(bad.clone(), json!("x"));
                let direct = clean_table(table, &bad_rows, "vendor-a", 42);
                assert!(direct.is_err() || bad == " color", "{table} {bad:?}");
                assert_eq!(
                    direct,
                    through_csv(table, &bad_rows, "vendor-a", 42),
                    "{table} {bad:?}"
                );
            }
        }
    }

    #[test]
    fn the_csv_record_limit_still_holds_for_a_row() {
        let row = |feature: String| json!({"feature": feature, "value": "never", "report_date": "2030-01-02"});
        let base = [json!({"feature": "", "value": "never", "report_date": "2030-01-02"})];
        // The base row as a CSV record (each field quoted, a separator or the terminator after
        // it): the feature's rendered text comes on top.
        let fixed: usize = ["42", "", "", "", "", "", "2030-01-02", "", "never", ""]
            .iter()
            .map(|f| f.len() + 3)
            .sum();
        let mut seen = std::collections::BTreeSet::new();
        for plain in MAX_RECORD_BYTES - fixed - 3..MAX_RECORD_BYTES - fixed + 3 {
            for quotes in [0, 1, 2] {
                let text = format!("{}{}", "x".repeat(plain - 2 * quotes), "\"".repeat(quotes));
                let rows = [row(text), row("Smoking".into())];
                let direct = clean_table(Table::Lifestyle, &rows, "v", 42).unwrap();
                let reference = through_csv(Table::Lifestyle, &rows, "v", 42).unwrap();
                assert_eq!(direct, reference, "{plain} {quotes}");
                seen.insert(matches!(&direct.outcomes[0],
                    Outcome::Quarantined(q) if q.reason == Reason::LineTooLong));
                assert!(matches!(direct.outcomes[1], Outcome::Clean(_)));
            }
        }
        assert_eq!(seen.len(), 2, "both sides of the limit are covered");
        // A header over the limit (one enormous key) makes the table unreadable.
        for len in [MAX_RECORD_BYTES - 200, MAX_RECORD_BYTES + 1] {
            let mut object = base[0].as_object().unwrap().clone();
            object.insert("k".repeat(len), json!(null));
            let rows = [Json::Object(object)];
            assert_eq!(
                clean_table(Table::Lifestyle, &rows, "v", 42),
                through_csv(Table::Lifestyle, &rows, "v", 42),
                "{len}"
            );
        }
    }
}
