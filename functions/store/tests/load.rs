//! Loading against a real PostgreSQL: a fresh database per test, the real sample, bad input.

use std::io::Read;

use medrec_core::reader::sha256_hex;
use medrec_core::{Flag, Reason, Table};
use medrec_store::{ingest, IngestError, RunReport, RunStatus, Source};
use medrec_testkit::{checksum, count, sample, TestDb};
use tokio_postgres::Client;

async fn load_bytes(
    client: &mut Client,
    table: Table,
    name: &str,
    bytes: Vec<u8>,
) -> Result<RunReport, IngestError> {
    let source = Source {
        table,
        name: name.to_owned(),
        version: None,
        sha256: Some(sha256_hex(&bytes[..]).unwrap()),
    };
    ingest(client, source, std::io::Cursor::new(bytes)).await
}

async fn load_sample(client: &mut Client, table: Table) -> RunReport {
    let file = format!("{}_ae.csv", table.name());
    let bytes = sample(&file);
    load_bytes(client, table, &file, bytes).await.unwrap()
}

#[tokio::test]
async fn sample_conserves_every_row_and_stores_what_it_counts() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    // Distinct rows per table, from DATA_NOTES section 0.
    let expected = [
        (Table::Lifestyle, 500, 384),
        (Table::Rx, 480, 326),
        (Table::Conditions, 460, 235),
        (Table::Labs, 460, 269),
        (Table::Tests, 500, 448),
    ];
    for (table, raw, distinct) in expected {
        let r = load_sample(&mut client, table).await;
        assert_eq!(r.status, RunStatus::Loaded);
        assert_eq!(r.raw_rows, raw, "{table}");
        assert_eq!(r.loaded_rows, distinct, "{table}");
        assert_eq!(r.quarantined_rows, 0, "{table}");
        assert_eq!(
            r.raw_rows,
            r.loaded_rows + r.duplicate_rows + r.quarantined_rows
        );
        let stored = count(
            &client,
            &format!("SELECT count(*) FROM {table} WHERE run_id = {}", r.run_id),
        )
        .await;
        assert_eq!(stored, r.loaded_rows, "{table}");
        let run = client
            .query_one(
                "SELECT raw_rows, loaded_rows, duplicate_rows, quarantined_rows, status
                 FROM ingest_run WHERE run_id = $1",
                &[&r.run_id],
            )
            .await
            .unwrap();
        assert_eq!(
            (
                run.get::<_, i64>(0),
                run.get::<_, i64>(1),
                run.get::<_, i64>(2),
                run.get::<_, i64>(3)
            ),
            (
                r.raw_rows,
                r.loaded_rows,
                r.duplicate_rows,
                r.quarantined_rows
            )
        );
        assert_eq!(run.get::<_, String>(4), "loaded");
    }
    assert_eq!(count(&client, "SELECT count(*) FROM person").await, 50);
}

#[tokio::test]
async fn loading_the_same_content_twice_changes_nothing() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    for table in Table::ALL {
        load_sample(&mut client, table).await;
    }
    let mut before = Vec::new();
    for table in Table::ALL
        .map(|t| t.name())
        .iter()
        .chain(&["person", "quarantine"])
    {
        before.push(checksum(&client, &[table]).await);
    }
    for table in Table::ALL {
        let again = load_sample(&mut client, table).await;
        assert!(
            matches!(again.status, RunStatus::AlreadyLoaded { .. }),
            "{table}"
        );
    }
    // The same rows under another file name and another byte layout (CRLF): all duplicates.
    let crlf = String::from_utf8(sample("rx_ae.csv"))
        .unwrap()
        .replace('\n', "\r\n");
    let r = load_bytes(&mut client, Table::Rx, "rx_copy.csv", crlf.into_bytes())
        .await
        .unwrap();
    assert_eq!((r.raw_rows, r.loaded_rows, r.duplicate_rows), (480, 0, 480));
    let mut after = Vec::new();
    for table in Table::ALL
        .map(|t| t.name())
        .iter()
        .chain(&["person", "quarantine"])
    {
        after.push(checksum(&client, &[table]).await);
    }
    assert_eq!(before, after);
}

const LIFESTYLE_HEADER: &str = "impairment_category,impairment,lifestyle_category,feature_type,feature,report_date,clinician_specialty,value,secondary_value,person_id";

