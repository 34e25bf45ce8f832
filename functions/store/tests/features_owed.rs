//! Derived data after a crash (migrations/0010_features_owed.sql): loads record their persons as
//! owed in their own transaction, a refresh settles only what it computed from, a stale refresh
//! never overwrites a newer one, and overlapping refreshes wait for each other.

use std::time::Duration;

use medrec_store::features::{owe, owed, refresh, refresh_everyone};
use medrec_store::vendor::{ingest_vendor_file, VendorSource};
use medrec_testkit::{column, count, load_sample, stale_features, TestDb};
use serde_json::json;
use tokio_postgres::Client;

async fn sample_db() -> (TestDb, Client) {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    load_sample(&mut client).await.unwrap();
    (db, client)
}

/// A vendor file for one sample person whose rows are later than any of the sample's: its load
/// moves the person's index date to 2049-01-02.
fn later_visit(person: i64, version: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schema": "medrec.vendor-person.v1",
        "vendor_id": "acme",
        "person_id": person.to_string(),
        "version": version,
        "updated_at": "2049-01-02T08:30:00Z",
        "lifestyle": [{"feature": "Smoking", "report_date": "2049-01-02", "value": "never"}],
        "rx": [],
        "conditions": [],
        "labs": [],
        "tests": [],
    }))
    .unwrap()
}

async fn index_date(client: &Client, person: i64) -> Option<chrono::NaiveDate> {
    client
        .query_opt(
            "SELECT index_date FROM person_features WHERE person_id = $1",
            &[&person],
        )
        .await
        .unwrap()
        .and_then(|r| r.get(0))
}

#[tokio::test]
async fn loads_record_their_persons_owed_and_a_refresh_settles_what_it_computed() {
    let (db, mut client) = sample_db().await;
    // Every load committed its persons as owed with its rows; no refresh ran.
    assert_eq!(
        count(&client, "SELECT count(*) FROM features_owed").await,
        50
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM person_features").await,
        0
    );
    let oldest = owed(&client, 3, None).await.unwrap();
    assert_eq!(oldest.len(), 3);

    assert_eq!(refresh(&client, Some(&oldest)).await.unwrap(), 3);
    assert_eq!(
        count(&client, "SELECT count(*) FROM features_owed").await,
        47
    );
    assert!(owed(&client, 100, None)
        .await
        .unwrap()
        .iter()
        .all(|p| !oldest.contains(p)));

    // A vendor load owes its person again, in its own transaction.
    let source = VendorSource {
        name: "vendor/3597.json".into(),
        version: None,
    };
    ingest_vendor_file(&mut client, &source, later_visit(oldest[0], 1))
        .await
        .unwrap();
    assert_eq!(
        count(&client, "SELECT count(*) FROM features_owed").await,
        48
    );

    // Everyone: settles everything owed, and an owed id of no person as well.
    let tx = client.transaction().await.unwrap();
    owe(&tx, &[424242]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(refresh(&client, None).await.unwrap(), 50);
    assert_eq!(
        count(&client, "SELECT count(*) FROM features_owed").await,
        0
    );
    assert_eq!(stale_features(&client).await, Vec::<i64>::new());
    // The refresh's settings were its transaction's only (the connection may be pooled).
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "0");
    drop(db);
}

