//! Per-person vendor JSON files (`docs/vendor-json.md`): parse, check, and clean every table's
//! rows through the very cleaners the CSV path uses.
//!
//! The file is parsed into a compact tree ([`Node`]: strings borrowed from the input, objects
//! as their entries in source order) that refuses a key twice in one object, at any level:
//! with a map, the last one would silently win (a second `"rx": []` erasing the rows, a second
//! `person_id` moving the file to someone else).
//!
//! Each row object becomes a row of named fields (one column per key the cleaner knows, plus
//! the row's own other keys; each value as its text) handed to the table's
//! [`crate::clean::RowCleaner`] ([`Table::row_cleaner`]): the header rules, the person id rule
//! and the table's cleaner run exactly as for a delivered CSV, so a rule is written once, and
//! the CSV reader's limits (record size, NUL bytes) hold for a row as if it had been delivered
//! as a CSV record. A row never carries the keys of other rows: memory and time stay linear in
//! the file, whatever its shape.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde::Deserialize;
use serde_json::Number;
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
/// The largest version a file may carry (15 digits): a counter, epoch seconds or epoch
/// milliseconds fit for millennia; a runaway value (`i64::MAX`) that would make every later
/// file of the person look older, and so freeze the person for good, is rejected.
pub const MAX_VERSION: i64 = 999_999_999_999_999;
/// At most this many array elements in a file (the rows of all five tables, and any array in
/// another key), counted while parsing: each row costs a few hundred bytes however small its
/// text (`{}` is two bytes), so the count bounds memory where the file size cannot.
pub const MAX_ROWS: usize = 1_000_000;

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
    /// A key twice in one object (at any level of the file).
    DuplicateKey,
    /// More than [`MAX_ROWS`] array elements.
    TooManyRows,
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
    let Node::Object(mut top) = parse_tree(bytes)? else {
        return Err(VendorError::new(VendorReason::NotAnObject, "$"));
    };
    match &top[field(&top, "schema")?].1 {
        Node::String(s) if s == SCHEMA_ID => {}
        _ => return Err(VendorError::new(VendorReason::WrongSchema, "schema")),
    }
    let vendor_id = vendor_id(&top[field(&top, "vendor_id")?].1)?;
    let person_id = person_id(&top[field(&top, "person_id")?].1)?;
    let version = version(&top[field(&top, "version")?].1)?;
    let updated_at = match &top[field(&top, "updated_at")?].1 {
        Node::String(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|_| VendorError::new(VendorReason::InvalidUpdatedAt, "updated_at"))?
            .with_timezone(&Utc),
        _ => {
            return Err(VendorError::new(
                VendorReason::InvalidUpdatedAt,
                "updated_at",
            ))
        }
    };
    // Every table's array is checked to be there before any is cleaned.
    let mut positions = [0; Table::ALL.len()];
    for (position, table) in positions.iter_mut().zip(Table::ALL) {
        *position = field(&top, table.name())?;
        if !matches!(top[*position].1, Node::Array(_)) {
            return Err(VendorError::new(VendorReason::WrongType, table.name()));
        }
    }
    let mut tables = Vec::with_capacity(Table::ALL.len());
    for (position, table) in positions.into_iter().zip(Table::ALL) {
        // Taken out of the tree: each row's tree is dropped as soon as the row is cleaned.
        let Node::Array(rows) = std::mem::replace(&mut top[position].1, Node::Null) else {
            unreachable!("checked above")
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

/// Where a top-level field is.
fn field(top: &Entries, name: &str) -> Result<usize, VendorError> {
    top.iter()
        .position(|(key, _)| key == name)
        .ok_or_else(|| missing(name))
}

/// A parsed JSON value. Unlike `serde_json::Value`, a string without escapes borrows the input,
/// an object is a list of entries in source order (no map: a key twice is an error, never an
/// overwrite), and the tree is small: peak memory is a small multiple of the file.
#[derive(Debug, Clone, PartialEq)]
enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

type Entries<'a> = [(Cow<'a, str>, Node<'a>)];

/// A step of the path to a duplicate key, innermost first while the error unwinds.
enum Step {
    Key(String),
    Index(usize),
}

/// What the parser found wrong beyond the JSON syntax, and its element count.
#[derive(Default)]
struct Parsing {
    /// The path to a duplicate key, innermost first.
    duplicate: RefCell<Option<Vec<Step>>>,
    elements: std::cell::Cell<usize>,
}

/// The JSON text of `bytes` as a [`Node`], or why not (`invalid_json`, `duplicate_key`).
fn parse_tree(bytes: &[u8]) -> Result<Node<'_>, VendorError> {
    let parsing = Parsing::default();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = NodeSeed { parsing: &parsing }
        .deserialize(&mut deserializer)
        .and_then(|node| deserializer.end().map(|()| node));
    parsed.map_err(|e| {
        let position = format!("line {} column {}", e.line(), e.column());
        if parsing.elements.get() > MAX_ROWS {
            return VendorError::new(
                VendorReason::TooManyRows,
                format!("more than {MAX_ROWS} array elements at {position}"),
            );
        }
        match parsing.duplicate.into_inner() {
            Some(steps) => VendorError::new(
                VendorReason::DuplicateKey,
                format!("{} at {position}", path_text(steps)),
            ),
            None => VendorError::new(
                VendorReason::InvalidJson,
                format!("{:?} at {position}", e.classify()),
            ),
        }
    })
}

/// `rx[3].feature` from the steps collected innermost first.
fn path_text(steps: Vec<Step>) -> String {
    let mut path = String::new();
    for step in steps.into_iter().rev() {
        match step {
            Step::Key(key) if path.is_empty() => path.push_str(&key),
            Step::Key(key) => {
                path.push('.');
                path.push_str(&key);
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

/// A key as a detail names it: at most 64 characters, control characters and quotes escaped
/// (a detail is printed and stored; it is a name, never a value).
fn key_text(key: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut text: String = key.chars().take(MAX_CHARS).collect::<String>();
    text = text.escape_debug().to_string();
    if key.chars().nth(MAX_CHARS).is_some() {
        text.push_str("...");
    }
    text
}

/// Deserializes a [`Node`]; records what it refused in `parsing`.
#[derive(Clone, Copy)]
struct NodeSeed<'c> {
    parsing: &'c Parsing,
}

impl NodeSeed<'_> {
    /// On the way out of an error: adds this level's step to a duplicate key's path.
    fn unwind(&self, step: impl FnOnce() -> Step) {
        if let Some(steps) = self.parsing.duplicate.borrow_mut().as_mut() {
            steps.push(step());
        }
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node<'de>, D::Error> {
        // serde_json bounds the nesting (128 levels) before recursing into an array or object.
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Node<'de>, E> {
        // As serde_json::Value: JSON text never holds a NaN or an infinity.
        Ok(Number::from_f64(n).map_or(Node::Null, Node::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(item)) => {
                    let elements = self.parsing.elements.get() + 1;
                    self.parsing.elements.set(elements);
                    if elements > MAX_ROWS {
                        return Err(de::Error::custom("too many array elements"));
                    }
                    items.push(item)
                }
                Ok(None) => break,
                Err(e) => {
                    let index = items.len();
                    self.unwind(|| Step::Index(index));
                    return Err(e);
                }
            }
        }
        items.shrink_to_fit();
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        /// Up to this many entries a scan finds a duplicate faster than a set.
        const SCAN: usize = 16;
        let mut entries: Vec<(Cow<'de, str>, Node<'de>)> = Vec::new();
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let duplicate = if entries.len() < SCAN {
                entries.iter().any(|(k, _)| *k == key)
            } else {
                if seen.is_empty() {
                    seen.extend(entries.iter().map(|(k, _)| k.clone()));
                }
                !seen.insert(key.clone())
            };
            if duplicate {
                *self.parsing.duplicate.borrow_mut() = Some(vec![Step::Key(key_text(&key))]);
                return Err(de::Error::custom("duplicate key"));
            }
            match map.next_value_seed(self) {
                Ok(value) => entries.push((key, value)),
                Err(e) => {
                    self.unwind(|| Step::Key(key_text(&key)));
                    return Err(e);
                }
            }
        }
        entries.shrink_to_fit();
        Ok(Node::Object(entries))
    }
}

/// An object key: borrowed from the input unless it had escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

/// Compact JSON, entries in source order (a row's kept `raw`).
impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Number(n) => n.serialize(serializer),
            Node::String(s) => serializer.serialize_str(s),
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key.as_ref(), value)?;
                }
                map.end()
            }
        }
    }
}

