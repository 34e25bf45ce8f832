//! Least privilege (`migrations/0011_roles_audit.sql`, `medrec_store::roles`): the reader can
//! write nothing but audit rows, the writer can load and refresh but not touch the audit or the
//! migration records, and the grants survive objects created later.

use medrec_store::migrate::migrate_with;
use medrec_store::roles::{ensure_login, is_permission_denied, Role};
use medrec_store::vendor::{ingest_vendor_file, VendorSource, VendorStatus};
use medrec_store::{DEFINITIONS, MIGRATIONS};
use medrec_testkit::{count, TestDb};
use serde_json::json;
use tokio_postgres::Client;

/// Login users shared by every test database of the cluster (roles are cluster-wide).
const READER_LOGIN: &str = "medrec_test_reader_login";
const WRITER_LOGIN: &str = "medrec_test_writer_login";

async fn connect_as(db: &TestDb, user: &str, role: Role) -> Client {
    medrec_store::connect(&db.config_as(user, role).await.unwrap())
        .await
        .unwrap()
}

/// Every table and view of the schema.
async fn relations(client: &Client) -> Vec<String> {
    medrec_testkit::column(
        client,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'p') ORDER BY 1",
    )
    .await
}

async fn refused(client: &Client, sql: &str) {
    let error = client
        .batch_execute(sql)
        .await
        .expect_err(&format!("{sql} should be refused"));
    assert!(is_permission_denied(&error), "{sql}: {error:?}");
}

#[tokio::test]
async fn the_reader_can_write_no_table_but_append_audit_rows() {
    let db = TestDb::with_sample().await.unwrap();
    let admin = db.client().await.unwrap();
    let tables = relations(&admin).await;
    assert!(tables.contains(&"access_audit".to_owned()));
    for table in &tables {
        for privilege in [
            "INSERT",
            "UPDATE",
            "DELETE",
            "TRUNCATE",
            "REFERENCES",
            "TRIGGER",
        ] {
            let has: bool = admin
                .query_one(
                    "SELECT has_table_privilege('medrec_reader', $1, $2)",
                    &[table, &privilege],
                )
                .await
                .unwrap()
                .get(0);
            let allowed = table == "access_audit" && privilege == "INSERT";
            assert_eq!(has, allowed, "medrec_reader {privilege} on {table}");
        }
    }

    let reader = connect_as(&db, READER_LOGIN, Role::Reader).await;
    // What the API reads.
    for table in ["person", "rx", "labs", "person_features", "object_receipt"] {
        reader
            .query(&format!("SELECT * FROM {table} LIMIT 1"), &[])
            .await
            .unwrap();
    }
    reader
        .query("SELECT person_document(3591, NULL, NULL, NULL)", &[])
        .await
        .unwrap();
    reader
        .query(
            "SELECT * FROM person_features_as_of(ARRAY[3591], '2034-01-01')",
            &[],
        )
        .await
        .unwrap();
    // Writes of every kind are refused, in every table.
    for table in tables
        .iter()
        .filter(|t| !["event_date", "encounter"].contains(&t.as_str()))
    {
        refused(&reader, &format!("DELETE FROM {table}")).await;
        refused(
            &reader,
            &format!(
                "UPDATE {table} SET {c} = {c}",
                c = first_column(&admin, table).await
            ),
        )
        .await;
        refused(&reader, &format!("TRUNCATE {table}")).await;
    }
    refused(
        &reader,
        "INSERT INTO person (person_id, first_run_id) VALUES (1, 1)",
    )
    .await;
    refused(&reader, "SELECT * FROM quarantine").await;
    refused(&reader, "SELECT refresh_person_features(ARRAY[3591])").await;
    refused(&reader, "CREATE TABLE mine (x int)").await;

    // The audit: appended, never changed or removed.
    reader
        .batch_execute(
            "INSERT INTO access_audit (route, person_id, key_id, status)
             VALUES ('person', 3591, 'ops', 200)",
        )
        .await
        .unwrap();
    refused(&reader, "SELECT * FROM access_audit").await;
    refused(&reader, "UPDATE access_audit SET status = 404").await;
    refused(&reader, "DELETE FROM access_audit").await;
    refused(&reader, "TRUNCATE access_audit").await;
    let row = admin
        .query_one("SELECT key_id, status, db_user FROM access_audit", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "ops");
    assert_eq!(row.get::<_, i16>(1), 200);
    assert_eq!(row.get::<_, &str>(2), READER_LOGIN);
    // Not even the owner changes it without dropping the trigger.
    refused(&admin, "DELETE FROM access_audit").await;
    refused(&admin, "UPDATE access_audit SET status = 500").await;
    refused(&admin, "TRUNCATE access_audit").await;
}

