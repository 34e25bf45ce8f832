//! `medrec features training-set` end to end against a real PostgreSQL: a spine in, one row per
//! spine row out (CSV and Parquet), the same values as `features export --as-of` at each row's
//! cutoff, and bad spines refused with their file and line, writing nothing.

use std::collections::BTreeMap;
use std::path::Path;

use medrec_core::features::FEATURES;
use medrec_testkit::{describe, sample_dir, TestDb};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::medrec;

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// `features export --as-of DATE` as CSV rows by person id (the features only).
async fn exported_as_of(db: &TestDb, dir: &Path, date: &str) -> BTreeMap<String, Vec<String>> {
    let out = dir.join(format!("export-{date}.csv"));
    let out_arg = out.to_str().unwrap();
    medrec()
        .on(db)
        .run_ok(&["features", "export", "--out", out_arg, "--as-of", date])
        .await;
    let (_, rows) = read_csv(&out);
    rows.into_iter()
        .map(|mut r| {
            let id = r.remove(0);
            (id, r)
        })
        .collect()
}

const SPINE: &str = "\
example_id,person_id,label,cutoff,note
e1,3597,1,2035-01-13,\"before, the second hemoglobin\"
e2,3597,0,2035-01-14,
e3,3591,1,2032-06-14,
e4,3591,1,2035-01-13,
e5,999999,0,2035-01-14,nobody
e6,3597,1,2031-09-15,before any event
";

#[tokio::test]
async fn a_training_set_is_the_spine_then_its_features_at_each_cutoff() {
    let db = TestDb::migrated().await.unwrap();
    let sample = sample_dir();
    medrec()
        .on(&db)
        .run_ok(&["ingest", "--quiet", sample.to_str().unwrap()])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let spine = dir.path().join("spine.csv");
    std::fs::write(&spine, SPINE).unwrap();
    let csv_out = dir.path().join("train.csv");
    let stdout = medrec()
        .on(&db)
        .run_ok(&[
            "features",
            "training-set",
            "--spine",
            spine.to_str().unwrap(),
            "--out",
            csv_out.to_str().unwrap(),
        ])
        .await;
    assert!(
        stdout.starts_with(&format!("wrote 6 training row(s) to {}", csv_out.display())),
        "{stdout}"
    );

    let (header, rows) = read_csv(&csv_out);
    let spine_columns = ["example_id", "person_id", "label", "cutoff", "note"];
    let mut expected: Vec<&str> = spine_columns.to_vec();
    expected.extend(FEATURES.iter().map(|f| f.name));
    assert_eq!(header, expected);
    // The spine's columns come back unchanged, in spine order.
    let (_, spine_rows) = {
        let path = spine.clone();
        read_csv(&path)
    };
    assert_eq!(rows.len(), spine_rows.len());
    for (row, spine_row) in rows.iter().zip(&spine_rows) {
        assert_eq!(&row[..spine_columns.len()], &spine_row[..]);
    }
    // Each row's features are the as-of export's at its cutoff; no one's are all empty.
    let mut exports = BTreeMap::new();
    for row in &rows {
        let (person, cutoff) = (&row[1], &row[3]);
        if !exports.contains_key(cutoff) {
            exports.insert(
                cutoff.clone(),
                exported_as_of(&db, dir.path(), cutoff).await,
            );
        }
        let features = &row[spine_columns.len()..];
        match exports[cutoff].get(person) {
            Some(exported) => assert_eq!(features, &exported[..], "{person} at {cutoff}"),
            None => assert!(features.iter().all(String::is_empty), "{row:?}"),
        }
    }
    let feature = |row: usize, name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        rows[row][i].clone()
    };
    assert_eq!(feature(0, "hgb_latest"), "10.2");
    assert_eq!(feature(1, "hgb_latest"), "11.5");
    assert_eq!(feature(2, "taking_alpha_blockers"), "false");
    assert_eq!(feature(3, "taking_alpha_blockers"), "true");
    assert!(rows[5][spine_columns.len()..].iter().all(String::is_empty));

    // The catalogue beside it says what the set was computed from.
    let catalogue: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("train.catalogue.json")).unwrap())
            .unwrap();
    assert_eq!(catalogue["training_set"]["rows"], 6);
    assert_eq!(catalogue["training_set"]["loaded_runs"], 5);
    assert!(catalogue["training_set"]["loaded_through"].is_string());
    assert!(catalogue["training_set"]["known_at"].is_null());

    // Parquet: the same rows, the spine's person_id INT64 and cutoff DATE, the rest text.
    let parquet_out = dir.path().join("train.parquet");
    medrec()
        .on(&db)
        .run_ok(&[
            "features",
            "training-set",
            "--quiet",
            "--format",
            "parquet",
            "--spine",
            spine.to_str().unwrap(),
            "--out",
            parquet_out.to_str().unwrap(),
        ])
        .await;
    let reader = SerializedFileReader::try_from(parquet_out.as_path()).unwrap();
    let kv = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    let embedded: serde_json::Value = serde_json::from_str(
        kv.iter()
            .find(|kv| kv.key == "medrec.catalogue")
            .and_then(|kv| kv.value.as_deref())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(embedded["training_set"]["rows"], 6);
    let parquet_rows: Vec<Vec<(String, Field)>> = reader
        .into_iter()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(n, f)| (n.clone(), f.clone()))
                .collect()
        })
        .collect();
    assert_eq!(parquet_rows.len(), rows.len());
    for (parquet_row, csv_row) in parquet_rows.iter().zip(&rows) {
        let names: Vec<&str> = parquet_row.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, header.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            matches!(parquet_row[1].1, Field::Long(_)),
            "{parquet_row:?}"
        );
        assert!(
            matches!(parquet_row[3].1, Field::Date(_)),
            "{parquet_row:?}"
        );
        for ((name, value), text) in parquet_row.iter().zip(csv_row) {
            let same = match value {
                Field::Null => text.is_empty(),
                Field::Str(s) => s == text,
                Field::Date(_) => value.to_string() == *text,
                Field::Double(x) => text.parse::<f64>() == Ok(*x),
                other => other.to_string() == *text,
            };
            assert!(same, "{name}: parquet {value:?}, csv {text:?}");
        }
    }
}

