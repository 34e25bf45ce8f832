//! The `medrec` binary end to end against a real PostgreSQL: ingest the sample directory, then
//! export the features as CSV and Parquet and read both back.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use medrec_core::features::{FeatureKind, FEATURES};
use medrec_testkit::{count, describe, sample_dir, TestDb};
use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::medrec;

/// A migrated database with the sample directory ingested by `medrec ingest`; returns its stdout.
async fn ingested() -> (TestDb, String) {
    let db = TestDb::migrated().await.unwrap();
    let dir = sample_dir();
    let stdout = medrec()
        .on(&db)
        .run_ok(&["ingest", dir.to_str().unwrap()])
        .await;
    (db, stdout)
}

async fn export(db: &TestDb, format: &str, out: &Path, as_of: Option<&str>) {
    let mut args = vec!["features", "export", "--format", format];
    args.extend(["--out", out.to_str().unwrap()]);
    if let Some(date) = as_of {
        args.extend(["--as-of", date]);
    }
    let stdout = medrec().on(db).run_ok(&args).await;
    assert!(
        stdout.contains(&format!("wrote 50 person(s) to {}", out.display())),
        "{stdout}"
    );
}

fn expected_header() -> Vec<String> {
    std::iter::once("person_id")
        .chain(FEATURES.iter().map(|f| f.name))
        .map(String::from)
        .collect()
}

/// The header and the rows (by person id) of an exported CSV.
fn read_csv(path: &Path) -> (Vec<String>, BTreeMap<i64, Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let mut rows = BTreeMap::new();
    for record in reader.records() {
        let record: Vec<String> = record.unwrap().iter().map(String::from).collect();
        let id: i64 = record[0].parse().unwrap();
        assert!(rows.insert(id, record).is_none(), "person {id} twice");
    }
    (header, rows)
}

/// An export's catalogue names every feature, in order, with its type and definition.
fn check_catalogue(catalogue: &serde_json::Value) {
    let names: Vec<&str> = catalogue["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, FEATURES.iter().map(|f| f.name).collect::<Vec<_>>());
    assert!(catalogue["definitions_version"].is_string());
    for feature in catalogue["features"].as_array().unwrap() {
        for key in ["type", "description", "null_means", "tables"] {
            assert!(!feature[key].is_null(), "{feature}: {key}");
        }
    }
}

/// The rows of an exported Parquet file (by person id), each as its column name/value pairs,
/// after checking the file's schema.
fn read_parquet(path: &Path) -> BTreeMap<i64, Vec<(String, Field)>> {
    let reader = SerializedFileReader::try_from(path).unwrap();
    let metadata = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    let catalogue = metadata
        .iter()
        .find(|kv| kv.key == "medrec.catalogue")
        .and_then(|kv| kv.value.as_deref())
        .expect("the catalogue in the file's metadata");
    check_catalogue(&serde_json::from_str(catalogue).unwrap());
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let names: Vec<String> = schema.columns().iter().map(|c| c.name().into()).collect();
    assert_eq!(names, expected_header());
    let person_id = schema.column(0);
    assert_eq!(person_id.physical_type(), PhysicalType::INT64);
    assert_eq!(
        person_id.self_type().get_basic_info().repetition(),
        Repetition::REQUIRED
    );
    for (feature, column) in FEATURES.iter().zip(&schema.columns()[1..]) {
        let (physical, logical) = match feature.kind {
            FeatureKind::Bool => (PhysicalType::BOOLEAN, None),
            FeatureKind::Int => (PhysicalType::INT32, None),
            FeatureKind::Float => (PhysicalType::DOUBLE, None),
            FeatureKind::Date => (PhysicalType::INT32, Some(LogicalType::Date)),
            FeatureKind::Text => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        };
        assert_eq!(column.physical_type(), physical, "{}", feature.name);
        assert_eq!(
            column.logical_type_ref(),
            logical.as_ref(),
            "{}",
            feature.name
        );
        assert_eq!(column.max_def_level(), 1, "{}", feature.name);
    }

    let mut rows = BTreeMap::new();
    for row in reader {
        let row: Vec<(String, Field)> = row
            .unwrap()
            .get_column_iter()
            .map(|(name, field)| (name.clone(), field.clone()))
            .collect();
        let Field::Long(id) = row[0].1 else {
            panic!("person_id is {:?}", row[0].1)
        };
        assert!(rows.insert(id, row).is_none(), "person {id} twice");
    }
    rows
}

fn field<'a>(row: &'a [(String, Field)], name: &str) -> &'a Field {
    &row.iter().find(|(n, _)| n == name).unwrap().1
}

