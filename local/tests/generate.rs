//! `medrec generate` end to end: the real binary writes files, which are checked for
//! determinism, the sample's layout, and (through the real cleaners) the sample's profile of
//! duplicates, defects and flags.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use medrec_core::clean::rx::RxRow;
use medrec_core::clean::CleanRow;
use medrec_core::{Flag, Outcome, Reason, Table, Value};
use medrec_testkit::{count, sample_dir, TestDb};
use serde_json::Value as Json;

use crate::medrec;

/// Runs `medrec generate ARGS --out DIR`, asserting success.
/// `medrec generate --out dir` with `args`; its stdout.
pub(crate) fn generate(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["generate", "--out", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    medrec().run_ok_blocking(&all)
}

fn csv_path(dir: &Path, table: Table) -> PathBuf {
    dir.join(format!("{}.csv", table.name()))
}

fn sample_path(table: Table) -> PathBuf {
    sample_dir().join(format!("{}_ae.csv", table.name()))
}

/// What the cleaners make of one table's file.
#[derive(Debug, Default)]
struct Profile {
    raw: u64,
    clean: u64,
    /// Clean rows whose content was already seen (what the loader counts as duplicates).
    duplicates: u64,
    quarantined: BTreeMap<Reason, u64>,
    /// Distinct clean rows carrying each flag.
    flags: BTreeMap<Flag, u64>,
    persons: BTreeSet<i64>,
    /// conditions: the content hashes each id stands for.
    ids: HashMap<i64, HashSet<[u8; 16]>>,
    rows: Vec<medrec_core::CleanedRow>,
}

impl Profile {
    fn quarantined(&self) -> u64 {
        self.quarantined.values().sum()
    }
}

fn profile(path: &Path, table: Table) -> Profile {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut p = Profile::default();
    let mut seen = HashSet::new();
    for outcome in table
        .clean(BufReader::new(file))
        .expect("a cleanable header")
    {
        p.raw += 1;
        match outcome.expect("readable") {
            Outcome::Clean(row) => {
                p.clean += 1;
                p.persons.insert(row.person_id);
                if table == Table::Conditions {
                    if let Value::Int8(Some(id)) = row.values[0] {
                        p.ids.entry(id).or_default().insert(row.row_hash);
                    }
                }
                if !seen.insert(row.row_hash) {
                    p.duplicates += 1;
                    continue;
                }
                for flag in &row.flags {
                    *p.flags.entry(*flag).or_default() += 1;
                }
                p.rows.push(row);
            }
            Outcome::Quarantined(q) => *p.quarantined.entry(q.reason).or_default() += 1,
        }
    }
    p
}

fn header(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn same_seed_same_bytes_and_another_seed_other_bytes() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(a.path(), &["--persons", "300", "--seed", "7"]);
    generate(b.path(), &["--persons", "300", "--seed", "7"]);
    generate(c.path(), &["--persons", "300", "--seed", "8"]);
    for table in Table::ALL {
        let bytes = |dir: &Path| fs::read(csv_path(dir, table)).unwrap();
        assert_eq!(
            bytes(a.path()),
            bytes(b.path()),
            "{table} differs for the same seed"
        );
        assert_ne!(
            bytes(a.path()),
            bytes(c.path()),
            "{table} is the same for another seed"
        );
    }
}

#[test]
fn headers_are_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--persons", "5"]);
    for table in Table::ALL {
        assert_eq!(
            header(&csv_path(dir.path(), table)),
            header(&sample_path(table)),
            "{table}"
        );
    }
    let files: BTreeSet<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = Table::ALL
        .iter()
        .map(|t| format!("{}.csv", t.name()))
        .collect();
    assert_eq!(files, expected);
}

fn text<'a>(
    row: &'a medrec_core::CleanedRow,
    columns: &[medrec_core::Column],
    name: &str,
) -> Option<&'a str> {
    let i = columns.iter().position(|c| c.name == name).unwrap();
    match &row.values[i] {
        Value::Text(t) => t.as_deref(),
        other => panic!("{name} is {other:?}"),
    }
}

