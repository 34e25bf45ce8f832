//! Cleaning: one [`Cleaner`] per raw table, and the file-level rules they all share.
//!
//! Every raw row ends as exactly one [`Outcome`]: a clean row (which the database may still
//! find to be a duplicate) or a quarantined row with a machine-readable [`Reason`].

#[macro_use]
mod row;

pub mod common;
pub mod conditions;
pub mod labs;
pub mod lifestyle;
pub mod rx;
pub mod test_results;

use std::io::{self, BufRead};

use serde_json::{Map, Value as Json};
use strum::EnumCount;
use xxhash_rust::xxh3::Xxh3;

use crate::reader::{RawRecord, RecordDefect, RecordReader};
use crate::table::Table;
use crate::value::{Column, Value};

/// Turns one raw row of a table into a typed clean row.
pub trait Cleaner {
    type Row: CleanRow;
    const TABLE: Table;
    /// The source columns this cleaner understands (others are kept as extras).
    const SOURCE_COLUMNS: &'static [&'static str];
    /// Source columns without which a file cannot be cleaned at all.
    const REQUIRED_COLUMNS: &'static [&'static str];

    /// Cleans one row whose person id is already valid. Value-level problems are recorded in
    /// `notes` (the row is kept); an `Err` quarantines the row.
    fn clean(&self, raw: &RawRow<'_>, notes: &mut Notes) -> Result<Self::Row, Rejection>;
}

/// The typed, table-specific part of a clean row.
pub trait CleanRow {
    /// Table-specific clean columns, in the order of [`CleanRow::into_values`].
    const COLUMNS: &'static [Column];
    fn into_values(self) -> Vec<Value>;
}

/// A quality flag on a clean row: the row was kept, but a value was nulled or repaired.
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
pub enum Flag {
    PlaceholderDate,
    InvalidDate,
    EndBeforeStart,
    FloatEncodedPersonId,
    InvalidIcdCode,
    InvalidDin,
    InvalidRxNorm,
    NaturalProductNumber,
    InvalidLoinc,
    SpecialtyPersonNameRemoved,
    UnknownSpecialty,
    ClassFromIngredient,
    UnknownDrug,
    UnknownAnalyte,
    LoincAnalyteMismatch,
    RangeRepaired,
    RangeUnparsed,
    FlagMismatch,
    ValueUnparsed,
}

