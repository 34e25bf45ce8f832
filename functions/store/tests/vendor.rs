//! Per-person vendor files against a real PostgreSQL: replace, ordering, idempotency, bad files,
//! and concurrent ingestion of different persons while readers read, with no lock waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use medrec_core::vendor::{VendorReason, MAX_FILE_BYTES};
use medrec_core::Table;
use medrec_store::person::{document, ResourceFilter};
use medrec_store::vendor::{ingest_vendor_file, VendorSource, VendorStatus};
use medrec_store::{ingest, Source};
use medrec_testkit::{count, TestDb};
use serde_json::{json, Value as Json};
use tokio_postgres::Client;

/// A vendor file: `lifestyle` rows with the given values (one row each), one rx row tagged by
/// the version, and one condition with the given id.
fn vendor_file(
    vendor: &str,
    person: i64,
    version: i64,
    values: &[&str],
    condition: i64,
) -> Vec<u8> {
    let lifestyle: Vec<Json> = values
        .iter()
        .map(|v| json!({"feature": "Smoking", "report_date": "2030-01-02", "value": v}))
        .collect();
    serde_json::to_vec(&json!({
        "schema": "medrec.vendor-person.v1",
        "vendor_id": vendor,
        "person_id": person.to_string(),
        "version": version,
        "updated_at": "2026-11-21T08:30:00Z",
        "lifestyle": lifestyle,
        "rx": [{"rx_name": format!("Tamsulosin v{version}"), "rx_date": "2030-01-03"}],
        "conditions": [{"id": condition.to_string(), "feature": "Back pain", "value": format!("v{version}"),
                        "report_date": "2030-01-04", "icd_code": "M54.5"}],
        "labs": [],
        "tests": [],
    }))
    .unwrap()
}

async fn load(client: &mut Client, name: &str, bytes: Vec<u8>) -> VendorStatus {
    let source = VendorSource {
        name: name.to_owned(),
        version: None,
    };
    ingest_vendor_file(client, &source, bytes)
        .await
        .unwrap()
        .status
}

async fn values(client: &Client, person: i64) -> Vec<String> {
    client
        .query(
            "SELECT value FROM lifestyle WHERE person_id = $1 ORDER BY value",
            &[&person],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every clean table's and the lineage's contents, to show that something changed nothing.
async fn checksum(client: &Client) -> String {
    let lineage = ["person", "quarantine", "ingest_run", "vendor_person"];
    let tables: Vec<&str> = Table::ALL
        .map(|t| t.name())
        .into_iter()
        .chain(lineage)
        .collect();
    medrec_testkit::checksum(client, &tables).await
}

#[tokio::test]
async fn a_newer_version_replaces_the_persons_vendor_rows_and_nothing_else() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    // A CSV row of the same person, and another vendor's file of the same person.
    let csv = b"person_id,feature,value,report_date\n7,Smoking,from csv,2030-01-01\n".to_vec();
    let source = Source {
        table: Table::Lifestyle,
        name: "lifestyle_csv.csv".into(),
        version: None,
        sha256: None,
    };
    ingest(&mut client, source, std::io::Cursor::new(csv))
        .await
        .unwrap();
    assert_eq!(
        load(
            &mut client,
            "b1",
            vendor_file("vendor-b", 7, 1, &["from b"], 99)
        )
        .await,
        VendorStatus::Loaded
    );

    let v1 = vendor_file("vendor-a", 7, 1, &["never", "former", "former"], 10);
    assert_eq!(load(&mut client, "a1", v1).await, VendorStatus::Loaded);
    assert_eq!(
        values(&client, 7).await,
        ["former", "from b", "from csv", "never"]
    );
    let dup: i64 = count(
        &client,
        "SELECT duplicate_rows FROM vendor_file WHERE source = 'a1'",
    )
    .await;
    assert_eq!(dup, 1);

    let v2 = vendor_file("vendor-a", 7, 2, &["current"], 10);
    assert_eq!(load(&mut client, "a2", v2).await, VendorStatus::Loaded);
    assert_eq!(values(&client, 7).await, ["current", "from b", "from csv"]);
    // The condition's id is the same in both versions: replaced, not a conflict.
    let condition: String = client
        .query_one("SELECT value FROM conditions WHERE id = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(condition, "v2");
    assert_eq!(count(&client, "SELECT count(*) FROM quarantine").await, 0);
    assert_eq!(
        count(&client, "SELECT count(*) FROM rx WHERE person_id = 7").await,
        2,
        "vendor-a's v2 rx row and vendor-b's"
    );
    let stored: i64 = count(
        &client,
        "SELECT version FROM vendor_person WHERE vendor_id = 'vendor-a' AND person_id = 7",
    )
    .await;
    assert_eq!(stored, 2);
    // Every run conserves its rows (the CHECK would have refused otherwise) and is 'loaded'.
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM ingest_run WHERE status <> 'loaded'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_late_older_version_cannot_roll_a_person_back() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let v3 = vendor_file("vendor-a", 8, 3, &["v3"], 20);
    assert_eq!(load(&mut client, "v3", v3).await, VendorStatus::Loaded);
    let before = checksum(&client).await;
    for (name, version) in [("v2", 2), ("v1", 1), ("v3-other", 3)] {
        let file = vendor_file("vendor-a", 8, version, &[name], 20);
        assert_eq!(
            load(&mut client, name, file).await,
            VendorStatus::Ignored {
                reason: "not_newer",
                stored_version: 3
            },
            "{name}"
        );
    }
    assert_eq!(checksum(&client).await, before);
    assert_eq!(values(&client, 8).await, ["v3"]);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM vendor_file WHERE status = 'ignored'"
        )
        .await,
        3
    );
    let v4 = vendor_file("vendor-a", 8, 4, &["v4"], 20);
    assert_eq!(load(&mut client, "v4", v4).await, VendorStatus::Loaded);
    assert_eq!(values(&client, 8).await, ["v4"]);
}