/// The generated profile next to the sample's, through the real cleaners: no row quarantined,
/// ten rows per person and table, exact duplicates near the sample's share, and every flag
/// the sample raises raised here too.
#[test]
fn cleaned_profile_matches_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--persons", "2000", "--seed", "1"]);
    let (mut sample_raw, mut sample_dups, mut raw, mut dups) = (0, 0, 0, 0);
    let mut sample_flags = BTreeSet::new();
    let mut flags = BTreeSet::new();
    let mut report = String::new();
    let mut generated = BTreeMap::new();
    for table in Table::ALL {
        let s = profile(&sample_path(table), table);
        let g = profile(&csv_path(dir.path(), table), table);
        report.push_str(&format!(
            "{table:<11} sample raw {:>4} dup {:>5.1}%   generated raw {:>6} dup {:>5.1}% persons {:>5}\n",
            s.raw,
            100.0 * s.duplicates as f64 / s.raw as f64,
            g.raw,
            100.0 * g.duplicates as f64 / g.raw as f64,
            g.persons.len(),
        ));
        for flag in Flag::ALL {
            let (sn, gn) = (
                s.flags.get(&flag).copied().unwrap_or(0),
                g.flags.get(&flag).copied().unwrap_or(0),
            );
            if sn + gn > 0 {
                report.push_str(&format!(
                    "    {:<30} sample {:>5.2}%  generated {:>5.2}%\n",
                    flag.as_str(),
                    100.0 * sn as f64 / (s.raw - s.duplicates) as f64,
                    100.0 * gn as f64 / (g.raw - g.duplicates) as f64
                ));
            }
        }
        assert_eq!(
            s.quarantined(),
            0,
            "{table}: the sample loads without quarantine"
        );
        assert_eq!(g.quarantined(), 0, "{table}: {:?}", g.quarantined);
        assert_eq!(
            g.raw,
            10 * g.persons.len() as u64,
            "{table}: ten rows per person"
        );
        let share = |p: &Profile| p.duplicates as f64 / p.raw as f64;
        assert!(
            (share(&g) - share(&s)).abs() < 0.08,
            "{table}: duplicate share {:.3} vs the sample's {:.3}",
            share(&g),
            share(&s)
        );
        sample_raw += s.raw;
        sample_dups += s.duplicates;
        raw += g.raw;
        dups += g.duplicates;
        sample_flags.extend(s.flags.keys().map(|f| (table, *f)));
        flags.extend(g.flags.keys().map(|f| (table, *f)));
        generated.insert(table, g);
    }
    println!("{report}");
    assert_eq!((sample_raw, sample_dups), (2400, 738));
    let share = dups as f64 / raw as f64;
    assert!((0.26..0.36).contains(&share), "duplicate share {share:.3}");
    let missing: Vec<_> = sample_flags.difference(&flags).collect();
    assert!(
        missing.is_empty(),
        "flags of the sample never raised: {missing:?}\n{report}"
    );

    // The loader keys conditions on `id`: one id, one content.
    let conditions = &generated[&Table::Conditions];
    assert!(
        conditions.ids.values().all(|hashes| hashes.len() == 1),
        "an id with two contents"
    );

    // Alpha blockers: HYTRIN under its misleading label is still one, PROSCAR is not.
    let rx = &generated[&Table::Rx];
    let rx_text = |row, name| text(row, RxRow::COLUMNS, name);
    let hytrin = rx
        .rows
        .iter()
        .find(|r| rx_text(r, "rx_name") == Some("HYTRIN"))
        .expect("a HYTRIN row");
    assert_eq!(rx_text(hytrin, "rx_type"), Some("Quinazoline Derivative"));
    assert_eq!(rx_text(hytrin, "drug_class"), Some("alpha_1_blocker"));
    let proscar = rx
        .rows
        .iter()
        .find(|r| rx_text(r, "rx_name") == Some("PROSCAR"))
        .expect("a PROSCAR row");
    assert_ne!(rx_text(proscar, "drug_class"), Some("alpha_1_blocker"));
    let takers: BTreeSet<i64> = rx
        .rows
        .iter()
        .filter(|r| rx_text(r, "drug_class") == Some("alpha_1_blocker"))
        .map(|r| r.person_id)
        .collect();
    let share = takers.len() as f64 / rx.persons.len() as f64;
    assert!(
        (0.07..0.25).contains(&share),
        "alpha blocker takers {share:.3} (sample 7/48)"
    );
}