impl Flag {
    pub const ALL: [Flag; Flag::COUNT] = crate::variant_array();

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a raw row was quarantined instead of loaded.
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
pub enum Reason {
    TooFewFields,
    TooManyFields,
    InvalidUtf8,
    NulByte,
    LineTooLong,
    MissingPersonId,
    InvalidPersonId,
    MissingRequiredValue,
    InvalidId,
    /// Assigned by the database: the row's natural key is already loaded with other content.
    ConflictingId,
}

impl Reason {
    pub const ALL: [Reason; Reason::COUNT] = crate::variant_array();

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A record the reader could not split into text fields is quarantined whole.
impl From<RecordDefect> for Reason {
    fn from(defect: RecordDefect) -> Reason {
        match defect {
            RecordDefect::InvalidUtf8 => Reason::InvalidUtf8,
            RecordDefect::NulByte => Reason::NulByte,
            RecordDefect::TooLong => Reason::LineTooLong,
        }
    }
}

/// A row-level rejection: the reason and which column caused it (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub column: Option<&'static str>,
}

impl Rejection {
    pub fn new(reason: Reason, column: &'static str) -> Self {
        Rejection {
            reason,
            column: Some(column),
        }
    }
}

/// Quality notes collected while cleaning one row.
#[derive(Debug, Default)]
pub struct Notes {
    /// The row's flags, each once (the clean table's `flags`).
    pub flags: Vec<Flag>,
    /// Each flag with the source column it was raised on, each pair once (a row may flag two
    /// dates): what the per-run counts of `ingest_run_flag` add up.
    pub flagged_columns: Vec<(Flag, &'static str)>,
    /// Source text of values that were nulled, or repaired by inference, by source column
    /// (lossless normalisation such as `I49. 9` -> `I49.9` or `190283.0` -> `190283` keeps none).
    pub raw_values: Vec<(&'static str, String)>,
}

impl Notes {
    /// Flags the row for a value of `column` (a source column).
    pub fn flag(&mut self, flag: Flag, column: &'static str) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
        if !self.flagged_columns.contains(&(flag, column)) {
            self.flagged_columns.push((flag, column));
        }
    }

    /// Flags the row and keeps the source text of a value that was nulled or repaired.
    pub fn keep_raw(&mut self, flag: Flag, column: &'static str, raw: &str) {
        self.flag(flag, column);
        if !self.raw_values.iter().any(|(c, _)| *c == column) {
            self.raw_values.push((column, raw.to_owned()));
        }
    }
}

/// A file can't be cleaned at all (as opposed to a row that is quarantined).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty (no header line)")]
    Empty,
    #[error("header line {line} is unreadable ({defect:?}: not UTF-8, a NUL byte, or over 1 MiB)")]
    HeaderUnreadable { line: u64, defect: RecordDefect },
    #[error("missing required column(s) {missing:?} for table {table}")]
    MissingColumns {
        table: Table,
        missing: Vec<&'static str>,
    },
    #[error("column {column:?} appears more than once in the header")]
    DuplicateColumn { column: String },
    #[error("header has an empty column name at position {position}")]
    EmptyColumnName { position: usize },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Where each known column sits in this file, and which columns are extra.
#[derive(Debug)]
pub struct Header {
    positions: Vec<Option<usize>>,
    extras: Vec<(String, usize)>,
    width: usize,
}

/// Header names are matched ignoring case and surrounding spaces.
pub fn normalize_column_name(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

impl Header {
    pub fn resolve(
        table: Table,
        names: &[String],
        known: &'static [&'static str],
        required: &'static [&'static str],
    ) -> Result<Header, FileError> {
        let normalized: Vec<String> = names.iter().map(|n| normalize_column_name(n)).collect();
        // A set, not a scan of the names before each one: a wide header (a vendor row's keys)
        // must not cost the square of its width.
        let mut seen = std::collections::HashSet::with_capacity(normalized.len());
        for (i, name) in normalized.iter().enumerate() {
            if name.is_empty() {
                return Err(FileError::EmptyColumnName { position: i + 1 });
            }
            if !seen.insert(name.as_str()) {
                return Err(FileError::DuplicateColumn {
                    column: name.clone(),
                });
            }
        }
        let positions: Vec<Option<usize>> = known
            .iter()
            .map(|k| normalized.iter().position(|n| n == k))
            .collect();
        let missing: Vec<&'static str> = required
            .iter()
            .copied()
            .filter(|r| !normalized.iter().any(|n| n == r))
            .collect();
        if !missing.is_empty() {
            return Err(FileError::MissingColumns { table, missing });
        }
        let mut extras: Vec<(String, usize)> = normalized
            .iter()
            .enumerate()
            .filter(|(_, n)| !known.contains(&n.as_str()))
            .map(|(i, n)| (n.clone(), i))
            .collect();
        extras.sort();
        Ok(Header {
            positions,
            extras,
            width: names.len(),
        })
    }
}

/// One raw row's fields by source column name: trimmed, empty -> `None`.
pub struct RawRow<'a> {
    known: &'static [&'static str],
    values: Vec<Option<&'a str>>,
    extras: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> RawRow<'a> {
    fn new<S: AsRef<str>>(
        header: &'a Header,
        known: &'static [&'static str],
        fields: &'a [S],
    ) -> Self {
        let pick = |i: usize| Some(fields[i].as_ref().trim()).filter(|s| !s.is_empty());
        RawRow {
            known,
            values: header.positions.iter().map(|p| p.and_then(pick)).collect(),
            extras: header
                .extras
                .iter()
                .map(|(name, i)| (name.as_str(), pick(*i)))
                .collect(),
        }
    }

    /// The trimmed value of a source column; `None` when empty or absent from the file.
    ///
    /// # Panics
    /// If `column` is not one of the cleaner's `SOURCE_COLUMNS` (a programming error).
    pub fn get(&self, column: &str) -> Option<&'a str> {
        let index = self
            .known
            .iter()
            .position(|k| *k == column)
            .unwrap_or_else(|| panic!("{column} is not a source column"));
        self.values[index]
    }

    /// Content hash of the trimmed row, independent of column order: identical rows have
    /// identical hashes, so the database can drop exact duplicates by key.
    pub fn content_hash(&self) -> [u8; 16] {
        let mut hasher = Xxh3::new();
        let mut feed = |name: &str, value: Option<&str>| {
            hasher.update(&(name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            match value {
                None => hasher.update(&[0]),
                Some(v) => {
                    hasher.update(&[1]);
                    hasher.update(&(v.len() as u64).to_le_bytes());
                    hasher.update(v.as_bytes());
                }
            }
        };
        for (name, value) in self.known.iter().zip(&self.values) {
            feed(name, *value);
        }
        for (name, value) in &self.extras {
            feed(name, *value);
        }
        hasher.digest128().to_be_bytes()
    }

    /// Values of columns the cleaner does not know, as a JSON object (`None` if there are none).
    pub fn extras_json(&self) -> Option<Json> {
        if self.extras.is_empty() {
            return None;
        }
        let map: Map<String, Json> = self
            .extras
            .iter()
            .map(|(name, value)| {
                let v = value.map_or(Json::Null, |v| Json::String(v.to_owned()));
                ((*name).to_owned(), v)
            })
            .collect();
        Some(Json::Object(map))
    }
}

/// A clean row ready for loading.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanedRow {
    pub line: u64,
    pub person_id: i64,
    pub row_hash: [u8; 16],
    /// Table-specific values, in the order of the table's `CleanRow::COLUMNS`.
    pub values: Vec<Value>,
    pub flags: Vec<Flag>,
    /// Each flag with the source column it was raised on ([`Notes::flagged_columns`]).
    pub flagged_columns: Vec<(Flag, &'static str)>,
    pub raw_values: Option<Json>,
    pub extras: Option<Json>,
    /// The exact source line (the database needs it when a natural key turns out to conflict).
    pub raw: Vec<u8>,
}

/// A raw row that could not be loaded, with its exact source bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedRow {
    pub line: u64,
    pub reason: Reason,
    pub column: Option<&'static str>,
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Clean(CleanedRow),
    Quarantined(QuarantinedRow),
}

