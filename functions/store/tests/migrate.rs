//! Versioned migrations and repeatable definitions against a real PostgreSQL: a fresh database,
//! a second run, an upgrade from the schema as it was before definitions existed, changed files,
//! and the vocabularies synced from medrec_core.

use std::collections::BTreeSet;

use medrec_core::clean::common::SPECIALTY_CODES;
use medrec_core::clean::rx::DRUG_BOOK;
use medrec_core::features::FEATURES;
use medrec_core::reader::sha256_hex;
use medrec_core::{Flag, Reason, Table};
use medrec_store::features::sql_type;
use medrec_store::migrate::migrate_with;
use medrec_store::{ingest, migrate, Source, DEFINITIONS, MIGRATIONS};
use medrec_testkit::TestDb;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

fn names(files: &[(&'static str, &'static str)]) -> Vec<&'static str> {
    files.iter().map(|(name, _)| *name).collect()
}

/// A database as the migrator left it before repeatable definitions: 0001-0007 applied once
/// each and recorded in `schema_migration`, the drug classes synced, no `schema_definition`.
async fn old_state() -> (TestDb, Client) {
    let db = TestDb::empty().await.unwrap();
    let mut client = db.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migration (
             version    text PRIMARY KEY,
             sha256     text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .unwrap();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < "0008") {
        tx.batch_execute(sql).await.unwrap();
        tx.execute(
            "INSERT INTO schema_migration (version, sha256) VALUES ($1, $2)",
            &[version, &sha256_hex(sql.as_bytes()).unwrap()],
        )
        .await
        .unwrap();
    }
    let (classes, descriptions): (Vec<&str>, Vec<&str>) = DRUG_BOOK.classes.iter().copied().unzip();
    tx.execute(
        "INSERT INTO drug_class (drug_class, description)
         SELECT * FROM unnest($1::text[], $2::text[])",
        &[&classes, &descriptions],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (db, client)
}

/// The sample, loaded and its features computed, as `TestDb::with_sample` does.
async fn load_sample(client: &mut Client) {
    medrec_testkit::load_sample(client).await.unwrap();
    medrec_store::features::refresh(client, None).await.unwrap();
}

/// Every object of the public schema with its full definition: relations with their columns,
/// view queries, indexes, constraints, and functions and procedures with their bodies.
async fn objects(client: &Client) -> Objects {
    client
        .query(
            "SELECT 'relation', c.relname::text,
                    c.relkind::text || ': ' || coalesce((
                        SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                          || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                                          || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
                                          || CASE WHEN a.attidentity <> '' THEN ' identity' ELSE '' END,
                                          ', ' ORDER BY a.attnum)
                        FROM pg_attribute a
                        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
                    || coalesce(' AS ' || CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END, '')
                    || coalesce(' INDEX ' || CASE WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid) END, '')
             FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'constraint', conname::text, conrelid::regclass::text || ' ' || pg_get_constraintdef(oid)
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'function', proname::text, pg_get_functiondef(oid)
             FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Catalogue and row versions (`xmin`) of everything migrate() could write: unchanged when it
/// wrote nothing.
async fn row_versions(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT 'proc ' || oid::regprocedure::text || ' ' || xmin::text
             FROM pg_proc WHERE pronamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'class ' || relname || ' ' || xmin::text
             FROM pg_class WHERE relnamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'rule ' || ev_class::regclass::text || ' ' || xmin::text
             FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
             UNION ALL
             SELECT 'drug_class ' || drug_class || ' ' || xmin::text FROM drug_class
             UNION ALL
             SELECT 'quality_flag ' || flag || ' ' || xmin::text FROM quality_flag
             UNION ALL
             SELECT 'quarantine_reason ' || reason || ' ' || xmin::text FROM quarantine_reason
             UNION ALL
             SELECT 'specialty ' || specialty || ' ' || xmin::text FROM specialty
             UNION ALL
             SELECT 'schema_migration ' || version || ' ' || xmin::text FROM schema_migration
             UNION ALL
             SELECT 'schema_definition ' || name || ' ' || xmin::text FROM schema_definition
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn vocabulary(client: &Client, table: &str) -> BTreeSet<String> {
    medrec_testkit::column(client, &format!("SELECT * FROM {table}"))
        .await
        .into_iter()
        .collect()
}

#[tokio::test]
async fn a_fresh_database_gets_every_migration_then_every_definition() {
    let db = TestDb::empty().await.unwrap();
    let mut client = db.client().await.unwrap();
    let applied = migrate(&mut client).await.unwrap();
    let mut expected = names(MIGRATIONS);
    expected.extend(names(DEFINITIONS));
    assert_eq!(applied, expected);
    let recorded: Vec<(String, String)> = client
        .query(
            "SELECT name, sha256 FROM schema_definition ORDER BY name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let files: Vec<(String, String)> = DEFINITIONS
        .iter()
        .map(|(name, sql)| (name.to_string(), sha256_hex(sql.as_bytes()).unwrap()))
        .collect();
    assert_eq!(recorded, files);
    let migrations: i64 = client
        .query_one("SELECT count(*) FROM schema_migration", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(migrations as usize, MIGRATIONS.len());
    // Every definition exists, and works on an empty database.
    for object in [
        "event_date",
        "encounter",
        "person_features_as_of",
        "refresh_person_features",
        "feature_definitions_version",
        "person_document",
        "person_rows",
        "quality_flags_ok",
        "specialty_ok",
        "rebuild_vocabulary_checks",
    ] {
        assert!(
            objects(&client)
                .await
                .iter()
                .any(|(_, name, _)| name == object),
            "{object}"
        );
    }
    let refreshed: i64 = client
        .query_one("SELECT refresh_person_features(NULL)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(refreshed, 0);
}

#[tokio::test]
async fn migrating_again_writes_nothing() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let objects_before = objects(&client).await;
    let versions_before = row_versions(&client).await;
    assert_eq!(migrate(&mut client).await.unwrap(), Vec::<&str>::new());
    assert_eq!(migrate(&mut client).await.unwrap(), Vec::<&str>::new());
    assert_eq!(objects(&client).await, objects_before);
    assert_eq!(row_versions(&client).await, versions_before);
}

/// The feature queries compared before and after the upgrade, by label.
const FEATURE_QUERIES: &[(&str, &str)] = &[
    ("everyone", "person_features_as_of(NULL, NULL)"),
    (
        "everyone, 2030-06-30",
        "person_features_as_of(NULL, '2030-06-30')",
    ),
    (
        "everyone, 2035-01-13",
        "person_features_as_of(NULL, '2035-01-13')",
    ),
    (
        "a few",
        "person_features_as_of(ARRAY[3585, 3591, 3597, 3607, 3616, 999999], NULL)",
    ),
    (
        "a few, 2032-06-15",
        "person_features_as_of(ARRAY[3585, 3591, 3597, 3607, 3616], '2032-06-15')",
    ),
];

/// Stores what the definitions compute now in tables `<prefix>_features` (the feature queries),
/// `<prefix>_documents` (every person's document, whole and filtered) and `<prefix>_stored`
/// (person_features but computed_at).
async fn capture(client: &Client, prefix: &str) {
    client
        .batch_execute(&format!(
            "CREATE TABLE {prefix}_features AS
                 SELECT ''::text AS label, * FROM person_features_as_of(NULL, NULL) WITH NO DATA;
             CREATE TABLE {prefix}_documents AS
                 SELECT person_id, 'whole' AS label, person_document(person_id, NULL, NULL, NULL)::jsonb AS document
                 FROM person
                 UNION ALL
                 SELECT person_id, 'filtered', person_document(person_id, '2033-01-01', '2035-12-31', ARRAY['labs', 'rx'])::jsonb
                 FROM person
                 UNION ALL
                 SELECT 0, 'unknown person', person_document(0, NULL, NULL, NULL)::jsonb;
             CREATE TABLE {prefix}_stored AS
                 SELECT to_jsonb(pf) - 'computed_at' - 'computed_seq' AS features
                 FROM person_features pf;"
        ))
        .await
        .unwrap();
    for (label, query) in FEATURE_QUERIES {
        client
            .execute(
                &format!("INSERT INTO {prefix}_features SELECT $1, * FROM {query}"),
                &[label],
            )
            .await
            .unwrap();
    }
}

/// Rows of `a` not in `b` plus rows of `b` not in `a`, duplicates counted.
async fn differences(client: &Client, a: &str, b: &str) -> i64 {
    client
        .query_one(
            &format!(
                "SELECT count(*) FROM ((TABLE {a} EXCEPT ALL TABLE {b})
                                       UNION ALL (TABLE {b} EXCEPT ALL TABLE {a})) d"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Every feature of everyone, as JSON text, by person (to compare across databases).
async fn all_features(client: &Client) -> Vec<String> {
    medrec_testkit::column(
        client,
        "SELECT to_jsonb(f)::text FROM person_features_as_of(NULL, NULL) f ORDER BY person_id",
    )
    .await
}

type Objects = BTreeSet<(String, String, String)>;

/// The names of the objects of `a` not defined the same in `b`.
fn changed(a: &Objects, b: &Objects) -> BTreeSet<String> {
    a.difference(b).map(|(_, name, _)| name.clone()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn an_old_database_upgrades_to_the_same_objects_and_identical_results() {
    let (old, mut client) = old_state().await;
    // Today's loader owes its persons in features_owed (0010) and tallies its flags in
    // ingest_run_flag and two ingest_run columns (0015), which the old schema lacks: stand-ins
    // for the load, dropped before migrating.
    client
        .batch_execute(
            "CREATE TEMP SEQUENCE features_owed_seq;
             CREATE TEMP TABLE features_owed (person_id bigint PRIMARY KEY, seq bigint NOT NULL);
             CREATE TEMP TABLE ingest_run_flag (run_id bigint, flag text, column_name text,
                                                rows bigint);
             ALTER TABLE ingest_run ADD COLUMN cleaned_rows bigint, ADD COLUMN flagged_rows bigint",
        )
        .await
        .unwrap();
    load_sample(&mut client).await;
    let bad =
        b"feature,value,report_date,person_id\nPain,a,2034-01-01,\nPain,b,2034-01-01,1,extra\n";
    let source = Source {
        table: Table::Lifestyle,
        name: "lifestyle_bad.csv".into(),
        version: None,
        sha256: Some(sha256_hex(&bad[..]).unwrap()),
    };
    ingest(&mut client, source, &bad[..]).await.unwrap();
    // 0008 replaces quarantine.reason's CHECK by a foreign key over the rows already there.
    let quarantined = count(&client, "quarantine").await;
    assert_eq!(quarantined, 2);
    let old_objects = objects(&client).await;
    capture(&client, "before").await;
    assert!(count(&client, "before_features").await > 100);
    assert_eq!(count(&client, "before_stored").await, 50);
    client
        .batch_execute(
            "DROP TABLE pg_temp.features_owed; DROP SEQUENCE pg_temp.features_owed_seq;
             DROP TABLE pg_temp.ingest_run_flag;
             ALTER TABLE ingest_run DROP COLUMN cleaned_rows, DROP COLUMN flagged_rows",
        )
        .await
        .unwrap();

    let applied = migrate(&mut client).await.unwrap();
    let mut expected: Vec<&str> = names(MIGRATIONS)
        .into_iter()
        .filter(|v| *v >= "0008")
        .collect();
    expected.extend(names(DEFINITIONS));
    assert_eq!(applied, expected);
    assert_eq!(count(&client, "quarantine").await, quarantined);
    // The stored features as the definitions recompute them now.
    let refreshed: i64 = client
        .query_one("SELECT refresh_person_features(NULL)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(refreshed, 50);
    capture(&client, "after").await;
    // Definitions 2026-12-02.1 changed one result on purpose: no valid ICD code among a
    // person's conditions is no data (NULL), where it was 0. 2026-12-02.2 computes the BMI from
    // the units recorded, pairs the weight with the nearest height and adds bmi_latest_date
    // (tests/training.rs checks those by hand). Apart from that (and the version they are
    // stamped with) the old results must come back.
    client
        .batch_execute(
            "ALTER TABLE after_features DROP COLUMN bmi_latest_date;
             UPDATE before_features SET bmi_latest = NULL;
             UPDATE after_features SET bmi_latest = NULL;
             UPDATE before_stored SET features = features - 'bmi_latest';
             UPDATE after_stored SET features = features - 'bmi_latest' - 'bmi_latest_date';
             UPDATE before_features SET condition_categories = NULL WHERE condition_categories = 0;
             UPDATE before_stored SET features = jsonb_set(features, '{condition_categories}', 'null')
                 WHERE features->'condition_categories' = '0';
             UPDATE before_stored SET features = features - 'definitions_version';
             UPDATE after_stored SET features = features - 'definitions_version';",
        )
        .await
        .unwrap();
    for table in ["features", "documents", "stored"] {
        assert_eq!(
            differences(
                &client,
                &format!("before_{table}"),
                &format!("after_{table}")
            )
            .await,
            0,
            "{table} differ after the upgrade"
        );
    }
    for table in ["before_features", "before_documents", "before_stored"] {
        client
            .batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
    }
    for table in ["after_features", "after_documents", "after_stored"] {
        client
            .batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
    }

    // A fresh database with the sample has exactly the upgraded one's objects and features.
    let fresh = TestDb::with_sample().await.unwrap();
    let fresh_client = fresh.client().await.unwrap();
    let fresh_objects = objects(&fresh_client).await;
    assert_eq!(objects(&client).await, fresh_objects);
    assert_eq!(
        all_features(&client).await,
        all_features(&fresh_client).await
    );

    // Against the old schema, only what the vocabularies replaced and the later definitions
    // changed; every view and every other function is defined exactly as in 0003, 0004 and 0007.
    assert_eq!(
        changed(&old_objects, &fresh_objects),
        set(&[
            "quarantine_reason_check",
            "quality_flags_ok",
            "specialty_ok",
            "refresh_person_features",
            // 0010's computed_seq.
            "person_features",
            // Definitions 2026-12-02.1: censored lab results skipped, no valid code is NULL.
            "person_features_as_of",
            "feature_definitions_version",
            // 2026-12-03: the document is person_rows' arrays (the API writes the JSON).
            "person_document",
            // 0016: the person keys checked at commit by the bulk load.
            "lifestyle_person_id_fkey",
            "rx_person_id_fkey",
            "conditions_person_id_fkey",
            "labs_person_id_fkey",
            "tests_person_id_fkey",
        ])
    );
    // 0010 adds features_owed (its key, index and sequence).
    let (owed, fresh_objects_but_owed): (BTreeSet<String>, BTreeSet<String>) =
        changed(&fresh_objects, &old_objects)
            .into_iter()
            .partition(|name| name.starts_with("features_owed"));
    assert_eq!(
        owed,
        set(&[
            "features_owed",
            "features_owed_by_seq",
            "features_owed_pkey",
            "features_owed_seq"
        ])
    );
    // 0011 adds the append-only access audit (its key, checks, index and trigger).
    let (audit, fresh_objects_but_audit): (BTreeSet<String>, BTreeSet<String>) =
        fresh_objects_but_owed
            .into_iter()
            .partition(|name| name.starts_with("access_audit"));
    assert!(
        audit.contains("access_audit") && audit.contains("access_audit_is_append_only"),
        "{audit:?}"
    );
    // 0009 adds the object ledger (object_receipt, object_outcome and their keys and indexes;
    // 0012 its run index).
    let (ledger, fresh_objects_but_ledger): (BTreeSet<String>, BTreeSet<String>) =
        fresh_objects_but_audit
            .into_iter()
            .partition(|name| name.starts_with("object_"));
    // 0013 and the definitions after it add knowledge time: the superseded rows of each clean
    // table (and their person indexes), the index of finished runs, each table's known-at
    // function, the events and encounters as known, and the features at a spine's cutoffs.
    let (known, changed_but_flags): (BTreeSet<String>, BTreeSet<String>) =
        fresh_objects_but_ledger.into_iter().partition(|name| {
            name.contains("_superseded")
                || name.ends_with("_known_at")
                || [
                    "ingest_run_finished",
                    "person_features_at",
                    "feature_lineage",
                ]
                .contains(&name.as_str())
        });
    let mut expected_known = set(&[
        "ingest_run_finished",
        "person_features_at",
        "feature_lineage",
    ]);
    for table in Table::ALL.map(|t| t.name()) {
        expected_known.extend(set(&[
            &format!("{table}_superseded"),
            &format!("{table}_superseded_person"),
            &format!("{table}_known_at"),
        ]));
    }
    expected_known.extend(set(&["event_date_known_at", "encounter_known_at"]));
    assert_eq!(known, expected_known);
    // 0015 tallies each run's flags per source column (ingest_run_flag, two ingest_run columns).
    let (run_flags, changed_objects): (BTreeSet<String>, BTreeSet<String>) = changed_but_flags
        .into_iter()
        .partition(|name| name.starts_with("ingest_run_"));
    // (ingest_run's two columns were there already: the old objects were read with the
    // stand-ins in place.)
    assert_eq!(
        run_flags,
        set(&[
            "ingest_run_flag",
            "ingest_run_flag_key",
            "ingest_run_flag_flag_fkey",
            "ingest_run_flag_run_id_fkey",
            "ingest_run_flag_rows_check",
            "ingest_run_cleaned_rows_check",
            "ingest_run_flagged_rows_check",
        ])
    );
    assert!(
        ledger.contains("object_receipt") && ledger.contains("object_outcome"),
        "{ledger:?}"
    );
    assert_eq!(
        changed_objects,
        set(&[
            "quality_flags_ok",
            "specialty_ok",
            "refresh_person_features",
            "person_features",
            "rebuild_vocabulary_checks",
            "quality_flag",
            "quality_flag_pkey",
            "quality_flag_flag_check",
            "quarantine_reason",
            "quarantine_reason_pkey",
            "quarantine_reason_reason_check",
            "quarantine_reason_fk",
            "specialty",
            "specialty_pkey",
            "specialty_specialty_check",
            "schema_definition",
            "schema_definition_pkey",
            "person_features_as_of",
            "feature_definitions_version",
            "person_document",
            "person_rows",
            "lifestyle_person_id_fkey",
            "rx_person_id_fkey",
            "conditions_person_id_fkey",
            "labs_person_id_fkey",
            "tests_person_id_fkey",
        ])
    );
    drop(old);
}

/// The feature definitions version the committed R__30_features.sql returns.
fn committed_version() -> &'static str {
    let (_, sql) = DEFINITIONS
        .iter()
        .find(|(name, _)| *name == "R__30_features.sql")
        .unwrap();
    let start = sql.find("RETURN '").unwrap() + "RETURN '".len();
    &sql[start..start + sql[start..].find('\'').unwrap()]
}

fn replaced(
    files: &[(&'static str, &'static str)],
    name: &str,
    from: &str,
    to: &str,
) -> Vec<(&'static str, String)> {
    files
        .iter()
        .map(|(n, sql)| {
            if *n == name {
                assert!(sql.contains(from), "{name} has no {from:?}");
                (*n, sql.replace(from, to))
            } else {
                (*n, sql.to_string())
            }
        })
        .collect()
}

fn borrowed<'a>(files: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    files.iter().map(|(n, sql)| (*n, sql.as_str())).collect()
}

async fn recorded_sha(client: &Client, name: &str) -> String {
    client
        .query_one(
            "SELECT sha256 FROM schema_definition WHERE name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0)
}

async fn definitions_version(client: &Client) -> String {
    client
        .query_one("SELECT feature_definitions_version()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_changed_definition_is_re_applied_with_the_ones_after_it() {
    let db = TestDb::with_sample().await.unwrap();
    let mut client = db.client().await.unwrap();
    let features = all_features(&client).await;
    let changed = replaced(
        DEFINITIONS,
        "R__30_features.sql",
        &format!("'{}'", committed_version()),
        "'test.2'",
    );
    let applied = migrate_with(&mut client, MIGRATIONS, &borrowed(&changed))
        .await
        .unwrap();
    assert_eq!(
        applied,
        ["R__30_features.sql", "R__40_person_document.sql"],
        "the changed file and every one after it"
    );
    assert_eq!(definitions_version(&client).await, "test.2");
    assert_eq!(
        recorded_sha(&client, "R__30_features.sql").await,
        sha256_hex(changed[2].1.as_bytes()).unwrap()
    );
    // The function was dropped and created again: it still computes the same features.
    assert_eq!(all_features(&client).await, features);
    // Every stored row was computed under the old version: all are owed a recompute, and
    // until then a person's features are computed on read, under the new version.
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let stored_rows = count("SELECT count(*) FROM person_features").await;
    assert!(stored_rows > 0);
    assert_eq!(
        count("SELECT count(*) FROM features_owed").await,
        stored_rows
    );
    let pool = medrec_store::pool(&db.config, 1).unwrap();
    let on_read = medrec_store::features::for_person(&pool.get().await.unwrap(), 3585, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on_read.definitions_version, "test.2");
    assert_eq!(on_read.computed_at, None);
    let refreshed: i64 = client
        .query_one("SELECT refresh_person_features(ARRAY[3585, 3597])", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(refreshed, 2);
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM person_features WHERE definitions_version = 'test.2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 2);
    assert_eq!(
        count("SELECT count(*) FROM features_owed").await,
        stored_rows - 2
    );

    // Back to the committed files: re-applied again.
    let applied = migrate(&mut client).await.unwrap();
    assert_eq!(applied, ["R__30_features.sql", "R__40_person_document.sql"]);
    assert_eq!(definitions_version(&client).await, committed_version());

    // The last file alone, and a new file after it.
    let mut changed = replaced(
        DEFINITIONS,
        "R__40_person_document.sql",
        "BEGIN\n",
        "BEGIN\n    -- changed\n",
    );
    changed.push((
        "R__90_test.sql",
        "CREATE OR REPLACE VIEW test_view AS SELECT 1 AS one;".into(),
    ));
    let applied = migrate_with(&mut client, MIGRATIONS, &borrowed(&changed))
        .await
        .unwrap();
    assert_eq!(applied, ["R__40_person_document.sql", "R__90_test.sql"]);
    let body: String = client
        .query_one("SELECT pg_get_functiondef('person_rows'::regproc)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(body.contains("-- changed"), "{body}");
    let one: i32 = client
        .query_one("SELECT one FROM test_view", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
    // Unchanged now: a no-op.
    let applied = migrate_with(&mut client, MIGRATIONS, &borrowed(&changed))
        .await
        .unwrap();
    assert!(applied.is_empty(), "{applied:?}");
}

#[tokio::test]
async fn a_changed_versioned_migration_fails_and_applies_nothing() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let migrations = replaced(
        MIGRATIONS,
        "0003_features.sql",
        "-- Per-person",
        "-- Per person",
    );
    let definitions = replaced(
        DEFINITIONS,
        "R__30_features.sql",
        &format!("'{}'", committed_version()),
        "'test.3'",
    );
    let error = migrate_with(&mut client, &borrowed(&migrations), &borrowed(&definitions))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "migration 0003_features.sql was changed after it was applied"
    );
    // Nothing of that run was kept.
    assert_eq!(definitions_version(&client).await, committed_version());
    assert_eq!(
        recorded_sha(&client, "R__30_features.sql").await,
        sha256_hex(DEFINITIONS[2].1.as_bytes()).unwrap()
    );
    assert!(migrate(&mut client).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_versioned_migration_added_later_is_applied_before_the_definitions() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let mut migrations: Vec<(&str, &str)> = MIGRATIONS.to_vec();
    migrations.push((
        "9999_test.sql",
        "ALTER TABLE person_features ADD COLUMN test_feature integer;",
    ));
    // The feature function gains the column in the same run.
    let definitions = replaced(
        DEFINITIONS,
        "R__30_features.sql",
        "    abnormal_lab_share_12m       double precision,\n    explanation",
        "    abnormal_lab_share_12m       double precision,\n    test_feature                 integer,\n    explanation",
    );
    let definitions = definitions
        .into_iter()
        .map(|(n, sql)| {
            if n == "R__30_features.sql" {
                let from = "    lab_share.abnormal_lab_share_12m,\n";
                assert!(sql.contains(from));
                (
                    n,
                    sql.replace(from, "    lab_share.abnormal_lab_share_12m,\n    42,\n"),
                )
            } else {
                (n, sql)
            }
        })
        .collect::<Vec<_>>();
    let applied = migrate_with(&mut client, &migrations, &borrowed(&definitions))
        .await
        .unwrap();
    assert_eq!(
        applied,
        [
            "9999_test.sql",
            "R__30_features.sql",
            "R__40_person_document.sql"
        ]
    );
    client
        .batch_execute(
            "INSERT INTO ingest_run (table_name, source, status) VALUES ('lifestyle', 't', 'failed');
             INSERT INTO person (person_id, first_run_id) SELECT 7, max(run_id) FROM ingest_run;",
        )
        .await
        .unwrap();
    // refresh_person_features takes its SET list from the table: no edit for the new column.
    client
        .execute("SELECT refresh_person_features(NULL)", &[])
        .await
        .unwrap();
    client
        .execute("SELECT refresh_person_features(NULL)", &[])
        .await
        .unwrap();
    let value: i32 = client
        .query_one(
            "SELECT test_feature FROM person_features WHERE person_id = 7",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(value, 42);
}

async fn columns(client: &Client, query: &str) -> Vec<(String, String)> {
    client
        .query(query, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn the_feature_function_and_table_have_the_catalogues_columns_and_types() {
    let db = TestDb::migrated().await.unwrap();
    let client = db.client().await.unwrap();
    let function = columns(
        &client,
        "SELECT a.name, format_type(a.type, NULL)
         FROM pg_proc p,
              unnest(p.proargnames, p.proallargtypes, p.proargmodes::text[]) WITH ORDINALITY
                  AS a(name, type, mode, n)
         WHERE p.oid = 'person_features_as_of(bigint[], date)'::regprocedure AND a.mode = 't'
         ORDER BY a.n",
    )
    .await;
    let table = columns(
        &client,
        "SELECT attname::text, format_type(atttypid, atttypmod)
         FROM pg_attribute
         WHERE attrelid = 'person_features'::regclass AND attnum > 0 AND NOT attisdropped
         ORDER BY attnum",
    )
    .await;
    // The table is the function's columns (matched by name), then the bookkeeping columns.
    let mut expected_table = function.clone();
    expected_table.push(("definitions_version".into(), "text".into()));
    expected_table.push(("computed_at".into(), "timestamp with time zone".into()));
    expected_table.push(("computed_seq".into(), "bigint".into()));
    let mut table = table;
    table.sort();
    expected_table.sort();
    assert_eq!(table, expected_table);
    let mut catalogue: Vec<(String, String)> = FEATURES
        .iter()
        .map(|f| (f.name.to_owned(), sql_type(f.kind).to_owned()))
        .collect();
    catalogue.push(("person_id".into(), "bigint".into()));
    let mut function = function;
    function.sort();
    catalogue.sort();
    assert_eq!(function, catalogue);
}

/// A person and a run to hang test rows on.
async fn a_person(client: &Client) -> i64 {
    client
        .query_one(
            "WITH run AS (INSERT INTO ingest_run (table_name, source, status)
                          VALUES ('lifestyle', 'test', 'failed') RETURNING run_id),
                  p AS (INSERT INTO person (person_id, first_run_id) SELECT 1, run_id FROM run)
             SELECT run_id FROM run",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn insert_lifestyle(
    client: &Client,
    run: i64,
    line: i64,
    flags: &[&str],
    specialty: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO lifestyle (person_id, row_hash, feature, specialty, run_id, source_line, flags)
             VALUES (1, decode(lpad($1::bigint::text, 32, '0'), 'hex'), 'Pain', $2, $3, $1, $4)",
            &[&line, &specialty, &run, &flags],
        )
        .await
}

async fn insert_quarantine(
    client: &Client,
    run: i64,
    line: i64,
    reason: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO quarantine (run_id, source_line, reason, raw_line) VALUES ($1, $2, $3, 'x')",
            &[&run, &line, &reason],
        )
        .await
}

#[tokio::test]
async fn the_vocabularies_come_from_the_rust_enums() {
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    let flags: Vec<&str> = Flag::ALL.iter().map(|f| f.as_str()).collect();
    let reasons: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(vocabulary(&client, "quality_flag").await, set(&flags));
    assert_eq!(
        vocabulary(&client, "quarantine_reason").await,
        set(&reasons)
    );
    assert_eq!(
        vocabulary(&client, "specialty").await,
        set(&SPECIALTY_CODES)
    );

    let run = a_person(&client).await;
    for (line, specialty) in SPECIALTY_CODES.iter().enumerate() {
        insert_lifestyle(&client, run, line as i64 + 1, &flags, specialty)
            .await
            .unwrap();
    }
    for (line, reason) in reasons.iter().enumerate() {
        insert_quarantine(&client, run, line as i64 + 1, reason)
            .await
            .unwrap();
    }
    // Values Rust does not have are refused.
    let refused = |e: tokio_postgres::Error| e.code().cloned();
    assert_eq!(
        insert_lifestyle(&client, run, 100, &["brand_new_flag"], "other")
            .await
            .map_err(refused)
            .unwrap_err(),
        Some(SqlState::CHECK_VIOLATION)
    );
    assert_eq!(
        insert_lifestyle(&client, run, 101, &[], "podiatry")
            .await
            .map_err(refused)
            .unwrap_err(),
        Some(SqlState::CHECK_VIOLATION)
    );
    assert_eq!(
        insert_quarantine(&client, run, 100, "brand_new_reason")
            .await
            .map_err(refused)
            .unwrap_err(),
        Some(SqlState::FOREIGN_KEY_VIOLATION)
    );

    // A new Rust variant is a new vocabulary row (what migrate()'s sync inserts); the next
    // migrate() accepts it with no SQL edit.
    client
        .batch_execute(
            "INSERT INTO quality_flag VALUES ('brand_new_flag');
             INSERT INTO specialty VALUES ('podiatry');
             INSERT INTO quarantine_reason VALUES ('brand_new_reason');",
        )
        .await
        .unwrap();
    assert!(migrate(&mut client).await.unwrap().is_empty());
    insert_lifestyle(
        &client,
        run,
        100,
        &["brand_new_flag", "invalid_date"],
        "podiatry",
    )
    .await
    .unwrap();
    insert_quarantine(&client, run, 100, "brand_new_reason")
        .await
        .unwrap();
    let versions = row_versions(&client).await;
    assert!(migrate(&mut client).await.unwrap().is_empty());
    assert_eq!(row_versions(&client).await, versions);

    // The checks stay constants the planner inlines: no per-row function call or lookup.
    let plan: Vec<String> = client
        .query(
            "EXPLAIN (VERBOSE) SELECT quality_flags_ok(flags), specialty_ok(specialty) FROM lifestyle",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("<@ '{") && plan.contains("= ANY ('{"),
        "{plan}"
    );
    assert!(
        !plan.contains("quality_flags_ok") && !plan.contains("specialty_ok"),
        "{plan}"
    );
}
