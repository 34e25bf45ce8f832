//! Features on the real sample and on hand-made edge cases, against a real PostgreSQL.
//! Expected values were checked by hand against the raw rows (and by an independent script).

use chrono::NaiveDate;
use medrec_core::features::FEATURES;
use medrec_core::reader::sha256_hex;
use medrec_core::Table;
use medrec_store::features::{explain, read, refresh};
use medrec_store::{ingest, Source};
use medrec_testkit::{load_sample, TestDb};
use serde_json::{json, Value as Json};
use tokio_postgres::Client;

async fn load(client: &mut Client, table: Table, name: &str, bytes: Vec<u8>) {
    let source = Source {
        table,
        name: name.into(),
        version: None,
        sha256: Some(sha256_hex(&bytes[..]).unwrap()),
    };
    ingest(client, source, std::io::Cursor::new(bytes))
        .await
        .unwrap();
}

async fn sample_db() -> (TestDb, Client) {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    load_sample(&mut client).await.unwrap();
    (db, client)
}

async fn features_of(
    client: &Client,
    person: i64,
    as_of: Option<NaiveDate>,
) -> serde_json::Map<String, Json> {
    read(client, Some(&[person]), as_of)
        .await
        .unwrap()
        .remove(0)
        .values
}

#[tokio::test]
async fn required_features_match_hand_checked_persons() {
    let (_db, client) = sample_db().await;
    assert_eq!(refresh(&client, None).await.unwrap(), 50);
    let cases = [
        // person, taking_alpha_blockers, hgb_latest, hgb_latest_date, encounters_6m
        (3585, json!(true), json!(null), json!(null), json!(5)), // FLOMAX x10 (one distinct row)
        (3591, json!(true), json!(null), json!(null), json!(2)), // HYTRIN, labelled "Quinazoline Derivative"
        (3583, json!(false), json!(null), json!(null), json!(2)), // PROSCAR only
        (3624, json!(false), json!(null), json!(null), json!(5)), // PROSCAR only
        (3604, json!(false), json!(null), json!(null), json!(2)), // ALPHA-LIPOIC ACID
        (3596, json!(true), json!(null), json!(null), json!(6)), // Flomax by DIN, "Alpha 1 Blockers"
        (
            3597,
            json!(true),
            json!(11.5),
            json!("2035-01-14"),
            json!(4),
        ), // two hemoglobin results
        (3599, json!(null), json!(null), json!(null), json!(4)), // no rx rows at all
        (3616, json!(null), json!(null), json!(null), json!(1)), // no rx, no labs
        (
            3607,
            json!(false),
            json!(10.8),
            json!("2045-08-22"),
            json!(4),
        ),
    ];
    for (person, alpha, hgb, hgb_date, encounters) in cases {
        let f = features_of(&client, person, None).await;
        assert_eq!(f["taking_alpha_blockers"], alpha, "{person}");
        assert_eq!(f["hgb_latest"], hgb, "{person}");
        assert_eq!(f["hgb_latest_date"], hgb_date, "{person}");
        assert_eq!(f["encounters_6m"], encounters, "{person}");
    }
}

#[tokio::test]
async fn features_as_of_a_past_date_ignore_later_rows() {
    let (_db, client) = sample_db().await;
    // 3597's hemoglobin: 10.2 on 2034-10-21, 11.5 on 2035-01-14.
    let before = features_of(&client, 3597, NaiveDate::from_ymd_opt(2035, 1, 13)).await;
    assert_eq!(before["hgb_latest"], json!(10.2));
    assert_eq!(before["hgb_latest_date"], json!("2034-10-21"));
    let index: &str = before["index_date"].as_str().unwrap();
    assert!(index <= "2035-01-13", "{index}");
    // Before 3591's HYTRIN (rx_date 2032-06-15) and FLOMAX (2033-06-18) were documented.
    // 3591 has other prescriptions before that (ACCUPRIL, PROTONIX...), so false, not NULL.
    let day_before = features_of(&client, 3591, NaiveDate::from_ymd_opt(2032, 6, 14)).await;
    assert_eq!(day_before["taking_alpha_blockers"], json!(false));
    let that_day = features_of(&client, 3591, NaiveDate::from_ymd_opt(2032, 6, 15)).await;
    assert_eq!(that_day["taking_alpha_blockers"], json!(true));
    // Before any of 3591's prescriptions: no rx data, so NULL.
    let no_rx_yet = features_of(&client, 3591, NaiveDate::from_ymd_opt(2027, 1, 1)).await;
    assert_eq!(no_rx_yet["taking_alpha_blockers"], json!(null));
}

