//! A raw CSV file of any bytes, read by the CSV record reader and cleaned by each table's
//! cleaner (`Table::clean`: the reader, the header rules, the table's `RowCleaner`), for every
//! table. Whatever the input: no panic, and every record ends as exactly one outcome.
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use medrec_core::reader::RecordReader;
use medrec_core::{Outcome, Table};

fuzz_target!(|data: &[u8]| {
    // The reader alone: every record it yields has a line number past the previous one.
    let mut reader = RecordReader::new(BufReader::with_capacity(64, data));
    let mut records = 0u64;
    let mut last_line = 0;
    while let Some(record) = reader.next_record().expect("reading a slice cannot fail") {
        assert!(record.line > last_line, "line numbers increase");
        last_line = record.line;
        records += 1;
    }
    for table in Table::ALL {
        // A small buffer, so that records straddle `fill_buf` calls.
        let Ok(stream) = table.clean(BufReader::with_capacity(64, data)) else {
            continue; // Empty, or a header the rules refuse: the whole file is rejected.
        };
        let mut outcomes = 0u64;
        for outcome in stream {
            let outcome = outcome.expect("reading a slice cannot fail");
            if let Outcome::Clean(row) = &outcome {
                assert!(row.person_id > 0, "{table}: a clean row has a valid person");
                assert_eq!(row.values.len(), table.clean_columns().len(), "{table}");
            }
            outcomes += 1;
        }
        // The header is one record, each other record one outcome.
        assert_eq!(outcomes + 1, records, "{table}");
    }
});