/// Vendor ids name lineage and S3 keys: short, plain ASCII.
fn vendor_id(value: &Node) -> Result<String, VendorError> {
    match value {
        Node::String(s)
            if !s.is_empty()
                && s.chars().count() <= MAX_VENDOR_ID_CHARS
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            Ok(s.to_string())
        }
        _ => Err(VendorError::new(VendorReason::InvalidVendorId, "vendor_id")),
    }
}

/// A positive integer (the [`PersonId`] rule), as a JSON integer or a string of digits.
fn positive_int(value: &Node) -> Option<i64> {
    let id = match value {
        Node::String(s) => s.parse::<PersonId>().ok()?,
        Node::Number(n) => PersonId::deserialize(n).ok()?,
        _ => return None,
    };
    Some(id.get())
}

fn person_id(value: &Node) -> Result<i64, VendorError> {
    positive_int(value).ok_or_else(|| VendorError::new(VendorReason::InvalidPersonId, "person_id"))
}

/// A positive integer up to [`MAX_VERSION`].
fn version(value: &Node) -> Result<i64, VendorError> {
    positive_int(value)
        .filter(|v| *v <= MAX_VERSION)
        .ok_or_else(|| {
            VendorError::new(
                VendorReason::InvalidVersion,
                format!("version (an integer from 1 to {MAX_VERSION})"),
            )
        })
}