async fn first_column(client: &Client, table: &str) -> String {
    client
        .query_one(
            "SELECT attname::text FROM pg_attribute
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped
               AND attidentity = '' AND attgenerated = ''
             ORDER BY attnum LIMIT 1",
            &[&table],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_writer_loads_vendor_files_receipts_and_features_but_not_the_audit() {
    let db = TestDb::migrated().await.unwrap();
    let mut writer = connect_as(&db, WRITER_LOGIN, Role::Writer).await;
    medrec_testkit::load_sample(&mut writer).await.unwrap();
    // Loading the same files again finds them loaded.
    medrec_testkit::load_sample(&mut writer).await.unwrap();
    assert!(
        medrec_store::features::refresh(&writer, None)
            .await
            .unwrap()
            > 0
    );
    assert!(
        medrec_store::features::refresh(&writer, Some(&[3591]))
            .await
            .unwrap()
            == 1
    );

    let file = |version: i64| {
        serde_json::to_vec(&json!({
            "schema": "medrec.vendor-person.v1",
            "vendor_id": "acme",
            "person_id": "777",
            "version": version,
            "updated_at": "2026-11-21T08:30:00Z",
            "lifestyle": [{"feature": "Smoking", "report_date": "2030-01-02", "value": "never"}],
            "rx": [{"rx_name": "Tamsulosin", "rx_date": "2030-01-03"}],
            "conditions": [], "labs": [], "tests": [],
        }))
        .unwrap()
    };
    let source = VendorSource {
        name: "acme-777.json".into(),
        version: None,
    };
    for version in [1, 2] {
        let report = ingest_vendor_file(&mut writer, &source, file(version))
            .await
            .unwrap();
        assert_eq!(report.status, VendorStatus::Loaded, "version {version}");
    }
    let receipt = medrec_store::receipts::Receipt {
        source: "s3://b/raw/rx/a.csv".into(),
        version: None,
        kind: Some("csv"),
        table: None,
        outcome: medrec_store::receipts::Outcome::Loaded,
        reason: None,
        run_id: None,
        file_id: None,
        persons: 0,
    };
    medrec_store::receipts::record(&writer, &receipt)
        .await
        .unwrap();
    let admin = db.client().await.unwrap();
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM lifestyle WHERE person_id = 777"
        )
        .await,
        1
    );

    refused(&writer, "INSERT INTO access_audit (route, person_id, key_id, status) VALUES ('person', 1, 'x', 200)").await;
    refused(&writer, "SELECT * FROM access_audit").await;
    refused(&writer, "DELETE FROM schema_migration").await;
    refused(&writer, "UPDATE drug_class SET description = ''").await;
    refused(&writer, "TRUNCATE rx").await;
    refused(&writer, "CREATE TABLE mine (x int)").await;
}

