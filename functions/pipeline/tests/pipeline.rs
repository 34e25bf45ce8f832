//! The use cases over the in-memory source and sink, against a real PostgreSQL: what both the
//! Lambdas and the `medrec` command rely on.

use medrec_core::vendor::MAX_FILE_BYTES;
use medrec_pipeline::memory::{MemorySource, RecordingSink};
use medrec_pipeline::{Accepts, ErrorKind, ObjectKind, ObjectRef, Pipeline, Processed};
use medrec_store::vendor::VendorStatus;
use medrec_store::RunStatus;
use medrec_testkit::{sample, TestDb};
use serde_json::json;

type TestPipeline = Pipeline<MemorySource, RecordingSink>;

async fn pipeline(db: &TestDb) -> TestPipeline {
    let pool = medrec_store::pool(&db.config, 3).unwrap();
    Pipeline::new(pool, MemorySource::new(), RecordingSink::new())
}

fn object(name: &str, version: &str) -> ObjectRef {
    ObjectRef {
        name: name.to_owned(),
        version: Some(version.to_owned()),
    }
}

async fn rx_persons(db: &TestDb) -> Vec<i64> {
    db.client()
        .await
        .unwrap()
        .query("SELECT DISTINCT person_id FROM rx ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn vendor_file(person: i64, version: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schema": "medrec.vendor-person.v1",
        "vendor_id": "acme",
        "person_id": person.to_string(),
        "version": version,
        "updated_at": "2026-11-21T08:30:00Z",
        "lifestyle": [{"feature": "Smoking", "report_date": "2030-01-02", "value": "never"}],
        "rx": [{"rx_name": "Tamsulosin", "rx_date": "2030-01-03"}],
        "conditions": [],
        "labs": [],
        "tests": [],
    }))
    .unwrap()
}

const RX_KEY: &str = "raw/rx/rx_ae.csv";
const RX_NAME: &str = "s3://bucket/raw/rx/rx_ae.csv";

#[tokio::test]
async fn a_csv_is_loaded_and_its_persons_announced_and_a_redelivery_is_not_read_again() {
    let db = TestDb::migrated().await.unwrap();
    let pipeline = pipeline(&db).await;
    pipeline
        .source()
        .put(RX_NAME, Some("e1"), sample("rx_ae.csv"));

    let first = pipeline
        .notified(
            RX_KEY,
            &object(RX_NAME, "e1"),
            Accepts::Raw(Some(medrec_core::Table::Rx)),
        )
        .await
        .unwrap();
    let Processed::Csv(report) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(report.status, RunStatus::Loaded);
    let persons = rx_persons(&db).await;
    assert!(!persons.is_empty());
    assert_eq!(pipeline.sink().announcements(), vec![persons.clone()]);

    // The redelivery finds the loaded version before reading (the object is unreadable now)
    // and announces the same persons again.
    pipeline.source().break_object(RX_NAME);
    let runs = db.count("SELECT count(*) FROM ingest_run").await;
    let again = pipeline
        .notified(RX_KEY, &object(RX_NAME, "e1"), Accepts::Raw(None))
        .await
        .unwrap();
    let Processed::Csv(report) = &again else {
        panic!("{again:?}")
    };
    assert!(matches!(report.status, RunStatus::AlreadyLoaded { .. }));
    assert_eq!(report.persons, persons);
    assert_eq!(
        pipeline.sink().announcements(),
        vec![persons.clone(), persons]
    );
    assert_eq!(db.count("SELECT count(*) FROM ingest_run").await, runs);
    // Both attempts are on record.
    assert_eq!(
        db.count("SELECT count(*) FROM object_receipt WHERE outcome IN ('loaded', 'already_loaded') AND run_id IS NOT NULL AND persons > 0").await,
        2
    );
}