/// Whether a Parquet value and a CSV field (as `write_csv` prints it) are the same value.
fn same_value(parquet: &Field, csv: &str) -> bool {
    match parquet {
        Field::Null => csv.is_empty(),
        Field::Bool(b) => csv == b.to_string(),
        Field::Int(n) => csv == n.to_string(),
        Field::Long(n) => csv == n.to_string(),
        Field::Double(x) => csv.parse::<f64>() == Ok(*x),
        Field::Date(days) => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
            csv == (epoch + chrono::Days::new(u64::try_from(*days).unwrap())).to_string()
        }
        Field::Str(s) => csv == s,
        other => panic!("unexpected Parquet value {other:?}"),
    }
}

/// Asserts that the two exports hold the same persons and values.
fn assert_same(csv: &BTreeMap<i64, Vec<String>>, parquet: &BTreeMap<i64, Vec<(String, Field)>>) {
    assert_eq!(
        csv.keys().collect::<Vec<_>>(),
        parquet.keys().collect::<Vec<_>>()
    );
    for (id, csv_row) in csv {
        for ((name, value), text) in parquet[id].iter().zip(csv_row) {
            assert!(
                same_value(value, text),
                "person {id} {name}: parquet {value:?}, csv {text:?}"
            );
        }
    }
}

#[tokio::test]
async fn ingest_then_export_csv_and_parquet() {
    let (db, stdout) = ingested().await;
    // The report lists the files in table order, as the README shows it.
    let tables: Vec<&str> = stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        tables,
        ["lifestyle", "rx", "conditions", "labs", "tests"],
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("rx ") && l.contains(" 480 ") && l.contains(" 326 ")),
        "{stdout}"
    );
    for table in ["conditions", "labs", "lifestyle", "rx", "tests"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{table} "))
                    && l.ends_with(&format!("{table}_ae.csv"))),
            "no report line for {table}: {stdout}"
        );
    }
    assert!(
        stdout.contains("features recomputed for 50 person(s)"),
        "{stdout}"
    );
    // The documented full recompute (docs/features.md).
    let refreshed = medrec().on(&db).run_ok(&["features", "refresh"]).await;
    assert_eq!(refreshed.trim(), "recomputed the features of 50 person(s)");

    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("f.csv");
    let parquet_path = dir.path().join("f.parquet");
    export(&db, "csv", &csv_path, None).await;
    export(&db, "parquet", &parquet_path, None).await;
    let beside = std::fs::read_to_string(dir.path().join("f.catalogue.json")).unwrap();
    check_catalogue(&serde_json::from_str(&beside).unwrap());

    let parquet = read_parquet(&parquet_path);
    assert_eq!(parquet.len(), 50);
    assert_eq!(field(&parquet[&3597], "hgb_latest"), &Field::Double(11.5));
    assert_eq!(
        field(&parquet[&3597], "taking_alpha_blockers"),
        &Field::Bool(true)
    );
    assert_eq!(
        field(&parquet[&3597], "hgb_latest_date"),
        &Field::Date(
            (NaiveDate::from_ymd_opt(2035, 1, 14).unwrap()
                - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
            .num_days() as i32
        )
    );
    assert_eq!(
        field(&parquet[&3599], "taking_alpha_blockers"),
        &Field::Null
    );

    let (header, csv) = read_csv(&csv_path);
    assert!(
        header.join(",").starts_with(
            "person_id,taking_alpha_blockers,hgb_latest,hgb_latest_date,encounters_6m,"
        ),
        "{header:?}"
    );
    assert_eq!(header, expected_header());
    assert_eq!(csv.len(), 50);
    assert_same(&csv, &parquet);
}

