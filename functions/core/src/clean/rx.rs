//! PLACEHOLDER being replaced by a helper.
use super::{CleanRow, Cleaner, Notes, Rejection};
use crate::table::Table;
use crate::value::{Column, Value};
pub struct RxCleaner;
pub struct RxRow;
impl Cleaner for RxCleaner {
    type Row = RxRow;
    const TABLE: Table = Table::Rx;
    const SOURCE_COLUMNS: &'static [&'static str] = &["person_id"];
    const REQUIRED_COLUMNS: &'static [&'static str] = &["person_id"];
    fn clean(&self, _raw: &super::RawRow<'_>, _notes: &mut Notes) -> Result<RxRow, Rejection> {
        Ok(RxRow)
    }
}
impl CleanRow for RxRow {
    const COLUMNS: &'static [Column] = &[];
    fn into_values(self) -> Vec<Value> {
        vec![]
    }
}