/// The defects the issue lists, found in the generated text itself.
#[test]
fn every_defect_class_is_present() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--persons", "1000", "--seed", "3"]);
    let read = |table| fs::read_to_string(csv_path(dir.path(), table)).unwrap();
    let (lifestyle, rx, conditions, labs, tests) = (
        read(Table::Lifestyle),
        read(Table::Rx),
        read(Table::Conditions),
        read(Table::Labs),
        read(Table::Tests),
    );
    let all = [&lifestyle, &rx, &conditions, &labs, &tests];
    for placeholder in ["1926-07-01", "1976-07-01"] {
        assert!(all.iter().any(|t| t.contains(placeholder)), "{placeholder}");
    }
    assert!(rx.contains("01/01/1900"));
    let us_date = |f: &str| {
        f.len() == 10 && f.as_bytes()[2] == b'/' && f.as_bytes()[5] == b'/' && f != "01/01/1900"
    };
    assert!(
        rx.lines().any(|l| l.split(',').any(us_date)),
        "MM/DD/YYYY end dates"
    );
    assert!(
        rx.lines()
            .any(|l| l.split(',').any(|f| f.ends_with(".0") && f.len() > 4)),
        "float-encoded codes"
    );
    assert!(labs.contains(",>60,"), "censored lab values");
    assert!(
        labs.contains(",Hemoglobin (HGB),") && labs.contains(",4548-4,"),
        "hemoglobin under 4548-4"
    );
    assert!(conditions.contains(". "), "dot-space ICD codes");
    assert!(
        tests
            .lines()
            .any(|l| l.contains(",Blood pressure,") && l.contains('/')),
        "blood pressure strings"
    );
    assert!(
        lifestyle.contains(",Systolic Hypertension,") || lifestyle.contains(",Pulse pressure,")
    );
    assert!(
        lifestyle.contains(",General,") && lifestyle.contains(",general,"),
        "case drift"
    );
    assert!(
        rx.contains(",FLOMAX,") && rx.contains(",Flomax,"),
        "rx name case drift"
    );
    assert!(
        rx.contains(",Tyenol,") || rx.contains(",LEVOQUIN,") || rx.contains(",Vallium,"),
        "misspellings"
    );
    assert!(lifestyle.contains(",,"), "empty fields");
    assert!(conditions.contains("\""), "quoted fields with commas");
}

#[test]
fn bad_rows_are_quarantined_and_leave_the_other_rows_alone() {
    let (clean, bad) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(clean.path(), &["--persons", "400", "--seed", "5"]);
    generate(
        bad.path(),
        &["--persons", "400", "--seed", "5", "--bad-row-rate", "0.05"],
    );
    let mut reasons = BTreeSet::new();
    let (mut rows, mut quarantined) = (0, 0);
    for table in Table::ALL {
        let p = profile(&csv_path(bad.path(), table), table);
        rows += p.raw;
        quarantined += p.quarantined();
        reasons.extend(p.quarantined.keys().copied());
        // Bad rows come from their own stream: only the broken lines differ.
        let a = fs::read(csv_path(clean.path(), table)).unwrap();
        let b = fs::read(csv_path(bad.path(), table)).unwrap();
        let (a, b): (Vec<&[u8]>, Vec<&[u8]>) = (
            a.split(|&c| c == b'\n').collect(),
            b.split(|&c| c == b'\n').collect(),
        );
        assert_eq!(a.len(), b.len(), "{table}");
        let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count() as u64;
        assert_eq!(differing, p.quarantined(), "{table}");
    }
    let share = quarantined as f64 / rows as f64;
    assert!(
        (0.035..0.065).contains(&share),
        "quarantined share {share:.3}"
    );
    for reason in [
        Reason::MissingPersonId,
        Reason::InvalidPersonId,
        Reason::MissingRequiredValue,
        Reason::InvalidId,
        Reason::TooFewFields,
        Reason::TooManyFields,
        Reason::NulByte,
        Reason::InvalidUtf8,
    ] {
        assert!(
            reasons.contains(&reason),
            "{reason:?} never produced: {reasons:?}"
        );
    }
}

