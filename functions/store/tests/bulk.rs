//! A first load COPYs straight into the clean table (the bulk path), de-duplicating in memory;
//! any other load goes through the staging table. Both must store and count exactly the same:
//! the sample's files, with exact duplicates, rows changed after the fact (a reused condition
//! id) and bad lines appended, loaded each way (and with limits small enough to cross every
//! switch from the bulk path to the stage) give identical tables, quarantine and counts.

use medrec_core::Table;
use medrec_store::{ingest_with, BulkLimits, Source};
use medrec_testkit::{sample, TestDb};
use tokio_postgres::Client;

/// The sample file with trouble appended: its first 40 data lines again, its first 6 data
/// lines with their second field changed, and bad lines.
fn troubled(table: Table) -> Vec<u8> {
    let text = String::from_utf8(sample(&format!("{}_ae.csv", table.name()))).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let data: Vec<String> = lines[1..].to_vec();
    lines.extend(data.iter().take(40).cloned());
    // The second field changed: for conditions the same id with other content.
    lines.extend(data.iter().take(6).map(|l| {
        let (first, rest) = l.split_once(',').unwrap();
        format!("{first},x{rest}")
    }));
    lines.extend(["1,2,3".to_owned(), ",,,,,,".to_owned(), "\u{1}".to_owned()]);
    lines.extend(data.iter().skip(40).take(10).cloned());
    (lines.join("\n") + "\n").into_bytes()
}

/// Everything a load writes, without run ids (each database numbers its own runs alike, but
/// that is not the point).
async fn stored(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for table in Table::ALL {
        let rows = client
            .query(
                &format!(
                    "SELECT (to_jsonb(t) - 'run_id')::text FROM {table} t
                     ORDER BY person_id, row_hash"
                ),
                &[],
            )
            .await
            .unwrap();
        out.extend(
            rows.iter()
                .map(|r| format!("{table}: {}", r.get::<_, String>(0))),
        );
    }
    for sql in [
        "SELECT concat_ws(' ', r.table_name, q.source_line, q.reason, q.column_name, md5(q.raw_line),
                md5(q.raw_bytes)) FROM quarantine q JOIN ingest_run r USING (run_id)
         ORDER BY r.table_name, q.source_line, q.reason",
        "SELECT concat_ws(' ', table_name, status, raw_rows, loaded_rows, duplicate_rows,
                quarantined_rows, cleaned_rows, flagged_rows) FROM ingest_run ORDER BY table_name",
        "SELECT concat_ws(' ', person_id, first_run_id IS NOT NULL) FROM person ORDER BY 1",
        "SELECT string_agg(person_id::text, ',' ORDER BY person_id) FROM features_owed",
    ] {
        for row in client.query(sql, &[]).await.unwrap() {
            out.push(row.get::<_, Option<String>>(0).unwrap_or_default());
        }
    }
    out
}

async fn load_each_table(limits: BulkLimits) -> (Vec<String>, Vec<String>) {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let mut reports = Vec::new();
    for table in Table::ALL {
        let bytes = troubled(table);
        let source = Source {
            table,
            name: format!("{}_troubled.csv", table.name()),
            version: None,
            sha256: None,
        };
        let report = ingest_with(&mut client, source, std::io::Cursor::new(bytes), limits)
            .await
            .unwrap();
        reports.push(format!(
            "{} raw {} loaded {} duplicates {} quarantined {} {:?} persons {:?}",
            table,
            report.raw_rows,
            report.loaded_rows,
            report.duplicate_rows,
            report.quarantined_rows,
            report.quarantined_by_reason,
            report.persons
        ));
    }
    (stored(&client).await, reports)
}

#[tokio::test]
async fn the_bulk_path_stores_and_counts_what_the_staging_path_does() {
    let staged = load_each_table(BulkLimits {
        enabled: false,
        ..BulkLimits::default()
    })
    .await;
    assert!(
        staged.1.iter().all(|r| !r.contains("duplicates 0 ")),
        "{:#?}",
        staged.1
    );
    assert!(
        staged.0.iter().any(|r| r.contains("conflicting_id")),
        "a reused id is quarantined"
    );
    for limits in [
        BulkLimits::default(),
        // Past a few distinct rows: the rest of each file through the stage.
        BulkLimits {
            keys: 7,
            ..BulkLimits::default()
        },
        // Past one held quarantined row: the rest through the stage at once.
        BulkLimits {
            held_quarantine: 1,
            ..BulkLimits::default()
        },
        BulkLimits {
            enabled: true,
            keys: 0,
            held_quarantine: 0,
        },
    ] {
        let bulk = load_each_table(limits).await;
        assert_eq!(bulk.1, staged.1, "{limits:?}");
        assert_eq!(bulk.0, staged.0, "{limits:?}");
    }
}

/// A second file of a table goes through the stage (the table holds rows), and its rows that
/// the first file loaded are duplicates, as before.
#[tokio::test]
async fn a_later_load_of_the_same_table_takes_the_staging_path() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let bytes = troubled(Table::Labs);
    let half = bytes.len() / 2;
    let cut = bytes[..half].iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let header_end = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    let first = bytes[..cut].to_vec();
    let mut second = bytes[..header_end].to_vec();
    second.extend_from_slice(&bytes[header_end..]);
    let load = |name: &str, bytes: Vec<u8>| {
        let source = Source {
            table: Table::Labs,
            name: name.to_owned(),
            version: None,
            sha256: None,
        };
        (source, std::io::Cursor::new(bytes))
    };
    let (source, input) = load("first.csv", first);
    let one = ingest_with(&mut client, source, input, BulkLimits::default())
        .await
        .unwrap();
    let (source, input) = load("whole.csv", second);
    let two = ingest_with(&mut client, source, input, BulkLimits::default())
        .await
        .unwrap();
    let whole = load_each_table_labs_alone().await;
    assert_eq!(one.loaded_rows + two.loaded_rows, whole);
    assert!(two.duplicate_rows >= one.loaded_rows, "{two:?}");
}

async fn load_each_table_labs_alone() -> i64 {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let source = Source {
        table: Table::Labs,
        name: "labs.csv".to_owned(),
        version: None,
        sha256: None,
    };
    ingest_with(
        &mut client,
        source,
        std::io::Cursor::new(troubled(Table::Labs)),
        BulkLimits::default(),
    )
    .await
    .unwrap()
    .loaded_rows
}
