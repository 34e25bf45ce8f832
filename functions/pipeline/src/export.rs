//! "An export was asked for": a spine uploaded under `spines/`, or a full-export request under
//! `full-exports/`, becomes `exports/<name>.parquet` and its manifest `exports/<name>.json` in
//! the same bucket (docs/features.md, "In the cloud"). The training set and the full export are
//! the ones `medrec features training-set|export` write; only where the files come from and go
//! to differs.
//!
//! The policy, once for every caller:
//! - a request that can never succeed (a bad spine, a spine over the size limit, a request body
//!   that is not one) is settled: its reason goes to `exports/<name>.error.json`, any earlier
//!   export of that name is left as it was, and the message is not retried;
//! - anything else (the database, the bucket) fails the message, to be retried and at last
//!   dead-lettered;
//! - a success replaces the Parquet file, then the manifest (so a manifest never names a file
//!   older than itself), then removes a stale error report. Doing it again writes the same files:
//!   a redelivered message is harmless.

use std::io::{Read, Write};
use std::path::Path;

use chrono::{NaiveDate, Utc};
use deadpool_postgres::Pool;
use serde_json::{json, Value as Json};

use crate::feature_file::{self, Format};
use crate::training::{self, BadSpine, SpineFile, TrainingProgress};
use crate::{ExportSink, ObjectRef, ObjectSource, PipelineError};

/// The key id the export function's reads are audited under (`access_audit.key_id`).
pub const EXPORT_KEY_ID: &str = "export-function";

/// The largest spine the export function takes (`MEDREC_MAX_SPINE_BYTES` overrides it): 64 MiB
/// is about 3M rows of `person_id,cutoff,label`. The bench made 1M rows over 1M persons in
/// 153.5 s on 2 cores, so 3M take about half of the function's 900 s; a larger spine is refused
/// unread rather than timed out and retried into the DLQ.
pub const FUNCTION_MAX_SPINE_BYTES: u64 = 64 * 1024 * 1024;

/// The largest full-export request body (a small JSON document).
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

const SPINES: &str = "spines/";
const FULL_EXPORTS: &str = "full-exports/";
const EXPORTS: &str = "exports/";

/// What an object under the export prefixes asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportRequest {
    /// `spines/<name>.csv` or `spines/<name>.parquet`: a training set of that spine.
    Spine { name: String, parquet: bool },
    /// `full-exports/<name>` (or `<name>.json`): every person, stored or as of the date its
    /// body names.
    Full { name: String },
}

impl ExportRequest {
    /// The bucket's layout. `<name>` may hold `/` (`spines/2026/readmission.csv` is exported
    /// as `exports/2026/readmission.parquet`).
    pub fn of_key(key: &str) -> Result<ExportRequest, String> {
        if let Some(file) = key.strip_prefix(SPINES) {
            let (name, extension) = file
                .rsplit_once('.')
                .filter(|(name, _)| !name.is_empty() && !name.ends_with('/'))
                .ok_or("a spine's key must be spines/<name>.csv or spines/<name>.parquet")?;
            return match extension.to_ascii_lowercase().as_str() {
                "csv" => Ok(ExportRequest::Spine {
                    name: name.to_owned(),
                    parquet: false,
                }),
                "parquet" => Ok(ExportRequest::Spine {
                    name: name.to_owned(),
                    parquet: true,
                }),
                _ => Err("a spine's key must end in .csv or .parquet".to_owned()),
            };
        }
        if let Some(file) = key.strip_prefix(FULL_EXPORTS) {
            let name = file.strip_suffix(".json").unwrap_or(file);
            if name.is_empty() || name.ends_with('/') {
                return Err("a full-export request's key must be full-exports/<name>".to_owned());
            }
            return Ok(ExportRequest::Full {
                name: name.to_owned(),
            });
        }
        Err("the key is under neither spines/ nor full-exports/".to_owned())
    }

    fn name(&self) -> &str {
        match self {
            ExportRequest::Spine { name, .. } | ExportRequest::Full { name } => name,
        }
    }

    /// The key of one of its outputs: `exports/<name><suffix>`.
    pub fn output_key(&self, suffix: &str) -> String {
        format!("{EXPORTS}{}{suffix}", self.name())
    }
}

/// What became of one export request.
#[derive(Debug)]
pub enum Delivered {
    /// The Parquet file and its manifest are in place.
    Exported {
        rows: i64,
        parquet: String,
        manifest: String,
    },
    /// Overwritten or deleted since it was announced: the newer object has its own announcement.
    Superseded,
    /// The request can never succeed; its reason is in `exports/<name>.error.json`.
    Refused(PipelineError),
}

/// The export use case over one database, the bucket the requests are read from and where the
/// exports go.
pub struct Exports<S, E> {
    pool: Pool,
    source: S,
    sink: E,
    max_spine_bytes: u64,
}

