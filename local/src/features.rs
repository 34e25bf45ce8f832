//! `medrec features ...`: refresh and export per-person features.

use std::path::Path;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use medrec_core::features::FEATURES;
use medrec_store::features::{read, PersonFeatures};
use serde_json::Value as Json;

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

pub async fn export(
    client: &tokio_postgres::Client,
    format: &str,
    out: &Path,
    as_of: Option<NaiveDate>,
) -> anyhow::Result<usize> {
    let rows = read(client, None, as_of).await?;
    match format {
        "csv" => write_csv(&rows, out)?,
        other => bail!("unknown export format {other:?} (expected csv)"),
    }
    Ok(rows.len())
}
