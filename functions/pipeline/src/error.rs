//! Failures of a use case, classified by what the caller should do with them.

pub use medrec_store::ErrorKind;

/// A use case's failure. Its `Display` names the object and the kind of failure, never a record
/// value; `source()` keeps the cause for log-safe renderers that know how to reduce it.
#[derive(Debug, thiserror::Error)]
#[error("{object}: {message}")]
pub struct PipelineError {
    kind: ErrorKind,
    /// The permanent failure is on record (a failed run, a rejected vendor file).
    recorded: bool,
    object: String,
    message: String,
    #[source]
    source: Option<anyhow::Error>,
}

impl PipelineError {
    /// A failure that may go away on its own: the caller should try again.
    pub fn transient(
        object: impl Into<String>,
        message: impl Into<String>,
        source: impl Into<anyhow::Error>,
    ) -> PipelineError {
        PipelineError {
            kind: ErrorKind::Transient,
            recorded: false,
            object: object.into(),
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An object that can never be processed, with nothing on record about it (a key outside
    /// the bucket's layout, an object sent to the wrong function).
    pub fn permanent(object: impl Into<String>, message: impl Into<String>) -> PipelineError {
        PipelineError {
            kind: ErrorKind::Permanent,
            recorded: false,
            object: object.into(),
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_kind(
        kind: ErrorKind,
        recorded: bool,
        object: impl Into<String>,
        message: impl Into<String>,
        source: impl Into<anyhow::Error>,
    ) -> PipelineError {
        PipelineError {
            kind,
            recorded,
            object: object.into(),
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The database connection was lost on the way ([`medrec_store::connection_lost`]): the
    /// message says what happened and what to do, and the cause adds nothing a person can use.
    pub fn connection_lost(&self) -> bool {
        self.source.as_ref().is_some_and(|source| {
            source.chain().any(|cause| {
                cause
                    .downcast_ref::<tokio_postgres::Error>()
                    .is_some_and(medrec_store::connection_lost)
            })
        })
    }

    /// The failure in words fit for logs and the ledger (no record values).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn mark_recorded(&mut self) {
        self.recorded = true;
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The object the failure is about (a path or `s3://bucket/key`).
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The policy for a message that carried this object: retry (and, after the queue's limit,
    /// dead-letter) unless the failure is permanent and already on record, where a retry could
    /// only record it again. A permanent failure with no record is dead-lettered, so that it
    /// leaves a trace.
    pub fn should_retry(&self) -> bool {
        !(self.kind == ErrorKind::Permanent && self.recorded)
    }
}

/// The message of a load cut off by a lost connection: what happened, what it means for the
/// file (a load is one transaction), and what to do.
pub(crate) fn interrupted_load() -> String {
    format!(
        "{} while loading it. Nothing of this file was committed (a file loads in one \
         transaction; should the loss have cut off the commit itself, the re-run finds the file \
         loaded and skips it): once PostgreSQL is back, re-run the same command",
        medrec_store::error::CONNECTION_LOST
    )
}