/// Cleans rows of named fields, whatever format delivered them (a CSV record, a vendor JSON
/// object): the header rules, the person id rule and the table's cleaner, written once.
pub struct RowCleaner<C: Cleaner> {
    cleaner: C,
    header: Header,
}

impl<C: Cleaner> RowCleaner<C> {
    /// Checks the column names by the header rules (case and surrounding spaces ignored, no
    /// empty or duplicate name, every required column present).
    pub fn new(cleaner: C, names: &[String]) -> Result<Self, FileError> {
        let header = Header::resolve(C::TABLE, names, C::SOURCE_COLUMNS, C::REQUIRED_COLUMNS)?;
        Ok(RowCleaner { cleaner, header })
    }

    /// Cleans one row: `fields` in the order of the names, `raw` its source as it is kept
    /// (a quarantined row's `raw_line`; a clean row keeps it for a later conflict).
    pub fn clean<S: AsRef<str>>(&self, line: u64, fields: &[S], raw: Vec<u8>) -> Outcome {
        let quarantine = |reason, column, raw| {
            Outcome::Quarantined(QuarantinedRow {
                line,
                reason,
                column,
                raw,
            })
        };
        if fields.len() != self.header.width {
            let reason = if fields.len() < self.header.width {
                Reason::TooFewFields
            } else {
                Reason::TooManyFields
            };
            return quarantine(reason, None, raw);
        }
        let row = RawRow::new(&self.header, C::SOURCE_COLUMNS, fields);
        let mut notes = Notes::default();
        let cleaned = common::person_id(row.get("person_id"), &mut notes).and_then(|person_id| {
            self.cleaner
                .clean(&row, &mut notes)
                .map(|clean| (person_id, clean))
        });
        match cleaned {
            Ok((person_id, clean)) => {
                let raw_values = (!notes.raw_values.is_empty()).then(|| {
                    Json::Object(
                        notes
                            .raw_values
                            .into_iter()
                            .map(|(c, v)| (c.to_owned(), Json::String(v)))
                            .collect(),
                    )
                });
                notes.flags.sort();
                notes.flagged_columns.sort();
                Outcome::Clean(CleanedRow {
                    line,
                    person_id,
                    row_hash: row.content_hash(),
                    values: clean.into_values(),
                    flags: notes.flags,
                    flagged_columns: notes.flagged_columns,
                    raw_values,
                    extras: row.extras_json(),
                    raw,
                })
            }
            Err(rejection) => quarantine(rejection.reason, rejection.column, raw),
        }
    }
}

