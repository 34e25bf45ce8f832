//! `medrec generate --format json` files against the committed JSON Schema, and `medrec
//! ingest-json` end to end on them against a real PostgreSQL.

use std::path::Path;
use std::process::Output;

use medrec_testkit::{describe, TestDb};
use serde_json::Value as Json;

use crate::medrec;

const SCHEMA: &str = include_str!("../../docs/vendor-person.schema.json");

fn generate(out: &Path, persons: &str, version: &str) {
    let out = out.to_str().unwrap();
    medrec().run_ok_blocking(&[
        "generate",
        "--format",
        "json",
        "--persons",
        persons,
        "--version",
        version,
        "--out",
        out,
    ]);
}

async fn ingest_json(db: &TestDb, args: &[&str]) -> Output {
    let mut all = vec!["ingest-json"];
    all.extend_from_slice(args);
    medrec().on(db).run(&all).await
}

/// The subset of JSON Schema the committed schema uses: type, const, required, properties,
/// additionalProperties, items, anyOf, minimum, pattern (only the `^[0-9]+$` and vendor id
/// forms, checked by hand). Returns the path of the first violation. Not the jsonschema crate:
/// as a dev-dependency it changes the features of serde_json, regex and hashbrown, so the test
/// build would compile most of the workspace a second time beside the demo's.
fn violation(schema: &Json, value: &Json, path: &str) -> Option<String> {
    if let Some(options) = schema.get("anyOf").and_then(Json::as_array) {
        return options
            .iter()
            .all(|s| violation(s, value, path).is_some())
            .then(|| format!("{path}: matches no anyOf branch"));
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            return Some(format!("{path}: not the constant"));
        }
    }
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Json::String(t) => vec![t.as_str()],
            Json::Array(ts) => ts.iter().filter_map(Json::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !ok {
            return Some(format!("{path}: not of type {types:?}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Json::as_i64), value.as_i64()) {
        if n < min {
            return Some(format!("{path}: below the minimum"));
        }
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Json::as_f64), value.as_f64()) {
        if n > max {
            return Some(format!("{path}: above the maximum"));
        }
    }
    if let (Some(pattern), Some(s)) = (schema.get("pattern").and_then(Json::as_str), value.as_str())
    {
        let ok = match pattern {
            "^[0-9]+$" => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
            // A version: 1 to 999999999999999, leading zeros allowed.
            "^0*[1-9][0-9]{0,14}$" => {
                let digits = s.trim_start_matches('0');
                (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
            }
            "^[A-Za-z0-9._-]{1,64}$" => {
                (1..=64).contains(&s.len())
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            }
            other => panic!("the checker does not know the pattern {other}"),
        };
        if !ok {
            return Some(format!("{path}: does not match {pattern}"));
        }
    }
    if let Some(object) = value.as_object() {
        for key in schema
            .get("required")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let key = key.as_str().unwrap();
            if !object.contains_key(key) {
                return Some(format!("{path}: missing {key}"));
            }
        }
        let properties = schema.get("properties").and_then(Json::as_object);
        for (key, v) in object {
            let sub = properties
                .and_then(|p| p.get(key))
                .or(schema.get("additionalProperties"));
            match sub {
                Some(Json::Bool(false)) => return Some(format!("{path}.{key}: not allowed")),
                Some(s @ Json::Object(_)) => {
                    if let Some(v) = violation(s, v, &format!("{path}.{key}")) {
                        return Some(v);
                    }
                }
                _ => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            if let Some(v) = violation(items, item, &format!("{path}[{i}]")) {
                return Some(v);
            }
        }
    }
    None
}

#[test]
fn every_generated_file_validates_against_the_schema_and_parses() {
    let schema: Json = serde_json::from_str(SCHEMA).unwrap();
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "40", "3");
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let value: Json = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(violation(&schema, &value, "$"), None, "{}", path.display());
        let parsed = medrec_core::vendor::parse(&bytes).unwrap();
        assert_eq!(parsed.version, 3);
        files += 1;
    }
    assert_eq!(files, 40);
    // The checker can fail: a wrong schema id, a missing table, an object as a value.
    let mut value: Json =
        serde_json::from_slice(&std::fs::read(dir.path().join("1000000.json")).unwrap()).unwrap();
    let good = value.clone();
    value["schema"] = "medrec.vendor-person.v0".into();
    assert!(violation(&schema, &value, "$").is_some());
    let mut value = good.clone();
    value.as_object_mut().unwrap().remove("labs");
    assert!(violation(&schema, &value, "$").is_some());
    let mut value = good;
    value["rx"][0]["rx_name"] = serde_json::json!({"nested": true});
    assert!(violation(&schema, &value, "$").is_some());
}

