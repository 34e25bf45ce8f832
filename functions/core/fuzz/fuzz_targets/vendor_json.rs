//! A vendor JSON file of any bytes through the vendor parser and cleaner (`vendor::parse`):
//! a rejection with a reason or cleaned tables, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medrec_core::vendor::{self, MAX_VERSION};
use medrec_core::{Outcome, Table};

fuzz_target!(|data: &[u8]| {
    match vendor::parse(data) {
        Ok(file) => {
            assert!(file.person_id > 0);
            assert!((1..=MAX_VERSION).contains(&file.version));
            assert_eq!(file.tables.len(), Table::ALL.len());
            for (table, cleaned) in Table::ALL.iter().zip(&file.tables) {
                assert_eq!(*table, cleaned.table);
                for (i, outcome) in cleaned.outcomes.iter().enumerate() {
                    match outcome {
                        Outcome::Clean(row) => {
                            assert_eq!(row.line, i as u64 + 1);
                            assert_eq!(row.person_id, file.person_id, "{table}");
                            assert_eq!(row.values.len(), table.clean_columns().len());
                        }
                        Outcome::Quarantined(q) => assert_eq!(q.line, i as u64 + 1),
                    }
                }
            }
        }
        Err(error) => {
            // The detail names a field or a position; it is never empty.
            assert!(!error.detail.is_empty(), "{error:?}");
        }
    }
});
