//! "An object arrived": one idempotency decision, the vendor size and reject policy, the store's
//! load, and the announcement of the persons whose features may have changed.

use std::io::Read;
use std::time::Instant;

use deadpool_postgres::Pool;
use futures::StreamExt;
use medrec_core::vendor::{check_size, VendorError, VendorReason, MAX_FILE_BYTES};
use medrec_core::Table;
use medrec_store::load::{already_loaded_report, find_loaded};
use medrec_store::receipts::{Outcome, Receipt};
use medrec_store::vendor::{ingest_vendor_file, reject, VendorReport, VendorSource, VendorStatus};
use medrec_store::{connection_lost, ErrorKind, IngestError, RunReport, Source};

use crate::{ObjectRef, ObjectSource, Opened, PersonsSink, PipelineError};

/// What an object holds, which decides how it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A raw CSV of one table.
    Csv(Table),
    /// One person's vendor JSON file (docs/vendor-json.md).
    Vendor,
}

impl ObjectKind {
    /// The bucket's layout: `raw/<table>/<file>` holds raw CSVs, `vendor/<file>` vendor files.
    /// The table name is matched exactly, as the bucket notifications are configured.
    pub fn of_key(key: &str) -> Result<ObjectKind, String> {
        if key.strip_prefix("vendor/").is_some_and(|f| !f.is_empty()) {
            return Ok(ObjectKind::Vendor);
        }
        let mut parts = key.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("raw"), Some(table), Some(file)) if !file.is_empty() => table
                .parse::<Table>()
                .map(ObjectKind::Csv)
                .map_err(|_| "the key's raw/<table>/ prefix names no known table".to_owned()),
            _ => Err("the key is under neither raw/<table>/ nor vendor/".to_owned()),
        }
    }
}

impl ObjectKind {
    /// A raw file outside the bucket: its table is the first word of its name
    /// (`rx_batch2.csv`, `Labs-2024.CSV`).
    pub fn of_raw_file_name(file_name: &str) -> Result<ObjectKind, String> {
        Table::from_file_name(file_name)
            .map(ObjectKind::Csv)
            .ok_or_else(|| {
                format!(
                    "no such table (a raw file's name must start with one of: {})",
                    Table::ALL.map(Table::name).join(", ")
                )
            })
    }
}

/// Which objects a caller takes (one cloud function per table, one for vendor files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    /// Raw CSVs of this table, or of any table.
    Raw(Option<Table>),
    Vendor,
    Any,
}

impl Accepts {
    fn check(self, kind: ObjectKind) -> Result<(), String> {
        match (self, kind) {
            (Accepts::Any, _)
            | (Accepts::Raw(None), ObjectKind::Csv(_))
            | (Accepts::Vendor, ObjectKind::Vendor) => Ok(()),
            (Accepts::Raw(Some(expected)), ObjectKind::Csv(table)) if expected == table => Ok(()),
            (Accepts::Raw(Some(expected)), ObjectKind::Csv(table)) => Err(format!(
                "this function loads {expected} but the object is under raw/{table}/"
            )),
            (Accepts::Raw(_), ObjectKind::Vendor) => {
                Err("this function loads raw CSVs but the object is a vendor file".to_owned())
            }
            (Accepts::Vendor, ObjectKind::Csv(_)) => {
                Err("this function loads vendor files but the object is a raw CSV".to_owned())
            }
        }
    }
}

/// What became of one object.
#[derive(Debug)]
pub enum Processed {
    /// A raw CSV: loaded, or already loaded by an earlier run (whose persons were announced
    /// again).
    Csv(RunReport),
    /// A vendor file: loaded, ignored as not newer (its person announced again), or rejected with
    /// a recorded reason.
    Vendor(VendorReport),
    /// Overwritten or deleted since it was announced: the newer object has its own announcement.
    Superseded,
    /// Permanently bad and on record (a failed run with its reason): settled, not retried.
    Refused(PipelineError),
}

/// The use cases over one database, one object source and one persons sink.
pub struct Pipeline<S, P> {
    pool: Pool,
    source: S,
    sink: P,
    max_csv_bytes: Option<u64>,
}

/// The largest raw CSV the clean function takes (`MEDREC_MAX_CSV_BYTES` overrides it): a larger
/// file is rejected unread, with its reason, rather than timed out at the function's 300 s and
/// retried into the DLQ. 512 MiB is about 5M rows of the generator's files; the bench loads one
/// table's rows at 55k rows/s into one backend, so such a file takes about 90 s, a third of the
/// timeout. Split larger files: any number of files may load into a table.
pub const FUNCTION_MAX_CSV_BYTES: u64 = 512 * 1024 * 1024;