/// A row value as the CSV field it stands for: strings as they are, numbers and booleans as
/// their JSON text, null as empty.
fn field_text<'n>(value: &'n Node) -> Option<Cow<'n, str>> {
    match value {
        Node::Null => Some(Cow::Borrowed("")),
        Node::String(s) => Some(Cow::Borrowed(s)),
        Node::Number(n) => Some(Cow::Owned(n.to_string())),
        Node::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Node::Array(_) | Node::Object(_) => None,
    }
}

/// The columns every row of a table has: `person_id`, then every other column the cleaner
/// knows, so that an absent key reads as an empty value (never as a missing required column).
fn known_columns(table: Table) -> Vec<String> {
    std::iter::once("person_id")
        .chain(
            table
                .spec()
                .source_columns
                .iter()
                .copied()
                .filter(|c| *c != "person_id"),
        )
        .map(str::to_owned)
        .collect()
}

/// One row's fields by the names it is cleaned under.
struct RowFields<'n> {
    /// The known columns, then the row's other keys in source order: the header rules (case,
    /// spaces, duplicates) apply to the keys as to a CSV header's names.
    extra_names: Vec<&'n str>,
    texts: Vec<Cow<'n, str>>,
}

/// Refuses a row that is not an object and a value that is not a scalar; takes a row's values
/// in the known columns' order, then its other keys'.
fn row_fields<'n>(
    table: Table,
    i: usize,
    row: &'n Node,
    known: &[String],
    file_person: &'n str,
) -> Result<RowFields<'n>, VendorError> {
    let Node::Object(entries) = row else {
        return Err(VendorError::new(
            VendorReason::WrongType,
            format!("{}[{i}]", table.name()),
        ));
    };
    let entries: &'n Entries<'n> = entries;
    let mut slots: Vec<Option<&'n Node>> = vec![None; known.len()];
    let mut extra_names = Vec::new();
    let mut extra_texts = Vec::new();
    for (key, value) in entries {
        let Some(text) = field_text(value) else {
            return Err(VendorError::new(
                VendorReason::WrongType,
                format!("{}[{i}].{}", table.name(), key_text(key)),
            ));
        };
        // Keys are distinct (the parser refuses a duplicate), so a known column's slot is
        // filled at most once.
        match known.iter().position(|k| k == key) {
            Some(slot) => slots[slot] = Some(value),
            None => {
                extra_names.push(key.as_ref());
                extra_texts.push(text);
            }
        }
    }
    let mut texts: Vec<Cow<'n, str>> = known
        .iter()
        .zip(slots)
        .map(|(column, slot)| match slot {
            Some(value) => field_text(value).unwrap_or_default(),
            None if column == "person_id" => Cow::Borrowed(file_person),
            None => Cow::Borrowed(""),
        })
        .collect();
    texts.extend(extra_texts);
    Ok(RowFields { extra_names, texts })
}