type Snapshot = Vec<(i64, std::time::SystemTime, String)>;

async fn snapshot(client: &Client) -> Snapshot {
    client
        .query(
            "SELECT person_id, computed_at, (to_jsonb(pf) - 'computed_at')::text
             FROM person_features pf ORDER BY person_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn encounter_window_includes_exactly_six_months_and_not_a_day_more() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let header = "feature,value,report_date,person_id\n";
    let rows = [
        "2034-07-15", // index date
        "2034-07-15", // same day: one encounter
        "2034-03-01",
        "2034-01-15", // exactly 6 calendar months before: counts
        "2034-01-14", // one day earlier: does not
        "1926-07-01", // placeholder: never counts
    ];
    let mut file = header.to_owned();
    for (i, date) in rows.iter().enumerate() {
        file.push_str(&format!("Pain,p{i},{date},1\n"));
    }
    load(
        &mut client,
        Table::Lifestyle,
        "lifestyle_edges.csv",
        file.into_bytes(),
    )
    .await;
    refresh(&client, None).await.unwrap();
    let f = features_of(&client, 1, None).await;
    assert_eq!(f["encounters_6m"], json!(3));
    assert_eq!(f["index_date"], json!("2034-07-15"));
    // No rx and no labs: NULL, not false or zero.
    assert_eq!(f["taking_alpha_blockers"], json!(null));
    assert_eq!(f["hgb_latest"], json!(null));
    // Month-end arithmetic: 6 months before 2034-08-31 is 2034-02-28.
    let month_end = "feature,value,report_date,person_id\nPain,a,2034-08-31,2\nPain,b,2034-02-28,2\nPain,c,2034-02-27,2\n";
    load(
        &mut client,
        Table::Lifestyle,
        "lifestyle_month_end.csv",
        month_end.into(),
    )
    .await;
    refresh(&client, Some(&[2])).await.unwrap();
    assert_eq!(
        features_of(&client, 2, None).await["encounters_6m"],
        json!(2)
    );
}

#[tokio::test]
async fn recomputing_a_subset_leaves_others_untouched_and_is_idempotent() {
    let (_db, client) = sample_db().await;
    refresh(&client, None).await.unwrap();
    let before = snapshot(&client).await;
    assert_eq!(refresh(&client, Some(&[3585, 3597])).await.unwrap(), 2);
    let after = snapshot(&client).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.2, a.2, "values of {} changed", b.0);
        if [3585, 3597].contains(&b.0) {
            assert!(a.1 > b.1, "{} was not recomputed", b.0);
        } else {
            assert_eq!(a.1, b.1, "{} was touched", b.0);
        }
    }
}

#[tokio::test]
async fn the_catalogue_names_exactly_the_sql_features() {
    let db = TestDb::migrated().await.unwrap();
    let client = db.client().await.unwrap();
    let statement = client
        .prepare("SELECT * FROM person_features_as_of(NULL, NULL)")
        .await
        .unwrap();
    let mut sql: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    let mut catalogue: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    catalogue.push("person_id");
    sql.sort();
    catalogue.sort();
    assert_eq!(sql, catalogue);
}