#[tokio::test]
async fn ingest_json_loads_updates_ignores_old_files_and_rejects_bad_ones() {
    let db = TestDb::migrated().await.unwrap();
    let v1 = tempfile::tempdir().unwrap();
    let v2 = tempfile::tempdir().unwrap();
    generate(v1.path(), "30", "1");
    generate(v2.path(), "30", "2");
    std::fs::write(v1.path().join("broken.json"), b"{\"schema\": ").unwrap();
    // A generated file with a second `"rx": []` (last one wins would erase its rx rows), and
    // one whose version would freeze the person for good.
    let generated = v1.path().join("1000000.json");
    let text = std::fs::read_to_string(&generated).unwrap();
    let duplicated = format!("{},\"rx\":[]}}", text.trim_end().trim_end_matches('}'));
    std::fs::write(v1.path().join("duplicate.json"), duplicated).unwrap();
    let mut frozen: Json = serde_json::from_str(&text).unwrap();
    frozen["version"] = Json::from(i64::MAX);
    std::fs::write(v1.path().join("frozen.json"), frozen.to_string()).unwrap();

    let first = ingest_json(&db, &[v1.path().to_str().unwrap(), "--workers", "3"]).await;
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(!first.status.success(), "a rejected file fails the command");
    assert!(
        stdout.contains("files 33: loaded 30, ignored 0, rejected 3"),
        "{}",
        describe(&first)
    );
    assert!(stdout.contains("rejected invalid_json: 1"), "{stdout}");
    assert!(stdout.contains("rejected duplicate_key: 1"), "{stdout}");
    assert!(stdout.contains("rejected invalid_version: 1"), "{stdout}");
    // Each rejected file by its path, with its reason and where: never a record value.
    let dir = v1.path().display();
    for (name, said) in [
        ("broken.json", "invalid_json (Eof at line 1 column "),
        ("duplicate.json", "duplicate_key (rx at line "),
        (
            "frozen.json",
            "invalid_version (version (an integer from 1 to 999999999999999))",
        ),
    ] {
        let line = format!("rejected {dir}/{name}: {said}");
        assert!(stdout.contains(&line), "{line} in {stdout}");
    }
    assert!(
        stdout.contains("features recomputed for 30 person(s)"),
        "{stdout}"
    );

    let client = db.client().await.unwrap();
    let count = |sql: &'static str| medrec_testkit::count(&client, sql);
    assert_eq!(
        count("SELECT count(*) FROM vendor_person WHERE version = 1").await,
        30
    );
    assert_eq!(count("SELECT count(*) FROM person_features").await, 30);
    for reason in ["invalid_json", "duplicate_key", "invalid_version"] {
        let rejected = client
            .query_one(
                "SELECT count(*) FROM vendor_file WHERE status = 'rejected' AND reason = $1",
                &[&reason],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        assert_eq!(rejected, 1, "{reason}");
    }
    let v1_rows = count("SELECT count(*) FROM lifestyle").await;
    assert!(v1_rows > 0);

    for name in ["broken.json", "duplicate.json", "frozen.json"] {
        std::fs::remove_file(v1.path().join(name)).unwrap();
    }
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
