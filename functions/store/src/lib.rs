//! medrec's PostgreSQL adapter: migrations, connections, and loading clean rows with binary COPY.

pub mod audit;
pub mod db;
pub mod error;
pub mod features;
pub mod load;
pub mod migrate;
pub mod person;
pub mod pg_value;
pub mod receipts;
pub mod report;
pub mod roles;
pub mod run_flags;
pub mod schema_doc;
pub mod training;
pub mod vendor;

pub use db::{connect, pool, DbConfig};
pub use error::{connection_lost, safe_summary, ErrorKind};
pub use load::{ingest, ingest_with, BulkLimits, IngestError, RunReport, RunStatus, Source};
pub use migrate::{migrate, DEFINITIONS, MIGRATIONS};
