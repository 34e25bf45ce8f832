//! A training set (`medrec features training-set`, the export function's spines): one row per
//! spine row (person, cutoff, any other columns; a CSV, or a Parquet file read as text), the
//! spine's columns first and unchanged, then every feature as of that row's cutoff
//! (docs/features.md, "Training sets"). The spine is read twice: once to check it and send it to
//! the database (COPY), once to pass its columns through beside the streamed features, so memory
//! stays flat whatever its size. The output is written to a temporary file beside `out` and
//! renamed at the end: on any error nothing is written.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use futures::{pin_mut, StreamExt};
use medrec_core::features::FEATURES;
use medrec_store::training::{
    audit_spine, begin_spine, features_at_cutoffs, provenance, Provenance,
};
use serde_json::{json, Value as Json};
use tokio_postgres::Client;

use crate::feature_file::{Example, FeatureFile, Format, Leading};

/// The spine is not one a training set can be made of (a missing column, a bad date or id, a
/// wrong field count...): the message names the spine and the line or row. Permanent: the same
/// spine fails the same way.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSpine(pub String);

/// `bail!` for a bad spine.
macro_rules! bad_spine {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new(BadSpine(format!($($arg)*))))
    };
}

/// A spine to read: where the file is and the name that errors and the manifest give it (its
/// path, or the S3 key it was downloaded from). The name's extension decides the format:
/// `.parquet` is Parquet, anything else CSV.
#[derive(Debug, Clone)]
pub struct SpineFile {
    pub path: PathBuf,
    pub name: String,
}

impl SpineFile {
    /// A spine on this machine: its name is its path.
    pub fn local(path: &Path) -> SpineFile {
        SpineFile {
            path: path.to_owned(),
            name: path.display().to_string(),
        }
    }

    fn is_parquet(&self) -> bool {
        Path::new(&self.name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
    }

    /// Where an error points: `NAME:LINE` in a CSV, `NAME: row N` (or `schema`) in a Parquet
    /// file.
    fn place(&self, at: &At) -> String {
        match at {
            At::Line(line) => format!("{}:{line}", self.name),
            At::Row(row) => format!("{}: row {row}", self.name),
            At::Schema => format!("{}: schema", self.name),
        }
    }
}

/// The spine's required columns.
const PERSON_COLUMN: &str = "person_id";
const CUTOFF_COLUMN: &str = "cutoff";

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub rows: i64,
    pub provenance: Provenance,
    /// The catalogue the file carries, with what the set was computed from.
    pub catalogue: Json,
}

/// The spine's header: its columns and where the two required ones are.
struct Header {
    columns: Vec<String>,
    person: usize,
    cutoff: usize,
}

#[derive(Debug, Clone, Copy)]
enum At {
    Line(u64),
    Row(u64),
    /// A Parquet file's schema (its column names).
    Schema,
}

/// One spine row: where it is and its fields as text.
struct Record {
    at: At,
    fields: Vec<String>,
}

/// A spine opened for one pass: its header and its rows in order. A CSV (with a header line) or
/// a Parquet file whose values are read as text (dates as YYYY-MM-DD, NULL as empty).
struct Spine {
    header: Header,
    rows: Box<dyn Iterator<Item = anyhow::Result<Record>> + Send>,
}

impl Spine {
    fn open(spine: &SpineFile) -> anyhow::Result<Spine> {
        if spine.is_parquet() {
            Spine::open_parquet(spine)
        } else {
            Spine::open_csv(spine)
        }
    }

