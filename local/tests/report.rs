//! `medrec report` on the ingested sample, rendered by a real browser (Debian's `chromium`,
//! headless, `--dump-dom`): the page shows the sample's counts per table, every quarantine reason
//! in the database, charts, and no record value.

use std::path::Path;
use std::process::Command;

use medrec_api::report_page::thousands;
use medrec_testkit::TestDb;

use crate::medrec;

/// The DOM as headless Chromium renders the page, from disk, offline.
fn rendered_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            // Offline: any request off the page would fail rather than reach a network.
            "--proxy-server=127.0.0.1:9",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("running chromium (apt-get install -y chromium; make test installs it)");
    assert!(
        output.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn strings(db: &TestDb, sql: &str) -> Vec<String> {
    medrec_testkit::column(&db.client().await.unwrap(), sql).await
}

#[tokio::test]
async fn the_report_shows_the_samples_counts_reasons_and_charts_and_no_record_value() {
    let db = TestDb::migrated().await.unwrap();
    let sample = medrec_testkit::sample_dir();
    medrec()
        .on(&db)
        .run_ok(&["ingest", sample.to_str().unwrap()])
        .await;
    // The sample quarantines nothing: a second labs file with lines that cannot load.
    let extra = tempfile::tempdir().unwrap();
    let header = std::fs::read_to_string(sample.join("labs_ae.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    std::fs::write(
        extra.path().join("labs_extra.csv"),
        format!(
            "{header}\n\
             labs,CMP Panel,Labs,1558-6,2034-08-14,Glucose,107,65-99,High,3585\n\
             labs,CMP Panel,Labs,1558-6,2034-08-14\n\
             labs,CMP Panel,Labs,1558-6,2034-08-14,Glucose,99,65-99,Normal,\n\
             labs,CMP Panel,Labs,1558-6,2034-08-15,Glucose,98,65-99,Normal,P-12\n"
        ),
    )
    .unwrap();
    medrec()
        .on(&db)
        .run_ok(&["ingest", extra.path().to_str().unwrap()])
        .await;
    let out = tempfile::tempdir().unwrap();
    let stdout = medrec()
        .on(&db)
        .run_ok(&["report", "--out", out.path().to_str().unwrap()])
        .await;
    let page = out.path().join("index.html");
    assert_eq!(stdout.trim(), page.display().to_string());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "no script");
    for reference in ["src=", "href=", "url(", "@import"] {
        assert!(
            !html.contains(reference),
            "the page fetches nothing: {reference}"
        );
    }

    let dom = rendered_dom(&page);
    // Each table's row: its clean rows and what its loads read, as in ingest_run.
    let client = db.client().await.unwrap();
    for row in client
        .query(
            "SELECT table_name, sum(raw_rows)::bigint, sum(duplicate_rows)::bigint,
                    sum(quarantined_rows)::bigint, count(*)
             FROM ingest_run WHERE status = 'loaded' GROUP BY 1",
            &[],
        )
        .await
        .unwrap()
    {
        let table: String = row.get(0);
        let clean: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        let expected = format!(
            "<tr data-table=\"{table}\"><td>{table}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            thousands(clean),
            thousands(row.get(4)),
            thousands(row.get(1)),
            thousands(row.get(2)),
            thousands(row.get(3)),
        );
        assert!(
            dom.contains(&expected),
            "{table}: {expected} not in the page"
        );
    }
    // Every quarantine reason present in the database.
    let reasons = strings(&db, "SELECT DISTINCT reason FROM quarantine").await;
    assert!(reasons.len() >= 2, "{reasons:?}");
    for reason in &reasons {
        assert!(
            dom.contains(&format!("data-reason=\"{reason}\"")),
            "{reason} is not on the page"
        );
    }
    // Charts: feature histograms and the trend.
    assert!(dom.matches("<svg").count() >= 2, "charts");
    assert!(dom.contains("<rect"), "bars");
    // No record value: drug names, quarantined lines, repaired source values, lab and test
    // values, clinician specialties as written.
    let mut values = strings(
        &db,
        "SELECT DISTINCT rx_name FROM rx WHERE rx_name IS NOT NULL",
    )
    .await;
    values.extend(strings(&db, "SELECT raw_line FROM quarantine").await);
    values.extend(
        strings(
            &db,
            "SELECT DISTINCT e.value #>> '{}' FROM (
                 SELECT raw_values FROM lifestyle UNION ALL SELECT raw_values FROM rx
                 UNION ALL SELECT raw_values FROM conditions UNION ALL SELECT raw_values FROM labs
                 UNION ALL SELECT raw_values FROM tests) t
             CROSS JOIN LATERAL jsonb_each(t.raw_values) e WHERE t.raw_values IS NOT NULL",
        )
        .await,
    );
    values.extend(
        strings(
            &db,
            "SELECT DISTINCT value_raw FROM labs WHERE value_raw IS NOT NULL",
        )
        .await,
    );
    values.extend(
        strings(
            &db,
            "SELECT DISTINCT clinician_specialty FROM lifestyle WHERE clinician_specialty IS NOT NULL",
        )
        .await,
    );
    let values: Vec<String> = values
        .into_iter()
        .map(|v| v.trim().to_owned())
        // Short values ("1", "ok") appear in any page as digits or words.
        .filter(|v| v.chars().count() >= 5)
        .collect();
    assert!(values.len() > 20, "a real list of values: {}", values.len());
    for value in &values {
        assert!(
            !dom.contains(value.as_str()) && !dom.contains(&medrec_api::report_page::escape(value)),
            "a record value is on the page: {value:?}"
        );
    }

    // --show-values is the trusted environment's choice: then repaired source values appear.
    let trusted = tempfile::tempdir().unwrap();
    medrec()
        .on(&db)
        .run_ok(&[
            "report",
            "--show-values",
            "--out",
            trusted.path().to_str().unwrap(),
        ])
        .await;
    let trusted = std::fs::read_to_string(trusted.path().join("index.html")).unwrap();
    assert!(trusted.contains("id=\"values\""));
}