fn clean_table(
    table: Table,
    rows: Vec<Node>,
    vendor_id: &str,
    file_person: i64,
) -> Result<VendorTable, VendorError> {
    if rows.is_empty() {
        return Ok(VendorTable {
            table,
            outcomes: Vec::new(),
        });
    }
    let header_error = |i: usize, e: FileError| {
        VendorError::new(
            VendorReason::WrongType,
            format!("{}[{i}]: {e}", table.name()),
        )
    };
    let known = known_columns(table);
    // Rows of known keys only (the usual ones) share a cleaner; a row with other keys gets its
    // own, with its own keys as extra columns.
    let shared = table.row_cleaner(&known).map_err(|e| header_error(0, e))?;
    let file_person_text = file_person.to_string();
    let mut outcomes = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let line = i as u64 + 1;
        let fields = row_fields(table, i, &row, &known, &file_person_text)?;
        let own;
        let cleaner = if fields.extra_names.is_empty() {
            &shared
        } else {
            let names: Vec<String> = known
                .iter()
                .cloned()
                .chain(fields.extra_names.iter().map(|n| (*n).to_owned()))
                .collect();
            if let Some(defect) = record_defect(&names) {
                return Err(header_error(
                    i,
                    FileError::HeaderUnreadable { line: 1, defect },
                ));
            }
            own = table.row_cleaner(&names).map_err(|e| header_error(i, e))?;
            &own
        };
        // The row's source as kept (a quarantined row's `raw_line`): the object's compact JSON.
        let raw = serde_json::to_vec(&row).unwrap_or_default();
        let texts: Vec<&str> = fields.texts.iter().map(|t| t.as_ref()).collect();
        let outcome = match record_defect(&texts) {
            Some(defect) => Outcome::Quarantined(QuarantinedRow {
                line,
                reason: defect.into(),
                column: None,
                raw,
            }),
            None => cleaner.clean_fields(line, &texts, raw),
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
    use serde_json::{json, Map, Value as Json};

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

    fn error(text: &str) -> VendorError {
        parse(text.as_bytes()).unwrap_err()
    }

    /// With a map the last key would win: a second `"rx": []` erased the rows, a second
    /// `person_id` moved the file to another person.
    #[test]
    fn a_key_twice_in_one_object_rejects_the_file() {
        let rx = r#""rx":[{"rx_name":"Tamsulosin","rx_date":"2030-01-03"}]"#;
        let tables = EMPTY.replace(r#""rx":[]"#, rx);
        assert!(parse(file("42", &tables).as_bytes()).is_ok());
        let erased = file("42", &format!(r#"{tables},"rx":[]"#));
        let e = error(&erased);
        assert_eq!(e.reason, VendorReason::DuplicateKey);
        assert!(e.detail.starts_with("rx at line "), "{}", e.detail);
        let moved = file("42", &format!(r#"{EMPTY},"person_id":7"#));
        assert_eq!(error(&moved).reason, VendorReason::DuplicateKey);
        assert!(error(&moved).detail.starts_with("person_id at"));
        // In a row: the path names the table, the row and the key, never a value.
        let row = EMPTY.replace(
            r#""rx":[]"#,
            r#""rx":[{"rx_name":"A"},{"rx_name":"Tamsulosin","rx_date":"x","rx_name":"B"}]"#,
        );
        let e = error(&file("42", &row));
        assert_eq!(e.reason, VendorReason::DuplicateKey);
        assert!(
            e.detail.starts_with("rx[1].rx_name at line "),
            "{}",
            e.detail
        );
        assert!(!e.detail.contains("Tamsulosin"));
        // At any level, in ignored keys too; an escaped spelling is the same key.
        for extra in [
            r#""note":{"a":1,"b":{"c":[{"d":1,"d":2}]}}"#,
            r#""note":{"a\u0062":1,"ab":2}"#,
        ] {
            let e = error(&file("42", &format!("{EMPTY},{extra}")));
            assert_eq!(e.reason, VendorReason::DuplicateKey, "{extra}");
        }
        assert!(error(&file(
            "42",
            &format!(r#"{EMPTY},"note":{{"a":1,"b":{{"c":[{{"d":1,"d":2}}]}}}}"#)
        ))
        .detail
        .starts_with("note.b.c[0].d at"));
        // A wide object (past the scan into a set) too, wherever the second key is.
        let keys: Vec<String> = (0..100).map(|k| format!(r#""k{k}":{k}"#)).collect();
        for again in [0, 15, 16, 17, 99] {
            let row = format!(r#"{{{},"k{again}":null}}"#, keys.join(","));
            let e = error(&file(
                "42",
                &EMPTY.replace(r#""rx":[]"#, &format!(r#""rx":[{row}]"#)),
            ));
            assert_eq!(e.reason, VendorReason::DuplicateKey);
            assert!(
                e.detail.starts_with(&format!("rx[0].k{again} at")),
                "{}",
                e.detail
            );
        }
        let row = format!("{{{}}}", keys.join(","));
        let parsed = parse(
            file(
                "42",
                &EMPTY.replace(r#""rx":[]"#, &format!(r#""rx":[{row}]"#)),
            )
            .as_bytes(),
        );
        assert!(parsed.is_ok());
        // Keys that differ only in case are different JSON keys: the header rules refuse them
        // in a row (as a CSV header's), as before.
        let row = EMPTY.replace(r#""rx":[]"#, r#""rx":[{"rx_name":"A","RX_NAME":"B"}]"#);
        assert_eq!(reason(&file("42", &row)), VendorReason::WrongType);
    }

    /// A version of i64::MAX made every later file of the person look older, forever.
    #[test]
    fn versions_are_bounded() {
        let with_version =
            |v: &str| file("42", EMPTY).replace(r#""version":2"#, &format!(r#""version":{v}"#));
        for ok in [
            "1",
            "\"1\"",
            "1764664200000",
            "999999999999999",
            "\"999999999999999\"",
        ] {
            assert!(parse(with_version(ok).as_bytes()).is_ok(), "{ok}");
        }
        assert_eq!(
            parse(with_version("999999999999999").as_bytes())
                .unwrap()
                .version,
            MAX_VERSION
        );
        for bad in [
            "1000000000000000",
            "\"1000000000000000\"",
            "9223372036854775807",
            "\"9223372036854775807\"",
            "9223372036854775808",
            "0",
            "-1",
            "1.5",
            "null",
        ] {
            let e = error(&with_version(bad));
            assert_eq!(e.reason, VendorReason::InvalidVersion, "{bad}");
            assert!(e.detail.starts_with("version"));
        }
    }

    #[test]
    fn array_elements_are_capped() {
        let zeros = |n: usize| vec!["0"; n].join(",");
        let e = error(&file(
            "42",
            &format!(r#"{EMPTY},"note":[{}]"#, zeros(MAX_ROWS + 1)),
        ));
        assert_eq!(e.reason, VendorReason::TooManyRows);
        let half = MAX_ROWS / 2;
        let split = format!(r#"{EMPTY},"a":[{}],"b":[[{}]]"#, zeros(half), zeros(half));
        assert_eq!(reason(&file("42", &split)), VendorReason::TooManyRows);
        let exact = format!(r#"{EMPTY},"a":[{}],"b":[{}]"#, zeros(half), zeros(half));
        assert!(parse(file("42", &exact).as_bytes()).is_ok());
    }

    #[test]
    fn details_never_carry_long_or_raw_keys() {
        let long = "k".repeat(500);
        let row = EMPTY.replace(r#""rx":[]"#, &format!(r#""rx":[{{"{long}\n":[1]}}]"#));
        let e = error(&file("42", &row));
        assert_eq!(e.reason, VendorReason::WrongType);
        assert!(
            e.detail.len() < 100 && !e.detail.contains('\n'),
            "{}",
            e.detail
        );
    }

    /// Rows carry only their own keys: before, every row carried every key of the array (as
    /// an empty field and a null extra), so rows with distinct keys cost the square of the file.
    #[test]
    fn a_row_carries_only_its_own_keys() {
        let tables = EMPTY.replace(
            r#""lifestyle":[]"#,
            r#""lifestyle":[{"feature":"Smoking","color":"blue"},{"feature":"Smoking","size":3}]"#,
        );
        let parsed = parse(file("42", &tables).as_bytes()).unwrap();
        let extras: Vec<_> = parsed.tables[0]
            .outcomes
            .iter()
            .map(|o| match o {
                Outcome::Clean(row) => row.extras.clone().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(extras, [json!({"color": "blue"}), json!({"size": "3"})]);
        // The same row hashes the same whatever the other rows' keys.
        let alone = EMPTY.replace(
            r#""lifestyle":[]"#,
            r#""lifestyle":[{"feature":"Smoking","color":"blue"}]"#,
        );
        let alone = parse(file("42", &alone).as_bytes()).unwrap();
        assert_eq!(alone.tables[0].outcomes[0], parsed.tables[0].outcomes[0]);
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
                "duplicate_key",
                "too_many_rows",
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

    /// [`clean_table`] on rows written as serde_json values (through their JSON text).
    fn clean_json(
        table: Table,
        rows: &[Json],
        vendor_id: &str,
        file_person: i64,
    ) -> Result<VendorTable, VendorError> {
        let text = serde_json::to_vec(rows).unwrap();
        let Node::Array(nodes) = parse_tree(&text).unwrap() else {
            unreachable!("an array")
        };
        clean_table(table, nodes, vendor_id, file_person)
    }

    fn json_text(value: &Json) -> String {
        match value {
            Json::Null => String::new(),
            Json::String(s) => s.clone(),
            Json::Number(n) => n.to_string(),
            Json::Bool(b) => b.to_string(),
            Json::Array(_) | Json::Object(_) => unreachable!("checked"),
        }
    }

    /// How rows were cleaned before they became rows of named fields: each row rendered as an
    /// in-memory CSV of its own (the known columns and the row's own keys as the header) and
    /// read back by the table's file cleaner. Kept as the reference the direct path must match
    /// outcome for outcome.
    fn through_csv(
        table: Table,
        rows: &[Json],
        vendor_id: &str,
        file_person: i64,
    ) -> Result<VendorTable, VendorError> {
        let known = known_columns(table);
        let mut outcomes = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let line = i as u64 + 1;
            let Json::Object(object) = row else {
                return Err(VendorError::new(
                    VendorReason::WrongType,
                    format!("{}[{i}]", table.name()),
                ));
            };
            for (key, value) in object {
                if matches!(value, Json::Array(_) | Json::Object(_)) {
                    return Err(VendorError::new(
                        VendorReason::WrongType,
                        format!("{}[{i}].{}", table.name(), key_text(key)),
                    ));
                }
            }
            let columns: Vec<String> = known
                .iter()
                .cloned()
                .chain(object.keys().filter(|k| !known.contains(k)).cloned())
                .collect();
            let mut writer = csv::WriterBuilder::new()
                .quote_style(csv::QuoteStyle::Always)
                .from_writer(Vec::new());
            writer.write_record(&columns).unwrap();
            let record: Vec<String> = columns
                .iter()
                .map(|column| match object.get(column) {
                    Some(value) => json_text(value),
                    None if column == "person_id" => file_person.to_string(),
                    None => String::new(),
                })
                .collect();
            writer.write_record(&record).unwrap();
            let csv = writer.into_inner().unwrap();
            let mut stream = table.clean(std::io::Cursor::new(csv)).map_err(|e| {
                VendorError::new(
                    VendorReason::WrongType,
                    format!("{}[{i}]: {e}", table.name()),
                )
            })?;
            let outcome = stream.next().expect("one record").unwrap();
            assert!(stream.next().is_none());
            let raw = serde_json::to_vec(object).unwrap();
            outcomes.push(match outcome {
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
        Ok(VendorTable { table, outcomes })
    }

    fn assert_same_as_through_csv(table: Table, rows: &[Json]) {
        let direct = clean_json(table, rows, "vendor-a", 42);
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
            // Keys the cleaner does not know, in some rows only: each row's extras are its own
            // keys (never another row's, as nulls), and part of its content hash.
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
                let direct = clean_json(table, &bad_rows, "vendor-a", 42);
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
                let direct = clean_json(Table::Lifestyle, &rows, "v", 42).unwrap();
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
                clean_json(Table::Lifestyle, &rows, "v", 42),
                through_csv(Table::Lifestyle, &rows, "v", 42),
                "{len}"
            );
        }
    }
}
