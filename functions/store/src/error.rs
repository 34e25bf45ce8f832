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
    if connection_lost(error) {
        return CONNECTION_LOST.to_owned();
    }
    match error.code() {
        Some(code) => format!("database error {}", code.code()),
        None => "database connection error".to_owned(),
    }
}

/// What [`safe_summary`] says of a lost connection.
pub const CONNECTION_LOST: &str =
    "the connection to PostgreSQL was lost (the server stopped or restarted, or the network failed)";

/// The connection is gone: closed, broken by an I/O error, or ended by the server (shut down,
/// crashed, the backend terminated). Nothing in flight on it committed, except possibly a COMMIT
/// that was itself cut off.
pub fn connection_lost(error: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        let code = code.code();
        // 57P01 admin_shutdown (also pg_terminate_backend), 57P02 crash_shutdown, 57P03
        // cannot_connect_now; class 08 connection_exception.
        return matches!(code, "57P01" | "57P02" | "57P03") || code.starts_with("08");
    }
    error
        .source()
        .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some())
}
