//! "An export was asked for" over the in-memory bucket, against a real PostgreSQL: a spine
//! becomes the Parquet file the command writes for it and a manifest; a full export every
//! person; bad requests a report and no retry; failures of the bucket a retry.

use medrec_pipeline::feature_file::{self, Format};
use medrec_pipeline::memory::{MemoryExports, MemorySource};
use medrec_pipeline::training::{self, SpineFile, TrainingProgress};
use medrec_pipeline::{Delivered, ErrorKind, Exports, ObjectRef, EXPORT_KEY_ID};
use medrec_testkit::TestDb;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value as Json;

const BUCKET: &str = "s3://bucket/";

const SPINE: &str = "\
example_id,person_id,cutoff,label
e1,3597,2035-01-13,1
e2,3591,2032-06-14,0
e3,999999,2035-01-14,0
e4,3597,2031-09-15,1
";

fn exports(db: &TestDb) -> Exports<MemorySource, MemoryExports> {
    let pool = medrec_store::pool(&db.config, 2).unwrap();
    Exports::new(pool, MemorySource::new(), MemoryExports::new())
}

fn object(key: &str, version: &str) -> ObjectRef {
    ObjectRef {
        name: format!("{BUCKET}{key}"),
        version: Some(version.to_owned()),
    }
}

/// Asks for `key` (stored with `body` at version `v1`).
async fn ask(
    exports: &Exports<MemorySource, MemoryExports>,
    key: &str,
    body: &[u8],
) -> Result<Delivered, medrec_pipeline::PipelineError> {
    exports
        .source()
        .put(&format!("{BUCKET}{key}"), Some("v1"), body);
    exports.notified(key, &object(key, "v1")).await
}

/// A Parquet file's rows as text, and its catalogue.
fn rows_and_catalogue(bytes: Vec<u8>) -> (Vec<String>, Json) {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    let catalogue = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .find(|kv| kv.key == "medrec.catalogue")
        .and_then(|kv| kv.value.clone())
        .unwrap();
    let rows = reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| row.unwrap().to_string())
        .collect();
    (rows, serde_json::from_str(&catalogue).unwrap())
}

fn manifest(exports: &MemoryExports, name: &str) -> Json {
    serde_json::from_slice(&exports.get(&format!("{BUCKET}{name}")).unwrap()).unwrap()
}

#[tokio::test]
async fn a_spine_becomes_the_commands_parquet_file_and_a_manifest() {
    let db = TestDb::with_sample().await.unwrap();
    let exports = exports(&db);
    let delivered = ask(&exports, "spines/2026/readmission.csv", SPINE.as_bytes())
        .await
        .unwrap();
    let Delivered::Exported {
        rows,
        parquet,
        manifest: manifest_name,
    } = delivered
    else {
        panic!("{delivered:?}")
    };
    assert_eq!(rows, 4);
    assert_eq!(parquet, "s3://bucket/exports/2026/readmission.parquet");
    assert_eq!(manifest_name, "s3://bucket/exports/2026/readmission.json");
    assert_eq!(
        exports.sink().names(),
        vec![manifest_name.clone(), parquet.clone()]
    );

    // The same rows and catalogue as the command's file for the same spine.
    let dir = tempfile::tempdir().unwrap();
    let spine = dir.path().join("2026/readmission.csv");
    std::fs::create_dir_all(spine.parent().unwrap()).unwrap();
    std::fs::write(&spine, SPINE).unwrap();
    let local = dir.path().join("local.parquet");
    let client = db.client().await.unwrap();
    training::write(
        &client,
        &SpineFile {
            path: spine,
            name: "spines/2026/readmission.csv".into(),
        },
        &local,
        Format::Parquet,
        None,
        "test",
        &TrainingProgress::default(),
    )
    .await
    .unwrap();
    let (cloud_rows, cloud_catalogue) = rows_and_catalogue(exports.sink().get(&parquet).unwrap());
    let (local_rows, local_catalogue) = rows_and_catalogue(std::fs::read(&local).unwrap());
    assert_eq!(cloud_rows, local_rows);
    assert_eq!(cloud_rows.len(), 4);
    assert!(
        cloud_rows[0].contains("example_id: \"e1\""),
        "{}",
        cloud_rows[0]
    );
    assert!(
        cloud_rows[2].contains("hgb_latest: null"),
        "{}",
        cloud_rows[2]
    );
    assert_eq!(cloud_catalogue, local_catalogue);

    // The manifest: the catalogue with what the set was computed from, and the file.
    let document = manifest(exports.sink(), "exports/2026/readmission.json");
    let set = &document["training_set"];
    assert_eq!(set["rows"], 4);
    assert_eq!(set["spine"], "spines/2026/readmission.csv");
    assert_eq!(set["loaded_runs"], 5);
    assert!(set["loaded_through"].is_string());
    assert!(document["definitions_version"].is_string(), "{document}");
    assert_eq!(document["file"]["name"], parquet.as_str());
    assert_eq!(document["file"]["rows"], 4);
    assert_eq!(document["file"]["request_version"], "v1");
    assert_eq!(
        document["file"]["bytes"],
        exports.sink().get(&parquet).unwrap().len()
    );

    // Each distinct person of the spine is audited once, under the function's key id.
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM access_audit
             WHERE route = 'training_set' AND key_id = '{EXPORT_KEY_ID}'"
        ))
        .await,
        3
    );
}

