//! The five raw tables, how a file name names one, and what each table is ([`TableSpec`]).

use std::io::BufRead;

use strum::EnumCount;

use crate::clean::conditions::ConditionsCleaner;
use crate::clean::labs::LabsCleaner;
use crate::clean::lifestyle::LifestyleCleaner;
use crate::clean::rx::RxCleaner;
use crate::clean::test_results::TestResultsCleaner;
use crate::clean::{CleanFields, CleanRow, Cleaner, FileError, OutcomeStream};
use crate::value::Column;

/// A raw (and clean) table. `Display`, `name()` and `Into<&'static str>` give its name;
/// `FromStr` (`"rx".parse::<Table>()`) accepts exactly that lower-case name and nothing else,
/// while [`Table::from_name`] and [`Table::from_file_name`] are lenient.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    strum::EnumCount,
)]
#[strum(serialize_all = "snake_case")]
pub enum Table {
    Lifestyle,
    Rx,
    Conditions,
    Labs,
    Tests,
}

impl Table {
    pub const ALL: [Table; Table::COUNT] = crate::variant_array();

    /// The clean table's name in PostgreSQL (also the raw file's first word).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Lenient: ignores case and surrounding spaces (`" Labs "`). For names a program wrote
    /// (keys, configuration, query parameters) use the strict `FromStr`.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The table a raw file holds, from the first word of its name:
    /// `lifestyle.csv`, `rx_batch2.csv`, `conditions_ae.csv`, `Labs-2024.CSV`.
    pub fn from_file_name(file_name: &str) -> Option<Table> {
        let first_word = file_name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or_default();
        Table::from_name(first_word)
    }

    /// Everything the code dispatches on per table, in one place.
    pub fn spec(self) -> &'static TableSpec {
        match self {
            Table::Lifestyle => {
                static SPEC: TableSpec =
                    TableSpec::of::<LifestyleCleaner>(None, Some("report_date"));
                &SPEC
            }
            Table::Rx => {
                static SPEC: TableSpec = TableSpec::of::<RxCleaner>(None, Some("rx_date"));
                &SPEC
            }
            Table::Conditions => {
                static SPEC: TableSpec =
                    TableSpec::of::<ConditionsCleaner>(Some("id"), Some("report_date"));
                &SPEC
            }
            Table::Labs => {
                static SPEC: TableSpec = TableSpec::of::<LabsCleaner>(None, Some("feature_date"));
                &SPEC
            }
            Table::Tests => {
                static SPEC: TableSpec =
                    TableSpec::of::<TestResultsCleaner>(None, Some("report_date"));
                &SPEC
            }
        }
    }
}

/// Opens a raw file of one table for cleaning: the table's [`crate::clean::FileCleaner`],
/// boxed. Fails when the file cannot be cleaned at all (empty, bad header).
pub type OpenFn = for<'r> fn(Box<dyn BufRead + Send + 'r>) -> Result<OutcomeStream<'r>, FileError>;

/// Makes a cleaner of one table's rows from any format, given the rows' column names: the
/// table's [`crate::clean::RowCleaner`], boxed. Fails when the names break the header rules.
pub type RowCleanerFn = fn(&[String]) -> Result<Box<dyn CleanFields>, FileError>;

/// What one table is: its columns, keys and cleaner ([`Table::spec`]).
#[derive(Debug)]
pub struct TableSpec {
    pub table: Table,
    /// The raw columns the cleaner understands (others are kept as `extras`).
    pub source_columns: &'static [&'static str],
    /// Raw columns without which a file cannot be cleaned at all.
    pub required_columns: &'static [&'static str],
    /// The table-specific clean columns ([`CleanRow::COLUMNS`]), in the rows' value order.
    pub clean_columns: &'static [Column],
    /// A clean `bigint` column that identifies a row on its own (`Some("id")` for conditions):
    /// a second row with the same key and other content is quarantined as `conflicting_id`, so
    /// the loader keeps such rows' raw lines until the database has compared them. `None`: rows
    /// are identified by their content, `(person_id, row_hash)`, and exact duplicates dropped.
    pub natural_key: Option<&'static str>,
    /// The clean date column that dates a row as an event (the `event_date` view and the
    /// API's `since`/`until`); `None` for a table whose rows are not events.
    pub event_date: Option<&'static str>,
    /// Opens a raw file of the table for cleaning ([`Table::clean`] calls it).
    pub open: OpenFn,
    /// A cleaner of rows with given column names ([`Table::row_cleaner`] calls it).
    pub row_cleaner: RowCleanerFn,
}

