//! Feature files: one row per person (an export) or per spine row (a training set), CSV or
//! Parquet, with the feature catalogue beside or inside. Written the same way by `medrec
//! features export|training-set` and by the export function.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{Datelike, NaiveDate};
use medrec_core::features::{Feature, FeatureKind, FEATURES};
use medrec_store::audit::{self, AuditRoute};
use medrec_store::features::{stream, PersonFeatures};
use medrec_store::training::{provenance, Provenance};
use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DataType, DoubleType, Int32Type, Int64Type,
};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::Type as SchemaType;
use serde_json::Value as Json;

/// The Parquet key-value metadata key of the feature catalogue.
const CATALOGUE_KEY: &str = "medrec.catalogue";

/// Where a CSV export's catalogue goes: `features.csv` -> `features.catalogue.json`.
fn catalogue_path(csv: &Path) -> PathBuf {
    csv.with_extension("catalogue.json")
}

/// Rows per Parquet row group: each group's rows are buffered before writing, about 3 KB a row
/// as JSON values (measured: 100,000-row groups peaked at 300 MB).
const ROW_GROUP_ROWS: usize = 16_384;

/// `NaiveDate::num_days_from_ce` of 1970-01-01 (Parquet DATE counts days from it).
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// A feature's value as a CSV field: booleans `true`/`false`, NULL an empty field.
fn csv_field(value: &Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The feature fields of one row, in catalogue order.
fn feature_fields(row: &PersonFeatures) -> impl Iterator<Item = String> + '_ {
    FEATURES.iter().map(|f| csv_field(&row.values[f.name]))
}

/// A column written before the features, and how Parquet types it.
#[derive(Debug, Clone)]
pub enum Leading {
    /// The row's person (INT64, required).
    PersonId(String),
    /// The row's cutoff (DATE, required).
    Cutoff(String),
    /// A passed-through text field (UTF-8, required).
    Text(String),
}

impl Leading {
    fn name(&self) -> &str {
        match self {
            Leading::PersonId(name) | Leading::Cutoff(name) | Leading::Text(name) => name,
        }
    }
}

/// One output row: the text of each leading column (written as is to a CSV), its cutoff (if
/// any) and its features.
#[derive(Debug, Clone)]
pub struct Example {
    pub fields: Vec<String>,
    pub cutoff: Option<NaiveDate>,
    pub features: PersonFeatures,
}

impl From<PersonFeatures> for Example {
    /// An export's row: its one leading column is the person.
    fn from(features: PersonFeatures) -> Self {
        Example {
            fields: vec![features.person_id.to_string()],
            cutoff: None,
            features,
        }
    }
}

/// The two formats features are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            other => bail!("unknown format {other:?} (expected csv or parquet)"),
        }
    }
}

/// A CSV or Parquet file of features being written. Rows go to a temporary file beside `out`,
/// renamed by [`FeatureFile::finish`], so an error leaves nothing; the catalogue goes beside a
/// CSV (`FILE.catalogue.json`) or into a Parquet file's metadata. Parquet rows are buffered a
/// row group at a time ([`ROW_GROUP_ROWS`]).
pub struct FeatureFile {
    out: PathBuf,
    file: tempfile::NamedTempFile,
    sink: Sink,
}

enum Sink {
    Csv(csv::Writer<std::io::BufWriter<File>>),
    Parquet {
        writer: ParquetOut,
        group: Vec<Example>,
    },
}

