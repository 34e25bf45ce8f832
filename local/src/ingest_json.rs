//! `medrec ingest-json DIR_OR_FILE`: per-person vendor files, one short transaction each, by
//! N workers on their own connections (the pipeline's), then the changed persons' features, then
//! a report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use medrec_pipeline::{ObjectKind, ObjectRef, Processed};
use medrec_store::vendor::{RowCounts, VendorReport, VendorStatus};
use medrec_store::DbConfig;

/// The `.json` files of a directory (sorted), or the one file named.
pub fn vendor_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    crate::ingest::files_with_extension(path, "json")
}

pub async fn run(
    config: &DbConfig,
    path: &Path,
    workers: usize,
    features: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let files = vendor_files(path)?;
    let count = files.len();
    let workers = workers.clamp(1, 64);
    // Vendor files carry their own version (the person's record version inside the file), so a
    // file is always read; an unchanged one is ignored by that gate.
    let objects = files
        .into_iter()
        .map(|path| {
            (
                ObjectKind::Vendor,
                ObjectRef {
                    name: path.display().to_string(),
                    version: None,
                },
            )
        })
        .collect::<Vec<_>>();
    let started = Instant::now();
    let progress = crate::ingest::progress_of(&objects);
    let pipeline = crate::ingest::pipeline(config, workers, Some(progress.clone())).await?;
    let shown = progress.show(quiet);
    let outcomes = pipeline.objects_arrived(objects, workers).await;
    drop(shown);
    let elapsed = started.elapsed();

    let mut reports = Vec::new();
    let mut errors = 0;
    for (object, outcome) in outcomes {
        match outcome {
            Ok(Processed::Vendor(report)) => {
                // Each rejected file by its path: the reason and where (a field path or a JSON
                // position), never a value of the record.
                if let VendorStatus::Rejected { reason, detail } = &report.status {
                    println!("rejected {}: {reason} ({detail})", object.name);
                }
                reports.push(report)
            }
            Ok(other) => {
                eprintln!("error: {}: {}", object.name, other.summary());
                errors += 1;
            }
            Err(error) => {
                eprintln!("error: {}", crate::ingest::describe_failure(&error));
                errors += 1;
            }
        }
    }
    let summary = Summary::of(&reports);
    summary.print(count, workers, elapsed);

    if features {
        let t = Instant::now();
        let refreshed = crate::ingest::recompute_announced(&pipeline).await?;
        println!(
            "{} in {:.2} s",
            crate::ingest::recomputed_line(refreshed),
            t.elapsed().as_secs_f64()
        );
    }
    if errors > 0 {
        bail!("{errors} file(s) could not be processed");
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
            s.rows.add(r.rows);
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