/// A [`RowCleaner`] of whichever table ([`Table::row_cleaner`]).
pub trait CleanFields: Send + Sync {
    /// [`RowCleaner::clean`].
    fn clean_fields(&self, line: u64, fields: &[&str], raw: Vec<u8>) -> Outcome;
}

impl<C: Cleaner + Send + Sync> CleanFields for RowCleaner<C> {
    fn clean_fields(&self, line: u64, fields: &[&str], raw: Vec<u8>) -> Outcome {
        self.clean(line, fields, raw)
    }
}

/// Cleans a whole file row by row, with bounded memory.
pub struct FileCleaner<C: Cleaner, R> {
    rows: RowCleaner<C>,
    reader: RecordReader<R>,
}

impl<C: Cleaner, R: BufRead> FileCleaner<C, R> {
    /// Reads and checks the header; fails if the file can't be cleaned at all.
    pub fn open(cleaner: C, input: R) -> Result<Self, FileError> {
        let mut reader = RecordReader::new(input);
        let first = reader.next_record()?.ok_or(FileError::Empty)?;
        let names = first.fields.map_err(|defect| FileError::HeaderUnreadable {
            line: first.line,
            defect,
        })?;
        Ok(FileCleaner {
            rows: RowCleaner::new(cleaner, &names)?,
            reader,
        })
    }

    /// The next row's outcome, `None` at the end of the file.
    pub fn next_outcome(&mut self) -> io::Result<Option<Outcome>> {
        let Some(record) = self.reader.next_record()? else {
            return Ok(None);
        };
        Ok(Some(self.clean_record(record)))
    }

    fn clean_record(&self, record: RawRecord) -> Outcome {
        let RawRecord { line, raw, fields } = record;
        match fields {
            Ok(fields) => self.rows.clean(line, &fields, raw),
            Err(defect) => Outcome::Quarantined(QuarantinedRow {
                line,
                reason: defect.into(),
                column: None,
                raw,
            }),
        }
    }
}

impl<C: Cleaner, R: BufRead> Iterator for FileCleaner<C, R> {
    type Item = io::Result<Outcome>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_outcome().transpose()
    }
}

/// A table's cleaned rows, whatever the table (what the loader consumes).
pub type OutcomeStream<'r> = Box<dyn Iterator<Item = io::Result<Outcome>> + Send + 'r>;

/// A [`FileCleaner`] of `C` over any reader, boxed: each table's [`crate::TableSpec::open`].
pub(crate) fn open_boxed<'r, C: Cleaner + Default + Send + 'static>(
    input: Box<dyn BufRead + Send + 'r>,
) -> Result<OutcomeStream<'r>, FileError> {
    Ok(Box::new(FileCleaner::open(C::default(), input)?))
}

/// A [`RowCleaner`] of `C` for rows with these column names, boxed: each table's
/// [`crate::TableSpec::row_cleaner`].
pub(crate) fn row_cleaner_boxed<C: Cleaner + Default + Send + Sync + 'static>(
    names: &[String],
) -> Result<Box<dyn CleanFields>, FileError> {
    Ok(Box::new(RowCleaner::new(C::default(), names)?))
}

