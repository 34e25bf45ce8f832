//! medrec's Lambda functions. Each binary in `src/bin/` builds its clients once and hands events
//! to a handler here; the handlers hold no AWS or database logic of their own beyond wiring.

pub mod config;
pub mod export;
pub mod features;
pub mod migrate;
pub mod objects;
pub mod queue;
pub mod s3_event;
pub mod s3_exports;
pub mod s3_source;

/// An error chain fit for logs: database and JSON errors are reduced to their kind, since their
/// messages may quote values; the other layers name files, tables and kinds.
pub fn log_safe(error: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in error.chain() {
        if let Some(db) = cause.downcast_ref::<tokio_postgres::Error>() {
            parts.push(medrec_store::safe_summary(db));
            break;
        }
        if let Some(json) = cause.downcast_ref::<serde_json::Error>() {
            // serde's messages quote the offending value.
            parts.push(format!(
                "{:?} JSON error at line {} column {}",
                json.classify(),
                json.line(),
                json.column()
            ));
            break;
        }
        parts.push(cause.to_string());
    }
    parts.join(": ")
}