#[tokio::test]
async fn export_as_of_a_date() {
    let (db, _) = ingested().await;
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("f.csv");
    let parquet_path = dir.path().join("f.parquet");
    export(&db, "csv", &csv_path, Some("2035-01-13")).await;
    export(&db, "parquet", &parquet_path, Some("2035-01-13")).await;

    // 3597's hemoglobin: 10.2 on 2034-10-21, 11.5 on 2035-01-14.
    let (header, csv) = read_csv(&csv_path);
    let hgb = header.iter().position(|h| h == "hgb_latest").unwrap();
    let hgb_date = header.iter().position(|h| h == "hgb_latest_date").unwrap();
    assert_eq!(csv[&3597][hgb], "10.2");
    assert_eq!(csv[&3597][hgb_date], "2034-10-21");
    let parquet = read_parquet(&parquet_path);
    assert_eq!(field(&parquet[&3597], "hgb_latest"), &Field::Double(10.2));
    assert_same(&csv, &parquet);
}

#[tokio::test]
async fn export_rejects_an_unknown_format() {
    let db = TestDb::migrated().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.json");
    let output = medrec()
        .on(&db)
        .run(&[
            "features",
            "export",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ])
        .await;
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"json\""), "{stderr}");
}

#[tokio::test]
async fn ingest_fails_naming_a_file_of_no_table_and_loads_the_others() {
    let db = TestDb::migrated().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(sample_dir().join("rx_ae.csv"), dir.path().join("rx_ae.csv")).unwrap();
    std::fs::write(dir.path().join("notes.csv"), "person_id,note\n1,hello\n").unwrap();
    let output = medrec()
        .on(&db)
        .run(&["ingest", dir.path().to_str().unwrap()])
        .await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("notes.csv"), "{stderr}");
    // The other files load; the unknown one is on record with its reason.
    let client = db.client().await.unwrap();
    let loaded = count(
        &client,
        "SELECT count(*) FROM ingest_run WHERE status = 'loaded' AND table_name = 'rx'",
    )
    .await;
    assert_eq!(loaded, 1);
    let runs = medrec().on(&db).run(&["runs"]).await;
    assert!(runs.status.success(), "{}", describe(&runs));
    let listed = String::from_utf8_lossy(&runs.stdout);
    let notes = listed
        .lines()
        .find(|l| l.ends_with("notes.csv"))
        .expect("notes.csv listed");
    assert!(notes.contains(" refused "), "{listed}");
    assert!(listed.contains("no such table"), "{listed}");
    let rx = listed
        .lines()
        .find(|l| l.ends_with("rx_ae.csv"))
        .expect("rx_ae.csv listed");
    assert!(
        rx.contains(" loaded ") && rx.contains(" 480 ") && rx.contains(" 326 "),
        "{listed}"
    );
}

#[tokio::test]
async fn a_long_load_shows_its_progress_on_stderr_unless_quiet() {
    let data = tempfile::tempdir().unwrap();
    medrec().run_ok_blocking(&[
        "generate",
        "--persons",
        "3000",
        "--out",
        data.path().to_str().unwrap(),
    ]);
    for quiet in [false, true] {
        let db = TestDb::migrated().await.unwrap();
        let mut command = medrec().on(&db).command();
        command
            .env("MEDREC_PROGRESS_EVERY_MS", "20")
            .args(["ingest", data.path().to_str().unwrap()]);
        if quiet {
            command.arg("--quiet");
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("progress: "))
            .collect();
        if quiet {
            assert!(lines.is_empty(), "{stderr}");
        } else {
            let line = lines
                .last()
                .unwrap_or_else(|| panic!("no progress: {stderr}"));
            assert!(
                line.contains("/5 files, ") && line.contains(" lines/s"),
                "{line}"
            );
        }
        // The report on stdout is the same either way.
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.starts_with("table "), "{stdout}");
    }
}