#[tokio::test]
async fn a_bad_spine_is_refused_with_a_report_and_an_earlier_export_is_left_alone() {
    let db = TestDb::with_sample().await.unwrap();
    let exports = exports(&db);
    let key = "spines/weekly.csv";
    assert!(matches!(
        ask(&exports, key, SPINE.as_bytes()).await.unwrap(),
        Delivered::Exported { rows: 4, .. }
    ));
    let parquet = exports
        .sink()
        .get("s3://bucket/exports/weekly.parquet")
        .unwrap();
    let earlier = manifest(exports.sink(), "exports/weekly.json");

    let bad = "person_id,cutoff\n3597,2035-01-13\n3591,2035-13-01\n";
    let Delivered::Refused(error) = ask(&exports, key, bad.as_bytes()).await.unwrap() else {
        panic!("not refused")
    };
    assert_eq!(error.kind(), ErrorKind::Permanent);
    assert!(!error.should_retry(), "{error}");
    assert!(
        error.to_string().contains("exports/weekly.error.json"),
        "{error}"
    );
    let report = manifest(exports.sink(), "exports/weekly.error.json");
    assert_eq!(
        report["error"],
        "spines/weekly.csv:3: cutoff \"2035-13-01\" is not a date (YYYY-MM-DD)"
    );
    assert_eq!(report["request"], key);
    // The earlier export stands, whole.
    assert_eq!(
        exports
            .sink()
            .get("s3://bucket/exports/weekly.parquet")
            .unwrap(),
        parquet
    );
    assert_eq!(manifest(exports.sink(), "exports/weekly.json"), earlier);

    // Fixed, it is exported and the report goes.
    ask(&exports, key, SPINE.as_bytes()).await.unwrap();
    assert_eq!(
        exports.sink().names(),
        vec![
            "s3://bucket/exports/weekly.json".to_owned(),
            "s3://bucket/exports/weekly.parquet".to_owned()
        ]
    );
}

#[tokio::test]
async fn requests_that_can_never_succeed_are_settled_and_failures_of_the_bucket_retried() {
    let db = TestDb::with_sample().await.unwrap();
    let exports = exports(&db).with_max_spine_bytes(40);

    // Over the limit: refused unread.
    let Delivered::Refused(_) = ask(&exports, "spines/big.csv", SPINE.as_bytes())
        .await
        .unwrap()
    else {
        panic!("not refused")
    };
    let report = manifest(exports.sink(), "exports/big.error.json");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("larger than the 40 bytes"),
        "{report}"
    );

    // No person_id column; a Parquet spine that is not one.
    for (key, body, expected) in [
        (
            "spines/a.csv",
            &b"id,cutoff\n1,2030-01-01\n"[..],
            "spines/a.csv:1: the spine has no person_id column",
        ),
        (
            "spines/b.parquet",
            b"person_id,cutoff\n",
            "spines/b.parquet: not a readable Parquet file",
        ),
        (
            "full-exports/c",
            b"{\"as_of\": \"yesterday\"}",
            "as_of is not a date",
        ),
    ] {
        let Delivered::Refused(_) = ask(&exports, key, body).await.unwrap() else {
            panic!("{key} not refused")
        };
        let request = medrec_pipeline::ExportRequest::of_key(key).unwrap();
        let report = manifest(exports.sink(), &request.output_key(".error.json"));
        assert!(
            report["error"].as_str().unwrap().contains(expected),
            "{key}: {report}"
        );
    }
    assert!(exports
        .sink()
        .names()
        .iter()
        .all(|name| name.ends_with(".error.json")));

    // A key outside the layout has nowhere to be reported: it is retried, then dead-lettered.
    let error = ask(&exports, "spinez/a.csv", SPINE.as_bytes())
        .await
        .unwrap_err();
    assert!(error.should_retry(), "{error}");

    // Overwritten since it was announced: the newer version has its own notification.
    exports
        .source()
        .put("s3://bucket/spines/new.csv", Some("v2"), SPINE);
    assert!(matches!(
        exports
            .notified("spines/new.csv", &object("spines/new.csv", "v1"))
            .await
            .unwrap(),
        Delivered::Superseded
    ));

    // The bucket fails: retried, and nothing half-written is left.
    let exports = exports.with_max_spine_bytes(1 << 20);
    exports.sink().fail(true);
    let error = ask(&exports, "spines/retry.csv", SPINE.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(error.should_retry());
    exports.sink().fail(false);
    assert!(matches!(
        ask(&exports, "spines/retry.csv", SPINE.as_bytes())
            .await
            .unwrap(),
        Delivered::Exported { rows: 4, .. }
    ));
}