    fn open_csv(spine: &SpineFile) -> anyhow::Result<Spine> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(&spine.path)
            .with_context(|| format!("opening the spine {}", spine.name))?;
        let columns: Vec<String> = match reader.headers() {
            Ok(header) => header.iter().map(|c| c.trim().to_owned()).collect(),
            Err(error) => bad_spine!("{}: reading the header: {error}", spine.place(&At::Line(1))),
        };
        let header = Header::new(spine, columns, At::Line(1))?;
        let spine = spine.clone();
        let rows = reader.into_records().map(move |record| match record {
            Ok(record) => Ok(Record {
                at: At::Line(line_of(&spine.path, &record)),
                fields: record.iter().map(str::to_owned).collect(),
            }),
            // The csv crate's error names the line and the field counts, never a value.
            Err(error) => bad_spine!("{}: reading the spine: {error}", spine.name),
        });
        Ok(Spine {
            header,
            rows: Box::new(rows),
        })
    }

    fn open_parquet(spine: &SpineFile) -> anyhow::Result<Spine> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let file = std::fs::File::open(&spine.path)
            .with_context(|| format!("opening the spine {}", spine.name))?;
        let reader = match SerializedFileReader::new(file) {
            Ok(reader) => reader,
            Err(error) => bad_spine!("{}: not a readable Parquet file ({error})", spine.name),
        };
        let columns: Vec<String> = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .root_schema()
            .get_fields()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        let header = Header::new(spine, columns, At::Schema)?;
        let spine = spine.clone();
        let rows = reader.into_iter().enumerate().map(move |(i, row)| {
            let at = At::Row(i as u64 + 1);
            match row {
                Ok(row) => Ok(Record {
                    at,
                    fields: row
                        .get_column_iter()
                        .map(|(_, f)| parquet_text(f))
                        .collect(),
                }),
                Err(error) => bad_spine!("{}: reading the spine: {error}", spine.place(&at)),
            }
        });
        Ok(Spine {
            header,
            rows: Box::new(rows),
        })
    }

    fn next(&mut self) -> anyhow::Result<Option<Record>> {
        self.rows.next().transpose()
    }
}

/// A Parquet value as the text a CSV would hold.
fn parquet_text(field: &parquet::record::Field) -> String {
    use parquet::record::Field;
    match field {
        Field::Null => String::new(),
        Field::Str(s) => s.clone(),
        Field::Date(days) => chrono::DateTime::from_timestamp(i64::from(*days) * 86_400, 0)
            .map_or_else(|| days.to_string(), |t| t.date_naive().to_string()),
        other => other.to_string(),
    }
}

impl Header {
    fn new(spine: &SpineFile, columns: Vec<String>, at: At) -> anyhow::Result<Header> {
        let find = |name: &str| -> anyhow::Result<usize> {
            match columns.iter().position(|c| c == name) {
                Some(i) => Ok(i),
                None => bad_spine!(
                    "{}: the spine has no {name} column (its columns: {})",
                    spine.place(&at),
                    columns.join(", ")
                ),
            }
        };
        let (person, cutoff) = (find(PERSON_COLUMN)?, find(CUTOFF_COLUMN)?);
        for (i, column) in columns.iter().enumerate() {
            if columns[..i].contains(column) {
                bad_spine!("{}: the spine has two {column} columns", spine.place(&at));
            }
            if FEATURES.iter().any(|f| f.name == column) {
                bad_spine!(
                    "{}: the spine's column {column} is also a feature column: rename it",
                    spine.place(&at)
                );
            }
        }
        Ok(Header {
            columns,
            person,
            cutoff,
        })
    }
}

/// The line a record starts on. The csv crate counts a record from the end of the one before, so
/// blank lines before it are its first lines: skip them (read again only on an error path).
fn line_of(spine: &Path, record: &csv::StringRecord) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let Some(position) = record.position() else {
        return 0;
    };
    let mut skipped = 0;
    if let Ok(mut file) = std::fs::File::open(spine) {
        let mut head = [0u8; 4096];
        if file.seek(SeekFrom::Start(position.byte())).is_ok() {
            let n = file.read(&mut head).unwrap_or(0);
            skipped = head[..n]
                .iter()
                .take_while(|b| matches!(b, b'\n' | b'\r'))
                .filter(|b| **b == b'\n')
                .count() as u64;
        }
    }
    position.line() + skipped
}

/// One spine row's person and cutoff, or an error naming the spine and line.
fn parse_row(
    spine: &SpineFile,
    header: &Header,
    record: &Record,
) -> anyhow::Result<(i64, NaiveDate)> {
    let field = |i: usize| record.fields.get(i).map_or("", |f| f.trim());
    let person = field(header.person);
    let Some(person_id) = person
        .parse::<i64>()
        .ok()
        .filter(|p| *p > 0 && person.bytes().all(|b| b.is_ascii_digit()))
    else {
        bad_spine!(
            "{}: person_id {person:?} is not a positive whole number",
            spine.place(&record.at)
        );
    };
    let cutoff = field(header.cutoff);
    let Some(date) = Some(cutoff)
        .filter(|c| c.len() == 10)
        .and_then(|c| NaiveDate::parse_from_str(c, "%Y-%m-%d").ok())
    else {
        bad_spine!(
            "{}: cutoff {cutoff:?} is not a date (YYYY-MM-DD)",
            spine.place(&record.at)
        );
    };
    Ok((person_id, date))
}

