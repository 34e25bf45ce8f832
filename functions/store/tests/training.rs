//! Training sets against a real PostgreSQL: features at each spine row's cutoff (event time) and
//! as the tables were known at an instant (knowledge time), on hand-checked sample persons and
//! hand-made loads; and the BMI from the units recorded.

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use medrec_core::features::FEATURES;
use medrec_core::reader::sha256_hex;
use medrec_core::Table;
use medrec_store::features::{read, refresh};
use medrec_store::training::{begin_spine, features_at_cutoffs, provenance};
use medrec_store::vendor::{ingest_vendor_file, VendorSource, VendorStatus};
use medrec_store::{ingest, Source};
use medrec_testkit::{load_sample, TestDb};
use serde_json::{json, Map, Value as Json};
use tokio_postgres::Client;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The training rows of `spine` (person, cutoff), in spine order.
async fn training(
    client: &Client,
    spine: &[(i64, &str)],
    known_at: Option<DateTime<Utc>>,
) -> Vec<Map<String, Json>> {
    let mut writer = begin_spine(client).await.unwrap();
    for (person, cutoff) in spine {
        writer.push(*person, date(cutoff)).await.unwrap();
    }
    assert_eq!(writer.finish(client).await.unwrap(), spine.len() as i64);
    let rows: Vec<_> = features_at_cutoffs(client, known_at)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let numbers: Vec<i64> = rows.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=spine.len() as i64).collect::<Vec<_>>());
    for ((_, row), (person, _)) in rows.iter().zip(spine) {
        assert_eq!(row.person_id, *person);
    }
    rows.into_iter().map(|(_, f)| f.values).collect()
}

fn all_null(row: &Map<String, Json>) -> bool {
    FEATURES.iter().all(|f| row[f.name].is_null())
}

async fn load_csv(client: &mut Client, table: Table, name: &str, bytes: &str) -> i64 {
    let source = Source {
        table,
        name: name.into(),
        version: None,
        sha256: Some(sha256_hex(bytes.as_bytes()).unwrap()),
    };
    ingest(
        client,
        source,
        std::io::Cursor::new(bytes.as_bytes().to_vec()),
    )
    .await
    .unwrap()
    .run_id
}

async fn finished_at(client: &Client, run_id: i64) -> DateTime<Utc> {
    client
        .query_one(
            "SELECT finished_at FROM ingest_run WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .unwrap()
        .get(0)
}

const LABS_HEADER: &str = "impairment_category,impairment,feature_type,loinc,feature_date,feature,value,normal_range_of_value,result_evaluation_or_flag,person_id\n";
const TESTS_HEADER: &str =
    "impairment_category,impairment,feature_type,feature,icd_code,report_date,value,person_id\n";

#[tokio::test]
async fn each_row_has_the_features_as_of_its_own_cutoff() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    load_sample(&mut client).await.unwrap();
    // 3597: first event an rx (PROSCAR) on 2031-09-16; hemoglobin 10.2 on 2034-10-21 and 11.5
    // on 2035-01-14. 3591: HYTRIN documented 2032-06-15, earlier prescriptions without one.
    // 999999 is no one.
    let rows = training(
        &client,
        &[
            (3597, "2031-09-15"), // the day before any event: nothing known
            (3597, "2031-09-16"), // on the first event's day
            (3597, "2035-01-13"), // the day before the second hemoglobin
            (3597, "2035-01-14"), // on its day
            (3591, "2032-06-14"),
            (3591, "2032-06-15"),
            (999_999, "2035-01-01"),
            (3597, "2031-09-15"), // the same example again: the same answer
        ],
        None,
    )
    .await;
    assert!(all_null(&rows[0]), "{:?}", rows[0]);
    assert_eq!(rows[1]["index_date"], json!("2031-09-16"));
    assert_eq!(rows[1]["taking_alpha_blockers"], json!(false)); // PROSCAR is not one
    assert_eq!(rows[1]["encounters_6m"], json!(1));
    assert_eq!(rows[1]["active_medications_12m"], json!(1));
    assert_eq!(rows[1]["hgb_latest"], json!(null));
    assert_eq!(rows[2]["hgb_latest"], json!(10.2));
    assert_eq!(rows[2]["hgb_latest_date"], json!("2034-10-21"));
    assert_eq!(rows[3]["hgb_latest"], json!(11.5));
    assert_eq!(rows[3]["hgb_latest_date"], json!("2035-01-14"));
    assert_eq!(rows[3]["index_date"], json!("2035-01-14"));
    assert_eq!(rows[4]["taking_alpha_blockers"], json!(false));
    assert_eq!(rows[5]["taking_alpha_blockers"], json!(true));
    assert!(all_null(&rows[6]), "an unknown person is a NULL row");
    assert_eq!(rows[7], rows[0]);
}