#[tokio::test]
async fn grants_cover_tables_and_definitions_created_later() {
    let db = TestDb::migrated().await.unwrap();
    let mut admin = db.client().await.unwrap();
    // A later migration's table, and a definition that drops and creates a view the API reads.
    let mut migrations: Vec<(&str, &str)> = MIGRATIONS.to_vec();
    migrations.push((
        "9999_later.sql",
        "CREATE TABLE later_table (x int); CREATE TABLE later_seq (id serial, x int);",
    ));
    let mut definitions: Vec<(&str, String)> = DEFINITIONS
        .iter()
        .map(|(n, s)| (*n, (*s).to_owned()))
        .collect();
    definitions.push((
        "R__90_test.sql",
        "DROP VIEW IF EXISTS test_view; CREATE VIEW test_view AS SELECT 1 AS one;".into(),
    ));
    let borrowed: Vec<(&str, &str)> = definitions.iter().map(|(n, s)| (*n, s.as_str())).collect();
    migrate_with(&mut admin, &migrations, &borrowed)
        .await
        .unwrap();

    let writer = connect_as(&db, WRITER_LOGIN, Role::Writer).await;
    writer
        .batch_execute(
            "INSERT INTO later_table VALUES (1); UPDATE later_table SET x = 2;
             INSERT INTO later_seq (x) VALUES (1); DELETE FROM later_table;",
        )
        .await
        .unwrap();
    let reader = connect_as(&db, READER_LOGIN, Role::Reader).await;
    refused(&reader, "SELECT * FROM later_table").await;
    refused(&reader, "INSERT INTO later_table VALUES (1)").await;

    // The encounter view dropped and created by a changed definition keeps the reader's grant.
    let changed: Vec<(&str, String)> = DEFINITIONS
        .iter()
        .map(|(n, s)| {
            let s = if *n == "R__20_events.sql" {
                s.replace(
                    "CREATE OR REPLACE VIEW encounter AS",
                    "DROP VIEW encounter CASCADE;\nCREATE VIEW encounter AS",
                )
            } else {
                (*s).to_owned()
            };
            (*n, s)
        })
        .collect();
    assert_ne!(
        changed[1].1, DEFINITIONS[1].1,
        "the test changes R__20_events.sql"
    );
    let borrowed: Vec<(&str, &str)> = changed.iter().map(|(n, s)| (*n, s.as_str())).collect();
    migrate_with(&mut admin, &migrations, &borrowed)
        .await
        .unwrap();
    reader
        .query("SELECT * FROM encounter LIMIT 1", &[])
        .await
        .unwrap();
    reader
        .query("SELECT * FROM person_features_as_of(ARRAY[1], NULL)", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_login_user_gets_a_scram_password_and_one_group() {
    let db = TestDb::migrated().await.unwrap();
    let admin = db.client().await.unwrap();
    let user = format!("medrec_test_login_{}", std::process::id());
    ensure_login(&admin, &user, Some("it's a secret"), Role::Reader)
        .await
        .unwrap();
    // Again, and moved to the other group: idempotent, and a member of one group only.
    ensure_login(&admin, &user, Some("it's a secret"), Role::Reader)
        .await
        .unwrap();
    ensure_login(&admin, &user, Some("another secret"), Role::Writer)
        .await
        .unwrap();
    let row = admin
        .query_one(
            "SELECT rolpassword, rolcanlogin,
                    pg_has_role($1, 'medrec_writer', 'MEMBER'),
                    pg_has_role($1, 'medrec_reader', 'MEMBER')
             FROM pg_authid WHERE rolname = $1",
            &[&user],
        )
        .await
        .unwrap();
    let password: String = row.get(0);
    assert!(password.starts_with("SCRAM-SHA-256$"), "{password}");
    assert!(!password.contains("another secret"));
    assert!(row.get::<_, bool>(1));
    assert!(row.get::<_, bool>(2));
    assert!(!row.get::<_, bool>(3));
    assert!(ensure_login(&admin, "medrec_reader", None, Role::Reader)
        .await
        .is_err());
    admin
        .batch_execute(&format!("DROP ROLE \"{user}\""))
        .await
        .unwrap();
}

#[tokio::test]
async fn many_databases_ensure_the_same_login_at_once() {
    let dbs = futures_join(4).await;
    let tasks: Vec<_> = dbs
        .iter()
        .map(|db| {
            let config = db.config.clone();
            tokio::spawn(async move {
                let client = medrec_store::connect(&config).await.unwrap();
                ensure_login(&client, READER_LOGIN, None, Role::Reader).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    for db in &dbs {
        let reader = connect_as(db, READER_LOGIN, Role::Reader).await;
        reader
            .query("SELECT count(*) FROM person", &[])
            .await
            .unwrap();
    }
}

async fn futures_join(n: usize) -> Vec<TestDb> {
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(TestDb::migrated())).collect();
    let mut dbs = Vec::new();
    for task in tasks {
        dbs.push(task.await.unwrap().unwrap());
    }
    dbs
}