/// The catalogue with what this set was computed from: enough to reproduce it.
fn manifest(spine: &SpineFile, rows: i64, provenance: &Provenance) -> Json {
    let mut catalogue = medrec_core::features::catalogue(&provenance.definitions_version);
    catalogue["training_set"] = json!({
        "spine": spine.name,
        "rows": rows,
        "as_of": "each row's cutoff: only events on or before it count",
        "known_at": provenance.known_at.map(|t| t.to_rfc3339()),
        "loaded_through": provenance.loaded_through.map(|t| t.to_rfc3339()),
        "loaded_runs": provenance.runs,
    });
    catalogue
}

/// Writes the training set of `spine` to `out`. Every person of the spine is recorded in the
/// access audit under `reader` before the file is in place; `progress` follows the work.
pub async fn write(
    client: &Client,
    spine: &SpineFile,
    out: &Path,
    format: Format,
    known_at: Option<DateTime<Utc>>,
    reader: &str,
    progress: &TrainingProgress,
) -> anyhow::Result<Written> {
    // Pass 1: check every row and send it.
    let mut first = Spine::open(spine)?;
    let mut sending = begin_spine(client).await?;
    while let Some(record) = first.next()? {
        let (person, cutoff) = parse_row(spine, &first.header, &record)?;
        sending.push(person, cutoff).await?;
        progress.sent.fetch_add(1, Ordering::Relaxed);
    }
    let rows = sending.finish(client).await?;
    let provenance = provenance(client, known_at).await?;

    // Pass 2: the spine again, beside the features in spine order.
    progress.enter(Phase::Computing);
    let features = features_at_cutoffs(client, known_at).await?;
    pin_mut!(features);
    let mut second = Spine::open(spine)?;
    let header = first.header;
    if second.header.columns != header.columns {
        bail!("{}: the spine changed while it was read", spine.name);
    }
    let leading = header
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| match i {
            i if i == header.person => Leading::PersonId(name.clone()),
            i if i == header.cutoff => Leading::Cutoff(name.clone()),
            _ => Leading::Text(name.clone()),
        })
        .collect();
    let mut file = FeatureFile::create(format, out, leading)?;
    let mut written = 0i64;
    while let Some(row) = features.next().await {
        let (number, features) = row?;
        progress.enter(Phase::Writing);
        written += 1;
        let record = second
            .next()?
            .context("the spine changed while it was read: it has fewer rows than it had")?;
        if number != written {
            bail!("training row {number} came back in the place of row {written}");
        }
        let (person, cutoff) = parse_row(spine, &header, &record)?;
        if person != features.person_id {
            bail!(
                "{}: the spine changed while it was read",
                spine.place(&record.at)
            );
        }
        file.push(Example {
            fields: record.fields,
            cutoff: Some(cutoff),
            features,
        })?;
        progress.written.store(written as u64, Ordering::Relaxed);
    }
    if written != rows {
        bail!("{rows} spine rows were sent and {written} came back");
    }
    if second.next()?.is_some() {
        bail!(
            "{}: the spine changed while it was read: it has more rows than it had",
            spine.name
        );
    }
    audit_spine(client, reader)
        .await
        .context("writing the access audit (the training set is not written)")?;
    let catalogue = manifest(spine, rows, &provenance);
    file.finish(&catalogue)?;
    progress.enter(Phase::Done);
    Ok(Written {
        rows,
        provenance,
        catalogue,
    })
}

/// Where a training set is: sending the spine, computing, writing, done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Sending,
    Computing,
    Writing,
    Done,
}

impl Phase {
    /// In order: `Phase::ALL[phase as usize] == phase`.
    const ALL: [Phase; 4] = [
        Phase::Sending,
        Phase::Computing,
        Phase::Writing,
        Phase::Done,
    ];
}

/// A training set's progress, updated as it is made and read by whoever shows it.
pub struct TrainingProgress {
    phase: AtomicU8,
    sent: AtomicU64,
    written: AtomicU64,
    pub started: Instant,
}

impl Default for TrainingProgress {
    fn default() -> Self {
        TrainingProgress {
            phase: AtomicU8::new(Phase::Sending as u8),
            sent: AtomicU64::new(0),
            written: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl TrainingProgress {
    pub fn phase(&self) -> Phase {
        Phase::ALL[usize::from(self.phase.load(Ordering::Relaxed))]
    }

    fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Spine rows sent to the database.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Rows written to the file.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}
