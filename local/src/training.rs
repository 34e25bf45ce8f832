//! `medrec features training-set`: one row per spine row (person, cutoff, any other columns; a
//! CSV, or a Parquet file read as text), the spine's columns first and unchanged, then every
//! feature as of that row's cutoff (docs/features.md, "Training sets"). The spine is read twice:
//! once to check it and send it to the database (COPY), once to pass its columns through beside
//! the streamed features, so memory stays flat whatever its size. The output is written to a temporary file beside `--out` and
//! renamed at the end: on any error nothing is written.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::{pin_mut, StreamExt};
use medrec_core::features::FEATURES;
use medrec_store::training::{begin_spine, features_at_cutoffs, provenance, Provenance};
use serde_json::{json, Value as Json};
use tokio_postgres::Client;

use crate::features::{Example, FeatureFile, Format, Leading};
use crate::progress::{self, Status};

/// The spine's required columns.
const PERSON_COLUMN: &str = "person_id";
const CUTOFF_COLUMN: &str = "cutoff";

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub rows: i64,
    pub provenance: Provenance,
}

/// The spine's header: its columns and where the two required ones are.
struct Header {
    columns: Vec<String>,
    person: usize,
    cutoff: usize,
}

/// Where an error points: `FILE:LINE` in a CSV, `FILE: row N` (or `schema`) in a Parquet file.
fn place(spine: &Path, at: &At) -> String {
    match at {
        At::Line(line) => format!("{}:{line}", spine.display()),
        At::Row(row) => format!("{}: row {row}", spine.display()),
        At::Schema => format!("{}: schema", spine.display()),
    }
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

/// A spine opened for one pass: its header and its rows in order. A CSV (with a header line) or,
/// by the `.parquet` extension, a Parquet file whose values are read as text (dates as
/// YYYY-MM-DD, NULL as empty).
struct Spine {
    header: Header,
    rows: Box<dyn Iterator<Item = anyhow::Result<Record>>>,
}

fn is_parquet(spine: &Path) -> bool {
    spine
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

impl Spine {
    fn open(spine: &Path) -> anyhow::Result<Spine> {
        if is_parquet(spine) {
            Spine::open_parquet(spine)
        } else {
            Spine::open_csv(spine)
        }
    }

    fn open_csv(spine: &Path) -> anyhow::Result<Spine> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(spine)
            .with_context(|| format!("opening the spine {}", spine.display()))?;
        let columns: Vec<String> = reader
            .headers()
            .with_context(|| format!("{}: reading the header", spine.display()))?
            .iter()
            .map(|c| c.trim().to_owned())
            .collect();
        let header = Header::new(spine, columns, At::Line(1))?;
        let path = spine.to_owned();
        let rows = reader.into_records().map(move |record| {
            let record =
                record.with_context(|| format!("{}: reading the spine", path.display()))?;
            Ok(Record {
                at: At::Line(line_of(&path, &record)),
                fields: record.iter().map(str::to_owned).collect(),
            })
        });
        Ok(Spine {
            header,
            rows: Box::new(rows),
        })
    }

    fn open_parquet(spine: &Path) -> anyhow::Result<Spine> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let file = std::fs::File::open(spine)
            .with_context(|| format!("opening the spine {}", spine.display()))?;
        let reader = SerializedFileReader::new(file)
            .with_context(|| format!("{}: not a readable Parquet file", spine.display()))?;
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
        let path = spine.to_owned();
        let rows = reader.into_iter().enumerate().map(move |(i, row)| {
            let at = At::Row(i as u64 + 1);
            let row = row.with_context(|| format!("{}: reading the spine", place(&path, &at)))?;
            Ok(Record {
                at,
                fields: row
                    .get_column_iter()
                    .map(|(_, f)| parquet_text(f))
                    .collect(),
            })
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
    fn new(spine: &Path, columns: Vec<String>, at: At) -> anyhow::Result<Header> {
        let find = |name: &str| {
            columns.iter().position(|c| c == name).with_context(|| {
                format!(
                    "{}: the spine has no {name} column (its columns: {})",
                    place(spine, &at),
                    columns.join(", ")
                )
            })
        };
        let (person, cutoff) = (find(PERSON_COLUMN)?, find(CUTOFF_COLUMN)?);
        for (i, column) in columns.iter().enumerate() {
            if columns[..i].contains(column) {
                bail!("{}: the spine has two {column} columns", place(spine, &at));
            }
            if FEATURES.iter().any(|f| f.name == column) {
                bail!(
                    "{}: the spine's column {column} is also a feature column: rename it",
                    place(spine, &at)
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

/// One spine row's person and cutoff, or an error naming the file and line.
fn parse_row(spine: &Path, header: &Header, record: &Record) -> anyhow::Result<(i64, NaiveDate)> {
    let field = |i: usize| record.fields.get(i).map_or("", |f| f.trim());
    let person = field(header.person);
    let person_id = person
        .parse::<i64>()
        .ok()
        .filter(|p| *p > 0 && person.bytes().all(|b| b.is_ascii_digit()))
        .with_context(|| {
            format!(
                "{}: person_id {person:?} is not a positive whole number",
                place(spine, &record.at)
            )
        })?;
    let cutoff = field(header.cutoff);
    let date = Some(cutoff)
        .filter(|c| c.len() == 10)
        .and_then(|c| NaiveDate::parse_from_str(c, "%Y-%m-%d").ok())
        .with_context(|| {
            format!(
                "{}: cutoff {cutoff:?} is not a date (YYYY-MM-DD)",
                place(spine, &record.at)
            )
        })?;
    Ok((person_id, date))
}

/// The catalogue with what this set was computed from: enough to reproduce it.
fn manifest(spine: &Path, rows: i64, provenance: &Provenance) -> Json {
    let mut catalogue = medrec_core::features::catalogue(&provenance.definitions_version);
    catalogue["training_set"] = json!({
        "spine": spine.display().to_string(),
        "rows": rows,
        "as_of": "each row's cutoff: only events on or before it count",
        "known_at": provenance.known_at.map(|t| t.to_rfc3339()),
        "loaded_through": provenance.loaded_through.map(|t| t.to_rfc3339()),
        "loaded_runs": provenance.runs,
    });
    catalogue
}

pub async fn write(
    client: &Client,
    spine: &Path,
    out: &Path,
    format: Format,
    known_at: Option<DateTime<Utc>>,
    quiet: bool,
) -> anyhow::Result<Written> {
    let status = Arc::new(Training::default());
    let _shown = progress::show(status.clone(), quiet);

    // Pass 1: check every row and send it.
    let mut first = Spine::open(spine)?;
    let mut sending = begin_spine(client).await?;
    while let Some(record) = first.next()? {
        let (person, cutoff) = parse_row(spine, &first.header, &record)?;
        sending.push(person, cutoff).await?;
        status.sent.fetch_add(1, Ordering::Relaxed);
    }
    let rows = sending.finish(client).await?;
    let provenance = provenance(client, known_at).await?;
    let catalogue = manifest(spine, rows, &provenance);

    // Pass 2: the spine again, beside the features in spine order.
    status.phase.store(COMPUTING, Ordering::Relaxed);
    let features = features_at_cutoffs(client, known_at).await?;
    pin_mut!(features);
    let mut second = Spine::open(spine)?;
    let header = first.header;
    if second.header.columns != header.columns {
        bail!("{}: the spine changed while it was read", spine.display());
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
    let mut file = FeatureFile::create(format, out, leading, catalogue)?;
    let mut written = 0i64;
    while let Some(row) = features.next().await {
        let (number, features) = row?;
        status.phase.store(WRITING, Ordering::Relaxed);
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
                place(spine, &record.at)
            );
        }
        file.push(Example {
            fields: record.fields,
            cutoff: Some(cutoff),
            features,
        })?;
        status.written.store(written as u64, Ordering::Relaxed);
    }
    if written != rows {
        bail!("{rows} spine rows were sent and {written} came back");
    }
    if second.next()?.is_some() {
        bail!(
            "{}: the spine changed while it was read: it has more rows than it had",
            spine.display()
        );
    }
    file.finish()?;
    status.phase.store(DONE, Ordering::Relaxed);
    Ok(Written { rows, provenance })
}

const SENDING: u8 = 0;
const COMPUTING: u8 = 1;
const WRITING: u8 = 2;
const DONE: u8 = 3;

/// The training set's progress: the spine sent, then the features computed, then written.
pub struct Training {
    phase: AtomicU8,
    sent: AtomicU64,
    written: AtomicU64,
    started: Instant,
}

impl Default for Training {
    fn default() -> Self {
        Training {
            phase: AtomicU8::new(SENDING),
            sent: AtomicU64::new(0),
            written: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl Status for Training {
    fn line(&self) -> String {
        let sent = self.sent.load(Ordering::Relaxed);
        let elapsed = progress::duration(self.started.elapsed().as_secs_f64());
        match self.phase.load(Ordering::Relaxed) {
            SENDING => format!(
                "sending the spine: {} rows ({elapsed})",
                progress::grouped(sent)
            ),
            COMPUTING => format!(
                "computing the features of {} rows ({elapsed})",
                progress::grouped(sent)
            ),
            _ => {
                let written = self.written.load(Ordering::Relaxed);
                format!(
                    "{:.0} % written: {} of {} rows ({elapsed})",
                    written as f64 * 100.0 / sent.max(1) as f64,
                    progress::grouped(written),
                    progress::grouped(sent)
                )
            }
        }
    }

    fn is_done(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == DONE
    }
}