#[tokio::test]
async fn a_full_export_is_every_person_stored_or_as_of_a_date() {
    let db = TestDb::with_sample().await.unwrap();
    let exports = exports(&db);
    medrec_store::features::refresh(&db.client().await.unwrap(), None)
        .await
        .unwrap();
    let persons = db.count("SELECT count(*) FROM person_features").await;
    assert_eq!(persons, 50);

    let Delivered::Exported { rows, parquet, .. } =
        ask(&exports, "full-exports/weekly", b"").await.unwrap()
    else {
        panic!("not exported")
    };
    assert_eq!(rows, persons);
    assert_eq!(parquet, "s3://bucket/exports/weekly.parquet");
    let (cloud_rows, _) = rows_and_catalogue(exports.sink().get(&parquet).unwrap());

    // The command's export of the stored features.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("all.parquet");
    let client = db.client().await.unwrap();
    feature_file::export(&client, Format::Parquet, &local, None, "test")
        .await
        .unwrap();
    let (local_rows, _) = rows_and_catalogue(std::fs::read(&local).unwrap());
    assert_eq!(cloud_rows, local_rows);
    let document = manifest(exports.sink(), "exports/weekly.json");
    assert_eq!(document["export"]["rows"], 50);
    assert_eq!(document["as_of"], Json::Null);
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM access_audit WHERE route = 'export' AND key_id = '{EXPORT_KEY_ID}'"
        ))
        .await,
        50
    );

    // As of a date.
    let Delivered::Exported { rows, .. } = ask(
        &exports,
        "full-exports/2033.json",
        br#"{"as_of": "2033-01-01"}"#,
    )
    .await
    .unwrap() else {
        panic!("not exported")
    };
    assert_eq!(rows, 50);
    let document = manifest(exports.sink(), "exports/2033.json");
    assert_eq!(document["as_of"], "2033-01-01");
    feature_file::export(
        &client,
        Format::Parquet,
        &local,
        chrono::NaiveDate::from_ymd_opt(2033, 1, 1),
        "test",
    )
    .await
    .unwrap();
    let (cloud_rows, _) = rows_and_catalogue(
        exports
            .sink()
            .get("s3://bucket/exports/2033.parquet")
            .unwrap(),
    );
    let (local_rows, _) = rows_and_catalogue(std::fs::read(&local).unwrap());
    assert_eq!(cloud_rows, local_rows);
}

/// A login user of the export function's group, shared by the cluster's test databases.
const EXPORTER_LOGIN: &str = "medrec_test_exporter_login";

#[tokio::test]
async fn the_exporter_reads_what_exports_need_and_writes_only_audit_rows() {
    use medrec_store::roles::{is_permission_denied, Role};
    let db = TestDb::with_sample().await.unwrap();
    medrec_store::features::refresh(&db.client().await.unwrap(), None)
        .await
        .unwrap();
    let config = db.config_as(EXPORTER_LOGIN, Role::Exporter).await.unwrap();
    let pool = medrec_store::pool(&config, 1).unwrap();
    let exports = Exports::new(pool, MemorySource::new(), MemoryExports::new());
    for (key, body) in [
        ("spines/s.csv", SPINE.as_bytes()),
        ("full-exports/all", b""),
        ("full-exports/2033", br#"{"as_of": "2033-01-01"}"#),
    ] {
        let delivered = ask(&exports, key, body).await.unwrap();
        assert!(
            matches!(delivered, Delivered::Exported { .. }),
            "{key}: {delivered:?}"
        );
    }
    // As known at an instant (the superseded rows too).
    let exporter = medrec_store::connect(&config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spine = dir.path().join("spine.csv");
    std::fs::write(&spine, SPINE).unwrap();
    training::write(
        &exporter,
        &SpineFile::local(&spine),
        &dir.path().join("out.csv"),
        Format::Csv,
        Some(chrono::Utc::now()),
        "test",
        &TrainingProgress::default(),
    )
    .await
    .unwrap();

    // Nothing else: no write but the audit, not the quarantine's raw lines, not the audit.
    for sql in [
        "SELECT * FROM quarantine",
        "SELECT * FROM access_audit",
        "SELECT * FROM vendor_person",
        "DELETE FROM person_features",
        "UPDATE labs SET person_id = person_id",
        "INSERT INTO features_owed (person_id) VALUES (1)",
        "TRUNCATE ingest_run",
        "CREATE TABLE mine (x int)",
        "SELECT refresh_person_features(ARRAY[3591])",
    ] {
        let error = exporter
            .batch_execute(sql)
            .await
            .expect_err(&format!("{sql} should be refused"));
        assert!(is_permission_denied(&error), "{sql}: {error:?}");
    }
}
