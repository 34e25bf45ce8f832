//! medrec's pure core: cleaning rules and feature definitions. No I/O, no AWS, no async.

pub mod clean;
pub mod features;
pub mod reader;
pub mod table;
pub mod value;
pub mod vendor;

pub use clean::{CleanedRow, Cleaner, FileError, Flag, Outcome, QuarantinedRow, Reason};
pub use table::Table;
pub use value::{Column, ColumnType, Value};