impl<S: ObjectSource, P: PersonsSink> Pipeline<S, P> {
    pub fn new(pool: Pool, source: S, sink: P) -> Pipeline<S, P> {
        Pipeline {
            pool,
            source,
            sink,
            max_csv_bytes: None,
        }
    }

    /// Rejects raw CSVs larger than `bytes` unread (a function's time limit); no limit unless set.
    pub fn with_max_csv_bytes(self, bytes: u64) -> Pipeline<S, P> {
        Pipeline {
            max_csv_bytes: Some(bytes),
            ..self
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn sink(&self) -> &P {
        &self.sink
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A bucket notification named `key` at `object`: routes it by the bucket's layout, refuses
    /// what `accepts` does not take, and settles permanent failures that are on record. The error
    /// that comes back is one to retry.
    pub async fn notified(
        &self,
        key: &str,
        object: &ObjectRef,
        accepts: Accepts,
    ) -> Result<Processed, PipelineError> {
        let kind = match ObjectKind::of_key(key).and_then(|kind| accepts.check(kind).map(|()| kind))
        {
            Ok(kind) => kind,
            Err(message) => return self.refuse(object, message).await.map(Processed::Refused),
        };
        match self.object_arrived(kind, object).await {
            Err(error) if !error.should_retry() => Ok(Processed::Refused(error)),
            other => other,
        }
    }

    /// Processes one object of a known kind, and records what became of it.
    pub async fn object_arrived(
        &self,
        kind: ObjectKind,
        object: &ObjectRef,
    ) -> Result<Processed, PipelineError> {
        let processed = match kind {
            ObjectKind::Csv(table) => self.csv(table, object).await,
            ObjectKind::Vendor => self.vendor(object).await,
        };
        match &processed {
            Ok(outcome) => tracing::info!(outcome = outcome.summary(), "object processed"),
            Err(error) => tracing::info!(kind = ?error.kind(), "object failed"),
        }
        match self.record(&receipt_of(kind, object, &processed)).await {
            Ok(()) => processed,
            // Not on record yet: worth retrying, and the retry records it (a failure of the
            // object itself is the one to report).
            Err(unrecorded) => Err(processed.err().unwrap_or(unrecorded)),
        }
    }

    /// Records an object that cannot be processed at all (under no known prefix or table, or
    /// sent to a caller that does not take it) and returns the settled failure; if even that
    /// cannot be recorded, the error is one to retry.
    pub async fn refuse(
        &self,
        object: &ObjectRef,
        message: impl Into<String>,
    ) -> Result<PipelineError, PipelineError> {
        let message = message.into();
        tracing::info!(reason = %message, "object refused");
        self.record(&Receipt {
            source: object.name.clone(),
            version: object.version.clone(),
            kind: None,
            table: None,
            outcome: Outcome::Refused,
            reason: Some(message.clone()),
            run_id: None,
            file_id: None,
            persons: 0,
        })
        .await?;
        let mut error = PipelineError::permanent(&object.name, message);
        error.mark_recorded();
        Ok(error)
    }

    async fn record(&self, receipt: &Receipt) -> Result<(), PipelineError> {
        let client = self.client(&receipt.source).await?;
        medrec_store::receipts::record(&client, receipt)
            .await
            .map(|_| ())
            .map_err(|e| PipelineError::transient(&receipt.source, "recording the outcome", e))
    }

    /// Processes `objects`, up to `concurrency` at a time (each holding one pooled connection);
    /// the outcomes come back in the order of `objects`, whatever order they finished in.
    pub async fn objects_arrived(
        &self,
        objects: Vec<(ObjectKind, ObjectRef)>,
        concurrency: usize,
    ) -> Vec<(ObjectRef, Result<Processed, PipelineError>)> {
        futures::stream::iter(objects)
            .map(|(kind, object)| async move {
                let outcome = self.object_arrived(kind, &object).await;
                (object, outcome)
            })
            .buffered(concurrency.max(1))
            .collect()
            .await
    }

    async fn client(&self, name: &str) -> Result<deadpool_postgres::Object, PipelineError> {
        crate::connection(&self.pool, name).await
    }

    async fn announce(&self, object: &ObjectRef, persons: &[i64]) -> Result<(), PipelineError> {
        if persons.is_empty() {
            return Ok(());
        }
        self.sink.announce(persons).await.map_err(|error| {
            PipelineError::transient(&object.name, "announcing the changed persons", error)
        })
    }

    async fn csv(&self, table: Table, object: &ObjectRef) -> Result<Processed, PipelineError> {
        let started = Instant::now();
        let mut client = self.client(&object.name).await?;
        let source = Source {
            table,
            name: object.name.clone(),
            version: object.version.clone(),
            sha256: None,
        };
        // The one idempotency decision: a loaded version is not read again, but its persons are
        // announced again (the first delivery may have committed and then failed to announce).
        if let Some(version) = &object.version {
            let loaded = find_loaded(&client, table, &object.name, version)
                .await
                .map_err(|e| PipelineError::transient(&object.name, "checking earlier runs", e))?;
            if let Some(run) = loaded {
                self.announce(object, &run.persons).await?;
                let report = already_loaded_report(&source, run.run_id, run.persons, started);
                return Ok(Processed::Csv(report));
            }
        }
        let Some(opened) = self.source.open(object).await? else {
            return Ok(Processed::Superseded);
        };
        if let (Some(size), Some(limit)) = (opened.size, self.max_csv_bytes) {
            if size > limit {
                let mut error = PipelineError::permanent(
                    &object.name,
                    format!("the file is {size} bytes, over the limit of {limit}: split it into smaller files"),
                );
                // Its receipt (rejected, with this reason) is the record.
                error.mark_recorded();
                return Err(error);
            }
        }
        // The same content under another name is found by its digest while loading.
        let report = medrec_store::ingest(&mut client, source, opened.body)
            .await
            .map_err(|error| {
                let kind = error.kind();
                let message = match (kind, &error) {
                    (ErrorKind::Permanent, _) => format!("unusable file: {}", error.summary()),
                    (_, IngestError::Database { error, .. }) if connection_lost(error) => {
                        crate::error::interrupted_load()
                    }
                    (ErrorKind::Transient, _) => error.summary(),
                };
                // A failed run with its reason is recorded by the store for every failure.
                PipelineError::with_kind(
                    kind,
                    kind == ErrorKind::Permanent,
                    &object.name,
                    message,
                    error,
                )
            })?;
        self.announce(object, &report.persons).await?;
        Ok(Processed::Csv(report))
    }

    async fn vendor(&self, object: &ObjectRef) -> Result<Processed, PipelineError> {
        let started = Instant::now();
        let mut client = self.client(&object.name).await?;
        let source = VendorSource {
            name: object.name.clone(),
            version: object.version.clone(),
        };
        let Some(Opened { size, body }) = self.source.open(object).await? else {
            return Ok(Processed::Superseded);
        };
        let store_error = |e| PipelineError::transient(&object.name, "recording the file", e);
        // A huge object is refused unread when its size is known up front.
        if let Some(Err(error)) = size.map(check_size) {
            let report = reject(&client, &source, None, &error, started)
                .await
                .map_err(store_error)?;
            return Ok(Processed::Vendor(report));
        }
        // Never read past the limit, whatever was announced.
        let bytes = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::with_capacity(size.unwrap_or(0).min(MAX_FILE_BYTES) as usize);
            body.take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut bytes)
                .map(|_| bytes)
        })
        .await
        .map_err(|e| PipelineError::transient(&object.name, "the reading thread stopped", e))?
        .map_err(|e| {
            PipelineError::transient(&object.name, format!("read error: {}", e.kind()), e)
        })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            let error = VendorError::new(
                VendorReason::TooLarge,
                "the content is longer than the limit",
            );
            let report = reject(&client, &source, None, &error, started)
                .await
                .map_err(store_error)?;
            return Ok(Processed::Vendor(report));
        }
        let report = ingest_vendor_file(&mut client, &source, bytes)
            .await
            .map_err(|e| {
                let message = if connection_lost(&e) {
                    crate::error::interrupted_load()
                } else {
                    "loading the file".to_owned()
                };
                PipelineError::transient(&object.name, message, e)
            })?;
        match &report.status {
            VendorStatus::Loaded => self.announce(object, &report.persons).await?,
            // The first delivery may have committed and then failed before announcing.
            VendorStatus::Ignored { .. } => {
                if let Some(person) = report.person_id {
                    self.announce(object, &[person]).await?;
                }
            }
            VendorStatus::Rejected { .. } => {}
        }
        Ok(Processed::Vendor(report))
    }
}