#[tokio::test]
async fn the_same_content_under_another_name_is_already_loaded_with_its_persons() {
    let db = TestDb::migrated().await.unwrap();
    let source = MemorySource::new();
    source.put(RX_NAME, Some("e1"), sample("rx_ae.csv"));
    source.put(
        "s3://bucket/raw/rx/copy.csv",
        Some("e9"),
        sample("rx_ae.csv"),
    );
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 2).unwrap(),
        source,
        RecordingSink::new(),
    );
    pipeline
        .object_arrived(
            ObjectKind::Csv(medrec_core::Table::Rx),
            &object(RX_NAME, "e1"),
        )
        .await
        .unwrap();
    let copy = pipeline
        .object_arrived(
            ObjectKind::Csv(medrec_core::Table::Rx),
            &object("s3://bucket/raw/rx/copy.csv", "e9"),
        )
        .await
        .unwrap();
    let Processed::Csv(report) = copy else {
        panic!("{copy:?}")
    };
    assert!(matches!(report.status, RunStatus::AlreadyLoaded { .. }));
    assert_eq!(report.persons, rx_persons(&db).await);
    assert_eq!(pipeline.sink().announcements().len(), 2);
}

#[tokio::test]
async fn an_unusable_csv_is_recorded_and_settled_not_retried() {
    let db = TestDb::migrated().await.unwrap();
    let source = MemorySource::new();
    let name = "s3://bucket/raw/labs/broken.csv";
    source.put(name, Some("e1"), b"no,such,columns\n1,2,3\n".to_vec());
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 2).unwrap(),
        source,
        RecordingSink::new(),
    );
    let outcome = pipeline
        .notified(
            "raw/labs/broken.csv",
            &object(name, "e1"),
            Accepts::Raw(None),
        )
        .await
        .unwrap();
    let Processed::Refused(error) = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(error.kind(), ErrorKind::Permanent);
    assert!(error.to_string().starts_with(name), "{error}");
    assert_eq!(
        db.count("SELECT count(*) FROM ingest_run WHERE status = 'failed' AND error IS NOT NULL")
            .await,
        1
    );
    assert!(pipeline.sink().announcements().is_empty());
    assert_eq!(
        db.count("SELECT count(*) FROM object_receipt WHERE outcome = 'rejected' AND reason LIKE 'unusable file: %'").await,
        1
    );

    // Called directly (as the command does), the same failure is an error to report.
    let direct = pipeline
        .object_arrived(
            ObjectKind::Csv(medrec_core::Table::Labs),
            &object(name, "e1"),
        )
        .await
        .unwrap_err();
    assert!(!direct.should_retry());
}

#[tokio::test]
async fn a_csv_over_the_functions_size_limit_is_rejected_unread_with_its_reason() {
    let db = TestDb::migrated().await.unwrap();
    let source = MemorySource::new();
    let rx = sample("rx_ae.csv");
    let limit = rx.len() as u64 - 1;
    source.put(RX_NAME, Some("e1"), rx);
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 2).unwrap(),
        source,
        RecordingSink::new(),
    )
    .with_max_csv_bytes(limit);
    let outcome = pipeline
        .notified(RX_KEY, &object(RX_NAME, "e1"), Accepts::Raw(None))
        .await
        .unwrap();
    let Processed::Refused(error) = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(!error.should_retry());
    assert!(error.message().contains("over the limit"), "{error}");
    assert_eq!(
        db.count("SELECT count(*) FROM ingest_run").await,
        0,
        "unread"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM object_receipt WHERE outcome = 'rejected' AND reason LIKE '%over the limit of%split it%'").await,
        1
    );
    // At the limit, it loads.
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 2).unwrap(),
        MemorySource::new(),
        RecordingSink::new(),
    )
    .with_max_csv_bytes(limit + 1);
    pipeline
        .source()
        .put(RX_NAME, Some("e2"), sample("rx_ae.csv"));
    let loaded = pipeline
        .notified(RX_KEY, &object(RX_NAME, "e2"), Accepts::Raw(None))
        .await
        .unwrap();
    assert!(matches!(loaded, Processed::Csv(_)), "{loaded:?}");
}

