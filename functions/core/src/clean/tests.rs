//! PLACEHOLDER being replaced by a helper.
use super::{CleanRow, Cleaner, Notes, Rejection};
use crate::table::Table;
use crate::value::{Column, Value};
pub struct TestsCleaner;
pub struct TestRow;
impl Cleaner for TestsCleaner {
    type Row = TestRow;
    const TABLE: Table = Table::Tests;
    const SOURCE_COLUMNS: &'static [&'static str] = &["person_id"];
    const REQUIRED_COLUMNS: &'static [&'static str] = &["person_id"];
    fn clean(&self, _raw: &super::RawRow<'_>, _notes: &mut Notes) -> Result<TestRow, Rejection> {
        Ok(TestRow)
    }
}
impl CleanRow for TestRow {
    const COLUMNS: &'static [Column] = &[];
    fn into_values(self) -> Vec<Value> {
        vec![]
    }
}