impl TableSpec {
    /// The clean table's name in PostgreSQL.
    pub fn name(&self) -> &'static str {
        self.table.name()
    }

    const fn of<C: Cleaner + Default + Send + Sync + 'static>(
        natural_key: Option<&'static str>,
        event_date: Option<&'static str>,
    ) -> TableSpec {
        TableSpec {
            table: C::TABLE,
            source_columns: C::SOURCE_COLUMNS,
            required_columns: C::REQUIRED_COLUMNS,
            clean_columns: <C::Row as CleanRow>::COLUMNS,
            natural_key,
            event_date,
            open: crate::clean::open_boxed::<C>,
            row_cleaner: crate::clean::row_cleaner_boxed::<C>,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn table_from_file_name_uses_the_first_word() {
        assert_eq!(Table::from_file_name("rx_batch2.csv"), Some(Table::Rx));
        assert_eq!(
            Table::from_file_name("conditions_ae.csv"),
            Some(Table::Conditions)
        );
        assert_eq!(Table::from_file_name("Labs-2024.CSV"), Some(Table::Labs));
        assert_eq!(
            Table::from_file_name("lifestyle.csv"),
            Some(Table::Lifestyle)
        );
        assert_eq!(Table::from_file_name("rxx.csv"), None);
        assert_eq!(Table::from_file_name("notes.csv"), None);
    }

    #[test]
    fn names_are_the_lower_case_words() {
        let names: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["lifestyle", "rx", "conditions", "labs", "tests"]);
        for table in Table::ALL {
            assert_eq!(table.to_string(), table.name());
            assert_eq!(table.name().parse::<Table>(), Ok(table));
        }
    }

    #[test]
    fn from_str_is_strict_and_from_name_is_lenient() {
        for bad in ["RX", "Rx", " rx", "rx ", "", "rxx", "test", "Tests"] {
            assert!(Table::from_str(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Table::from_name(" RX "), Some(Table::Rx));
        assert_eq!(Table::from_name("Tests"), Some(Table::Tests));
        assert_eq!(Table::from_name("rxx"), None);
    }

    #[test]
    fn each_spec_is_its_tables_and_consistent() {
        for table in Table::ALL {
            let spec = table.spec();
            assert_eq!(spec.table, table);
            assert_eq!(spec.name(), table.name());
            assert!(spec.source_columns.contains(&"person_id"), "{table}");
            for required in spec.required_columns {
                assert!(spec.source_columns.contains(required), "{table}.{required}");
            }
            let clean = |name: &str| spec.clean_columns.iter().find(|c| c.name == name);
            if let Some(key) = spec.natural_key {
                assert_eq!(
                    clean(key).map(|c| c.ty),
                    Some(crate::ColumnType::Int8),
                    "{table}.{key}"
                );
            }
            if let Some(date) = spec.event_date {
                assert_eq!(
                    clean(date).map(|c| c.ty),
                    Some(crate::ColumnType::Date),
                    "{table}.{date}"
                );
            }
        }
        assert_eq!(Table::Conditions.spec().natural_key, Some("id"));
        let keyed: Vec<Table> = Table::ALL
            .into_iter()
            .filter(|t| t.spec().natural_key.is_some())
            .collect();
        assert_eq!(keyed, [Table::Conditions]);
    }
}