/// The rows of one CSV file grouped by person, as JSON values (empty field -> null), without
/// the person_id column.
fn csv_rows_by_person(path: &Path) -> (Vec<String>, BTreeMap<String, Vec<Json>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let pid = header.iter().position(|c| c == "person_id").unwrap();
    let mut rows: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let mut object = serde_json::Map::new();
        for (i, (name, value)) in header.iter().zip(record.iter()).enumerate() {
            if i != pid {
                let v = if value.is_empty() {
                    Json::Null
                } else {
                    Json::String(value.into())
                };
                object.insert(name.clone(), v);
            }
        }
        rows.entry(record[pid].to_owned())
            .or_default()
            .push(Json::Object(object));
    }
    (header, rows)
}

#[test]
fn json_files_hold_the_csv_rows_per_person() {
    let (csv_dir, json_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(csv_dir.path(), &["--persons", "60", "--seed", "11"]);
    let stdout = generate(
        json_dir.path(),
        &["--persons", "60", "--seed", "11", "--format", "json"],
    );
    assert!(stdout.contains("wrote 60 person file(s)"), "{stdout}");
    let names: BTreeSet<String> = fs::read_dir(json_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = (1_000_000..1_000_060)
        .map(|id| format!("{id}.json"))
        .collect();
    assert_eq!(names, expected);
    let csv: Vec<(Table, BTreeMap<String, Vec<Json>>)> = Table::ALL
        .iter()
        .map(|&t| (t, csv_rows_by_person(&csv_path(csv_dir.path(), t)).1))
        .collect();
    for name in &names {
        let doc: Json =
            serde_json::from_slice(&fs::read(json_dir.path().join(name)).unwrap()).unwrap();
        let object = doc.as_object().unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected_keys = vec!["schema", "vendor_id", "person_id", "version", "updated_at"];
        expected_keys.extend(Table::ALL.iter().map(|t| t.name()));
        assert_eq!(
            keys.iter().copied().collect::<BTreeSet<_>>(),
            expected_keys.into_iter().collect()
        );
        assert_eq!(doc["schema"], "medrec.vendor-person.v1");
        assert_eq!(doc["vendor_id"], "vendor-a");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["updated_at"], "2026-11-21T08:30:00Z");
        let person = doc["person_id"].as_str().unwrap();
        assert_eq!(format!("{person}.json"), *name);
        for (table, by_person) in &csv {
            let rows = doc[table.name()].as_array().unwrap();
            let expected = by_person.get(person).cloned().unwrap_or_default();
            assert_eq!(rows, &expected, "{name} {table}");
        }
    }
}

fn json_names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn only_picks_a_deterministic_subset_and_versions_add_events() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let base = ["--persons", "1000", "--format", "json", "--only", "25"];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra].concat()
    }
    generate(
        dirs[0].path(),
        &with(
            &base,
            &["--seed", "4", "--version", "2", "--vendor-id", "vendor-b"],
        ),
    );
    generate(
        dirs[1].path(),
        &with(
            &base,
            &["--seed", "4", "--version", "2", "--vendor-id", "vendor-b"],
        ),
    );
    generate(
        dirs[2].path(),
        &with(
            &base,
            &["--seed", "5", "--version", "2", "--vendor-id", "vendor-b"],
        ),
    );
    generate(
        dirs[3].path(),
        &["--persons", "1000", "--format", "json", "--seed", "4"],
    );
    let picked = json_names(dirs[0].path());
    assert_eq!(picked.len(), 25);
    assert_eq!(picked, json_names(dirs[1].path()));
    assert_ne!(
        picked,
        json_names(dirs[2].path()),
        "another seed, another subset"
    );
    for name in &picked {
        let v2 = fs::read(dirs[0].path().join(name)).unwrap();
        assert_eq!(
            v2,
            fs::read(dirs[1].path().join(name)).unwrap(),
            "{name} is not reproducible"
        );
        let v1: Json =
            serde_json::from_slice(&fs::read(dirs[3].path().join(name)).unwrap()).unwrap();
        let v2: Json = serde_json::from_slice(&v2).unwrap();
        assert_eq!(v2["version"], 2);
        assert_eq!(v2["vendor_id"], "vendor-b");
        assert_eq!(v2["updated_at"], "2026-11-22T08:30:00Z");
        let count = |doc: &Json| {
            Table::ALL
                .iter()
                .map(|t| doc[t.name()].as_array().unwrap().len())
                .sum::<usize>()
        };
        assert!(count(&v2) > count(&v1), "{name}: version 2 adds events");
        // Version 2 keeps version 1's rows and adds to them.
        for table in Table::ALL {
            let (old, new) = (
                v1[table.name()].as_array().unwrap(),
                v2[table.name()].as_array().unwrap(),
            );
            assert_eq!(&new[..old.len()], &old[..], "{name} {table}");
        }
    }
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (args, message) in [
        (vec!["--persons", "0"], "--persons"),
        (
            vec!["--persons", "10", "--bad-row-rate", "1.5"],
            "--bad-row-rate",
        ),
        (
            vec!["--persons", "10", "--bad-row-rate", "NaN"],
            "--bad-row-rate",
        ),
        (vec!["--persons", "10", "--only", "11"], "--only"),
        (vec!["--persons", "10", "--version", "0"], "--version"),
        (vec!["--persons", "10", "--vendor-id", "v"], "--vendor-id"),
        (
            vec!["--persons", "10", "--first-person-id", "0"],
            "--first-person-id",
        ),
        (
            vec![
                "--persons",
                "10",
                "--first-person-id",
                "9223372036854775807",
            ],
            "--first-person-id",
        ),
        (vec!["--persons", "ten"], "--persons"),
        (vec!["--persons", "10", "--format", "xml"], "--format"),
    ] {
        let mut all = vec!["generate", "--out", out];
        all.extend(args.iter().copied());
        let output = medrec().run_blocking(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{all:?} succeeded");
        assert!(stderr.contains(message), "{all:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{all:?}: {stderr}");
    }
    let file = dir.path().join("a-file");
    fs::write(&file, "").unwrap();
    let output = medrec().run_blocking(&[
        "generate",
        "--persons",
        "3",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

/// The loader takes generated files as they are: duplicates dropped, bad rows quarantined for
/// the reasons they were broken with, no id conflicts.
#[tokio::test]
async fn generated_files_load() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &["--persons", "300", "--seed", "2", "--bad-row-rate", "0.01"],
    );
    let db = TestDb::migrated().await.unwrap();
    medrec()
        .on(&db)
        .run_ok(&["ingest", dir.path().to_str().unwrap()])
        .await;
    let client = db.client().await.unwrap();
    let runs = client
        .query(
            "SELECT raw_rows, loaded_rows, duplicate_rows, quarantined_rows FROM ingest_run",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 5);
    let total = |i: usize| runs.iter().map(|r| r.get::<_, i64>(i)).sum::<i64>();
    assert!(total(2) > total(0) / 5, "duplicates are dropped");
    assert!(total(3) > 0, "bad rows are quarantined");
    let conflicts = count(
        &client,
        "SELECT count(*) FROM quarantine WHERE reason = 'conflicting_id'",
    )
    .await;
    assert_eq!(conflicts, 0);
}

#[test]
fn generating_shows_progress_on_stderr_unless_quiet() {
    for quiet in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = medrec().command();
        command
            .env("MEDREC_PROGRESS_EVERY_MS", "1")
            .args(["generate", "--persons", "20000", "--out"])
            .arg(dir.path());
        if quiet {
            command.arg("--quiet");
        }
        let output = command.output().unwrap();
        assert!(output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let progress: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("progress: "))
            .collect();
        if quiet {
            assert!(progress.is_empty(), "{stderr}");
        } else {
            let line = progress.last().unwrap_or_else(|| panic!("{stderr}"));
            assert!(line.contains("% of 20000 persons"), "{line}");
        }
        assert!(String::from_utf8_lossy(&output.stdout).starts_with("table "));
    }
}