#[tokio::test]
async fn bad_lines_are_quarantined_with_reasons_and_raw_bytes() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let mut file = format!("\u{feff}{LIFESTYLE_HEADER}\r\n").into_bytes();
    let lines: Vec<Vec<u8>> = vec![
        b"Lifestyle,Smoker,Habits,Impairment,Smoking,2034-03-17,General,non-smoker,,3585".to_vec(),
        b"Lifestyle,Smoker,Habits,Impairment,Smoking,2034-03-17,General,non-smoker,3585".to_vec(),
        b"Lifestyle,Smoker,Habits,Impairment,Smoking,2034-03-17,General,non-smoker,,3585,extra".to_vec(),
        b"Lifestyle,Smoker,Habits,Impairment,Smoking,2034-03-17,General,n\xffn,,3585".to_vec(),
        b"Lifestyle,Smoker,Habits,Impairment,Smoking,2034-03-17,General,x,,abc".to_vec(),
        b"Lifestyle,Smoker,Habits,Impairment,Smoking,2034-03-17,General,x,,".to_vec(),
        b"Lifestyle,Smoker,Habits,Impairment,,2034-03-17,General,x,,3585".to_vec(),
        b"Lifestyle,Smoker,Habits,Impairment,Smoking,2034-03-17,General,\"'); DROP TABLE person; --\",,3586".to_vec(),
        b"Lifestyle,Smoker,Habits,Impairment,Smoking,2034-03-17,General,nul\x00byte,,3585".to_vec(),
    ];
    for line in &lines {
        file.extend_from_slice(line);
        file.extend_from_slice(b"\r\n");
    }
    let mut long = b"Lifestyle,Smoker,Habits,Impairment,Smoking,2034-03-17,General,".to_vec();
    long.extend(std::iter::repeat_n(b'x', 10 << 20));
    long.extend_from_slice(b",,3585\r\n");
    file.extend_from_slice(&long);
    file.extend_from_slice(
        b"Lifestyle,Smoker,Habits,Impairment,Smoking,2035-01-01,General,\"unterminated,,3585\r\n",
    );

    let r = load_bytes(&mut client, Table::Lifestyle, "lifestyle_bad.csv", file)
        .await
        .unwrap();
    assert_eq!(r.raw_rows, 11);
    assert_eq!(r.loaded_rows, 2, "the sound row and the SQL-looking row");
    let reasons: Vec<(&str, i64)> = r
        .quarantined_by_reason
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("invalid_person_id", 1),
            ("invalid_utf8", 1),
            ("line_too_long", 1),
            ("missing_person_id", 1),
            ("missing_required_value", 1),
            ("nul_byte", 1),
            ("too_few_fields", 2),
            ("too_many_fields", 1),
        ]
    );
    // The SQL-looking value is stored verbatim and the person table is intact.
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM lifestyle WHERE value = '''); DROP TABLE person; --'"
        )
        .await,
        1
    );
    assert_eq!(count(&client, "SELECT count(*) FROM person").await, 2);
    // Quarantine keeps the exact line: text, plus bytes where text cannot hold them.
    let bad_utf8 = client
        .query_one(
            "SELECT raw_line, raw_bytes, source_line FROM quarantine WHERE reason = 'invalid_utf8'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(bad_utf8.get::<_, Option<Vec<u8>>>(1).unwrap(), lines[3]);
    assert_eq!(bad_utf8.get::<_, i64>(2), 5);
    let short = client
        .query_one(
            "SELECT raw_line FROM quarantine WHERE reason = 'too_few_fields' ORDER BY source_line LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(short.get::<_, String>(0).as_bytes(), &lines[1][..]);
}

#[tokio::test]
async fn columns_are_matched_by_name_and_extras_are_kept() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let file = " PERSON_ID ,value,feature,report_date,Vendor_Note\n3585,no acute distress,Appearance,2034-03-17,scanned p.2\n";
    let r = load_bytes(
        &mut client,
        Table::Lifestyle,
        "lifestyle_reordered.csv",
        file.into(),
    )
    .await
    .unwrap();
    assert_eq!(r.loaded_rows, 1);
    let row = client
        .query_one(
            "SELECT person_id, feature, value, extras->>'vendor_note' FROM lifestyle",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3585);
    assert_eq!(row.get::<_, String>(1), "Appearance");
    assert_eq!(row.get::<_, String>(2), "no acute distress");
    assert_eq!(row.get::<_, String>(3), "scanned p.2");
}

#[tokio::test]
async fn unusable_files_fail_with_a_clear_error_and_leave_nothing() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let empty = load_bytes(&mut client, Table::Labs, "labs_empty.csv", Vec::new())
        .await
        .unwrap_err();
    assert!(empty.to_string().contains("labs_empty.csv"), "{empty}");
    assert!(format!("{:#}", anyhow::Error::from(empty)).contains("empty"));
    let missing = load_bytes(
        &mut client,
        Table::Labs,
        "labs_missing.csv",
        b"person_id,value\n1,2\n".to_vec(),
    )
    .await
    .unwrap_err();
    let text = format!("{:#}", anyhow::Error::from(missing));
    assert!(
        text.contains("labs_missing.csv") && text.contains("feature_date"),
        "{text}"
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM ingest_run WHERE status = 'failed'"
        )
        .await,
        2
    );
    assert_eq!(count(&client, "SELECT count(*) FROM labs").await, 0);
}

/// A source that fails half-way (a dropped network stream): nothing of the file may remain.
struct FailingReader {
    data: std::io::Cursor<Vec<u8>>,
    fail_after: u64,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.data.position() >= self.fail_after {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "stream reset",
            ));
        }
        let room = (self.fail_after - self.data.position()) as usize;
        let n = buf.len().min(room);
        self.data.read(&mut buf[..n])
    }
}

#[tokio::test]
async fn a_stream_that_breaks_midway_leaves_no_rows() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let bytes = sample("lifestyle_ae.csv");
    let reader = FailingReader {
        fail_after: bytes.len() as u64 / 2,
        data: std::io::Cursor::new(bytes),
    };
    let source = Source {
        table: Table::Lifestyle,
        name: "s3://bucket/raw/lifestyle/broken.csv".into(),
        version: Some("etag-1".into()),
        sha256: None,
    };
    let error = ingest(&mut client, source, reader).await.unwrap_err();
    assert!(matches!(error, IngestError::Read { .. }), "{error}");
    assert_eq!(count(&client, "SELECT count(*) FROM lifestyle").await, 0);
    assert_eq!(count(&client, "SELECT count(*) FROM person").await, 0);
    let failed: String = client
        .query_one("SELECT error FROM ingest_run WHERE status = 'failed'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(failed.contains("read error"), "{failed}");
}

#[tokio::test]
async fn a_condition_id_reused_for_other_content_is_quarantined() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let header = "id,impairment_category,impairment,feature_type,feature,icd_code,report_date,clinician_specialty,value,person_id\n";
    let first = format!("{header}105823,Cancer,BCC,Type,Type of cancer,C44.91,2034-05-07,General,Skin cancer,3613\n");
    let second = format!(
        "{header}105823,Cancer,BCC,Type,Type of cancer,C44.91,2034-05-07,General,Skin cancer,3613\n105823,Cancer,BCC,Type,Type of cancer,C44.91,2034-05-08,General,Skin cancer,3613\n"
    );
    load_bytes(
        &mut client,
        Table::Conditions,
        "conditions_1.csv",
        first.into(),
    )
    .await
    .unwrap();
    let r = load_bytes(
        &mut client,
        Table::Conditions,
        "conditions_2.csv",
        second.into(),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            r.raw_rows,
            r.loaded_rows,
            r.duplicate_rows,
            r.quarantined_rows
        ),
        (2, 0, 1, 1)
    );
    assert_eq!(r.quarantined_by_reason.get("conflicting_id"), Some(&1));
    let raw: String = client
        .query_one(
            "SELECT raw_line FROM quarantine WHERE reason = 'conflicting_id'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(raw.contains("2034-05-08"));
}

#[tokio::test]
async fn every_flag_reason_and_specialty_the_core_emits_is_allowed_by_the_schema() {
    let db = TestDb::migrated().await.unwrap();
    let client = db.client().await.unwrap();
    let flags: Vec<&str> = Flag::ALL.iter().map(|f| f.as_str()).collect();
    let ok: bool = client
        .query_one("SELECT quality_flags_ok($1::text[])", &[&flags])
        .await
        .unwrap()
        .get(0);
    assert!(ok);
    for specialty in medrec_core::clean::common::SPECIALTY_CODES {
        let ok: bool = client
            .query_one("SELECT specialty_ok($1)", &[&specialty])
            .await
            .unwrap()
            .get(0);
        assert!(ok, "{specialty}");
    }
    // quarantine.reason has a foreign key to this vocabulary (migrations/0008_vocabulary.sql).
    for reason in Reason::ALL {
        let known: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM quarantine_reason WHERE reason = $1)",
                &[&reason.as_str()],
            )
            .await
            .unwrap()
            .get(0);
        assert!(known, "{reason:?}");
    }
}

#[tokio::test]
async fn the_committed_schema_diagram_is_current() {
    let db = TestDb::migrated().await.unwrap();
    let client = db.client().await.unwrap();
    let rendered = medrec_store::schema_doc::render(&client).await.unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.md"))
            .unwrap_or_default();
    assert!(
        rendered == committed,
        "docs/schema.md is stale: run `make schema` and commit it"
    );
}

/// The (column, flag, rows) tallies of one run, sorted.
async fn run_flags(client: &Client, run_id: i64) -> Vec<(Option<String>, String, i64)> {
    client
        .query(
            "SELECT column_name, flag, rows FROM ingest_run_flag WHERE run_id = $1 ORDER BY 1, 2",
            &[&run_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn each_runs_flags_are_counted_per_source_column_as_the_file_is_cleaned() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    // Two placeholder dates on one row (two columns), an unknown drug, and that row again.
    let csv = "person_id,rx_name,rx_date,start_date,end_date\n\
               1,Zzqx Unknownium,2030-01-01,1926-07-01,07/01/1926\n\
               1,Zzqx Unknownium,2030-01-01,1926-07-01,07/01/1926\n\
               2,TAMSULOSIN,2030-01-02,,\n";
    let report = load_bytes(&mut client, Table::Rx, "rx_flags.csv", csv.into())
        .await
        .unwrap();
    assert_eq!((report.loaded_rows, report.duplicate_rows), (2, 1));
    let some = |c: &str| Some(c.to_owned());
    assert_eq!(
        run_flags(&client, report.run_id).await,
        vec![
            (some("end_date"), "placeholder_date".to_owned(), 2),
            (some("rx_name"), "unknown_drug".to_owned(), 2),
            (some("start_date"), "placeholder_date".to_owned(), 2),
        ]
    );
    let row = client
        .query_one(
            "SELECT cleaned_rows, flagged_rows FROM ingest_run WHERE run_id = $1",
            &[&report.run_id],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (3, 2));

    // The report reads them: per table and column, of the rows the cleaner kept.
    let quality = medrec_store::report::gather(&mut client, false)
        .await
        .unwrap();
    let end_date = quality
        .flags
        .iter()
        .find(|f| f.column.as_deref() == Some("end_date"))
        .unwrap();
    assert_eq!((end_date.table.as_str(), end_date.rows), ("rx", 2));
    assert!((end_date.rate - 2.0 / 3.0).abs() < 1e-9, "{end_date:?}");
    let source = &quality.sources[0];
    assert!((source.flagged_rate - 2.0 / 3.0).abs() < 1e-9, "{source:?}");
}

#[tokio::test]
async fn runs_loaded_before_flags_were_counted_get_them_from_their_rows() {
    let db = TestDb::with_sample().await.unwrap();
    let client = db.client().await.unwrap();
    // The state before migration 0015, then its back-fill.
    let (_, migration) = medrec_store::MIGRATIONS
        .iter()
        .find(|(name, _)| name.starts_with("0015"))
        .unwrap();
    let backfill = &migration[migration
        .find("CREATE TEMPORARY TABLE run_flag_backfill")
        .unwrap()..];
    client
        .batch_execute(&format!(
            "DELETE FROM ingest_run_flag;
             UPDATE ingest_run SET cleaned_rows = NULL, flagged_rows = NULL;
             {backfill}"
        ))
        .await
        .unwrap();
    let unmatched = count(
        &client,
        "WITH counted AS (
             SELECT run_id, flag, count(*) AS rows FROM (
                 SELECT run_id, unnest(flags) AS flag FROM lifestyle
                 UNION ALL SELECT run_id, unnest(flags) FROM rx
                 UNION ALL SELECT run_id, unnest(flags) FROM conditions
                 UNION ALL SELECT run_id, unnest(flags) FROM labs
                 UNION ALL SELECT run_id, unnest(flags) FROM tests) f
             GROUP BY 1, 2)
         SELECT count(*) FROM counted c
         FULL JOIN (SELECT * FROM ingest_run_flag WHERE column_name IS NULL) r USING (run_id, flag)
         WHERE c.rows IS DISTINCT FROM r.rows",
    )
    .await;
    assert_eq!(unmatched, 0);
    assert!(count(&client, "SELECT count(*) FROM ingest_run_flag").await > 0);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM ingest_run
             WHERE cleaned_rows IS DISTINCT FROM loaded_rows + duplicate_rows"
        )
        .await,
        0
    );
}