#[tokio::test]
async fn a_bad_spine_is_refused_with_its_file_and_line_and_nothing_is_written() {
    let db = TestDb::migrated().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "person_id,when\n1,2035-01-01\n",
            "spine.csv:1: the spine has no cutoff column",
        ),
        (
            "person_id,cutoff\n1,2035-01-01\n2,2035-13-01\n",
            "spine.csv:3: cutoff \"2035-13-01\" is not a date (YYYY-MM-DD)",
        ),
        (
            "person_id,cutoff\n1,2035-01-01\n\n3591.5,2035-01-01\n",
            "spine.csv:4: person_id \"3591.5\" is not a positive whole number",
        ),
        (
            "person_id,cutoff\n-4,2035-01-01\n",
            "spine.csv:2: person_id \"-4\" is not a positive whole number",
        ),
        (
            "person_id,cutoff,hgb_latest\n1,2035-01-01,3\n",
            "spine.csv:1: the spine's column hgb_latest is also a feature column",
        ),
        (
            "person_id,cutoff\n1,2035-01-01,x\n",
            "spine.csv: reading the spine",
        ),
    ];
    for (spine_text, message) in cases {
        let spine = dir.path().join("spine.csv");
        std::fs::write(&spine, spine_text).unwrap();
        let out = dir.path().join("out.csv");
        let output = medrec()
            .on(&db)
            .run(&[
                "features",
                "training-set",
                "--spine",
                spine.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .await;
        assert!(!output.status.success(), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{message:?} not in {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != "spine.csv")
            .collect();
        assert!(left.is_empty(), "written on error: {left:?}");
    }
    let output = medrec()
        .on(&db)
        .run(&[
            "features",
            "training-set",
            "--spine",
            "spine.csv",
            "--out",
            "out.csv",
            "--known-at",
            "yesterday",
        ])
        .await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not an RFC 3339 instant"));
}

#[tokio::test]
async fn explain_prints_the_deciding_rows_and_is_audited() {
    let db = TestDb::migrated().await.unwrap();
    let sample = sample_dir();
    medrec()
        .on(&db)
        .run_ok(&["ingest", "--quiet", sample.to_str().unwrap()])
        .await;
    let stdout = medrec()
        .on(&db)
        .run_ok(&["features", "explain", "3597", "--as-of", "2035-01-13"])
        .await;
    let shown: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["data"]["hgb_latest"], 10.2);
    let row = &shown["explanation"]["hgb_latest"][0];
    assert_eq!(row["table"], "labs");
    assert!(row["source"].as_str().unwrap().ends_with("labs_ae.csv"));
    let line = row["source_line"].as_u64().unwrap() as usize;
    let raw = std::fs::read_to_string(sample.join("labs_ae.csv")).unwrap();
    let raw_line = raw.lines().nth(line - 1).unwrap();
    assert!(
        raw_line.contains("2034-10-21") && raw_line.ends_with(",3597"),
        "{raw_line}"
    );

    let output = medrec()
        .on(&db)
        .run(&["features", "explain", "999999"])
        .await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no person 999999"));
    let client = db.client().await.unwrap();
    let audited = medrec_testkit::count(
        &client,
        "SELECT count(*) FROM access_audit WHERE key_id = 'medrec-cli' AND route = 'features'",
    )
    .await;
    assert_eq!(audited, 2);
}

/// A Parquet spine: person_id INT64, cutoff DATE, label INT32, note optional text.
fn write_parquet_spine(path: &Path, rows: &[(i64, &str, i32, Option<&str>)]) {
    use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;
    let schema = parse_message_type(
        "message spine { required int64 person_id; required int32 cutoff (DATE);
                         required int32 label; optional binary note (UTF8); }",
    )
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(
        file,
        Arc::new(schema),
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let days: Vec<i32> = rows
        .iter()
        .map(|r| (r.1.parse::<chrono::NaiveDate>().unwrap() - epoch).num_days() as i32)
        .collect();
    let labels: Vec<i32> = rows.iter().map(|r| r.2).collect();
    let notes: Vec<ByteArray> = rows
        .iter()
        .filter_map(|r| r.3)
        .map(ByteArray::from)
        .collect();
    let levels: Vec<i16> = rows.iter().map(|r| i16::from(r.3.is_some())).collect();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<Int64Type>()
        .write_batch(&ids, None, None)
        .unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<Int32Type>()
        .write_batch(&days, None, None)
        .unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<Int32Type>()
        .write_batch(&labels, None, None)
        .unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<ByteArrayType>()
        .write_batch(&notes, Some(&levels), None)
        .unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

#[tokio::test]
async fn a_parquet_spine_gives_the_rows_a_csv_spine_does() {
    let db = TestDb::migrated().await.unwrap();
    let sample = sample_dir();
    medrec()
        .on(&db)
        .run_ok(&["ingest", "--quiet", sample.to_str().unwrap()])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        (3597, "2035-01-13", 1, Some("a, b")),
        (3591, "2032-06-15", 0, None),
        (999_999, "2035-01-01", 1, Some("nobody")),
    ];
    let parquet_spine = dir.path().join("spine.parquet");
    write_parquet_spine(&parquet_spine, &rows);
    let csv_spine = dir.path().join("spine.csv");
    let mut text = String::from("person_id,cutoff,label,note\n");
    for (person, cutoff, label, note) in rows {
        text.push_str(&format!(
            "{person},{cutoff},{label},\"{}\"\n",
            note.unwrap_or("")
        ));
    }
    std::fs::write(&csv_spine, text).unwrap();
    let mut outputs = Vec::new();
    for spine in [&parquet_spine, &csv_spine] {
        let out = dir.path().join(format!(
            "from-{}.csv",
            spine.extension().unwrap().to_str().unwrap()
        ));
        medrec()
            .on(&db)
            .run_ok(&[
                "features",
                "training-set",
                "--quiet",
                "--spine",
                spine.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .await;
        outputs.push(read_csv(&out));
    }
    assert_eq!(outputs[0], outputs[1]);
    let (header, rows) = &outputs[0];
    assert_eq!(&header[..4], ["person_id", "cutoff", "label", "note"]);
    assert_eq!(&rows[1][..4], ["3591", "2032-06-15", "0", ""]);
    let alpha = header
        .iter()
        .position(|h| h == "taking_alpha_blockers")
        .unwrap();
    assert_eq!(rows[1][alpha], "true");

    // A file named .parquet that is not one is refused as such.
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, b"PAR1 not really").unwrap();
    let output = medrec()
        .on(&db)
        .run(&[
            "features",
            "training-set",
            "--spine",
            bad.to_str().unwrap(),
            "--out",
            dir.path().join("x.csv").to_str().unwrap(),
        ])
        .await;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not a readable Parquet file"),
        "{}",
        describe(&output)
    );
}
