//! `medrec generate --format json` files against the committed JSON Schema, and `medrec
//! ingest-json` end to end on them against a real PostgreSQL.

use std::path::Path;
use std::process::Output;

use medrec_store::test_db::TestDb;
use serde_json::Value as Json;

const MEDREC: &str = env!("CARGO_BIN_EXE_medrec");
const SCHEMA: &str = include_str!("../../docs/vendor-person.schema.json");

fn generate(out: &Path, persons: &str, version: &str) {
    let output = std::process::Command::new(MEDREC)
        .args([
            "generate",
            "--format",
            "json",
            "--persons",
            persons,
            "--version",
            version,
        ])
        .arg("--out")
        .arg(out)
        .output()
        .expect("running medrec generate");
    assert!(output.status.success(), "{}", describe(&output));
}

async fn ingest_json(db: &TestDb, args: &[&str]) -> Output {
    tokio::process::Command::new(MEDREC)
        .arg("ingest-json")
        .args(args)
        .env("DATABASE_URL", db.config.expose_url())
        .env_remove("MEDREC_LOG")
        .output()
        .await
        .expect("running medrec ingest-json")
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_generated_file_validates_against_the_schema_and_parses() {
    let schema: Json = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the committed schema is valid");
    let violation = |value: &Json| validator.iter_errors(value).next().map(|e| e.to_string());
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "40", "3");
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let value: Json = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(violation(&value), None, "{}", path.display());
        let parsed = medrec_core::vendor::parse(&bytes).unwrap();
        assert_eq!(parsed.version, 3);
        files += 1;
    }
    assert_eq!(files, 40);
    // The validator can fail: a wrong schema id, a missing table, an object as a value.
    let mut value: Json =
        serde_json::from_slice(&std::fs::read(dir.path().join("1000000.json")).unwrap()).unwrap();
    let good = value.clone();
    value["schema"] = "medrec.vendor-person.v0".into();
    assert!(violation(&value).is_some());
    let mut value = good.clone();
    value.as_object_mut().unwrap().remove("labs");
    assert!(violation(&value).is_some());
    let mut value = good;
    value["rx"][0]["rx_name"] = serde_json::json!({"nested": true});
    assert!(violation(&value).is_some());
}

#[tokio::test]
async fn ingest_json_loads_updates_ignores_old_files_and_rejects_bad_ones() {
    let db = TestDb::migrated().await.unwrap();
    let v1 = tempfile::tempdir().unwrap();
    let v2 = tempfile::tempdir().unwrap();
    generate(v1.path(), "30", "1");
    generate(v2.path(), "30", "2");
    std::fs::write(v1.path().join("broken.json"), b"{\"schema\": ").unwrap();

    let first = ingest_json(&db, &[v1.path().to_str().unwrap(), "--workers", "3"]).await;
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(!first.status.success(), "a rejected file fails the command");
    assert!(
        stdout.contains("files 31: loaded 30, ignored 0, rejected 1"),
        "{}",
        describe(&first)
    );
    assert!(stdout.contains("rejected invalid_json: 1"), "{stdout}");
    assert!(
        stdout.contains("features recomputed for 30 person(s)"),
        "{stdout}"
    );

    let client = db.client().await.unwrap();
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM vendor_person WHERE version = 1").await,
        30
    );
    assert_eq!(count("SELECT count(*) FROM person_features").await, 30);
    assert_eq!(
        count("SELECT count(*) FROM vendor_file WHERE status = 'rejected' AND reason = 'invalid_json'")
            .await,
        1
    );
    let v1_rows = count("SELECT count(*) FROM lifestyle").await;
    assert!(v1_rows > 0);

    std::fs::remove_file(v1.path().join("broken.json")).unwrap();
    let second = ingest_json(&db, &[v2.path().to_str().unwrap(), "--workers", "2"]).await;
    assert!(second.status.success(), "{}", describe(&second));
    assert!(String::from_utf8_lossy(&second.stdout).contains("loaded 30, ignored 0, rejected 0"));
    assert_eq!(
        count("SELECT count(*) FROM vendor_person WHERE version = 2").await,
        30
    );
    // Only version 2's rows are left: every clean row belongs to a version-2 run.
    assert_eq!(
        count(
            "SELECT count(*) FROM lifestyle l JOIN vendor_file f ON l.run_id = ANY (f.run_ids)
             WHERE f.version <> 2"
        )
        .await,
        0
    );

    let late = ingest_json(&db, &[v1.path().to_str().unwrap()]).await;
    assert!(late.status.success(), "{}", describe(&late));
    let stdout = String::from_utf8_lossy(&late.stdout);
    assert!(
        stdout.contains("loaded 0, ignored 30, rejected 0"),
        "{stdout}"
    );
    assert!(stdout.contains("ignored not_newer: 30"), "{stdout}");
    assert_eq!(
        count("SELECT count(*) FROM vendor_person WHERE version = 2").await,
        30
    );
}
