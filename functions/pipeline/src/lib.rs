//! medrec's use cases, written once for every caller (the Lambdas and the `medrec` command):
//!
//! - **an object arrived** ([`Pipeline::object_arrived`]): a raw CSV or a vendor JSON file is read
//!   from an [`ObjectSource`], cleaned and loaded by the store, and the persons whose features may
//!   have changed go to a [`PersonsSink`];
//! - **a bucket notification named an object** ([`Pipeline::notified`]): the bucket's layout picks
//!   the kind, and a permanently bad object is recorded and settled instead of retried;
//! - **many objects** ([`Pipeline::objects_arrived`]): N at a time, each on its own connection;
//! - **persons changed** ([`persons_changed`]): their features are recomputed, with what earlier
//!   runs left owed (a crash after a load's commit) in bounded chunks;
//! - **a training set** ([`training::write`]) and **a full export** ([`feature_file::export`]):
//!   features as of each spine row's cutoff, or of every person, to a CSV or Parquet file;
//! - **an export was asked for** ([`Exports::notified`]): a spine or a full-export request in the
//!   bucket becomes a Parquet file and its manifest under `exports/`, delivered to an
//!   [`ExportSink`].
//!
//! No AWS, no command line, no HTTP: adapters live with their callers (S3 and SQS in
//! `medrec-lambda`, local files and one recompute after the batch in `medrec`); [`memory`] holds
//! the in-memory ones the tests drive.

pub mod error;
mod export;
pub mod feature_file;
mod features;
pub mod memory;
mod object;
pub mod ports;
pub mod training;

pub use error::{ErrorKind, PipelineError};
pub use export::{Delivered, ExportRequest, Exports, EXPORT_KEY_ID, FUNCTION_MAX_SPINE_BYTES};
pub use features::{
    everyone_parts, persons_changed, Owed, Recomputed, EVERYONE_PARTS_MAX, FULL_REFRESH_SHARE,
    FUNCTION_OWED_PER_BATCH, REFRESH_CHUNK,
};
pub use object::{Accepts, ObjectKind, Pipeline, Processed, FUNCTION_MAX_CSV_BYTES};
pub use ports::{ExportSink, ObjectRef, ObjectSource, Opened, PersonsSink};

/// A connection of the pool for work on `name`; none is a transient failure.
pub(crate) async fn connection(
    pool: &deadpool_postgres::Pool,
    name: &str,
) -> Result<deadpool_postgres::Object, PipelineError> {
    pool.get()
        .await
        .map_err(|e| PipelineError::transient(name, "no database connection", e))
}
