//! `medrec ingest DIR`: every raw CSV in a directory through the pipeline, N files at a time,
//! then the changed persons' features, then a report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{bail, Context};
use medrec_pipeline::memory::RecordingSink;
use medrec_pipeline::{
    ObjectKind, ObjectRef, ObjectSource, Opened, Owed, Pipeline, PipelineError, Processed,
    Recomputed,
};
use medrec_store::{DbConfig, RunReport, RunStatus};

use crate::progress::Progress;

/// Local files as the pipeline's object source, each read counted for the progress line.
pub struct FileSource {
    pub progress: Option<Arc<Progress>>,
}

impl ObjectSource for FileSource {
    async fn open(&self, object: &ObjectRef) -> Result<Option<Opened>, PipelineError> {
        let opening = |e| PipelineError::transient(&object.name, "opening the file", e);
        let file = std::fs::File::open(&object.name).map_err(opening)?;
        let size = file.metadata().map_err(opening)?.len();
        let body: Box<dyn std::io::Read + Send> = Box::new(file);
        Ok(Some(Opened {
            size: Some(size),
            body: match &self.progress {
                Some(progress) => progress.counted(body),
                None => body,
            },
        }))
    }
}

/// The progress of loading `objects` (their total size from the file system).
pub fn progress_of(objects: &[(ObjectKind, ObjectRef)]) -> Arc<Progress> {
    let bytes = objects
        .iter()
        .filter_map(|(_, o)| std::fs::metadata(&o.name).ok())
        .map(|m| m.len())
        .sum();
    Progress::new(objects.len() as u64, bytes)
}

/// A local file as an object: its version is its size and modification time, so an unchanged
/// file is not read again (the check rsync and make use); the same content under another name
/// or time is still found by its digest while loading.
pub fn file_object(path: &Path) -> anyhow::Result<ObjectRef> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(ObjectRef {
        name: path.display().to_string(),
        version: Some(format!("size={} mtime_ns={modified}", metadata.len())),
    })
}

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

/// The pipeline as the command runs it: local files, and the announced persons gathered to be
/// recomputed once after the batch (what the features queue and its function do in the cloud,
/// in one set-based statement). Applies pending migrations first.
pub type LocalPipeline = Pipeline<FileSource, RecordingSink>;

pub async fn pipeline(
    config: &DbConfig,
    connections: usize,
    progress: Option<Arc<Progress>>,
) -> anyhow::Result<LocalPipeline> {
    let mut client = medrec_store::connect(config).await?;
    let applied = medrec_store::migrate(&mut client).await?;
    if !applied.is_empty() {
        eprintln!("applied migrations: {}", applied.join(", "));
    }
    let pool = medrec_store::pool(config, connections.max(1))?;
    Ok(Pipeline::new(
        pool,
        FileSource { progress },
        RecordingSink::new(),
    ))
}

/// Recomputes the features of every person the pipeline announced, and of every person earlier
/// runs left owed (a run killed after its loads committed); returns what it wrote.
pub async fn recompute_announced(pipeline: &LocalPipeline) -> anyhow::Result<Recomputed> {
    let client = pipeline
        .pool()
        .get()
        .await
        .context("no database connection")?;
    // Further connections, for when everyone is refreshed: one part each, side by side.
    let parts = medrec_pipeline::everyone_parts().min(pipeline.pool().status().max_size);
    let mut helpers = Vec::with_capacity(parts.saturating_sub(1));
    for _ in 1..parts {
        helpers.push(
            pipeline
                .pool()
                .get()
                .await
                .context("no database connection")?,
        );
    }
    let helpers: Vec<&tokio_postgres::Client> = helpers.iter().map(|c| &***c).collect();
    medrec_pipeline::persons_changed(&client, &helpers, &pipeline.sink().persons(), Owed::All)
        .await
        .map_err(|error| {
            let lost = medrec_store::connection_lost(&error);
            let error = anyhow::Error::from(error);
            if lost {
                error.context(format!(
                    "recomputing features: {}. The loads reported above are committed and their \
                     persons recorded as owed: once PostgreSQL is back, re-run the same command \
                     (or `medrec features refresh`)",
                    medrec_store::error::CONNECTION_LOST
                ))
            } else {
                error.context("recomputing features")
            }
        })
}

/// "features recomputed for N person(s)", with how many of them earlier runs left owed.
pub fn recomputed_line(done: Recomputed) -> String {
    let mut line = format!("features recomputed for {} person(s)", done.total());
    if done.healed > 0 {
        line.push_str(&format!(
            " (of them {} owed by earlier runs: stopped before their recompute, or --no-features)",
            done.healed
        ));
    }
    line
}

/// Loads every raw file of `dir`, `jobs` files at a time (each on its own connection, as the
/// cloud's per-table functions do); then recomputes the changed persons' features unless
/// `features` is false (a bulk load followed by one `medrec features refresh`). A file whose name
/// names no table is recorded as refused and reported; the others load.
pub async fn run(
    config: &DbConfig,
    dir: &Path,
    features: bool,
    jobs: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    let mut objects = Vec::new();
    let mut unknown = Vec::new();
    for path in files_with_extension(dir, "csv")? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match ObjectKind::of_raw_file_name(name) {
            Ok(kind) => objects.push((kind, file_object(&path)?)),
            Err(reason) => unknown.push((file_object(&path)?, reason)),
        }
    }
    // The report lists the tables in their order (lifestyle, rx, conditions, labs, tests).
    objects.sort_by_key(|(kind, _)| match kind {
        ObjectKind::Csv(table) => Some(*table),
        ObjectKind::Vendor => None,
    });
    let jobs = jobs.clamp(1, objects.len().max(1));
    let progress = progress_of(&objects);
    let pipeline = pipeline(config, jobs, Some(Arc::clone(&progress))).await?;
    let mut failures = Vec::new();
    for (object, reason) in unknown {
        let refused = pipeline.refuse(&object, reason).await?;
        eprintln!("error: {refused}");
        failures.push(object.name);
    }
    let shown = progress.show(quiet);
    let outcomes = pipeline.objects_arrived(objects, jobs).await;
    drop(shown);
    let mut reports = Vec::new();
    for (object, outcome) in outcomes {
        match outcome {
            Ok(Processed::Csv(report)) => reports.push(report),
            Ok(other) => {
                eprintln!("error: {}: {}", object.name, other.summary());
                failures.push(object.name);
            }
            Err(error) => {
                eprintln!("error: {}", describe_failure(&error));
                failures.push(object.name);
            }
        }
    }
    print_report(&reports);
    if features {
        let refreshed = recompute_announced(&pipeline).await?;
        let client = pipeline
            .pool()
            .get()
            .await
            .context("no database connection")?;
        println!();
        println!("{}:", recomputed_line(refreshed));
        for (name, value) in medrec_store::features::summary(&client).await? {
            println!("  {name:<22} {value}");
        }
    }
    if !failures.is_empty() {
        bail!("{} file(s) failed: {}", failures.len(), failures.join(", "));
    }
    Ok(())
}

/// A file's failure for the terminal: its message, and its causes unless the message already
/// says what happened and what to do (a lost connection).
pub fn describe_failure(error: &PipelineError) -> String {
    if error.connection_lost() {
        error.to_string()
    } else {
        format!("{error:#}")
    }
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
