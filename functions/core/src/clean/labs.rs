//! PLACEHOLDER being replaced by a helper.
use super::{CleanRow, Cleaner, Notes, Rejection};
use crate::table::Table;
use crate::value::{Column, Value};
pub struct LabsCleaner;
pub struct LabRow;
impl Cleaner for LabsCleaner {
    type Row = LabRow;
    const TABLE: Table = Table::Labs;
    const SOURCE_COLUMNS: &'static [&'static str] = &["person_id"];
    const REQUIRED_COLUMNS: &'static [&'static str] = &["person_id"];
    fn clean(&self, _raw: &super::RawRow<'_>, _notes: &mut Notes) -> Result<LabRow, Rejection> {
        Ok(LabRow)
    }
}
impl CleanRow for LabRow {
    const COLUMNS: &'static [Column] = &[];
    fn into_values(self) -> Vec<Value> {
        vec![]
    }
}