/// Waits until `pid`'s backend waits for a lock.
async fn until_waiting_for_a_lock(watcher: &Client, pid: i32) {
    for _ in 0..200 {
        let waiting: bool = watcher
            .query_one(
                "SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if waiting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("backend {pid} never waited for a lock");
}

async fn backend_pid(client: &Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_refresh_started_before_a_load_never_overwrites_one_started_after_it() {
    let (db, mut loader) = sample_db().await;
    refresh(&loader, None).await.unwrap();
    let (early_person, person) = (3585_i64, 3597_i64);
    let before = index_date(&loader, person).await;
    assert!(before < chrono::NaiveDate::from_ymd_opt(2049, 1, 1));

    // The early refresh (of both persons) takes its snapshot, computes, and then waits on a row
    // lock held here, before it has written `person`'s row (rows are written in person order).
    let mut holder = db.client().await.unwrap();
    let hold = holder.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM person_features WHERE person_id = $1 FOR UPDATE",
        &[&early_person],
    )
    .await
    .unwrap();
    let early = db.client().await.unwrap();
    let early_pid = backend_pid(&early).await;
    let early_refresh =
        tokio::spawn(async move { refresh(&early, Some(&[early_person, person])).await });
    until_waiting_for_a_lock(&loader, early_pid).await;

    // A load of `person` commits, and a refresh started after it writes the new features.
    let source = VendorSource {
        name: "vendor/3597.json".into(),
        version: None,
    };
    ingest_vendor_file(&mut loader, &source, later_visit(person, 1))
        .await
        .unwrap();
    let late = db.client().await.unwrap();
    assert_eq!(refresh(&late, Some(&[person])).await.unwrap(), 1);
    let after = index_date(&loader, person).await;
    assert_eq!(after, chrono::NaiveDate::from_ymd_opt(2049, 1, 2));

    // The early refresh goes on: its rows for `person` come from before the load and lose.
    hold.commit().await.unwrap();
    let written = early_refresh.await.unwrap().unwrap();
    assert_eq!(written, 1, "only the early person's row is written");
    assert_eq!(index_date(&loader, person).await, after);
    assert_eq!(stale_features(&loader).await, Vec::<i64>::new());
    assert_eq!(
        count(&loader, "SELECT count(*) FROM features_owed").await,
        0
    );
}

#[tokio::test]
async fn overlapping_refreshes_of_the_same_persons_wait_for_each_other() {
    let (db, mut loader) = sample_db().await;
    let persons: Vec<i64> = loader
        .query("SELECT person_id FROM person ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for round in 0..4 {
        let mut running = Vec::new();
        for i in 0..3 {
            let client = db.client().await.unwrap();
            // Overlapping sets in different orders, and everyone.
            let mut set = persons.clone();
            if i == 1 {
                set.reverse();
            }
            let all = i == 2;
            running.push(tokio::spawn(async move {
                refresh(&client, (!all).then_some(&set[..])).await
            }));
        }
        // A load of one of them commits meanwhile.
        let source = VendorSource {
            name: format!("vendor/{round}.json"),
            version: None,
        };
        ingest_vendor_file(&mut loader, &source, later_visit(persons[round], 1))
            .await
            .unwrap();
        for refresh in running {
            refresh.await.unwrap().expect("no refresh fails");
        }
        // What a load committed during the refreshes is either computed or still owed.
        refresh(&loader, Some(&owed(&loader, 1000, None).await.unwrap()))
            .await
            .unwrap();
        assert_eq!(
            stale_features(&loader).await,
            Vec::<i64>::new(),
            "round {round}"
        );
    }
}

/// The stored features, without when they were computed.
async fn stored_features(client: &Client) -> Vec<String> {
    column(
        client,
        "SELECT (to_jsonb(pf) - 'computed_at')::text FROM person_features pf ORDER BY person_id",
    )
    .await
}

#[tokio::test]
async fn everyone_refreshed_in_parts_side_by_side_equals_one_statement() {
    let (db, client) = sample_db().await;
    assert_eq!(refresh(&client, None).await.unwrap(), 50);
    let one_statement = stored_features(&client).await;

    let (db2, mut client2) = sample_db().await;
    // A person owed by a later load is part of everyone too, and settled.
    let source = VendorSource {
        name: "vendor/3585.json".into(),
        version: None,
    };
    ingest_vendor_file(&mut client2, &source, later_visit(3585, 1))
        .await
        .unwrap();
    let helpers = [db2.client().await.unwrap(), db2.client().await.unwrap()];
    let clients = [&client2, &helpers[0], &helpers[1]];
    assert_eq!(refresh_everyone(&clients).await.unwrap(), 50);
    assert_eq!(
        count(&client2, "SELECT count(*) FROM features_owed").await,
        0
    );
    let parts = stored_features(&client2).await;
    assert_eq!(parts.len(), 50);
    assert_eq!(
        index_date(&client2, 3585).await,
        chrono::NaiveDate::from_ymd_opt(2049, 1, 2)
    );
    // Everyone else's row is the one statement's.
    let changed: Vec<_> = one_statement
        .iter()
        .filter(|r| !parts.contains(r))
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].contains("\"person_id\": 3585"), "{}", changed[0]);

    // Parts of nobody: no error, nothing written.
    let empty = TestDb::migrated().await.unwrap();
    let empty_client = empty.client().await.unwrap();
    let other = empty.client().await.unwrap();
    assert_eq!(refresh_everyone(&[&empty_client, &other]).await.unwrap(), 0);
    assert_eq!(refresh_everyone(&[]).await.unwrap(), 0);
    drop(db);
}
