//! The features of many persons at once (R__30_features.sql): a list of more persons than the
//! index path takes is read as a range of ids when it holds every person of that range
//! (`medrec features refresh`'s parts), and as the list otherwise. Either way the rows are the
//! ones of the statement for everyone, restricted to the persons asked for.

use medrec_testkit::{count, stale_features, TestDb};
use tokio_postgres::Client;

use crate::generate::generate;
use crate::medrec;

/// Rows of the persons `persons` (an SQL bigint[] expression) that differ between their own
/// computation and the one for everyone, both ways, as they are and as of a date.
async fn differences(client: &Client, persons: &str) -> i64 {
    let mut total = 0;
    for as_of in ["NULL", "'2040-06-30'"] {
        let asked = format!("SELECT * FROM person_features_as_of({persons}, {as_of})");
        let everyone = format!(
            "SELECT * FROM person_features_as_of(NULL, {as_of}) WHERE person_id = ANY ({persons}::bigint[])"
        );
        total += count(
            client,
            &format!(
                "SELECT (SELECT count(*) FROM ({asked} EXCEPT ALL {everyone}) a)
                      + (SELECT count(*) FROM ({everyone} EXCEPT ALL {asked}) b)"
            ),
        )
        .await;
    }
    total
}

#[tokio::test]
async fn many_persons_by_range_or_by_list_equal_everyone() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &[
            "--persons",
            "2400",
            "--seed",
            "3",
            "--first-person-id",
            "1000",
        ],
    );
    let db = TestDb::migrated().await.unwrap();
    medrec()
        .on(&db)
        .run_ok(&["ingest", "--no-features", dir.path().to_str().unwrap()])
        .await;
    let client = db.client().await.unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM person").await, 2400);

    // Every person of a run of ids, in any order and with repeats: read as the range.
    let run = "(SELECT array_agg(person_id ORDER BY person_id DESC) || ARRAY[1500::bigint]
                FROM person WHERE person_id BETWEEN 1200 AND 2599)";
    // The same run with one person left out, or with a NULL and one left out: by the list (as
    // a range, the person left out would be computed too).
    let hole = "(SELECT array_agg(person_id) FROM person
                 WHERE person_id BETWEEN 1200 AND 2599 AND person_id <> 1777)";
    let hole_and_null = format!("({hole} || ARRAY[NULL::bigint])");
    // Every other person: by the list.
    let scattered = "(SELECT array_agg(person_id) FROM person WHERE person_id % 2 = 0)";
    for persons in [run, hole, &hole_and_null, scattered] {
        assert_eq!(differences(&client, persons).await, 0, "{persons}");
    }
    let asked =
        |persons: &str| format!("SELECT count(*) FROM person_features_as_of({persons}, NULL)");
    assert_eq!(count(&client, &asked(run)).await, 1400);
    assert_eq!(count(&client, &asked(hole)).await, 1399);
    assert_eq!(count(&client, &asked(&hole_and_null)).await, 1399);

    // `medrec features refresh` stores everyone's rows, in parts, and leaves nobody stale.
    medrec().on(&db).run_ok(&["features", "refresh"]).await;
    assert_eq!(
        count(&client, "SELECT count(*) FROM person_features").await,
        2400
    );
    assert!(stale_features(&client).await.is_empty());
}