#[tokio::test]
async fn the_same_file_twice_is_a_no_op() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let file = vendor_file("vendor-a", 9, 1, &["never", "former"], 30);
    assert_eq!(
        load(&mut client, "f", file.clone()).await,
        VendorStatus::Loaded
    );
    let before = checksum(&client).await;
    assert_eq!(
        load(&mut client, "f", file).await,
        VendorStatus::Ignored {
            reason: "same_file",
            stored_version: 1
        }
    );
    assert_eq!(checksum(&client).await, before);
}

#[tokio::test]
async fn bad_files_among_good_ones_are_rejected_with_a_reason_and_touch_nothing() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    assert_eq!(
        load(
            &mut client,
            "good1",
            vendor_file("vendor-a", 11, 1, &["a"], 40)
        )
        .await,
        VendorStatus::Loaded
    );
    let good = String::from_utf8(vendor_file("vendor-a", 12, 1, &["b"], 41)).unwrap();
    let mut oversized = good.clone().into_bytes();
    oversized.resize(MAX_FILE_BYTES as usize + 1, b' ');
    let bad: Vec<(&str, Vec<u8>, VendorReason)> = vec![
        (
            "truncated",
            good.as_bytes()[..good.len() / 2].to_vec(),
            VendorReason::InvalidJson,
        ),
        (
            "schema",
            good.replace("medrec.vendor-person.v1", "medrec.vendor-person.v0")
                .into_bytes(),
            VendorReason::WrongSchema,
        ),
        (
            "person",
            good.replace("\"12\"", "\"P-12\"").into_bytes(),
            VendorReason::InvalidPersonId,
        ),
        ("oversized", oversized, VendorReason::TooLarge),
    ];
    for (name, bytes, expected) in bad {
        let before = checksum(&client).await;
        match load(&mut client, name, bytes).await {
            VendorStatus::Rejected { reason, .. } => assert_eq!(reason, expected, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(checksum(&client).await, before, "{name} touched something");
    }
    assert_eq!(
        load(&mut client, "good2", good.into_bytes()).await,
        VendorStatus::Loaded
    );
    let reasons: Vec<String> = client
        .query(
            "SELECT reason FROM vendor_file WHERE status = 'rejected' ORDER BY file_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        reasons,
        [
            "invalid_json",
            "wrong_schema",
            "invalid_person_id",
            "too_large"
        ]
    );
    assert_eq!(values(&client, 11).await, ["a"]);
    assert_eq!(values(&client, 12).await, ["b"]);
}

#[tokio::test]
async fn rows_about_another_person_are_quarantined_and_accounted_for() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let mut file: Json =
        serde_json::from_slice(&vendor_file("vendor-a", 13, 1, &["a"], 50)).unwrap();
    file["lifestyle"].as_array_mut().unwrap().push(
        json!({"person_id": "14", "feature": "Smoking", "report_date": "2030-01-02", "value": "x"}),
    );
    file["lifestyle"]
        .as_array_mut()
        .unwrap()
        .push(json!({"feature": null, "report_date": "2030-01-02", "value": "x"}));
    let report = ingest_vendor_file(
        &mut client,
        &VendorSource {
            name: "mixed".into(),
            version: None,
        },
        serde_json::to_vec(&file).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(report.status, VendorStatus::Loaded);
    assert_eq!(report.rows.raw, 5);
    assert_eq!(report.rows.loaded, 3);
    assert_eq!(report.rows.quarantined, 2);
    let reasons: Vec<(i64, String)> = client
        .query(
            "SELECT q.source_line, q.reason FROM quarantine q JOIN ingest_run r USING (run_id)
             WHERE r.table_name = 'lifestyle' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        reasons,
        [
            (2, "invalid_person_id".to_owned()),
            (3, "missing_required_value".to_owned())
        ]
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM person WHERE person_id = 14").await,
        0
    );
}

/// Relation-level locks stronger than ROW EXCLUSIVE held by anyone on a permanent relation.
async fn strong_locks(client: &Client) -> i64 {
    count(
        client,
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
         WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND c.relpersistence = 'p'
           AND l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock')",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_persons_never_wait_on_each_other_and_readers_never_see_half_a_person() {
    const PERSONS: i64 = 24;
    const VERSIONS: i64 = 6;
    const WRITERS: i64 = 4;
    let db = TestDb::migrated().await.unwrap();
    {
        let mut client = db.client().await.unwrap();
        for p in 1..=PERSONS {
            let file = vendor_file("vendor-a", 100 + p, 1, &["v1-a", "v1-b"], 1000 + p);
            assert_eq!(load(&mut client, "seed", file).await, VendorStatus::Loaded);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pool = medrec_store::pool(&db.config, 2).unwrap();
    let mut readers = Vec::new();
    for r in 0..2 {
        let client = pool.get().await.unwrap();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            client
                .batch_execute("SET lock_timeout = '50ms'")
                .await
                .unwrap();
            let mut reads = 0u64;
            let mut p = r;
            while !stop.load(Ordering::Relaxed) {
                p = p % PERSONS + 1;
                let doc = document(&client, 100 + p, &ResourceFilter::default())
                    .await
                    .expect("a reader never fails or waits")
                    .expect("the person exists");
                let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
                // Each version has two lifestyle rows, one rx row and one condition, all tagged
                // with that version: any mix would be a half-applied person.
                let data = &doc["data"];
                let lifestyle = data["lifestyle"].as_array().unwrap();
                assert_eq!(lifestyle.len(), 2, "{doc}");
                let tag = lifestyle[0]["value"].as_str().unwrap()[..2].to_owned();
                assert!(lifestyle
                    .iter()
                    .all(|row| row["value"].as_str().unwrap().starts_with(&tag)));
                let rx = data["rx"].as_array().unwrap();
                assert_eq!(rx.len(), 1);
                assert!(rx[0]["rx_name"].as_str().unwrap().ends_with(&tag), "{doc}");
                let conditions = data["conditions"].as_array().unwrap();
                assert_eq!(conditions[0]["value"].as_str().unwrap(), tag);
                reads += 1;
            }
            reads
        }));
    }
    let monitor = {
        let client = db.client().await.unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut worst = 0;
            while !stop.load(Ordering::Relaxed) {
                worst = worst.max(strong_locks(&client).await);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            worst
        })
    };
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut client = db.client().await.unwrap();
        writers.push(tokio::spawn(async move {
            client
                .batch_execute("SET lock_timeout = '50ms'")
                .await
                .unwrap();
            let mut loaded = 0;
            for version in 2..=VERSIONS {
                // Each writer owns a disjoint set of persons.
                for p in (1..=PERSONS).filter(|p| p % WRITERS == w) {
                    let tag = format!("v{version}");
                    let values = [format!("{tag}-a"), format!("{tag}-b")];
                    let values: Vec<&str> = values.iter().map(String::as_str).collect();
                    let file = vendor_file("vendor-a", 100 + p, version, &values, 1000 + p);
                    let status = ingest_vendor_file(
                        &mut client,
                        &VendorSource {
                            name: format!("p{p}-v{version}"),
                            version: None,
                        },
                        file,
                    )
                    .await
                    .expect("a writer never fails or waits");
                    assert_eq!(status.status, VendorStatus::Loaded);
                    loaded += 1;
                }
            }
            loaded
        }));
    }
    let mut loaded = 0;
    for w in writers {
        loaded += w.await.unwrap();
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    let worst = monitor.await.unwrap();
    assert_eq!(loaded, PERSONS * (VERSIONS - 1));
    assert!(reads > 0);
    assert_eq!(
        worst, 0,
        "a relation lock stronger than ROW EXCLUSIVE was seen"
    );
    eprintln!(
        "{loaded} files by {WRITERS} writers in {elapsed:?} while {reads} documents were read"
    );
    let client = db.client().await.unwrap();
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM vendor_person WHERE version <> 6"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_person_from_two_writers_serialises_on_its_row_and_keeps_the_newest() {
    let db = TestDb::migrated().await.unwrap();
    let mut tasks = Vec::new();
    for version in 1..=8i64 {
        let mut client = db.client().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let tag = format!("v{version}");
            let file = vendor_file("vendor-a", 77, version, &[&tag], 7700);
            ingest_vendor_file(
                &mut client,
                &VendorSource {
                    name: tag.clone(),
                    version: None,
                },
                file,
            )
            .await
            .unwrap()
            .status
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let client = db.client().await.unwrap();
    assert_eq!(values(&client, 77).await, ["v8"]);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM conditions WHERE person_id = 77"
        )
        .await,
        1
    );
}
