//! The clean and vendor functions' handler over the in-memory source and sink (no LocalStack):
//! SQS batches of S3 notifications, partial batch failures, and what is settled rather than
//! retried. The S3 and SQS adapters themselves run in local/tests/serverless_loop.rs.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use medrec_core::Table;
use medrec_lambda::objects::ObjectsFunction;
use medrec_pipeline::memory::{MemorySource, RecordingSink};
use medrec_pipeline::{Accepts, Pipeline};
use medrec_testkit::events::{s3_notification, sqs_event, sqs_message};
use medrec_testkit::{sample, TestDb};
use serde_json::json;

const BUCKET: &str = "medrec-raw";

/// An SQS message whose body is S3's notification of `keys` (URL-encoded as S3 does).
fn notification(id: &str, keys: &[(&str, &str)]) -> SqsMessage {
    sqs_message(id, &s3_notification(BUCKET, keys).to_string())
}

fn failed(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

fn put(source: &MemorySource, key: &str, etag: &str, bytes: Vec<u8>) {
    source.put(&format!("s3://{BUCKET}/{key}"), Some(etag), bytes);
}

fn function(db: &TestDb, accepts: Accepts) -> ObjectsFunction<MemorySource, RecordingSink> {
    let pool = medrec_store::pool(&db.config, 2).unwrap();
    ObjectsFunction::new(
        Pipeline::new(pool, MemorySource::new(), RecordingSink::new()),
        accepts,
    )
}

#[tokio::test]
async fn the_clean_function_loads_settles_bad_files_and_retries_only_what_can_heal() {
    let db = TestDb::migrated().await.unwrap();
    let function = function(&db, Accepts::Raw(Some(Table::Rx)));
    let source = function.pipeline().source();
    put(source, "raw/rx/rx file.csv", "e1", sample("rx_ae.csv"));
    put(
        source,
        "raw/rx/broken.csv",
        "e1",
        b"nothing,useful\n1,2\n".to_vec(),
    );
    source.break_object(&format!("s3://{BUCKET}/raw/rx/unreachable.csv"));

    let response = function
        .handle(sqs_event(vec![
            notification("good", &[("raw/rx/rx file.csv", "e1")]),
            notification("bad-file", &[("raw/rx/broken.csv", "e1")]),
            notification("unreachable", &[("raw/rx/unreachable.csv", "e1")]),
            notification("other-table", &[("raw/labs/labs.csv", "e1")]),
            notification("overwritten", &[("raw/rx/rx file.csv", "e0")]),
            sqs_message("poison", "not a notification"),
        ]))
        .await;
    // The unusable CSV and the misrouted object are recorded and acknowledged; the unreadable
    // object and the poisoned message are retried (and at last dead-lettered).
    assert_eq!(failed(&response), ["unreachable", "poison"]);
    assert_eq!(
        db.count("SELECT count(*) FROM object_receipt WHERE outcome = 'refused' AND source LIKE '%raw/labs/labs.csv'").await,
        1
    );
    assert_eq!(
        db.count("SELECT count(*) FROM ingest_run WHERE status = 'loaded' AND source = 's3://medrec-raw/raw/rx/rx file.csv'").await,
        1
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM ingest_run WHERE status = 'failed' AND source LIKE '%broken.csv'"
        )
        .await,
        1
    );
    let persons = function.pipeline().sink().persons();
    assert_eq!(
        persons.len() as i64,
        db.count("SELECT count(DISTINCT person_id) FROM rx").await
    );

    // A redelivery of the loaded object announces its persons again and loads nothing.
    let rows = db.count("SELECT count(*) FROM rx").await;
    let again = function
        .handle(sqs_event(vec![notification(
            "good-again",
            &[("raw/rx/rx file.csv", "e1")],
        )]))
        .await;
    assert!(failed(&again).is_empty());
    assert_eq!(db.count("SELECT count(*) FROM rx").await, rows);
    let announcements = function.pipeline().sink().announcements();
    assert_eq!(announcements.len(), 2);
    assert_eq!(announcements[0], announcements[1]);
}

#[tokio::test]
async fn the_vendor_function_loads_rejects_and_reannounces() {
    let db = TestDb::migrated().await.unwrap();
    let function = function(&db, Accepts::Vendor);
    let source = function.pipeline().source();
    let file = json!({
        "schema": "medrec.vendor-person.v1",
        "vendor_id": "acme",
        "person_id": "42",
        "version": 1,
        "updated_at": "2026-11-21T08:30:00Z",
        "lifestyle": [{"feature": "Smoking", "report_date": "2030-01-02", "value": "never"}],
        "rx": [], "conditions": [], "labs": [], "tests": []
    });
    put(
        source,
        "vendor/42.json",
        "e1",
        file.to_string().into_bytes(),
    );
    put(source, "vendor/bad.json", "e1", b"[]".to_vec());
    let response = function
        .handle(sqs_event(vec![
            notification("p42", &[("vendor/42.json", "e1")]),
            notification("bad", &[("vendor/bad.json", "e1")]),
            notification("raw", &[("raw/rx/x.csv", "e1")]),
            notification("p42-again", &[("vendor/42.json", "e1")]),
        ]))
        .await;
    assert!(failed(&response).is_empty());
    assert_eq!(
        function.pipeline().sink().announcements(),
        vec![vec![42], vec![42]]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM vendor_file WHERE status = 'rejected'")
            .await,
        1
    );
    assert_eq!(
        db.count("SELECT count(*) FROM vendor_file WHERE status = 'ignored'")
            .await,
        1
    );
}