#[tokio::test]
async fn failures_worth_retrying_are_errors_and_a_retry_heals_them() {
    let db = TestDb::migrated().await.unwrap();
    let source = MemorySource::new();
    source.break_object(RX_NAME);
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 2).unwrap(),
        source,
        RecordingSink::new(),
    );
    let unreadable = pipeline
        .notified(RX_KEY, &object(RX_NAME, "e1"), Accepts::Raw(None))
        .await
        .unwrap_err();
    assert_eq!(unreadable.kind(), ErrorKind::Transient);
    assert!(unreadable.should_retry());
    assert_eq!(db.count("SELECT count(*) FROM ingest_run").await, 0);
    assert_eq!(
        db.count("SELECT count(*) FROM object_receipt WHERE outcome = 'failed'")
            .await,
        1
    );

    // Loaded, but the announcement failed: the retry finds the load and announces.
    let source = MemorySource::new();
    source.put(RX_NAME, Some("e1"), sample("rx_ae.csv"));
    let pipeline = Pipeline::new(pipeline.pool().clone(), source, RecordingSink::new());
    pipeline.sink().fail(true);
    let unannounced = pipeline
        .notified(RX_KEY, &object(RX_NAME, "e1"), Accepts::Raw(None))
        .await
        .unwrap_err();
    assert!(unannounced.should_retry());
    assert_eq!(
        db.count("SELECT count(*) FROM ingest_run WHERE status = 'loaded'")
            .await,
        1
    );
    pipeline.sink().fail(false);
    pipeline
        .notified(RX_KEY, &object(RX_NAME, "e1"), Accepts::Raw(None))
        .await
        .unwrap();
    assert_eq!(pipeline.sink().persons(), rx_persons(&db).await);
}

#[tokio::test]
async fn overwritten_objects_are_superseded_and_misrouted_ones_refused_on_record() {
    let db = TestDb::migrated().await.unwrap();
    let source = MemorySource::new();
    source.put(RX_NAME, Some("e2"), sample("rx_ae.csv"));
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 2).unwrap(),
        source,
        RecordingSink::new(),
    );
    let old = pipeline
        .notified(RX_KEY, &object(RX_NAME, "e1"), Accepts::Raw(None))
        .await
        .unwrap();
    assert!(matches!(old, Processed::Superseded), "{old:?}");
    let gone = pipeline
        .notified(
            "raw/rx/gone.csv",
            &object("s3://bucket/raw/rx/gone.csv", "e1"),
            Accepts::Raw(None),
        )
        .await
        .unwrap();
    assert!(matches!(gone, Processed::Superseded), "{gone:?}");

    for (key, accepts) in [
        (RX_KEY, Accepts::Raw(Some(medrec_core::Table::Labs))),
        (RX_KEY, Accepts::Vendor),
        ("raw/vitals/x.csv", Accepts::Raw(None)),
        ("elsewhere/x.csv", Accepts::Any),
    ] {
        let refused = pipeline
            .notified(key, &object(RX_NAME, "e2"), accepts)
            .await
            .unwrap();
        // On record with the reason, so settled rather than retried.
        let Processed::Refused(error) = refused else {
            panic!("{key}: {refused:?}")
        };
        assert_eq!(error.kind(), ErrorKind::Permanent, "{key}");
        assert!(!error.should_retry(), "{key}");
    }
    assert_eq!(
        db.count(
            "SELECT count(*) FROM object_receipt WHERE outcome = 'refused' AND reason IS NOT NULL"
        )
        .await,
        4
    );
    assert_eq!(
        db.count("SELECT count(*) FROM object_receipt WHERE outcome = 'superseded'")
            .await,
        2
    );
    assert_eq!(db.count("SELECT count(*) FROM ingest_run").await, 0);
    assert!(pipeline.sink().announcements().is_empty());
}

