//! `medrec ingest-json DIR_OR_FILE`: per-person vendor files, one short transaction each, by
//! N workers on their own connections; then the loaded persons' features, then a report.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use medrec_core::vendor::{check_size, VendorError, VendorReason, MAX_FILE_BYTES};
use medrec_store::vendor::{
    ingest_vendor_file, reject, RowCounts, VendorReport, VendorSource, VendorStatus,
};
use medrec_store::DbConfig;

/// The `.json` files of a directory (sorted), or the one file named.
pub fn vendor_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    crate::ingest::files_with_extension(path, "json")
}

/// Loads one file; the size is checked before a byte of it is read.
pub async fn ingest_one(
    client: &mut tokio_postgres::Client,
    path: &Path,
) -> anyhow::Result<VendorReport> {
    let started = Instant::now();
    let source = VendorSource {
        name: path.display().to_string(),
        version: None,
    };
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if let Err(error) = check_size(size) {
        return Ok(reject(client, &source, None, &error, started).await?);
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // The file may grow between the size check and the read: never read past the limit.
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        let error = VendorError::new(VendorReason::TooLarge, "grew past the limit while read");
        return Ok(reject(client, &source, None, &error, started).await?);
    }
    Ok(ingest_vendor_file(client, &source, bytes).await?)
}

pub async fn run(
    config: &DbConfig,
    path: &Path,
    workers: usize,
    features: bool,
) -> anyhow::Result<()> {
    let files = Arc::new(vendor_files(path)?);
    let workers = workers.clamp(1, 64);
    {
        let mut client = medrec_store::connect(config).await?;
        let applied = medrec_store::migrate(&mut client).await?;
        if !applied.is_empty() {
            eprintln!("applied migrations: {}", applied.join(", "));
        }
    }
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let mut client = medrec_store::connect(config).await?;
        let files = files.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut reports = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                reports.push((path.clone(), ingest_one(&mut client, path).await));
            }
            reports
        }));
    }
    let mut results = Vec::with_capacity(files.len());
    for task in tasks {
        results.extend(task.await.context("an ingestion worker stopped")?);
    }
    let elapsed = started.elapsed();

    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for (path, result) in results {
        match result {
            Ok(report) => reports.push(report),
            Err(error) => {
                eprintln!("error: {}: {error:#}", path.display());
                errors.push(path);
            }
        }
    }
    let summary = Summary::of(&reports);
    summary.print(files.len(), workers, elapsed);

    if features {
        // Locally this does what the features queue and its function do in the cloud.
        let mut persons: Vec<i64> = reports
            .iter()
            .flat_map(|r| r.persons.iter().copied())
            .collect();
        persons.sort_unstable();
        persons.dedup();
        let client = medrec_store::connect(config).await?;
        let t = Instant::now();
        let refreshed = medrec_store::features::refresh(&client, Some(&persons)).await?;
        println!(
            "features recomputed for {refreshed} person(s) in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
    if !errors.is_empty() {
        bail!("{} file(s) could not be processed", errors.len());
    }
    if summary.rejected > 0 {
        bail!("{} file(s) rejected", summary.rejected);
    }
    Ok(())
}

#[derive(Default)]
struct Summary {
    loaded: usize,
    ignored: BTreeMap<&'static str, usize>,
    rejected: usize,
    rejected_by_reason: BTreeMap<&'static str, usize>,
    rows: RowCounts,
    quarantined_by_reason: BTreeMap<&'static str, i64>,
    slowest: Duration,
}

impl Summary {
    fn of(reports: &[VendorReport]) -> Summary {
        let mut s = Summary::default();
        for r in reports {
            match &r.status {
                VendorStatus::Loaded => s.loaded += 1,
                VendorStatus::Ignored { reason, .. } => *s.ignored.entry(reason).or_default() += 1,
                VendorStatus::Rejected { reason, .. } => {
                    s.rejected += 1;
                    *s.rejected_by_reason.entry(reason.as_str()).or_default() += 1;
                }
            }
            s.rows.raw += r.rows.raw;
            s.rows.loaded += r.rows.loaded;
            s.rows.duplicate += r.rows.duplicate;
            s.rows.quarantined += r.rows.quarantined;
            for (reason, n) in &r.quarantined_by_reason {
                *s.quarantined_by_reason.entry(reason).or_default() += n;
            }
            s.slowest = s.slowest.max(r.elapsed);
        }
        s
    }

    fn print(&self, files: usize, workers: usize, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-9);
        println!(
            "files {files}: loaded {}, ignored {}, rejected {}",
            self.loaded,
            self.ignored.values().sum::<usize>(),
            self.rejected
        );
        for (reason, n) in &self.ignored {
            println!("  ignored {reason}: {n}");
        }
        for (reason, n) in &self.rejected_by_reason {
            println!("  rejected {reason}: {n}");
        }
        println!(
            "rows raw {}, loaded {}, duplicate {}, quarantined {}",
            self.rows.raw, self.rows.loaded, self.rows.duplicate, self.rows.quarantined
        );
        for (reason, n) in &self.quarantined_by_reason {
            println!("  quarantined {reason}: {n}");
        }
        println!(
            "{workers} worker(s), {secs:.2} s: {:.0} files/s, {:.0} rows/s, slowest file {} ms",
            files as f64 / secs,
            self.rows.raw as f64 / secs,
            self.slowest.as_millis()
        );
    }
}