impl Processed {
    /// One word for logs.
    pub fn summary(&self) -> &'static str {
        match self {
            Processed::Csv(report) => match report.status {
                medrec_store::RunStatus::Loaded => "loaded",
                medrec_store::RunStatus::AlreadyLoaded { .. } => "already_loaded",
            },
            Processed::Vendor(report) => match report.status {
                VendorStatus::Loaded => "loaded",
                VendorStatus::Ignored { .. } => "ignored",
                VendorStatus::Rejected { .. } => "rejected",
            },
            Processed::Superseded => "superseded",
            Processed::Refused(_) => "refused",
        }
    }

    /// The persons announced for this object.
    pub fn persons(&self) -> &[i64] {
        match self {
            Processed::Csv(report) => &report.persons,
            Processed::Vendor(report) => match report.status {
                VendorStatus::Rejected { .. } => &[],
                _ => report.person_id.as_slice(),
            },
            Processed::Superseded | Processed::Refused(_) => &[],
        }
    }
}

/// The ledger row of one attempt at `object`.
fn receipt_of(
    kind: ObjectKind,
    object: &ObjectRef,
    processed: &Result<Processed, PipelineError>,
) -> Receipt {
    let (kind_name, table) = match kind {
        ObjectKind::Csv(table) => ("csv", Some(table)),
        ObjectKind::Vendor => ("vendor", None),
    };
    let mut receipt = Receipt {
        source: object.name.clone(),
        version: object.version.clone(),
        kind: Some(kind_name),
        table,
        outcome: Outcome::Failed,
        reason: None,
        run_id: None,
        file_id: None,
        persons: 0,
    };
    match processed {
        Ok(processed) => {
            receipt.persons = processed.persons().len();
            match processed {
                Processed::Csv(report) => {
                    receipt.run_id = Some(report.run_id);
                    receipt.outcome = match report.status {
                        medrec_store::RunStatus::Loaded => Outcome::Loaded,
                        medrec_store::RunStatus::AlreadyLoaded { .. } => Outcome::AlreadyLoaded,
                    };
                    if report.status == medrec_store::RunStatus::Loaded && report.raw_rows == 0 {
                        receipt.reason = Some("no data rows (a header only)".to_owned());
                    }
                }
                Processed::Vendor(report) => {
                    receipt.file_id = Some(report.file_id);
                    (receipt.outcome, receipt.reason) = match &report.status {
                        VendorStatus::Loaded => (Outcome::Loaded, None),
                        VendorStatus::Ignored { reason, .. } => {
                            (Outcome::Ignored, Some((*reason).to_owned()))
                        }
                        // The reason's code only: a detail may quote the file.
                        VendorStatus::Rejected { reason, .. } => {
                            (Outcome::Rejected, Some(reason.as_str().to_owned()))
                        }
                    };
                }
                Processed::Superseded => receipt.outcome = Outcome::Superseded,
                // `object_arrived` returns failures as `Err` (below); only `notified` settles
                // them as `Refused`, after their receipt is written.
                Processed::Refused(error) => {
                    receipt.outcome = Outcome::Refused;
                    receipt.reason = Some(error.message().to_owned());
                }
            }
        }
        Err(error) => {
            receipt.outcome = match (error.kind(), error.should_retry()) {
                (ErrorKind::Permanent, false) => Outcome::Rejected,
                (ErrorKind::Permanent, true) => Outcome::Refused,
                (ErrorKind::Transient, _) => Outcome::Failed,
            };
            receipt.reason = Some(error.message().to_owned());
        }
    }
    receipt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_layout_names_the_kind() {
        assert_eq!(
            ObjectKind::of_key("raw/labs/2026/x.csv"),
            Ok(ObjectKind::Csv(Table::Labs))
        );
        assert_eq!(
            ObjectKind::of_key("vendor/a/b.json"),
            Ok(ObjectKind::Vendor)
        );
        for bad in [
            "raw/vitals/x.csv",
            "raw/labs/",
            "raw/LABS/x.csv",
            "labs/x.csv",
            "raw",
            "vendor/",
            "",
        ] {
            assert!(ObjectKind::of_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_raw_file_name_names_its_table() {
        assert_eq!(
            ObjectKind::of_raw_file_name("Labs-2024.CSV"),
            Ok(ObjectKind::Csv(Table::Labs))
        );
        let refused = ObjectKind::of_raw_file_name("notes.csv").unwrap_err();
        assert!(
            refused.contains("lifestyle, rx, conditions, labs, tests"),
            "{refused}"
        );
    }

    #[test]
    fn each_function_takes_its_own_objects() {
        let rx = ObjectKind::Csv(Table::Rx);
        assert!(Accepts::Raw(Some(Table::Rx)).check(rx).is_ok());
        assert!(Accepts::Raw(None).check(rx).is_ok());
        assert!(Accepts::Raw(Some(Table::Labs)).check(rx).is_err());
        assert!(Accepts::Vendor.check(rx).is_err());
        assert!(Accepts::Raw(None).check(ObjectKind::Vendor).is_err());
        assert!(Accepts::Any.check(ObjectKind::Vendor).is_ok());
    }
}
