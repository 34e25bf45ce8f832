//! `medrec report`: the quality report of a database as one self-contained page
//! (`DIR/index.html`), the same page `GET /report` serves.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

pub async fn write(
    client: &mut tokio_postgres::Client,
    out: &Path,
    show_values: bool,
) -> anyhow::Result<PathBuf> {
    let started = Instant::now();
    let report = medrec_store::report::gather(client, show_values)
        .await
        .context("reading the report's data")?;
    let page = medrec_api::report_page::render(&report);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("index.html");
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "report of {} load(s) and {} person(s) written in {:.1} s",
        report.totals.runs,
        report.totals.persons,
        started.elapsed().as_secs_f64()
    );
    Ok(path)
}