#[tokio::test]
async fn vendor_files_load_are_ignored_when_not_newer_and_rejected_with_a_reason() {
    let db = TestDb::migrated().await.unwrap();
    let source = MemorySource::new();
    source.put("s3://bucket/vendor/p7.json", Some("e1"), vendor_file(7, 1));
    source.put(
        "s3://bucket/vendor/bad.json",
        Some("e1"),
        b"{not json".to_vec(),
    );
    source.put(
        "s3://bucket/vendor/huge.json",
        Some("e1"),
        vec![b' '; MAX_FILE_BYTES as usize + 1],
    );
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 2).unwrap(),
        source,
        RecordingSink::new(),
    );
    let notified = |name: &str| {
        let key = name.trim_start_matches("s3://bucket/").to_owned();
        let object = object(name, "e1");
        let pipeline = &pipeline;
        async move {
            pipeline
                .notified(&key, &object, Accepts::Vendor)
                .await
                .unwrap()
        }
    };
    let Processed::Vendor(loaded) = notified("s3://bucket/vendor/p7.json").await else {
        panic!()
    };
    assert_eq!(loaded.status, VendorStatus::Loaded);
    assert_eq!(pipeline.sink().announcements(), vec![vec![7]]);

    let Processed::Vendor(again) = notified("s3://bucket/vendor/p7.json").await else {
        panic!()
    };
    assert!(
        matches!(again.status, VendorStatus::Ignored { .. }),
        "{:?}",
        again.status
    );
    assert_eq!(pipeline.sink().announcements(), vec![vec![7], vec![7]]);

    for (name, reason) in [
        ("s3://bucket/vendor/bad.json", "invalid_json"),
        ("s3://bucket/vendor/huge.json", "too_large"),
    ] {
        let Processed::Vendor(rejected) = notified(name).await else {
            panic!()
        };
        let VendorStatus::Rejected { reason: got, .. } = rejected.status else {
            panic!("{name}: {:?}", rejected.status)
        };
        assert_eq!(got.as_str(), reason, "{name}");
    }
    assert_eq!(pipeline.sink().announcements().len(), 2);
    assert_eq!(
        db.count("SELECT count(*) FROM vendor_file WHERE status = 'rejected'")
            .await,
        2
    );
    let ledger: String = db
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT string_agg(outcome || ':' || coalesce(reason, ''), ',' ORDER BY receipt_id)
             FROM object_receipt WHERE kind = 'vendor' AND file_id IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        ledger,
        "loaded:,ignored:same_file,rejected:invalid_json,rejected:too_large"
    );
}

#[tokio::test]
async fn many_objects_come_back_in_their_order() {
    let db = TestDb::migrated().await.unwrap();
    let source = MemorySource::new();
    let mut objects = Vec::new();
    for table in medrec_core::Table::ALL {
        let file = format!("{}_ae.csv", table.name());
        let name = format!("/data/{file}");
        source.put(&name, Some("v1"), sample(&file));
        objects.push((ObjectKind::Csv(table), object(&name, "v1")));
    }
    for person in 1..=4 {
        let name = format!("/data/p{person}.json");
        source.put(&name, Some("v1"), vendor_file(9000 + person, 1));
        objects.push((ObjectKind::Vendor, object(&name, "v1")));
    }
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 3).unwrap(),
        source,
        RecordingSink::new(),
    );
    let names: Vec<String> = objects.iter().map(|(_, o)| o.name.clone()).collect();
    let outcomes = pipeline.objects_arrived(objects, 3).await;
    let got: Vec<String> = outcomes.iter().map(|(o, _)| o.name.clone()).collect();
    assert_eq!(got, names);
    assert!(outcomes
        .iter()
        .all(|(_, r)| r.as_ref().is_ok_and(|p| p.summary() == "loaded")));
    assert_eq!(db.count("SELECT count(*) FROM person").await, 54);
    let client = db.client().await.unwrap();
    // Everyone was announced: refreshed in two parts, the second on the helper connection.
    let helper = db.client().await.unwrap();
    let refreshed = medrec_pipeline::persons_changed(
        &client,
        &[&helper],
        &pipeline.sink().persons(),
        medrec_pipeline::Owed::All,
    )
    .await
    .unwrap();
    assert_eq!(refreshed.total(), 54);
    assert_eq!(db.count("SELECT count(*) FROM person_features").await, 54);
    assert_eq!(db.count("SELECT count(*) FROM features_owed").await, 0);
}
