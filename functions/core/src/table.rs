//! The five raw tables and how a file name names one.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Lifestyle,
    Rx,
    Conditions,
    Labs,
    Tests,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Lifestyle,
        Table::Rx,
        Table::Conditions,
        Table::Labs,
        Table::Tests,
    ];

    /// The clean table's name in PostgreSQL (also the raw file's first word).
    pub fn name(self) -> &'static str {
        match self {
            Table::Lifestyle => "lifestyle",
            Table::Rx => "rx",
            Table::Conditions => "conditions",
            Table::Labs => "labs",
            Table::Tests => "tests",
        }
    }

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
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
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
}