#[tokio::test]
async fn censored_lab_results_are_bounds_not_values_and_invalid_codes_are_no_data() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    // Person 1: an exact hemoglobin, then a newer censored one (`<7`): the exact one is the
    // latest value. Person 2: only a censored result: no value.
    let labs = "impairment_category,impairment,feature_type,loinc,feature_date,feature,value,normal_range_of_value,result_evaluation_or_flag,person_id\n\
        labs,CBC,Labs,718-7,2034-01-10,Hemoglobin,12.5,13.5-17.5,Low,1\n\
        labs,CBC,Labs,718-7,2034-03-10,Hemoglobin,<7,13.5-17.5,Low,1\n\
        labs,CBC,Labs,718-7,2034-03-10,Hemoglobin,>20,13.5-17.5,High,2\n";
    load(&mut client, Table::Labs, "labs_censored.csv", labs.into()).await;
    // Person 3: conditions whose codes are all invalid: no category known (NULL, not 0).
    // Person 4: one valid code.
    let conditions = "id,impairment_category,impairment,feature_type,feature,icd_code,report_date,clinician_specialty,value,person_id\n\
        1,conditions,Pain,Condition,Back pain,XYZ,2034-02-01,,,3\n\
        2,conditions,Pain,Condition,Back pain,,2034-02-02,,,3\n\
        3,conditions,Hypertension,Condition,Hypertension,I10,2034-02-01,,,4\n";
    load(
        &mut client,
        Table::Conditions,
        "conditions_codes.csv",
        conditions.into(),
    )
    .await;
    refresh(&client, None).await.unwrap();
    let one = features_of(&client, 1, None).await;
    assert_eq!(one["hgb_latest"], json!(12.5));
    assert_eq!(one["hgb_latest_date"], json!("2034-01-10"));
    let two = features_of(&client, 2, None).await;
    assert_eq!(two["hgb_latest"], json!(null));
    assert_eq!(two["hgb_latest_date"], json!(null));
    assert_eq!(
        features_of(&client, 3, None).await["condition_categories"],
        json!(null)
    );
    assert_eq!(
        features_of(&client, 4, None).await["condition_categories"],
        json!(1)
    );
}

/// The sample file's line `n` (1-based, the header is line 1).
fn sample_line(file: &str, n: i64) -> String {
    let text = String::from_utf8(medrec_testkit::sample(file)).unwrap();
    text.lines()
        .nth(usize::try_from(n - 1).unwrap())
        .unwrap()
        .to_owned()
}

