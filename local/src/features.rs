//! `medrec features ...`: refresh and export per-person features.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{Datelike, NaiveDate};
use medrec_core::features::{Feature, FeatureKind, FEATURES};
use medrec_store::features::{read, PersonFeatures};
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
pub const CATALOGUE_KEY: &str = "medrec.catalogue";

/// Where a CSV export's catalogue goes: `features.csv` -> `features.catalogue.json`.
pub fn catalogue_path(csv: &Path) -> std::path::PathBuf {
    csv.with_extension("catalogue.json")
}

/// Rows per Parquet row group: each group's column values are buffered before writing.
const ROW_GROUP_ROWS: usize = 100_000;

/// `NaiveDate::num_days_from_ce` of 1970-01-01 (Parquet DATE counts days from it).
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Writes one row per person: `person_id` then every feature, named as in the catalogue.
/// Booleans are `true`/`false`, NULL is an empty field.
pub fn write_csv(rows: &[PersonFeatures], out: &Path) -> anyhow::Result<()> {
    let mut writer =
        csv::Writer::from_path(out).with_context(|| format!("creating {}", out.display()))?;
    let mut header = vec!["person_id"];
    header.extend(FEATURES.iter().map(|f| f.name));
    writer.write_record(&header)?;
    for row in rows {
        let mut record = vec![row.person_id.to_string()];
        record.extend(FEATURES.iter().map(|f| match &row.values[f.name] {
            Json::Null => String::new(),
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }));
        writer.write_record(&record)?;
    }
    writer.flush()?;
    Ok(())
}

/// The Parquet schema of an export: `person_id` (INT64, required), then every feature,
/// optional, in catalogue order. Dates are INT32 DATE, text is UTF-8 BYTE_ARRAY.
fn parquet_schema() -> parquet::errors::Result<SchemaType> {
    let mut fields = vec![Arc::new(
        SchemaType::primitive_type_builder("person_id", PhysicalType::INT64)
            .with_repetition(Repetition::REQUIRED)
            .build()?,
    )];
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

/// Writes one row per person, typed as in [`parquet_schema`]; NULL is an absent value
/// (definition level 0). Uncompressed, in row groups of at most [`ROW_GROUP_ROWS`] rows.
/// The catalogue (`medrec_core::features::catalogue`) goes into the file's key-value metadata
/// under [`CATALOGUE_KEY`].
pub fn write_parquet(rows: &[PersonFeatures], out: &Path, catalogue: &Json) -> anyhow::Result<()> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            CATALOGUE_KEY.to_owned(),
            catalogue.to_string(),
        )]))
        .build();
    let mut writer =
        SerializedFileWriter::new(file, Arc::new(parquet_schema()?), Arc::new(properties))?;
    for group in rows.chunks(ROW_GROUP_ROWS) {
        let mut group_writer = writer.next_row_group()?;
        let mut column = group_writer
            .next_column()?
            .context("parquet writer has no person_id column")?;
        let ids: Vec<i64> = group.iter().map(|r| r.person_id).collect();
        column.typed::<Int64Type>().write_batch(&ids, None, None)?;
        column.close()?;
        for feature in FEATURES {
            let mut column = group_writer
                .next_column()?
                .with_context(|| format!("parquet writer has no {} column", feature.name))?;
            match feature.kind {
                FeatureKind::Bool => {
                    write_optional::<BoolType>(&mut column, group, feature, Json::as_bool)?
                }
                FeatureKind::Int => {
                    write_optional::<Int32Type>(&mut column, group, feature, |v| {
                        v.as_i64().and_then(|n| i32::try_from(n).ok())
                    })?
                }
                FeatureKind::Float => {
                    write_optional::<DoubleType>(&mut column, group, feature, Json::as_f64)?
                }
                FeatureKind::Date => {
                    write_optional::<Int32Type>(&mut column, group, feature, |v| {
                        let date: NaiveDate = v.as_str()?.parse().ok()?;
                        Some(date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE)
                    })?
                }
                FeatureKind::Text => {
                    write_optional::<ByteArrayType>(&mut column, group, feature, |v| {
                        v.as_str().map(ByteArray::from)
                    })?
                }
            }
            column.close()?;
        }
        group_writer.close()?;
    }
    writer
        .close()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// Writes one optional column of a row group: the non-NULL values converted by `convert`
/// (`None`: the JSON value is not of the feature's kind), and a definition level per row.
fn write_optional<T: DataType>(
    column: &mut SerializedColumnWriter<'_>,
    rows: &[PersonFeatures],
    feature: &Feature,
    convert: impl Fn(&Json) -> Option<T::T>,
) -> anyhow::Result<()> {
    let mut values = Vec::with_capacity(rows.len());
    let mut levels = Vec::with_capacity(rows.len());
    for row in rows {
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

pub async fn export(
    client: &tokio_postgres::Client,
    format: &str,
    out: &Path,
    as_of: Option<NaiveDate>,
) -> anyhow::Result<usize> {
    if !matches!(format, "csv" | "parquet") {
        bail!("unknown export format {format:?} (expected csv or parquet)");
    }
    let rows = read(client, None, as_of).await?;
    let version: String = client
        .query_one("SELECT feature_definitions_version()", &[])
        .await?
        .get(0);
    let mut catalogue = medrec_core::features::catalogue(&version);
    catalogue["as_of"] = as_of.map(|d| d.to_string()).into();
    if format == "csv" {
        write_csv(&rows, out)?;
        let path = catalogue_path(out);
        std::fs::write(&path, serde_json::to_string_pretty(&catalogue)?)
            .with_context(|| format!("writing {}", path.display()))?;
    } else {
        write_parquet(&rows, out, &catalogue)?;
    }
    Ok(rows.len())
}
