//! What a crash leaves, and how the next run heals it: persons owed by committed loads are
//! recomputed by any later `persons_changed`, in bounded chunks; a load cut off by a lost
//! connection says what happened and what to do.

use medrec_core::Table;
use medrec_pipeline::memory::{MemorySource, RecordingSink};
use medrec_pipeline::{ErrorKind, ObjectKind, ObjectRef, Owed, Pipeline, Processed};
use medrec_testkit::{count, sample, TestDb};

fn object(name: &str) -> ObjectRef {
    ObjectRef {
        name: name.to_owned(),
        version: Some("1".to_owned()),
    }
}

/// The sample loaded through the pipeline, its announcements then lost (the process died before
/// its recompute).
async fn loaded_and_not_recomputed(db: &TestDb) -> Pipeline<MemorySource, RecordingSink> {
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 2).unwrap(),
        MemorySource::new(),
        RecordingSink::new(),
    );
    let mut objects = Vec::new();
    for table in Table::ALL {
        let name = format!("raw/{0}/{0}_ae.csv", table.name());
        pipeline.source().put(
            &name,
            Some("1"),
            sample(&format!("{}_ae.csv", table.name())),
        );
        objects.push((ObjectKind::Csv(table), object(&name)));
    }
    for (_, outcome) in pipeline.objects_arrived(objects, 2).await {
        assert_eq!(outcome.unwrap().summary(), "loaded");
    }
    pipeline
}

#[tokio::test]
async fn a_later_run_recomputes_what_a_crashed_one_left_owed_in_bounded_chunks() {
    let db = TestDb::migrated().await.unwrap();
    let _lost = loaded_and_not_recomputed(&db).await;
    let client = db.client().await.unwrap();
    assert_eq!(
        count(&client, "SELECT count(*) FROM person_features").await,
        0
    );

    // The features function's policy: its own persons, and a bounded number of the owed ones.
    let done = medrec_pipeline::persons_changed(&client, &[], &[3585], Owed::AtMost(10))
        .await
        .unwrap();
    assert_eq!((done.announced, done.healed), (1, 10));
    assert_eq!(
        count(&client, "SELECT count(*) FROM features_owed").await,
        39
    );

    // The command's: everything owed, even with nothing announced.
    let done = medrec_pipeline::persons_changed(&client, &[], &[], Owed::All)
        .await
        .unwrap();
    assert_eq!((done.announced, done.healed), (0, 39));
    assert_eq!(
        count(&client, "SELECT count(*) FROM features_owed").await,
        0
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM person_features").await,
        50
    );
    assert_eq!(
        medrec_testkit::stale_features(&client).await,
        Vec::<i64>::new()
    );

    // Nothing owed: nothing more to do.
    let done = medrec_pipeline::persons_changed(&client, &[], &[], Owed::All)
        .await
        .unwrap();
    assert_eq!(done.total(), 0);
}

#[tokio::test]
async fn a_load_cut_off_by_a_lost_connection_says_what_happened_and_what_to_do() {
    let db = TestDb::migrated().await.unwrap();
    let pipeline = Pipeline::new(
        medrec_store::pool(&db.config, 1).unwrap(),
        MemorySource::new(),
        RecordingSink::new(),
    );
    pipeline
        .source()
        .put("raw/rx/rx_ae.csv", Some("1"), sample("rx_ae.csv"));
    pipeline
        .source()
        .put("raw/labs/labs_ae.csv", Some("1"), sample("labs_ae.csv"));
    let first = pipeline
        .object_arrived(ObjectKind::Csv(Table::Rx), &object("raw/rx/rx_ae.csv"))
        .await
        .unwrap();
    assert!(matches!(first, Processed::Csv(_)));

    // The load waits on a lock held here; meanwhile the server ends its connection (as a
    // restart or crash would).
    let mut admin = db.client().await.unwrap();
    let hold = admin.transaction().await.unwrap();
    hold.batch_execute("LOCK TABLE labs IN SHARE MODE")
        .await
        .unwrap();
    let pipeline = std::sync::Arc::new(pipeline);
    let loading = tokio::spawn({
        let pipeline = pipeline.clone();
        async move {
            pipeline
                .object_arrived(
                    ObjectKind::Csv(Table::Labs),
                    &object("raw/labs/labs_ae.csv"),
                )
                .await
        }
    });
    let mut terminated = false;
    for _ in 0..400 {
        terminated = hold
            .query_one(
                "SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if terminated {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(terminated, "the load never waited for the lock");
    hold.commit().await.unwrap();
    let error = loading.await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(error.connection_lost(), "{error:#}");
    let message = error.to_string();
    for expected in [
        "raw/labs/labs_ae.csv",
        "the connection to PostgreSQL was lost",
        "Nothing of this file was committed",
        "re-run the same command",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    assert_eq!(count(&admin, "SELECT count(*) FROM labs").await, 0);
}