#[tokio::test]
async fn a_spine_at_one_date_is_the_as_of_export_and_known_now_is_current() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    load_sample(&mut client).await.unwrap();
    refresh(&client, None).await.unwrap();
    let persons: Vec<i64> =
        medrec_testkit::column(&client, "SELECT person_id FROM person ORDER BY 1").await;
    assert_eq!(persons.len(), 50);
    for cutoff in ["2030-01-01", "2036-06-30", "9999-12-31"] {
        let spine: Vec<(i64, &str)> = persons.iter().map(|p| (*p, cutoff)).collect();
        let as_of: Vec<_> = read(&client, None, Some(date(cutoff)))
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.values)
            .collect();
        assert_eq!(training(&client, &spine, None).await, as_of, "{cutoff}");
        // Known at now (after every load) is the tables as they are.
        assert_eq!(
            training(&client, &spine, Some(Utc::now())).await,
            as_of,
            "{cutoff}"
        );
    }
    // Before any load nothing was known: every row NULL.
    let spine: Vec<(i64, &str)> = persons.iter().map(|p| (*p, "9999-12-31")).collect();
    let before: DateTime<Utc> = "2000-01-01T00:00:00Z".parse().unwrap();
    assert!(training(&client, &spine, Some(before))
        .await
        .iter()
        .all(all_null));
    let nothing = provenance(&client, Some(before)).await.unwrap();
    assert_eq!((nothing.runs, nothing.loaded_through), (0, None));
    assert_eq!(provenance(&client, None).await.unwrap().runs, 5);
}

#[tokio::test]
async fn known_at_between_two_loads_does_not_see_the_later_file() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let first = load_csv(
        &mut client,
        Table::Labs,
        "labs_a.csv",
        &format!("{LABS_HEADER}labs,CBC,Labs,718-7,2034-01-10,Hemoglobin,12.5,13.5-17.5,Low,7\n"),
    )
    .await;
    let between = finished_at(&client, first).await;
    let second = load_csv(
        &mut client,
        Table::Labs,
        "labs_b.csv",
        &format!(
            "{LABS_HEADER}labs,CBC,Labs,718-7,2034-03-10,Hemoglobin,14.1,13.5-17.5,Normal,7\n"
        ),
    )
    .await;
    assert!(finished_at(&client, second).await > between);
    let spine = [(7, "2035-01-01")];
    let then = training(&client, &spine, Some(between)).await;
    assert_eq!(then[0]["hgb_latest"], json!(12.5));
    assert_eq!(then[0]["hgb_latest_date"], json!("2034-01-10"));
    assert_eq!(then[0]["index_date"], json!("2034-01-10"));
    let now = training(&client, &spine, None).await;
    assert_eq!(now[0]["hgb_latest"], json!(14.1));
    assert_eq!(now[0]["encounters_6m"], json!(2));
    let seen = provenance(&client, Some(between)).await.unwrap();
    assert_eq!((seen.runs, seen.loaded_through), (1, Some(between)));
}

fn smoking_file(version: i64, value: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schema": "medrec.vendor-person.v1",
        "vendor_id": "acme",
        "person_id": "42",
        "version": version,
        "updated_at": "2026-11-21T08:30:00Z",
        "lifestyle": [{"feature": "Smoking", "report_date": "2030-01-02", "value": value}],
        "rx": [], "conditions": [], "labs": [], "tests": [],
    }))
    .unwrap()
}

