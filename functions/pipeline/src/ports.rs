//! The ports of the pipeline: where objects are read from, who hears that persons changed, and
//! where exports are delivered.

use std::future::Future;
use std::io::Read;
use std::path::Path;

use crate::PipelineError;

/// One object to process: its lineage name and, where the source has one, its version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// A path or `s3://bucket/key`: what ingest runs and vendor files record as their source.
    pub name: String,
    /// An S3 ETag, or a local file's size and modification time: a loaded (name, version) is not
    /// read again.
    pub version: Option<String>,
}

/// An object opened for reading.
pub struct Opened {
    /// The size before reading, where the source knows it (S3's Content-Length, a file's length).
    pub size: Option<u64>,
    /// The content. It is read on a blocking thread.
    pub body: Box<dyn Read + Send>,
}

/// Where objects come from: S3 in the cloud, the file system locally, memory in tests.
pub trait ObjectSource: Send + Sync {
    /// Opens the object at the version named. `Ok(None)` when it is gone or was overwritten since
    /// it was announced: the newer version has an announcement of its own.
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<Opened>, PipelineError>> + Send;
}

/// Who hears that persons' records changed: the features queue in the cloud, an immediate (or
/// end-of-batch) recompute locally. Announcing twice is harmless: recomputing is idempotent.
pub trait PersonsSink: Send + Sync {
    fn announce(&self, persons: &[i64]) -> impl Future<Output = Result<(), PipelineError>> + Send;
}

impl<T: PersonsSink> PersonsSink for &T {
    fn announce(&self, persons: &[i64]) -> impl Future<Output = Result<(), PipelineError>> + Send {
        (*self).announce(persons)
    }
}

/// Where exports are delivered: the bucket in the cloud, memory in tests. Names are
/// `s3://bucket/key`, as [`ObjectRef::name`]. Writing a name again replaces it.
pub trait ExportSink: Send + Sync {
    /// Puts the file at `path` under `name`.
    fn put_file(
        &self,
        name: &str,
        path: &Path,
        content_type: &str,
    ) -> impl Future<Output = Result<(), PipelineError>> + Send;

    /// Puts `body` under `name`.
    fn put(
        &self,
        name: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), PipelineError>> + Send;

    /// Removes `name`; nothing there is not an error.
    fn remove(&self, name: &str) -> impl Future<Output = Result<(), PipelineError>> + Send;
}