/// `(source, source_line)` of each row an explanation lists.
fn rows_of(explanation: &Json) -> Vec<(String, i64)> {
    explanation
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_owned(),
                r["source_line"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn explain_lists_exactly_the_rows_that_decided_each_feature() {
    let (_db, client) = sample_db().await;
    // load_sample records each file by its name.
    let source = |file: &str| file.to_owned();

    // 3591: the alpha-blocker rx rows (HYTRIN and FLOMAX), and nothing else.
    let (doc, why) = explain(&client, 3591, None).await.unwrap().unwrap();
    assert_eq!(doc.features.values["taking_alpha_blockers"], json!(true));
    let alpha = rows_of(&why["taking_alpha_blockers"]);
    let expected: Vec<(String, i64)> = client
        .query(
            "SELECT r.source, x.source_line FROM rx x JOIN ingest_run r USING (run_id)
             WHERE x.person_id = 3591 AND x.drug_class = 'alpha_1_blocker'
             ORDER BY x.run_id, x.source_line",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(alpha, expected);
    assert!(!alpha.is_empty());
    for (file, line) in &alpha {
        assert_eq!(file, &source("rx_ae.csv"));
        let raw = sample_line("rx_ae.csv", *line).to_uppercase();
        assert!(raw.ends_with(",3591"), "{raw}");
        assert!(raw.contains("HYTRIN") || raw.contains("FLOMAX"), "{raw}");
    }
    // Its encounters: the dates counted, ending at the index date.
    let encounters = &why["encounters_6m"];
    let dates = encounters["dates"].as_array().unwrap();
    assert_eq!(json!(dates.len()), doc.features.values["encounters_6m"]);
    assert_eq!(dates.last().unwrap(), &doc.features.values["index_date"]);
    assert_eq!(encounters["index_date"], doc.features.values["index_date"]);

    // 3597: the one lab row of the latest hemoglobin (11.5 on 2035-01-14).
    let (doc, why) = explain(&client, 3597, None).await.unwrap().unwrap();
    assert_eq!(doc.features.values["hgb_latest"], json!(11.5));
    let hgb = rows_of(&why["hgb_latest"]);
    assert_eq!(hgb.len(), 1);
    assert_eq!(hgb[0].0, source("labs_ae.csv"));
    let raw = sample_line("labs_ae.csv", hgb[0].1);
    assert!(
        raw.contains("2035-01-14") && raw.contains(",11.5,") && raw.ends_with(",3597"),
        "{raw}"
    );
    assert_eq!(why["hgb_latest_date"], why["hgb_latest"]);
    // As of the day before, the earlier result decides.
    let (_, before) = explain(&client, 3597, NaiveDate::from_ymd_opt(2035, 1, 13))
        .await
        .unwrap()
        .unwrap();
    let raw = sample_line("labs_ae.csv", rows_of(&before["hgb_latest"])[0].1);
    assert!(
        raw.contains("2034-10-21") && raw.contains(",10.2,"),
        "{raw}"
    );

    // 3599: no rx rows, so no value and nothing to explain.
    let (doc, why) = explain(&client, 3599, None).await.unwrap().unwrap();
    assert_eq!(doc.features.values["taking_alpha_blockers"], json!(null));
    assert!(why.get("taking_alpha_blockers").is_none(), "{why}");
    assert!(why.get("hgb_latest").is_none(), "{why}");
    assert_eq!(
        json!(why["encounters_6m"]["dates"].as_array().unwrap().len()),
        doc.features.values["encounters_6m"]
    );
    // Every feature with a value is explained, and none without one.
    for person in [3591, 3597, 3599, 3607, 3615] {
        let (doc, why) = explain(&client, person, None).await.unwrap().unwrap();
        for feature in FEATURES {
            assert_eq!(
                why.get(feature.name).is_some(),
                !doc.features.values[feature.name].is_null(),
                "{person} {}: {why}",
                feature.name
            );
        }
    }
    assert!(explain(&client, 999_999, None).await.unwrap().is_none());
}

#[tokio::test]
async fn bonus_features_match_hand_checked_persons() {
    let (_db, client) = sample_db().await;
    refresh(&client, None).await.unwrap();
    // Checked against the raw rows. 3611: index date 2044-09-15 (A1c, LDL, chloride that day);
    // blood pressure 138/64 on 2043-12-24; "non-smoker"; rx in 2043-09-15..2044-09-15:
    // acetaminophen, ASA, enoxaparin, glipizide, Lasix, letrozole, nitroglycerin; ICD codes
    // C50.919, G47.30, I20.9, N18.9, R60.9; of its 7 labs in the window BUN 39 (7-25), sodium
    // 134 (136-145), eGFR 26 (>60) and A1c 8.1 (4.0-6.0) are out of range: 4/7.
    let f = features_of(&client, 3611, None).await;
    let expected = json!({
        "index_date": "2044-09-15", "bp_systolic_latest": 138, "bp_diastolic_latest": 64,
        "bp_latest_date": "2043-12-24", "a1c_latest": 8.1, "ldl_latest": 121.0,
        "creatinine_latest": null, "smoking_status": "never", "active_medications_12m": 7,
        "condition_categories": 5, "abnormal_lab_share_12m": 4.0 / 7.0,
    });
    for (name, value) in expected.as_object().unwrap() {
        assert_eq!(&f[name], value, "3611 {name}");
    }
    // 3613: index date 2034-05-07 (Prevacid); 136/84 on 2034-02-01; A1c 5.6 and LDL 162 on
    // 2034-02-02, creatinine 0.6 on 2034-01-30; no smoking row; rx in 2033-05-07..2034-05-07:
    // Flonase, fluoxetine, Vesicare, Prevacid; codes C44.91, J18.9, K21.9.
    let f = features_of(&client, 3613, None).await;
    let expected = json!({
        "index_date": "2034-05-07", "bp_systolic_latest": 136, "bp_diastolic_latest": 84,
        "bp_latest_date": "2034-02-01", "a1c_latest": 5.6, "ldl_latest": 162.0,
        "creatinine_latest": 0.6, "smoking_status": null, "active_medications_12m": 4,
        "condition_categories": 3,
    });
    for (name, value) in expected.as_object().unwrap() {
        assert_eq!(&f[name], value, "3613 {name}");
    }
    // As of the day before 3613's A1c and LDL: neither is known yet, the creatinine is.
    let before = features_of(&client, 3613, NaiveDate::from_ymd_opt(2034, 2, 1)).await;
    assert_eq!(before["a1c_latest"], json!(null));
    assert_eq!(before["ldl_latest"], json!(null));
    assert_eq!(before["creatinine_latest"], json!(0.6));
    assert_eq!(before["bp_latest_date"], json!("2034-02-01"));
}