#[tokio::test]
async fn a_vendor_update_supersedes_rows_that_known_at_before_it_brings_back() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let source = VendorSource {
        name: "vendor/acme/42.json".into(),
        version: None,
    };
    let v1 = ingest_vendor_file(&mut client, &source, smoking_file(1, "never smoked"))
        .await
        .unwrap();
    assert!(matches!(v1.status, VendorStatus::Loaded));
    let after_v1: DateTime<Utc> = client
        .query_one("SELECT max(finished_at) FROM ingest_run", &[])
        .await
        .unwrap()
        .get(0);
    let v2 = ingest_vendor_file(&mut client, &source, smoking_file(2, "current smoker"))
        .await
        .unwrap();
    assert!(matches!(v2.status, VendorStatus::Loaded));

    // Current reads see only version 2; the old row is kept, superseded, not deleted.
    let current: Vec<String> =
        medrec_testkit::column(&client, "SELECT value FROM lifestyle WHERE person_id = 42").await;
    assert_eq!(current, ["current smoker"]);
    let superseded = client
        .query_one(
            "SELECT (clean_row).value, superseded_by_version, superseded_at
             FROM lifestyle_superseded WHERE (clean_row).person_id = 42",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(superseded.get::<_, String>(0), "never smoked");
    assert_eq!(superseded.get::<_, i64>(1), 2);
    // One instant: version 2's runs finished exactly when version 1's rows stopped being known.
    let v2_finished: DateTime<Utc> = client
        .query_one("SELECT max(finished_at) FROM ingest_run", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(superseded.get::<_, DateTime<Utc>>(2), v2_finished);

    let spine = [(42, "2031-01-01")];
    let then = training(&client, &spine, Some(after_v1)).await;
    assert_eq!(then[0]["smoking_status"], json!("never"));
    let at_v2 = training(&client, &spine, Some(v2_finished)).await;
    assert_eq!(at_v2[0]["smoking_status"], json!("current"));
    let now = training(&client, &spine, None).await;
    assert_eq!(now[0]["smoking_status"], json!("current"));
    // The API's reads are unchanged: one current row.
    refresh(&client, None).await.unwrap();
    assert_eq!(
        read(&client, Some(&[42]), None).await.unwrap()[0].values["smoking_status"],
        json!("current")
    );
}

#[tokio::test]
async fn bmi_uses_the_recorded_units_and_pairs_weight_with_the_nearest_height() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let rows = [
        // 1: metric units: 82 kg / 1.80 m^2 = 25.31 (taken as pounds it would be 11.2).
        "Basic,Weight,Test,Weight,,2034-01-10,82 kg,1",
        "Basic,Height,Test,Height,,2034-01-10,180 cm,1",
        // 2: no unit is the feed's lb and in; the height nearest the latest weight is used
        // (2033-12-01, not 2030-01-01): 180 lb, 70 in = 25.83.
        "Basic,Weight,Test,Weight,,2034-01-10,180,2",
        "Basic,Height,Test,Height,,2030-01-01,64,2",
        "Basic,Height,Test,Height,,2033-12-01,70,2",
        // 3: the only height is more than 3 years from the weight: no measured BMI; a recorded
        // one older than the weight is the latest BMI there is.
        "Basic,Weight,Test,Weight,,2034-01-10,180,3",
        "Basic,Height,Test,Height,,2030-01-01,70,3",
        "Basic,BMI,Test,BMI,,2029-05-05,24.5,3",
        // 4: a recorded BMI newer than the measured one wins.
        "Basic,Weight,Test,Weight,,2034-01-10,82 kg,4",
        "Basic,Height,Test,Height,,2034-01-10,1.8 m,4",
        "Basic,BMI,Test,BMI,,2034-06-01,26.1 kg/m2,4",
        // 5: an implausible weight (82 lb written as 820) and a unit the feature does not know.
        "Basic,Weight,Test,Weight,,2034-01-10,820,5",
        "Basic,Weight,Test,Weight,,2034-01-11,82 mmHg,5",
        "Basic,Height,Test,Height,,2034-01-10,70,5",
    ];
    let csv = format!("{TESTS_HEADER}{}\n", rows.join("\n"));
    load_csv(&mut client, Table::Tests, "tests_bmi.csv", &csv).await;
    refresh(&client, None).await.unwrap();
    let features = read(&client, None, None).await.unwrap();
    let bmi: Vec<(i64, Json, Json)> = features
        .iter()
        .map(|f| {
            (
                f.person_id,
                f.values["bmi_latest"].clone(),
                f.values["bmi_latest_date"].clone(),
            )
        })
        .collect();
    assert_eq!(
        bmi,
        [
            (1, json!(25.31), json!("2034-01-10")),
            (2, json!(25.83), json!("2034-01-10")),
            (3, json!(24.5), json!("2029-05-05")),
            (4, json!(26.1), json!("2034-06-01")),
            (5, json!(null), json!(null)),
        ]
    );
    // As of the day before person 4's recorded BMI, the measured one is the latest.
    let before = training(&client, &[(4, "2034-05-31")], None).await;
    assert_eq!(before[0]["bmi_latest"], json!(25.31));
    assert_eq!(before[0]["bmi_latest_date"], json!("2034-01-10"));
}

#[tokio::test]
async fn bmi_of_hand_checked_sample_persons() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    load_sample(&mut client).await.unwrap();
    refresh(&client, None).await.unwrap();
    let cases = [
        // 3593: 120 lb and 63 in on 2030-12-24 (a recorded 21 on 2030-04-21 is older).
        (3593, json!(21.26), json!("2030-12-24")),
        // 3615: 150 lb on 2044-11-29, 66 in on 2043-04-12 (595 days apart); the recorded
        // 24.21 of 2044-04-30 is older than the weight.
        (3615, json!(24.21), json!("2044-11-29")),
        // 3626: 166 lb on 2037-03-20, 62.5 in on 2034-10-16 (886 days apart).
        (3626, json!(29.88), json!("2037-03-20")),
        // 3628: a height and no weight; the recorded 22.2 of 2040-04-11.
        (3628, json!(22.2), json!("2040-04-11")),
        // 3621: recorded only, the later of two.
        (3621, json!(35.65), json!("2035-02-20")),
        // 3582: weights only.
        (3582, json!(null), json!(null)),
    ];
    for (person, bmi, on) in cases {
        let f = &read(&client, Some(&[person]), None).await.unwrap()[0].values;
        assert_eq!(
            (&f["bmi_latest"], &f["bmi_latest_date"]),
            (&bmi, &on),
            "{person}"
        );
    }
}
