//! `medrec ingest DIR`: every raw CSV in a directory, one transaction per file, then a report.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use medrec_core::reader::sha256_hex;
use medrec_core::Table;
use medrec_store::{DbConfig, RunReport, RunStatus, Source};

/// The regular files of a directory whose extension is `ext` (any case), sorted by name; an
/// error naming the directory when there are none.
pub fn files_with_extension(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))?
    {
        let path = entry?.path();
        let matches = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(ext));
        if matches && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        bail!("{}: no .{ext} files", dir.display());
    }
    files.sort();
    Ok(files)
}

/// The CSV files of a directory with their tables, in table then name order. Fails, naming the
/// file, if a CSV's name does not start with a table name.
pub fn raw_files(dir: &Path) -> anyhow::Result<Vec<(Table, PathBuf)>> {
    let mut files = Vec::new();
    for path in files_with_extension(dir, "csv")? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(table) = Table::from_file_name(name) else {
            bail!(
                "{}: no such table (a raw file's name must start with one of: {})",
                path.display(),
                Table::ALL.map(|t| t.name()).join(", ")
            );
        };
        files.push((table, path));
    }
    files.sort();
    Ok(files)
}

/// Loads one file (hashing it first, so a file already loaded is skipped without parsing).
pub async fn ingest_file(
    client: &mut tokio_postgres::Client,
    table: Table,
    path: &Path,
) -> anyhow::Result<RunReport> {
    let sha256 =
        sha256_hex(File::open(path).with_context(|| format!("opening {}", path.display()))?)?;
    let source = Source {
        table,
        name: path.display().to_string(),
        version: None,
        sha256: Some(sha256),
    };
    let file = File::open(path)?;
    Ok(medrec_store::ingest(client, source, file).await?)
}

/// Loads every raw file of `dir`, `jobs` files at a time (each on its own connection, as the
/// cloud's per-table functions do); then recomputes the loaded persons' features unless
/// `features` is false (a bulk load followed by one `medrec features refresh`).
pub async fn run(config: &DbConfig, dir: &Path, features: bool, jobs: usize) -> anyhow::Result<()> {
    let files = raw_files(dir)?;
    let mut client = medrec_store::connect(config).await?;
    let applied = medrec_store::migrate(&mut client).await?;
    if !applied.is_empty() {
        eprintln!("applied migrations: {}", applied.join(", "));
    }
    let queue = std::sync::Arc::new(std::sync::Mutex::new(files.clone().into_iter().enumerate()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..jobs.clamp(1, files.len()) {
        let queue = std::sync::Arc::clone(&queue);
        let config = config.clone();
        workers.spawn(async move {
            let mut done = Vec::new();
            let mut client = medrec_store::connect(&config).await?;
            loop {
                let next = queue.lock().expect("the file queue").next();
                let Some((index, (table, path))) = next else {
                    break;
                };
                let outcome = ingest_file(&mut client, table, &path).await;
                done.push((index, path, outcome));
            }
            anyhow::Ok(done)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(worker) = workers.join_next().await {
        outcomes.extend(worker??);
    }
    // The report lists files in their sorted order, however the workers finished.
    outcomes.sort_by_key(|(index, _, _)| *index);
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for (_, path, outcome) in outcomes {
        match outcome {
            Ok(report) => reports.push(report),
            Err(error) => {
                eprintln!("error: {error:#}");
                failures.push(path.display().to_string());
            }
        }
    }
    print_report(&reports);
    if !features {
        if !failures.is_empty() {
            bail!("{} file(s) failed: {}", failures.len(), failures.join(", "));
        }
        return Ok(());
    }
    // Locally this does what the queue and the feature Lambda do in the cloud.
    let mut persons: Vec<i64> = reports
        .iter()
        .flat_map(|r| r.persons.iter().copied())
        .collect();
    persons.sort_unstable();
    persons.dedup();
    let refreshed = medrec_store::features::refresh(&client, Some(&persons)).await?;
    println!();
    println!("features recomputed for {refreshed} person(s):");
    for (name, value) in medrec_store::features::summary(&client).await? {
        println!("  {name:<22} {value}");
    }
    if !failures.is_empty() {
        bail!("{} file(s) failed: {}", failures.len(), failures.join(", "));
    }
    Ok(())
}

fn print_report(reports: &[RunReport]) {
    println!(
        "{:<11} {:>8} {:>8} {:>10} {:>11} {:>10}  file",
        "table", "raw", "loaded", "duplicate", "quarantined", "rows/s"
    );
    for r in reports {
        let file = Path::new(&r.source)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let RunStatus::AlreadyLoaded { run_id } = r.status {
            println!(
                "{:<11} already loaded by run {run_id}: skipped  {file}",
                r.table.name()
            );
            continue;
        }
        let rate = r.raw_rows as f64 / r.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:<11} {:>8} {:>8} {:>10} {:>11} {:>10.0}  {file}",
            r.table.name(),
            r.raw_rows,
            r.loaded_rows,
            r.duplicate_rows,
            r.quarantined_rows,
            rate
        );
        for (reason, count) in &r.quarantined_by_reason {
            println!("{:<11}   quarantined {reason}: {count}", "");
        }
    }
}