impl FeatureFile {
    /// `leading`: the columns before the features (the CSV header names them, in order).
    pub fn create(format: Format, out: &Path, leading: Vec<Leading>) -> anyhow::Result<Self> {
        let file = partial(out)?;
        let sink = match format {
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file.reopen()?));
                let mut header: Vec<&str> = leading.iter().map(Leading::name).collect();
                header.extend(FEATURES.iter().map(|f| f.name));
                writer.write_record(&header)?;
                Sink::Csv(writer)
            }
            Format::Parquet => Sink::Parquet {
                writer: ParquetOut::create(file.path(), leading)?,
                group: Vec::with_capacity(ROW_GROUP_ROWS),
            },
        };
        Ok(FeatureFile {
            out: out.to_owned(),
            file,
            sink,
        })
    }

    pub fn push(&mut self, row: Example) -> anyhow::Result<()> {
        match &mut self.sink {
            Sink::Csv(writer) => {
                let mut record = row.fields;
                record.extend(feature_fields(&row.features));
                writer.write_record(&record)?;
            }
            Sink::Parquet { writer, group } => {
                group.push(row);
                if group.len() == ROW_GROUP_ROWS {
                    writer.write_group(group)?;
                    group.clear();
                }
            }
        }
        Ok(())
    }

    /// Writes what is buffered and the catalogue (known only now: it holds the row count), and
    /// puts the file in place.
    pub fn finish(self, catalogue: &Json) -> anyhow::Result<()> {
        match self.sink {
            Sink::Csv(mut writer) => {
                writer.flush()?;
                let path = catalogue_path(&self.out);
                std::fs::write(&path, serde_json::to_string_pretty(catalogue)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Sink::Parquet { mut writer, group } => {
                if !group.is_empty() {
                    writer.write_group(&group)?;
                }
                writer.close(catalogue)?;
            }
        }
        self.file
            .persist(&self.out)
            .with_context(|| format!("writing {}", self.out.display()))?;
        Ok(())
    }
}

fn parquet_date(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

/// A Parquet file of features written a row group at a time: the leading columns, then every
/// feature, optional, in catalogue order. Dates are INT32 DATE, text is UTF-8 BYTE_ARRAY,
/// uncompressed. The catalogue (`medrec_core::features::catalogue`, with whatever the caller
/// added) goes into the file's key-value metadata under [`CATALOGUE_KEY`] when it is closed.
struct ParquetOut {
    writer: SerializedFileWriter<File>,
    leading: Vec<Leading>,
    path: PathBuf,
}

impl ParquetOut {
    fn create(out: &Path, leading: Vec<Leading>) -> anyhow::Result<Self> {
        let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .build();
        let writer = SerializedFileWriter::new(
            file,
            Arc::new(parquet_schema(&leading)?),
            Arc::new(properties),
        )?;
        Ok(ParquetOut {
            writer,
            leading,
            path: out.to_owned(),
        })
    }

    /// Writes `rows` as one row group (callers keep groups to about [`ROW_GROUP_ROWS`]).
    fn write_group(&mut self, rows: &[Example]) -> anyhow::Result<()> {
        let mut group = self.writer.next_row_group()?;
        for (index, lead) in self.leading.iter().enumerate() {
            let mut column = group
                .next_column()?
                .with_context(|| format!("parquet writer has no {} column", lead.name()))?;
            match lead {
                Leading::PersonId(_) => {
                    let ids: Vec<i64> = rows.iter().map(|r| r.features.person_id).collect();
                    column.typed::<Int64Type>().write_batch(&ids, None, None)?;
                }
                Leading::Cutoff(_) => {
                    let dates = rows
                        .iter()
                        .map(|r| r.cutoff.map(parquet_date).context("a row has no cutoff"))
                        .collect::<anyhow::Result<Vec<i32>>>()?;
                    column
                        .typed::<Int32Type>()
                        .write_batch(&dates, None, None)?;
                }
                Leading::Text(_) => {
                    let texts: Vec<ByteArray> = rows
                        .iter()
                        .map(|r| ByteArray::from(r.fields[index].as_str()))
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&texts, None, None)?;
                }
            }
            column.close()?;
        }
        for feature in FEATURES {
            let mut column = group
                .next_column()?
                .with_context(|| format!("parquet writer has no {} column", feature.name))?;
            match feature.kind {
                FeatureKind::Bool => {
                    write_optional::<BoolType>(&mut column, rows, feature, Json::as_bool)?
                }
                FeatureKind::Int => write_optional::<Int32Type>(&mut column, rows, feature, |v| {
                    v.as_i64().and_then(|n| i32::try_from(n).ok())
                })?,
                FeatureKind::Float => {
                    write_optional::<DoubleType>(&mut column, rows, feature, Json::as_f64)?
                }
                FeatureKind::Date => {
                    write_optional::<Int32Type>(&mut column, rows, feature, |v| {
                        Some(parquet_date(v.as_str()?.parse().ok()?))
                    })?
                }
                FeatureKind::Text => {
                    write_optional::<ByteArrayType>(&mut column, rows, feature, |v| {
                        v.as_str().map(ByteArray::from)
                    })?
                }
            }
            column.close()?;
        }
        group.close()?;
        Ok(())
    }

    fn close(mut self, catalogue: &Json) -> anyhow::Result<()> {
        self.writer.append_key_value_metadata(KeyValue::new(
            CATALOGUE_KEY.to_owned(),
            catalogue.to_string(),
        ));
        self.writer
            .close()
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

/// The Parquet schema: the leading columns (required), then every feature (optional).
fn parquet_schema(leading: &[Leading]) -> parquet::errors::Result<SchemaType> {
    let mut fields = Vec::new();
    for lead in leading {
        let (physical, logical) = match lead {
            Leading::PersonId(_) => (PhysicalType::INT64, None),
            Leading::Cutoff(_) => (PhysicalType::INT32, Some(LogicalType::Date)),
            Leading::Text(..) => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        };
        fields.push(Arc::new(
            SchemaType::primitive_type_builder(lead.name(), physical)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(logical)
                .build()?,
        ));
    }
    for feature in FEATURES {
        let (physical, logical) = match feature.kind {
            FeatureKind::Bool => (PhysicalType::BOOLEAN, None),
            FeatureKind::Int => (PhysicalType::INT32, None),
            FeatureKind::Float => (PhysicalType::DOUBLE, None),
            FeatureKind::Date => (PhysicalType::INT32, Some(LogicalType::Date)),
            FeatureKind::Text => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        };
        fields.push(Arc::new(
            SchemaType::primitive_type_builder(feature.name, physical)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(logical)
                .build()?,
        ));
    }
    SchemaType::group_type_builder("person_features")
        .with_fields(fields)
        .build()
}

/// Writes one optional column of a row group: the non-NULL values converted by `convert`
/// (`None`: the JSON value is not of the feature's kind), and a definition level per row.
fn write_optional<T: DataType>(
    column: &mut SerializedColumnWriter<'_>,
    rows: &[Example],
    feature: &Feature,
    convert: impl Fn(&Json) -> Option<T::T>,
) -> anyhow::Result<()> {
    let mut values = Vec::with_capacity(rows.len());
    let mut levels = Vec::with_capacity(rows.len());
    for row in rows {
        let row = &row.features;
        match row.values.get(feature.name) {
            Some(Json::Null) => levels.push(0),
            Some(value) => {
                values.push(convert(value).with_context(|| {
                    format!(
                        "person {}: {} = {value} is not a {:?}",
                        row.person_id, feature.name, feature.kind
                    )
                })?);
                levels.push(1);
            }
            None => bail!("person {}: no {} value", row.person_id, feature.name),
        }
    }
    column
        .typed::<T>()
        .write_batch(&values, Some(&levels), None)?;
    Ok(())
}

/// What an export wrote: its rows and what they were computed from.
#[derive(Debug)]
pub struct Exported {
    pub rows: i64,
    pub provenance: Provenance,
    /// The catalogue the file carries, with what the export was computed from.
    pub catalogue: Json,
}

/// The catalogue with what an export was computed from: its rows, its as-of rule and the loads
/// it could see.
fn export_manifest(rows: i64, provenance: &Provenance, as_of: Option<NaiveDate>) -> Json {
    let mut catalogue = medrec_core::features::catalogue(&provenance.definitions_version);
    catalogue["as_of"] = as_of.map(|d| d.to_string()).into();
    catalogue["export"] = serde_json::json!({
        "rows": rows,
        "as_of": match as_of {
            Some(date) => format!("{date}: only events on or before it count"),
            None => "the stored features: each person as of their latest event".to_owned(),
        },
        "loaded_through": provenance.loaded_through.map(|t| t.to_rfc3339()),
        "loaded_runs": provenance.runs,
    });
    catalogue
}

/// Writes one row per person (`person_id`, then every feature, named as in the catalogue):
/// the stored features, or computed as of a date, streamed in person order (memory flat
/// however many persons). Every person written is recorded in the access audit under
/// `reader` before the file is in place.
pub async fn export(
    client: &tokio_postgres::Client,
    format: Format,
    out: &Path,
    as_of: Option<NaiveDate>,
    reader: &str,
) -> anyhow::Result<Exported> {
    use futures::{pin_mut, StreamExt};
    let provenance = provenance(client, None).await?;
    let leading = vec![Leading::PersonId("person_id".into())];
    // The catalogue is written at the end, when the row count is known.
    let mut file = FeatureFile::create(format, out, leading)?;
    let rows = stream(client, as_of).await?;
    pin_mut!(rows);
    let mut persons = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row?;
        persons.push(row.person_id);
        file.push(Example::from(row))?;
    }
    let written = persons.len() as i64;
    audit::record_many(client, AuditRoute::Export, &persons, reader)
        .await
        .context("writing the access audit (the export is not written)")?;
    let catalogue = export_manifest(written, &provenance, as_of);
    file.finish(&catalogue)?;
    Ok(Exported {
        rows: written,
        provenance,
        catalogue,
    })
}

/// Where a feature file is written first: a temporary file beside `out` (created as any new
/// file is, 0666 less the umask, not tempfile's private 0600), renamed at the end.
fn partial(out: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(".medrec-partial")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(&dir)
        .with_context(|| format!("creating a file in {}", dir.display()))
}
