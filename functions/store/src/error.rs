//! What a failure means for the caller (retry or not) and how to name it without record values.

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input can never load as it is: record why and stop trying.
    Permanent,
    /// The same input may succeed later (a lost connection, a timeout, a broken read).
    Transient,
}

/// A database error fit for logs and stored run records: the SQLSTATE only, since the server's
/// message and detail may quote row values.
pub fn safe_summary(error: &tokio_postgres::Error) -> String {
    match error.code() {
        Some(code) => format!("database error {}", code.code()),
        None => "database connection error".to_owned(),
    }
}