impl Table {
    /// The table-specific clean columns.
    pub fn clean_columns(self) -> &'static [Column] {
        self.spec().clean_columns
    }

    /// Opens a raw file of this table for cleaning.
    pub fn clean<'r, R: BufRead + Send + 'r>(
        self,
        input: R,
    ) -> Result<OutcomeStream<'r>, FileError> {
        (self.spec().open)(Box::new(input))
    }

    /// A cleaner for rows of this table with the given column names, from any format: the
    /// header rules apply to the names as to a CSV header.
    pub fn row_cleaner(self, names: &[String]) -> Result<Box<dyn CleanFields>, FileError> {
        (self.spec().row_cleaner)(names)
    }
}

#[cfg(test)]
mod vocabulary_tests {
    use super::*;

    /// The names are stored (flags, quarantine reasons) and checked by the database
    /// (`quality_flags_ok` in migrations/0002): they must never change.
    #[test]
    fn flags_and_reasons_keep_their_names() {
        let flags: Vec<&str> = Flag::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(
            flags,
            [
                "placeholder_date",
                "invalid_date",
                "end_before_start",
                "float_encoded_person_id",
                "invalid_icd_code",
                "invalid_din",
                "invalid_rx_norm",
                "natural_product_number",
                "invalid_loinc",
                "specialty_person_name_removed",
                "unknown_specialty",
                "class_from_ingredient",
                "unknown_drug",
                "unknown_analyte",
                "loinc_analyte_mismatch",
                "range_repaired",
                "range_unparsed",
                "flag_mismatch",
                "value_unparsed",
            ]
        );
        let reasons: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "too_few_fields",
                "too_many_fields",
                "invalid_utf8",
                "nul_byte",
                "line_too_long",
                "missing_person_id",
                "invalid_person_id",
                "missing_required_value",
                "invalid_id",
                "conflicting_id",
            ]
        );
        for flag in Flag::ALL {
            assert_eq!(flag.to_string(), flag.as_str());
            assert_eq!(flag.as_str().parse::<Flag>(), Ok(flag));
        }
        for reason in Reason::ALL {
            assert_eq!(reason.to_string(), reason.as_str());
            assert_eq!(reason.as_str().parse::<Reason>(), Ok(reason));
        }
        assert!("Invalid_Date".parse::<Flag>().is_err());
        assert!(" nul_byte".parse::<Reason>().is_err());
    }
}

/// Shared by the table modules' tests: the real sample, cleaned through the real framework.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn sample_outcomes(table: Table) -> Vec<Outcome> {
        let path = format!(
            "{}/../../../shared/data/sample/{}_ae.csv",
            env!("CARGO_MANIFEST_DIR"),
            table.name()
        );
        let file = std::fs::File::open(&path).expect("the sample is in ../shared/data/sample");
        table
            .clean(std::io::BufReader::new(file))
            .expect("a cleanable header")
            .collect::<io::Result<Vec<_>>>()
            .expect("readable")
    }

    pub fn sample_clean_rows(table: Table) -> Vec<CleanedRow> {
        sample_outcomes(table)
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Clean(row) => Some(row),
                Outcome::Quarantined(_) => None,
            })
            .collect()
    }

    /// A clean row's value by column name.
    pub fn value<'a>(columns: &[Column], row: &'a CleanedRow, column: &str) -> &'a Value {
        let i = columns
            .iter()
            .position(|c| c.name == column)
            .unwrap_or_else(|| panic!("no column {column}"));
        &row.values[i]
    }

    pub fn text<'a>(columns: &[Column], row: &'a CleanedRow, column: &str) -> Option<&'a str> {
        match value(columns, row, column) {
            Value::Text(t) => t.as_deref(),
            other => panic!("{column} is not text: {other:?}"),
        }
    }

    pub fn num(columns: &[Column], row: &CleanedRow, column: &str) -> Option<f64> {
        match value(columns, row, column) {
            Value::Float8(v) => *v,
            other => panic!("{column} is not a float: {other:?}"),
        }
    }
}