/// Why a request's files are not written (yet): the `?` of the steps before delivery.
enum Stop {
    /// Overwritten or deleted since it was announced.
    Superseded,
    /// It can never succeed, for this reason (written to its error report).
    Refused(String),
    /// Worth retrying.
    Failed(PipelineError),
}

impl From<PipelineError> for Stop {
    fn from(error: PipelineError) -> Stop {
        Stop::Failed(error)
    }
}

impl<S: ObjectSource, E: ExportSink> Exports<S, E> {
    pub fn new(pool: Pool, source: S, sink: E) -> Exports<S, E> {
        Exports {
            pool,
            source,
            sink,
            max_spine_bytes: FUNCTION_MAX_SPINE_BYTES,
        }
    }

    pub fn with_max_spine_bytes(self, bytes: u64) -> Exports<S, E> {
        Exports {
            max_spine_bytes: bytes,
            ..self
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn sink(&self) -> &E {
        &self.sink
    }

    /// A bucket notification named `object` (whose key is `key`): export it.
    pub async fn notified(
        &self,
        key: &str,
        object: &ObjectRef,
    ) -> Result<Delivered, PipelineError> {
        let request = ExportRequest::of_key(key)
            .map_err(|reason| PipelineError::permanent(&object.name, reason))?;
        // The outputs go to the bucket the request came from.
        let bucket = object.name.strip_suffix(key).ok_or_else(|| {
            PipelineError::permanent(&object.name, "the name does not end in the key")
        })?;
        let scratch = tempfile::tempdir().map_err(|e| {
            PipelineError::transient(&object.name, "creating a scratch directory", e)
        })?;
        let out = scratch.path().join("export.parquet");
        let written = match &request {
            ExportRequest::Spine { parquet, .. } => {
                let spine = scratch.path().join(if *parquet {
                    "spine.parquet"
                } else {
                    "spine.csv"
                });
                self.training_set(key, object, &spine, &out).await
            }
            ExportRequest::Full { .. } => self.full_export(object, &out).await,
        };
        let error_report = format!("{bucket}{}", request.output_key(".error.json"));
        let (rows, mut manifest) = match written {
            Ok(written) => written,
            Err(Stop::Superseded) => return Ok(Delivered::Superseded),
            Err(Stop::Failed(error)) => return Err(error),
            Err(Stop::Refused(reason)) => {
                let report = json!({
                    "request": key,
                    "version": object.version,
                    "refused_at": Utc::now().to_rfc3339(),
                    "error": reason,
                    "exports": format!("{} and {} are left as they were",
                        request.output_key(".parquet"), request.output_key(".json")),
                });
                self.sink
                    .put(&error_report, pretty(&report), "application/json")
                    .await?;
                let mut error = PipelineError::permanent(
                    &object.name,
                    format!("refused: the reason is in {error_report}"),
                );
                error.mark_recorded();
                return Ok(Delivered::Refused(error));
            }
        };
        let parquet = format!("{bucket}{}", request.output_key(".parquet"));
        let manifest_name = format!("{bucket}{}", request.output_key(".json"));
        let bytes = std::fs::metadata(&out)
            .map(|m| m.len())
            .map_err(|e| PipelineError::transient(&object.name, "reading the export's size", e))?;
        manifest["file"] = json!({
            "name": parquet,
            "bytes": bytes,
            "rows": rows,
            "request": key,
            "request_version": object.version,
            "exported_at": Utc::now().to_rfc3339(),
        });
        self.sink
            .put_file(&parquet, &out, "application/vnd.apache.parquet")
            .await?;
        self.sink
            .put(&manifest_name, pretty(&manifest), "application/json")
            .await?;
        self.sink.remove(&error_report).await?;
        Ok(Delivered::Exported {
            rows,
            parquet,
            manifest: manifest_name,
        })
    }

    /// The training set of the spine `object` (named `key` in its errors), written to `out`:
    /// its rows and catalogue.
    async fn training_set(
        &self,
        key: &str,
        object: &ObjectRef,
        spine: &Path,
        out: &Path,
    ) -> Result<(i64, Json), Stop> {
        let file = std::fs::File::create(spine)
            .map_err(|e| PipelineError::transient(&object.name, "creating the spine's copy", e))?;
        let copy = self
            .read(object, self.max_spine_bytes, std::io::BufWriter::new(file))
            .await?;
        copy.into_inner().map_err(|e| {
            PipelineError::transient(&object.name, "copying the spine", e.into_error())
        })?;
        let client = crate::connection(&self.pool, &object.name).await?;
        let spine = SpineFile {
            path: spine.to_owned(),
            name: key.to_owned(),
        };
        let progress = TrainingProgress::default();
        training::write(
            &client,
            &spine,
            out,
            Format::Parquet,
            None,
            EXPORT_KEY_ID,
            &progress,
        )
        .await
        .map(|written| (written.rows, written.catalogue))
        .map_err(|error| match error.downcast::<BadSpine>() {
            Ok(BadSpine(reason)) => Stop::Refused(reason),
            Err(error) => Stop::Failed(PipelineError::transient(
                &object.name,
                "writing the training set",
                error,
            )),
        })
    }

    /// Every person, as the request `object` asks, written to `out`: its rows and catalogue.
    async fn full_export(&self, object: &ObjectRef, out: &Path) -> Result<(i64, Json), Stop> {
        let body = self.read(object, MAX_REQUEST_BYTES, Vec::new()).await?;
        let as_of = parse_full_request(&body).map_err(Stop::Refused)?;
        let client = crate::connection(&self.pool, &object.name).await?;
        let exported = feature_file::export(&client, Format::Parquet, out, as_of, EXPORT_KEY_ID)
            .await
            .map_err(|e| PipelineError::transient(&object.name, "writing the export", e))?;
        Ok((exported.rows, exported.catalogue))
    }

    /// Reads the object into `to`, refused when it is over `limit` bytes (by its announced size,
    /// or once read past it).
    async fn read<W: Write + Send + 'static>(
        &self,
        object: &ObjectRef,
        limit: u64,
        mut to: W,
    ) -> Result<W, Stop> {
        let opened = self.source.open(object).await?.ok_or(Stop::Superseded)?;
        let too_large = || {
            Stop::Refused(format!(
                "the object is larger than the {limit} bytes this function takes"
            ))
        };
        if opened.size.is_some_and(|size| size > limit) {
            return Err(too_large());
        }
        let failed = |e: anyhow::Error| {
            Stop::Failed(PipelineError::transient(
                &object.name,
                "reading the object",
                e,
            ))
        };
        let (copied, to) = tokio::task::spawn_blocking(move || {
            std::io::copy(&mut opened.body.take(limit + 1), &mut to).map(|n| (n, to))
        })
        .await
        .map_err(|e| failed(e.into()))?
        .map_err(|e| failed(e.into()))?;
        if copied > limit {
            return Err(too_large());
        }
        Ok(to)
    }
}

fn pretty(document: &Json) -> Vec<u8> {
    let mut text = serde_json::to_vec_pretty(document).unwrap_or_default();
    text.push(b'\n');
    text
}

/// A full-export request's body: empty (the stored features), or `{"as_of": "YYYY-MM-DD"}`.
fn parse_full_request(body: &[u8]) -> Result<Option<NaiveDate>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the request is not UTF-8".to_owned())?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let wanted = "the request must be empty or a JSON object {\"as_of\": \"YYYY-MM-DD\"}";
    let Ok(Json::Object(fields)) = serde_json::from_str::<Json>(text) else {
        return Err(wanted.to_owned());
    };
    if let Some(other) = fields.keys().find(|k| *k != "as_of") {
        return Err(format!("{wanted}: it has a field {other:?}"));
    }
    match fields.get("as_of") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(date)) => NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .ok()
            .filter(|_| date.len() == 10)
            .map(Some)
            .ok_or_else(|| format!("{wanted}: as_of is not a date")),
        Some(_) => Err(format!("{wanted}: as_of is not a date")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_request_and_outputs() {
        let spine = ExportRequest::of_key("spines/2026/readmission.csv").unwrap();
        assert_eq!(
            spine,
            ExportRequest::Spine {
                name: "2026/readmission".into(),
                parquet: false
            }
        );
        assert_eq!(
            spine.output_key(".parquet"),
            "exports/2026/readmission.parquet"
        );
        assert!(matches!(
            ExportRequest::of_key("spines/a.PARQUET"),
            Ok(ExportRequest::Spine { parquet: true, .. })
        ));
        assert_eq!(
            ExportRequest::of_key("full-exports/weekly.json")
                .unwrap()
                .output_key(".json"),
            "exports/weekly.json"
        );
        assert_eq!(
            ExportRequest::of_key("full-exports/weekly").unwrap(),
            ExportRequest::Full {
                name: "weekly".into()
            }
        );
        for bad in [
            "spines/a.txt",
            "spines/.csv",
            "spines/a/",
            "spines/noextension",
            "full-exports/",
            "full-exports/a/",
            "exports/a.parquet",
            "raw/rx/a.csv",
        ] {
            assert!(ExportRequest::of_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn full_requests_are_empty_or_name_a_date() {
        assert_eq!(parse_full_request(b""), Ok(None));
        assert_eq!(parse_full_request(b" \n"), Ok(None));
        assert_eq!(parse_full_request(b"{}"), Ok(None));
        assert_eq!(
            parse_full_request(br#"{"as_of": "2024-06-30"}"#),
            Ok(NaiveDate::from_ymd_opt(2024, 6, 30))
        );
        for bad in [
            &br#"{"as_of": "2024-6-30"}"#[..],
            br#"{"as_of": 20240630}"#,
            br#"{"asof": "2024-06-30"}"#,
            b"[1]",
            b"\xff",
        ] {
            assert!(parse_full_request(bad).is_err(), "{bad:?}");
        }
    }
}
