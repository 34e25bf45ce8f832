//! medrec's pure core: cleaning rules and feature definitions. No I/O, no AWS, no async.

pub mod clean;
pub mod features;
pub mod person_id;
pub mod reader;
pub mod table;
pub mod value;
pub mod vendor;

pub use clean::{CleanedRow, Cleaner, FileError, Flag, Outcome, QuarantinedRow, Reason};
pub use person_id::{PersonId, PersonIdError};
pub use table::{Table, TableSpec};
pub use value::{Column, ColumnType, Value};

/// Every variant of a vocabulary as an array (the `ALL` constants), from strum's `VARIANTS`.
pub(crate) const fn variant_array<T: strum::VariantArray + Copy, const N: usize>() -> [T; N] {
    assert!(
        T::VARIANTS.len() == N,
        "the array length is the variant count"
    );
    let mut all = [T::VARIANTS[0]; N];
    let mut i = 0;
    while i < N {
        all[i] = T::VARIANTS[i];
        i += 1;
    }
    all
}
